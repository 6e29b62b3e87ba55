//! What an answer must be for a network rule to hit: SpamAssassin's subtests, in the two
//! dialects it has. DNSEval (`check_rbl`, `check_rbl_sub`) reads all digits as a bit mask,
//! a dotted quad as the exact answer and anything else as a regex; URIDNSBL and AskDNS read
//! a number, a range `n1-n2` or a masked value `n/m` (numbers decimal, hex or dotted quad).

use std::net::Ipv4Addr;

/// One compiled subtest.
#[derive(Debug, Clone)]
pub enum Sub {
    /// Any bit of the mask set in a 127/8 answer.
    Mask(u32),
    /// The answer's text is exactly this.
    Exact(String),
    /// The answer's text matches (unanchored, as Perl's `=~`).
    Regex(regex::Regex),
    /// A numeric answer within the range, ends included.
    Range(u32, u32),
    /// `(answer & mask) == (value & mask)`.
    Masked(u32, u32),
}

/// An A answer as a number.
fn numeric(answer: &str) -> Option<u32> {
    answer.parse::<Ipv4Addr>().ok().map(u32::from)
}

/// SpamAssassin's test for blocklist answers: inside 127/8.
pub fn in_loopback(answer: &str) -> bool {
    numeric(answer).is_some_and(|n| n >> 24 == 127)
}

impl Sub {
    /// A DNSEval subtest (`check_rbl`'s third argument, `check_rbl_sub`'s second).
    pub fn dnseval(s: &str) -> Result<Sub, String> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse()
                .map(Sub::Mask)
                .map_err(|_| format!("mask {s:?} too large"));
        }
        if s.parse::<Ipv4Addr>().is_ok() {
            return Ok(Sub::Exact(s.to_string()));
        }
        regex::Regex::new(s)
            .map(Sub::Regex)
            .map_err(|e| format!("subtest {s:?}: {e}"))
    }

    /// A URIDNSBL or AskDNS subtest: `m`, `n1-n2`, `n/m`, or (AskDNS) `/re/`, `"text"`.
    pub fn uribl(s: &str) -> Result<Sub, String> {
        let bad = || format!("subtest {s:?}: not a number, range or n/m");
        if let Some(re) = s.strip_prefix('/').and_then(|r| r.rsplit_once('/')) {
            let (body, flags) = re;
            let pat = if flags.contains('i') {
                format!("(?i){body}")
            } else {
                body.to_string()
            };
            return regex::Regex::new(&pat)
                .map(Sub::Regex)
                .map_err(|e| format!("subtest {s:?}: {e}"));
        }
        for q in ['"', '\''] {
            if let Some(t) = s.strip_prefix(q).and_then(|t| t.strip_suffix(q)) {
                return Ok(Sub::Exact(t.to_string()));
            }
        }
        if let Some((a, b)) = s.split_once('-') {
            return Ok(Sub::Range(
                number(a).ok_or_else(bad)?,
                number(b).ok_or_else(bad)?,
            ));
        }
        if let Some((a, b)) = s.split_once('/') {
            return Ok(Sub::Masked(
                number(a).ok_or_else(bad)?,
                number(b).ok_or_else(bad)?,
            ));
        }
        // A single dotted quad is an exact value; a plain number a mask.
        if s.parse::<Ipv4Addr>().is_ok() {
            let n = number(s).ok_or_else(bad)?;
            return Ok(Sub::Range(n, n));
        }
        number(s).map(Sub::Mask).ok_or_else(bad)
    }

    /// Does `answer` (an A record's address or a TXT record's text) pass?
    pub fn matches(&self, answer: &str) -> bool {
        match self {
            Sub::Mask(m) => in_loopback(answer) && numeric(answer).is_some_and(|n| n & m != 0),
            Sub::Exact(t) => answer == t,
            Sub::Regex(re) => re.is_match(answer),
            Sub::Range(lo, hi) => numeric(answer).is_some_and(|n| (*lo..=*hi).contains(&n)),
            Sub::Masked(v, m) => numeric(answer).is_some_and(|n| n & m == v & m),
        }
    }
}

/// Decimal, `0x` hex or a dotted quad.
fn number(s: &str) -> Option<u32> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u32::from_str_radix(h, 16).ok();
    }
    if s.contains('.') {
        return s.parse::<Ipv4Addr>().ok().map(u32::from);
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnseval_subtests() {
        let m = |sub: &str, a: &str| Sub::dnseval(sub).unwrap().matches(a);
        assert!(m("127.0.0.2", "127.0.0.2") && !m("127.0.0.2", "127.0.0.20"));
        assert!(m("4", "127.0.0.4") && m("4", "127.0.0.6") && !m("4", "127.0.0.2"));
        assert!(!m("4", "10.0.0.4"), "a mask needs a 127/8 answer");
        assert!(m(r"^127\.0\.0\.[4567]$", "127.0.0.5") && !m(r"^127\.0\.0\.[4567]$", "127.0.0.9"));
        assert!(m(
            "(?i:spamcop)",
            "Blocked - see https://www.SpamCop.net/bl.shtml"
        ));
        // No ranges in this dialect: the text is a regex that no address matches.
        assert!(!m("127.0.0.2-127.0.0.5", "127.0.0.3"));
    }

    #[test]
    fn uribl_subtests() {
        let m = |sub: &str, a: &str| Sub::uribl(sub).unwrap().matches(a);
        assert!(m("127.0.1.2", "127.0.1.2") && !m("127.0.1.2", "127.0.1.3"));
        assert!(m("8", "127.0.0.8") && m("8", "127.0.0.24") && !m("8", "127.0.0.2"));
        assert!(m("127.0.0.2-127.0.0.5", "127.0.0.4") && !m("127.0.0.2-127.0.0.5", "127.0.0.6"));
        assert!(m("127.0.0.2/255.0.0.2", "127.9.9.2") && !m("127.0.0.2/255.0.0.2", "127.9.9.1"));
        assert!(m("0x10", "127.0.0.16"));
        assert!(m("/^v=spf1/", "v=spf1 -all") && m("'x'", "x"));
        assert!(Sub::uribl("zz").is_err());
    }
}
