//! The milter front end: Postfix (`smtpd_milters`) or Sendmail hand us each message while
//! the SMTP client is still connected, and our verdict becomes their answer to it: accept
//! (with our header fields), reject with our reply, tempfail, discard, or the MTA's hold
//! queue. The checks, verdicts, SQL log and quarantine are the SMTP path's
//! ([`Screener`], which the pipeline implements); only the answer differs.
//!
//! - [`protocol`]: the milter protocol without I/O (packets, commands, responses).
//! - `session`: one MTA connection (timeouts, the message spooled, the answer as actions).
//! - [`config`]: `[[milter]]` listeners.
//!
//! # Limits
//! A packet is at most [`protocol::MAX_PACKET`] bytes; a message at most
//! `limits.message_size_limit` (552 5.3.4 beyond) with a header section of at most
//! `limits.header_size_limit`, spooled to disk above `limits.memory_spool_limit`; the MTA's
//! silence is bounded by each listener's `idle_timeout`, its connections by
//! `max_connections`.

pub mod config;
pub mod protocol;
mod session;

pub use config::MilterListener;
pub use session::{SessionConfig, SessionError};

use crate::message::Envelope;
use crate::message::screen::{ScreenOptions, Screened};
use crate::message::{ClientInfo, Spool};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

/// What answers a message before the queue: the pipeline.
pub trait Screener: Send + Sync + 'static {
    /// The answer for the whole message (never an error: what must wait is a tempfail).
    fn screen(
        &self,
        env: Envelope,
        spool: Spool,
        opts: &ScreenOptions,
    ) -> impl Future<Output = Screened> + Send;

    /// Whether policy bank `name` exists (a macro may name one that does not).
    fn has_policy_bank(&self, name: &str) -> bool;
}

/// A bound milter socket.
pub enum Bound {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Bound {
    /// The TCP address, for tests and the start-up log.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Bound::Tcp(l) => l.local_addr().ok(),
            Bound::Unix(..) => None,
        }
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        if let Bound::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Binds a `[[milter]]` entry; a stale unix socket file is replaced.
pub fn bind(l: &MilterListener) -> io::Result<Bound> {
    let named = |what: &str, e: io::Error| {
        io::Error::new(e.kind(), format!("milter: cannot listen on {what}: {e}"))
    };
    match (&l.inet, &l.unix) {
        (Some(addr), _) => {
            let std = std::net::TcpListener::bind(addr.as_str()).map_err(|e| named(addr, e))?;
            std.set_nonblocking(true).map_err(|e| named(addr, e))?;
            Ok(Bound::Tcp(
                TcpListener::from_std(std).map_err(|e| named(addr, e))?,
            ))
        }
        (None, Some(path)) => {
            let _ = std::fs::remove_file(path);
            let shown = path.display().to_string();
            let l = UnixListener::bind(path).map_err(|e| named(&shown, e))?;
            Ok(Bound::Unix(l, path.clone()))
        }
        (None, None) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "milter: a listener needs `inet` or `unix`",
        )),
    }
}

/// Accepts MTA connections on `bound` until `shutdown` turns true; each connection is served
/// in its own task, at most `l.max_connections` at once.
pub async fn serve<S: Screener>(
    bound: Bound,
    cfg: SessionConfig,
    max_connections: usize,
    screener: Arc<S>,
    shutdown: watch::Receiver<bool>,
) {
    let cfg = Arc::new(cfg);
    let bound = &bound;
    crate::accept::serve_until_shutdown(
        "milter",
        max_connections,
        shutdown,
        || accept(bound),
        |(stream, client), permit| {
            let screener = Arc::clone(&screener);
            let cfg = Arc::clone(&cfg);
            tokio::spawn(async move {
                let r = match stream {
                    Accepted::Tcp(s) => session::serve(s, client, &*screener, &cfg).await,
                    Accepted::Unix(s) => session::serve(s, client, &*screener, &cfg).await,
                };
                if let Err(e) = r {
                    tracing::warn!("milter session: {e}");
                }
                drop(permit);
            });
        },
    )
    .await;
}

enum Accepted {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(bound: &Bound) -> io::Result<(Accepted, ClientInfo)> {
    match bound {
        Bound::Tcp(l) => {
            let (s, peer) = l.accept().await?;
            let _ = s.set_nodelay(true);
            let client = ClientInfo {
                peer: Some(peer),
                local: s.local_addr().ok(),
                ..ClientInfo::default()
            };
            Ok((Accepted::Tcp(s), client))
        }
        Bound::Unix(l, path) => {
            let (s, _) = l.accept().await?;
            let client = ClientInfo {
                socket_path: Some(path.clone()),
                ..ClientInfo::default()
            };
            Ok((Accepted::Unix(s), client))
        }
    }
}
