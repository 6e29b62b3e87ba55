//! A rule's pattern as Hyperscan reads it for the one-pass stage, and which patterns are
//! worth offering it (compile time grows with some shapes far faster than with length).

use crate::spam::rules::pattern::split_literal;

/// Longest pattern offered to Hyperscan. The ReplaceTags-expanded "fuzzy word" rules of
/// several KiB compile in a fraction of a second each and, once in the one-pass stage, no
/// longer run on every message (a third of a millisecond a message for the shipped rules).
const MAX_ONE_PASS_SOURCE: usize = 16 << 10;

/// Longer than this, a pattern is offered only when its nested bounded repeats stay under
/// [`MAX_ONE_PASS_REPEAT`] together: the expanded "fill this form" rules (`(?:...
/// [-_.]{1,100}...){3}`) each took Hyperscan 0.5 to 13 s only to fail as too large.
pub(super) const LONG_ONE_PASS_SOURCE: usize = 1000;

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

/// The largest product of the upper bounds of `{n,m}` repeats nested in one another in
/// `pat` (`(?:a{1,10}){3}` gives 30; 1 without any): how many copies of its innermost part
/// a compiler that unrolls repeats makes. `*` and `+` count 1: they are not unrolled.
fn nested_repeat(pat: &str) -> u64 {
    let b = pat.as_bytes();
    // The largest weight inside each open group; the weight of the last atom, which a
    // following `{n,m}` multiplies.
    let mut open: Vec<u64> = vec![1];
    let mut last = 1u64;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                last = 1;
                i += 2;
                continue;
            }
            b'[' => {
                i = class_end(b, i);
                last = 1;
                continue;
            }
            b'(' => open.push(1),
            b')' if open.len() > 1 => {
                last = open.pop().unwrap_or(1);
                if let Some(top) = open.last_mut() {
                    *top = (*top).max(last);
                }
            }
            b'{' => {
                let digits = b[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit() || **c == b',')
                    .count();
                if b.get(i + 1 + digits) == Some(&b'}') {
                    let upper = std::str::from_utf8(&b[i + 1..i + 1 + digits])
                        .ok()
                        .and_then(|n| n.rsplit(',').find(|x| !x.is_empty()))
                        .and_then(|n| n.parse::<u64>().ok())
                        .unwrap_or(1);
                    last = last.saturating_mul(upper.max(1));
                    if let Some(top) = open.last_mut() {
                        *top = (*top).max(last);
                    }
                    i += digits + 2;
                    continue;
                }
                last = 1;
            }
            b'?' | b'*' | b'+' => {}
            _ => last = 1,
        }
        i += 1;
    }
    open.into_iter().max().unwrap_or(1)
}

/// The index just past the character class that starts at `start` (`[`): a `]` right after
/// `[` or `[^` is a member, and escapes are skipped.
fn class_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    if b.get(i) == Some(&b'^') {
        i += 1;
    }
    if b.get(i) == Some(&b']') {
        i += 1;
    }
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b']' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
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
    if pat.len() > MAX_ONE_PASS_SOURCE
        || max_bounded_repeat(&pat) > MAX_ONE_PASS_REPEAT
        || (pat.len() > LONG_ONE_PASS_SOURCE && nested_repeat(&pat) > MAX_ONE_PASS_REPEAT as u64)
    {
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

    #[test]
    fn nested_repeats_multiply() {
        assert_eq!(nested_repeat("abc"), 1);
        assert_eq!(nested_repeat("a{2,7}b{30}"), 30);
        assert_eq!(nested_repeat("(?:a{1,10}){3}"), 30);
        assert_eq!(nested_repeat("(?:x(?:[-_.]{1,100}|y)z){5}"), 500);
        // Braces in a class or escaped are not repeats; a class's ] right after [ is a member.
        assert_eq!(nested_repeat(r"(?:[]{9}]\{9})*"), 1);
        // * and + are not unrolled.
        assert_eq!(nested_repeat("(?:a{4})+"), 4);
        assert_eq!(max_bounded_repeat("(?:,[^,]{1,90}){50}"), 90);
    }

    #[test]
    fn long_patterns_with_large_nested_repeats_are_not_offered() {
        let long_alt = (0..200)
            .map(|i| format!("word{i}"))
            .collect::<Vec<_>>()
            .join("|");
        let fine = format!("/\\b(?:{long_alt})\\b/i");
        assert!(fine.len() > LONG_ONE_PASS_SOURCE);
        assert!(hyperscan_source(&fine).is_some());
        let form = format!("/(?:(?:{long_alt})[-_.:]{{1,100}}){{3}}/i");
        assert!(hyperscan_source(&form).is_none());
        // Short, the same shape is still offered (Hyperscan compiles it quickly).
        assert!(hyperscan_source("/(?:,[^,]{1,90}){50}/").is_some());
    }
}
