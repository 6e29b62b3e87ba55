//! Quarantine files found by mail_id, for rows that never recorded where their copy went
//! (see `sql::interrupted`).

use super::QuarantineConfig;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Of `mail_ids`, those with a file in the quarantine folder (or its one level of
/// subfolders) whose name holds the mail_id: (`quar_type`, `quar_loc`) as the pipeline
/// records them, `Z` for a `.gz` name, else `F`, and the path relative to the folder.
/// The folder is read once, so the cost is the number of files, not files x ids.
pub fn find_copies(
    cfg: &QuarantineConfig,
    mail_ids: &HashSet<String>,
) -> HashMap<String, (char, String)> {
    let mut found = HashMap::new();
    let mut lengths: Vec<usize> = mail_ids.iter().map(String::len).collect();
    lengths.sort_unstable();
    lengths.dedup();
    if lengths.is_empty() || lengths[0] == 0 {
        return found;
    }
    let mut look = |rel: String, name: &str| {
        if name.starts_with('.') {
            return; // a temporary file, never a copy
        }
        for &len in &lengths {
            let hit = (0..=name.len().saturating_sub(len))
                .filter_map(|i| name.get(i..i + len))
                .find(|w| mail_ids.contains(*w));
            if let Some(id) = hit {
                let quar_type = if name.ends_with(".gz") { 'Z' } else { 'F' };
                found.insert(id.to_string(), (quar_type, rel));
                return;
            }
        }
    };
    for (name, is_dir) in entries(&cfg.directory) {
        if is_dir && cfg.subdir_levels > 0 {
            for (inner, inner_dir) in entries(&cfg.directory.join(&name)) {
                if !inner_dir {
                    look(format!("{name}/{inner}"), &inner);
                }
            }
        } else if !is_dir {
            look(name.clone(), &name);
        }
    }
    found
}

/// The names in `dir` and whether each is a folder; nothing when it cannot be read.
fn entries(dir: &Path) -> Vec<(String, bool)> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    read.flatten()
        .filter_map(|e| {
            let is_dir = e.file_type().ok()?.is_dir();
            Some((e.file_name().into_string().ok()?, is_dir))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_copies_by_mail_id_at_either_level() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = QuarantineConfig {
            directory: dir.path().to_path_buf(),
            subdir_levels: 1,
        };
        std::fs::create_dir(dir.path().join("A")).unwrap();
        std::fs::write(dir.path().join("A/spam-Abc123xyz-_9.gz"), b"x").unwrap();
        std::fs::write(dir.path().join("virus-Qq0000000001"), b"x").unwrap();
        std::fs::write(dir.path().join(".amavis-quar-1-Qq0000000002"), b"x").unwrap();
        let ids: HashSet<String> = [
            "Abc123xyz-_9",
            "Qq0000000001",
            "Qq0000000002",
            "nothing12345",
        ]
        .map(String::from)
        .into();
        let found = find_copies(&cfg, &ids);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            found["Abc123xyz-_9"],
            ('Z', "A/spam-Abc123xyz-_9.gz".to_string())
        );
        assert_eq!(
            found["Qq0000000001"],
            ('F', "virus-Qq0000000001".to_string())
        );
        assert!(find_copies(&cfg, &HashSet::new()).is_empty());
    }
}
