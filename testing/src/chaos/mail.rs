//! The messages of a chaos run: real mail (a corpus folder) or generated mail, with every
//! twentieth one carrying the EICAR test virus and every twentieth (offset by ten) a banned
//! Windows executable, each with a Message-ID unique to the run, by which it is accounted.

use crate::load::{generated_message, stuffed};
use amavisd::message::line_ends::to_crlf;

/// What the filter should make of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Clean,
    Virus,
    Banned,
}

/// One message of the run.
#[derive(Debug, Clone)]
pub struct ChaosMessage {
    /// The Message-ID, without angle brackets: `chaos-RUN-N@amavisd-rs.test`.
    pub id: String,
    pub kind: Kind,
    pub sender: String,
    pub recipient: String,
    /// Dot-stuffed and terminated, ready for DATA.
    pub stuffed: Vec<u8>,
}

/// The EICAR test string, which every virus scanner reports and which harms nothing.
const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// The Message-ID prefix of run `run`, for finding its rows in a shared database.
pub fn id_prefix(run: &str) -> String {
    format!("chaos-{run}-")
}

/// `count` messages for run `run`, cycling through `corpus` (generated mail when empty).
pub fn messages(run: &str, count: usize, corpus: &[Vec<u8>]) -> Vec<ChaosMessage> {
    (0..count)
        .map(|i| {
            let id = format!("{}{i}@amavisd-rs.test", id_prefix(run));
            let kind = match i % 20 {
                7 => Kind::Virus,
                17 => Kind::Banned,
                _ => Kind::Clean,
            };
            let body = match kind {
                Kind::Virus => attachment(i, "eicar.txt", "text/plain", EICAR.as_bytes()),
                Kind::Banned => attachment(i, "setup.exe", "application/octet-stream", &mz()),
                Kind::Clean => match corpus.get(i % corpus.len().max(1)) {
                    Some(m) => to_crlf(m),
                    None => generated_message(2048 + (i % 7) * 1500, i as u64),
                },
            };
            ChaosMessage {
                stuffed: stuffed(&with_message_id(&body, &id)),
                id,
                kind,
                sender: format!("sender{}@example.org", i % 31),
                recipient: format!("user{}@example.com", i % 53),
            }
        })
        .collect()
}

/// A small Windows executable header: banned by content (`.exe-ms`) and by name.
fn mz() -> Vec<u8> {
    let mut b = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00".to_vec();
    b.resize(256, 0);
    b
}

fn attachment(i: usize, name: &str, ctype: &str, content: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(content);
    format!(
        "From: sender@example.org\r\nTo: user@example.com\r\nSubject: chaos attachment {i}\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n\
         --b{i}\r\nContent-Type: text/plain\r\n\r\nSee the attachment.\r\n\
         --b{i}\r\nContent-Type: {ctype}; name=\"{name}\"\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b{i}--\r\n"
    )
    .into_bytes()
}

/// `msg` (CRLF) with its Message-ID fields removed and `id` put first.
fn with_message_id(msg: &[u8], id: &str) -> Vec<u8> {
    let end = amavisd::decode::header_section(msg).len();
    let mut out = format!("Message-ID: <{id}>\r\n").into_bytes();
    let mut skipping = false;
    for line in msg[..end].split_inclusive(|&b| b == b'\n') {
        let folded = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !folded {
            skipping = line.len() > 11 && line[..11].eq_ignore_ascii_case(b"message-id:");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(&msg[end..]);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn one_message_id_per_message_and_the_mix() {
        let corpus = vec![b"Message-ID:\r\n <old@x>\r\nSubject: s\r\n\r\nbody\r\n".to_vec()];
        let m = messages("r1", 40, &corpus);
        let text = String::from_utf8_lossy(&m[0].stuffed);
        assert!(text.starts_with("Message-ID: <chaos-r1-0@amavisd-rs.test>\r\nSubject: s\r\n"));
        assert!(!text.contains("old@x"), "{text}");
        assert_eq!(m.iter().filter(|x| x.kind == Kind::Virus).count(), 2);
        assert_eq!(m.iter().filter(|x| x.kind == Kind::Banned).count(), 2);
        assert!(m[7].stuffed.ends_with(b"\r\n.\r\n"));
    }
}
