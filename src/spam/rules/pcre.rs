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

/// What goes with a PCRE2 pattern: the text the prefilter takes the pattern's literals from.
/// Nothing runs in front of PCRE2 itself: a linear-engine twin of a Perl-only pattern ruled
/// few texts out that the prefilter had let through, and cost more than PCRE2's own JIT
/// (7% of the slot's CPU in a profile on the corpus) and a lazy DFA's memory each.
pub enum Front {
    /// The pattern in the linear engine's syntax (it parses there too).
    Exact(Box<str>),
    /// Perl-only syntax: the pattern loosened ([`super::pattern::relax`]) into one whose
    /// matches include the original's.
    Loosened(Box<str>),
    /// Perl-only syntax whose loosened form does not parse either.
    Nothing,
}

impl Front {
    pub(super) fn linear_source(&self) -> Option<&str> {
        match self {
            Front::Exact(s) | Front::Loosened(s) => Some(s),
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
