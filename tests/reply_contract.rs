//! One test per row of the reply contract (DESIGN.md §3): what the next hop does decides what
//! Postfix hears, and we never answer 250 for mail the next hop did not take.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use amavisd::sink::SinkMode;

#[tokio::test]
async fn all_delivered_gives_250_quoting_next_hop() {
    let rig = Rig::start(SinkMode::Accept, false).await;
    let mut c = rig.client().await;
    let r = c
        .send_mail(
            false,
            "s@example.org",
            &["a@example.com", "b@example.com"],
            SIMPLE,
        )
        .await;
    assert!(r.starts_with("250 2.0.0 from MTA(smtp:[127.0.0.1]:"), "{r}");
    assert!(r.contains("queued as SINK1"), "{r}");
    let got = rig.sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpts.len(), 2);
    rig.stop().await;
}

#[tokio::test]
async fn next_hop_down_gives_451() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = free_port();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&format!("smtp:[127.0.0.1]:{port}"), tmp.path());
    let server = amavisd::server::start(cfg).await.unwrap();
    let mut c = Client::connect(server.addrs[0]).await;
    let r = c
        .send_mail(false, "s@example.org", &["a@example.com"], SIMPLE)
        .await;
    assert!(r.starts_with("451 4.4.1 "), "{r}");
    // LMTP inbound: one 451 per recipient.
    let mut c = Client::connect(server.addrs[0]).await;
    let r = c
        .send_mail(
            true,
            "s@example.org",
            &["a@example.com", "b@example.com"],
            SIMPLE,
        )
        .await;
    assert_eq!(r.matches("451 4.4.1").count(), 2, "{r}");
    server.stop().await;
}

#[tokio::test]
async fn one_recipient_deferred_smtp_aborts_whole_message() {
    let rig = Rig::start(SinkMode::Accept, false).await;
    let mut c = rig.client().await;
    let r = c
        .send_mail(
            false,
            "s@example.org",
            &["ok@example.com", "rcpt-temp@example.com"],
            SIMPLE,
        )
        .await;
    assert!(r.starts_with("450 4.2.0"), "{r}");
    // Nobody got a copy: the downstream transaction was reset before DATA.
    assert!(rig.sink.received().is_empty());
    assert_eq!(
        rig.sink.messages.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    rig.stop().await;
}

#[tokio::test]
async fn one_recipient_deferred_lmtp_gets_per_recipient_replies() {
    let rig = Rig::start(SinkMode::Accept, false).await;
    let mut c = rig.client().await;
    let r = c
        .send_mail(
            true,
            "s@example.org",
            &[
                "ok@example.com",
                "rcpt-temp@example.com",
                "rcpt-perm@example.com",
            ],
            SIMPLE,
        )
        .await;
    let lines: Vec<&str> = r.lines().collect();
    assert_eq!(lines.len(), 3, "{r}");
    assert!(lines[0].starts_with("250 2.0.0"), "{r}");
    assert!(lines[1].starts_with("450 4.2.0"), "{r}");
    assert!(lines[2].starts_with("550 5.1.1"), "{r}");
    // Only the accepted recipient got the message.
    let got = rig.sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpts, ["RCPT TO:<ok@example.com>"]);
    rig.stop().await;
}

#[tokio::test]
async fn some_refused_smtp_gets_250_and_a_dsn() {
    let rig = Rig::start(SinkMode::Accept, false).await;
    let mut c = rig.client().await;
    c.cmd("EHLO client").await;
    c.cmd("MAIL FROM:<sender@example.org> RET=HDRS ENVID=env+2B1")
        .await;
    c.cmd("RCPT TO:<ok@example.com>").await;
    c.cmd("RCPT TO:<rcpt-perm@example.com> ORCPT=rfc822;rcpt-perm@example.com")
        .await;
    c.cmd("DATA").await;
    c.send(&stuff(SIMPLE)).await;
    let r = c.reply().await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let got = rig.sink.received();
    assert_eq!(got.len(), 2, "the message and the DSN");
    assert_eq!(got[0].rcpts, ["RCPT TO:<ok@example.com>"]);
    let dsn = &got[1];
    assert!(dsn.mail.starts_with("MAIL FROM:<>"), "{}", dsn.mail);
    assert_eq!(dsn.rcpts, ["RCPT TO:<sender@example.org>"]);
    let text = String::from_utf8_lossy(&dsn.data);
    for want in [
        "report-type=delivery-status",
        "Original-Envelope-Id: env+2B1",
        "Original-Recipient: rfc822;rcpt-perm@example.com",
        "Final-Recipient: rfc822; rcpt-perm@example.com",
        "Status: 5.1.1",
        "Content-Type: text/rfc822-headers",
        "Message-ID: <m1@example.org>",
    ] {
        assert!(text.contains(want), "DSN lacks {want:?}:\n{text}");
    }
    assert!(!text.contains("Hello."), "RET=HDRS: no body in the DSN");
    rig.stop().await;
}

#[tokio::test]
async fn no_dsn_for_null_sender_or_notify_never() {
    let rig = Rig::start(SinkMode::Accept, false).await;
    let mut c = rig.client().await;
    let r = c
        .send_mail(
            false,
            "",
            &["ok@example.com", "rcpt-perm@example.com"],
            SIMPLE,
        )
        .await;
    assert!(r.starts_with("250"), "{r}");
    c.cmd("MAIL FROM:<s@example.org>").await;
    c.cmd("RCPT TO:<ok@example.com>").await;
    c.cmd("RCPT TO:<rcpt-perm@example.com> NOTIFY=NEVER").await;
    c.cmd("DATA").await;
    c.send(&stuff(SIMPLE)).await;
    assert!(c.reply().await.starts_with("250"));
    let got = rig.sink.received();
    assert_eq!(got.len(), 2, "two messages, no DSN");
    assert!(
        got.iter()
            .all(|m| !m.mail.starts_with("MAIL FROM:<>") || m.rcpts[0].contains("ok@"))
    );
    rig.stop().await;
}

#[tokio::test]
async fn all_refused_gives_5xx() {
    let rig = Rig::start(SinkMode::Accept, false).await;
    let mut c = rig.client().await;
    let r = c
        .send_mail(false, "s@example.org", &["rcpt-perm@example.com"], SIMPLE)
        .await;
    assert!(r.starts_with("550 5.1.1"), "{r}");
    let rig2 = Rig::start(SinkMode::Reject, false).await;
    let mut c = rig2.client().await;
    let r = c
        .send_mail(false, "s@example.org", &["a@example.com"], SIMPLE)
        .await;
    assert!(r.starts_with("554 5.7.1"), "{r}");
    rig.stop().await;
    rig2.stop().await;
}

#[tokio::test]
async fn mail_deferred_gives_451() {
    let rig = Rig::start(SinkMode::TempFail, false).await;
    let mut c = rig.client().await;
    let r = c
        .send_mail(false, "s@example.org", &["a@example.com"], SIMPLE)
        .await;
    assert!(r.starts_with("451 4.3.0"), "{r}");
    rig.stop().await;
}

#[tokio::test]
async fn next_hop_hangs_at_greeting_gives_451() {
    let rig = Rig::start(SinkMode::HangGreeting, false).await;
    let mut c = rig.client().await;
    let r = c
        .send_mail(false, "s@example.org", &["a@example.com"], SIMPLE)
        .await;
    assert!(r.starts_with("451 4.4.2"), "{r}");
    rig.stop().await;
}

#[tokio::test]
async fn next_hop_drops_mid_transfer_gives_451() {
    let rig = Rig::start(SinkMode::DropInData, false).await;
    let mut c = rig.client().await;
    // Large enough that the body cannot fit in socket buffers before the drop is seen.
    let mut big = SIMPLE.to_vec();
    big.extend(
        std::iter::repeat_n(b"0123456789abcdef0123456789abcdef\r\n".as_slice(), 200_000).flatten(),
    );
    let r = c
        .send_mail(false, "s@example.org", &["a@example.com"], &big)
        .await;
    assert!(r.starts_with("451 4."), "{r}");
    rig.stop().await;
}

#[tokio::test]
async fn next_hop_drops_after_data_gives_451() {
    let rig = Rig::start(SinkMode::DropAfterData, false).await;
    let mut c = rig.client().await;
    let r = c
        .send_mail(false, "s@example.org", &["a@example.com"], SIMPLE)
        .await;
    assert!(r.starts_with("451 4.4.2"), "{r}");
    rig.stop().await;
}

#[tokio::test]
async fn next_hop_silent_after_data_gives_451() {
    let rig = Rig::start(SinkMode::HangAfterData, false).await;
    let mut c = rig.client().await;
    let r = c
        .send_mail(false, "s@example.org", &["a@example.com"], SIMPLE)
        .await;
    assert!(r.starts_with("451 4.4.2"), "{r}");
    assert!(r.contains("timed out"), "{r}");
    rig.stop().await;
}

#[tokio::test]
async fn lmtp_next_hop_per_recipient_after_data() {
    let rig = Rig::start(SinkMode::Accept, true).await;
    // LMTP in: each recipient gets the next hop's own answer.
    let mut c = rig.client().await;
    let r = c
        .send_mail(
            true,
            "s@example.org",
            &[
                "ok@example.com",
                "data-temp@example.com",
                "data-perm@example.com",
            ],
            SIMPLE,
        )
        .await;
    let lines: Vec<&str> = r.lines().collect();
    assert!(lines[0].starts_with("250 2.0.0"), "{r}");
    assert!(lines[1].starts_with("452 4.2.2"), "{r}");
    assert!(lines[2].starts_with("552 5.2.2"), "{r}");
    // SMTP in, mixed 2xx/4xx after DATA: 451, never a 250 that would lose the deferred copy.
    let mut c = rig.client().await;
    let r = c
        .send_mail(
            false,
            "s@example.org",
            &["ok@example.com", "data-temp@example.com"],
            SIMPLE,
        )
        .await;
    assert!(r.starts_with("452 4.2.2"), "{r}");
    // SMTP in, mixed 2xx/5xx after DATA: 250 and a DSN.
    let mut c = rig.client().await;
    let r = c
        .send_mail(
            false,
            "s@example.org",
            &["ok@example.com", "data-perm@example.com"],
            SIMPLE,
        )
        .await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    assert!(
        eventually(|| rig
            .sink
            .received()
            .iter()
            .any(|m| m.mail.starts_with("MAIL FROM:<>")))
        .await
    );
    rig.stop().await;
}

#[tokio::test]
async fn stale_cached_connection_is_replaced_before_anything_is_sent() {
    let rig = Rig::start(SinkMode::CloseAfterMessage, false).await;
    for i in 0..3 {
        let mut c = rig.client().await;
        let r = c
            .send_mail(false, "s@example.org", &["u@example.com"], SIMPLE)
            .await;
        assert!(r.starts_with("250 2.0.0"), "message {i}: {r}");
    }
    assert_eq!(rig.sink.received().len(), 3, "each message exactly once");
    assert_eq!(
        rig.sink.sessions.load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    rig.stop().await;
}

#[tokio::test]
async fn spool_failure_gives_451() {
    // A message too big for memory must go to tempdir, which vanishes after start.
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        c.limits.memory_spool_limit = 1024
    })
    .await;
    std::fs::remove_dir_all(rig.tmp.path()).unwrap();
    let mut c = rig.client().await;
    let mut big = SIMPLE.to_vec();
    big.extend(std::iter::repeat_n(b"0123456789\r\n".as_slice(), 1000).flatten());
    let r = c
        .send_mail(false, "s@example.org", &["u@example.com"], &big)
        .await;
    assert!(r.starts_with("451 4.3.0"), "{r}");
    assert!(rig.sink.received().is_empty());
    // Small messages, kept in memory, still pass.
    let r = c
        .send_mail(false, "s@example.org", &["u@example.com"], SIMPLE)
        .await;
    assert!(r.starts_with("250"), "{r}");
    rig.stop().await;
}
