//! The DATA stream, sans I/O: dot-unstuffing and the end-of-data line (RFC 5321 §4.5.2).
//!
//! Our own, not smtp-proto's `DataReceiver`: that one starts as if it were in the middle of a
//! line, so an empty message (`.` right after the 354) was not seen as the end (the client
//! waited for the DATA timeout and got 421), and a first line starting with `..` kept both
//! dots (the forwarded copy differed from what the client sent). Its state is private, so it
//! cannot be started at the beginning of a line from outside. These rules are short, and here
//! they are whole:
//!
//! - the data starts at the beginning of a line;
//! - a line begins after CR LF only: a bare LF is data, never a line end, so a bare-LF "end"
//!   (`\n.\n`, `\r\n.\n`, `\n.\r\n`) cannot smuggle a second message past us;
//! - at the beginning of a line, one `.` is removed; a line that is exactly `.` ends the data;
//! - everything else is passed on unchanged, CR LF included.

/// Where in the line the receiver is, between calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the beginning of a line (the data's first byte, or right after CR LF).
    LineStart,
    /// In a line; `cr` when the last byte passed on was CR.
    InLine { cr: bool },
    /// A line-initial dot was removed; the next byte decides.
    Dot,
    /// A line-initial dot and a CR were read: an LF now ends the data.
    DotCr,
}

/// Unstuffs one message's DATA, fed in pieces as they arrive.
#[derive(Debug)]
pub struct DataReceiver {
    state: State,
}

impl Default for DataReceiver {
    fn default() -> Self {
        DataReceiver {
            state: State::LineStart,
        }
    }
}

impl DataReceiver {
    /// A receiver at the beginning of the data.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the unstuffed bytes of `input` to `out`. Returns how many bytes of `input` were
    /// used, and whether the end-of-data line was among them: bytes after it (pipelined
    /// commands) are not used and stay with the caller.
    pub fn ingest(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, bool) {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::LineStart if b == b'.' => {
                    self.state = State::Dot;
                    i += 1;
                }
                State::LineStart => self.state = State::InLine { cr: false },
                State::Dot if b == b'\r' => {
                    self.state = State::DotCr;
                    i += 1;
                }
                State::Dot => self.state = State::InLine { cr: false },
                State::DotCr if b == b'\n' => return (i + 1, true),
                State::DotCr => {
                    // ".\r" then something else: the CR was data after all.
                    out.push(b'\r');
                    self.state = State::InLine { cr: true };
                }
                State::InLine { cr } => i = self.line(input, i, cr, out),
            }
        }
        (i, false)
    }

    /// Passes bytes on from `start` up to and including the next LF that a dot follows (only
    /// there can anything but data be), or to the end of `input`; returns where it stopped.
    /// Searching for LF-dot rather than stopping at every line keeps this near memmem speed.
    fn line(&mut self, input: &[u8], start: usize, cr_before: bool, out: &mut Vec<u8>) -> usize {
        let rest = &input[start..];
        // Whether the LF at `i` ends a line (CR LF), from the byte before it.
        let crlf_at = |i: usize| {
            if i == 0 {
                cr_before
            } else {
                rest[i - 1] == b'\r'
            }
        };
        match memchr::memmem::find(rest, b"\n.") {
            Some(lf) => {
                out.extend_from_slice(&rest[..=lf]);
                self.state = if crlf_at(lf) {
                    State::LineStart
                } else {
                    State::InLine { cr: false }
                };
                start + lf + 1
            }
            None => {
                out.extend_from_slice(rest);
                self.state = match rest.last() {
                    Some(b'\n') if crlf_at(rest.len() - 1) => State::LineStart,
                    last => State::InLine {
                        cr: last == Some(&b'\r') || (last.is_none() && cr_before),
                    },
                };
                input.len()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` one after another; returns the message, whether it ended, and the bytes
    /// left over after the end.
    fn feed(chunks: &[&[u8]]) -> (Vec<u8>, bool, Vec<u8>) {
        let mut r = DataReceiver::new();
        let mut out = Vec::new();
        for (n, c) in chunks.iter().enumerate() {
            let (used, done) = r.ingest(c, &mut out);
            if done {
                let mut rest = c[used..].to_vec();
                for later in &chunks[n + 1..] {
                    rest.extend_from_slice(later);
                }
                return (out, true, rest);
            }
            assert_eq!(used, c.len());
        }
        (out, false, Vec::new())
    }

    /// Every split of `wire` into two pieces gives the same result as one piece.
    fn same_in_every_split(wire: &[u8]) -> (Vec<u8>, bool, Vec<u8>) {
        let whole = feed(&[wire]);
        for cut in 0..=wire.len() {
            assert_eq!(feed(&[&wire[..cut], &wire[cut..]]), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        assert_eq!(feed(&bytes), whole, "byte by byte");
        whole
    }

    #[test]
    fn the_first_line_is_a_line() {
        let cases: [(&[u8], &[u8]); 6] = [
            (b".\r\n", b""),
            (b"..\r\n.\r\n", b".\r\n"),
            (b"...x\r\n.\r\n", b"..x\r\n"),
            (b".x\r\n.\r\n", b"x\r\n"),
            (b"\r\n.\r\n", b"\r\n"),
            (b"a\r\n..\r\n...\r\n.\r\n", b"a\r\n.\r\n..\r\n"),
        ];
        for (wire, message) in cases {
            let (out, done, rest) = same_in_every_split(wire);
            assert!(done, "{wire:?}");
            assert_eq!(out, message, "{wire:?}");
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn pipelined_commands_after_the_end_stay() {
        let (out, done, rest) = same_in_every_split(b".\r\nQUIT\r\n");
        assert!(done);
        assert!(out.is_empty());
        assert_eq!(rest, b"QUIT\r\n");
        let (out, done, rest) = same_in_every_split(b"x\r\n.\r\nRSET\r\n.\r\n");
        assert!(done);
        assert_eq!(out, b"x\r\n");
        assert_eq!(rest, b"RSET\r\n.\r\n");
    }

    #[test]
    fn only_crlf_dot_crlf_ends() {
        // Bare LF is data: none of these ends the message, and no dot is removed after it.
        for wire in [
            b"a\n.\nb".as_slice(),
            b"a\r\n.\nb",
            b"a\n.\r\nb",
            b".\nb",
            b"a\r\n.\rb",
        ] {
            let (out, done, _) = same_in_every_split(wire);
            assert!(!done, "{wire:?}");
            let expect: Vec<u8> = match wire {
                b"a\r\n.\nb" => b"a\r\n\nb".to_vec(),
                b".\nb" => b"\nb".to_vec(),
                b"a\r\n.\rb" => b"a\r\n\rb".to_vec(),
                other => other.to_vec(),
            };
            assert_eq!(out, expect, "{wire:?}");
        }
    }

    #[test]
    fn long_lines_and_cr_across_pieces() {
        let mut wire = vec![b'x'; 10_000];
        wire.extend_from_slice(b"\r\n..y\r\n.\r\n");
        let (out, done, _) = feed(&[&wire[..5000], &wire[5000..10_001], &wire[10_001..]]);
        assert!(done);
        assert_eq!(&out[10_000..], b"\r\n.y\r\n");
    }
}
