//! A rule's linear-time regex with one search cache shared by every scanning thread.
//!
//! Why not `regex::bytes::Regex`: it keeps a cache per thread that uses it (a pool sharded
//! by thread), and the lazy DFA in that cache grows to hold the states the rule's searches
//! visit. Over the ~1,400 regexes of SpamAssassin's rules that came to ~48 MiB per scanning
//! thread (counted with `examples/engine_memory.rs`: live heap after a pass of 1,000
//! messages on a new thread), so memory grew with the scan pool. Here each rule keeps one
//! cache behind a mutex: the threads take turns with it, and a rule's DFA states, once
//! built, serve every thread. Two threads on the same rule at once is rare (a rule's search
//! takes microseconds, and there are ~1,400 of them); the second waits for the first.

use regex_automata::meta::{self, Cache, Regex};
use regex_automata::util::iter::Searcher;
use regex_automata::{Input, PatternID};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Most NFA memory one rule may compile to (the `regex` crate's `size_limit`).
const NFA_LIMIT: usize = 10 << 20;

/// A compiled linear-time pattern with its shared cache and the source it came from.
#[derive(Debug)]
pub struct Linear {
    re: Regex,
    /// Made at the rule's first search: most rules never run on most mail (the prefilter
    /// rules them out), and ~1,400 empty caches made up front measured ~20 MiB. Boxed: an
    /// empty slot inline would be the size of a whole cache.
    cache: Mutex<Option<Box<Cache>>>,
    source: Box<str>,
}

impl Linear {
    /// Compiles `pattern` (the `regex` crate's syntax) to match bytes as
    /// `regex::bytes::Regex` would. `dfa_cache` caps the lazy DFA's cache (`None`: the
    /// engine's default).
    pub fn build(pattern: &str, dfa_cache: Option<usize>) -> Result<Linear, String> {
        let mut config = meta::Config::new()
            .match_kind(regex_automata::MatchKind::LeftmostFirst)
            .utf8_empty(false)
            .nfa_size_limit(Some(NFA_LIMIT));
        if let Some(bytes) = dfa_cache {
            config = config.hybrid_cache_capacity(bytes);
        }
        let re = meta::Builder::new()
            .configure(config)
            .syntax(syntax())
            .build(pattern)
            .map_err(|e| explain(&e))?;
        Ok(Linear {
            cache: Mutex::new(None),
            re,
            source: pattern.into(),
        })
    }

    /// Whether the engine's syntax takes `pattern` (as [`Linear::build`] reads it), without
    /// compiling it.
    pub fn parses(pattern: &str) -> bool {
        regex_automata::util::syntax::parse_with(pattern, &syntax()).is_ok()
    }

    /// Runs `search` with the shared cache. A panic while another thread held it leaves
    /// it possibly half-updated, so it is then made anew rather than trusted.
    fn with_cache<T>(&self, search: impl FnOnce(&mut Cache) -> T) -> T {
        let mut slot: MutexGuard<'_, Option<Box<Cache>>> =
            self.cache
                .lock()
                .unwrap_or_else(|poisoned: PoisonError<_>| {
                    let mut guard = poisoned.into_inner();
                    *guard = None;
                    self.cache.clear_poison();
                    guard
                });
        search(slot.get_or_insert_with(|| Box::new(self.re.create_cache())))
    }

    /// Does it match anywhere in `text`?
    pub fn is_match(&self, text: &[u8]) -> bool {
        self.with_cache(|cache| self.re.is_match_with(cache, &Input::new(text)))
    }

    /// How many non-overlapping matches `text` holds, at most `max`.
    pub fn count(&self, text: &[u8], max: usize) -> usize {
        self.with_cache(|cache| {
            let mut searcher = Searcher::new(Input::new(text));
            let mut n = 0;
            while n < max {
                // The meta engine's searches cannot fail; an error would end the count.
                match searcher.try_advance(|input| Ok(self.re.search_with(cache, input))) {
                    Ok(Some(_)) => n += 1,
                    _ => break,
                }
            }
            n
        })
    }

    /// The named groups of the first match, as (name, text) pairs.
    pub fn named_captures(&self, text: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut caps = self.re.create_captures();
        self.with_cache(|cache| {
            self.re
                .search_captures_with(cache, &Input::new(text), &mut caps)
        });
        if !caps.is_match() {
            return Vec::new();
        }
        self.re
            .group_info()
            .pattern_names(PatternID::ZERO)
            .flatten()
            .filter_map(|name| {
                let span = caps.get_group_by_name(name)?;
                Some((name.to_string(), text[span.range()].to_vec()))
            })
            .collect()
    }

    /// Heap bytes of the compiled regex, and of its search cache (0 before its first
    /// search).
    pub fn memory_usage(&self) -> (usize, usize) {
        let cache = self
            .cache
            .lock()
            .map(|c| c.as_ref().map_or(0, |c| c.memory_usage()))
            .unwrap_or(0);
        (self.re.memory_usage(), cache)
    }

    /// The pattern as compiled.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// Patterns match bytes, not only UTF-8, as `regex::bytes::Regex` reads them.
fn syntax() -> regex_automata::util::syntax::Config {
    regex_automata::util::syntax::Config::new().utf8(false)
}

/// The reason a pattern did not compile, in full (the build error's own text only names
/// the pattern's index).
fn explain(e: &meta::BuildError) -> String {
    if let Some(syntax) = e.syntax_error() {
        syntax.to_string()
    } else if let Some(limit) = e.size_limit() {
        format!("compiled regex exceeds the size limit of {limit} bytes")
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_bytes_as_the_regex_crate_does() {
        let re = Linear::build(r"(?-u)(?i)v(i|1)agra\xff", None).unwrap();
        assert!(re.is_match(b"buy V1AGRA\xff now"));
        assert!(!re.is_match(b"viagra"));
        assert_eq!(re.as_str(), r"(?-u)(?i)v(i|1)agra\xff");
    }

    #[test]
    fn counts_matches_up_to_a_limit() {
        let re = Linear::build(r"(?-u)(a|b)c", None).unwrap();
        assert_eq!(re.count(b"ac bc ac xc", 10), 3);
        assert_eq!(re.count(b"ac bc ac xc", 2), 2);
        assert!(re.named_captures(b"ac").is_empty());
    }

    #[test]
    fn reads_named_groups_back() {
        let re = Linear::build(r"(?-u)from (?<HOST>[a-z.]+) by (x|y)", Some(1 << 20)).unwrap();
        assert_eq!(
            re.named_captures(b"received from mx.example.org by y"),
            vec![("HOST".to_string(), b"mx.example.org".to_vec())]
        );
        assert!(re.named_captures(b"nothing here").is_empty());
    }

    #[test]
    fn threads_share_one_cache_and_agree() {
        let re = Linear::build(r"(?-u)(?i)fr[e3]{2} (money|cash)\b", None).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let re = &re;
                s.spawn(move || {
                    for i in 0..2_000 {
                        let text = format!("{t} {i} get FREE cash now, fr33 money");
                        assert!(re.is_match(text.as_bytes()));
                        assert_eq!(re.count(text.as_bytes(), 10), 2);
                        assert!(!re.is_match(format!("{i} free moneyx").as_bytes()));
                    }
                });
            }
        });
    }

    #[test]
    fn a_poisoned_cache_is_reset_and_used_again() {
        let re = Linear::build(r"(?-u)abc", None).unwrap();
        let _ = std::thread::scope(|s| {
            s.spawn(|| re.with_cache(|_| panic!("a check panicked while holding the cache")))
                .join()
        });
        assert!(re.cache.is_poisoned());
        assert!(re.is_match(b"xxabcxx"));
        assert!(!re.cache.is_poisoned());
    }

    #[test]
    fn a_bad_pattern_says_why() {
        let err = Linear::build(r"(unclosed", None).unwrap_err();
        assert!(err.contains("unclosed"), "{err}");
        let err = Linear::build(r"\w{1000}\w{1000}", None).unwrap_err();
        assert!(err.contains("size limit"), "{err}");
    }
}
