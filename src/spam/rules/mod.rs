//! SpamAssassin's rule files and what they compile to: the `.cf` reader ([`cf`]) with its
//! `if`/`ifplugin` conditions ([`condition`]) and template tags ([`replace_tags`]); Perl
//! regexes on our engines ([`pattern`]); meta-rule expressions ([`meta`]); the scan plan
//! ([`plan`]) with its literal prefilter ([`prefilter`]) and, when the system has it,
//! Hyperscan's one-pass databases.

pub mod cf;
mod cf_lists;
pub mod condition;
#[cfg(hyperscan)]
pub mod hyperscan;
pub mod linear;
pub mod meta;
pub mod pattern;
#[cfg(feature = "pcre")]
mod pcre;
mod perl_lex;
pub mod plan;
pub mod prefilter;
pub mod replace_tags;

/// Hands the C heap's free pages back to the system. libhs and PCRE2 allocate with
/// malloc; compiling the rules peaks at hundreds of MB there, and glibc keeps the freed
/// pages in its arenas (measured: 25 MiB still resident after the compile). The Rust heap
/// (mimalloc) returns its own.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
