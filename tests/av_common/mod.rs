//! Shared by the AV tests: the EICAR string, the test clamd's socket, a fake clamd.
#![allow(dead_code)]

use amavisd::av::{ScannerConfig, ScannerKind};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The EICAR test string, assembled at run time so that no scanner flags this source file.
pub fn eicar() -> Vec<u8> {
    let a = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$";
    let b = "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    format!("{a}{b}").into_bytes()
}

/// The socket of the clamd started by scripts/test-services.sh (or
/// AMAVISD_CLAMD_SOCKET); fails, never skips, when it is not there.
pub fn clamd_socket() -> std::path::PathBuf {
    let sock = std::env::var("AMAVISD_CLAMD_SOCKET")
        .unwrap_or_else(|_| "/var/run/clamav/clamd.ctl".into());
    assert!(
        std::path::Path::new(&sock).exists(),
        "no clamd socket at {sock}: start it with scripts/test-services.sh clamd (.ci/run does)"
    );
    sock.into()
}

/// A clamd scanner entry for `socket`, each object within `timeout` seconds.
pub fn clamd_at(socket: PathBuf, timeout: u64) -> ScannerConfig {
    ScannerConfig {
        name: "ClamAV-clamd".into(),
        kind: ScannerKind::Clamd,
        socket: Some(socket),
        tcp: None,
        program: None,
        args: vec![],
        clean_codes: vec![],
        infected_codes: vec![],
        name_regex: None,
        timeout,
        max_sessions: 10,
        stream_max_length: amavisd::av::DEFAULT_STREAM_MAX_LENGTH,
    }
}

/// A fake clamd on 127.0.0.1:0: `answer` gives the reply for each INSTREAM (None: silence),
/// and the connection is closed after `per_conn` replies.
pub async fn fake_clamd(answer: fn(u64) -> Option<String>, per_conn: u64) -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 65536];
                let mut id = 0;
                loop {
                    // Wait for the end of one INSTREAM: a zero-length chunk.
                    while !buf.windows(4).any(|w| w == [0, 0, 0, 0]) {
                        match s.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                    buf.clear();
                    id += 1;
                    match answer(id) {
                        Some(a) => {
                            let _ = s.write_all(format!("{id}: {a}\0").as_bytes()).await;
                        }
                        None => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                    }
                    if id >= per_conn {
                        return;
                    }
                }
            });
        }
    });
    addr
}
