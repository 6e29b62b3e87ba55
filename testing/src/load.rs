//! The load generator behind `amavisd-load`: N concurrent SMTP or LMTP sessions send generated
//! messages (or a folder of message files) to a loopback target, bounded by count and time, and
//! report messages/s and latency percentiles.
//!
//! Traffic only ever goes to loopback addresses: [`LoadOptions::check`] refuses anything else.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub target: SocketAddr,
    pub lmtp: bool,
    pub sessions: usize,
    /// Total messages over all sessions.
    pub count: u64,
    /// Stop after this long even if `count` was not reached.
    pub max_time: Duration,
    pub recipients: usize,
}

impl LoadOptions {
    /// Refuses non-loopback targets and zero counts.
    pub fn check(&self) -> Result<(), String> {
        if !self.target.ip().is_loopback() {
            return Err(format!(
                "{}: the load tool only targets loopback addresses",
                self.target
            ));
        }
        if self.sessions == 0 || self.count == 0 || self.recipients == 0 {
            return Err("sessions, count and recipients must be at least 1".into());
        }
        Ok(())
    }
}

/// Results of one run.
#[derive(Debug, Clone)]
pub struct Report {
    pub sent: u64,
    pub failed: u64,
    pub elapsed: Duration,
    /// Per-message latency from MAIL to the final reply, sorted.
    pub latencies: Vec<Duration>,
    /// The first unexpected reply, if any.
    pub first_error: Option<String>,
}

impl Report {
    /// Messages per second.
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latency at quantile `q` (0..=1).
    pub fn percentile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)]
    }

    /// One line: rate and p50/p90/p99.
    pub fn summary(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "{} sent, {} failed in {:.2} s: {:.1} msg/s, latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
            self.sent,
            self.failed,
            self.elapsed.as_secs_f64(),
            self.rate(),
            ms(self.percentile(0.5)),
            ms(self.percentile(0.9)),
            ms(self.percentile(0.99)),
        )
    }
}

/// A generated message of about `size` bytes: a small header and 76-character body lines.
pub fn generated_message(size: usize, n: u64) -> Vec<u8> {
    let mut m = format!(
        "From: load@example.org\r\nTo: sink@example.com\r\nSubject: load test {n}\r\n\
         Message-ID: <load-{n}@example.org>\r\nMIME-Version: 1.0\r\n\r\n"
    )
    .into_bytes();
    let line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-\r\n";
    while m.len() + line.len() <= size {
        m.extend_from_slice(line);
    }
    m
}

/// Reads every regular file in `dir` as a message, with line ends made CRLF.
pub fn messages_from_dir(dir: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        if !e.file_type()?.is_file() {
            continue;
        }
        let raw = std::fs::read(e.path())?;
        out.push(amavisd::message::line_ends::to_crlf(&raw));
    }
    Ok(out)
}

pub(crate) fn stuffed(msg: &[u8]) -> Vec<u8> {
    let mut s = amavisd::smtp_out::DotStuffer::default();
    let mut out = Vec::with_capacity(msg.len() + 16);
    s.push(msg, &mut out);
    out.extend_from_slice(s.terminator());
    out
}

struct Shared {
    next: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
    deadline: Instant,
    first_error: std::sync::Mutex<Option<String>>,
}

/// Runs the load. `messages` are cycled through; each is sent as is.
pub async fn run(opts: &LoadOptions, messages: Arc<Vec<Vec<u8>>>) -> Result<Report, String> {
    opts.check()?;
    if messages.is_empty() {
        return Err("no messages to send".into());
    }
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(messages.iter().map(|m| stuffed(m)).collect());
    let shared = Arc::new(Shared {
        next: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        deadline: Instant::now() + opts.max_time,
        first_error: std::sync::Mutex::new(None),
    });
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..opts.sessions {
        let (opts, bodies, shared) = (opts.clone(), Arc::clone(&bodies), Arc::clone(&shared));
        tasks.push(tokio::spawn(async move {
            session(s, &opts, &bodies, &shared).await
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(l)) => latencies.extend(l),
            Ok(Err(e)) => {
                let mut g = shared.first_error.lock().map_err(|_| "poisoned")?;
                g.get_or_insert(e);
            }
            Err(e) => return Err(format!("session task failed: {e}")),
        }
    }
    latencies.sort();
    let first_error = shared.first_error.lock().ok().and_then(|g| g.clone());
    Ok(Report {
        sent: shared.sent.load(Ordering::Relaxed),
        failed: shared.failed.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        latencies,
        first_error,
    })
}

pub(crate) async fn read_reply<R: AsyncBufReadExt + Unpin>(
    r: &mut R,
    line: &mut String,
) -> Result<String, String> {
    let mut all = String::new();
    loop {
        line.clear();
        let n = r.read_line(line).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        all.push_str(line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(all);
        }
    }
}

async fn session(
    id: usize,
    opts: &LoadOptions,
    bodies: &[Vec<u8>],
    shared: &Shared,
) -> Result<Vec<Duration>, String> {
    let stream = TcpStream::connect(opts.target)
        .await
        .map_err(|e| format!("connect {}: {e}", opts.target))?;
    let _ = stream.set_nodelay(true);
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut line = String::new();
    let greet = read_reply(&mut rd, &mut line).await?;
    if !greet.starts_with("220") {
        return Err(format!("greeting: {}", greet.trim_end()));
    }
    let hello = if opts.lmtp { "LHLO" } else { "EHLO" };
    wr.write_all(format!("{hello} load{id}.example\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    read_reply(&mut rd, &mut line).await?;
    let mut lat = Vec::new();
    loop {
        let n = shared.next.fetch_add(1, Ordering::Relaxed);
        if n >= opts.count || Instant::now() > shared.deadline {
            break;
        }
        let body = &bodies[(n as usize) % bodies.len()];
        let t = Instant::now();
        // Postfix announces the size; so do we, since the filter sizes its spool by it.
        let mut head = format!("MAIL FROM:<load{id}@example.org> SIZE={}\r\n", body.len());
        for r in 0..opts.recipients {
            head.push_str(&format!("RCPT TO:<sink{r}@example.com>\r\n"));
        }
        head.push_str("DATA\r\n");
        wr.write_all(head.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut ok = read_reply(&mut rd, &mut line).await?.starts_with("250");
        let mut accepted = 0;
        for _ in 0..opts.recipients {
            if read_reply(&mut rd, &mut line).await?.starts_with("250") {
                accepted += 1;
            }
        }
        let data = read_reply(&mut rd, &mut line).await?;
        if !data.starts_with("354") {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            wr.write_all(b"RSET\r\n").await.map_err(|e| e.to_string())?;
            read_reply(&mut rd, &mut line).await?;
            continue;
        }
        wr.write_all(body).await.map_err(|e| e.to_string())?;
        let finals = if opts.lmtp { accepted } else { 1 };
        let mut last = String::new();
        for _ in 0..finals {
            last = read_reply(&mut rd, &mut line).await?;
            ok &= last.starts_with("250");
        }
        if ok {
            shared.sent.fetch_add(1, Ordering::Relaxed);
            lat.push(t.elapsed());
        } else {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut g) = shared.first_error.lock() {
                g.get_or_insert(last.trim_end().to_string());
            }
        }
    }
    let _ = wr.write_all(b"QUIT\r\n").await;
    Ok(lat)
}

/// One row of a comparison: the same load straight to a sink and through amavisd-rs.
#[derive(Debug, Clone)]
pub struct CompareRow {
    pub size: usize,
    pub sessions: usize,
    pub direct: Report,
    pub through: Report,
}

/// Starts a sink and, in front of it, amavisd-rs with `cfg` (its listeners, next hop and
/// folders replaced: it listens on 127.0.0.1:0 and forwards to the sink), both in this process;
/// then, for each size and session count, sends `base.count` messages straight to the sink and
/// the same through amavisd-rs. `fixed` replaces generated messages.
pub async fn compare(
    sizes: &[usize],
    sessions: &[usize],
    base: &LoadOptions,
    fixed: Option<Arc<Vec<Vec<u8>>>>,
    cfg: amavisd::config::Config,
) -> Result<Vec<CompareRow>, String> {
    use crate::sink::{Sink, SinkMode};
    use amavisd::config::{Config, ListenProtocol, Listener};
    let sink = Sink::new(SinkMode::Accept, false);
    let (port, sink_task) = sink.spawn().await.map_err(|e| e.to_string())?;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut cfg = Config {
        listen: vec![Listener {
            inet: Some("127.0.0.1:0".into()),
            unix: None,
            protocol: ListenProtocol::Auto,
        }],
        forward_method: format!("smtp:[127.0.0.1]:{port}"),
        tempdir: tmp.path().to_path_buf(),
        pid_file: tmp.path().join("pid"),
        notify_method: String::new(),
        ..cfg
    };
    cfg.quarantine.directory = tmp.path().join("quarantine");
    cfg.release.unix = tmp.path().join("amavisd.sock");
    cfg.release.inet.clear();
    if cfg.sql.url.starts_with("sqlite:") {
        cfg.sql.url = format!("sqlite:{}/amavisd.sqlite", tmp.path().display());
    }
    cfg.limits.max_connections = sessions.iter().copied().max().unwrap_or(64).max(64);
    let cfg = cfg
        .validate(Path::new("compare"))
        .map_err(|e| e.to_string())?;
    let server = amavisd::server::start(cfg)
        .await
        .map_err(|e| e.to_string())?;
    let via = server.addrs[0];
    let direct_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut rows = Vec::new();
    for &size in sizes {
        let msgs = match &fixed {
            Some(m) => Arc::clone(m),
            None => Arc::new((0..16).map(|n| generated_message(size, n)).collect()),
        };
        for &n in sessions {
            let mut o = base.clone();
            o.sessions = n;
            o.target = direct_addr;
            let direct = run(&o, Arc::clone(&msgs)).await?;
            o.target = via;
            let through = run(&o, Arc::clone(&msgs)).await?;
            rows.push(CompareRow {
                size,
                sessions: n,
                direct,
                through,
            });
        }
    }
    server.stop().await;
    sink_task.abort();
    Ok(rows)
}

/// The comparison as a Markdown table (with any failure counts noted below it).
pub fn comparison_table(rows: &[CompareRow]) -> String {
    let p99 = |r: &Report| r.percentile(0.99).as_secs_f64() * 1000.0;
    let mut s = String::from(
        "| size | sessions | direct msg/s | direct p99 ms | via amavisd msg/s | via p99 ms | ratio |\n\
         |---|---|---|---|---|---|---|\n",
    );
    let mut notes = String::new();
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {:.0} | {:.2} | {:.0} | {:.2} | {:.2} |\n",
            r.size,
            r.sessions,
            r.direct.rate(),
            p99(&r.direct),
            r.through.rate(),
            p99(&r.through),
            r.through.rate() / r.direct.rate().max(1e-9)
        ));
        for (label, rep) in [("direct", &r.direct), ("via", &r.through)] {
            if rep.failed > 0 || rep.first_error.is_some() {
                notes.push_str(&format!(
                    "{label} {}B x{}: {} failed, first error: {}\n",
                    r.size,
                    r.sessions,
                    rep.failed,
                    rep.first_error.as_deref().unwrap_or("-")
                ));
            }
        }
    }
    s + &notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_loopback() {
        let mut o = LoadOptions {
            target: "127.0.0.1:10024".parse().unwrap(),
            lmtp: false,
            sessions: 1,
            count: 1,
            max_time: Duration::from_secs(1),
            recipients: 1,
        };
        assert!(o.check().is_ok());
        o.target = "192.0.2.1:25".parse().unwrap();
        assert!(o.check().is_err());
    }

    #[test]
    fn generated_size() {
        for size in [1024, 102_400] {
            let m = generated_message(size, 1);
            assert!(
                m.len() <= size && m.len() > size - 80,
                "{} vs {size}",
                m.len()
            );
        }
    }
}
