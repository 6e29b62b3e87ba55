//! Shared by the spam-engine examples: the messages of the SpamAssassin corpus development set
//! they compare on, in one order.

use std::path::PathBuf;
use std::process::Command;

/// The corpus folder: AMAVISD_CORPUS, or what ../shared/scripts/fetch-corpus.sh prints.
pub fn corpus() -> PathBuf {
    if let Ok(d) = std::env::var("AMAVISD_CORPUS") {
        return d.into();
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/scripts/fetch-corpus.sh"
    );
    let out = Command::new("bash")
        .arg(script)
        .output()
        .unwrap_or_else(|e| panic!("{script}: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().into()
}

/// The first `n` messages of easy ham, spam and hard ham, by file name (so the three sets
/// interleave).
pub fn dev_files(n: usize) -> Vec<PathBuf> {
    let root = corpus();
    let mut files: Vec<PathBuf> = ["easy-ham-1", "spam-1", "hard-ham-1"]
        .iter()
        .flat_map(|s| {
            std::fs::read_dir(root.join(s))
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort_by_key(|p| p.file_name().map(|f| f.to_owned()));
    files.truncate(n);
    files
}
