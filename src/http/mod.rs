//! rspamd's HTTP protocol (`[http] listen`): `rspamc`, Haraka, maddy, Stalwart, mailcow and
//! rspamd's own proxy ask us as they would ask rspamd. A check (`/checkv2`, `/check`) runs
//! the checks and verdicts of the SMTP path and answers with rspamd's JSON, our verdict as
//! one of its actions ([`reply`]); the client acts on it, so nothing is delivered,
//! quarantined or recorded here (the log line says what was advised). `/learnspam` and
//! `/learnham` train the Bayes store; `/stat`, `/auth`, `/metrics` and `/ping` answer as
//! rspamd's controller does, on the same port.
//!
//! - [`protocol`]: paths, access levels and request headers, without I/O.
//! - [`reply`]: the JSON replies and the verdict-to-action table.
//! - `server`: the HTTP/1 connections (hyper), bodies, passwords, counters.
//! - [`config`]: the `http` section.
//!
//! # Limits
//! A request head is at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`] fields; a message at most
//! `limits.message_size_limit` (413 beyond), spooled to disk above
//! `limits.memory_spool_limit`; a zstd body is decoded in memory up to the same limit. A
//! client has `http.timeout` seconds to send its request; `http.max_connections` are served
//! at once, one request each (rspamd closes after every reply, and its clients expect it).

mod body;
pub mod config;
pub mod protocol;
pub mod reply;
mod server;

pub use config::HttpConfig;

use crate::message::screen::{Advice, ScreenOptions};
use crate::message::{Envelope, Spool};
use crate::spam::{Class, Learned};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Largest request head (request line and fields): a thousand `Rcpt` fields fit.
pub const MAX_HEAD: usize = 128 << 10;
/// Most header fields in a request: a `Rcpt` per recipient, up to
/// [`protocol::MAX_RECIPIENTS`], and the others.
pub const MAX_HEADERS: usize = protocol::MAX_RECIPIENTS + 100;

/// What answers the requests: the pipeline.
pub trait Scanner: Send + Sync + 'static {
    /// The verdict for a message, as advice (never an error: what must wait is a tempfail).
    fn advise(
        &self,
        env: Envelope,
        spool: Spool,
        opts: &ScreenOptions,
    ) -> impl Future<Output = Advice> + Send;

    /// Learns `message` as `class` into `user`'s Bayes store (an address), or the site's.
    fn learn(
        &self,
        user: Option<&str>,
        class: Class,
        message: Vec<u8>,
    ) -> impl Future<Output = Result<Learned, crate::spam::LearnError>> + Send;

    /// Whether policy bank `name` exists (`Settings-ID` may name one that does not).
    fn has_policy_bank(&self, name: &str) -> bool;
}

/// The listener's settings: `[http]`'s, and the spool and caps of `[limits]`, as on the SMTP
/// path.
#[derive(Debug, Clone)]
pub struct Settings {
    pub timeout: Duration,
    pub policy_bank: String,
    pub authenticated_bank: String,
    /// The recipient of a check without `Rcpt` or `Deliver-To` (`postmaster@` our domain
    /// unless `http.default_recipient` names one).
    pub default_recipient: String,
    pub password: String,
    pub enable_password: String,
    pub secure_ip: Vec<ipnet::IpNet>,
    pub tempdir: PathBuf,
    pub memory_spool_limit: usize,
    pub header_size_limit: usize,
    pub message_size_limit: u64,
}

/// Accepts connections on `listener` until `shutdown` turns true; each is served in its own
/// task, at most `max_connections` at once.
pub async fn serve<S: Scanner>(
    listener: TcpListener,
    settings: Settings,
    max_connections: usize,
    scanner: Arc<S>,
    shutdown: watch::Receiver<bool>,
) {
    let ctx = Arc::new(server::Ctx::new(settings, scanner));
    let listener = &listener;
    crate::accept::serve_until_shutdown(
        "http",
        max_connections,
        shutdown,
        || listener.accept(),
        |(stream, peer), permit| {
            let _ = stream.set_nodelay(true);
            let local = stream.local_addr().ok();
            let ctx = Arc::clone(&ctx);
            tokio::spawn(async move {
                server::connection(stream, peer, local, ctx).await;
                drop(permit);
            });
        },
    )
    .await;
}

/// Serves one connection on `io` as [`serve`] serves each accepted socket (counters of its
/// own): for fuzzing and tests, which have a stream but no listener.
pub async fn serve_connection<S, IO>(io: IO, peer: SocketAddr, settings: Settings, scanner: Arc<S>)
where
    S: Scanner,
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let ctx = Arc::new(server::Ctx::new(settings, scanner));
    server::connection(io, peer, None, ctx).await;
}
