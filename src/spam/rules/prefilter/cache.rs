//! Compiled one-pass (Hyperscan) databases kept on disk, so that a start or reload with
//! unchanged rules loads them in milliseconds instead of compiling for ~30 CPU-seconds.
//!
//! One file per set of patterns the prefilter compiles together, named by a SHA-256 of the
//! library's version, this file format's version and every pattern with its flags: a rule
//! change touches only its own set, and another libhs or format never reads a file it did
//! not write. The library itself checks the rest (platform, CRC) when it reads a database
//! back. A file that is missing, damaged or refused is compiled again and rewritten; the
//! cache never changes what the prefilter finds, only how soon it is ready.
//!
//! Layout: `AMVHS1\n`, the count and then the positions (in the set) of the patterns the
//! database holds, in id order, the same for the patterns Hyperscan refused, then the
//! serialized database. Counts and positions are little-endian u32.

use crate::spam::rules::hyperscan::Database;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Bumped whenever the layout or the meaning of a position changes.
const MAGIC: &[u8] = b"AMVHS1\n";
/// File name extension; files without it in the directory are never touched.
const EXT: &str = "hsdb";
/// A file no load has used for this long, found after a compile, is removed. Not at once:
/// instances (or tests) with other rules may share the directory, and removing their
/// files would only make each compile the other's sets again.
const UNUSED_FOR: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// What compiling one set of patterns gave.
pub struct Compiled {
    /// Positions in the set of the patterns the database holds; database id `i` is
    /// `kept[i]`.
    pub kept: Vec<u32>,
    /// Positions Hyperscan refused even loosened.
    pub refused: Vec<u32>,
    /// `None` when Hyperscan took none of them.
    pub db: Option<Database>,
}

/// The cache directory.
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: &Path) -> Cache {
        Cache {
            dir: dir.to_path_buf(),
        }
    }

    /// The key of a set of patterns (source, Hyperscan flags).
    pub fn key(patterns: &[(String, u32)]) -> String {
        let mut h = Sha256::new();
        h.update(MAGIC);
        h.update(crate::spam::rules::hyperscan::version().as_bytes());
        for (source, flags) in patterns {
            h.update((source.len() as u64).to_le_bytes());
            h.update(source.as_bytes());
            h.update(flags.to_le_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.{EXT}"))
    }

    /// The set's compiled form, if a readable file for `key` holds one for `len` patterns.
    pub fn load(&self, key: &str, len: usize) -> Option<Compiled> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        let rest = bytes.strip_prefix(MAGIC)?;
        let (kept, rest) = positions(rest, len)?;
        let (refused, rest) = positions(rest, len)?;
        let db = match rest {
            [] if kept.is_empty() => None,
            _ => Some(Database::deserialize(rest)?),
        };
        // Marks the file as in use for `sweep`; a read-only directory just skips it.
        if let Ok(f) = std::fs::File::options().write(true).open(self.path(key)) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
        Some(Compiled { kept, refused, db })
    }

    /// Writes the set's compiled form (to a temporary file renamed into place, so a reader
    /// or a crash never sees half a file). Failing to write costs only the next start's
    /// time: the caller logs it and goes on.
    pub fn store(&self, key: &str, compiled: &Compiled) -> std::io::Result<()> {
        let db = match &compiled.db {
            Some(db) => db
                .serialize()
                .ok_or_else(|| std::io::Error::other("libhs could not serialize the database"))?,
            None => Vec::new(),
        };
        let mut out = MAGIC.to_vec();
        for list in [&compiled.kept, &compiled.refused] {
            out.extend((list.len() as u32).to_le_bytes());
            for p in list {
                out.extend(p.to_le_bytes());
            }
        }
        out.extend(db);
        std::fs::create_dir_all(&self.dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        std::io::Write::write_all(&mut tmp, &out)?;
        tmp.persist(self.path(key)).map_err(|e| e.error)?;
        Ok(())
    }

    /// Removes the cache files not named in `keep` and unused for [`UNUSED_FOR`] (sets of
    /// rules no longer in use), so the directory does not grow with every rule update.
    /// Returns how many went.
    pub fn sweep(&self, keep: &[String]) -> usize {
        self.sweep_older_than(keep, UNUSED_FOR)
    }

    fn sweep_older_than(&self, keep: &[String], age: std::time::Duration) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for e in entries.flatten() {
            let path = e.path();
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|a| a >= age);
            let stale = old
                && path.extension().is_some_and(|x| x == EXT)
                && path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .is_some_and(|s| !keep.iter().any(|k| k == s));
            if stale && std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

/// A count and that many positions, each below `len`; and what follows.
fn positions(bytes: &[u8], len: usize) -> Option<(Vec<u32>, &[u8])> {
    let (count, mut rest) = bytes.split_first_chunk::<4>()?;
    let count = u32::from_le_bytes(*count) as usize;
    if count > len {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let (p, tail) = rest.split_first_chunk::<4>()?;
        let p = u32::from_le_bytes(*p);
        if p as usize >= len {
            return None;
        }
        out.push(p);
        rest = tail;
    }
    Some((out, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spam::rules::hyperscan::SINGLEMATCH;

    #[test]
    fn stored_sets_come_back_and_bad_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(&dir.path().join("sub"));
        let patterns = vec![("abc".to_string(), SINGLEMATCH), ("x(".to_string(), 0)];
        let key = Cache::key(&patterns);
        assert_ne!(
            key,
            Cache::key(&patterns[..1]),
            "the key covers every pattern"
        );
        assert!(cache.load(&key, 2).is_none(), "nothing stored yet");
        let db = Database::compile(&patterns[..1]).unwrap();
        let compiled = Compiled {
            kept: vec![0],
            refused: vec![1],
            db: Some(db),
        };
        cache.store(&key, &compiled).unwrap();
        let back = cache.load(&key, 2).unwrap();
        assert_eq!((back.kept, back.refused), (vec![0], vec![1]));
        let mut hits = 0;
        assert!(back.db.unwrap().scan(b"xxabcxx", &mut |_| hits += 1));
        assert_eq!(hits, 1);
        assert!(cache.load(&key, 1).is_none(), "a position out of range");

        let path = cache.path(&key);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 9]).unwrap();
        assert!(cache.load(&key, 2).is_none(), "a truncated database");
        std::fs::write(&path, b"AMVHS0\n").unwrap();
        assert!(cache.load(&key, 2).is_none(), "another format");

        std::fs::write(dir.path().join("sub/keep.txt"), b"").unwrap();
        assert_eq!(cache.sweep(&[]), 0, "used recently: kept");
        assert_eq!(
            cache.sweep_older_than(std::slice::from_ref(&key), Default::default()),
            0
        );
        assert_eq!(cache.sweep_older_than(&[], Default::default()), 1);
        assert!(
            dir.path().join("sub/keep.txt").exists(),
            "only cache files go"
        );
    }
}
