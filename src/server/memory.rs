//! How the allocator gives memory back. The daemon runs on mimalloc (see `amavisd/main.rs`),
//! whose defaults keep freed memory mapped for a while (a 1 s purge delay, 10 s in its
//! arenas) and commit whole arenas eagerly: fast for short programs, but a filter that
//! loads ~50 MiB of rules, frees its temporaries and then serves for weeks carried that
//! slack as resident memory. Measured on the slot benchmark (64 sessions, 3,000 corpus
//! messages, PSS peak / filter CPU per message):
//!
//! | purge delay, eager commit | peak PSS | CPU |
//! |---|---:|---:|
//! | 1000 ms, yes (defaults) | 289 MiB | 5.1-5.6 ms |
//! | 0 ms, no | 204 MiB | 5.7-6.1 ms (a purge per free costs system calls) |
//! | 10 ms, no | 210 MiB | 5.0-5.7 ms |
//! | 100 ms, no (chosen) | 217 MiB | 4.6-4.7 ms |

use std::os::raw::{c_int, c_long};

// The functions below are mimalloc's C API, from the library this crate links in.
extern crate mimalloc as _;

// mimalloc v3's option numbers (mimalloc.h, `mi_option_e`); libmimalloc-sys does not name
// these two. The test below checks them against their documented defaults.
const ARENA_EAGER_COMMIT: c_int = 4;
const PURGE_DELAY: c_int = 15;

unsafe extern "C" {
    #[cfg(test)]
    fn mi_option_get(option: c_int) -> c_long;
    fn mi_option_set(option: c_int, value: c_long);
}

/// Freed memory goes back to the system after 100 ms and arenas are committed as used. An option set
/// in the environment (`MIMALLOC_PURGE_DELAY`, `MIMALLOC_ARENA_EAGER_COMMIT`) is the
/// administrator's and is left alone. Call at start-up, before the worker threads.
pub fn return_memory_promptly() {
    for (option, env, value) in [
        (PURGE_DELAY, "MIMALLOC_PURGE_DELAY", 100),
        (ARENA_EAGER_COMMIT, "MIMALLOC_ARENA_EAGER_COMMIT", 0),
    ] {
        if std::env::var_os(env).is_none() {
            // SAFETY: mi_option_set takes any option number and value; mimalloc documents
            // it as not thread safe, so it runs at start-up before other threads exist.
            unsafe { mi_option_set(option, value) }
        }
    }
}

/// An option's current value.
#[cfg(test)]
fn option(option: c_int) -> c_long {
    // SAFETY: reading an option has no preconditions.
    unsafe { mi_option_get(option) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_numbers_are_mimallocs() {
        // The documented defaults: arena_eager_commit 2 (on overcommit systems), purge_delay
        // 1000 ms. A different mimalloc would number them differently and fail here.
        assert_eq!(option(ARENA_EAGER_COMMIT), 2);
        assert_eq!(option(PURGE_DELAY), 1000);
        return_memory_promptly();
        assert_eq!(option(ARENA_EAGER_COMMIT), 0);
        assert_eq!(option(PURGE_DELAY), 100);
    }
}
