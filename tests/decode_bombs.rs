//! Hostile input for the decoder: each bomb must end within the limits, in bounded time, with
//! big parts on disk rather than in memory, and the message marked UNCHECKED (over limits).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod decode_common;
use decode_common::*;

use amavisd::decode::{Decoded, Limits, PartData, decode_file, decode_message};
use std::time::{Duration, Instant};

/// Small quotas keep the tests quick; the defaults are exercised by `zero_gigabyte_zip`.
fn small() -> Limits {
    Limits {
        max_expansion_quota: 64 << 20,
        min_expansion_quota: 64 << 20,
        max_part_size: 32 << 20,
        ..Limits::default()
    }
}

fn run(name: &str, bytes: &[u8], limits: &Limits, as_message: bool) -> (Decoded, Duration) {
    let tmp = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let d = if as_message {
        decode_message(bytes, limits, tmp.path())
    } else {
        decode_file(name, bytes, limits, tmp.path())
    };
    let took = t.elapsed();
    // Bounded time: far inside the decoder's own budget plus slack for a loaded CI machine.
    assert!(
        took < Duration::from_millis(limits.time_budget_ms) + Duration::from_secs(10),
        "{name} took {took:?}"
    );
    // Bounded memory: nothing above memory_part_limit is held in memory.
    for p in &d.parts {
        if p.size > limits.memory_part_limit {
            assert!(
                matches!(p.data, PartData::File(_)),
                "{name}: {} bytes in memory",
                p.size
            );
        }
    }
    (d, took)
}

fn over_limits(d: &Decoded) -> bool {
    d.unchecked.iter().any(|u| u.minor == 2)
}

#[test]
fn nested_zip_bomb() {
    // 42.zip style: 10 MiB of zeros, then four levels of zips holding four copies each:
    // 2.5 GiB declared in a few hundred kilobytes.
    let zeros = vec![0u8; 10 << 20];
    let mut level = zip(&[("0.dat", &zeros)]);
    for depth in 1..=4 {
        let name = format!("l{depth}.zip");
        let copies: Vec<(String, Vec<u8>)> = (0..4)
            .map(|i| (format!("{i}-{name}"), level.clone()))
            .collect();
        let refs: Vec<(&str, &[u8])> = copies
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        level = zip(&refs);
    }
    let limits = small();
    let (d, _) = run("42.zip", &level, &limits, false);
    assert!(over_limits(&d), "{:?}", d.unchecked);
    let decoded: u64 = d.parts.iter().map(|p| p.size).sum();
    assert!(
        decoded <= (64 << 20) + level.len() as u64 * 2,
        "decoded {decoded}"
    );
}

#[test]
fn zero_gigabyte_zip() {
    // 1 GiB of zeros in about a megabyte, with the default limits.
    let z = zeros_zip(1024);
    assert!(z.len() < 8 << 20, "{} bytes", z.len());
    let limits = Limits::default();
    let (d, _) = run("zeros.zip", &z, &limits, false);
    assert!(over_limits(&d), "{:?}", d.unchecked);
    let entry = &d.parts[1];
    assert!(entry.size <= limits.max_part_size, "{}", entry.size);
    assert!(
        d.unchecked
            .iter()
            .any(|u| u.reason.contains("compression ratio") || u.reason.contains("max_part_size"))
    );
}

#[test]
fn zip_with_100000_entries() {
    let names: Vec<String> = (0..100_000).map(|i| format!("f{i}.txt")).collect();
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for n in &names {
        w.start_file(n.as_str(), opts).unwrap();
        std::io::Write::write_all(&mut w, b"x").unwrap();
    }
    let z = w.finish().unwrap().into_inner();
    let limits = small();
    let (d, _) = run("many.zip", &z, &limits, false);
    assert_eq!(d.parts.len(), limits.max_files);
    assert!(
        d.unchecked.iter().any(|u| u.reason.contains("MAXFILES")),
        "{:?}",
        d.unchecked
    );
}

#[test]
fn overlapping_entries_zip() {
    // One compressed entry; a central directory of 2000 records all pointing at it.
    let zeros = vec![0u8; 8 << 20];
    let z = zip(&[("e0000.bin", &zeros)]);
    let cd = z.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    let eocd = z.windows(4).rposition(|w| w == b"PK\x05\x06").unwrap();
    let record = &z[cd..eocd];
    let mut out = z[..cd].to_vec();
    let n = 2000u16;
    for i in 0..n {
        let mut r = record.to_vec();
        let name = format!("e{i:04}.bin");
        r[46..46 + name.len()].copy_from_slice(name.as_bytes());
        out.extend_from_slice(&r);
    }
    let cd_size = (record.len() * n as usize) as u32;
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&(cd as u32).to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    let limits = small();
    let (d, _) = run("overlap.zip", &out, &limits, false);
    assert!(over_limits(&d), "{:?}", d.unchecked);
    assert!(d.parts.len() < 2000);
}

#[test]
fn message_rfc822_nested_1000_deep() {
    let mut m = b"From: a@example.org\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: bottom\r\n\r\nbody\r\n".to_vec();
    for _ in 0..1000 {
        let mut outer =
            b"From: a@example.org\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: wrap\r\n\
MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n"
                .to_vec();
        outer.extend_from_slice(&m);
        m = outer;
    }
    let limits = Limits::default();
    let (d, _) = run("deep.eml", &m, &limits, true);
    assert!(
        d.unchecked.iter().any(|u| u.reason.contains("MAXLEVELS")),
        "{:?}",
        d.unchecked
    );
    assert!(d.parts.iter().all(|p| p.depth <= limits.max_levels));
}

#[test]
fn mime_multipart_1000_levels_deep() {
    let mut m = String::from(
        "From: a@example.org\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: deep\r\nMIME-Version: 1.0\r\n",
    );
    let mut tail = String::new();
    for i in 0..1000 {
        m.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
        ));
        tail = format!("\r\n--b{i}--\r\n{tail}");
    }
    m.push_str("Content-Type: text/plain\r\n\r\nleaf\r\n");
    m.push_str(&tail);
    let limits = Limits::default();
    let (d, _) = run("deep-mime.eml", m.as_bytes(), &limits, true);
    assert!(
        d.unchecked.iter().any(|u| u.reason.contains("MAXLEVELS")),
        "{:?}",
        d.unchecked
    );
}

#[test]
fn tar_header_declaring_huge_size() {
    let mut t = tar(&[("x.bin", b"short data")]);
    // Size field (offset 124, 12 octal digits) says 64 GiB; fix the header checksum.
    t[124..136].copy_from_slice(b"77777777777\0");
    t[148..156].copy_from_slice(b"        ");
    let sum: u32 = t[..512].iter().map(|&b| u32::from(b)).sum();
    t[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let limits = small();
    let (d, _) = run("huge.tar", &t, &limits, false);
    // Read as far as there is data; the archive is then damaged, not trusted.
    assert!(d.parts.iter().all(|p| p.size <= t.len() as u64));
    assert!(
        d.parts[0].undecipherable.is_some() || d.parts.len() >= 2,
        "{:#?}",
        d.parts
    );
}

#[test]
fn gzip_that_never_ends() {
    // 3000 concatenated members of 1 MiB of zeros: a stream of 3 GiB from 3 MB.
    let member = gz(&vec![0u8; 1 << 20]);
    let endless: Vec<u8> = std::iter::repeat_n(member.as_slice(), 3000)
        .flatten()
        .copied()
        .collect();
    let limits = small();
    let (d, _) = run("endless.gz", &endless, &limits, false);
    assert!(over_limits(&d), "{:?}", d.unchecked);
    assert_eq!(d.parts[1].size, limits.max_part_size);
}

#[test]
fn time_budget_stops_decoding() {
    let z = zip(&(0..2000)
        .map(|i| (format!("f{i}.gz"), gz(b"hello")))
        .collect::<Vec<_>>()
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect::<Vec<_>>());
    let limits = Limits {
        time_budget_ms: 1,
        ..small()
    };
    let tmp = tempfile::tempdir().unwrap();
    std::thread::sleep(Duration::from_millis(2));
    let d = decode_file("slow.zip", &z, &limits, tmp.path());
    assert!(
        d.unchecked.iter().any(|u| u.reason.contains("time budget")),
        "{:?}",
        d.unchecked
    );
}

/// Damaged MIME is searched for what a client would still find (decode/salvage.rs). Hostile
/// shapes of that damage must stay linear and bounded: many different delimiter-like lines,
/// padding everywhere, and damage nested in damage a thousand times.
#[test]
fn damaged_mime_bombs_stay_bounded() {
    let head = "From: a@b\r\nDate: d\r\nMIME-Version: 1.0\r\n";
    let mut distinct = format!("{head}Content-Type: multipart/mixed\r\n\r\n");
    for i in 0..100_000 {
        distinct.push_str(&format!("--x{i}\r\nContent-Type: text/plain\r\n\r\nx\r\n"));
    }
    let mut padding = format!(
        "{head}Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    );
    padding.push_str(&"QQ==".repeat(500_000));
    padding.push_str("\r\n--B--\r\n");
    let mut nested = String::new();
    for _ in 0..1000 {
        nested.push_str(&format!(
            "{head}Content-Type: multipart/mixed\r\n\r\n--Z\r\nContent-Type: message/rfc822\r\n\r\nnot a header\r\n"
        ));
    }
    nested.push_str("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\n");
    for (name, msg) in [
        ("distinct delimiters", distinct),
        ("padding", padding),
        ("nested damage", nested),
    ] {
        let (d, took) = run(name, msg.as_bytes(), &Limits::default(), true);
        assert!(took < Duration::from_secs(20), "{name}: {took:?}");
        assert!(
            d.bad_header.iter().any(|b| b.minor == 1),
            "{name}: the damage is reported"
        );
    }
}
