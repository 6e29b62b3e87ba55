//! What the accept loops of the side listeners (release, spamd) share: a bound on the
//! sessions served at once, waited for while shutdown is watched.

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
