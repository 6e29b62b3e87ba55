//! A rule's pattern as Hyperscan reads it for the one-pass stage, and which patterns are
//! worth offering it (compile time grows with some shapes far faster than with length).

use crate::spam::rules::pattern::split_literal;

/// Longest pattern offered to Hyperscan. The ReplaceTags-expanded "fuzzy word" rules of
/// several KiB are not: offered (those whose nested repeats stay small), they saved 0.45 ms
/// a message on one core (they would no longer run on every message), but their database
/// took 20 MiB more, and 64 sessions of 10 MB messages went over 200 MiB (2026-12-07).
const MAX_ONE_PASS_SOURCE: usize = 1000;

/// Largest `{n,m}` bound offered to Hyperscan: its compile time grows with the bound
/// (one shipped rule with `{0,2048}` took 20 s alone).
const MAX_ONE_PASS_REPEAT: u32 = 255;

/// The largest number in a `{n}`, `{n,}` or `{n,m}` of `pat` (0 without any).
fn max_bounded_repeat(pat: &str) -> u32 {
    let b = pat.as_bytes();
    let mut max = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'{' && (i == 0 || b[i - 1] != b'\\') {
            let body: Vec<u8> = b[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit() || **c == b',')
                .copied()
                .collect();
            if b.get(i + 1 + body.len()) == Some(&b'}') {
                for n in body.split(|c| *c == b',') {
                    let n = std::str::from_utf8(n)
                        .ok()
                        .and_then(|n| n.parse::<u32>().ok())
                        .unwrap_or(0);
                    max = max.max(n);
                }
            }
        }
        i += 1;
    }
    max
}

/// The literal as Hyperscan reads it for the one-pass prefilter, with its flags: run over
/// the rule's texts joined with line breaks, its matches must include the rule's. So its anchors become line anchors (`\A` `^`, `\z` `\Z` `$` with
/// multi-line mode) and a pattern that turns multi-line mode off inside is not offered
/// (`None`: the rule keeps the literal prefilter). So is a pattern Hyperscan would take
/// seconds to compile (see [`MAX_ONE_PASS_SOURCE`]). Perl-only syntax is left as it is:
/// the caller loosens it with [`relax`] when Hyperscan refuses it (Hyperscan's own
/// prefilter mode made the whole set compile ten times slower).
pub(super) fn hyperscan_source(lit: &str) -> Option<(String, u32)> {
    use crate::spam::rules::hyperscan as hs;
    let (pat, flags) = split_literal(lit).ok()?;
    if pat.len() > MAX_ONE_PASS_SOURCE || max_bounded_repeat(&pat) > MAX_ONE_PASS_REPEAT {
        return None;
    }
    let mut hs_flags = hs::SINGLEMATCH | hs::ALLOWEMPTY | hs::MULTILINE;
    for f in flags.chars() {
        match f {
            'i' => hs_flags |= hs::CASELESS,
            's' => hs_flags |= hs::DOTALL,
            'm' | 'g' | 'o' | 'p' => {}
            _ => return None,
        }
    }
    let c: Vec<char> = pat.chars().collect();
    let mut out = String::with_capacity(pat.len() + 8);
    if flags.contains('x') {
        out.push_str("(?x)");
    }
    let mut in_class = false;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\\' && i + 1 < c.len() {
            match c[i + 1] {
                'A' if !in_class => out.push('^'),
                'z' | 'Z' if !in_class => out.push('$'),
                n => {
                    out.push('\\');
                    out.push(n);
                }
            }
            i += 2;
            continue;
        }
        if in_class {
            in_class = ch != ']';
        } else if ch == '[' {
            in_class = true;
            out.push('[');
            i += 1;
            // A ] right after [ or [^ is a literal, not the end of the class.
            for lead in ['^', ']'] {
                if c.get(i) == Some(&lead) {
                    out.push(lead);
                    i += 1;
                }
            }
            continue;
        } else if ch == '(' && c.get(i + 1) == Some(&'?') {
            // (?-m) or (?s-m:...) would make $ and ^ whole-text anchors again.
            let group: String = c[i + 2..]
                .iter()
                .take_while(|x| x.is_ascii_alphabetic() || **x == '-')
                .collect();
            if group
                .split_once('-')
                .is_some_and(|(_, off)| off.contains('m'))
            {
                return None;
            }
        }
        out.push(ch);
        i += 1;
    }
    Some((out, hs_flags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spam::rules::hyperscan as hs;

    #[test]
    fn long_or_widely_repeated_patterns_are_not_offered() {
        assert_eq!(max_bounded_repeat("(?:,[^,]{1,90}){50}"), 90);
        assert!(hyperscan_source("/(?:,[^,]{1,90}){50}/").is_some());
        assert!(hyperscan_source("/a.{0,2048}b/").is_none());
        let long_alt = (0..200)
            .map(|i| format!("word{i}"))
            .collect::<Vec<_>>()
            .join("|");
        assert!(hyperscan_source(&format!("/\\b(?:{long_alt})\\b/i")).is_none());
        assert_eq!(
            hyperscan_source(r"/\Afoo$/i"),
            Some((
                "^foo$".to_string(),
                hs::SINGLEMATCH | hs::ALLOWEMPTY | hs::MULTILINE | hs::CASELESS
            ))
        );
    }
}
