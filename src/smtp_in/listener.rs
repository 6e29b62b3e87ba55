//! Accepting connections: inet and unix sockets, the connection cap, and draining on shutdown.
//!
//! As in mini-redis, each session holds a clone of an `mpsc::Sender`; when the last one is
//! dropped after shutdown, every in-flight session has finished.

use super::MessageHandler;
use super::config::{ListenProtocol, Listener};
use super::session::{Session, SessionSettings};
use crate::message::{ClientInfo, Reply};
use arc_swap::ArcSwap;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, mpsc, watch};

/// Bound sockets, ready to serve, each with the `[[listen]]` entry it came from.
pub struct Listeners {
    sockets: Vec<(Listener, Bound)>,
}

/// A change of listening sockets on reload: those in `keep` go on serving (their sockets are
/// never closed, so no connection is refused meanwhile), the others stop accepting (their
/// sessions in flight finish), and `add` is served from now on.
pub struct Rebind {
    pub keep: Vec<Listener>,
    pub add: Listeners,
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
            .filter_map(|(_, b)| match b {
                Bound::Tcp(l) => l.local_addr().ok(),
                Bound::Unix(..) => None,
            })
            .collect()
    }
}

/// Binds one `[[listen]]` entry (`None` for an entry with neither address). A stale unix
/// socket file is replaced. Call within a tokio runtime.
fn bind_one(l: &Listener) -> io::Result<Option<Bound>> {
    if let Some(addr) = &l.inet {
        let named =
            |e: io::Error| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"));
        // std's bind (SO_REUSEADDR set, as tokio's) works outside async code: a reload binds
        // its new sockets on the blocking pool.
        let std = std::net::TcpListener::bind(addr.as_str()).map_err(named)?;
        std.set_nonblocking(true).map_err(named)?;
        return Ok(Some(Bound::Tcp(TcpListener::from_std(std).map_err(named)?)));
    }
    if let Some(path) = &l.unix {
        let _ = std::fs::remove_file(path);
        let l = UnixListener::bind(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot listen on {}: {e}", path.display()),
            )
        })?;
        return Ok(Some(Bound::Unix(l, path.clone())));
    }
    Ok(None)
}

/// Binds every listener in `listen`.
pub async fn bind_all(listen: &[Listener]) -> io::Result<Listeners> {
    bind_new(&[], listen)
}

/// Binds the entries of `new` that are not in `old` (a reload's added listeners).
pub fn bind_new(old: &[Listener], new: &[Listener]) -> io::Result<Listeners> {
    let mut sockets = Vec::new();
    for l in new.iter().filter(|l| !old.contains(l)) {
        if let Some(bound) = bind_one(l)? {
            sockets.push((l.clone(), bound));
        }
    }
    Ok(Listeners { sockets })
}

/// Serves until `shutdown` turns true, then stops accepting and waits for every session to end
/// (sessions close themselves between commands once shutdown is signalled). A session takes
/// the `settings` in force when it starts (the protocol is each listener's own).
pub async fn serve<H: MessageHandler>(
    listeners: Listeners,
    settings: Arc<ArcSwap<SessionSettings>>,
    handler: Arc<H>,
    mut shutdown: watch::Receiver<bool>,
    mut rebind: mpsc::UnboundedReceiver<Rebind>,
) {
    let max = settings.load().limits.max_connections;
    let permits = Arc::new(Semaphore::new(max));
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let sessions_shutdown = shutdown.clone();
    let spawn = |sockets: Listeners, tasks: &mut Vec<(Listener, tokio::task::JoinHandle<()>)>| {
        for (l, bound) in sockets.sockets {
            let ctx = AcceptCtx {
                settings: Arc::clone(&settings),
                handler: Arc::clone(&handler),
                permits: Arc::clone(&permits),
                shutdown: sessions_shutdown.clone(),
                done: done_tx.clone(),
                proto: l.protocol,
            };
            tasks.push((l, tokio::spawn(accept_loop(bound, ctx))));
        }
    };
    let mut accept_tasks = Vec::new();
    spawn(listeners, &mut accept_tasks);
    // Once the server's handle is gone no reload can come: stop polling the channel.
    let mut reloads_open = true;
    while !*shutdown.borrow() {
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            r = rebind.recv(), if reloads_open => {
                let Some(r) = r else {
                    reloads_open = false;
                    continue;
                };
                let (kept, gone): (Vec<_>, Vec<_>) =
                    accept_tasks.into_iter().partition(|(l, _)| r.keep.contains(l));
                for (l, t) in gone {
                    t.abort();
                    let _ = t.await;
                    tracing::info!("reload: no longer listening on {}", describe(&l));
                }
                accept_tasks = kept;
                for (l, _) in &r.add.sockets {
                    tracing::info!("reload: now listening on {}", describe(l));
                }
                spawn(r.add, &mut accept_tasks);
            }
        }
    }
    drop(done_tx);
    for (_, t) in &accept_tasks {
        t.abort();
    }
    for (_, t) in accept_tasks {
        let _ = t.await;
    }
    // Every session holds a sender; recv() returns None when the last one is gone.
    let _ = done_rx.recv().await;
}

/// A listener as the log names it.
fn describe(l: &Listener) -> String {
    match (&l.inet, &l.unix) {
        (Some(a), _) => a.clone(),
        (_, Some(p)) => p.display().to_string(),
        _ => "(nothing)".into(),
    }
}

struct AcceptCtx<H> {
    settings: Arc<ArcSwap<SessionSettings>>,
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
        let settings = ctx.settings.load_full();
        match Arc::clone(&ctx.permits).try_acquire_owned() {
            Ok(permit) => {
                let set = settings.speaking(ctx.proto);
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
                    settings.hostname
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
