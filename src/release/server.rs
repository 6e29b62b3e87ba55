//! The AM.PDP listener for release requests: a unix socket and/or a loopback TCP port, several
//! requests per session, each answered when its empty line arrives.

use super::ampdp::{self, Attrs};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, watch};

/// Release sessions served at once; more wait to be accepted. amavisd-new serves release
/// requests from its pool of children (`$max_servers`, 2 by default in Debian).
pub const MAX_SESSIONS: usize = 16;

/// Silence allowed between the lines of a session before it is closed, so idle clients do
/// not hold sessions for ever (amavisd-new's `$child_timeout` is 8 minutes).
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// The `[release]` table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReleaseConfig {
    /// A unix socket for `amavisd-release` (empty: none). Debian's Perl client connects to
    /// `/var/lib/amavis/amavisd.sock` unless edited.
    pub unix: PathBuf,
    /// `addr:port` on loopback (amavisd-new's customary 127.0.0.1:9998); empty: none.
    pub inet: String,
    /// amavisd-new's `auth_required_release`: a request must carry the message's secret_id.
    pub require_secret: bool,
}

impl Default for ReleaseConfig {
    fn default() -> Self {
        ReleaseConfig {
            unix: PathBuf::from("var/amavisd.sock"),
            inet: String::new(),
            require_secret: true,
        }
    }
}

impl ReleaseConfig {
    /// Refuses an address that is not loopback: release needs no network exposure.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if !self.inet.is_empty() {
            match self.inet.parse::<std::net::SocketAddr>() {
                Ok(a) if a.ip().is_loopback() => {}
                _ => {
                    return Err((
                        "inet".into(),
                        format!("{:?} is not a loopback addr:port", self.inet),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Who answers requests.
pub trait ReleaseHandler: Send + Sync + 'static {
    fn release(&self, req: Attrs) -> impl Future<Output = Attrs> + Send;
}

/// The bound listeners.
pub struct ReleaseListener {
    unix: Option<UnixListener>,
    tcp: Option<TcpListener>,
}

impl ReleaseListener {
    /// Binds what `cfg` names (an old socket file is replaced).
    pub async fn bind(cfg: &ReleaseConfig) -> std::io::Result<ReleaseListener> {
        let unix = if cfg.unix.as_os_str().is_empty() {
            None
        } else {
            if let Some(dir) = cfg.unix.parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)?;
            }
            let _ = std::fs::remove_file(&cfg.unix);
            Some(UnixListener::bind(&cfg.unix)?)
        };
        let tcp = if cfg.inet.is_empty() {
            None
        } else {
            Some(TcpListener::bind(&cfg.inet).await?)
        };
        Ok(ReleaseListener { unix, tcp })
    }

    /// The TCP address, when there is one (port 0 resolved).
    pub fn tcp_addr(&self) -> Option<std::net::SocketAddr> {
        self.tcp.as_ref().and_then(|t| t.local_addr().ok())
    }

    /// Serves until `shutdown` turns true.
    pub async fn serve<H: ReleaseHandler>(
        self,
        handler: Arc<H>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let sessions = Arc::new(Semaphore::new(MAX_SESSIONS));
        loop {
            let Some(permit) = crate::accept::session_permit(&sessions, &mut shutdown).await else {
                return;
            };
            let serve = |s, handler: &Arc<H>| {
                let handler = Arc::clone(handler);
                tokio::spawn(async move {
                    session_on(s, handler).await;
                    drop(permit);
                });
            };
            tokio::select! {
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { return; }
                }
                Some(s) = accept_unix(&self.unix) => serve(Stream::Unix(s), &handler),
                Some(s) = accept_tcp(&self.tcp) => serve(Stream::Tcp(s), &handler),
            }
        }
    }
}

/// An accepted release client.
enum Stream {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

/// Serves one client on whichever socket it came in.
async fn session_on<H: ReleaseHandler>(s: Stream, handler: Arc<H>) {
    match s {
        Stream::Unix(s) => session(s, handler).await,
        Stream::Tcp(s) => session(s, handler).await,
    }
}

async fn accept_unix(l: &Option<UnixListener>) -> Option<tokio::net::UnixStream> {
    match l {
        Some(l) => l.accept().await.ok().map(|(s, _)| s),
        None => std::future::pending().await,
    }
}

async fn accept_tcp(l: &Option<TcpListener>) -> Option<tokio::net::TcpStream> {
    match l {
        Some(l) => l.accept().await.ok().map(|(s, _)| s),
        None => std::future::pending().await,
    }
}

/// One client: requests until it closes; an over-long line, too many attributes or
/// `IDLE_TIMEOUT` of silence ends it.
async fn session<S, H>(stream: S, handler: Arc<H>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: ReleaseHandler,
{
    let (r, mut w) = tokio::io::split(stream);
    let mut r = BufReader::new(r);
    let mut req = Attrs::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut limited = (&mut r).take(ampdp::MAX_LINE as u64 + 1);
        let read = limited.read_until(b'\n', &mut line);
        let n = match tokio::time::timeout(IDLE_TIMEOUT, read).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) | Err(_) => return,
        };
        if n == 0 || line.len() > ampdp::MAX_LINE {
            return;
        }
        let text = String::from_utf8_lossy(&line);
        if text.trim_end_matches(['\r', '\n']).is_empty() {
            if req.0.is_empty() {
                continue;
            }
            let resp = handler.release(std::mem::take(&mut req)).await;
            if w.write_all(&resp.to_wire()).await.is_err() || w.flush().await.is_err() {
                return;
            }
            continue;
        }
        if let Some(kv) = ampdp::parse_line(&text) {
            if req.0.len() >= ampdp::MAX_ATTRS {
                return;
            }
            req.0.push(kv);
        }
    }
}
