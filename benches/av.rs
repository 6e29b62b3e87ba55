//! `cargo bench --bench av`: what to send to clamd, decided by measurement. Needs the clamd
//! that `scripts/test-services.sh clamd` starts (AMAVISD_CLAMD_SOCKET to change it)
//! and the SpamAssassin corpus development set (see `benches/common`).
//!
//! Three strategies over the same decoded corpus, each at 8 concurrent messages:
//! - `leaves`: every decoded leaf and every container we could not open, each content once
//!   (what the filter does);
//! - `whole`: the raw message as one object, clamd decoding MIME and archives itself;
//! - `both`: the two together.
//!
//! It prints messages/s and clamd round trips per message for each (decoding is done before
//! timing: it is the same for all, the filter decodes for the banned rules anyway), then which
//! strategy finds EICAR in a set of wrappings (clamd's own decoders against ours).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use amavisd::av::{AnyScanner, Clamd, ClamdTarget, ScanOptions, ScanVerdict, Scanner, scan_parts};
use amavisd::decode::{Decoded, Limits, decode_message};
use std::io::{Cursor, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONCURRENCY: usize = 8;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Strategy {
    Leaves,
    Whole,
    Both,
}

struct Item {
    raw: Vec<u8>,
    decoded: Decoded,
}

/// Scans one message; returns (round trips, infected).
async fn scan(clamd: &AnyScanner, raw_scanner: &Clamd, it: &Item, s: Strategy) -> (usize, bool) {
    let opts = ScanOptions {
        first_infected_stops_scan: true,
    };
    let mut trips = 0;
    let mut infected = false;
    if s != Strategy::Leaves {
        trips += 1;
        infected |= matches!(
            raw_scanner.scan(&it.raw).await.expect("clamd (whole)"),
            ScanVerdict::Infected(_)
        );
    }
    if s != Strategy::Whole {
        let r = scan_parts(&it.decoded, std::slice::from_ref(clamd), &[], &opts)
            .await
            .expect("clamd (leaves)");
        trips += r.objects;
        infected |= !r.infected.is_empty();
    }
    (trips, infected)
}

async fn run(items: Arc<Vec<Item>>, socket: &str, s: Strategy) -> (f64, f64) {
    let clamd = Arc::new(AnyScanner::Clamd(Clamd::new(
        ClamdTarget::Unix(socket.into()),
        Duration::from_secs(60),
    )));
    let raw = Arc::new(Clamd::new(
        ClamdTarget::Unix(socket.into()),
        Duration::from_secs(60),
    ));
    let next = Arc::new(AtomicUsize::new(0));
    let trips = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (items, clamd, raw, next, trips) = (
            Arc::clone(&items),
            Arc::clone(&clamd),
            Arc::clone(&raw),
            Arc::clone(&next),
            Arc::clone(&trips),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(it) = items.get(i) else { break };
                let (n, _) = scan(&clamd, &raw, it, s).await;
                trips.fetch_add(n, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    let secs = t.elapsed().as_secs_f64();
    let n = items.len() as f64;
    (n / secs, trips.load(Ordering::Relaxed) as f64 / n)
}

fn eicar() -> Vec<u8> {
    let a = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$";
    let b = "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    format!("{a}{b}").into_bytes()
}

fn zip(name: &str, data: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file(name, zip::write::SimpleFileOptions::default())
        .expect("zip");
    w.write_all(data).expect("zip");
    w.finish().expect("zip").into_inner()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gz");
    e.finish().expect("gz")
}

fn tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, data).expect("tar");
    b.into_inner().expect("tar")
}

fn sevenz(name: &str, data: &[u8]) -> Vec<u8> {
    let mut w = sevenz_rust2::ArchiveWriter::new(Cursor::new(Vec::new())).expect("7z");
    w.push_archive_entry(
        sevenz_rust2::ArchiveEntry::new_file(name),
        Some(Cursor::new(data.to_vec())),
    )
    .expect("7z");
    w.finish().expect("7z").into_inner()
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    let s = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::new();
    for c in s.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(c));
        out.push_str("\r\n");
    }
    out
}

fn mail(name: &str, data: &[u8]) -> Vec<u8> {
    format!(
        "From: a@example.org\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: t\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n\
         Content-Type: text/plain\r\n\r\nhi\r\n--B\r\nContent-Type: application/octet-stream\r\n\
         Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\r\n{}--B--\r\n",
        b64(data)
    )
    .into_bytes()
}

fn main() {
    let socket = std::env::var("AMAVISD_CLAMD_SOCKET")
        .unwrap_or_else(|_| "/var/run/clamav/clamd.ctl".into());
    let Some(root) = common::corpus() else {
        println!("corpus: not found (set AMAVISD_CORPUS)");
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let limits = Limits::default();
    let items: Vec<Item> = common::corpus_messages(&root)
        .into_iter()
        .map(|raw| {
            let decoded = decode_message(&raw, &limits, tmp.path());
            Item { raw, decoded }
        })
        .collect();
    let items = Arc::new(items);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "corpus: {} messages, clamd at {socket}, {CONCURRENCY} at a time",
        items.len()
    );
    // clamd caches the digests of clean objects: a strategy run after another (or after an
    // earlier bench run) sees a warm cache. AV_BENCH_STRATEGIES=whole|leaves|both picks one,
    // for cold figures with clamd restarted before each; each selected one runs twice (cold
    // as far as this process goes, then warm).
    let wanted =
        std::env::var("AV_BENCH_STRATEGIES").unwrap_or_else(|_| "whole,leaves,both".into());
    for name in wanted.split(',') {
        let s = match name.trim() {
            "whole" => Strategy::Whole,
            "leaves" => Strategy::Leaves,
            "both" => Strategy::Both,
            other => {
                println!("AV_BENCH_STRATEGIES: unknown strategy {other:?}");
                return;
            }
        };
        for when in ["first run", "again"] {
            let (rate, trips) = rt.block_on(run(Arc::clone(&items), &socket, s));
            println!(
                "{s:?} ({when}): {rate:.0} messages/s, {trips:.2} clamd round trips per message"
            );
        }
    }

    let e = eicar();
    let inner = mail("e.txt", &e);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("base64 attachment", mail("e.txt", &e)),
        ("zip", mail("a.zip", &zip("e.txt", &e))),
        ("7z", mail("a.7z", &sevenz("e.txt", &e))),
        ("tar.gz", mail("a.tgz", &gz(&tar("e.txt", &e)))),
        (
            "zip in zip in zip",
            mail("a.zip", &zip("b.zip", &zip("c.zip", &zip("e.txt", &e)))),
        ),
        ("message in zip", mail("m.zip", &zip("fwd.eml", &inner))),
        ("gzip of a message", mail("m.gz", &gz(&inner))),
    ];
    let clamd = AnyScanner::Clamd(Clamd::new(
        ClamdTarget::Unix(socket.clone().into()),
        Duration::from_secs(60),
    ));
    let raw = Clamd::new(ClamdTarget::Unix(socket.into()), Duration::from_secs(60));
    println!("| EICAR wrapped in | leaves | whole |");
    println!("|---|---|---|");
    for (what, m) in cases {
        let it = Item {
            decoded: decode_message(&m, &limits, tmp.path()),
            raw: m,
        };
        let leaves = rt.block_on(scan(&clamd, &raw, &it, Strategy::Leaves)).1;
        let whole = rt.block_on(scan(&clamd, &raw, &it, Strategy::Whole)).1;
        println!("| {what} | {leaves} | {whole} |");
    }
}
