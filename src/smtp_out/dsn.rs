//! Delivery status notifications (RFC 3464) for recipients the next hop refused for good.
//!
//! amavisd-new answers 250 to an SMTP client when some recipients were delivered and others
//! refused with 5xx, and tells the sender about the refused ones itself; this builds that
//! message. It returns the parts around the original (or its header section) so the original
//! is streamed from the spool, never copied into memory.

use crate::message::{Envelope, Reply, date, xtext};

/// One recipient to report.
#[derive(Debug, Clone)]
pub struct FailedRecipient {
    pub address: String,
    /// Raw ORCPT value (`rfc822;u+2Bx@x`), if the client sent one.
    pub orcpt: Option<String>,
    pub reply: Reply,
    /// The next hop refused it (then `Remote-MTA` names it); false when we blocked the copy.
    pub remote: bool,
}

/// What a DSN says.
pub struct DsnInput<'a> {
    pub envelope: &'a Envelope,
    pub failed: &'a [FailedRecipient],
    pub reporting_mta: &'a str,
    pub mydomain: &'a str,
    pub mail_id: &'a str,
    /// Where the next hop is, for `Remote-MTA`.
    pub remote_mta: &'a str,
    /// Some recipients got the message.
    pub partly_delivered: bool,
}

/// The DSN as `(prefix, full, suffix)`: the caller sends `prefix`, then the original message
/// when `full` is true or its header section otherwise, then `suffix`.
pub fn build_dsn(d: &DsnInput<'_>) -> (Vec<u8>, bool, Vec<u8>) {
    let env = d.envelope;
    let full = env
        .mail_param("RET")
        .is_some_and(|v| v.eq_ignore_ascii_case("FULL"));
    let boundary = format!("----------=_{}", d.mail_id);
    let now = date::rfc2822(std::time::SystemTime::now());
    let mut h = String::new();
    h.push_str(&format!(
        "From: \"Content-filter at {0}\" <postmaster@{1}>\r\n",
        d.reporting_mta, d.mydomain
    ));
    h.push_str(&format!("To: <{}>\r\n", env.mail_from));
    h.push_str("Subject: Undeliverable mail returned to sender\r\n");
    h.push_str(&format!("Date: {now}\r\n"));
    h.push_str(&format!(
        "Message-ID: <DSN{}@{}>\r\n",
        d.mail_id, d.reporting_mta
    ));
    h.push_str("Auto-Submitted: auto-replied\r\n");
    h.push_str("MIME-Version: 1.0\r\n");
    h.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n boundary=\"{boundary}\"\r\n"
    ));
    h.push_str("\r\nThis is a multi-part message in MIME format.\r\n\r\n");
    h.push_str(&format!("--{boundary}\r\n"));
    h.push_str("Content-Type: text/plain; charset=us-ascii\r\n");
    h.push_str("Content-Description: Notification\r\n\r\n");
    if d.partly_delivered {
        h.push_str(&format!(
            "This is the content filter at {}.\r\n\
             Your message was delivered to some recipients, but could not be\r\n\
             delivered to the following ones:\r\n\r\n",
            d.reporting_mta
        ));
    } else {
        h.push_str(&format!(
            "This is the content filter at {}.\r\n\
             Your message could not be delivered to the following recipients:\r\n\r\n",
            d.reporting_mta
        ));
    }
    for f in d.failed {
        h.push_str(&format!(
            "  <{}>: {}\r\n",
            f.address,
            ascii(&f.reply.one_line())
        ));
    }
    h.push_str(&format!("\r\n--{boundary}\r\n"));
    h.push_str("Content-Type: message/delivery-status\r\n");
    h.push_str("Content-Description: Delivery report\r\n\r\n");
    h.push_str(&format!("Reporting-MTA: dns; {}\r\n", d.reporting_mta));
    if let Some(envid) = env.mail_param("ENVID") {
        h.push_str(&format!("Original-Envelope-Id: {envid}\r\n"));
    }
    h.push_str(&format!(
        "Arrival-Date: {}\r\n",
        date::rfc2822(env.received_at)
    ));
    for f in d.failed {
        h.push_str("\r\n");
        if let Some(o) = &f.orcpt {
            h.push_str(&format!("Original-Recipient: {o}\r\n"));
        }
        h.push_str(&format!(
            "Final-Recipient: rfc822; {}\r\n",
            xtext_if_needed(&f.address)
        ));
        h.push_str("Action: failed\r\n");
        let status = if f.reply.status.is_empty() {
            "5.0.0"
        } else {
            &f.reply.status
        };
        h.push_str(&format!("Status: {status}\r\n"));
        if f.remote {
            h.push_str(&format!("Remote-MTA: dns; {}\r\n", d.remote_mta));
        }
        h.push_str(&format!(
            "Diagnostic-Code: smtp; {}\r\n",
            ascii(&f.reply.one_line())
        ));
    }
    h.push_str(&format!("\r\n--{boundary}\r\n"));
    if full {
        h.push_str("Content-Type: message/rfc822\r\n");
        h.push_str("Content-Description: Undelivered message\r\n\r\n");
    } else {
        h.push_str("Content-Type: text/rfc822-headers\r\n");
        h.push_str("Content-Description: Undelivered-message headers\r\n\r\n");
    }
    let suffix = format!("\r\n--{boundary}--\r\n").into_bytes();
    (h.into_bytes(), full, suffix)
}

fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn xtext_if_needed(a: &str) -> String {
    if a.is_ascii() {
        a.to_string()
    } else {
        xtext::encode(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{ClientInfo, Param, Protocol};

    #[test]
    fn dsn_fields() {
        let env = Envelope {
            mail_from: "s@example.org".into(),
            mail_params: vec![
                Param {
                    keyword: "RET".into(),
                    value: Some("FULL".into()),
                },
                Param {
                    keyword: "ENVID".into(),
                    value: Some("id+2B1".into()),
                },
            ],
            recipients: vec![],
            client: ClientInfo::default(),
            protocol: Protocol::Smtp,
            received_at: std::time::SystemTime::now(),
        };
        let failed = [FailedRecipient {
            address: "bad@example.com".into(),
            orcpt: Some("rfc822;bad@example.com".into()),
            reply: Reply::new(550, "5.1.1", "User unknown"),
            remote: true,
        }];
        let (pre, full, suf) = build_dsn(&DsnInput {
            envelope: &env,
            failed: &failed,
            reporting_mta: "mx.example.com",
            mydomain: "example.com",
            mail_id: "abcdefABCDEF",
            remote_mta: "127.0.0.1",
            partly_delivered: true,
        });
        let pre = String::from_utf8(pre).unwrap();
        assert!(full);
        for want in [
            "To: <s@example.org>",
            "report-type=delivery-status",
            "Original-Envelope-Id: id+2B1",
            "Original-Recipient: rfc822;bad@example.com",
            "Final-Recipient: rfc822; bad@example.com",
            "Action: failed",
            "Status: 5.1.1",
            "Diagnostic-Code: smtp; 550 5.1.1 User unknown",
            "Content-Type: message/rfc822",
        ] {
            assert!(pre.contains(want), "missing {want:?} in\n{pre}");
        }
        assert!(String::from_utf8(suf).unwrap().ends_with("--\r\n"));
    }

    /// A bounce of a blocked message, as the golden file shows it (without its dates).
    #[test]
    fn bounce_golden() {
        let env = Envelope {
            mail_from: "s@example.org".into(),
            mail_params: vec![],
            recipients: vec![],
            client: ClientInfo::default(),
            protocol: Protocol::Smtp,
            received_at: std::time::SystemTime::now(),
        };
        let failed = [FailedRecipient {
            address: "u@example.com".into(),
            orcpt: None,
            reply: Reply::new(
                554,
                "5.7.0",
                "Bounced, id=4711-01 - INFECTED: Eicar-Test-Signature",
            ),
            remote: false,
        }];
        let (pre, full, suf) = build_dsn(&DsnInput {
            envelope: &env,
            failed: &failed,
            reporting_mta: "mx.example.com",
            mydomain: "example.com",
            mail_id: "K-c5C9vr87eF",
            remote_mta: "127.0.0.1",
            partly_delivered: false,
        });
        assert!(!full, "no RET=FULL: headers only");
        let mut all = pre;
        all.extend_from_slice(b"From: s@example.org\r\nSubject: hi\r\n");
        all.extend_from_slice(&suf);
        let text: String = String::from_utf8_lossy(&all)
            .split("\r\n")
            .filter(|l| !l.starts_with("Date: ") && !l.starts_with("Arrival-Date: "))
            .collect::<Vec<_>>()
            .join("\n");
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/notices/dsn-bounce.txt");
        if std::env::var_os("AMAVISD_BLESS").is_some() {
            std::fs::write(&p, &text).unwrap();
        }
        assert_eq!(text, std::fs::read_to_string(&p).unwrap());
    }
}
