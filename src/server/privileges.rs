//! Running as an unprivileged user (amavisd-new's `$daemon_user` / `$daemon_group`): the
//! server binds its sockets as root, hands the paths it writes to the user, and then drops to
//! it for good. Files it creates afterwards are not world-readable (umask 027, as
//! amavisd-new's `$umask`); unix sockets are 0660, so the MTA's user joins our group to reach
//! them.

use super::error::ServerError;
use crate::config::Config;
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// amavisd-new's `$umask`: no access for others to quarantined mail or temporary files.
pub const UMASK: libc::mode_t = 0o027;

/// Mode of our unix sockets: the owner and the group (the MTA's user is put in it).
pub const SOCKET_MODE: u32 = 0o660;

/// The user and group to run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

fn fail(what: &str, reason: impl std::fmt::Display) -> ServerError {
    ServerError::Privileges(format!("{what}: {reason}"))
}

/// Looks up `user` (and `group`, else the user's primary group) in the system's databases.
pub fn lookup(user: &str, group: &str) -> Result<Account, ServerError> {
    let name = CString::new(user).map_err(|e| fail("user", e))?;
    // SAFETY: getpwnam_r writes into the buffers we own and size; the result pointer is
    // only read when the call reports success.
    let (uid, primary) = unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            name.as_ptr(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut out,
        );
        if rc != 0 || out.is_null() {
            return Err(fail("user", format!("no user {user:?}")));
        }
        (pw.pw_uid, pw.pw_gid)
    };
    let gid = if group.is_empty() {
        primary
    } else {
        let gname = CString::new(group).map_err(|e| fail("group", e))?;
        // SAFETY: as above, for getgrnam_r.
        unsafe {
            let mut gr: libc::group = std::mem::zeroed();
            let mut buf = vec![0 as libc::c_char; 16 * 1024];
            let mut out: *mut libc::group = std::ptr::null_mut();
            let rc = libc::getgrnam_r(
                gname.as_ptr(),
                &mut gr,
                buf.as_mut_ptr(),
                buf.len(),
                &mut out,
            );
            if rc != 0 || out.is_null() {
                return Err(fail("group", format!("no group {group:?}")));
            }
            gr.gr_gid
        }
    };
    Ok(Account { uid, gid })
}

/// The paths the server writes once it runs as the user: temporary files, the quarantine,
/// SQLite databases' folders (the log, Bayes), the pid file, our unix sockets.
pub fn writable_paths(cfg: &Config) -> Vec<PathBuf> {
    let mut out = vec![cfg.tempdir.clone(), cfg.quarantine.directory.clone()];
    // A database in the current folder has none: that folder is the administrator's, not
    // ours to hand over.
    out.extend(
        [&cfg.sql.url, &cfg.spam.bayes_store]
            .into_iter()
            .filter_map(|u| crate::sql::dialect::sqlite_folder(u))
            .map(Path::to_path_buf),
    );
    out.push(cfg.pid_file.clone());
    out.extend(cfg.listen.iter().filter_map(|l| l.unix.clone()));
    if !cfg.release.unix.as_os_str().is_empty() {
        out.push(cfg.release.unix.clone());
    }
    out
}

fn chown(path: &Path, acct: Account) -> Result<(), ServerError> {
    std::os::unix::fs::chown(path, Some(acct.uid), Some(acct.gid))
        .map_err(|e| fail(&path.display().to_string(), e))
}

/// Hands `cfg`'s writable paths to `acct`: folders are created if missing, then they and
/// what is directly in them are chowned; sockets get [`SOCKET_MODE`].
pub fn prepare(cfg: &Config, acct: Account) -> Result<(), ServerError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    for p in writable_paths(cfg) {
        let meta = std::fs::metadata(&p);
        match meta {
            Ok(m) if m.is_dir() => {
                chown(&p, acct)?;
                for e in std::fs::read_dir(&p).map_err(|e| fail(&p.display().to_string(), e))? {
                    let e = e.map_err(|e| fail(&p.display().to_string(), e))?;
                    chown(&e.path(), acct)?;
                }
            }
            Ok(m) => {
                chown(&p, acct)?;
                if m.file_type().is_socket() {
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(SOCKET_MODE))
                        .map_err(|e| fail(&p.display().to_string(), e))?;
                }
            }
            // A folder that is not there yet (the quarantine before its first message).
            Err(_) if p.extension().is_none() => {
                std::fs::create_dir_all(&p).map_err(|e| fail(&p.display().to_string(), e))?;
                chown(&p, acct)?;
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// Becomes `acct` for good: supplementary groups dropped, then the group, then the user.
/// Checks that root cannot be regained.
pub fn drop_to(acct: Account) -> Result<(), ServerError> {
    // SAFETY: plain system calls on integers. glibc applies setgid/setuid to every thread of
    // the process (the runtime's threads included).
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(fail("setgroups", std::io::Error::last_os_error()));
        }
        if libc::setgid(acct.gid) != 0 {
            return Err(fail("setgid", std::io::Error::last_os_error()));
        }
        if libc::setuid(acct.uid) != 0 {
            return Err(fail("setuid", std::io::Error::last_os_error()));
        }
        if acct.uid != 0 && libc::setuid(0) == 0 {
            return Err(fail("setuid", "root could be regained"));
        }
    }
    Ok(())
}

/// Sets the process umask to [`UMASK`].
pub fn set_umask() {
    // SAFETY: umask only changes the process's creation mask.
    unsafe {
        libc::umask(UMASK);
    }
}

/// The current user id.
pub fn current_uid() -> libc::uid_t {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}
