//! A kill aimed at a quarantine write. The window between the quarantine copy and its SQL
//! record is a few hundred microseconds on a fast disk: a tokio timer's millisecond, or a
//! poll of the folder, mostly misses it. inotify wakes this thread as the file event
//! happens, and the SIGKILL leaves from here at once.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Where in the write to strike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// As the hidden temporary file is made: during the write (a half-written temporary
    /// file is left for the next start to sweep).
    Writing,
    /// As the complete copy is renamed into place: before its SQL record (the next start
    /// points the row at it).
    Written,
}

/// Waits up to `limit` for `moment` of a write in `dir` and then, on this thread, bumps
/// `generation` (so the client knows the cut is a kill's) and SIGKILLs `pid`. Returns whether
/// the moment came; on `false` nothing was killed. Blocking: run it on a blocking thread.
pub fn kill_at(
    dir: &Path,
    moment: Moment,
    pid: u32,
    generation: &std::sync::atomic::AtomicU64,
    limit: Duration,
) -> Result<bool, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = CString::new(dir.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: plain syscalls on a descriptor this function owns and closes.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    if fd < 0 {
        return Err(format!(
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mask = match moment {
        Moment::Writing => libc::IN_CREATE,
        Moment::Written => libc::IN_MOVED_TO,
    };
    // SAFETY: `fd` is ours, `path` a valid C string.
    let result = if unsafe { libc::inotify_add_watch(fd, path.as_ptr(), mask) } < 0 {
        Err(format!(
            "inotify_add_watch {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ))
    } else {
        Ok(wait_readable(fd, limit))
    };
    if result == Ok(true) {
        generation.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: kill(2) on our own child's pid, which its owner has not yet reaped.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    // SAFETY: closes the descriptor made above, once.
    unsafe { libc::close(fd) };
    result
}

/// Whether `fd` became readable (an event came) within `limit`.
fn wait_readable(fd: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one pollfd on our own descriptor.
        match unsafe { libc::poll(&mut p, 1, ms.max(1)) } {
            n if n > 0 => return true,
            0 => return false,
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn strikes_when_a_file_appears_and_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let generation = AtomicU64::new(0);
        let quiet = kill_at(
            dir.path(),
            Moment::Writing,
            child.id(),
            &generation,
            Duration::from_millis(50),
        );
        assert_eq!(quiet, Ok(false));
        assert!(
            child.try_wait().unwrap().is_none(),
            "not killed without a write"
        );

        let d = dir.path().to_path_buf();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            std::fs::write(d.join(".quar-tmp"), b"x").unwrap();
            std::fs::rename(d.join(".quar-tmp"), d.join("virus-x")).unwrap();
        });
        let hit = kill_at(
            dir.path(),
            Moment::Written,
            child.id(),
            &generation,
            Duration::from_secs(10),
        );
        writer.join().unwrap();
        assert_eq!(hit, Ok(true));
        assert_eq!(generation.load(std::sync::atomic::Ordering::Relaxed), 1);
        let status = child.wait().unwrap();
        assert!(!status.success(), "killed: {status}");
    }
}
