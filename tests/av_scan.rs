//! Running scanners over decoded messages: the command-line adapter with the real `clamscan`,
//! primary/backup lists, first-infected-stops, and scanning each object once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod av_common;
mod decode_common;
use av_common::{clamd_socket, eicar};
use decode_common::*;

use amavisd::av::{
    AnyScanner, Clamd, ClamdTarget, CommandScanner, ScanOptions, ScanVerdict, Scanner, scan_parts,
};
use std::time::Duration;

fn clamd() -> AnyScanner {
    AnyScanner::Clamd(Clamd::new(
        ClamdTarget::Unix(clamd_socket()),
        Duration::from_secs(30),
    ))
}

fn dead_clamd() -> AnyScanner {
    AnyScanner::Clamd(Clamd::new(
        ClamdTarget::Unix("/nonexistent/clamd.ctl".into()),
        Duration::from_secs(2),
    ))
}

/// clamscan on the test signature database that clamd-test-db.sh wrote.
fn clamscan(tmp: &std::path::Path) -> CommandScanner {
    CommandScanner {
        name: "ClamAV-clamscan".into(),
        program: "clamscan".into(),
        args: vec![
            "--no-summary".into(),
            "-d".into(),
            "/var/lib/clamav/amavisd-rs-test.hdb".into(),
            "{}".into(),
        ],
        clean_codes: vec![0],
        infected_codes: vec![1],
        name_regex: regex::Regex::new(r"^.*?: (.+) FOUND$").unwrap(),
        timeout: Duration::from_secs(60),
        tempdir: tmp.to_path_buf(),
    }
}

fn two_attachments(a: &[u8], b: &[u8]) -> Vec<u8> {
    let enc = |d: &[u8]| base64_lines(d);
    format!(
        "From: a@example.org\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: two\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
         --B\r\nContent-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\
         --B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--B--\r\n",
        enc(&zip(&[("a.bin", a)])),
        enc(b)
    )
    .into_bytes()
}

#[tokio::test]
async fn command_scanner_with_real_clamscan() {
    let tmp = tempfile::tempdir().unwrap();
    let s = clamscan(tmp.path());
    assert_eq!(s.scan(b"harmless").await.unwrap(), ScanVerdict::Clean);
    let v = s.scan(&eicar()).await.unwrap();
    assert!(
        matches!(&v, ScanVerdict::Infected(n) if n[0].starts_with("Eicar-Test-Signature")),
        "{v:?}"
    );
    let missing = CommandScanner {
        program: "/nonexistent/scanner".into(),
        ..clamscan(tmp.path())
    };
    assert!(missing.scan(b"x").await.is_err());
    let slow = CommandScanner {
        program: "sleep".into(),
        args: vec!["30".into()],
        timeout: Duration::from_secs(1),
        ..clamscan(tmp.path())
    };
    assert!(matches!(
        slow.scan(b"x").await,
        Err(amavisd::av::AvError::Timeout { .. })
    ));
}

#[tokio::test]
async fn finds_eicar_in_a_zip_attachment_and_scans_duplicates_once() {
    let d = message(&two_attachments(&eicar(), b"clean data"));
    let report = scan_parts(
        &d,
        &[clamd()],
        &[],
        &ScanOptions {
            first_infected_stops_scan: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(report.scanner, "ClamAV-clamd");
    assert_eq!(report.infected.len(), 1, "{report:?}");
    let part = d
        .parts
        .iter()
        .find(|p| p.id == report.infected[0].0)
        .unwrap();
    assert_eq!(part.name.as_deref(), Some("a.bin"));
    // The same content twice is scanned once.
    let d = message(&two_attachments(b"same", b"same"));
    let report = scan_parts(
        &d,
        &[clamd()],
        &[],
        &ScanOptions {
            first_infected_stops_scan: false,
        },
    )
    .await
    .unwrap();
    // Objects: the text part and one "same" (the zip is opened, its entry equals the other).
    assert_eq!(report.objects, 2, "{report:?}");
}

#[tokio::test]
async fn backups_only_when_every_primary_failed_and_failure_is_never_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let d = message(&two_attachments(&eicar(), b"clean"));
    let opts = ScanOptions {
        first_infected_stops_scan: true,
    };
    // The first primary fails, the second answers: no backup needed.
    let r = scan_parts(
        &d,
        &[dead_clamd(), clamd()],
        &[AnyScanner::Command(clamscan(tmp.path()))],
        &opts,
    )
    .await
    .unwrap();
    assert_eq!(r.scanner, "ClamAV-clamd");
    assert_eq!(r.failed.len(), 1);
    // Every primary fails: the backup gives the result.
    let r = scan_parts(
        &d,
        &[dead_clamd()],
        &[AnyScanner::Command(clamscan(tmp.path()))],
        &opts,
    )
    .await
    .unwrap();
    assert_eq!(r.scanner, "ClamAV-clamscan");
    assert_eq!(r.infected.len(), 1);
    // Everything fails: an error, not a clean report.
    assert!(
        scan_parts(&d, &[dead_clamd()], &[dead_clamd()], &opts)
            .await
            .is_err()
    );
    assert!(scan_parts(&d, &[], &[], &opts).await.is_err());
}

#[tokio::test]
async fn first_infected_stops_scan() {
    let clam = std::fs::read("/usr/share/clamav-testfiles/clam.exe").expect("clamav-testfiles");
    let d = message(&two_attachments(&eicar(), &clam));
    let all = scan_parts(
        &d,
        &[clamd()],
        &[],
        &ScanOptions {
            first_infected_stops_scan: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(all.infected.len(), 2, "{all:?}");
    let first = scan_parts(
        &d,
        &[clamd()],
        &[],
        &ScanOptions {
            first_infected_stops_scan: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(first.infected.len(), 1);
}
