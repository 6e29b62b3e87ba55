//! MIME damage must not hide content from the checks. Each shape below is a way to build a
//! message that a strict parser reads as text while a forgiving mail client still shows an
//! attachment; each carries the EICAR test file as an attachment named `evil.exe`. For every
//! shape the decoder must produce the EICAR bytes exactly (so a scanner matching whole files
//! finds them), the banned rules must see the `.exe` name, and damage that breaks the MIME
//! structure is reported as a MIME error (BAD-HEADER-1), as amavisd-new reports MIME::Parser's
//! errors. Then the same table goes through the whole filter with the real clamd.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod av_common;
mod common;
mod decode_common;
use av_common::{clamd_at, clamd_socket, eicar};
use common::*;
use decode_common::{base64_lines, message};

use amavisd::banned::{RuleSet, check};
use amavisd::message::Destiny;
use amavisd_testing::sink::SinkMode;

const HEAD: &str = "From: a@example.org\r\nTo: b@example.com\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
                    Subject: test\r\nMessage-ID: <t@example.org>\r\nMIME-Version: 1.0\r\n";

/// The attachment's header fields, in base64.
const ATTACHMENT: &str = "Content-Type: application/octet-stream; name=\"evil.exe\"\r\n\
                          Content-Transfer-Encoding: base64\r\n\
                          Content-Disposition: attachment; filename=\"evil.exe\"\r\n";

fn b64() -> String {
    base64_lines(&eicar())
}

/// (shape, the structure is damaged, the message)
fn shapes() -> Vec<(&'static str, bool, Vec<u8>)> {
    let b = b64();
    let text = "Content-Type: text/plain\r\n\r\nSee the attachment.\r\n";
    let mut v: Vec<(&'static str, bool, String)> = vec![
        (
            "multipart without a boundary parameter",
            true,
            format!(
                "{HEAD}Content-Type: multipart/mixed\r\n\r\n--XyZ\r\n{text}--XyZ\r\n{ATTACHMENT}\r\n{b}--XyZ--\r\n"
            ),
        ),
        (
            "boundary that never appears",
            true,
            format!(
                "{HEAD}Content-Type: multipart/mixed; boundary=\"DECLARED\"\r\n\r\n--OTHER\r\n{text}--OTHER\r\n{ATTACHMENT}\r\n{b}--OTHER--\r\n"
            ),
        ),
        (
            "boundary only in the middle of lines",
            true,
            format!(
                "{HEAD}Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\nx--B\r\n{text}x--B\r\n{ATTACHMENT}\r\n{b}x--B--\r\n"
            ),
        ),
        (
            "unterminated multipart",
            false,
            format!(
                "{HEAD}Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n{text}--B\r\n{ATTACHMENT}\r\n{b}"
            ),
        ),
        (
            "two Content-Type fields, the last one text",
            true,
            format!(
                "{HEAD}Content-Type: multipart/mixed; boundary=\"B\"\r\nContent-Type: text/plain\r\n\r\n--B\r\n{text}--B\r\n{ATTACHMENT}\r\n{b}--B--\r\n"
            ),
        ),
        (
            "two Content-Transfer-Encoding fields, the last one 7bit",
            true,
            format!(
                "{HEAD}Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n{text}--B\r\n{ATTACHMENT}Content-Transfer-Encoding: 7bit\r\n\r\n{b}--B--\r\n"
            ),
        ),
        (
            "unknown transfer encoding",
            true,
            format!(
                "{HEAD}Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n{text}--B\r\n\
                 Content-Type: application/octet-stream; name=\"evil.exe\"\r\nContent-Transfer-Encoding: base-64\r\n\r\n{b}--B--\r\n"
            ),
        ),
        (
            "base64 with junk, whitespace and no padding",
            true,
            format!(
                "{HEAD}Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n{ATTACHMENT}\r\n{}--B--\r\n",
                b.chars()
                    .filter(|&c| c != '=')
                    .enumerate()
                    .map(|(i, c)| match i % 10 {
                        3 => format!("{c} "),
                        7 => format!("{c}\t*"),
                        _ => c.to_string(),
                    })
                    .collect::<String>()
            ),
        ),
        (
            "base64 going on after its padding",
            true,
            format!(
                "{HEAD}Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n{ATTACHMENT}\r\nQUJD=\r\n{b}--B--\r\n"
            ),
        ),
        (
            "attached message with a broken header section",
            true,
            format!(
                "{HEAD}Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n{text}--B\r\nContent-Type: message/rfc822\r\n\r\n\
                 this line is not a header field\r\nContent-Type: multipart/mixed; boundary=\"I\"\r\n\r\n--I\r\n{ATTACHMENT}\r\n{b}--I--\r\n--B--\r\n"
            ),
        ),
        (
            "broken RFC 2231 continuations",
            false,
            format!(
                "{HEAD}Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n{text}--B\r\n\
                 Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\
                 Content-Disposition: attachment; filename*0=\"ev\"; filename*2=\"il.exe\"\r\n\r\n{b}--B--\r\n"
            ),
        ),
        (
            "a part after the closing delimiter",
            true,
            format!(
                "{HEAD}Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n{text}--B--\r\n--B\r\n{ATTACHMENT}\r\n{b}--B--\r\n"
            ),
        ),
        (
            "Content-Type name and Content-Disposition filename differ",
            false,
            format!(
                "{HEAD}Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n\
                 Content-Type: application/pdf; name=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\
                 Content-Disposition: attachment; filename=\"evil.exe\"\r\n\r\n{b}--B--\r\n"
            ),
        ),
        (
            "file name in an RFC 2047 encoded word",
            false,
            format!(
                "{HEAD}Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n\
                 Content-Type: application/octet-stream; name=\"=?utf-8?B?ZXZpbC5leGU=?=\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{b}--B--\r\n"
            ),
        ),
        (
            "attached message encoded in base64",
            false,
            format!(
                "{HEAD}Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n{text}--B\r\n\
                 Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--B--\r\n",
                base64_lines(
                    format!("{HEAD}Content-Type: multipart/mixed; boundary=\"I\"\r\n\r\n--I\r\n{ATTACHMENT}\r\n{b}--I--\r\n")
                        .as_bytes()
                )
            ),
        ),
        (
            "nested multipart reusing its parent's boundary (RFC 2046 forbids it)",
            true,
            format!(
                "{HEAD}Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n\
                 --B\r\n{ATTACHMENT}\r\n{b}--B--\r\n--B--\r\n"
            ),
        ),
        (
            "x-uuencode transfer encoding",
            false,
            format!(
                "{HEAD}Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n\
                 Content-Type: application/octet-stream; name=\"evil.exe\"\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n{}--B--\r\n",
                decode_common::uuencode("evil.exe", &eicar())
            ),
        ),
        (
            "bare LF line ends",
            false,
            format!(
                "{HEAD}Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n{text}--B\r\n{ATTACHMENT}\r\n{b}--B--\r\n"
            )
            .replace("\r\n", "\n"),
        ),
        (
            "a multipart in a text part's clothing, no delimiters at all",
            true,
            format!(
                "{HEAD}Content-Type: multipart/mixed\r\n\r\nHello,\r\n\r\n{ATTACHMENT}\r\n{b}\r\nBye.\r\n"
            ),
        ),
    ];
    v.drain(..)
        .map(|(n, d, m)| (n, d, m.into_bytes()))
        .collect()
}

#[test]
fn every_shape_yields_the_payload_its_name_and_the_damage() {
    let e = eicar();
    let rules = RuleSet::defaults();
    for (shape, damaged, msg) in shapes() {
        let d = message(&msg);
        let leaves: Vec<_> = d.leaves().map(|p| p.data.to_vec().unwrap()).collect();
        assert!(
            leaves.contains(&e),
            "{shape}: no part decodes to the EICAR bytes; parts: {:#?}",
            d.parts
        );
        let hits = check(&d, &rules);
        assert!(
            hits.iter().any(|h| h.key.contains("evil.exe")),
            "{shape}: the .exe name is not banned: {hits:?}; parts: {:#?}",
            d.parts
        );
        let mime_errors: Vec<_> = d.bad_header.iter().filter(|b| b.minor == 1).collect();
        if damaged {
            assert!(
                !mime_errors.is_empty(),
                "{shape}: the damage is not reported"
            );
        }
        assert!(d.unchecked.is_empty(), "{shape}: {:?}", d.unchecked);
    }
}

#[test]
fn legal_shapes_are_not_called_damaged() {
    for (shape, damaged, msg) in shapes() {
        if damaged || shape.contains("unterminated") || shape.contains("continuations") {
            continue;
        }
        let d = message(&msg);
        assert!(
            d.bad_header.iter().all(|b| b.minor != 1),
            "{shape}: {:?}",
            d.bad_header
        );
    }
}

#[tokio::test]
async fn every_shape_is_caught_by_the_filter_with_clamd() {
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        c.av.primary = vec![clamd_at(clamd_socket(), 30)];
        c.policy.final_virus_destiny = Destiny::Reject;
        c.policy.final_banned_destiny = Destiny::Reject;
        // Only the virus lover gets past the virus check: the banned rules must stop it.
        c.recipients.insert(
            "lover@example.com".into(),
            "virus_lover = true".parse().unwrap(),
        );
    })
    .await;
    for (shape, _, msg) in shapes() {
        let r = rig
            .client()
            .await
            .send_mail(false, "s@example.org", &["u@example.com"], &msg)
            .await;
        assert!(
            r.starts_with("554 5.7.0") && r.contains("INFECTED: Eicar-Test-Signature"),
            "{shape}: {r}"
        );
        let r = rig
            .client()
            .await
            .send_mail(false, "s@example.org", &["lover@example.com"], &msg)
            .await;
        assert!(
            r.starts_with("554 5.7.0") && r.contains("BANNED"),
            "{shape} (virus lover): {r}"
        );
    }
    assert!(rig.sink.received().is_empty(), "nothing may be delivered");
    rig.stop().await;
}
