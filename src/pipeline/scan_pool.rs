//! A fixed set of threads for the CPU-bound checks of a message (decode, banned rules,
//! spam rules): `scan_threads` of them, for the life of the configuration.
//!
//! Why not tokio's blocking pool behind a semaphore: that pool starts a new thread whenever
//! all of its threads are busy or parked elsewhere (up to 512) and keeps idle ones for 10 s,
//! so over a busy minute many different threads scan. Each thread that runs the spam rules
//! grows its own regex caches (lazy DFA states, PikeVM and backtracker scratch: the regex
//! crate keeps them per thread) and its own Hyperscan scratch, and the regex crate keeps
//! those caches after the thread is gone. Memory then grew with every thread that ever
//! scanned (measured: ~50 MiB a thread with the shipped rules), not with the scans running
//! at once. Here the same few threads do all the scanning (and the rules' regex caches are
//! now shared by them, see `spam::rules::linear`: what stays per thread is scratch space).

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};

type Job = Box<dyn FnOnce() + Send>;

/// Why a job gave no result. Always temporary: the message is tried again later.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("scanning thread panicked: {0}")]
    Panic(String),
    #[error("scanning threads stopped")]
    Stopped,
}

/// The scanning threads and their queue. Dropping the pool lets each thread finish its
/// current job and end.
pub struct ScanPool {
    queue: Sender<Job>,
}

impl ScanPool {
    /// Starts `threads` threads (at least one).
    pub fn new(threads: usize) -> std::io::Result<ScanPool> {
        let (queue, jobs) = channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        let threads = threads.max(1);
        for i in 0..threads {
            let jobs = Arc::clone(&jobs);
            std::thread::Builder::new()
                .name(format!("amavisd-scan-{i}"))
                .spawn(move || work(&jobs))?;
        }
        Ok(ScanPool { queue })
    }

    /// Runs `f` on a scanning thread once one is free; a panic in `f` becomes an error and
    /// the thread goes on with the next job. If the caller stops waiting, `f` still runs.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // The receiver may be gone (the session ended); nothing then waits for this.
            let _ = tx.send(crate::catch_panic::catch(f));
        });
        self.queue.send(job).map_err(|_| PoolError::Stopped)?;
        match rx.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(panic)) => Err(PoolError::Panic(panic)),
            Err(_) => Err(PoolError::Stopped),
        }
    }
}

/// One thread: jobs until the pool is dropped. The lock is held only to take a job, never
/// while one runs, so it cannot be poisoned by a job's panic (and jobs catch their own).
fn work(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let next = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match next {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_same_few_threads_and_panics_are_errors() {
        let pool = ScanPool::new(2).unwrap();
        let mut names = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let name = pool
                .run(|| std::thread::current().name().map(str::to_string))
                .await
                .unwrap();
            names.insert(name.unwrap());
        }
        assert!(names.len() <= 2, "{names:?}");
        assert!(names.iter().all(|n| n.starts_with("amavisd-scan-")));
        let err = pool.run(|| -> u32 { panic!("boom") }).await.unwrap_err();
        assert!(matches!(&err, PoolError::Panic(t) if t == "boom"), "{err}");
        assert_eq!(pool.run(|| 7).await.unwrap(), 7, "the thread survived");
    }

    #[tokio::test]
    async fn many_waiting_callers_all_get_their_results() {
        let pool = Arc::new(ScanPool::new(2).unwrap());
        let tasks: Vec<_> = (0..64u64)
            .map(|i| {
                let pool = Arc::clone(&pool);
                tokio::spawn(async move { pool.run(move || i * 2).await.unwrap() })
            })
            .collect();
        let mut sum = 0;
        for t in tasks {
            sum += t.await.unwrap();
        }
        assert_eq!(sum, (0..64u64).map(|i| i * 2).sum::<u64>());
    }
}
