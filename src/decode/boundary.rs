//! A strict multipart split, run beside the parser: a delimiter counts only when it starts a
//! line (RFC 2046 §5.1.1). mail-parser 0.11 also matches a boundary in the middle of a line
//! (its issue #156), which an attacker can use to end a part early and hide the rest from the
//! checks; where the two views disagree, the message is flagged and both views are checked.

/// The parts of a multipart body as this scan sees them: byte ranges of each body part
/// (headers included), between delimiter lines. `None` when no delimiter line is found.
pub fn split(body: &[u8], boundary: &[u8]) -> Option<Vec<std::ops::Range<usize>>> {
    if boundary.is_empty() {
        return None;
    }
    let mut delim = Vec::with_capacity(boundary.len() + 2);
    delim.extend_from_slice(b"--");
    delim.extend_from_slice(boundary);
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    let mut line_start = 0;
    while line_start <= body.len() {
        let end = memchr::memchr(b'\n', &body[line_start..]).map_or(body.len(), |i| line_start + i);
        let line = &body[line_start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(delim.as_slice()) {
            let closing = rest.starts_with(b"--");
            let tail = if closing { &rest[2..] } else { rest };
            if tail.iter().all(|&b| b == b' ' || b == b'\t') {
                if let Some(s) = start {
                    // The CRLF before a delimiter belongs to the delimiter.
                    let mut e = line_start;
                    if e > s && body[e - 1] == b'\n' {
                        e -= 1;
                        if e > s && body[e - 1] == b'\r' {
                            e -= 1;
                        }
                    }
                    parts.push(s..e);
                }
                if closing {
                    return Some(parts);
                }
                start = Some((end + 1).min(body.len()));
            }
        }
        if end >= body.len() {
            break;
        }
        line_start = end + 1;
    }
    if let Some(s) = start {
        parts.push(s..body.len());
    }
    if parts.is_empty() && start.is_none() {
        None
    } else {
        Some(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_at_line_start() {
        let body =
            b"preamble\r\n--b\r\nA: 1\r\n\r\none x--b\r\n--b\r\n\r\ntwo\r\n--b--\r\nepilogue";
        let parts = split(body, b"b").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(&body[parts[0].clone()], b"A: 1\r\n\r\none x--b");
        assert_eq!(&body[parts[1].clone()], b"\r\ntwo");
        assert!(split(b"no delimiters here", b"b").is_none());
        // Unterminated: the last part runs to the end.
        let parts = split(b"--b\r\n\r\nlast", b"b").unwrap();
        assert_eq!(parts.len(), 1);
    }
}
