//! The run's disk: a small tmpfs holding the filter's tempdir, its quarantine and (with
//! SQLite) its database, so that "disk full" can be made and undone without touching the
//! machine's own disks. Mounting needs root (as CI has); without it the run uses a plain
//! folder and says that the disk-full fault is not available.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs the run may fill.
pub struct Disk {
    path: PathBuf,
    filler: PathBuf,
}

impl Disk {
    /// Mounts a tmpfs of `mib` MiB on `path` (made if missing).
    pub fn mount(path: &Path, mib: u64) -> Result<Disk, String> {
        std::fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0755"),
                "tmpfs",
            ])
            .arg(path)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount tmpfs on {}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Disk {
            path: path.to_path_buf(),
            filler: path.join("chaos-filler"),
        })
    }

    /// Takes every free byte, so that the filter's next write fails with ENOSPC.
    pub fn fill(&self) -> Result<(), String> {
        let free = free_bytes(&self.path)?;
        let f = std::fs::File::create(&self.filler).map_err(|e| e.to_string())?;
        // Allocated, not sparse: tmpfs counts allocated pages only. A little of it may be
        // taken meanwhile; whatever then fails to allocate is what the filter was writing.
        let mut len = free;
        while len > 0 {
            use std::os::fd::AsRawFd;
            // SAFETY: fallocate(2) on a file descriptor we own, with no pointers.
            let r = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len as libc::off_t) };
            if r == 0 {
                return Ok(());
            }
            len = len.saturating_sub(64 * 1024);
        }
        Ok(())
    }

    /// Gives the space back.
    pub fn free(&self) -> Result<(), String> {
        match std::fs::remove_file(&self.filler) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("{}: {e}", self.filler.display())),
        }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        let _ = self.free();
        let _ = Command::new("umount").arg("-l").arg(&self.path).output();
    }
}

fn free_bytes(path: &Path) -> Result<u64, String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: statvfs(3) writes into the zeroed struct we pass; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(format!(
            "statvfs {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}
