//! Real mail: every message of the SpamAssassin public corpus development set (3250 messages,
//! `scripts/fetch-corpus.sh`) decodes with no panic and nothing left UNCHECKED.
//! Prints the counts of parts, bad-header minors and types seen (`--nocapture`).
//! The test fails, never skips, when the corpus cannot be had.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amavisd::decode::{Limits, decode_message};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn corpus() -> PathBuf {
    if let Ok(dir) = std::env::var("AMAVISD_CORPUS") {
        return PathBuf::from(dir);
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch-corpus.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "fetch-corpus.sh failed (set AMAVISD_CORPUS to the corpus folder): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

#[test]
fn spamassassin_corpus_decodes_cleanly() {
    let root = corpus();
    let limits = Limits::default();
    let tmp = tempfile::tempdir().unwrap();
    let (mut messages, mut parts) = (0usize, 0usize);
    let mut minors: BTreeMap<u8, usize> = BTreeMap::new();
    let mut types: BTreeMap<String, usize> = BTreeMap::new();
    let mut undecipherable: BTreeMap<String, usize> = BTreeMap::new();
    let mut mime_errors: BTreeMap<String, usize> = BTreeMap::new();
    let mut unchecked = Vec::new();
    for set in ["easy-ham-1", "hard-ham-1", "spam-1"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(set))
            .unwrap_or_else(|e| panic!("{}: {e}", root.join(set).display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect();
        files.sort();
        for f in files {
            let raw = std::fs::read(&f).unwrap();
            let d = decode_message(&raw, &limits, tmp.path());
            messages += 1;
            parts += d.parts.len();
            for b in &d.bad_header {
                *minors.entry(b.minor).or_default() += 1;
                if b.minor == 1 {
                    *mime_errors.entry(b.detail.clone()).or_default() += 1;
                }
            }
            for p in &d.parts {
                if let Some(t) = p.types.first() {
                    *types.entry(t.clone()).or_default() += 1;
                }
                if let Some(u) = &p.undecipherable {
                    *undecipherable.entry(u.clone()).or_default() += 1;
                }
            }
            if !d.unchecked.is_empty() {
                unchecked.push(format!("{}: {:?}", f.display(), d.unchecked));
            }
        }
    }
    eprintln!("messages {messages}, parts {parts}");
    eprintln!("bad-header minors (messages): {minors:?}");
    eprintln!("types (parts): {types:?}");
    eprintln!("undecipherable: {undecipherable:?}");
    eprintln!("MIME errors: {mime_errors:?}");
    assert_eq!(messages, 3250);
    assert!(
        unchecked.is_empty(),
        "UNCHECKED on real mail:\n{}",
        unchecked.join("\n")
    );
}
