//! Sessions in flight, for `amavisd status` (amavisd-nanny's view without BerkeleyDB): each
//! session registers itself while it runs, and the stages of the message it carries say
//! where it is. The session's id lives in a task-local, so stages deep in the pipeline mark
//! their progress without a handle passed down.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One session as `amavisd status` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionView {
    pub id: u64,
    /// `idle`, `receiving`, `checks`, `quarantine`, `forward` ...
    pub stage: &'static str,
    /// Seconds since the session began.
    pub age: f64,
    /// The client's address (XFORWARD ADDR once given, else the peer).
    pub client: String,
    /// Bytes of the message in hand (0 between messages).
    pub size: u64,
}

struct Entry {
    stage: &'static str,
    started: Instant,
    client: String,
    size: u64,
}

static NEXT: AtomicU64 = AtomicU64::new(1);
static TABLE: Mutex<BTreeMap<u64, Entry>> = Mutex::new(BTreeMap::new());

tokio::task_local! {
    static CURRENT: u64;
}

fn with_entry(f: impl FnOnce(&mut Entry)) {
    let Ok(id) = CURRENT.try_with(|id| *id) else {
        return;
    };
    if let Ok(mut t) = TABLE.lock()
        && let Some(e) = t.get_mut(&id)
    {
        f(e);
    }
}

/// Runs `session` registered as a session from `client`, removing it when it ends.
pub async fn run<F: std::future::Future>(client: String, session: F) -> F::Output {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut t) = TABLE.lock() {
        t.insert(
            id,
            Entry {
                stage: "idle",
                started: Instant::now(),
                client,
                size: 0,
            },
        );
    }
    metrics::gauge!(super::SESSIONS).increment(1.0);
    /// Removes the entry even when the session's future is dropped midway.
    struct Leave(u64);
    impl Drop for Leave {
        fn drop(&mut self) {
            if let Ok(mut t) = TABLE.lock() {
                t.remove(&self.0);
            }
            metrics::gauge!(super::SESSIONS).decrement(1.0);
        }
    }
    let _leave = Leave(id);
    CURRENT.scope(id, session).await
}

/// The current session is now at `stage`.
pub fn stage(stage: &'static str) {
    with_entry(|e| e.stage = stage);
}

/// The current session's message: its size, and the client it names (XFORWARD ADDR).
pub fn message(size: u64, client: Option<&str>) {
    with_entry(|e| {
        e.size = size;
        if let Some(c) = client.filter(|c| !c.is_empty()) {
            e.client = c.to_string();
        }
    });
}

/// The sessions in flight, oldest first.
pub fn snapshot() -> Vec<SessionView> {
    let Ok(t) = TABLE.lock() else {
        return Vec::new();
    };
    t.iter()
        .map(|(id, e)| SessionView {
            id: *id,
            stage: e.stage,
            age: e.started.elapsed().as_secs_f64(),
            client: e.client.clone(),
            size: e.size,
        })
        .collect()
}
