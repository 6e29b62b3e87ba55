//! Accepting connections: inet and unix sockets, the connection cap, and draining on shutdown.
//!
//! As in mini-redis, each session holds a clone of an `mpsc::Sender`; when the last one is
//! dropped after shutdown, every in-flight session has finished.

use super::MessageHandler;
use super::session::{Session, SessionSettings};
use crate::config::{Config, ListenProtocol};
use crate::message::{ClientInfo, Reply};
use arc_swap::ArcSwap;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, mpsc, watch};

/// Bound sockets, ready to serve.
pub struct Listeners {
    sockets: Vec<(Bound, ListenProtocol)>,
}

enum Bound {
    Tcp(TcpListener),
    Unix(UnixListener, std::path::PathBuf),
}

impl Listeners {
    /// The local addresses of the inet listeners (tests bind port 0 and ask).
    pub fn local_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.sockets
            .iter()
            .filter_map(|(b, _)| match b {
                Bound::Tcp(l) => l.local_addr().ok(),
                Bound::Unix(..) => None,
            })
            .collect()
    }
}

/// Binds every listener in the configuration. A stale unix socket file is replaced.
pub async fn bind_all(cfg: &Config) -> io::Result<Listeners> {
    let mut sockets = Vec::new();
    for l in &cfg.listen {
        let bound = if let Some(addr) = &l.inet {
            let l = TcpListener::bind(addr.as_str())
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
            Bound::Tcp(l)
        } else if let Some(path) = &l.unix {
            let _ = std::fs::remove_file(path);
            let l = UnixListener::bind(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot listen on {}: {e}", path.display()),
                )
            })?;
            Bound::Unix(l, path.clone())
        } else {
            continue;
        };
        sockets.push((bound, l.protocol));
    }
    Ok(Listeners { sockets })
}

/// Serves until `shutdown` turns true, then stops accepting and waits for every session to end
/// (sessions close themselves between commands once shutdown is signalled).
pub async fn serve<H: MessageHandler>(
    listeners: Listeners,
    config: Arc<ArcSwap<Config>>,
    handler: Arc<H>,
    mut shutdown: watch::Receiver<bool>,
) {
    let max = config.load().limits.max_connections;
    let permits = Arc::new(Semaphore::new(max));
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let mut accept_tasks = Vec::new();
    for (bound, proto) in listeners.sockets {
        let ctx = AcceptCtx {
            config: Arc::clone(&config),
            handler: Arc::clone(&handler),
            permits: Arc::clone(&permits),
            shutdown: shutdown.clone(),
            done: done_tx.clone(),
            proto,
        };
        accept_tasks.push(tokio::spawn(accept_loop(bound, ctx)));
    }
    drop(done_tx);
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
    for t in &accept_tasks {
        t.abort();
    }
    for t in accept_tasks {
        let _ = t.await;
    }
    // Every session holds a sender; recv() returns None when the last one is gone.
    let _ = done_rx.recv().await;
}

struct AcceptCtx<H> {
    config: Arc<ArcSwap<Config>>,
    handler: Arc<H>,
    permits: Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
    proto: ListenProtocol,
}

async fn accept_loop<H: MessageHandler>(bound: Bound, ctx: AcceptCtx<H>) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = match &bound {
            Bound::Tcp(l) => l.accept().await.map(|(s, peer)| {
                let _ = s.set_nodelay(true);
                let client = ClientInfo {
                    peer: Some(peer),
                    local: s.local_addr().ok(),
                    ..ClientInfo::default()
                };
                (Stream::Tcp(s), client)
            }),
            Bound::Unix(l, path) => l.accept().await.map(|(s, _)| {
                let client = ClientInfo {
                    socket_path: Some(path.clone()),
                    ..ClientInfo::default()
                };
                (Stream::Unix(s), client)
            }),
        };
        let (stream, client) = match accepted {
            Ok(x) => {
                backoff = Duration::from_millis(10);
                x
            }
            Err(e) => {
                // Out of file descriptors and the like: wait and try again, never spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let cfg = ctx.config.load_full();
        match Arc::clone(&ctx.permits).try_acquire_owned() {
            Ok(permit) => {
                let set = SessionSettings::from_config(&cfg, ctx.proto);
                let session = Session::new(
                    stream,
                    set,
                    Arc::clone(&ctx.handler),
                    client,
                    ctx.shutdown.clone(),
                );
                let done = ctx.done.clone();
                let peer = session.client_addr();
                tokio::spawn(async move {
                    crate::stats::sessions::run(peer, session.run()).await;
                    drop(permit);
                    drop(done);
                });
            }
            Err(_) => {
                let text = format!(
                    "{} Error: too many connections, try again later",
                    cfg.myhostname
                );
                tokio::spawn(async move {
                    let mut stream = stream;
                    let wire = Reply::new(421, "4.3.2", text).to_wire();
                    let _ = tokio::time::timeout(Duration::from_secs(10), async {
                        let _ = stream.write_all(&wire).await;
                        let _ = stream.shutdown().await;
                    })
                    .await;
                });
            }
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

/// An accepted inet or unix stream.
enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => std::pin::Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}
