//! What the accept loops of the side listeners (release, spamd, milter, HTTP) share: a bound
//! on the sessions served at once, waited for while shutdown is watched.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// A permit for one more session, waiting while `sessions` are all taken (the next client
/// then waits in the kernel's accept queue); `None` once `shutdown` turns true.
pub async fn session_permit(
    sessions: &Arc<Semaphore>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<OwnedSemaphorePermit> {
    loop {
        tokio::select! {
            p = Arc::clone(sessions).acquire_owned() => return p.ok(),
            changed = shutdown.changed() => {
                // A dropped sender can say nothing more: treat it as shutdown.
                if changed.is_err() || *shutdown.borrow() {
                    return None;
                }
            }
        }
    }
}

/// A side listener's accept loop until `shutdown` turns true: a permit for one more session
/// (at most `max_sessions`), the next connection from `accept`, handed to `serve` with its
/// permit (which `serve` keeps for as long as it serves it, in a task of its own). An accept
/// error (a full file table) is logged under `what` and tried again 100 ms later.
pub async fn serve_until_shutdown<C, A>(
    what: &str,
    max_sessions: usize,
    mut shutdown: watch::Receiver<bool>,
    mut accept: impl FnMut() -> A,
    mut serve: impl FnMut(C, OwnedSemaphorePermit),
) where
    A: Future<Output = std::io::Result<C>>,
{
    let sessions = Arc::new(Semaphore::new(max_sessions));
    loop {
        let Some(permit) = session_permit(&sessions, &mut shutdown).await else {
            return;
        };
        let accepted = tokio::select! {
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    return;
                }
                continue;
            }
            a = accept() => a,
        };
        match accepted {
            Ok(c) => serve(c, permit),
            Err(e) => {
                tracing::warn!("{what} accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
