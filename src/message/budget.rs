//! One process-wide budget for large objects held whole in memory: a spooled message read
//! back for DKIM (mail-auth does not stream) or a decoded part kept in a file and read for
//! the virus scanner. Spooling bounds what a session holds while mail arrives; without this
//! budget 64 sessions of 10 MiB messages each read theirs back whole at once (measured: a
//! peak RSS of 968 MiB, most of it these copies). Small objects stay in memory anyway and
//! take none of it; a large one waits until its size fits.

use tokio::sync::{Semaphore, SemaphorePermit};

/// KiB of such copies all sessions together may hold at once. A copy larger than this takes
/// all of it (and so runs alone). 12 MiB: one 10 MB message at a time; 32 MiB let three
/// wait on the disk and DKIM together for no gain in rate (64 sessions of 10 MB messages:
/// 12 msgs/s either way, peak PSS 220 MiB with 32 against 182-195 with 12).
pub const WHOLE_COPIES_KIB: u32 = 12 * 1024;

static BUDGET: Semaphore = Semaphore::const_new(WHOLE_COPIES_KIB as usize);

/// A share of the budget, given back when dropped.
pub struct Held {
    _permit: Option<SemaphorePermit<'static>>,
}

/// Waits until `len` bytes fit in the budget, and holds them.
pub async fn hold(len: u64) -> Held {
    let kib = u32::try_from(len.div_ceil(1024))
        .unwrap_or(u32::MAX)
        .clamp(1, WHOLE_COPIES_KIB);
    // The semaphore is a static that is never closed: acquiring can only wait, never fail.
    Held {
        _permit: BUDGET.acquire_many(kib).await.ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn large_copies_wait_for_room_and_give_it_back() {
        let big = u64::from(WHOLE_COPIES_KIB) * 1024;
        let first = hold(big * 2).await;
        // The whole budget is taken: another large copy waits.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), hold(big / 2));
        assert!(waiting.await.is_err(), "a second copy fit in a full budget");
        drop(first);
        let a = hold(big / 2).await;
        let b = hold(big / 2).await;
        drop((a, b));
    }
}
