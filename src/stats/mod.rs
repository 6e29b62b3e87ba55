//! What the running filter counts, for Prometheus (`[metrics] listen`) and `amavisd status`:
//! recipients by content category and destiny, per-stage timings, scanner and SQL errors,
//! bytes in and out, sessions in flight ([`sessions`]). Counting goes through the `metrics`
//! facade to one process-wide Prometheus recorder, installed by the server at start.

pub mod sessions;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

/// Recipients' copies by content category (`clean`, `spam`, `virus` ...) and destiny.
pub const RECIPIENTS: &str = "amavisd_recipients_total";
/// Messages handled, by the reply class the MTA got (`2xx`, `4xx`, `5xx`).
pub const MESSAGES: &str = "amavisd_messages_total";
/// Seconds each stage took (`policy`, `checks`, `quarantine`, `forward`, `sql_log`, `total`).
pub const STAGE_SECONDS: &str = "amavisd_stage_seconds";
/// Virus scans that failed (scanner down, timeout).
pub const SCANNER_ERRORS: &str = "amavisd_scanner_errors_total";
/// SQL log, lookup or quarantine statements that failed.
pub const SQL_ERRORS: &str = "amavisd_sql_errors_total";
/// Message bytes received, and reinjected.
pub const BYTES_IN: &str = "amavisd_bytes_in_total";
pub const BYTES_OUT: &str = "amavisd_bytes_out_total";
/// SMTP/LMTP sessions open now.
pub const SESSIONS: &str = "amavisd_sessions_in_flight";
/// Rules the spam engine's one-pass (Hyperscan) prefilter holds; 0 while the literal
/// prefilter answers (compiling at start, or no Hyperscan).
pub const PREFILTER_ONE_PASS_RULES: &str = "amavisd_spam_prefilter_one_pass_rules";

/// Histogram buckets for stage timings (seconds): a clean message takes milliseconds, a slow
/// scanner or next hop tens of seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// How often histogram data is folded in (the recorder's upkeep).
const UPKEEP: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static STARTED: OnceLock<std::time::Instant> = OnceLock::new();

/// Why counting could not start.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("metrics.listen {0}: {1}")]
    Listen(SocketAddr, String),
}

/// Installs the recorder (once per process) and, with `listen`, the HTTP endpoint serving
/// `/metrics`. Call within a tokio runtime. A second call (a test starting another server in
/// the same process) keeps the first recorder; a listener it asks for then is not started
/// and a warning says so.
pub fn install(listen: Option<SocketAddr>) -> Result<(), StatsError> {
    STARTED.get_or_init(std::time::Instant::now);
    if HANDLE.get().is_some() {
        if let Some(addr) = listen {
            tracing::warn!(
                "metrics endpoint {addr} not started: the recorder was installed before"
            );
        }
        return Ok(());
    }
    let builder = PrometheusBuilder::new().set_buckets(BUCKETS).map_err(|e| {
        StatsError::Listen(listen.unwrap_or(([0, 0, 0, 0], 0).into()), e.to_string())
    })?;
    let recorder = match listen {
        Some(addr) => {
            let (recorder, exporter) = builder
                .with_http_listener(addr)
                .build()
                .map_err(|e| StatsError::Listen(addr, e.to_string()))?;
            tokio::spawn(async move {
                if exporter.await.is_err() {
                    tracing::error!("metrics endpoint {addr} stopped");
                }
            });
            recorder
        }
        None => builder.build_recorder(),
    };
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        // Another recorder is in place (not ours): counting goes there.
        return Ok(());
    }
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(UPKEEP).await;
            upkeep.run_upkeep();
        }
    });
    let _ = HANDLE.set(handle);
    Ok(())
}

/// The counters now, in Prometheus' text format; `None` before [`install`].
pub fn render() -> Option<String> {
    HANDLE.get().map(|h| {
        h.run_upkeep();
        h.render()
    })
}

/// What `amavisd status` shows, as AM.PDP attributes (the release socket answers
/// `request=status`): `uptime`, one `session` per session in flight (`id stage age client
/// size`), one `counter` per counter line (histogram buckets left out).
pub fn status_attrs() -> Vec<(&'static str, String)> {
    let mut out = vec![(
        "uptime",
        format!(
            "{:.0}",
            STARTED.get().map_or(0.0, |s| s.elapsed().as_secs_f64())
        ),
    )];
    for s in sessions::snapshot() {
        out.push((
            "session",
            format!("{} {} {:.1} {} {}", s.id, s.stage, s.age, s.client, s.size),
        ));
    }
    for line in render().unwrap_or_default().lines() {
        if !line.starts_with('#') && !line.trim().is_empty() && !line.contains("_bucket{") {
            out.push(("counter", line.to_string()));
        }
    }
    out
}

/// The one-pass prefilter now in force holds `rules` rules (0: the literal one answers).
pub fn prefilter(rules: usize) {
    metrics::gauge!(PREFILTER_ONE_PASS_RULES).set(rules as f64);
}

/// One recipient's copy was decided.
pub fn recipient(category: &'static str, destiny: &'static str) {
    metrics::counter!(RECIPIENTS, "category" => category, "destiny" => destiny).increment(1);
}

/// A message was answered with `code`.
pub fn message(code: u16) {
    let class = match code {
        200..=299 => "2xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics::counter!(MESSAGES, "reply" => class).increment(1);
}

/// `stage` took `took`.
pub fn stage(stage: &'static str, took: Duration) {
    metrics::histogram!(STAGE_SECONDS, "stage" => stage).record(took.as_secs_f64());
}

pub fn scanner_error() {
    metrics::counter!(SCANNER_ERRORS).increment(1);
}

pub fn sql_error() {
    metrics::counter!(SQL_ERRORS).increment(1);
}

pub fn bytes_in(n: u64) {
    metrics::counter!(BYTES_IN).increment(n);
}

pub fn bytes_out(n: u64) {
    metrics::counter!(BYTES_OUT).increment(n);
}

/// The `[metrics]` table.
#[derive(Debug, Clone, Default, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// The Prometheus endpoint (`GET /metrics`), e.g. `127.0.0.1:9775`; empty: none. Loopback
    /// addresses only: the counters say much about a site's mail.
    pub listen: String,
}

impl MetricsConfig {
    /// The endpoint's address, `None` when off; an error for a bad or non-loopback address.
    pub fn address(&self) -> Result<Option<SocketAddr>, String> {
        if self.listen.is_empty() {
            return Ok(None);
        }
        let addr: SocketAddr = self
            .listen
            .parse()
            .map_err(|e| format!("{:?} is not addr:port: {e}", self.listen))?;
        if !addr.ip().is_loopback() {
            return Err(format!("{addr} is not a loopback address"));
        }
        Ok(Some(addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_loopback_only() {
        let at = |s: &str| MetricsConfig { listen: s.into() }.address();
        assert_eq!(at(""), Ok(None));
        assert_eq!(
            at("127.0.0.1:9775"),
            Ok(Some(([127, 0, 0, 1], 9775).into()))
        );
        assert!(at("[::1]:9775").is_ok_and(|a| a.is_some()));
        assert!(at("0.0.0.0:9775").unwrap_err().contains("loopback"));
        assert!(at("localhost").is_err());
    }
}
