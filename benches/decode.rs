//! `cargo bench --bench decode`: decoder throughput on the SpamAssassin corpus development set
//! and on a 10 MB message carrying a zip of 200 files, and the peak memory of the 1 GiB
//! zero-bomb zip. Set AMAVISD_CORPUS, or let scripts/fetch-corpus.sh find it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use amavisd::decode::{Limits, decode_file, decode_message};
use std::io::Write;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let limits = Limits::default();
    let tmp = tempfile::tempdir().expect("tempdir");

    if let Some(root) = common::corpus() {
        let msgs = common::corpus_messages(&root);
        let bytes: usize = msgs.iter().map(Vec::len).sum();
        let rounds = 5;
        let t = Instant::now();
        let mut parts = 0;
        for _ in 0..rounds {
            for m in &msgs {
                parts += decode_message(m, &limits, tmp.path()).parts.len();
            }
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "corpus: {} messages, {:.1} MB, x{rounds}: {:.1} MB/s, {:.0} messages/s ({} parts)",
            msgs.len(),
            bytes as f64 / 1e6,
            (bytes * rounds) as f64 / 1e6 / s,
            (msgs.len() * rounds) as f64 / s,
            parts / rounds
        );
    } else {
        println!("corpus: not found (set AMAVISD_CORPUS)");
    }

    // A 10 MB message: a zip of 200 incompressible files, base64 in a MIME message.
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    let mut x: u32 = 1;
    for i in 0..200 {
        w.start_file(format!("file{i:03}.bin"), opts).expect("zip");
        let data: Vec<u8> = (0..37_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        w.write_all(&data).expect("zip");
    }
    let z = w.finish().expect("zip").into_inner();
    let mut m = b"From: a@example.org\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: zip\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n\
Content-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"files.zip\"\r\n\r\n"
        .to_vec();
    let t64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (n, c) in z.chunks(3).enumerate() {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            m.push(if i <= c.len() {
                t64[((v >> (18 - 6 * i)) & 63) as usize]
            } else {
                b'='
            });
        }
        if n % 19 == 18 {
            m.extend_from_slice(b"\r\n");
        }
    }
    m.extend_from_slice(b"\r\n--B--\r\n");
    let rounds = 10;
    let t = Instant::now();
    let mut n = 0;
    for _ in 0..rounds {
        n = decode_message(&m, &limits, tmp.path()).parts.len();
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "10 MB message with a zip of 200 files: {:.1} MB, {n} parts, {:.1} MB/s, {:.1} ms each",
        m.len() as f64 / 1e6,
        (m.len() * rounds) as f64 / 1e6 / s,
        s * 1000.0 / rounds as f64
    );

    // The 1 GiB zero bomb.
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().large_file(true);
    w.start_file("zeros.bin", opts).expect("zip");
    let mb = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        w.write_all(&mb).expect("zip");
    }
    let bomb = w.finish().expect("zip").into_inner();
    drop(mb);
    let before = vm_hwm_kb();
    let t = Instant::now();
    let d = decode_file("zeros.zip", &bomb, &limits, tmp.path());
    println!(
        "1 GiB zero bomb ({} KB zipped): stopped after {} MB in {:.0} ms ({:?}); peak RSS {} MB before, {} MB after",
        bomb.len() / 1024,
        d.parts.get(1).map_or(0, |p| p.size) >> 20,
        t.elapsed().as_secs_f64() * 1000.0,
        d.unchecked
            .iter()
            .map(|u| u.reason.as_str())
            .collect::<Vec<_>>(),
        before / 1024,
        vm_hwm_kb() / 1024
    );
}
