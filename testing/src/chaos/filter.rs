//! The filter under test: the real `amavisd` binary in the foreground, as systemd runs it,
//! with a configuration pointing every server it uses at the run's fault proxies and its
//! folders at the run's disk. The harness kills it (SIGKILL) and stops it (SIGTERM), and
//! starts it again as systemd's `Restart=` would.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How long a start may take before the run gives up (the spam engine's rules load first).
const START_LIMIT: Duration = Duration::from_secs(180);

/// Where the filter finds what it uses.
#[derive(Debug, Clone)]
pub struct FilterSetup {
    /// This node's name: nodes sharing one SQL log must have their own (each repairs only
    /// its own interrupted rows).
    pub myhostname: String,
    /// Keep blocked mail in the SQL quarantine (nodes sharing one database, so that any of
    /// them can release it) instead of files.
    pub sql_quarantine: bool,
    /// The `amavisd` binary.
    pub bin: PathBuf,
    /// Configuration, pid file, log, release socket.
    pub dir: PathBuf,
    /// tempdir and quarantine (and a SQLite database): the disk the run may fill.
    pub disk: PathBuf,
    pub listen: SocketAddr,
    pub next_hop: SocketAddr,
    pub clamd: SocketAddr,
    /// The SQL log's URL.
    pub sql: String,
    pub spam: bool,
    /// The Bayes store's URL when the spam checks use one.
    pub bayes: Option<String>,
    /// The spam prefilter's compiled databases, kept across starts.
    pub prefilter_cache: PathBuf,
}

impl FilterSetup {
    /// The configuration: the shipped defaults but for addresses and folders, and timeouts
    /// short enough that a hung server costs seconds, not the minutes a site would allow.
    pub fn config(&self) -> String {
        let d = self.dir.display();
        let disk = self.disk.display();
        let spam = if self.spam {
            format!(
                "[spam]\nenabled = true\nbayes_store = \"{}\"\nprefilter_cache = \"{}\"\n",
                self.bayes.as_deref().unwrap_or(""),
                self.prefilter_cache.display()
            )
        } else {
            "[spam]\nenabled = false\n".to_string()
        };
        let policy = if self.sql_quarantine {
            ["virus", "banned", "spam", "bad_header"]
                .map(|c| format!("{c}_quarantine_method = \"sql:\"\n"))
                .concat()
        } else {
            String::new()
        };
        format!(
            "myhostname = \"{host}\"\n\
             forward_method = \"smtp:[{nh_ip}]:{nh_port}\"\n\
             tempdir = \"{disk}/tmp\"\npid_file = \"{d}/amavisd.pid\"\n\
             [[listen]]\ninet = \"{listen}\"\n\
             [forward]\nconnect_timeout = 5\ncommand_timeout = 10\ndata_done_timeout = 15\n\
             [log]\nfile = \"{d}/amavisd.log\"\n\
             {spam}\
             [av]\n[[av.primary]]\nname = \"ClamAV-clamd\"\ntype = \"clamd\"\n\
             tcp = \"{clamd}\"\ntimeout = 5\n\
             [sql]\nurl = \"{sql}\"\ntimeout = 5\n\
             [quarantine]\ndirectory = \"{disk}/quarantine\"\n\
             [release]\nunix = \"{d}/amavisd.sock\"\n\
             [policy]\n{policy}",
            host = self.myhostname,
            nh_ip = self.next_hop.ip(),
            nh_port = self.next_hop.port(),
            listen = self.listen,
            clamd = self.clamd,
            sql = self.sql,
        )
    }
}

/// The running filter and its generation (bumped at every kill and restart, read by the
/// client to tell a connection cut by a kill from other cuts).
pub struct Filter {
    setup: FilterSetup,
    cfg: PathBuf,
    child: Option<Child>,
    pub generation: Arc<AtomicU64>,
    /// Seconds each start took, until the filter listened.
    pub start_times: Vec<f64>,
}

impl Filter {
    /// Writes the configuration; does not start. `generation` is shared by all nodes.
    pub fn new(setup: FilterSetup, generation: Arc<AtomicU64>) -> Result<Filter, String> {
        let cfg = setup.dir.join("amavisd.toml");
        std::fs::write(&cfg, setup.config()).map_err(|e| format!("{}: {e}", cfg.display()))?;
        Ok(Filter {
            setup,
            cfg,
            child: None,
            generation,
            start_times: Vec::new(),
        })
    }

    /// The configuration file.
    pub fn config_path(&self) -> &Path {
        &self.cfg
    }

    /// The Message-IDs whose reinjection ended without the next hop's reply after the final
    /// dot ("connection lost / timed out after end of data"): the next hop may have the
    /// message, and the filter rightly answered 4xx, so a second copy is SMTP's allowed
    /// at-least-once case. From the filter's log: the forwarding warning names the log id,
    /// the message's log line (whose reply text is cut short) maps it to the Message-ID.
    pub fn unsure_after_dot(&self) -> std::collections::HashSet<String> {
        let text = std::fs::read(self.setup.dir.join("amavisd.out")).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let unsure: std::collections::HashSet<&str> = text
            .lines()
            .filter(|l| l.contains("after end of data"))
            .filter_map(log_id)
            .collect();
        text.lines()
            .filter(|l| l.contains("{TempFailed") && log_id(l).is_some_and(|i| unsure.contains(i)))
            .filter_map(|l| {
                let (_, rest) = l.split_once("Message-ID: <")?;
                Some(rest.split_once('>')?.0.to_string())
            })
            .collect()
    }

    /// What the filter's starts found its killed predecessors had left, from its log.
    pub fn repairs(&self) -> Repairs {
        let text = std::fs::read(self.setup.dir.join("amavisd.out")).unwrap_or_default();
        let mut r = Repairs::default();
        for line in String::from_utf8_lossy(&text).lines() {
            if line.contains("were interrupted before their end") {
                let rest = after(line, "SQL log: ").unwrap_or_default();
                r.interrupted += first_number(rest);
                // The count after the parenthesis (which has a "; " of its own).
                r.quarantine_recorded += rest.rsplit_once("; ").map_or(0, |(_, q)| first_number(q));
            } else if line.contains("temporary files (") {
                r.temp_files_swept += after(line, "removed ").map_or(0, first_number);
            }
        }
        r
    }

    /// The running process's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Where it listens.
    pub fn listen(&self) -> SocketAddr {
        self.setup.listen
    }

    /// Starts the process and waits until it listens.
    pub async fn start(&mut self) -> Result<(), String> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.setup.dir.join("amavisd.out"))
            .map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let began = Instant::now();
        let mut child = Command::new(&self.setup.bin)
            .arg("-c")
            .arg(&self.cfg)
            .arg("foreground")
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{}: {e}", self.setup.bin.display()))?;
        while began.elapsed() < START_LIMIT {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "amavisd exited at start ({status}); see {}",
                    self.setup.dir.join("amavisd.out").display()
                ));
            }
            if tokio::net::TcpStream::connect(self.setup.listen)
                .await
                .is_ok()
            {
                self.child = Some(child);
                self.start_times.push(began.elapsed().as_secs_f64());
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("amavisd did not listen within {START_LIMIT:?}"))
    }

    /// SIGKILL, then a new start: what a crash and systemd's restart look like from outside.
    pub async fn kill9_and_restart(&mut self) -> Result<(), String> {
        // Bumped before the kill: a client that sees its connection close must find it so.
        self.generation.fetch_add(1, Ordering::Relaxed);
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
        self.start().await
    }

    /// SIGTERM and a wait for the exit (the filter finishes its messages in flight), then a
    /// new start when `restart`.
    pub async fn stop(&mut self, restart: bool) -> Result<(), String> {
        self.generation.fetch_add(1, Ordering::Relaxed);
        if let Some(mut c) = self.child.take() {
            if let Some(pid) = c.id() {
                // SAFETY: kill(2) on our own child's pid, which we have not yet reaped.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            }
            match tokio::time::timeout(Duration::from_secs(60), c.wait()).await {
                Ok(Ok(s)) if s.success() => {}
                Ok(Ok(s)) => return Err(format!("amavisd ended with {s} after SIGTERM")),
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => {
                    let _ = c.kill().await;
                    return Err("amavisd did not end within 60 s of SIGTERM".into());
                }
            }
        }
        if restart { self.start().await } else { Ok(()) }
    }
}

/// Half-written state a restarted filter found and repaired (sums over its starts).
#[derive(Debug, Default, Clone, Copy)]
pub struct Repairs {
    /// Messages of a killed process whose SQL log row had no end.
    pub interrupted: usize,
    /// Of those, quarantined copies now recorded in their row.
    pub quarantine_recorded: usize,
    /// Temporary files removed from tempdir and the quarantine folder.
    pub temp_files_swept: usize,
}

impl std::ops::AddAssign for Repairs {
    fn add_assign(&mut self, o: Repairs) {
        self.interrupted += o.interrupted;
        self.quarantine_recorded += o.quarantine_recorded;
        self.temp_files_swept += o.temp_files_swept;
    }
}

/// The text after `marker` in `line`.
fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.split_once(marker).map(|(_, r)| r)
}

/// The number at the start of `s` (0 when none).
fn first_number(s: &str) -> usize {
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(0)
}

/// The log id of a filter log line: `(1234-07)` after the target's colon.
fn log_id(line: &str) -> Option<&str> {
    let (_, rest) = line.split_once(": (")?;
    Some(rest.split_once(')')?.0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_lost_reply_after_the_dot_is_found_by_log_id() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("amavisd.out"),
            "T  WARN amavisd::pipeline::deliver: (9-2) forwarding to x failed: connection \
             lost after end of data: unexpected end of file\n\
             T  INFO amavis: (9-2) Passed CLEAN {TempFailedInbound}, Message-ID: <a@x>, 451 \
             4.4.2 Error: cannot forward, id=9-2: connection lost after end o..., 5 ms\n\
             T  INFO amavis: (9-3) Passed CLEAN {TempFailedInbound}, Message-ID: <b@x>, 451 \
             4.3.0 sink says later\n",
        )
        .unwrap();
        let setup = FilterSetup {
            myhostname: String::new(),
            sql_quarantine: false,
            bin: PathBuf::new(),
            dir: dir.path().to_path_buf(),
            disk: PathBuf::new(),
            listen: ([127, 0, 0, 1], 1).into(),
            next_hop: ([127, 0, 0, 1], 1).into(),
            clamd: ([127, 0, 0, 1], 1).into(),
            sql: String::new(),
            spam: false,
            bayes: None,
            prefilter_cache: PathBuf::new(),
        };
        let f = Filter::new(setup, Arc::default()).unwrap();
        let got: Vec<String> = f.unsure_after_dot().into_iter().collect();
        assert_eq!(got, ["a@x"]);
        assert_eq!(f.repairs().interrupted, 0);
        std::fs::write(
            dir.path().join("amavisd.out"),
            "T  WARN amavisd::server::leftovers: removed 3 temporary files (10 bytes) left in \
             /t by processes that are gone\n\
             T  WARN amavisd::server::leftovers: SQL log: 4 messages of this host were \
             interrupted before their end (a; b); 2 had a quarantined copy, now recorded\n\
             T  ERROR amavisd::pipeline: (1-2) SQL log: try again later; 5 x\n\
             T  WARN amavisd::server::leftovers: removed 1 temporary files (1 bytes) left in /q\n",
        )
        .unwrap();
        let r = f.repairs();
        assert_eq!(
            (r.interrupted, r.quarantine_recorded, r.temp_files_swept),
            (4, 2, 4)
        );
    }
}
