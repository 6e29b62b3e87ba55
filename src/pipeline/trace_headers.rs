//! The header fields amavisd-new adds to mail it passes: `Received:` and `X-Virus-Scanned:`.

use crate::config::Config;
use crate::message::{Envelope, date};

/// The fields to prepend, CRLF-terminated, topmost first. The `Received:` field follows
/// amavisd-new's form:
///
/// ```text
/// Received: from mx.example.org ([127.0.0.1])
///  by localhost (mx.example.org [127.0.0.1]) (amavisd-rs, port 10024)
///  with ESMTP id 5Vx3hF0kzQ8b for <user@example.com>;
///  Mon, 23 Nov 2026 21:27:29 +0000
/// ```
pub fn trace_headers(cfg: &Config, env: &Envelope, mail_id: &str) -> Vec<u8> {
    let mut out = String::new();
    if cfg.headers.add_received {
        let helo = sanitize(&env.client.helo);
        out.push_str("Received: from ");
        out.push_str(if helo.is_empty() { "unknown" } else { &helo });
        if let Some(peer) = env.client.peer {
            out.push_str(&format!(" ([{}])", peer.ip()));
        }
        out.push_str("\r\n by localhost (");
        out.push_str(&cfg.myhostname);
        match env.client.local {
            Some(local) => out.push_str(&format!(
                " [{}]) (amavisd-rs, port {})",
                local.ip(),
                local.port()
            )),
            None => out.push_str(") (amavisd-rs, unix socket)"),
        }
        out.push_str(&format!(
            "\r\n with {} id {mail_id}",
            env.protocol.with_name(env.client.esmtp)
        ));
        if let [only] = env.recipients.as_slice() {
            out.push_str(&format!(" for <{}>", sanitize(&only.address)));
        }
        out.push_str(&format!(";\r\n {}\r\n", date::rfc2822(env.received_at)));
    }
    let mut out = out.into_bytes();
    out.extend_from_slice(&scanned_by(cfg));
    out
}

/// amavisd-new's `X-Virus-Scanned:` field alone (`headers.x_header_tag`), or nothing.
pub fn scanned_by(cfg: &Config) -> Vec<u8> {
    if cfg.headers.x_header_tag.is_empty() {
        return Vec::new();
    }
    let line = cfg.headers.x_header_line.replace("%d", &cfg.mydomain);
    format!("{}: {}\r\n", cfg.headers.x_header_tag, line).into_bytes()
}

/// Peer-supplied text in a header: no CR, LF or other controls, so it cannot add fields.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{ClientInfo, Protocol, Recipient};

    #[test]
    fn amavisd_new_form() {
        let cfg = Config {
            myhostname: "mx.example.com".into(),
            ..Config::default()
        }
        .validate(std::path::Path::new("t"))
        .unwrap();
        let env = Envelope {
            mail_from: "s@x".into(),
            mail_params: vec![],
            recipients: vec![Recipient {
                address: "u@example.com".into(),
                params: vec![],
            }],
            client: ClientInfo {
                peer: Some("127.0.0.1:40000".parse().unwrap()),
                local: Some("127.0.0.1:10024".parse().unwrap()),
                helo: "mx.example.com\r\nX-Evil: 1".into(),
                esmtp: true,
                ..ClientInfo::default()
            },
            protocol: Protocol::Smtp,
            received_at: std::time::UNIX_EPOCH,
        };
        let h = String::from_utf8(trace_headers(&cfg, &env, "ABCDEFGHIJKL")).unwrap();
        assert_eq!(
            h,
            "Received: from mx.example.com??X-Evil: 1 ([127.0.0.1])\r\n \
             by localhost (mx.example.com [127.0.0.1]) (amavisd-rs, port 10024)\r\n \
             with ESMTP id ABCDEFGHIJKL for <u@example.com>;\r\n \
             Thu, 01 Jan 1970 00:00:00 +0000\r\n\
             X-Virus-Scanned: amavisd-rs at example.com\r\n"
        );
    }
}
