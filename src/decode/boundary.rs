//! A strict multipart split, run beside the parser: a delimiter counts only when it starts a
//! line (RFC 2046 §5.1.1). mail-parser 0.11 also matches a boundary in the middle of a line
//! (its issue #156), which an attacker can use to end a part early and hide the rest from the
//! checks; where the two views disagree, the message is flagged and both views are checked.
//!
//! Also the boundary a multipart should have had: when the `boundary=` parameter is missing
//! or names a string that never starts a line, the delimiter lines a mail client would still
//! recognise are found from the body itself ([`infer`]).

use std::ops::Range;

/// A multipart body cut at its delimiter lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Each body part (its headers included), between delimiter lines.
    pub parts: Vec<Range<usize>>,
    /// Before the first delimiter line.
    pub preamble: Range<usize>,
    /// After the closing delimiter line; `None` when there is none (unterminated).
    pub epilogue: Option<Range<usize>>,
}

/// The lines of `body`: (start of the line, end before its LF, end after its LF).
fn lines(body: &[u8]) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= body.len() {
            return None;
        }
        let start = at;
        let (end, next) = match memchr::memchr(b'\n', &body[at..]) {
            Some(i) => (at + i, at + i + 1),
            None => (body.len(), body.len()),
        };
        at = next;
        Some((start, end, next))
    })
}

/// The line without its CR.
fn text(body: &[u8], start: usize, end: usize) -> &[u8] {
    let line = &body[start..end];
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Whether `line` is a delimiter of `boundary`: `Some(true)` for the closing one.
fn delimiter(line: &[u8], boundary: &[u8]) -> Option<bool> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    let (closing, tail) = match rest.strip_prefix(b"--") {
        Some(t) => (true, t),
        None => (false, rest),
    };
    tail.iter()
        .all(|&b| b == b' ' || b == b'\t')
        .then_some(closing)
}

/// The parts of a multipart body as this scan sees them. `None` when no delimiter line is
/// found.
pub fn split(body: &[u8], boundary: &[u8]) -> Option<Split> {
    if boundary.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    let mut first: Option<usize> = None;
    for (line_start, end, next) in lines(body) {
        let Some(closing) = delimiter(text(body, line_start, end), boundary) else {
            continue;
        };
        first.get_or_insert(line_start);
        if let Some(s) = start {
            parts.push(s..before_crlf(body, s, line_start));
        }
        if closing {
            return Some(Split {
                parts,
                preamble: 0..first.unwrap_or(line_start),
                epilogue: Some(next..body.len()),
            });
        }
        start = Some(next);
    }
    let s = start?;
    parts.push(s..body.len());
    Some(Split {
        parts,
        preamble: 0..first.unwrap_or(0),
        epilogue: None,
    })
}

/// `body` up to the first delimiter line of `boundary` in it, if any. mail-parser lets an
/// attached message that is all header run on over the delimiter that ends it (it reads the
/// delimiter as one more header line), so a part's end is checked here.
pub fn cut_at_delimiter<'a>(body: &'a [u8], boundary: &[u8]) -> &'a [u8] {
    if boundary.is_empty() {
        return body;
    }
    // Only where `--boundary` occurs can a delimiter line start: found with memmem, not by
    // walking every line of a large base64 body.
    let mut dashed = Vec::with_capacity(boundary.len() + 2);
    dashed.extend_from_slice(b"--");
    dashed.extend_from_slice(boundary);
    for at in memchr::memmem::find_iter(body, &dashed) {
        if at > 0 && body[at - 1] != b'\n' {
            continue;
        }
        let end = memchr::memchr(b'\n', &body[at..]).map_or(body.len(), |i| at + i);
        if delimiter(text(body, at, end), boundary).is_some() {
            return &body[..before_crlf(body, 0, at)];
        }
    }
    body
}

/// `end`, less the CR LF that ends the line before it: it belongs to the delimiter.
fn before_crlf(body: &[u8], start: usize, end: usize) -> usize {
    let mut e = end;
    if e > start && body[e - 1] == b'\n' {
        e -= 1;
        if e > start && body[e - 1] == b'\r' {
            e -= 1;
        }
    }
    e
}

/// RFC 2046 `bchars`: what a boundary may be made of.
fn is_bchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b)
}

/// True when `line` starts a header field (`Name: value`).
pub fn is_field(line: &[u8]) -> bool {
    match memchr::memchr(b':', line) {
        Some(colon) => {
            colon > 0
                && line[..colon]
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
        }
        None => false,
    }
}

/// The boundary a mail client would find in `body` when the declared one is missing or never
/// delimits anything: a line `--X` (X made of boundary characters, at most 70) that occurs at
/// least twice, or whose closing form `--X--` occurs, with at least one occurrence followed by
/// a header field or an empty line, as a body part's header section is. The candidate seen
/// most often wins; the first seen breaks a tie.
pub fn infer(body: &[u8]) -> Option<Vec<u8>> {
    // (candidate, times seen, closing form seen, followed by a header section), and where
    // each candidate is in that list: a body of many different `--x` lines stays linear.
    let mut seen: Vec<(&[u8], usize, bool, bool)> = Vec::new();
    let mut index: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
    let mut last: Option<usize> = None;
    for (start, end, _) in lines(body) {
        let line = text(body, start, end);
        if let Some(i) = last.take()
            && (line.is_empty() || is_field(line))
        {
            seen[i].3 = true;
        }
        let Some(rest) = line.strip_prefix(b"--") else {
            continue;
        };
        let rest = rest.strip_suffix(b" ").unwrap_or(rest);
        let (cand, closing) = match rest.strip_suffix(b"--") {
            Some(c) if !c.is_empty() => (c, true),
            _ => (rest, false),
        };
        if cand.is_empty() || cand.len() > 70 || !cand.iter().all(|&b| is_bchar(b)) {
            continue;
        }
        // A line of dashes is a rule drawn in text, not a delimiter.
        if cand.iter().all(|&b| b == b'-') {
            continue;
        }
        let i = *index.entry(cand).or_insert_with(|| {
            seen.push((cand, 0, false, false));
            seen.len() - 1
        });
        seen[i].1 += 1;
        seen[i].2 |= closing;
        if !closing {
            last = Some(i);
        }
    }
    seen.iter()
        .enumerate()
        .filter(|(_, (_, n, closing, headed))| *headed && (*n >= 2 || *closing))
        .max_by_key(|(i, (_, n, ..))| (*n, std::cmp::Reverse(*i)))
        .map(|(_, (c, ..))| c.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_at_line_start() {
        let body =
            b"preamble\r\n--b\r\nA: 1\r\n\r\none x--b\r\n--b\r\n\r\ntwo\r\n--b--\r\nepilogue";
        let s = split(body, b"b").unwrap();
        assert_eq!(s.parts.len(), 2);
        assert_eq!(&body[s.parts[0].clone()], b"A: 1\r\n\r\none x--b");
        assert_eq!(&body[s.parts[1].clone()], b"\r\ntwo");
        assert_eq!(&body[s.preamble.clone()], b"preamble\r\n");
        assert_eq!(&body[s.epilogue.clone().unwrap()], b"epilogue");
        assert!(split(b"no delimiters here", b"b").is_none());
        // Unterminated: the last part runs to the end, and there is no epilogue.
        let s = split(b"--b\r\n\r\nlast", b"b").unwrap();
        assert_eq!(s.parts.len(), 1);
        assert_eq!(s.epilogue, None);
    }

    #[test]
    fn a_part_ends_at_the_delimiter() {
        assert_eq!(
            cut_at_delimiter(b"A: b\r\nC: d\r\n--xy--\r\n", b"xy"),
            b"A: b\r\nC: d"
        );
        assert_eq!(
            cut_at_delimiter(b"A: b\r\n x--xy\r\n", b"xy"),
            b"A: b\r\n x--xy\r\n"
        );
    }

    #[test]
    fn the_boundary_a_client_would_find() {
        let body = b"text\r\n--abc123\r\nContent-Type: text/plain\r\n\r\nx\r\n--abc123\r\n\r\ny\r\n--abc123--\r\n";
        assert_eq!(infer(body).as_deref(), Some(&b"abc123"[..]));
        // Once, but closed.
        let body = b"--Z\r\nContent-Type: application/octet-stream\r\n\r\nQUJD\r\n--Z--\r\n";
        assert_eq!(infer(body).as_deref(), Some(&b"Z"[..]));
        // A signature separator, rules of dashes, and a once-seen line are not delimiters.
        assert_eq!(
            infer(b"hi\r\n-- \r\nme\r\n----------\r\n\r\n----------\r\n\r\n--x\r\nA: b\r\n"),
            None
        );
        // Never followed by a header section: prose.
        assert_eq!(
            infer(b"--note\r\nsome text\r\n--note\r\nmore text\r\n"),
            None
        );
    }
}
