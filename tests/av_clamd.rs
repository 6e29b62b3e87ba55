//! The clamd adapter against a real clamd (Debian clamav-daemon on the test signature database
//! of scripts/clamd-test-db.sh, started by .ci/run) and against a fake clamd for the
//! failures. Fails, never skips, when clamd is not reachable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod av_common;
mod decode_common;
use av_common::{clamd_socket, eicar, fake_clamd};

use amavisd::av::{AvError, Clamd, ClamdTarget, ScanVerdict, Scanner};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn real() -> Clamd {
    Clamd::new(ClamdTarget::Unix(clamd_socket()), Duration::from_secs(30))
}

#[tokio::test]
async fn real_clamd_finds_eicar_and_the_clamav_test_file() {
    let c = real();
    assert_eq!(
        c.scan(b"just a harmless text\r\n").await.unwrap(),
        ScanVerdict::Clean
    );
    assert_eq!(
        c.scan(&eicar()).await.unwrap(),
        ScanVerdict::Infected(vec!["Eicar-Test-Signature.UNOFFICIAL".into()])
    );
    let clam = std::fs::read("/usr/share/clamav-testfiles/clam.exe").expect("clamav-testfiles");
    let v = c.scan(&clam).await.unwrap();
    assert!(
        matches!(&v, ScanVerdict::Infected(n) if n[0].starts_with("Clamav.Test.File-6")),
        "{v:?}"
    );
    // clamd opens a zip itself.
    let z = decode_common::zip(&[("eicar.com", &eicar())]);
    assert!(matches!(
        c.scan(&z).await.unwrap(),
        ScanVerdict::Infected(_)
    ));
    // Many scans over the one reused session.
    for i in 0..20 {
        let data = if i % 2 == 0 {
            eicar()
        } else {
            b"clean".to_vec()
        };
        let v = c.scan(&data).await.unwrap();
        assert_eq!(
            matches!(v, ScanVerdict::Infected(_)),
            i % 2 == 0,
            "scan {i}"
        );
    }
}

#[tokio::test]
async fn clamd_gone_is_an_error_not_clean() {
    let c = Clamd::new(
        ClamdTarget::Unix("/nonexistent/clamd.ctl".into()),
        Duration::from_secs(5),
    );
    assert!(matches!(c.scan(b"x").await, Err(AvError::Connect { .. })));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let c = Clamd::new(ClamdTarget::Tcp(port), Duration::from_secs(5));
    assert!(matches!(c.scan(b"x").await, Err(AvError::Connect { .. })));
}

#[tokio::test]
async fn silent_clamd_times_out() {
    let addr = fake_clamd(|_| None, 1).await;
    let c = Clamd::new(ClamdTarget::Tcp(addr), Duration::from_secs(1));
    let t = Instant::now();
    assert!(matches!(
        c.scan(b"x").await,
        Err(AvError::Timeout { secs: 1, .. })
    ));
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn size_limit_is_its_own_error() {
    let addr = fake_clamd(|_| Some("INSTREAM size limit exceeded. ERROR".into()), 10).await;
    let c = Clamd::new(ClamdTarget::Tcp(addr), Duration::from_secs(5));
    assert!(matches!(c.scan(b"x").await, Err(AvError::SizeLimit { .. })));
}

#[tokio::test]
async fn session_closed_by_clamd_is_replaced() {
    // clamd closes each session after one scan (as its IdleTimeout would).
    let addr = fake_clamd(|_| Some("stream: OK".into()), 1).await;
    let c = Clamd::new(ClamdTarget::Tcp(addr), Duration::from_secs(5));
    for _ in 0..3 {
        assert_eq!(c.scan(b"x").await.unwrap(), ScanVerdict::Clean);
    }
    let addr = fake_clamd(|_| Some("stream: garbage".into()), 10).await;
    let c = Clamd::new(ClamdTarget::Tcp(addr), Duration::from_secs(5));
    assert!(matches!(c.scan(b"x").await, Err(AvError::Protocol { .. })));
}

/// clamd refuses connections beyond its connection queue (EAGAIN on its unix socket, seen at
/// 32 messages at once): one client keeps at most `max_sessions` open, and the rest wait.
#[tokio::test]
async fn sessions_at_once_are_capped() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (open, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (o, p) = (Arc::clone(&open), Arc::clone(&peak));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let (o, p) = (Arc::clone(&o), Arc::clone(&p));
            p.fetch_max(o.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut buf, mut tmp, mut id) = (Vec::new(), [0u8; 4096], 0);
                loop {
                    while !buf.windows(4).any(|w| w == [0, 0, 0, 0]) {
                        match s.read(&mut tmp).await {
                            Ok(0) | Err(_) => {
                                o.fetch_sub(1, Ordering::SeqCst);
                                return;
                            }
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                    buf.clear();
                    id += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    // Two writes: a reply may arrive in pieces.
                    let reply = format!("{id}: stream: OK\0");
                    let (a, b) = reply.as_bytes().split_at(4);
                    let _ = s.write_all(a).await;
                    let _ = s.write_all(b).await;
                }
            });
        }
    });
    let c =
        Arc::new(Clamd::new(ClamdTarget::Tcp(addr), Duration::from_secs(10)).with_max_sessions(3));
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let c = Arc::clone(&c);
            tokio::spawn(async move { c.scan(format!("object {i}").as_bytes()).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), ScanVerdict::Clean);
    }
    assert!(
        peak.load(Ordering::SeqCst) <= 3,
        "peak {}",
        peak.load(Ordering::SeqCst)
    );
    assert!(open.load(Ordering::SeqCst) <= 3);
}
