//! `amavisd start|stop|reload|status`: the daemon is found through its pid file.

use super::error::ServerError;
use crate::config::Config;
use std::path::Path;
use std::time::{Duration, Instant};

/// The pid in `path`, if the file holds one.
pub fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&p| p > 0)
}

/// True when a process with this pid exists.
pub fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn running_pid(cfg: &Config) -> Result<i32, ServerError> {
    read_pid(&cfg.pid_file)
        .filter(|&p| alive(p))
        .ok_or_else(|| ServerError::NotRunning(cfg.pid_file.clone()))
}

fn signal(pid: i32, sig: i32) -> Result<(), ServerError> {
    // SAFETY: plain kill(2) on a pid we read from our own pid file.
    if unsafe { libc::kill(pid, sig) } != 0 {
        return Err(ServerError::Spawn(format!(
            "cannot signal {pid}: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// Asks the daemon to stop and waits until it has finished its messages and exited.
pub fn stop(cfg: &Config, wait: Duration) -> Result<i32, ServerError> {
    let pid = running_pid(cfg)?;
    signal(pid, libc::SIGTERM)?;
    let t = Instant::now();
    while alive(pid) {
        if t.elapsed() > wait {
            return Err(ServerError::StopTimeout {
                pid,
                secs: wait.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(pid)
}

/// Asks the daemon to re-read its configuration (SIGHUP).
pub fn reload(cfg: &Config) -> Result<i32, ServerError> {
    let pid = running_pid(cfg)?;
    signal(pid, libc::SIGHUP)?;
    Ok(pid)
}

/// The pid of the running daemon.
pub fn status(cfg: &Config) -> Result<i32, ServerError> {
    running_pid(cfg)
}

/// The running daemon's own account of itself (sessions in flight, counters), asked over
/// its release socket (`request=status`), as lines for `amavisd status`.
pub fn live_status(cfg: &Config) -> Result<String, ServerError> {
    use std::io::{BufRead, BufReader, Write};
    let fail = |e: std::io::Error| ServerError::Spawn(format!("status: {e}"));
    let timeout = Some(std::time::Duration::from_secs(5));
    let lines: Vec<String> = if !cfg.release.unix.as_os_str().is_empty() {
        let mut s = std::os::unix::net::UnixStream::connect(&cfg.release.unix).map_err(fail)?;
        s.set_read_timeout(timeout).map_err(fail)?;
        s.write_all(b"request=status\r\n\r\n").map_err(fail)?;
        read_attrs(BufReader::new(s)).map_err(fail)?
    } else if !cfg.release.inet.is_empty() {
        let mut s = std::net::TcpStream::connect(&cfg.release.inet).map_err(fail)?;
        s.set_read_timeout(timeout).map_err(fail)?;
        s.write_all(b"request=status\r\n\r\n").map_err(fail)?;
        read_attrs(BufReader::new(s)).map_err(fail)?
    } else {
        return Err(ServerError::Spawn(
            "status: no release socket is configured ([release] unix or inet)".into(),
        ));
    };
    fn read_attrs(r: impl BufRead) -> std::io::Result<Vec<String>> {
        let mut out = Vec::new();
        for line in r.lines() {
            let line = line?;
            if line.trim().is_empty() {
                break;
            }
            out.push(line);
        }
        Ok(out)
    }
    let mut uptime = String::new();
    let mut prefilter = String::new();
    let mut sessions = Vec::new();
    let mut counters = Vec::new();
    for l in &lines {
        match crate::release::ampdp::parse_line(l) {
            Some((n, v)) if n == "uptime" => uptime = v,
            Some((n, v)) if n == "prefilter" => prefilter = v,
            Some((n, v)) if n == "session" => sessions.push(v),
            Some((n, v)) if n == "counter" => counters.push(v),
            _ => {}
        }
    }
    let mut out = format!(
        "up {uptime} s; {} sessions in flight; spam prefilter: {prefilter}\n",
        sessions.len()
    );
    if !sessions.is_empty() {
        out.push_str("  id      stage         age s  client           size\n");
        for s in &sessions {
            let f: Vec<&str> = s.split(' ').collect();
            if let [id, stage, age, client, size] = f.as_slice() {
                out.push_str(&format!(
                    "  #{id:<6} {stage:<12} {age:>6}  {client:<15} {size:>8}\n"
                ));
            }
        }
    }
    out.push_str("counters since start:\n");
    for c in &counters {
        out.push_str(&format!("  {c}\n"));
    }
    Ok(out)
}

/// Starts `amavisd -c CONFIG foreground` detached (new session, stdin closed, output appended to
/// `log.file`) and waits until it has written its pid file.
pub fn start_daemon(config_path: &Path, cfg: &Config) -> Result<i32, ServerError> {
    use std::os::unix::process::CommandExt;
    if let Ok(pid) = running_pid(cfg) {
        return Err(ServerError::AlreadyRunning {
            pid,
            pid_file: cfg.pid_file.clone(),
        });
    }
    let exe = std::env::current_exe().map_err(|e| ServerError::Spawn(e.to_string()))?;
    if let Some(dir) = cfg.log.file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| ServerError::Dir {
            dir: dir.to_path_buf(),
            source: e,
        })?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&cfg.log.file)
        .map_err(|e| ServerError::Spawn(format!("{}: {e}", cfg.log.file.display())))?;
    let log2 = log
        .try_clone()
        .map_err(|e| ServerError::Spawn(e.to_string()))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("-c")
        .arg(config_path)
        .arg("foreground")
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2);
    // SAFETY: setsid is async-signal-safe; it detaches the child from our terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| ServerError::Spawn(e.to_string()))?;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(15) {
        if let Ok(Some(st)) = child.try_wait() {
            return Err(ServerError::Spawn(format!(
                "the daemon exited at once ({st}); see {}",
                cfg.log.file.display()
            )));
        }
        if let Some(pid) = read_pid(&cfg.pid_file)
            && pid == child.id() as i32
        {
            return Ok(pid);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(ServerError::Spawn(format!(
        "no pid file after 15 s; see {}",
        cfg.log.file.display()
    )))
}
