//! Decoded bytes held in memory, counted across all messages at once.
//!
//! `memory_part_limit` bounds one part; this bounds them all. A message's decoded parts live
//! from its decoding (on the scan threads) to the end of its virus scan (clamd, one session
//! each, waiting its turn), so with 64 sessions of 1 MB messages ~64 messages' parts waited
//! in memory at once for clamd: peak PSS swung between 171 and 238 MiB from run to run.
//! Past the total, parts go to temporary files like large ones; nothing waits.

use std::sync::atomic::{AtomicU64, Ordering};

/// Decoded bytes all messages together hold in memory at most (beyond it, parts are written
/// to files in tempdir): 32 parts at `memory_part_limit` (1 MiB), room for every scan in
/// flight at the shipped settings.
pub const MEMORY_PARTS_TOTAL: u64 = 32 * 1024 * 1024;

static HELD: AtomicU64 = AtomicU64::new(0);

/// Takes `n` more bytes of the total when they fit; false leaves it as it was.
pub fn reserve(n: u64) -> bool {
    HELD.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
        held.checked_add(n).filter(|&t| t <= MEMORY_PARTS_TOTAL)
    })
    .is_ok()
}

/// Gives back `n` bytes taken with [`reserve`].
pub fn release(n: u64) {
    // Never below zero, whatever a caller does.
    let _ = HELD.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
        Some(held.saturating_sub(n))
    });
}

/// Bytes of decoded parts that count against the total, given back when dropped.
#[derive(Default)]
pub struct Bytes {
    bytes: Vec<u8>,
    counted: u64,
}

impl Bytes {
    /// `bytes`, of which `counted` were reserved.
    pub fn counted(bytes: Vec<u8>, counted: u64) -> Bytes {
        Bytes { bytes, counted }
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Bytes {
    fn drop(&mut self) {
        release(self.counted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_is_taken_and_given_back() {
        // Other tests decode in parallel: only what this test holds is certain.
        let before = HELD.load(Ordering::Acquire);
        assert!(!reserve(MEMORY_PARTS_TOTAL + 1), "more than the total fit");
        assert!(reserve(10));
        let b = Bytes::counted(vec![0; 10], 10);
        assert!(HELD.load(Ordering::Acquire) >= 10);
        drop(b);
        assert!(HELD.load(Ordering::Acquire) <= before.max(10));
    }
}
