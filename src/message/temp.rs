//! Names for the temporary files a message leaves while it is processed (spools, decoded
//! parts, archives handed to a library, copies for a command-line scanner, quarantine files
//! before their rename), and the sweep that removes those of processes that are gone.
//!
//! Why the sweep: a file is removed when its owner drops it, which a `kill -9`, a crash or
//! a power cut never does; nothing else looked at `tempdir`, so such files stayed for ever.
//! Each name carries the process id (`amavis-<kind>-<pid>-<random>`), so a starting filter
//! removes the files whose process no longer runs, and leaves alone those of another
//! instance sharing the folder. A process id that has been reused by then keeps its files
//! until a later start finds it gone. Files named before process ids were added
//! (`amavis-<kind>-<random>`) are removed once a day old.

use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Every temporary file of ours in `tempdir` starts with this.
const LEAD: &str = "amavis-";
/// And in folders shared with files that stay (the quarantine), this: a quarantine file
/// may be named `amavis-...` by its method, and must never look like a leftover.
const HIDDEN_LEAD: &str = ".amavis-";

/// Age after which a file without a process id in its name is taken for a leftover: no
/// message is processed for anywhere near this long.
const UNOWNED_STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The file name prefix for a temporary file of `kind` (a short word: `spool`, `part`...).
pub fn prefix(kind: &str) -> String {
    format!("{LEAD}{kind}-{}-", std::process::id())
}

/// The same for a temporary file in a folder of lasting files (see [`sweep_hidden`]).
pub fn hidden_prefix(kind: &str) -> String {
    format!("{HIDDEN_LEAD}{kind}-{}-", std::process::id())
}

/// What a sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Files removed, and their bytes.
    pub files: usize,
    pub bytes: u64,
    /// Files kept because their process runs.
    pub kept: usize,
}

/// Removes, from `dir` (not below it), the temporary files ([`prefix`]) of processes that
/// no longer run. A file that cannot be removed is reported and skipped: the sweep is
/// housekeeping, and must never stop a start.
pub fn sweep(dir: &Path) -> io::Result<Swept> {
    sweep_named(dir, LEAD)
}

/// The same for [`hidden_prefix`] names only, in a folder of lasting files.
pub fn sweep_hidden(dir: &Path) -> io::Result<Swept> {
    sweep_named(dir, HIDDEN_LEAD)
}

fn sweep_named(dir: &Path, lead: &str) -> io::Result<Swept> {
    let mut swept = Swept::default();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix(lead))
            .and_then(owner_of)
        else {
            continue;
        };
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let stale = match owner {
            Owner::Pid(pid) => !running(pid),
            Owner::Unnamed => meta
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .is_some_and(|age| age > UNOWNED_STALE_AFTER),
        };
        if !stale {
            swept.kept += 1;
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => {
                swept.files += 1;
                swept.bytes += meta.len();
            }
            Err(e) => tracing::warn!("cannot remove {}: {e}", entry.path().display()),
        }
    }
    Ok(swept)
}

/// Whose a file is, by its name.
#[derive(Debug, PartialEq, Eq)]
enum Owner {
    Pid(u32),
    /// One of ours, named without a process id.
    Unnamed,
}

/// After the lead: `<kind>-<pid>-<random>` gives the pid; `<kind>-<random>` is ours but
/// unnamed; anything else is not ours.
fn owner_of(rest: &str) -> Option<Owner> {
    let (kind, rest) = rest.split_once('-')?;
    if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    match rest.split_once('-') {
        Some((pid, _)) if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) => {
            pid.parse().ok().map(Owner::Pid)
        }
        _ => Some(Owner::Unnamed),
    }
}

/// Does process `pid` run? Ours always does; another's when signal 0 reaches it or it
/// exists under another user (EPERM).
fn running(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn names_say_whose() {
        assert_eq!(owner_of("spool-4242-a1B2c3"), Some(Owner::Pid(4242)));
        assert_eq!(owner_of("part-a1B2c3"), Some(Owner::Unnamed));
        assert_eq!(owner_of("rar-123-x.rar"), Some(Owner::Pid(123)));
        assert_eq!(owner_of("tmpAbc123"), None);
        assert_eq!(owner_of("Spool-1-x"), None);
        assert!(prefix("spool").starts_with(&format!("amavis-spool-{}-", std::process::id())));
    }

    #[test]
    fn removes_what_a_dead_process_left_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dead_pid();
        let put = |name: &str, bytes: usize| {
            std::fs::write(dir.path().join(name), vec![b'x'; bytes]).unwrap()
        };
        put(&format!("amavis-spool-{dead}-aaaaaa"), 100);
        put(&format!("amavis-part-{dead}-bbbbbb"), 20);
        put(&format!("amavis-scan-{}-cccccc", std::process::id()), 5);
        put("amavis-spool-dddddd", 7); // unnamed, new: kept
        put("amavisd.pid", 3); // not ours
        std::fs::create_dir(dir.path().join(format!("amavis-part-{dead}-dir"))).unwrap();
        let swept = sweep(dir.path()).unwrap();
        assert_eq!(
            swept,
            Swept {
                files: 2,
                bytes: 120,
                kept: 2
            }
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left.len(), 4, "{left:?}");
        assert!(
            !left
                .iter()
                .any(|n| n.contains(&format!("-{dead}-")) && !n.ends_with("dir"))
        );
    }

    #[test]
    fn in_the_quarantine_only_hidden_names_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dead_pid();
        let kept = dir.path().join(format!("amavis-spam-{dead}-x.gz"));
        std::fs::write(&kept, b"a quarantined message a method named amavis-...").unwrap();
        let temp = dir.path().join(format!(".amavis-quar-{dead}-abcdef"));
        std::fs::write(&temp, b"half written").unwrap();
        assert_eq!(sweep_hidden(dir.path()).unwrap().files, 1);
        assert!(kept.exists() && !temp.exists());
        assert!(hidden_prefix("quar").starts_with(".amavis-quar-"));
    }

    #[test]
    fn an_old_unnamed_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("amavis-spool-zzzzzz");
        std::fs::write(&path, b"old").unwrap();
        let two_days_ago = SystemTime::now() - Duration::from_secs(48 * 3600);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
        assert_eq!(sweep(dir.path()).unwrap().files, 1);
        assert!(!path.exists());
    }

    #[test]
    fn a_missing_folder_is_an_error_not_a_panic() {
        assert!(sweep(Path::new("/nonexistent/amavis-temp")).is_err());
    }
}
