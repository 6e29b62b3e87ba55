//! Shared by the benches (and the spam examples, through `examples/common`): the
//! SpamAssassin corpus development set.
#![allow(dead_code)]

use std::path::PathBuf;

/// The corpus folder: AMAVISD_CORPUS, or what scripts/fetch-corpus.sh prints.
pub fn corpus() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("AMAVISD_CORPUS") {
        return Some(d.into());
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fetch-corpus.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().into())
}

/// The message files of one set (`easy-ham-1` ...), sorted; the `.json` twins left out.
pub fn set_files(root: &std::path::Path, set: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(set))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files
}

/// Every message of the development set (easy ham, hard ham, spam), as stored.
pub fn corpus_messages(root: &std::path::Path) -> Vec<Vec<u8>> {
    let mut msgs = Vec::new();
    for set in ["easy-ham-1", "hard-ham-1", "spam-1"] {
        for f in set_files(root, set) {
            msgs.push(std::fs::read(f).unwrap_or_default());
        }
    }
    msgs
}
