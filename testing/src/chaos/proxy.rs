//! A TCP proxy in front of a server the filter talks to (clamd, PostgreSQL, MariaDB, Redis,
//! the next hop), so that the chaos run can make that server fail without touching the real
//! one, which other tests share: **down** closes every connection and refuses new ones (the
//! listening socket is closed: connect gets ECONNREFUSED, as for a stopped server), **hang**
//! stops forwarding and holds the connections open (a server that is stuck), and **pass**
//! forwards again. Connections held by a hang are closed when it ends, as when a stuck
//! server is restarted: the bytes a half-done copy held cannot be delivered faithfully.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::watch;

/// Where the proxy forwards to.
#[derive(Debug, Clone)]
pub enum Upstream {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// What the proxied server does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyState {
    Pass,
    Down,
    Hang,
}

/// A running proxy; dropping it does not stop it (it lives for the run).
pub struct FaultProxy {
    addr: SocketAddr,
    state: watch::Sender<ProxyState>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: Upstream) -> std::io::Result<Arc<FaultProxy>> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (state, _) = watch::channel(ProxyState::Pass);
        let proxy = Arc::new(FaultProxy { addr, state });
        tokio::spawn(accept_loop(listener, upstream, proxy.state.subscribe()));
        Ok(proxy)
    }

    /// The loopback address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes what the server does, for open connections and new ones.
    pub fn set(&self, s: ProxyState) {
        self.state.send_replace(s);
    }

    /// What the server does now.
    pub fn state(&self) -> ProxyState {
        *self.state.borrow()
    }
}

async fn accept_loop(
    mut listener: TcpListener,
    upstream: Upstream,
    mut state: watch::Receiver<ProxyState>,
) {
    let Ok(addr) = listener.local_addr() else {
        return;
    };
    loop {
        if *state.borrow_and_update() == ProxyState::Down {
            drop(listener);
            while *state.borrow_and_update() == ProxyState::Down {
                if state.changed().await.is_err() {
                    return;
                }
            }
            listener = match rebind(addr).await {
                Some(l) => l,
                None => return,
            };
            continue;
        }
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((client, _)) = accepted {
                    let _ = client.set_nodelay(true);
                    tokio::spawn(connection(client, upstream.clone(), state.clone()));
                }
            }
            changed = state.changed() => if changed.is_err() { return },
        }
    }
}

/// The same port again after a "down": the filter's configuration names it. The old socket
/// is closed, and tokio sets SO_REUSEADDR, so this only waits out a race with the kernel.
async fn rebind(addr: SocketAddr) -> Option<TcpListener> {
    for _ in 0..200 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return Some(l);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    eprintln!("chaos proxy: cannot listen on {addr} again");
    None
}

async fn connection(client: TcpStream, upstream: Upstream, mut state: watch::Receiver<ProxyState>) {
    if *state.borrow_and_update() == ProxyState::Hang {
        hold_until_pass(&mut state).await;
        return;
    }
    match upstream {
        Upstream::Tcp(a) => match TcpStream::connect(a).await {
            Ok(up) => {
                let _ = up.set_nodelay(true);
                forward(client, up, state).await
            }
            Err(e) => eprintln!("chaos proxy: upstream {a}: {e}"),
        },
        Upstream::Unix(p) => match UnixStream::connect(&p).await {
            Ok(up) => forward(client, up, state).await,
            Err(e) => eprintln!("chaos proxy: upstream {}: {e}", p.display()),
        },
    }
}

/// Copies both ways until either side closes or the state leaves `Pass`: `Down` closes at
/// once, `Hang` holds both sockets silent until the state changes again, then closes.
async fn forward<U: AsyncRead + AsyncWrite + Unpin>(
    mut client: TcpStream,
    mut up: U,
    mut state: watch::Receiver<ProxyState>,
) {
    let next = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut up) => return,
        next = wait_not_pass(&mut state) => next,
    };
    if next == ProxyState::Hang {
        hold_until_pass(&mut state).await;
    }
}

async fn wait_not_pass(state: &mut watch::Receiver<ProxyState>) -> ProxyState {
    loop {
        let now = *state.borrow_and_update();
        if now != ProxyState::Pass {
            return now;
        }
        if state.changed().await.is_err() {
            // The proxy is gone with the run: keep forwarding until the sockets close.
            std::future::pending::<()>().await;
        }
    }
}

async fn hold_until_pass(state: &mut watch::Receiver<ProxyState>) {
    while *state.borrow_and_update() == ProxyState::Hang {
        if state.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        a
    }

    async fn echo(addr: SocketAddr) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        tokio::time::timeout(Duration::from_millis(500), s.read_exact(&mut buf))
            .await
            .map_err(|_| std::io::Error::other("timed out"))??;
        Ok(buf.to_vec())
    }

    #[tokio::test]
    async fn passes_refuses_when_down_and_stalls_when_hung() {
        let p = FaultProxy::start(Upstream::Tcp(echo_server().await))
            .await
            .unwrap();
        assert_eq!(echo(p.addr()).await.unwrap(), b"ping");

        let mut open = TcpStream::connect(p.addr()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        p.set(ProxyState::Down);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut buf = [0u8; 1];
        assert_eq!(
            open.read(&mut buf).await.unwrap(),
            0,
            "down closes open ones"
        );
        let refused = TcpStream::connect(p.addr()).await.unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

        p.set(ProxyState::Hang);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let err = echo(p.addr()).await.unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");

        p.set(ProxyState::Pass);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(echo(p.addr()).await.unwrap(), b"ping");
    }
}
