//! PCRE2, the engine most of SpamAssassin's patterns run on: Perl's own dialect, with its
//! JIT, and what stands in front of each pattern.
//!
//! Why PCRE2 runs every pattern it takes, rather than the linear engine where both could:
//! memory. The linear engine's automata (a forward and a reverse NFA, then lazy-DFA states
//! as searches visit them) came to 37.8 MiB compiled and ~33 MiB of caches under load for
//! SpamAssassin's ~1,400 patterns, PCRE2's compiled programs to a fraction of that; CPU was
//! the same or lower on the corpus, and rule hits agreed with SpamAssassin's slightly more
//! often (Perl's dialect: no translation). `examples/engine_memory.rs` measures it. The
//! linear engine keeps what PCRE2 rejects (programs over its 64 KiB limit: the largest
//! obfuscation classes of `replace_rules`). A runaway backtrack is cut by the match limit
//! below and counts as no match; SpamAssassin runs every rule on Perl's backtracking engine,
//! so a rule that runs away there runs away in SpamAssassin too.

use super::linear::Linear;

/// What goes with a PCRE2 pattern.
pub enum Front {
    /// Nothing runs first. The text is the pattern in the linear engine's syntax (it compiles
    /// there too), which the prefilter takes its literals from.
    Exact(Box<str>),
    /// Perl-only syntax: the pattern loosened ([`super::pattern::relax`]) runs first, to rule texts out
    /// without backtracking.
    Prefilter(Linear),
    /// Perl-only syntax whose loosened form did not compile either.
    Nothing,
}

impl Front {
    pub(super) fn admits(&self, text: &[u8]) -> bool {
        match self {
            Front::Prefilter(p) => p.is_match(text),
            Front::Exact(_) | Front::Nothing => true,
        }
    }

    pub(super) fn linear_source(&self) -> Option<&str> {
        match self {
            Front::Exact(s) => Some(s),
            Front::Prefilter(p) => Some(p.as_str()),
            Front::Nothing => None,
        }
    }
}

/// The pattern in PCRE2, which reads Perl's syntax as it is written; bytes, not UTF-8, as
/// SpamAssassin matches.
pub(super) fn pcre(pat: &str, flags: &str) -> Result<pcre2::bytes::Regex, pcre2::Error> {
    pcre2::bytes::RegexBuilder::new()
        .caseless(flags.contains('i'))
        .dotall(flags.contains('s'))
        .multi_line(flags.contains('m'))
        .extended(flags.contains('x'))
        .utf(false)
        .jit_if_available(true)
        .build(&format!("(*LIMIT_MATCH={PCRE_MATCH_LIMIT}){pat}"))
}

/// Backtracking steps one PCRE2 search may take before it gives up (the rule then does not
/// hit): a tenth of PCRE2's default, ~5 ms of JIT code on this machine where the default
/// ran 50 ms on `^(a|aa)+$` against 60 a's and a b. Matches on real mail take a few
/// thousand.
const PCRE_MATCH_LIMIT: u32 = 1_000_000;
