//! The reply contract (`pipeline::contract`), row by row: what the next hop does decides what
//! Postfix hears, and we never answer 250 for mail the next hop did not take. The plain rows
//! are a table; the rows that look inside a DSN or need their own set-up follow it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use amavisd_testing::sink::SinkMode;

/// One row of the contract: how the next hop behaves, what the client sends, and what it
/// must hear.
struct Row {
    what: &'static str,
    next_hop: SinkMode,
    /// The next hop speaks LMTP (one reply per recipient after DATA).
    next_hop_lmtp: bool,
    /// The next hop advertises no extensions (no PIPELINING: one command at a time).
    plain: bool,
    /// We are spoken to in LMTP.
    lmtp: bool,
    rcpts: &'static [&'static str],
    /// A message too large to sit in socket buffers (a drop mid-transfer is seen).
    big: bool,
    /// How each reply line starts: one for SMTP, one per recipient for LMTP.
    replies: &'static [&'static str],
    /// Text the reply must contain (empty: nothing more).
    contains: &'static str,
    /// The recipients of each message the next hop kept, when the row says.
    delivered: Option<&'static [&'static [&'static str]]>,
    /// The next hop must get a DSN from us.
    dsn: bool,
}

const ROW: Row = Row {
    what: "",
    next_hop: SinkMode::Accept,
    next_hop_lmtp: false,
    plain: false,
    lmtp: false,
    rcpts: &["a@example.com"],
    big: false,
    replies: &[],
    contains: "",
    delivered: None,
    dsn: false,
};

const ROWS: &[Row] = &[
    Row {
        what: "all delivered: 250 quoting the next hop",
        rcpts: &["a@example.com", "b@example.com"],
        replies: &["250 2.0.0 from MTA(smtp:[127.0.0.1]:"],
        contains: "queued as SINK1",
        delivered: Some(&[&["RCPT TO:<a@example.com>", "RCPT TO:<b@example.com>"]]),
        ..ROW
    },
    Row {
        what: "SMTP, one recipient deferred: the whole message waits, nobody gets a copy",
        rcpts: &["ok@example.com", "rcpt-temp@example.com"],
        replies: &["450 4.2.0"],
        delivered: Some(&[]),
        ..ROW
    },
    Row {
        what: "LMTP, one recipient deferred: a reply per recipient",
        lmtp: true,
        rcpts: &[
            "ok@example.com",
            "rcpt-temp@example.com",
            "rcpt-perm@example.com",
        ],
        replies: &["250 2.0.0", "450 4.2.0", "550 5.1.1"],
        delivered: Some(&[&["RCPT TO:<ok@example.com>"]]),
        ..ROW
    },
    Row {
        what: "all recipients refused: 5xx",
        rcpts: &["rcpt-perm@example.com"],
        replies: &["550 5.1.1"],
        ..ROW
    },
    Row {
        what: "the transaction refused: 5xx",
        next_hop: SinkMode::Reject,
        replies: &["554 5.7.1"],
        ..ROW
    },
    Row {
        what: "MAIL deferred: 451",
        next_hop: SinkMode::TempFail,
        replies: &["451 4.3.0"],
        ..ROW
    },
    Row {
        what: "next hop hangs at the greeting: 451",
        next_hop: SinkMode::HangGreeting,
        replies: &["451 4.4.2"],
        ..ROW
    },
    Row {
        what: "next hop drops mid-transfer: 451",
        next_hop: SinkMode::DropInData,
        big: true,
        replies: &["451 4."],
        ..ROW
    },
    Row {
        what: "next hop drops after the dot: 451",
        next_hop: SinkMode::DropAfterData,
        replies: &["451 4.4.2"],
        ..ROW
    },
    Row {
        what: "next hop silent after the dot: 451",
        next_hop: SinkMode::HangAfterData,
        replies: &["451 4.4.2"],
        contains: "timed out",
        ..ROW
    },
    Row {
        what: "LMTP in and out: each recipient gets the next hop's own answer",
        next_hop_lmtp: true,
        lmtp: true,
        rcpts: &[
            "ok@example.com",
            "data-temp@example.com",
            "data-perm@example.com",
        ],
        replies: &["250 2.0.0", "452 4.2.2", "552 5.2.2"],
        ..ROW
    },
    Row {
        what: "SMTP in, mixed 2xx/4xx after DATA: never a 250 that would lose the deferred copy",
        next_hop_lmtp: true,
        rcpts: &["ok@example.com", "data-temp@example.com"],
        replies: &["452 4.2.2"],
        ..ROW
    },
    Row {
        what: "SMTP in, mixed 2xx/5xx after DATA: 250 and a DSN",
        next_hop_lmtp: true,
        rcpts: &["ok@example.com", "data-perm@example.com"],
        replies: &["250 2.0.0"],
        dsn: true,
        ..ROW
    },
    Row {
        what: "no PIPELINING, all delivered",
        plain: true,
        rcpts: &["a@example.com", "b@example.com"],
        replies: &["250 2.0.0"],
        delivered: Some(&[&["RCPT TO:<a@example.com>", "RCPT TO:<b@example.com>"]]),
        ..ROW
    },
    Row {
        what: "no PIPELINING, SMTP, one recipient deferred: nobody gets a copy",
        plain: true,
        rcpts: &["ok@example.com", "rcpt-temp@example.com"],
        replies: &["450 4.2.0"],
        delivered: Some(&[]),
        ..ROW
    },
    Row {
        what: "no PIPELINING, LMTP: a reply per recipient",
        plain: true,
        lmtp: true,
        rcpts: &[
            "ok@example.com",
            "rcpt-temp@example.com",
            "rcpt-perm@example.com",
        ],
        replies: &["250 2.0.0", "450 4.2.0", "550 5.1.1"],
        delivered: Some(&[&["RCPT TO:<ok@example.com>"]]),
        ..ROW
    },
    Row {
        what: "no PIPELINING, MAIL deferred: 451",
        plain: true,
        next_hop: SinkMode::TempFail,
        replies: &["451 4.3.0"],
        ..ROW
    },
];

/// A message large enough that the body cannot fit in socket buffers before a drop is seen.
fn big() -> Vec<u8> {
    let mut big = SIMPLE.to_vec();
    big.extend(
        std::iter::repeat_n(b"0123456789abcdef0123456789abcdef\r\n".as_slice(), 200_000).flatten(),
    );
    big
}

async fn run(row: &Row) {
    let what = row.what;
    let rig = Rig::start(row.next_hop, row.next_hop_lmtp).await;
    rig.sink
        .plain
        .store(row.plain, std::sync::atomic::Ordering::Relaxed);
    let mut c = rig.client().await;
    let msg = if row.big { big() } else { SIMPLE.to_vec() };
    let r = c
        .send_mail(row.lmtp, "s@example.org", row.rcpts, &msg)
        .await;
    let lines: Vec<&str> = r.lines().collect();
    if row.lmtp {
        assert_eq!(lines.len(), row.replies.len(), "{what}: {r}");
    }
    for (line, want) in lines.iter().zip(row.replies) {
        assert!(line.starts_with(want), "{what}: {r}");
    }
    assert!(r.contains(row.contains), "{what}: {r}");
    if let Some(delivered) = row.delivered {
        let got: Vec<Vec<String>> = rig.sink.received().into_iter().map(|m| m.rcpts).collect();
        assert_eq!(got, delivered, "{what}");
        if delivered.is_empty() {
            // Reset before DATA: not even a message started.
            assert_eq!(
                rig.sink.messages.load(std::sync::atomic::Ordering::Relaxed),
                0,
                "{what}"
            );
        }
    }
    if row.dsn {
        let dsn = || {
            rig.sink
                .received()
                .iter()
                .any(|m| m.mail.starts_with("MAIL FROM:<>"))
        };
        assert!(eventually(dsn).await, "{what}");
    }
    rig.stop().await;
}

#[tokio::test]
async fn contract_rows() {
    // Each row has its own filter and next hop: they run side by side (the timeouts would
    // add up otherwise), and a failing row fails the test with its own message.
    let rows: Vec<_> = ROWS.iter().map(|row| tokio::spawn(run(row))).collect();
    for row in rows {
        if let Err(e) = row.await {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

#[tokio::test]
async fn next_hop_down_gives_451() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = free_port();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&format!("smtp:[127.0.0.1]:{port}"), tmp.path());
    let server = amavisd::server::start(valid(cfg)).await.unwrap();
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

#[tokio::test]
async fn next_hop_that_never_ends_its_reply_gives_451_before_the_timeout() {
    // A greeting of endless continuation lines: refused at smtp-proto's 4096-byte reply
    // limit, not read until the deadline.
    let next_hop = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = next_hop.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut s, _)) = next_hop.accept().await {
            tokio::spawn(async move {
                let line = format!("220-{}\r\n", "x".repeat(1000));
                while s.write_all(line.as_bytes()).await.is_ok() {}
            });
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(&format!("smtp:[127.0.0.1]:{port}"), tmp.path());
    cfg.forward.connect_timeout = 30;
    let server = amavisd::server::start(valid(cfg)).await.unwrap();
    let mut c = Client::connect(server.addrs[0]).await;
    let began = std::time::Instant::now();
    let r = c
        .send_mail(false, "s@example.org", &["a@example.com"], SIMPLE)
        .await;
    assert!(r.starts_with("451 "), "{r}");
    assert!(r.contains("ResponseTooLong"), "{r}");
    assert!(began.elapsed() < std::time::Duration::from_secs(20));
    server.stop().await;
}
