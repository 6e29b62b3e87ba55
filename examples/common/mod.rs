//! Shared by the spam-engine examples: the messages of the SpamAssassin corpus development set
//! they compare on, in one order (the corpus itself is found as the benches find it).

#[path = "../../benches/common/mod.rs"]
mod corpus;

use std::path::PathBuf;

/// The first `n` messages of easy ham, spam and hard ham, by file name (so the three sets
/// interleave).
#[allow(dead_code)]
pub fn dev_files(n: usize) -> Vec<PathBuf> {
    first_of(&["easy-ham-1", "spam-1", "hard-ham-1"], n)
}

/// The first `n` messages of the later sets (easy-ham-2, spam-2), interleaved by file name.
#[allow(dead_code)]
pub fn later_files(n: usize) -> Vec<PathBuf> {
    first_of(&["easy-ham-2", "spam-2"], n)
}

/// The first `n` messages of `sets` by file name.
fn first_of(sets: &[&str], n: usize) -> Vec<PathBuf> {
    let root = corpus_root();
    let mut files: Vec<PathBuf> = sets
        .iter()
        .flat_map(|s| corpus::set_files(&root, s))
        .collect();
    files.sort_by_key(|p| p.file_name().map(|f| f.to_owned()));
    files.truncate(n);
    files
}

/// The corpus folder; panics (with what to do) without it.
#[allow(dead_code)]
pub fn corpus_root() -> PathBuf {
    corpus::corpus()
        .unwrap_or_else(|| panic!("no corpus: set AMAVISD_CORPUS or run scripts/fetch-corpus.sh"))
}

/// One set's message files, sorted.
#[allow(dead_code)]
pub fn set_files(root: &std::path::Path, set: &str) -> Vec<PathBuf> {
    corpus::set_files(root, set)
}

#[allow(dead_code)]
pub mod metrics;

#[allow(dead_code)]
pub mod stack;
