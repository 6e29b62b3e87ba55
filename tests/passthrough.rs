//! What reaches the next hop: the message byte-exact behind our two header fields, the envelope
//! parameters and the original client's XFORWARD attributes, over reused connections.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use amavisd_testing::sink::SinkMode;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn split_added(data: &[u8]) -> (String, &[u8]) {
    // Our fields are on top: Received: (4 lines), then X-Virus-Scanned: (1 line).
    let tag = b"X-Virus-Scanned: amavisd-rs at example.com\r\n";
    let at = data
        .windows(tag.len())
        .position(|w| w == tag)
        .expect("our X-Virus-Scanned");
    let pos = at + tag.len();
    (
        String::from_utf8_lossy(&data[..pos]).into_owned(),
        &data[pos..],
    )
}

#[tokio::test]
async fn message_byte_exact_behind_trace_headers() {
    // The 8-bit header is a bad header section; its alert field is not what this test is about.
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        c.limits.memory_spool_limit = 10_000;
        c.policy.bypass_header_checks = true;
    })
    .await;
    let mut msg =
        b"From: s@example.org\r\nSubject: =?utf-8?q?x?= \xc3\xa4\r\nMessage-ID: <m@x>\r\n\r\n"
            .to_vec();
    msg.extend_from_slice(b".leading dot\r\n..two dots\r\n.\r\n");
    msg.extend(std::iter::repeat_n(b'L', 3000)); // a line longer than 998
    msg.extend_from_slice(b"\r\n8-bit \xe4\xf6\xfc and a bare\nLF and a bare\rCR\r\n");
    for i in 0..3000 {
        msg.extend_from_slice(format!("body line {i}\r\n").as_bytes()); // spooled to disk
    }
    let mut c = rig.client().await;
    let r = c
        .send_mail(false, "s@example.org", &["u@example.com"], &msg)
        .await;
    assert!(r.starts_with("250"), "{r}");
    let got = rig.sink.received();
    let (added, rest) = split_added(&got[0].data);
    assert_eq!(rest, msg.as_slice(), "message must arrive byte-exact");
    assert!(added.starts_with("Received: from client.example ([127.0.0.1])\r\n by localhost (filter.example.com [127.0.0.1]) (amavisd-rs, port "), "{added}");
    assert!(added.contains(" with ESMTP id "), "{added}");
    assert!(added.contains(" for <u@example.com>;\r\n "), "{added}");
    assert!(
        added.ends_with("X-Virus-Scanned: amavisd-rs at example.com\r\n"),
        "{added}"
    );
    rig.stop().await;
}

#[tokio::test]
async fn headers_configurable() {
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        c.headers.add_received = false;
        c.headers.x_header_tag = "X-Scanned".into();
        c.headers.x_header_line = "by us at %d".into();
    })
    .await;
    let mut c = rig.client().await;
    c.send_mail(
        false,
        "s@example.org",
        &["u@example.com", "v@example.com"],
        SIMPLE,
    )
    .await;
    let got = rig.sink.received();
    let mut want = b"X-Scanned: by us at example.com\r\n".to_vec();
    want.extend_from_slice(SIMPLE);
    assert_eq!(got[0].data, want);
    rig.stop().await;
}

#[tokio::test]
async fn envelope_parameters_and_xforward_passed_on() {
    let rig = Rig::start(SinkMode::Accept, false).await;
    let mut c = rig.client().await;
    c.cmd("EHLO mx.example.com").await;
    c.cmd("XFORWARD NAME=client.example.net ADDR=192.0.2.7 PORT=4711 PROTO=ESMTP")
        .await;
    c.cmd("XFORWARD HELO=helo+20name IDENT=4Xyz SOURCE=REMOTE")
        .await;
    c.cmd("MAIL FROM:<s@example.org> SIZE=100 BODY=8BITMIME SMTPUTF8 RET=FULL ENVID=QQ+2B1")
        .await;
    c.cmd("RCPT TO:<u@example.com> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;u@example.com")
        .await;
    c.cmd("RCPT TO:<v@example.com> NOTIFY=NEVER").await;
    c.cmd("DATA").await;
    c.send(&stuff(SIMPLE)).await;
    assert!(c.reply().await.starts_with("250"));
    let got = &rig.sink.received()[0];
    let size = got.data.len();
    assert_eq!(
        got.mail,
        format!(
            "MAIL FROM:<s@example.org> SIZE={size} BODY=8BITMIME SMTPUTF8 RET=FULL ENVID=QQ+2B1"
        )
    );
    assert_eq!(
        got.rcpts,
        [
            "RCPT TO:<u@example.com> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;u@example.com",
            "RCPT TO:<v@example.com> NOTIFY=NEVER"
        ]
    );
    assert_eq!(
        got.xforward,
        [
            "XFORWARD NAME=client.example.net ADDR=192.0.2.7 PORT=4711 PROTO=ESMTP HELO=helo+20name IDENT=4Xyz SOURCE=REMOTE"
        ]
    );
    assert!(got.helo.starts_with("EHLO filter.example.com"));
    rig.stop().await;
}

#[tokio::test]
async fn parameters_dropped_when_next_hop_lacks_extension() {
    let rig = Rig::start(SinkMode::Accept, false).await;
    rig.sink.plain.store(true, Ordering::Relaxed);
    let mut c = rig.client().await;
    c.cmd("EHLO mx").await;
    c.cmd("XFORWARD ADDR=192.0.2.7").await;
    c.cmd("MAIL FROM:<s@example.org> BODY=8BITMIME RET=FULL")
        .await;
    c.cmd("RCPT TO:<u@example.com> NOTIFY=NEVER").await;
    c.cmd("DATA").await;
    c.send(&stuff(SIMPLE)).await;
    assert!(c.reply().await.starts_with("250"));
    let got = &rig.sink.received()[0];
    assert_eq!(got.mail, "MAIL FROM:<s@example.org>");
    assert_eq!(got.rcpts, ["RCPT TO:<u@example.com>"]);
    assert!(got.xforward.is_empty());
    rig.stop().await;
}

#[tokio::test]
async fn connections_to_next_hop_are_reused() {
    let rig = Rig::start(SinkMode::Accept, false).await;
    for _ in 0..5 {
        let mut c = rig.client().await;
        assert!(
            c.send_mail(false, "s@example.org", &["u@example.com"], SIMPLE)
                .await
                .starts_with("250")
        );
    }
    assert_eq!(rig.sink.received().len(), 5);
    assert_eq!(
        rig.sink.sessions.load(Ordering::Relaxed),
        1,
        "one cached connection, RSET between"
    );
    rig.stop().await;
}

#[tokio::test]
async fn lmtp_next_hop_gets_lhlo() {
    let rig = Rig::start(SinkMode::Accept, true).await;
    let mut c = rig.client().await;
    let r = c
        .send_mail(
            false,
            "s@example.org",
            &["u@example.com", "v@example.com"],
            SIMPLE,
        )
        .await;
    assert!(r.starts_with("250 2.0.0 from MTA(lmtp:[127.0.0.1]:"), "{r}");
    assert!(rig.sink.received()[0].helo.starts_with("LHLO "));
    rig.stop().await;
}

#[tokio::test]
async fn unix_socket_listener() {
    let sink = amavisd_testing::sink::Sink::new(SinkMode::Accept, true);
    let (port, task) = sink.spawn().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(&format!("smtp:[127.0.0.1]:{port}"), tmp.path());
    let sock = tmp.path().join("amavisd.sock");
    cfg.listen = vec![amavisd::config::Listener {
        inet: None,
        unix: Some(sock.clone()),
        protocol: amavisd::config::ListenProtocol::Lmtp,
    }];
    let server = amavisd::server::start(valid(cfg)).await.unwrap();
    let mut s = tokio::net::UnixStream::connect(&sock).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nDATA\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"354 End data with <CR><LF>.<CR><LF>\r\n") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    s.write_all(&stuff(SIMPLE)).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        buf[..n].starts_with(b"250 2.0.0"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    let data = &sink.received()[0].data;
    assert!(String::from_utf8_lossy(data).contains("(amavisd-rs, unix socket)"));
    server.stop().await;
    task.abort();
}

/// Sends one message whose DATA is `wire` (already stuffed and terminated) and returns the
/// replies after the dot; with `pipelined`, MAIL, RCPT and DATA go in one write and QUIT rides
/// behind the data in the same write, as a PIPELINING client sends them.
async fn send_wire(rig: &Rig, lmtp: bool, pipelined: bool, wire: &[u8]) -> String {
    let mut c = rig.client().await;
    let hello = if lmtp {
        "LHLO c.example"
    } else {
        "EHLO c.example"
    };
    assert!(c.cmd(hello).await.starts_with("250"));
    let env = "MAIL FROM:<s@example.org>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n";
    if pipelined {
        c.send(env.as_bytes()).await;
        for _ in 0..2 {
            assert!(c.reply().await.starts_with("250"));
        }
        assert!(c.reply().await.starts_with("354"));
    } else {
        for line in env.lines() {
            let r = c.cmd(line).await;
            assert!(r.starts_with("250") || r.starts_with("354"), "{r}");
        }
    }
    let mut data = wire.to_vec();
    if pipelined {
        data.extend_from_slice(b"QUIT\r\n");
    }
    c.send(&data).await;
    let reply = c.reply().await;
    let bye = if pipelined {
        c.reply().await
    } else {
        c.cmd("QUIT").await
    };
    assert!(bye.starts_with("221"), "{bye}");
    reply
}

#[tokio::test]
async fn data_is_transparent_from_its_first_byte() {
    // (DATA as sent, the message it carries): the first line is a line like any other, so
    // a leading dot is removed from it, and a lone dot ends even an empty message.
    let cases: [(&[u8], &[u8]); 6] = [
        (b".\r\n", b""),
        (b"..\r\n.\r\n", b".\r\n"),
        (b"...x\r\n.\r\n", b"..x\r\n"),
        (b"..\r\n..\r\n...\r\n.\r\n", b".\r\n.\r\n..\r\n"),
        (
            b".From: s@example.org\r\n\r\n..body\r\n.\r\n",
            b"From: s@example.org\r\n\r\n.body\r\n",
        ),
        (b"\r\n.\r\n", b"\r\n"),
    ];
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        c.policy.bypass_header_checks = true;
    })
    .await;
    let mut n = 0;
    for lmtp in [false, true] {
        for pipelined in [false, true] {
            for (wire, message) in cases {
                let r = send_wire(&rig, lmtp, pipelined, wire).await;
                assert!(r.starts_with("250 "), "{r} for {wire:?}");
                n += 1;
                let got = rig.sink.received();
                assert_eq!(got.len(), n, "{wire:?}");
                let (_, rest) = split_added(&got[n - 1].data);
                assert_eq!(
                    rest, message,
                    "forwarded copy of {wire:?} (lmtp {lmtp}, pipelined {pipelined})"
                );
            }
        }
    }
    rig.stop().await;
}
