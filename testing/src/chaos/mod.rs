//! The chaos run: "never lose mail", tried with many faults at once. A client that behaves
//! like Postfix sends N distinct messages through the real `amavisd` process while a fault
//! injector breaks what the filter depends on (the next hop, clamd, the SQL server, Redis,
//! the disk) and kills the filter itself; then every message is accounted for by its
//! Message-ID (see [`account`]). `amavisd-load chaos` runs it; tests/chaos.rs runs a small one.
//!
//! Every server the filter talks to is reached through a [`proxy::FaultProxy`], so the real
//! servers, which other tests share, are never stopped.

pub mod account;
pub mod client;
pub mod disk;
pub mod faults;
pub mod filter;
pub mod mail;
pub mod proxy;
mod report;
pub mod watch;

pub use faults::{Fault, NextHopFault};
pub use report::ChaosReport;

use crate::sink::{Sink, SinkMode};
use disk::Disk;
use filter::{Filter, FilterSetup};
use proxy::{FaultProxy, Upstream};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex as AsyncMutex;

/// What to run.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    /// The `amavisd` binary.
    pub amavisd: PathBuf,
    /// Distinct messages.
    pub count: usize,
    /// Concurrent client sessions.
    pub sessions: usize,
    /// Filter nodes sharing the SQL server (and Redis); with more than one, blocked mail is
    /// kept in the SQL quarantine and the client spreads its sessions over the nodes.
    pub nodes: usize,
    /// Messages arriving a second (all at once when `None`): spreads a run over time, so
    /// that faults meet mail throughout.
    pub rate: Option<f64>,
    /// Mean time between faults.
    pub fault_every: Duration,
    /// Faults to choose from (those the setup cannot make are left out, with a note).
    pub faults: Vec<Fault>,
    /// `sqlite` (a database on the run's disk) or a server's URL (`postgres://...`,
    /// `mysql://...`), reached through a fault proxy.
    pub sql: String,
    /// Spam checks on (slower starts: the rules load at each).
    pub spam: bool,
    /// A Redis URL for the Bayes store (spam checks on), reached through a fault proxy.
    pub redis: Option<String>,
    /// Where the spam prefilter's compiled databases are kept across starts.
    pub prefilter_cache: Option<PathBuf>,
    /// Real messages to send (empty: generated ones); EICAR and banned ones are added.
    pub corpus: Vec<Vec<u8>>,
    pub seed: u64,
    /// Upper bound on the run; faults stop when the last message has arrived (with `rate`),
    /// or when every message is answered, and at two thirds of it at the latest.
    pub max_time: Duration,
    /// clamd, behind the fault proxy.
    pub clamd: Upstream,
    /// Fail when the disk-full fault cannot be made (no root to mount a tmpfs).
    pub require_disk: bool,
}

impl ChaosOptions {
    /// Every fault kind, next-hop misbehaviours included.
    pub fn all_faults() -> Vec<Fault> {
        let mut v = vec![
            Fault::NextHopDown,
            Fault::Kill9,
            Fault::Kill9AfterNextHop,
            Fault::Kill9InQuarantine,
            Fault::Restart,
            Fault::ClamdDown,
            Fault::ClamdHang,
            Fault::SqlDown,
            Fault::SqlHang,
            Fault::RedisDown,
            Fault::DiskFull,
        ];
        v.extend(NextHopFault::ALL.map(Fault::NextHop));
        v
    }
}

/// What a run set up, kept together for the end.
struct Rig {
    work: tempfile::TempDir,
    /// Each node's folder on the disk (its tempdir and quarantine are in it).
    node_disks: Vec<PathBuf>,
    sink: Arc<Sink>,
    targets: Arc<faults::Targets>,
    /// The SQL log as the accounting reads it (the real server, not the proxy).
    sql_direct: String,
    notes: Vec<String>,
    /// Where each node listens.
    listen: Vec<SocketAddr>,
    /// Bumped at every kill or restart of any node.
    generation: Arc<std::sync::atomic::AtomicU64>,
    // Unmounted last, after the filter has stopped.
    _disk: Option<Arc<Disk>>,
}

/// Runs the whole thing and accounts for every message.
pub async fn run(opts: &ChaosOptions) -> Result<ChaosReport, String> {
    if opts.count == 0 || opts.sessions == 0 {
        return Err("count and sessions must be at least 1".into());
    }
    let started = Instant::now();
    let run_id = format!("{:x}{:x}", opts.seed, unix_now());
    let rig = setup(opts, &run_id).await?;
    let messages = Arc::new(mail::messages(&run_id, opts.count, &opts.corpus));
    let queue = client::Queue::new(messages.len(), opts.rate, Arc::clone(&rig.generation));
    let until = started + opts.max_time;
    let targets = Arc::new(rig.listen.clone());
    let sessions: Vec<_> = (0..opts.sessions)
        .map(|n| {
            let (q, m, t) = (
                Arc::clone(&queue),
                Arc::clone(&messages),
                Arc::clone(&targets),
            );
            tokio::spawn(client::session(n, t, q, m, until))
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let possible = rig.targets.possible(&opts.faults);
    let injector = tokio::spawn(faults::inject(
        Arc::clone(&rig.targets),
        possible,
        opts.fault_every,
        opts.seed,
        Arc::clone(&stop),
    ));
    // Faults go on while mail arrives (with a rate), or until it is all answered; and
    // stop at two thirds of the run at the latest, leaving time to drain.
    let arrival = opts
        .rate
        .map(|r| Duration::from_secs_f64(opts.count as f64 / r.max(0.001)));
    let calm_at = started + arrival.unwrap_or(opts.max_time).min(opts.max_time * 2 / 3);
    while queue.left() > 0 && Instant::now() < calm_at {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let injected = injector.await.map_err(|e| e.to_string())?;
    for s in sessions {
        let _ = s.await;
    }
    let (mut starts, mut unsure_after_dot) = (Vec::new(), std::collections::HashSet::new());
    let mut repairs = filter::Repairs::default();
    for f in &rig.targets.filters {
        let mut filter = f.lock().await;
        filter.stop(false).await?;
        starts.append(&mut filter.start_times);
        unsure_after_dot.extend(filter.unsure_after_dot());
        repairs += filter.repairs();
    }
    let fates = queue.fates();
    let rows = account::sql_rows(&rig.sql_direct, &mail::id_prefix(&run_id)).await?;
    let received = rig.sink.received();
    let tally = account::tally(&account::Evidence {
        messages: &messages,
        fates: &fates,
        received: &received,
        rows: &rows,
        quarantine_dirs: &rig
            .node_disks
            .iter()
            .map(|d| d.join("quarantine"))
            .collect::<Vec<_>>(),
        tempdirs: &rig
            .node_disks
            .iter()
            .map(|d| d.join("tmp"))
            .collect::<Vec<_>>(),
        unsure_after_dot: &unsure_after_dot,
    });
    let passed = tally.clean() && injected.errors.is_empty();
    let report = ChaosReport {
        tally,
        injected,
        elapsed: started.elapsed(),
        starts,
        repairs,
        notes: rig.notes.clone(),
        sql: redact(&opts.sql),
        workdir: rig.work.path().to_path_buf(),
    };
    if !passed {
        // Kept for a look at the filter's log; the disk's tmpfs goes with the rig.
        let _ = rig.work.keep();
    }
    Ok(report)
}

/// Sink, proxies, disk, configuration, and the filter started once.
async fn setup(opts: &ChaosOptions, run_id: &str) -> Result<Rig, String> {
    let work = tempfile::Builder::new()
        .prefix("amavisd-chaos-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let mut notes = Vec::new();
    let disk_dir = work.path().join("disk");
    let disk = match Disk::mount(&disk_dir, 256) {
        Ok(d) => Some(Arc::new(d)),
        Err(e) if opts.require_disk => return Err(e),
        Err(e) => {
            notes.push(format!("disk-full fault not available: {e}"));
            std::fs::create_dir_all(&disk_dir).map_err(|e| e.to_string())?;
            None
        }
    };
    let sink = Sink::new(SinkMode::Accept, true);
    sink.headers_only.store(true, Ordering::Relaxed);
    let (sink_port, _) = sink.spawn().await.map_err(|e| e.to_string())?;
    let proxy = |u| async move { FaultProxy::start(u).await.map_err(|e| e.to_string()) };
    let next_hop = proxy(Upstream::Tcp(([127, 0, 0, 1], sink_port).into())).await?;
    let clamd = proxy(opts.clamd.clone()).await?;
    let (sql, sql_direct, sql_url) = if opts.sql == "sqlite" {
        let url = format!("sqlite:{}/amavisd.sqlite", disk_dir.display());
        (None, url.clone(), url)
    } else {
        let server = server_addr(&opts.sql)?;
        let p = proxy(Upstream::Tcp(server)).await?;
        let via = opts
            .sql
            .replacen(&host_port(&opts.sql)?, &p.addr().to_string(), 1);
        (Some(p), opts.sql.clone(), via)
    };
    let (redis, bayes) = match (&opts.redis, opts.spam) {
        (Some(url), true) => {
            let p = proxy(Upstream::Tcp(server_addr(url)?)).await?;
            let via = url.replacen(&host_port(url)?, &p.addr().to_string(), 1);
            (Some(p), Some(via))
        }
        _ => (None, None),
    };
    let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let template = FilterSetup {
        // Unique to the run: runs sharing a database (tests in parallel) must not repair
        // each other's messages in flight.
        myhostname: format!("chaos-{run_id}"),
        sql_quarantine: opts.nodes > 1,
        bin: opts.amavisd.clone(),
        dir: PathBuf::new(),
        disk: PathBuf::new(),
        listen: ([127, 0, 0, 1], 0).into(),
        next_hop: next_hop.addr(),
        clamd: clamd.addr(),
        sql: sql_url,
        spam: opts.spam,
        bayes,
        prefilter_cache: opts
            .prefilter_cache
            .clone()
            .unwrap_or_else(|| work.path().join("prefilter")),
    };
    let mut filters = Vec::new();
    let (mut listen, mut node_disks) = (Vec::new(), Vec::new());
    for n in 0..opts.nodes.max(1) {
        let f = start_node(&template, n, work.path(), &disk_dir, &generation).await?;
        listen.push(f.listen());
        node_disks.push(disk_dir.join(format!("node{n}")));
        filters.push(Arc::new(AsyncMutex::new(f)));
    }
    let targets = Arc::new(faults::Targets {
        sink: Arc::clone(&sink),
        next_hop,
        clamd,
        sql,
        redis,
        disk: disk.clone(),
        filters,
        quarantines: node_disks
            .iter()
            .map(|d| (!template.sql_quarantine).then(|| d.join("quarantine")))
            .collect(),
    });
    Ok(Rig {
        work,
        node_disks,
        listen,
        generation,
        sink,
        targets,
        sql_direct,
        notes,
        _disk: disk,
    })
}

/// Node `n`: its own name, port and folders (under `work` and on the disk), started.
async fn start_node(
    template: &FilterSetup,
    n: usize,
    work: &Path,
    disk: &Path,
    generation: &Arc<std::sync::atomic::AtomicU64>,
) -> Result<Filter, String> {
    let dir = work.join(format!("node{n}"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let setup = FilterSetup {
        myhostname: format!("{}-node{n}.example.com", template.myhostname),
        dir,
        disk: disk.join(format!("node{n}")),
        listen: ([127, 0, 0, 1], free_port()?).into(),
        ..template.clone()
    };
    let mut f = Filter::new(setup, Arc::clone(generation))?;
    f.start().await?;
    Ok(f)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// `host:port` of a server URL as written in it (`postgres://user@127.0.0.1:5432/db`).
fn host_port(url: &str) -> Result<String, String> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or_else(|| format!("{url}: not a server URL"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let hp = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hp.is_empty() {
        return Err(format!("{url}: no host"));
    }
    Ok(hp.to_string())
}

/// The server's loopback address, with the scheme's default port.
fn server_addr(url: &str) -> Result<SocketAddr, String> {
    let hp = host_port(url)?;
    let with_port = if hp.contains(':') {
        hp
    } else {
        let port = match url.split(':').next().unwrap_or("") {
            "postgres" | "postgresql" => 5432,
            "mysql" | "mariadb" => 3306,
            "redis" => 6379,
            other => return Err(format!("{url}: no default port for {other}")),
        };
        format!("{hp}:{port}")
    };
    let addr: SocketAddr = with_port
        .replace("localhost", "127.0.0.1")
        .parse()
        .map_err(|e| format!("{url}: {e}"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("{url}: the chaos run only uses loopback servers"));
    }
    Ok(addr)
}

/// The URL without a password, for the report.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(_)) => {
            let (user, host) = rest.rsplit_once('@').unwrap_or(("", rest));
            let user = user.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}")
        }
        _ => url.to_string(),
    }
}

/// The folder of the default clamd socket on Debian.
pub fn debian_clamd() -> Upstream {
    Upstream::Unix(Path::new("/var/run/clamav/clamd.ctl").to_path_buf())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn server_urls() {
        let pg = "postgres://postgres@127.0.0.1:5432/test";
        assert_eq!(host_port(pg).unwrap(), "127.0.0.1:5432");
        assert_eq!(
            server_addr("mysql://root@127.0.0.1/test").unwrap().port(),
            3306
        );
        assert_eq!(server_addr("redis://127.0.0.1/2").unwrap().port(), 6379);
        assert!(server_addr("postgres://u@10.0.0.1/x").is_err());
        assert_eq!(
            redact("mysql://root:pw@127.0.0.1/test"),
            "mysql://root@127.0.0.1/test"
        );
    }
}
