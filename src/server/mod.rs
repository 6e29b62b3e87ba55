//! Process life: load the configuration, bind, serve, and react to signals.
//!
//! SIGTERM/SIGINT stop accepting, let in-flight messages finish, then exit. SIGHUP re-reads the
//! configuration: a bad file is refused and logged and the old configuration keeps running;
//! listeners are bound once, so changing `listen` needs a restart.

pub mod check;
mod control;
mod error;
mod leftovers;
pub mod memory;
pub mod privileges;
pub mod spamd;

pub use control::{alive, live_status, read_pid, reload, start_daemon, status, stop};
pub use error::ServerError;

use crate::config::{Config, ConfigError, ValidConfig};
use crate::pipeline::Pipeline;
use crate::smtp_in::{Rebind, SessionSettings, bind_all, bind_new, serve};
use arc_swap::ArcSwap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// A server running in this process.
pub struct Running {
    /// The bound inet addresses (port 0 resolved).
    pub addrs: Vec<SocketAddr>,
    /// The release listener's TCP address, when it has one.
    pub release_addr: Option<SocketAddr>,
    /// The spamd listener's address, when `[spam] spamd_listen` asks for one.
    pub spamd_addr: Option<SocketAddr>,
    /// The milter listeners' TCP addresses, in `[[milter]]` order (unix sockets left out).
    pub milter_addrs: Vec<SocketAddr>,
    /// The rspamd-protocol listener's address, when `[http] listen` asks for one.
    pub http_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    config: Arc<ArcSwap<ValidConfig>>,
    /// What new SMTP/LMTP sessions start with, from the configuration in force.
    sessions: Arc<ArcSwap<SessionSettings>>,
    pipeline: Arc<Pipeline>,
    /// Hands a reload's listener changes to the serve loop.
    rebind: mpsc::UnboundedSender<Rebind>,
}

impl Running {
    /// Stops accepting, waits for in-flight sessions to end.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Signals shutdown without waiting.
    pub fn begin_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// True when the serve loop has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Applies a new configuration to sessions and messages that start from now on. When its
    /// scanners or rules cannot be built, the running configuration stays.
    pub fn reload(&self, cfg: ValidConfig) -> Result<(), ConfigError> {
        apply(&self.live(), cfg)
    }

    /// Purges the Bayes store now, as the timer does every `spam.bayes_purge_interval`;
    /// (users, tokens removed), or `None` without a store.
    pub async fn purge_bayes(&self) -> Option<Result<(u64, u64), String>> {
        self.pipeline.purge_bayes().await
    }

    /// Reads `path` and reloads, the reading and compiling (rules take a second) on the
    /// blocking pool so sessions keep being served meanwhile.
    pub async fn reload_from(&self, path: &Path) -> Result<(), ConfigError> {
        let (live, path) = (self.live(), path.to_path_buf());
        tokio::task::spawn_blocking(move || apply(&live, Config::load(&path)?))
            .await
            .map_err(|e| ConfigError::Key {
                file: "(reload)".into(),
                key: "-".into(),
                reason: crate::catch_panic::join_error_text(e),
            })?
    }
}

impl Running {
    /// What a reload replaces.
    fn live(&self) -> Live {
        Live {
            pipeline: Arc::clone(&self.pipeline),
            config: Arc::clone(&self.config),
            sessions: Arc::clone(&self.sessions),
            rebind: self.rebind.clone(),
        }
    }
}

/// What a reload replaces: the pipeline's state, the configuration, the sessions' settings,
/// and the serve loop's listeners.
struct Live {
    pipeline: Arc<Pipeline>,
    config: Arc<ArcSwap<ValidConfig>>,
    sessions: Arc<ArcSwap<SessionSettings>>,
    rebind: mpsc::UnboundedSender<Rebind>,
}

/// Takes `cfg`: new listeners are bound first (a socket that cannot be bound refuses the
/// reload, naming it), then the pipeline is rebuilt (scanners, rules), then the serve loop
/// swaps its listeners. Sockets kept are never closed; removed ones stop accepting while
/// their sessions finish.
fn apply(live: &Live, cfg: ValidConfig) -> Result<(), ConfigError> {
    let cfg = Arc::new(cfg);
    let old = live.config.load_full();
    let changed = cfg.listen != old.listen;
    let add = if changed {
        Some(
            bind_new(&old.listen, &cfg.listen).map_err(|e| ConfigError::Key {
                file: "(reload)".into(),
                key: "listen".into(),
                reason: e.to_string(),
            })?,
        )
    } else {
        None
    };
    if cfg.spam.spamd_listen != old.spam.spamd_listen {
        tracing::warn!("reload: `spam.spamd_listen` changed; restart amavisd to bind it");
    }
    if cfg.http.listen != old.http.listen {
        tracing::warn!("reload: `http.listen` changed; restart amavisd to bind it");
    }
    if cfg.milter != old.milter {
        tracing::warn!("reload: `[[milter]]` changed; restart amavisd to bind it");
    }
    if cfg.metrics.listen != old.metrics.listen {
        tracing::warn!("reload: `metrics.listen` changed; restart amavisd to bind it");
    }
    live.pipeline.reload(Arc::clone(&cfg))?;
    if let Some(add) = add {
        let _ = live.rebind.send(Rebind {
            keep: cfg.listen.clone(),
            add,
        });
    }
    live.sessions.store(Arc::new(cfg.session_settings()));
    live.config.store(cfg);
    Ok(())
}

/// Binds the listeners of `cfg` and serves in the background.
pub async fn start(cfg: ValidConfig) -> Result<Running, ServerError> {
    std::fs::create_dir_all(&cfg.tempdir).map_err(|e| ServerError::Dir {
        dir: cfg.tempdir.clone(),
        source: e,
    })?;
    // In the background: a quarantine of many thousand files takes a while to walk, and
    // only files of processes that are gone are removed, never ours.
    let swept = cfg.clone();
    tokio::task::spawn_blocking(move || leftovers::sweep(&swept));
    let cfg = Arc::new(cfg);
    crate::stats::install(cfg.metrics.address().ok().flatten())
        .map_err(|e| ServerError::Bind(std::io::Error::other(e.to_string())))?;
    let pipeline = Arc::new(Pipeline::new(Arc::clone(&cfg))?);
    let listeners = bind_all(&cfg.listen).await.map_err(ServerError::Bind)?;
    let addrs = listeners.local_addrs();
    let release = crate::release::ReleaseListener::bind(&cfg.release)
        .await
        .map_err(ServerError::Bind)?;
    let release_addr = release.tcp_addr();
    let spamd = bind_optional(&cfg.spam.spamd_listen).await?;
    let spamd_addr = spamd.as_ref().and_then(|l| l.local_addr().ok());
    let milters = cfg
        .milter
        .iter()
        .map(|m| crate::milter::bind(m).map(|b| (m, b)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ServerError::Bind)?;
    let milter_addrs = milters.iter().filter_map(|(_, b)| b.local_addr()).collect();
    let http = bind_optional(&cfg.http.listen).await?;
    let http_addr = http.as_ref().and_then(|l| l.local_addr().ok());
    let config = Arc::new(ArcSwap::new(Arc::clone(&cfg)));
    let sessions = Arc::new(ArcSwap::from_pointee(cfg.session_settings()));
    let (tx, rx) = watch::channel(false);
    tokio::spawn(release.serve(Arc::clone(&pipeline), rx.clone()));
    if let Some(listener) = spamd {
        tokio::spawn(spamd::serve(listener, Arc::clone(&pipeline), rx.clone()));
    }
    for (m, bound) in milters {
        tokio::spawn(crate::milter::serve(
            bound,
            milter_session(m, &cfg),
            m.max_connections,
            Arc::clone(&pipeline),
            rx.clone(),
        ));
    }
    if let Some(listener) = http {
        tokio::spawn(crate::http::serve(
            listener,
            http_settings(&cfg),
            cfg.http.max_connections,
            Arc::clone(&pipeline),
            rx.clone(),
        ));
    }
    tokio::spawn(purge_bayes(Arc::clone(&pipeline), rx.clone()));
    let (rebind, rebind_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(serve(
        listeners,
        Arc::clone(&sessions),
        Arc::clone(&pipeline),
        rx,
        rebind_rx,
    ));
    Ok(Running {
        addrs,
        release_addr,
        spamd_addr,
        milter_addrs,
        http_addr,
        shutdown: tx,
        task,
        config,
        sessions,
        pipeline,
        rebind,
    })
}

/// Purges the Bayes store a minute after start (a filter restarted often still purges), then
/// every `spam.bayes_purge_interval` as the configuration in force says.
async fn purge_bayes(pipeline: Arc<Pipeline>, mut shutdown: watch::Receiver<bool>) {
    /// How often a configuration without purging is looked at again (a reload may add it).
    const IDLE: Duration = Duration::from_secs(60);
    let mut wait = IDLE;
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    return;
                }
                continue;
            }
            _ = tokio::time::sleep(wait) => {}
        }
        let every = pipeline.bayes_purge_interval();
        if every == 0 {
            wait = IDLE;
            continue;
        }
        wait = Duration::from_secs(every);
        match pipeline.purge_bayes().await {
            Some(Ok((users, removed))) => {
                tracing::info!("bayes purge: {removed} tokens removed from {users} users' stores")
            }
            Some(Err(e)) => tracing::warn!("bayes purge failed: {e}"),
            None => {}
        }
    }
}

/// `amavisd foreground`: serves until SIGTERM/SIGINT, reloads on SIGHUP.
pub async fn run_foreground(path: &Path) -> Result<(), ServerError> {
    use tokio::signal::unix::{SignalKind, signal};
    let cfg = Config::load(path)?;
    let pid_file = cfg.pid_file.clone();
    if let Some(pid) = read_pid(&pid_file)
        && pid != std::process::id() as i32
        && alive(pid)
    {
        return Err(ServerError::AlreadyRunning { pid, pid_file });
    }
    privileges::set_umask();
    let account = match cfg.user.as_str() {
        "" => None,
        user => Some(privileges::lookup(user, &cfg.group)?),
    };
    if let Some(a) = account
        && privileges::current_uid() != 0
        && privileges::current_uid() != a.uid
    {
        return Err(ServerError::Privileges(format!(
            "start as root to run as user {:?}",
            cfg.user
        )));
    }
    let writable = cfg.clone();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let running = start(cfg).await?;
    write_pid(&pid_file)?;
    let _pid_guard = PidFile(pid_file);
    if let Some(a) = account.filter(|a| a.uid != privileges::current_uid()) {
        privileges::prepare(&writable, a)?;
        privileges::drop_to(a)?;
        tracing::info!(
            "running as user {:?} (uid {}, gid {})",
            writable.user,
            a.uid,
            a.gid
        );
    }
    log_sockets(&writable, &running);
    // As the configured user: a SQLite log it first touched as root would be root's.
    tokio::spawn(leftovers::repair_sql(
        Arc::clone(&running.pipeline),
        started,
    ));
    // The parts that talk to other servers, probed once in the background: start-up does
    // not wait for a slow clamd, and mail waits meanwhile as it would anyway.
    let probed = writable.clone();
    tokio::spawn(async move { check::startup_summary(&probed).await });
    let sig = |k| signal(k).map_err(ServerError::Signal);
    let (mut term, mut int, mut hup) = (
        sig(SignalKind::terminate())?,
        sig(SignalKind::interrupt())?,
        sig(SignalKind::hangup())?,
    );
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => match running.reload_from(path).await {
                Ok(()) => tracing::info!("reloaded {}", path.display()),
                Err(e) => {
                    tracing::error!("reload refused, keeping the running configuration: {e}")
                }
            },
        }
    }
    tracing::info!("shutting down: no new connections, finishing messages in flight");
    running.stop().await;
    tracing::info!("amavisd-rs stopped");
    Ok(())
}

/// What the filter listens on, one line each (amavisd check says whether each can be bound).
fn log_sockets(cfg: &Config, running: &Running) {
    let addrs: Vec<String> = running.addrs.iter().map(|a| a.to_string()).collect();
    let unix: Vec<String> = cfg
        .listen
        .iter()
        .filter_map(|l| l.unix.as_ref().map(|p| p.display().to_string()))
        .collect();
    tracing::info!(
        "amavisd-rs started, listening for SMTP/LMTP on {}",
        addrs.into_iter().chain(unix).collect::<Vec<_>>().join(", ")
    );
    let mut release = Vec::new();
    if !cfg.release.unix.as_os_str().is_empty() {
        release.push(cfg.release.unix.display().to_string());
    }
    if let Some(a) = running.release_addr {
        release.push(a.to_string());
    }
    if release.is_empty() {
        tracing::info!("release: no socket (amavisd-release cannot be used)");
    } else {
        tracing::info!("release: AM.PDP on {}", release.join(", "));
    }
    for m in &cfg.milter {
        let at = m.inet.clone().unwrap_or_else(|| {
            m.unix
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        });
        tracing::info!("milter: protocol 6 on {at}");
    }
    if let Some(a) = running.http_addr {
        tracing::info!("http: rspamd protocol (/checkv2, /learnspam, /stat) on {a}");
    }
    if let Some(a) = running.spamd_addr {
        tracing::info!("spamd: SPAMC/1.5 on {a}");
    }
    if !cfg.metrics.listen.is_empty() {
        tracing::info!(
            "metrics: Prometheus on http://{}/metrics",
            cfg.metrics.listen
        );
    }
    if !cfg.sql.url.is_empty() {
        tracing::info!("sql: log to {}", cfg.sql.url);
    }
}

fn write_pid(path: &Path) -> Result<(), ServerError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| ServerError::Dir {
            dir: dir.to_path_buf(),
            source: e,
        })?;
    }
    std::fs::write(path, format!("{}\n", std::process::id())).map_err(|e| ServerError::PidFile {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Removes the pid file when the server ends.
struct PidFile(PathBuf);

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A milter session's settings: its listener's, and the spool and caps of `[limits]`, as on
/// the SMTP path.
fn milter_session(l: &crate::milter::MilterListener, cfg: &Config) -> crate::milter::SessionConfig {
    crate::milter::SessionConfig {
        idle_timeout: Duration::from_secs(l.idle_timeout),
        policy_bank: l.policy_bank.clone(),
        authenticated_bank: l.authenticated_bank.clone(),
        hold_blocked: l.hold_blocked,
        tempdir: cfg.tempdir.clone(),
        memory_spool_limit: cfg.limits.memory_spool_limit,
        header_size_limit: cfg.limits.header_size_limit,
        message_size_limit: cfg.limits.message_size_limit,
    }
}

/// A TCP listener on `addr`, none when it is empty (a listener the configuration leaves off).
async fn bind_optional(addr: &str) -> Result<Option<tokio::net::TcpListener>, ServerError> {
    if addr.is_empty() {
        return Ok(None);
    }
    let l = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        ServerError::Bind(std::io::Error::new(
            e.kind(),
            format!("cannot listen on {addr}: {e}"),
        ))
    })?;
    Ok(Some(l))
}

/// The rspamd-protocol listener's settings: `[http]`'s, and the spool and caps of
/// `[limits]`, as on the SMTP path.
fn http_settings(cfg: &Config) -> crate::http::Settings {
    let h = &cfg.http;
    crate::http::Settings {
        timeout: Duration::from_secs(h.timeout),
        policy_bank: h.policy_bank.clone(),
        authenticated_bank: h.authenticated_bank.clone(),
        default_recipient: if h.default_recipient.is_empty() {
            format!("postmaster@{}", cfg.mydomain)
        } else {
            h.default_recipient.clone()
        },
        password: h.password.clone(),
        enable_password: h.enable_password.clone(),
        // Checked when the configuration was validated.
        secure_ip: h.secure_networks().unwrap_or_default(),
        tempdir: cfg.tempdir.clone(),
        memory_spool_limit: cfg.limits.memory_spool_limit,
        header_size_limit: cfg.limits.header_size_limit,
        message_size_limit: cfg.limits.message_size_limit,
    }
}
