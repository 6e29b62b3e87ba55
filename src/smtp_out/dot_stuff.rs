//! Dot-stuffing for DATA (RFC 5321 §4.5.2), streamed, and the right terminator.

/// Streams a message through dot-stuffing. A line counts as starting after any LF, so a bare-LF
/// line starting with a dot is stuffed too and can never end DATA at a lenient next hop.
#[derive(Debug)]
pub struct DotStuffer {
    at_line_start: bool,
    last_two: [u8; 2],
    seen: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        DotStuffer {
            at_line_start: true,
            last_two: [0, 0],
            seen: false,
        }
    }
}

impl DotStuffer {
    /// Appends `input`, stuffed, to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let Some(&last) = input.last() else {
            return;
        };
        out.reserve(input.len() + 8);
        if self.at_line_start && input[0] == b'.' {
            out.push(b'.');
        }
        let mut start = 0;
        for lf in memchr::memchr_iter(b'\n', input) {
            if input.get(lf + 1) == Some(&b'.') {
                out.extend_from_slice(&input[start..=lf]);
                out.push(b'.');
                start = lf + 1;
            }
        }
        out.extend_from_slice(&input[start..]);
        self.at_line_start = last == b'\n';
        self.last_two = match input {
            [.., a, b] => [*a, *b],
            _ => [self.last_two[1], last],
        };
        self.seen = true;
    }

    /// The end-of-data sequence: `.CRLF` after a CRLF (or an empty message), else `CRLF.CRLF`
    /// so the message's last line is not glued to the dot.
    pub fn terminator(&self) -> &'static [u8] {
        if !self.seen || self.last_two == *b"\r\n" {
            b".\r\n"
        } else {
            b"\r\n.\r\n"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuff(chunks: &[&[u8]]) -> Vec<u8> {
        let mut s = DotStuffer::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        out.extend_from_slice(s.terminator());
        out
    }

    #[test]
    fn stuffs_across_chunks() {
        assert_eq!(stuff(&[b".a\r\n", b".", b"b\r\n"]), b"..a\r\n..b\r\n.\r\n");
        assert_eq!(stuff(&[b"x\r\n.\r\ny\r\n"]), b"x\r\n..\r\ny\r\n.\r\n");
        assert_eq!(stuff(&[b"no newline"]), b"no newline\r\n.\r\n");
        assert_eq!(stuff(&[b"bare\n.lf"]), b"bare\n..lf\r\n.\r\n");
        assert_eq!(stuff(&[b"x\r", b"\n"]), b"x\r\n.\r\n");
        assert_eq!(stuff(&[]), b".\r\n");
    }
}
