//! Messages to learn from, as administrators keep them: single files, folders of files
//! (maildir `cur/` and `new/` included, walked recursively; hidden files skipped), and mbox
//! files (split at each `From ` line that starts a message).

use std::path::{Path, PathBuf};

/// Every file under `paths`, in name order per folder.
pub fn files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out)?;
    }
    Ok(out)
}

fn walk(p: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|e| {
                !e.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        entries.sort();
        for e in entries {
            walk(&e, out)?;
        }
    } else if p.is_file() {
        out.push(p.to_path_buf());
    } else if !p.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{}: no such file or folder", p.display()),
        ));
    }
    Ok(())
}

/// The messages of one file: several when it is an mbox (starts with `From `), without the
/// separator lines; `>From ` quoting is left as it is (it does not change the tokens).
pub fn messages(data: &[u8]) -> Vec<&[u8]> {
    if !data.starts_with(b"From ") {
        return vec![data];
    }
    let mut out = Vec::new();
    let mut start = None;
    let mut at = 0;
    while at < data.len() {
        let end = memchr::memchr(b'\n', &data[at..]).map_or(data.len(), |i| at + i + 1);
        if data[at..].starts_with(b"From ") {
            if let Some(s) = start {
                out.push(&data[s..at]);
            }
            start = Some(end);
        }
        at = end;
    }
    if let Some(s) = start
        && s < data.len()
    {
        out.push(&data[s..]);
    }
    out
}

/// The messages a report carries: each attached `message/rfc822` part (a report forwarded
/// "as attachment"), else the report itself (a message redirected or bounced as is).
pub fn reported(raw: &[u8]) -> Vec<Vec<u8>> {
    let attached: Vec<Vec<u8>> = mail_parser::MessageParser::default()
        .parse(raw)
        .map(|m| {
            m.parts
                .iter()
                .filter_map(|p| match &p.body {
                    mail_parser::PartType::Message(inner) => Some(inner.raw_message().to_vec()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if attached.is_empty() {
        vec![raw.to_vec()]
    } else {
        attached
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbox_and_single_files() {
        let mbox = b"From a@b Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody\n\nFrom c@d Tue Jan  2 00:00:00 2024\nSubject: two\n\nx\n";
        let m = messages(mbox);
        assert_eq!(m.len(), 2);
        assert!(m[0].starts_with(b"Subject: one"));
        assert!(m[1].starts_with(b"Subject: two"));
        assert_eq!(messages(b"Subject: x\n\ny\n").len(), 1);
    }

    #[test]
    fn folders_are_walked() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("cur")).unwrap();
        std::fs::write(d.path().join("cur/1"), "a").unwrap();
        std::fs::write(d.path().join("cur/.hidden"), "a").unwrap();
        std::fs::write(d.path().join("top"), "b").unwrap();
        let f = files(&[d.path().to_path_buf()]).unwrap();
        assert_eq!(f, vec![d.path().join("cur/1"), d.path().join("top")]);
    }

    #[test]
    fn reports_carry_attached_messages_or_are_one() {
        let report = b"From: u@x\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nspam!\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <s1@y>\r\nSubject: pills\r\n\r\ncheap\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <s2@y>\r\nSubject: loans\r\n\r\nfast\r\n--b--\r\n";
        let got = reported(report);
        assert_eq!(got.len(), 2);
        assert!(
            got[0].starts_with(b"Message-ID: <s1@y>")
                && got[0].trim_ascii_end().ends_with(b"cheap")
        );
        assert!(got[1].starts_with(b"Message-ID: <s2@y>"));
        let plain = b"Subject: pills\r\n\r\ncheap\r\n";
        assert_eq!(reported(plain), vec![plain.to_vec()]);
    }
}
