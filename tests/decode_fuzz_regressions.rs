//! Inputs the fuzzers found crashing, kept as fixtures (`tests/fixtures/fuzz/`). Files named
//! `archive-*` replay the archive target (first byte picks a signature from
//! `decode::FUZZ_SIGNATURES`), `tar-*` the tar target, `mime-*` the MIME target. Each must
//! decode without a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amavisd::decode::{FUZZ_SIGNATURES, Limits, decode_file, decode_message};
use std::path::Path;

#[test]
fn saved_fuzz_crashes_decode_without_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let tmp = tempfile::tempdir().unwrap();
    let limits = Limits::default();
    let mut seen = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&path).unwrap();
        if name.starts_with("archive-") {
            let (sel, rest) = data.split_first().unwrap();
            let mut bytes = FUZZ_SIGNATURES[*sel as usize % FUZZ_SIGNATURES.len()].to_vec();
            bytes.extend_from_slice(rest);
            let d = decode_file("f.bin", &bytes, &limits, tmp.path());
            // A crashing reader leaves the container undecipherable, never silently clean.
            assert!(
                d.parts[0].undecipherable.is_some() || d.parts.len() > 1,
                "{name}: {:?}",
                d.parts
            );
        } else if name.starts_with("tar-") {
            // The tar target: "ustar" written where detection looks for it.
            let mut t = data.clone();
            t[257..262].copy_from_slice(b"ustar");
            let d = decode_file("f.tar", &t, &limits, tmp.path());
            assert!(!d.parts.is_empty(), "{name}");
        } else {
            let _ = decode_message(&data, &limits, tmp.path());
        }
        seen += 1;
    }
    assert!(seen > 0);
}
