//! Many clients at once, slow clients, the connection cap and shutdown with mail in flight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use amavisd_testing::sink::SinkMode;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_sessions_all_answered() {
    let rig = Rig::start(SinkMode::Accept, false).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let addr = rig.addr;
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            let mut replies = Vec::new();
            for j in 0..3 {
                let body = format!("Subject: {i}-{j}\r\n\r\nbody {i} {j}\r\n");
                let r = c
                    .send_mail(
                        j % 2 == 1,
                        &format!("s{i}@x"),
                        &[&format!("u{i}@y")],
                        body.as_bytes(),
                    )
                    .await;
                replies.push(r);
            }
            replies
        }));
    }
    for t in tasks {
        for r in t.await.unwrap() {
            assert!(r.starts_with("250 2.0.0"), "{r}");
        }
    }
    let got = rig.sink.received();
    assert_eq!(got.len(), 150);
    let mut subjects: Vec<String> = got
        .iter()
        .map(|m| {
            let s = String::from_utf8_lossy(&m.data);
            s.lines()
                .find(|l| l.starts_with("Subject: "))
                .unwrap()
                .to_string()
        })
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 150, "every message arrived exactly once");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_client_does_not_delay_others() {
    let rig = Rig::start(SinkMode::Accept, false).await;
    // A client that trickles its DATA one byte at a time.
    let mut slow = rig.client().await;
    slow.cmd("EHLO slow").await;
    slow.cmd("MAIL FROM:<slow@x>").await;
    slow.cmd("RCPT TO:<u@y>").await;
    slow.cmd("DATA").await;
    let trickle = tokio::spawn(async move {
        for b in b"Subject: slow\r\n\r\n".iter() {
            slow.send(&[*b]).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        slow
    });
    let t = Instant::now();
    for _ in 0..10 {
        let mut c = rig.client().await;
        assert!(
            c.send_mail(false, "fast@x", &["u@y"], SIMPLE)
                .await
                .starts_with("250")
        );
    }
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "fast clients waited {:?}",
        t.elapsed()
    );
    let mut slow = trickle.await.unwrap();
    slow.send(b"end\r\n.\r\n").await;
    assert!(slow.reply().await.starts_with("250"));
    rig.stop().await;
}

#[tokio::test]
async fn connection_cap_gives_421() {
    let rig = Rig::start_with(SinkMode::Accept, false, |c| c.limits.max_connections = 2).await;
    let a = rig.client().await;
    let b = rig.client().await;
    assert!(a.greeting.starts_with("220") && b.greeting.starts_with("220"));
    let c = rig.client().await;
    assert!(c.greeting.starts_with("421 4.3.2"), "{}", c.greeting);
    drop(a);
    // The slot frees when a session ends.
    let mut ok = false;
    for _ in 0..50 {
        let d = rig.client().await;
        if d.greeting.starts_with("220") {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok);
    drop(b);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_message_in_flight() {
    let rig = Rig::start(SinkMode::Accept, false).await;
    let mut busy = rig.client().await;
    busy.cmd("EHLO x").await;
    busy.cmd("MAIL FROM:<s@x>").await;
    busy.cmd("RCPT TO:<u@y>").await;
    busy.cmd("DATA").await;
    busy.send(b"Subject: in flight\r\n\r\n").await;
    let mut idle = rig.client().await;
    idle.cmd("EHLO idle").await;
    rig.server.begin_shutdown();
    // The idle session is told at once; the busy one may finish its message.
    let r = idle.reply().await;
    assert!(r.starts_with("421 4.3.2"), "{r}");
    // New connections are refused once the listener is gone.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(tokio::net::TcpStream::connect(rig.addr).await.is_err());
    busy.stream.write_all(b"body\r\n.\r\n").await.unwrap();
    assert!(busy.reply().await.starts_with("250 2.0.0"));
    let r = busy.reply().await;
    assert!(r.starts_with("421 4.3.2"), "{r}");
    assert!(eventually(|| rig.server.is_finished()).await);
    assert_eq!(rig.sink.received().len(), 1);
    rig.stop().await;
}
