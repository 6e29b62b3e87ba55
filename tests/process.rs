//! The `amavisd` binary as an administrator runs it: config errors, start/status/reload/stop,
//! and SIGTERM with a message in flight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use amavisd_testing::sink::{Sink, SinkMode};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_amavisd");

fn amavisd(cfg: &Path, action: &str) -> (i32, String) {
    let out = Command::new(BIN)
        .arg("-c")
        .arg(cfg)
        .arg(action)
        .output()
        .expect("run amavisd");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn write_config(
    dir: &Path,
    listen_port: u16,
    forward_port: u16,
    extra: &str,
) -> std::path::PathBuf {
    let path = dir.join("amavisd.toml");
    let text = format!(
        "myhostname = \"filter.example.com\"\n\
         forward_method = \"smtp:[127.0.0.1]:{forward_port}\"\n\
         tempdir = \"{d}/tmp\"\npid_file = \"{d}/amavisd.pid\"\n{extra}\n\
         [[listen]]\ninet = \"127.0.0.1:{listen_port}\"\n\
         [log]\nfile = \"{d}/amavisd.log\"\n\
         [av]\nprimary = []\n\
         [spam]\nenabled = false\n\
         [sql]\nurl = \"sqlite:{d}/amavisd.sqlite\"\n\
         [quarantine]\ndirectory = \"{d}/quarantine\"\n\
         [release]\nunix = \"{d}/amavisd.sock\"\n",
        d = dir.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A next hop that accepts, a work folder, a free port and a configuration for them.
struct Rig {
    sink: std::sync::Arc<Sink>,
    sink_task: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
    port: u16,
    cfg: std::path::PathBuf,
}

async fn rig() -> Rig {
    let sink = Sink::new(SinkMode::Accept, true);
    let (sink_port, sink_task) = sink.spawn().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(dir.path(), port, sink_port, "");
    Rig {
        sink,
        sink_task,
        dir,
        port,
        cfg,
    }
}

/// The process id the daemon started in `dir` wrote to its pid file.
fn pid_of(dir: &Path) -> i32 {
    std::fs::read_to_string(dir.join("amavisd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Stops the daemon a test started, even when an assertion fails first: a failed run must not
/// leave a daemon behind.
struct StopOnDrop(std::path::PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .arg("-c")
            .arg(&self.0)
            .arg("stop")
            .output();
    }
}

#[test]
fn bad_config_names_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[limits]\nmax_connections = -1\n").unwrap();
    let (code, text) = amavisd(&path, "foreground");
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("bad.toml") && text.contains("limits.max_connections"),
        "{text}"
    );
    std::fs::write(&path, "forward_methd = \"smtp:[127.0.0.1]:10025\"\n").unwrap();
    let (code, text) = amavisd(&path, "foreground");
    assert_eq!(code, 1);
    assert!(
        text.contains("forward_methd") && text.contains("unknown field"),
        "{text}"
    );
    let (code, text) = amavisd(&dir.path().join("missing.toml"), "status");
    assert_eq!(code, 1);
    assert!(
        text.contains("missing.toml") && text.contains("cannot read"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_status_reload_stop_with_mail_in_flight() {
    let Rig {
        sink,
        sink_task,
        dir,
        port,
        cfg,
    } = rig().await;

    let (code, text) = amavisd(&cfg, "status");
    assert_eq!(code, 3, "{text}");
    let (code, text) = amavisd(&cfg, "start");
    let _stop = StopOnDrop(cfg.clone());
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("started, pid"), "{text}");
    let (code, text) = amavisd(&cfg, "start");
    assert_eq!(code, 1, "a second start is refused: {text}");
    let (code, text) = amavisd(&cfg, "status");
    assert_eq!(code, 0, "{text}");

    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut c = Client::connect(addr).await;
    let r = c
        .send_mail(false, "s@example.org", &["u@example.com"], SIMPLE)
        .await;
    assert!(r.starts_with("250 2.0.0"), "{r}");

    // `amavisd reload` with a good file is taken.
    let (code, text) = amavisd(&cfg, "reload");
    assert_eq!(code, 0, "{text}");
    let log_path = dir.path().join("amavisd.log");
    let log_has = |s: &str| {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains(s)
    };
    assert!(eventually(|| log_has("reloaded")).await);
    // A broken file on reload (SIGHUP: the CLI itself would refuse to read it) is refused and
    // logged; the daemon keeps serving with the old configuration.
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, "this is not toml [").unwrap();
    let pid = pid_of(dir.path());
    // SAFETY: plain kill(2) to the daemon this test started.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    assert!(eventually(|| log_has("reload refused")).await);
    let mut c = Client::connect(addr).await;
    assert!(
        c.send_mail(false, "s@example.org", &["u@example.com"], SIMPLE)
            .await
            .starts_with("250")
    );
    std::fs::write(&cfg, good).unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("Passed CLEAN {RelayedInbound}, [127.0.0.1]:"),
        "{log}"
    );

    // SIGTERM with a message half-sent: it is finished, then the daemon exits.
    let mut busy = Client::connect(addr).await;
    busy.cmd("EHLO x").await;
    busy.cmd("MAIL FROM:<s@example.org>").await;
    busy.cmd("RCPT TO:<u@example.com>").await;
    busy.cmd("DATA").await;
    busy.send(b"Subject: in flight\r\n\r\n").await;
    let stopper = std::thread::spawn({
        let cfg = cfg.clone();
        move || amavisd(&cfg, "stop")
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    busy.send(b"last line\r\n.\r\n").await;
    let r = busy.reply().await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let (code, text) = stopper.join().unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("stopped"), "{text}");
    assert!(!dir.path().join("amavisd.pid").exists());
    assert_eq!(amavisd(&cfg, "status").0, 3);
    assert!(
        sink.received()
            .iter()
            .any(|m| String::from_utf8_lossy(&m.data).contains("in flight"))
    );
    sink_task.abort();
}

#[test]
fn init_db_creates_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), free_port(), free_port(), "");
    let (code, out) = amavisd(&cfg, "init-db");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SQL tables ready"), "{out}");
    let db = std::fs::read(dir.path().join("amavisd.sqlite")).expect("database file");
    assert!(db.starts_with(b"SQLite format 3"));
    // Twice is fine: every statement is "if not exists".
    assert_eq!(amavisd(&cfg, "init-db").0, 0);
    // A bad URL is refused at load, naming the key.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[sql]\nurl = \"oracle://x\"\n").unwrap();
    let (code, out) = amavisd(&bad, "init-db");
    assert_eq!(code, 1);
    assert!(out.contains("sql.url"), "{out}");
}

/// Started as root with `user = "nobody"`: the daemon binds, hands its folders and sockets to
/// nobody, drops root for good (all four uids), and still passes mail, logs it to SQLite and
/// stops cleanly. Needs root, as CI runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_to_the_configured_user() {
    use amavisd::server::privileges;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(
        privileges::current_uid(),
        0,
        "this test starts amavisd as root (CI runs as root)"
    );
    let nobody = privileges::lookup("nobody", "").expect("user nobody");
    let sink = Sink::new(SinkMode::Accept, true);
    let (sink_port, sink_task) = sink.spawn().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // nobody must be able to reach the folders inside.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = free_port();
    let cfg = write_config(dir.path(), port, sink_port, "user = \"nobody\"");
    let (code, text) = amavisd(&cfg, "start");
    let _stop = StopOnDrop(cfg.clone());
    assert_eq!(code, 0, "{text}");
    let pid = pid_of(dir.path());
    let log_path = dir.path().join("amavisd.log");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        eventually(|| log().contains("running as user \"nobody\"")).await,
        "{}",
        log()
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uids = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|u| u.parse::<u32>().unwrap())
        .collect::<Vec<_>>();
    assert_eq!(uids, vec![nobody.uid; 4], "{status}");
    // Its folders and its release socket are nobody's; the socket is 0660.
    let owner = |p: &str| std::fs::metadata(dir.path().join(p)).unwrap().uid();
    assert_eq!(owner("tmp"), nobody.uid);
    assert_eq!(owner("quarantine"), nobody.uid);
    assert_eq!(owner("amavisd.sock"), nobody.uid);
    let mode = std::fs::metadata(dir.path().join("amavisd.sock"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);
    // Mail still passes, and is logged to SQLite by nobody.
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut c = Client::connect(addr).await;
    let r = c
        .send_mail(false, "s@example.org", &["u@example.com"], SIMPLE)
        .await;
    assert!(r.starts_with("250 2.0.0"), "{r}\n{}", log());
    assert_eq!(owner("amavisd.sqlite"), nobody.uid);
    let (code, text) = amavisd(&cfg, "stop");
    assert_eq!(code, 0, "{text}");
    assert!(
        !dir.path().join("amavisd.pid").exists(),
        "removed by nobody"
    );
    sink_task.abort();
}

/// The shipped systemd unit passes `systemd-analyze verify` (with ExecStart pointed at the
/// binary just built); .ci/run installs systemd for it.
#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/systemd/amavisd-rs.service"),
    )
    .unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/amavisd "));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amavisd-rs.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/amavisd ", &format!("{BIN} ")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (apt-get install systemd; .ci/run does)");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        !text.contains("amavisd-rs.service"),
        "warnings about the unit: {text}"
    );
}

/// `[metrics] listen`: Prometheus scrapes the counters over HTTP; `amavisd status` shows the
/// session in flight (stage, age, client, size) and the counters since start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_and_live_status() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sink = Sink::new(SinkMode::Accept, true);
    let (sink_port, sink_task) = sink.spawn().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    let cfg = write_config(dir.path(), port, sink_port, "");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n"
    ));
    std::fs::write(&cfg, text).unwrap();
    let (code, out) = amavisd(&cfg, "start");
    let _stop = StopOnDrop(cfg.clone());
    assert_eq!(code, 0, "{out}");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut c = Client::connect(addr).await;
    let r = c
        .send_mail(false, "s@example.org", &["u@example.com"], SIMPLE)
        .await;
    assert!(r.starts_with("250 2.0.0"), "{r}");

    let scrape = || async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", metrics_port))
            .await
            .expect("metrics endpoint");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).await.unwrap();
        body
    };
    let body = scrape().await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    for want in [
        "amavisd_recipients_total{category=\"clean\",destiny=\"pass\"} 1",
        "amavisd_messages_total{reply=\"2xx\"} 1",
        "amavisd_stage_seconds_bucket{stage=\"checks\",le=",
        "amavisd_stage_seconds_count{stage=\"forward\"} 1",
        "amavisd_bytes_in_total ",
        "amavisd_bytes_out_total ",
        "amavisd_sessions_in_flight 1",
        "amavisd_spam_prefilter_one_pass_rules ",
    ] {
        assert!(body.contains(want), "missing {want}:\n{body}");
    }

    // A message half-sent: status shows its session receiving.
    let mut busy = Client::connect(addr).await;
    busy.cmd("EHLO x").await;
    busy.cmd("MAIL FROM:<s@example.org>").await;
    busy.cmd("RCPT TO:<u@example.com>").await;
    busy.cmd("DATA").await;
    busy.send(b"Subject: in flight\r\n\r\nsome text\r\n").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cfg2 = cfg.clone();
    let (code, out) = tokio::task::spawn_blocking(move || amavisd(&cfg2, "status"))
        .await
        .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 sessions in flight"), "{out}");
    assert!(out.contains("; spam prefilter: "), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("receiving") && l.contains("127.0.0.1")),
        "{out}"
    );
    assert!(
        out.contains("amavisd_recipients_total{category=\"clean\",destiny=\"pass\"} 1"),
        "{out}"
    );
    busy.send(b".\r\n").await;
    assert!(busy.reply().await.starts_with("250"));
    sink_task.abort();
}

/// `amavisd check`, off the test's runtime: the sink it greets runs on it.
async fn check_off_runtime(cfg: &Path) -> (i32, String) {
    let cfg = cfg.to_path_buf();
    tokio::task::spawn_blocking(move || amavisd(&cfg, "check"))
        .await
        .unwrap()
}

/// `amavisd check` says, one line per part, whether the filter would serve mail, and fails
/// (exit 1) naming the part that would stop it; a running daemon's own sockets are fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_what_would_stop_mail() {
    let sink = Sink::new(SinkMode::Accept, true);
    let (sink_port, sink_task) = sink.spawn().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clamd = "[[av.primary]]\nname = \"ClamAV-clamd\"\ntype = \"clamd\"\n\
                 socket = \"/var/run/clamav/clamd.ctl\"\ntimeout = 10\n";
    let port = free_port();
    let cfg = write_config(dir.path(), port, sink_port, "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[av]\nprimary = []\n", "");
    // The front ends beside SMTP: rspamd's HTTP protocol and a milter.
    let (http, milter) = (free_port(), free_port());
    let fronts = format!(
        "[http]\nlisten = \"127.0.0.1:{http}\"\n[[milter]]\ninet = \"127.0.0.1:{milter}\"\n"
    );
    std::fs::write(&cfg, format!("{text}{clamd}{fronts}")).unwrap();
    let (code, text) = check_off_runtime(&cfg).await;
    assert_eq!(code, 0, "{text}");
    for line in [
        "config     ok",
        &format!("listen     ok    127.0.0.1:{port}: can be bound"),
        &format!("http       ok    127.0.0.1:{http}: can be bound"),
        &format!("milter     ok    127.0.0.1:{milter}: can be bound"),
        &format!("forward    ok    smtp:[127.0.0.1]:{sink_port}: 220 "),
        "av         ok    ClamAV-clamd (primary) /var/run/clamav/clamd.ctl: ClamAV ",
        "sql        ok",
        "release    ok",
        "tempdir    ok",
        // The resolver is named; whether a blocklist answers depends on this host's DNS
        // (tests/dns_rules.rs has its own server): a warning at worst, never a failure.
        "dns        ",
        "amavisd would serve mail",
    ] {
        assert!(text.contains(line), "{line:?} missing:\n{text}");
    }
    // Running: its sockets are in use by it, and that is fine.
    let (code, out) = amavisd(&cfg, "start");
    let _stop = StopOnDrop(cfg.clone());
    assert_eq!(code, 0, "{out}");
    let (code, text) = check_off_runtime(&cfg).await;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("in use by the running amavisd (pid "),
        "{text}"
    );
    for part in ["http ", "milter "] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(part) && l.contains("in use by the running amavisd")),
            "{part}: {text}"
        );
    }
    assert_eq!(amavisd(&cfg, "stop").0, 0);

    // What would make every message wait: the next hop down, clamd gone.
    let good = std::fs::read_to_string(&cfg).unwrap();
    let closed = free_port();
    std::fs::write(
        &cfg,
        good.replace(&format!(":{sink_port}\""), &format!(":{closed}\""))
            .replace("/var/run/clamav/clamd.ctl", "/nonexistent/clamd.ctl"),
    )
    .unwrap();
    let (code, text) = amavisd(&cfg, "check");
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("forward    FAIL  smtp:[127.0.0.1]:"),
        "{text}"
    );
    assert!(
        text.contains("av         FAIL  no virus scanner answers"),
        "{text}"
    );
    assert!(text.contains("amavisd would NOT serve mail"), "{text}");
    // A configuration that does not load: the file, the key and why.
    std::fs::write(&cfg, "[limits]\nmax_conections = 5\n").unwrap();
    let (code, text) = amavisd(&cfg, "check");
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("config     FAIL") && text.contains("max_conections"),
        "{text}"
    );
    // Listed in --help.
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("check"));
    sink_task.abort();
}

/// A reader that goes away (`amavisd ... | head`) ends the program quietly, not with a panic.
#[test]
fn closed_stdout_is_a_quiet_end() {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/convert/amavisd.conf");
    let mut child = Command::new(BIN)
        .arg("convert-config")
        .arg(&conf)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `kill -9` in the middle of DATA leaves the message's spool file in tempdir (and, had it
/// come during a quarantine write, a temporary file in the quarantine folder); the next
/// start removes what the dead process left and logs it, and the retried message passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_after_kill_9_removes_the_dead_process_temp_files() {
    let Rig {
        sink,
        sink_task,
        dir,
        port,
        cfg,
    } = rig().await;
    let (code, text) = amavisd(&cfg, "start");
    let _stop = StopOnDrop(cfg.clone());
    assert_eq!(code, 0, "{text}");
    let tmp = dir.path().join("tmp");
    let spools = || -> Vec<String> {
        std::fs::read_dir(&tmp)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("amavis-spool-"))
                    .collect()
            })
            .unwrap_or_default()
    };

    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut c = Client::connect(addr).await;
    c.cmd("EHLO x").await;
    c.cmd("MAIL FROM:<s@example.org>").await;
    c.cmd("RCPT TO:<u@example.com>").await;
    c.cmd("DATA").await;
    c.send(b"Subject: killed in flight\r\n\r\n").await;
    // More than the spool keeps in memory, so it is on disk.
    let line = [b'x'; 998];
    for _ in 0..300 {
        c.send(&line).await;
        c.send(b"\r\n").await;
    }
    assert!(eventually(|| !spools().is_empty()).await, "no spool file");
    let pid = pid_of(dir.path());
    // SAFETY: plain kill(2) to the daemon this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(eventually(|| amavisd(&cfg, "status").0 != 0).await);
    let left = spools();
    assert_eq!(left.len(), 1, "the killed process's spool stays: {left:?}");
    assert!(
        left[0].starts_with(&format!("amavis-spool-{pid}-")),
        "{left:?}"
    );
    // What a kill during a quarantine write leaves (the rename never came).
    let quarantine = dir.path().join("quarantine");
    std::fs::create_dir_all(&quarantine).unwrap();
    let half = quarantine.join(format!(".amavis-quar-{pid}-abcdef"));
    std::fs::write(&half, b"half a quarantined message").unwrap();
    let kept = quarantine.join("virus-AbCdEf123456");
    std::fs::write(&kept, b"a quarantined message").unwrap();

    let (code, text) = amavisd(&cfg, "start");
    assert_eq!(code, 0, "a start after kill -9 (stale pid file): {text}");
    // The sweep runs beside serving (a big quarantine takes a while to walk).
    assert!(eventually(|| spools().is_empty()).await, "{:?}", spools());
    assert!(eventually(|| !half.exists()).await && kept.exists());
    let log_says = |what: &str| {
        std::fs::read_to_string(dir.path().join("amavisd.log")).is_ok_and(|l| l.contains(what))
    };
    assert!(eventually(|| log_says("removed 1 temporary files")).await);
    assert!(log_says("by processes that are gone"));
    // The client (Postfix) got no reply to DATA and sends again: it passes.
    let mut c = Client::connect(addr).await;
    let r = c
        .send_mail(false, "s@example.org", &["u@example.com"], SIMPLE)
        .await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let got = sink.received();
    assert_eq!(got.len(), 1, "only the retry reached the next hop");
    sink_task.abort();
}

/// A kill between the quarantine copy and the end of its SQL record leaves a `msgs` row with
/// `content` NULL and no `quar_loc`: nobody can find or release the copy. The next start
/// finds the rows this host left so, points the one with a copy at it (and its category,
/// from the method that names the file), reports the rest, and the copy can be released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_records_the_quarantined_copy_of_an_interrupted_message() {
    use amavisd::sql::{SqlConfig, Store};
    use sqlx::Row;
    let Rig {
        sink,
        sink_task,
        dir,
        port: _,
        cfg,
    } = rig().await;
    let (code, text) = amavisd(&cfg, "init-db");
    assert_eq!(code, 0, "{text}");
    let store = Store::new(&SqlConfig {
        url: format!("sqlite:{}/amavisd.sqlite", dir.path().display()),
        ..SqlConfig::default()
    })
    .unwrap()
    .unwrap();
    let copied = amavisd::message::generate_mail_id().unwrap();
    let lost = amavisd::message::generate_mail_id().unwrap();
    let minute_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 60;
    for (ids, host) in [
        (&copied, "filter.example.com"),
        (&lost, "filter.example.com"),
    ] {
        sqlx::query(
            "INSERT INTO msgs (partition_tag, mail_id, secret_id, am_id, time_num, time_iso, \
             sid, size, host, quar_type, quar_loc) VALUES (0, ?, ?, 'a', ?, '', 1, 10, ?, ' ', '')",
        )
        .bind(ids.mail_id.clone())
        .bind(ids.secret_id.clone())
        .bind(minute_ago)
        .bind(host)
        .execute(store.pool())
        .await
        .unwrap();
    }
    let quarantine = dir.path().join("quarantine");
    std::fs::create_dir_all(&quarantine).unwrap();
    let mut file = amavisd::quarantine::envelope_header(
        "s@example.org",
        &["u@example.com"],
        &["u@example.com"],
        &copied.mail_id,
    );
    file.extend_from_slice(b"Subject: quarantined, then killed\n\nbody\n");
    let name = format!("virus-{}", copied.mail_id);
    std::fs::write(quarantine.join(&name), file).unwrap();

    let (code, text) = amavisd(&cfg, "start");
    let _stop = StopOnDrop(cfg.clone());
    assert_eq!(code, 0, "{text}");
    let log_path = dir.path().join("amavisd.log");
    let log_has = |s: &str| {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains(s)
    };
    assert!(
        eventually(|| log_has("2 messages of this host were interrupted")).await,
        "{}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    assert!(log_has("1 had a quarantined copy, now recorded"));
    let row = |id: String| {
        let pool = store.pool().clone();
        async move {
            let r = sqlx::query("SELECT quar_type, quar_loc, content FROM msgs WHERE mail_id = ?")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
            let get = |i| r.try_get::<Option<String>, _>(i).unwrap();
            (get(0), get(1), get(2))
        }
    };
    assert_eq!(
        row(copied.mail_id.clone()).await,
        (Some("F".into()), Some(name.clone()), Some("V".into()))
    );
    assert_eq!(
        row(lost.mail_id.clone()).await.2,
        None,
        "left as amavisd-new leaves it"
    );
    // Looked at once: the next start neither finds nor reports them again.
    assert!(
        store
            .interrupted("filter.example.com", minute_ago + 120)
            .await
            .unwrap()
            .is_empty()
    );

    let out = Command::new(env!("CARGO_BIN_EXE_amavisd-release"))
        .arg("-c")
        .arg(&cfg)
        .args([&name, &copied.secret_id])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("250 2.0.0"), "{err}");
    let got = sink.received();
    assert_eq!(got.len(), 1);
    assert!(String::from_utf8_lossy(&got[0].data).contains("quarantined, then killed"));
    sink_task.abort();
}
