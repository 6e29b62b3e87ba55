//! `amavisd -c FILE check`: what a site needs to know before it starts the filter, as
//! `postfix check`, `nginx -t` and `rspamadm configtest` tell it, one line per part: the
//! configuration, the sockets it will bind, the next hop, each virus scanner, the SQL log and
//! its schema, the spam rules, the Bayes store, the DKIM keys, the folders it writes.
//!
//! A part that would make mail wait or fail is `FAIL` (the filter would not serve mail); one
//! that only weakens the checks is `warn`. The start-up log gives the same summary
//! ([`startup_summary`]), without failing.

use crate::av::AnyScanner;
use crate::config::{Config, ForwardTarget};
use crate::sql::Store;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A stream to the next hop, TCP or unix.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// How a part stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// It works, but a check is weaker than configured (no spam rules, an unlearned Bayes).
    Warn,
    /// The filter would not serve mail as configured (every message would wait, or it would
    /// not start).
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Finding {
    pub part: String,
    pub status: Status,
    pub detail: String,
}

/// Every finding, in the order checked.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    fn add(&mut self, part: impl Into<String>, status: Status, detail: impl Into<String>) {
        self.findings.push(Finding {
            part: part.into(),
            status,
            detail: detail.into(),
        });
    }

    /// True when nothing failed: the filter would serve mail.
    pub fn serves(&self) -> bool {
        self.findings.iter().all(|f| f.status != Status::Fail)
    }

    /// The report as printed: one line per finding, then the verdict.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let s = match f.status {
                Status::Ok => "ok",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            out.push_str(&format!("{:<10} {s:<4}  {}\n", f.part, f.detail));
        }
        out.push_str(if self.serves() {
            "amavisd would serve mail with this configuration\n"
        } else {
            "amavisd would NOT serve mail with this configuration\n"
        });
        out
    }
}

/// Checks the configuration in `path` and what it names.
pub async fn check(path: &Path) -> Report {
    let mut r = Report::default();
    let cfg = match Config::load(path) {
        Ok(c) => {
            r.add(
                "config",
                Status::Ok,
                format!(
                    "{} is valid (myhostname {}, mydomain {}: local recipients are in {})",
                    path.display(),
                    c.myhostname,
                    c.mydomain,
                    c.policy.local_domains.join(" ").replace("%d", &c.mydomain)
                ),
            );
            c
        }
        Err(e) => {
            r.add("config", Status::Fail, e.to_string());
            return r;
        }
    };
    sockets(&cfg, &mut r);
    next_hop(&cfg, &mut r).await;
    scanners(&cfg, &mut r).await;
    sql(&cfg, &mut r).await;
    spam_rules(&cfg, &mut r).await;
    bayes(&cfg, &mut r).await;
    dns(&cfg, &mut r).await;
    dkim(&cfg, &mut r);
    folders(&cfg, &mut r);
    r
}

/// The start-up log's summary: the same probes as `check` for the parts that talk to other
/// servers, logged (a failure as a warning: the filter serves anyway, and mail waits until
/// the part is back).
pub async fn startup_summary(cfg: &Config) {
    let mut r = Report::default();
    next_hop(cfg, &mut r).await;
    scanners(cfg, &mut r).await;
    sql(cfg, &mut r).await;
    bayes(cfg, &mut r).await;
    // Only when the network checks run: whether blocklists answer through the resolver.
    if cfg.dns.enabled && cfg.spam.enabled {
        dns(cfg, &mut r).await;
    }
    for f in r.findings {
        match f.status {
            Status::Ok => tracing::info!("{}: {}", f.part, f.detail),
            Status::Warn | Status::Fail => tracing::warn!("{}: {}", f.part, f.detail),
        }
    }
}

/// The pid of a running amavisd of this configuration, if any: its sockets are in use by it.
fn running(cfg: &Config) -> Option<i32> {
    super::read_pid(&cfg.pid_file).filter(|&pid| super::alive(pid))
}

/// The sockets of a configuration, each with the part that names it.
struct Sockets<'a> {
    inet: Vec<(String, String)>,
    unix: Vec<(String, &'a Path)>,
}

/// Every socket the configuration names, by part: TCP addresses and unix paths.
fn socket_list(cfg: &Config) -> Sockets<'_> {
    let mut inet: Vec<(String, String)> = Vec::new();
    let mut unix: Vec<(String, &Path)> = Vec::new();
    for l in &cfg.listen {
        if let Some(a) = &l.inet {
            inet.push(("listen".into(), a.clone()));
        }
        if let Some(p) = &l.unix {
            unix.push(("listen".into(), p));
        }
    }
    if !cfg.release.inet.is_empty() {
        inet.push(("release".into(), cfg.release.inet.clone()));
    }
    if !cfg.release.unix.as_os_str().is_empty() {
        unix.push(("release".into(), &cfg.release.unix));
    }
    let optional = [
        ("spamd", &cfg.spam.spamd_listen),
        ("metrics", &cfg.metrics.listen),
        ("http", &cfg.http.listen),
    ];
    for (part, addr) in optional {
        if !addr.is_empty() {
            inet.push((part.into(), addr.clone()));
        }
    }
    for m in &cfg.milter {
        if let Some(a) = &m.inet {
            inet.push(("milter".into(), a.clone()));
        }
        if let Some(p) = &m.unix {
            unix.push(("milter".into(), p));
        }
    }
    Sockets { inet, unix }
}

/// Whether each socket could be bound now.
fn sockets(cfg: &Config, r: &mut Report) {
    let live = running(cfg);
    let Sockets { inet, unix } = socket_list(cfg);
    let in_use = |what: String| match live {
        Some(pid) => (
            Status::Ok,
            format!("{what}: in use by the running amavisd (pid {pid})"),
        ),
        None => (Status::Fail, format!("{what}: in use by another program")),
    };
    for (part, addr) in inet {
        let (status, detail) = match std::net::TcpListener::bind(addr.as_str()) {
            Ok(_) => (Status::Ok, format!("{addr}: can be bound")),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => in_use(addr),
            Err(e) => (Status::Fail, format!("{addr}: {e}")),
        };
        r.add(part, status, detail);
    }
    for (part, path) in unix {
        let shown = path.display().to_string();
        let (status, detail) = if path.exists() {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => in_use(shown),
                Err(_) => (
                    Status::Ok,
                    format!("{shown}: a stale socket file, replaced at start"),
                ),
            }
        } else {
            match path.parent().filter(|d| !d.as_os_str().is_empty()) {
                Some(d) if !d.is_dir() => match std::fs::create_dir_all(d) {
                    Ok(()) => (Status::Ok, format!("{shown}: can be bound (folder made)")),
                    Err(e) => (
                        Status::Fail,
                        format!("{shown}: cannot make {}: {e}", d.display()),
                    ),
                },
                _ => match std::os::unix::net::UnixListener::bind(path) {
                    Ok(_) => {
                        let _ = std::fs::remove_file(path);
                        (Status::Ok, format!("{shown}: can be bound"))
                    }
                    Err(e) => (Status::Fail, format!("{shown}: {e}")),
                },
            }
        };
        r.add(part, status, detail);
    }
}

/// Whether the next hop answers with a 220 greeting.
async fn next_hop(cfg: &Config, r: &mut Report) {
    let method = cfg.forward_target();
    let connect = Duration::from_secs(cfg.forward.connect_timeout.max(1));
    let greet = Duration::from_secs(cfg.forward.command_timeout.max(1));
    let probe = async {
        let stream: Box<dyn Io> = match &method.target {
            ForwardTarget::Inet(a) => Box::new(tokio::net::TcpStream::connect(a).await?),
            ForwardTarget::Unix(p) => Box::new(tokio::net::UnixStream::connect(p).await?),
        };
        let mut conn = BufReader::new(stream);
        let mut line = String::new();
        tokio::time::timeout(greet, conn.read_line(&mut line))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no greeting"))??;
        let _ = conn.get_mut().write_all(b"QUIT\r\n").await;
        Ok::<String, std::io::Error>(line.trim_end().to_string())
    };
    let (status, detail) = match tokio::time::timeout(connect + greet, probe).await {
        Ok(Ok(g)) if g.starts_with("220") => (Status::Ok, format!("{}: {g}", cfg.forward_method)),
        Ok(Ok(g)) => (
            Status::Fail,
            format!("{}: greets {g:?}", cfg.forward_method),
        ),
        Ok(Err(e)) => (Status::Fail, format!("{}: {e}", cfg.forward_method)),
        Err(_) => (
            Status::Fail,
            format!("{}: no answer in time", cfg.forward_method),
        ),
    };
    r.add("forward", status, detail);
}

/// Whether each virus scanner answers, and what it is.
async fn scanners(cfg: &Config, r: &mut Report) {
    let engine = match cfg.av.build(&cfg.tempdir) {
        Ok(e) => e,
        Err((k, why)) => {
            r.add("av", Status::Fail, format!("av.{k}: {why}"));
            return;
        }
    };
    if engine.is_empty() {
        r.add(
            "av",
            Status::Warn,
            "no virus scanner configured: mail is not scanned for viruses",
        );
        return;
    }
    let all: Vec<(&str, &AnyScanner)> = engine
        .primary
        .iter()
        .map(|s| ("primary", s))
        .chain(engine.backup.iter().map(|s| ("backup", s)))
        .collect();
    let mut answering = 0;
    for (role, s) in &all {
        match s.probe().await {
            Ok(v) => {
                answering += 1;
                r.add("av", Status::Ok, format!("{} ({role}) {v}", s.label()));
            }
            Err(e) => r.add("av", Status::Warn, format!("({role}) {e}")),
        }
    }
    if answering == 0 {
        // Every message would wait (451) until a scanner answers, unless policy says UNCHECKED.
        let detail = "no virus scanner answers: mail waits (451) until one does";
        match cfg.policy.virus_scan_failure {
            crate::policy_bank::ScanFailure::Tempfail => r.add("av", Status::Fail, detail),
            crate::policy_bank::ScanFailure::Unchecked => r.add(
                "av",
                Status::Warn,
                "no virus scanner answers: mail passes UNCHECKED",
            ),
        }
    }
}

/// Whether the SQL database answers and has amavisd-new's tables.
async fn sql(cfg: &Config, r: &mut Report) {
    let store = match Store::new(&cfg.sql) {
        Ok(Some(s)) => s,
        Ok(None) => {
            r.add("sql", Status::Ok, "no SQL log (sql.url is empty)");
            return;
        }
        Err(e) => {
            r.add("sql", Status::Fail, e.to_string());
            return;
        }
    };
    let mut tables = vec!["msgs", "msgrcpt", "maddr", "quarantine"];
    if cfg.sql.lookups {
        tables.extend(["users", "policy", "mailaddr", "wblist"]);
    }
    let mut missing = Vec::new();
    for t in &tables {
        let q = format!("SELECT 1 FROM {t} WHERE 1 = 0");
        let found = store
            .timed(async {
                sqlx::query(sqlx::AssertSqlSafe(q))
                    .fetch_optional(store.pool())
                    .await
                    .map_err(crate::sql::SqlError::from)
            })
            .await;
        match found {
            Ok(_) => {}
            Err(e) if is_missing_table(&e) => missing.push(*t),
            Err(e) => {
                r.add("sql", Status::Fail, format!("{}: {e}", cfg.sql.url));
                return;
            }
        }
    }
    let (status, detail) = match (missing.is_empty(), cfg.sql.create_schema) {
        (true, _) => (
            Status::Ok,
            format!("{}: schema present ({})", cfg.sql.url, tables.join(", ")),
        ),
        (false, true) => (
            Status::Ok,
            format!(
                "{}: tables {} will be created when first used",
                cfg.sql.url,
                missing.join(", ")
            ),
        ),
        (false, false) => (
            Status::Fail,
            format!(
                "{}: tables missing: {} (amavisd init-db, or sql.create_schema = true)",
                cfg.sql.url,
                missing.join(", ")
            ),
        ),
    };
    r.add("sql", status, detail);
}

/// A database's "no such table" in any of the three dialects.
fn is_missing_table(e: &crate::sql::SqlError) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("no such table")
        || text.contains("does not exist")
        || text.contains("doesn't exist")
}

/// Whether the spam rules load, and how many are active.
async fn spam_rules(cfg: &Config, r: &mut Report) {
    if !cfg.spam.enabled {
        r.add("spam", Status::Ok, "spam checks off (spam.enabled = false)");
        return;
    }
    if !cfg.spam.rules_dir.is_dir() {
        r.add(
            "spam",
            Status::Warn,
            format!(
                "no rule files at {}: mail passes without spam scores (apt-get install spamassassin)",
                cfg.spam.rules_dir.display()
            ),
        );
        return;
    }
    let spam = cfg.spam.clone();
    let network = cfg.dns.enabled;
    let loaded = tokio::task::spawn_blocking(move || {
        let site = (!spam.site_dir.as_os_str().is_empty()).then_some(spam.site_dir.as_path());
        let opts = crate::spam::engine::LoadOptions {
            bayes: !spam.bayes_store.is_empty(),
            network,
            prefilter_cache: None,
            extract: None,
        };
        crate::spam::engine::Rules::load_opts(&spam.rules_dir, site, opts)
            .map(|rules| rules.short_summary())
            .map_err(|e| e.to_string())
    })
    .await;
    match loaded {
        Ok(Ok(summary)) => r.add(
            "spam",
            Status::Ok,
            format!("{}: {summary}", cfg.spam.rules_dir.display()),
        ),
        Ok(Err(e)) => r.add("spam", Status::Fail, e),
        Err(e) => r.add("spam", Status::Fail, crate::catch_panic::join_error_text(e)),
    }
}

/// Whether the Bayes store answers, and what it has learned.
async fn bayes(cfg: &Config, r: &mut Report) {
    if !cfg.spam.enabled || cfg.spam.bayes_store.is_empty() {
        return;
    }
    let url = &cfg.spam.bayes_store;
    let counted = async {
        let trainer = crate::spam::Trainer::open(url, cfg.spam.bayes_min_learned).await?;
        trainer.totals("").await
    };
    match counted.await {
        Ok((spam, ham)) => {
            let min = cfg.spam.bayes_min_learned;
            let (status, note) = if spam < min || ham < min {
                (
                    Status::Warn,
                    format!("; Bayes is inactive until {min} of each are learned"),
                )
            } else {
                (Status::Ok, String::new())
            };
            r.add(
                "bayes",
                status,
                format!("{url}: {spam} spam, {ham} ham learned{note}"),
            );
        }
        Err(e) => r.add("bayes", Status::Fail, format!("{url}: {e}")),
    }
}

/// The network checks' resolver: its servers, and whether a blocklist answers through it
/// (RFC 5782's test entry 127.0.0.2, which every DNS blocklist lists). A resolver that does
/// not answer is a warning: mail still flows, the network rules just do not fire.
async fn dns(cfg: &Config, r: &mut Report) {
    use crate::dns::{Answer, Resolver};
    if !cfg.dns.enabled {
        r.add(
            "dns",
            Status::Ok,
            "network checks off ([dns] enabled = false)",
        );
        return;
    }
    let servers = if cfg.dns.servers.is_empty() {
        "/etc/resolv.conf's servers".to_string()
    } else {
        cfg.dns.servers.join(" ")
    };
    let resolver = match Resolver::new(&cfg.dns) {
        Ok(res) => res,
        Err(e) => return r.add("dns", Status::Fail, format!("{servers}: {e}")),
    };
    const PROBE: &str = "2.0.0.127.zen.spamhaus.org";
    let started = std::time::Instant::now();
    let answer = resolver
        .query(PROBE, hickory_resolver::proto::rr::RecordType::A)
        .await;
    let ms = started.elapsed().as_millis();
    let (status, what) = match answer {
        Answer::Found(a) if a.iter().any(|x| x.starts_with("127.255.255.")) => (
            Status::Warn,
            format!(
                "zen.spamhaus.org refuses this resolver ({}): use a caching resolver of your own",
                a.join(" ")
            ),
        ),
        Answer::Found(a) => (
            Status::Ok,
            format!("blocklists answer ({PROBE} = {}, {ms} ms)", a.join(" ")),
        ),
        Answer::NotFound => (
            Status::Warn,
            format!("{PROBE} is not listed: the resolver filters blocklist answers"),
        ),
        Answer::Failed(f) => (
            Status::Warn,
            format!(
                "no answer for {PROBE} ({f:?}): the network rules will not fire (mail still flows)"
            ),
        ),
    };
    r.add(
        "dns",
        status,
        format!("{servers}, budget {} s: {what}", cfg.dns.budget),
    );
}

/// Whether the DKIM signing keys can be read.
fn dkim(cfg: &Config, r: &mut Report) {
    if cfg.dkim.keys.is_empty() {
        if cfg.dkim.sign {
            r.add(
                "dkim",
                Status::Warn,
                "signing is on but no [[dkim.keys]] are given",
            );
        }
        return;
    }
    match crate::dkim::Keys::load(&cfg.dkim.keys) {
        Ok(keys) => {
            let domains: Vec<String> = keys.iter().map(|k| k.record_name()).collect();
            r.add(
                "dkim",
                Status::Ok,
                format!("{} keys readable: {}", domains.len(), domains.join(", ")),
            );
        }
        Err(e) => r.add("dkim", Status::Fail, e.to_string()),
    }
}

/// Whether the folders the filter writes can be written.
fn folders(cfg: &Config, r: &mut Report) {
    let mut dirs = vec![("tempdir", cfg.tempdir.as_path())];
    if !cfg.quarantine.directory.as_os_str().is_empty() {
        dirs.push(("quarantine", cfg.quarantine.directory.as_path()));
    }
    for (part, dir) in dirs {
        let writable = std::fs::create_dir_all(dir).and_then(|()| {
            tempfile::Builder::new()
                .prefix(".amavisd-check-")
                .tempfile_in(dir)
        });
        match writable {
            Ok(_) => r.add(part, Status::Ok, format!("{}: writable", dir.display())),
            Err(e) => r.add(part, Status::Fail, format!("{}: {e}", dir.display())),
        }
    }
}
