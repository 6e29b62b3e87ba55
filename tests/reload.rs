//! Reloading under load: while clients keep sending, the configuration is reloaded again and
//! again (and once refused): no session is dropped, every message is answered 250 and
//! delivered, and the mail after a reload shows the new configuration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use amavisd::server;
use amavisd_testing::sink::{Sink, SinkMode};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const CLIENTS: usize = 8;
const MESSAGES: usize = 15;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reload_under_load_drops_no_session() {
    let sink = Sink::new(SinkMode::Accept, true);
    let (port, sink_task) = sink.spawn().await.expect("sink");
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(&format!("smtp:[127.0.0.1]:{port}"), tmp.path());
    let running = server::start(valid(cfg.clone())).await.expect("server");
    let addr = running.addrs[0];
    let answered = Arc::new(AtomicUsize::new(0));
    // Each client keeps one session open and sends its messages one after another, so the
    // reloads happen while sessions are in the middle of their work.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let answered = Arc::clone(&answered);
            tokio::spawn(async move {
                let mut cl = Client::connect(addr).await;
                assert!(cl.cmd("EHLO loadtest").await.starts_with("250"));
                let mut replies = Vec::new();
                for m in 0..MESSAGES {
                    assert!(cl.cmd("MAIL FROM:<s@example.org>").await.starts_with("250"));
                    assert!(cl.cmd("RCPT TO:<u@example.com>").await.starts_with("250"));
                    assert!(cl.cmd("DATA").await.starts_with("354"));
                    let msg = format!("Subject: c{c} m{m}\r\n\r\nbody\r\n");
                    cl.send(&stuff(msg.as_bytes())).await;
                    replies.push(cl.reply().await);
                    answered.fetch_add(1, Ordering::Relaxed);
                    // Paced, so that the reloads fall between and during messages.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                replies
            })
        })
        .collect();
    // Reload while they run: a new host name each time (it shows in our Received field).
    let mut generation = 0;
    while answered.load(Ordering::Relaxed) < CLIENTS * MESSAGES && generation < 500 {
        generation += 1;
        let mut next = cfg.clone();
        next.myhostname = format!("gen{generation}.example.com");
        running.reload(valid(next)).expect("reload");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(generation >= 3, "the clients finished before any reload");
    // A bad file is refused and the running configuration stays.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[limits]\nmax_connections = -1\n").unwrap();
    let e = running.reload_from(&bad).await.unwrap_err().to_string();
    assert!(
        e.contains("bad.toml") && e.contains("limits.max_connections"),
        "{e}"
    );
    for c in clients {
        for r in c.await.expect("client task") {
            assert!(r.starts_with("250 2.0.0"), "{r}");
        }
    }
    let got = sink.received();
    assert_eq!(got.len(), CLIENTS * MESSAGES, "every message delivered");
    // A message after the reloads carries the last configuration's name.
    let mut cl = Client::connect(addr).await;
    let r = cl
        .send_mail(false, "s@example.org", &["u@example.com"], SIMPLE)
        .await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let last = sink.received().pop().expect("the last message");
    let text = String::from_utf8_lossy(&last.data).into_owned();
    assert!(
        text.contains(&format!("(gen{generation}.example.com ")),
        "{text}"
    );
    running.stop().await;
    sink_task.abort();
}

/// `listen` changes on reload: an added port serves at once, a removed one stops accepting
/// while a session already on it finishes its message; a port that cannot be bound refuses
/// the reload and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_change_on_reload() {
    use amavisd::config::{ListenProtocol, Listener};
    let sink = Sink::new(SinkMode::Accept, true);
    let (port, sink_task) = sink.spawn().await.expect("sink");
    let tmp = tempfile::tempdir().expect("tempdir");
    let first = free_port();
    let mut cfg = config(&format!("smtp:[127.0.0.1]:{port}"), tmp.path());
    let inet = |p: u16| Listener {
        inet: Some(format!("127.0.0.1:{p}")),
        unix: None,
        protocol: ListenProtocol::Auto,
    };
    cfg.listen = vec![inet(first)];
    let running = server::start(valid(cfg.clone())).await.expect("server");
    let a: std::net::SocketAddr = format!("127.0.0.1:{first}").parse().unwrap();
    // A session on the first port, mid-transaction across the reloads.
    let mut old = Client::connect(a).await;
    assert!(old.cmd("EHLO x").await.starts_with("250"));
    assert!(
        old.cmd("MAIL FROM:<s@example.org>")
            .await
            .starts_with("250")
    );
    // Add a second port.
    let second = free_port();
    let mut both = cfg.clone();
    both.listen = vec![inet(first), inet(second)];
    running
        .reload(valid(both.clone()))
        .expect("reload adding a port");
    let b: std::net::SocketAddr = format!("127.0.0.1:{second}").parse().unwrap();
    let r = Client::connect(b)
        .await
        .send_mail(false, "s@example.org", &["u@example.com"], SIMPLE)
        .await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    // A port someone else holds: refused, naming it; both ports still serve.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let mut bad = both.clone();
    bad.listen.push(inet(taken_port));
    let e = running.reload(valid(bad)).unwrap_err().to_string();
    assert!(
        e.contains("listen") && e.contains(&taken_port.to_string()),
        "{e}"
    );
    // Remove the first port: new connections there are refused (after the serve loop has
    // taken the change), the session already on it finishes.
    let mut only_second = cfg.clone();
    only_second.listen = vec![inet(second)];
    running
        .reload(valid(only_second))
        .expect("reload removing a port");
    assert!(
        eventually(|| std::net::TcpStream::connect(a).is_err()).await,
        "the removed port still accepts"
    );
    assert!(old.cmd("RCPT TO:<u@example.com>").await.starts_with("250"));
    assert!(old.cmd("DATA").await.starts_with("354"));
    old.send(&stuff(SIMPLE)).await;
    assert!(old.reply().await.starts_with("250 2.0.0"));
    let r = Client::connect(b)
        .await
        .send_mail(false, "s@example.org", &["u@example.com"], SIMPLE)
        .await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    assert_eq!(sink.received().len(), 3);
    running.stop().await;
    sink_task.abort();
}
