//! Policy banks and per-recipient settings on the wire: banks chosen by listening port, by
//! MYNETS and client network through XFORWARD ADDR, and by sender; every destiny over SMTP and
//! LMTP; mixed recipients (a lover and a normal recipient) with one SMTP reply or one LMTP
//! reply each; copies that need different changes delivered in separate transactions.
//! Banned file names stand in for a bad category here: no scanner is needed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod decode_common;
use common::*;
use decode_common::*;

use amavisd::config::{Config, Listener};
use amavisd::message::Destiny;
use amavisd::policy_bank::BankSelect;
use amavisd_testing::sink::SinkMode;

fn table(text: &str) -> toml::Table {
    text.parse().expect("test TOML")
}

fn bank(c: &mut Config, name: &str, text: &str) {
    c.policy_bank.insert(name.into(), table(text));
}

fn select(bank: &str) -> BankSelect {
    BankSelect {
        bank: bank.into(),
        port: None,
        socket: None,
        client: vec![],
        sender: vec![],
    }
}

#[tokio::test]
async fn bank_by_listening_port() {
    let port = free_port();
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        c.listen.push(Listener {
            inet: Some(format!("127.0.0.1:{port}")),
            unix: None,
            protocol: Default::default(),
        });
        bank(c, "SUBMISSION", "final_banned_destiny = \"reject\"");
        c.policy_bank_select.push(BankSelect {
            port: Some(port),
            ..select("SUBMISSION")
        });
    })
    .await;
    let sub: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let r = send_xf(
        sub,
        false,
        "",
        "s@example.org",
        &["u@example.com"],
        &exe_mail(),
    )
    .await;
    assert!(
        r.starts_with("554 5.7.0 Reject") && r.contains("BANNED"),
        "{r}"
    );
    let r = send_xf(
        rig.addr,
        false,
        "",
        "s@example.org",
        &["u@example.com"],
        &exe_mail(),
    )
    .await;
    assert!(r.starts_with("250 2.7.0 Ok, discarded"), "{r}");
    rig.stop().await;
}

#[tokio::test]
async fn mynets_client_network_and_sender_banks() {
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        // Our users may send executables; partners' banned mail is refused; the trusted
        // sender's mail passes.
        bank(c, "MYNETS", "bypass_banned_checks = true");
        bank(c, "PARTNERS", "final_banned_destiny = \"reject\"");
        bank(c, "TRUSTED", "banned_files_lover = true");
        c.policy_bank_select.push(BankSelect {
            // First match decides: the exclusion goes first.
            client: vec!["!192.0.2.66".into(), "192.0.2.0/24".into()],
            ..select("PARTNERS")
        });
        c.policy_bank_select.push(BankSelect {
            sender: vec![".trusted.example".into()],
            ..select("TRUSTED")
        });
    })
    .await;
    let rows = [
        ("ADDR=10.1.2.3", "s@example.org", "250 2.0.0", "MYNETS"),
        (
            "ADDR=192.0.2.9",
            "s@example.org",
            "554 5.7.0 Reject",
            "PARTNERS",
        ),
        (
            "ADDR=192.0.2.66",
            "s@example.org",
            "250 2.7.0",
            "excluded from PARTNERS",
        ),
        ("ADDR=198.51.100.1", "s@example.org", "250 2.7.0", "no bank"),
        (
            "ADDR=198.51.100.1",
            "a@mx.trusted.example",
            "250 2.0.0",
            "TRUSTED",
        ),
        // Our direct peer (127.0.0.1, the MTA) is not the client: no XFORWARD, no MYNETS.
        ("", "s@example.org", "250 2.7.0", "no XFORWARD"),
    ];
    for (xf, from, want, what) in rows {
        let r = send_xf(rig.addr, false, xf, from, &["u@example.com"], &exe_mail()).await;
        assert!(r.starts_with(want), "{what}: {r}");
    }
    assert_eq!(rig.sink.received().len(), 2);
    rig.stop().await;
}

/// Each destiny for a banned copy, over SMTP and LMTP, and what the next hop gets.
#[tokio::test]
async fn every_destiny_over_smtp_and_lmtp() {
    let rows: [(Destiny, &str, usize); 5] = [
        (Destiny::Pass, "250 2.0.0", 1),
        (Destiny::Discard, "250 2.7.0 Ok, discarded", 0),
        (Destiny::Bounce, "250 2.7.0 Ok, discarded", 1), // the DSN
        (Destiny::Reject, "554 5.7.0 Reject", 0),
        (Destiny::Tempfail, "450 4.7.0 Temporary failure", 0),
    ];
    for (destiny, want, sink_gets) in rows {
        for lmtp in [false, true] {
            let rig = Rig::start_with(SinkMode::Accept, false, |c| {
                c.policy.final_banned_destiny = destiny
            })
            .await;
            let rcpts = ["u@example.com", "v@example.com"];
            let r = send_xf(rig.addr, lmtp, "", "s@example.org", &rcpts, &exe_mail()).await;
            let n = if lmtp { 2 } else { 1 };
            let hits = r.lines().filter(|l| l.starts_with(want)).count();
            assert_eq!(hits, n, "{destiny:?} lmtp={lmtp}: {r}");
            let got = rig.sink.received();
            assert_eq!(got.len(), sink_gets, "{destiny:?} lmtp={lmtp}");
            if destiny == Destiny::Bounce {
                assert!(got[0].mail.contains("MAIL FROM:<>"));
                let dsn = String::from_utf8_lossy(&got[0].data);
                assert!(
                    dsn.contains("Final-Recipient: rfc822; u@example.com"),
                    "{dsn}"
                );
                assert!(
                    dsn.contains("Final-Recipient: rfc822; v@example.com"),
                    "{dsn}"
                );
                assert!(
                    !dsn.contains("not really"),
                    "blocked content never goes back"
                );
            }
            rig.stop().await;
        }
    }
}

#[tokio::test]
async fn mixed_recipients_lover_gets_it_the_other_does_not() {
    for (destiny, smtp_reply, lmtp_other) in [
        (Destiny::Discard, "250 2.0.0", "250 2.7.0"),
        (Destiny::Reject, "250 2.0.0", "554 5.7.0"),
    ] {
        let rig = Rig::start_with(SinkMode::Accept, false, |c| {
            c.policy.final_banned_destiny = destiny;
            c.recipients.insert(
                "lover@example.com".into(),
                table("banned_files_lover = true"),
            );
        })
        .await;
        let rcpts = ["lover@example.com", "other@example.com"];
        // SMTP: one reply; the lover's copy delivered with the alert field.
        let r = send_xf(rig.addr, false, "", "s@example.org", &rcpts, &exe_mail()).await;
        assert!(r.starts_with(smtp_reply), "{destiny:?}: {r}");
        let got = rig.sink.received();
        assert_eq!(got[0].rcpts.len(), 1);
        assert!(got[0].rcpts[0].contains("<lover@example.com>"));
        let text = String::from_utf8_lossy(&got[0].data);
        assert!(
            text.contains("X-Amavis-Alert: BANNED, message contains invoice.pdf.exe\r\n"),
            "{text}"
        );
        if destiny == Destiny::Reject {
            // The rejected copy is reported to the sender by our DSN, the client heard 250.
            assert_eq!(got.len(), 2);
            assert!(got[1].mail.contains("MAIL FROM:<>"));
            assert!(String::from_utf8_lossy(&got[1].data).contains("other@example.com"));
        } else {
            assert_eq!(got.len(), 1);
        }
        // LMTP: one reply each.
        let r = send_xf(rig.addr, true, "", "s@example.org", &rcpts, &exe_mail()).await;
        let lines: Vec<&str> = r.lines().collect();
        assert!(lines[0].starts_with("250 2.0.0"), "{r}");
        assert!(lines[1].starts_with(lmtp_other), "{r}");
        rig.stop().await;
    }
}

#[tokio::test]
async fn different_changes_go_in_separate_transactions() {
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        c.policy.banned_files_lover = true;
        c.policy.subject_tag_banned = "[BANNED] ".into();
        c.policy.addr_extension_banned = "banned".into();
    })
    .await;
    let mut msg = b"X-Spam-Flag: YES\r\nX-Spam-Score: -100\r\n".to_vec();
    msg.extend_from_slice(&exe_mail());
    let rcpts = ["u@example.com", "far@elsewhere.org", "v@example.com"];
    let r = send_xf(rig.addr, false, "", "s@example.org", &rcpts, &msg).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let got = rig.sink.received();
    assert_eq!(got.len(), 2, "local and non-local copies differ");
    let local = got.iter().find(|m| m.rcpts.len() == 2).expect("local copy");
    let far = got.iter().find(|m| m.rcpts.len() == 1).expect("far copy");
    // Local: extension, subject tag, forged X-Spam-* removed.
    assert!(
        local.rcpts[0].contains("<u+banned@example.com>"),
        "{:?}",
        local.rcpts
    );
    assert!(local.rcpts[1].contains("<v+banned@example.com>"));
    let l = String::from_utf8_lossy(&local.data);
    assert!(l.contains("\r\nSubject: [BANNED] test\r\n"), "{l}");
    assert!(
        !l.contains("X-Spam-Flag: YES") && !l.contains("X-Spam-Score: -100"),
        "{l}"
    );
    assert!(l.ends_with("--BOUNDARY--\r\n"), "body intact");
    // Not local: none of that.
    assert!(far.rcpts[0].contains("<far@elsewhere.org>"));
    let f = String::from_utf8_lossy(&far.data);
    assert!(
        f.contains("\r\nSubject: test\r\n") && f.contains("X-Spam-Flag: YES"),
        "{f}"
    );
    rig.stop().await;
}

#[tokio::test]
async fn soft_bounce_keeps_refused_mail_queued() {
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        c.policy.final_banned_destiny = Destiny::Reject;
        c.policy.soft_bounce = true;
    })
    .await;
    let r = send_xf(
        rig.addr,
        false,
        "",
        "s@example.org",
        &["u@example.com"],
        &exe_mail(),
    )
    .await;
    assert!(r.starts_with("450 4.7.0"), "{r}");
    rig.stop().await;
}

#[tokio::test]
async fn oversized_for_a_recipient_is_bounced_with_552() {
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        c.recipients.insert(
            "small@example.com".into(),
            table("message_size_limit = 100"),
        );
    })
    .await;
    let rcpts = ["small@example.com", "big@example.com"];
    let r = send_xf(rig.addr, true, "", "s@example.org", &rcpts, SIMPLE_LONG).await;
    let lines: Vec<&str> = r.lines().collect();
    assert!(lines[0].starts_with("250 2.7.0"), "bounced: {r}");
    assert!(lines[1].starts_with("250 2.0.0"), "{r}");
    let got = rig.sink.received();
    assert_eq!(got.len(), 2, "the copy for big@ and the DSN for small@");
    let dsn = got.iter().find(|m| m.mail.contains("<>")).expect("DSN");
    assert!(String::from_utf8_lossy(&dsn.data).contains("Status: 5.3.4"));
    rig.stop().await;
}

const SIMPLE_LONG: &[u8] = b"From: s@example.org\r\nTo: u@example.com\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nSubject: long\r\nMessage-ID: <long@example.org>\r\n\r\nThis message is longer than one hundred bytes, which is the limit for small@.\r\n";

#[tokio::test]
async fn admin_notice_and_recipient_warning() {
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        c.policy.banned_admin = "admin@example.com".into();
        c.policy.warn_banned_recip = true;
    })
    .await;
    let msg = mail_with_attachment(
        "filename=\"Rechnung.pdf.exe\"",
        b"x",
        "application/octet-stream",
    );
    let r = send_xf(
        rig.addr,
        false,
        "",
        "s@example.org",
        &["u@example.com"],
        &msg,
    )
    .await;
    assert!(r.starts_with("250 2.7.0"), "{r}");
    // Notices go out in the background.
    assert!(eventually(|| rig.sink.received().len() == 2).await);
    let got = rig.sink.received();
    let to = |a: &str| {
        got.iter()
            .find(|m| m.rcpts[0].contains(a))
            .unwrap_or_else(|| panic!("no notice to {a}"))
    };
    let admin = to("<admin@example.com>");
    assert!(admin.mail.contains("MAIL FROM:<>"));
    let text = String::from_utf8_lossy(&admin.data);
    assert!(
        text.starts_with("Subject: BANNED (Rechnung.pdf.exe) in mail FROM <s@example.org>\r\n"),
        "{text}"
    );
    assert!(text.contains("not delivered to: <u@example.com>"), "{text}");
    let warn = String::from_utf8_lossy(&to("<u@example.com>").data).into_owned();
    assert!(
        warn.contains("It contains a banned part: Rechnung.pdf.exe"),
        "{warn}"
    );
    rig.stop().await;
}

#[tokio::test]
async fn bank_by_unix_socket_and_rule_set_per_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("amavisd.sock");
    let s2 = sock.clone();
    let rig = Rig::start_with(SinkMode::Accept, false, move |c| {
        c.listen.push(Listener {
            inet: None,
            unix: Some(s2.clone()),
            protocol: Default::default(),
        });
        bank(c, "LOCALSOCK", "final_banned_destiny = \"reject\"");
        c.policy_bank_select.push(BankSelect {
            socket: Some(s2),
            ..select("LOCALSOCK")
        });
        // A rule set that allows everything, for one recipient.
        c.banned.rule_sets.insert(
            "LAX".into(),
            vec![amavisd::banned::RuleSpec {
                regex: Some(".".into()),
                glob: None,
                action: amavisd::banned::Action::Allow,
                why: "this recipient takes anything".into(),
            }],
        );
        c.recipients
            .insert("lax@example.com".into(), table("banned_rules = \"LAX\""));
    })
    .await;
    let stream = tokio::net::UnixStream::connect(&sock).await.unwrap();
    let mut c = Client::from_stream(stream).await;
    let r = c
        .send_mail(
            true,
            "s@example.org",
            &["strict@example.com", "lax@example.com"],
            &exe_mail(),
        )
        .await;
    let lines: Vec<&str> = r.lines().collect();
    assert!(
        lines[0].starts_with("554 5.7.0 Reject"),
        "bank by socket: {r}"
    );
    assert!(lines[1].starts_with("250 2.0.0"), "LAX rule set: {r}");
    let got = rig.sink.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].rcpts[0].contains("<lax@example.com>"));
    rig.stop().await;
}
