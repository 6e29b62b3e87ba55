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
        if input.is_empty() {
            return;
        }
        let mut start = 0;
        for (i, &b) in input.iter().enumerate() {
            if self.at_line_start && b == b'.' {
                out.extend_from_slice(&input[start..i]);
                out.push(b'.');
                start = i;
            }
            self.at_line_start = b == b'\n';
        }
        out.extend_from_slice(&input[start..]);
        self.seen = true;
        match input {
            [.., a, b] => self.last_two = [*a, *b],
            [b] => self.last_two = [self.last_two[1], *b],
            [] => {}
        }
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
