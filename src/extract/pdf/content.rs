//! Text from a content stream's text operators (`Tj`, `TJ`, `'`, `"`), with line breaks where
//! the text moves down a line, and the string syntax PDF shares with its dictionaries.

use super::FontMaps;
use super::cmap::CMap;
use std::borrow::Cow;

/// Operands kept before an operator, at most; junk without operators does not grow memory.
const MAX_OPERANDS: usize = 1000;
/// Arrays nested deeper than this are read as flat.
const MAX_DEPTH: usize = 32;

/// One operand, borrowed from the content where it can be: most are numbers the text
/// operators never read, and parsing or copying each one was most of the reading's cost.
#[derive(Debug)]
enum Operand<'d> {
    Str(Cow<'d, [u8]>),
    Num(&'d [u8]),
    Name(&'d [u8]),
    Array(Vec<Operand<'d>>),
}

impl Operand<'_> {
    fn number(&self) -> Option<f64> {
        match self {
            Operand::Num(n) => std::str::from_utf8(n).ok()?.parse().ok(),
            _ => None,
        }
    }
}

/// Whether a regular word is a number (PDF's numbers: digits, one point, a sign).
fn is_number(w: &[u8]) -> bool {
    let digits = w
        .strip_prefix(b"-")
        .or_else(|| w.strip_prefix(b"+"))
        .unwrap_or(w);
    !digits.is_empty()
        && digits.iter().all(|c| c.is_ascii_digit() || *c == b'.')
        && digits.iter().filter(|c| **c == b'.').count() <= 1
}

/// Whether decoded stream data looks like page content: it has a text object.
pub fn looks_like_content(d: &[u8]) -> bool {
    let token = |t: &[u8]| {
        memchr::memmem::find_iter(d, t).any(|at| {
            let before = at.checked_sub(1).map(|i| d[i]);
            let after = d.get(at + t.len()).copied();
            before.is_none_or(|c| c.is_ascii_whitespace())
                && after.is_none_or(|c| !c.is_ascii_alphanumeric())
        })
    };
    token(b"BT") && token(b"ET")
}

/// The text read so far from a document's content streams.
pub struct Text<'f> {
    out: String,
    max: usize,
    fonts: &'f FontMaps,
    font: Option<&'f CMap>,
    last_y: Option<f64>,
}

impl<'f> Text<'f> {
    pub fn new(max: usize, fonts: &'f FontMaps) -> Self {
        Text {
            out: String::new(),
            max,
            fonts,
            font: None,
            last_y: None,
        }
    }

    pub fn finish(self) -> String {
        self.out
    }

    /// Reads one content stream; false once the text is full.
    pub fn read(&mut self, d: &[u8]) -> bool {
        let mut operands: Vec<Operand<'_>> = Vec::new();
        let mut arrays: Vec<Vec<Operand<'_>>> = Vec::new();
        let mut i = 0;
        while i < d.len() {
            let c = d[i];
            let (operand, used) = match c {
                _ if c.is_ascii_whitespace() => (None, 1),
                b'%' => (
                    None,
                    d[i..]
                        .iter()
                        .position(|&b| b == b'\n' || b == b'\r')
                        .unwrap_or(d.len() - i),
                ),
                b'(' => {
                    let (s, n) = string_at(&d[i..]);
                    (Some(Operand::Str(s)), n)
                }
                b'<' if d.get(i + 1) == Some(&b'<') => (None, 2),
                b'>' => (None, 1),
                b'<' => {
                    let (s, n) = hex_string(&d[i..]);
                    (Some(Operand::Str(Cow::Owned(s))), n)
                }
                b'[' => {
                    if arrays.len() < MAX_DEPTH {
                        arrays.push(Vec::new());
                    }
                    (None, 1)
                }
                b']' => (arrays.pop().map(Operand::Array), 1),
                b'/' => {
                    let n = 1 + word_len(&d[i + 1..]);
                    (Some(Operand::Name(&d[i..i + n])), n)
                }
                b'{' | b'}' | b')' => (None, 1),
                _ => {
                    let n = word_len(&d[i..]).max(1);
                    let word = &d[i..i + n];
                    if is_number(word) {
                        (Some(Operand::Num(word)), n)
                    } else {
                        i += n;
                        if word == b"BI" {
                            i += skip_inline_image(&d[i..]);
                        } else if !self.operator(word, &operands) {
                            return false;
                        }
                        operands.clear();
                        arrays.clear();
                        continue;
                    }
                }
            };
            i += used;
            if let Some(o) = operand {
                match arrays.last_mut() {
                    Some(a) => a.push(o),
                    None => operands.push(o),
                }
                if operands.len() > MAX_OPERANDS {
                    operands.clear();
                }
            }
        }
        true
    }

    /// Acts on one operator; false once the text is full.
    fn operator(&mut self, op: &[u8], operands: &[Operand<'_>]) -> bool {
        let last_str = || {
            operands.iter().rev().find_map(|o| match o {
                Operand::Str(s) => Some(s.as_ref()),
                _ => None,
            })
        };
        match op {
            b"Tf" => {
                let name = operands.iter().find_map(|o| match o {
                    Operand::Name(n) => Some(n),
                    _ => None,
                });
                self.font = name.and_then(|n| self.fonts.get(*n));
                true
            }
            b"Tj" => last_str().is_none_or(|s| self.emit(s)),
            b"'" | b"\"" => self.line() && last_str().is_none_or(|s| self.emit(s)),
            b"TJ" => match operands.last() {
                Some(Operand::Array(items)) => items.iter().all(|o| match o {
                    Operand::Str(s) => self.emit(s),
                    n @ Operand::Num(_) if n.number().is_some_and(|v| v < -200.0) => self.space(),
                    _ => true,
                }),
                _ => true,
            },
            b"Td" | b"TD" => match operands.get(1).and_then(Operand::number) {
                Some(y) if y != 0.0 => self.line(),
                _ => self.space(),
            },
            b"Tm" => match operands.get(5).and_then(Operand::number) {
                Some(y) if self.last_y.is_some_and(|l| l != y) => {
                    self.last_y = Some(y);
                    self.line()
                }
                Some(y) => {
                    self.last_y = Some(y);
                    self.space()
                }
                None => true,
            },
            b"T*" | b"ET" => self.line(),
            _ => true,
        }
    }

    fn push(&mut self, s: &str) -> bool {
        crate::extract::push_capped(&mut self.out, s, self.max)
    }

    fn line(&mut self) -> bool {
        if self.out.is_empty() || self.out.ends_with('\n') {
            return true;
        }
        while self.out.ends_with(' ') {
            self.out.pop();
        }
        self.push("\n")
    }

    fn space(&mut self) -> bool {
        if self.out.is_empty() || self.out.ends_with(|c: char| c.is_whitespace()) {
            return true;
        }
        self.push(" ")
    }

    fn emit(&mut self, s: &[u8]) -> bool {
        let text = match self.font {
            Some(map) => map.decode(s),
            None => byte_text(s),
        };
        self.push(&text)
    }
}

/// A string shown in a font without a character map: its bytes as Latin-1 (the standard
/// encodings agree with it on letters and digits), control characters dropped.
fn byte_text(s: &[u8]) -> String {
    s.iter()
        .filter(|&&b| b >= 0x20 || b == b'\t')
        .map(|&b| char::from(b))
        .collect()
}

/// Length of a run of regular characters (not white space, not a delimiter).
fn word_len(d: &[u8]) -> usize {
    d.iter()
        .position(|c| c.is_ascii_whitespace() || b"()<>[]{}/%".contains(c))
        .unwrap_or(d.len())
}

/// Bytes of inline image data after `BI` up to and past its `EI`.
fn skip_inline_image(d: &[u8]) -> usize {
    let mut from = 0;
    while let Some(at) = memchr::memmem::find(&d[from..], b"EI").map(|p| p + from) {
        let before = at.checked_sub(1).map(|i| d[i]);
        let after = d.get(at + 2).copied();
        if before.is_some_and(|c| c.is_ascii_whitespace())
            && after.is_none_or(|c| c.is_ascii_whitespace())
        {
            return at + 2;
        }
        from = at + 2;
    }
    d.len()
}

/// A literal string at the start of `d`, borrowed when it has no escape and no nested
/// parenthesis (most do not), and the bytes it took.
fn string_at(d: &[u8]) -> (Cow<'_, [u8]>, usize) {
    let end = d[1..]
        .iter()
        .position(|&c| matches!(c, b')' | b'(' | b'\\'));
    match end {
        Some(e) if d[1 + e] == b')' => (Cow::Borrowed(&d[1..1 + e]), e + 2),
        _ => {
            let (s, n) = literal_string(d);
            (Cow::Owned(s), n)
        }
    }
}

/// A literal string `( ... )` at the start of `d`: its bytes, escapes undone, and the bytes
/// it took (to the end of `d` when unclosed).
pub fn literal_string(d: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut i = 1;
    while i < d.len() {
        let c = d[i];
        i += 1;
        match c {
            b'(' => {
                depth += 1;
                out.push(c);
            }
            b')' if depth == 0 => return (out, i),
            b')' => {
                depth -= 1;
                out.push(c);
            }
            b'\\' => {
                let Some(&e) = d.get(i) else { break };
                i += 1;
                match e {
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'0'..=b'7' => {
                        let mut v = u32::from(e - b'0');
                        for _ in 0..2 {
                            match d.get(i) {
                                Some(&o @ b'0'..=b'7') => {
                                    v = v * 8 + u32::from(o - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        out.push((v & 0xff) as u8);
                    }
                    b'\r' => {
                        if d.get(i) == Some(&b'\n') {
                            i += 1;
                        }
                    }
                    b'\n' => {}
                    other => out.push(other),
                }
            }
            _ => out.push(c),
        }
    }
    (out, d.len())
}

/// A hex string `<4865>` at the start of `d`: its bytes and the bytes it took.
pub fn hex_string(d: &[u8]) -> (Vec<u8>, usize) {
    let end = d.iter().position(|&c| c == b'>').map_or(d.len(), |p| p + 1);
    let digits: Vec<u8> = d[1..end]
        .iter()
        .filter_map(|&c| (c as char).to_digit(16).map(|v| v as u8))
        .collect();
    let bytes = digits
        .chunks(2)
        .map(|p| (p[0] << 4) | p.get(1).copied().unwrap_or(0))
        .collect();
    (bytes, end)
}

/// A text string outside content (a link, a title): UTF-16BE after its byte order mark,
/// else Latin-1.
pub fn pdf_text_string(b: &[u8]) -> String {
    match b.strip_prefix(&[0xfe, 0xff]) {
        Some(utf16) => {
            let units: Vec<u16> = utf16
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        None => b.iter().map(|&c| char::from(c)).collect(),
    }
    .trim()
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        assert_eq!(
            literal_string(b"(a\\(b\\) (c) \\101\\n)x"),
            (b"a(b) (c) A\n".to_vec(), 19)
        );
        assert_eq!(hex_string(b"<48 65 6c6c 6f7>"), (b"Hello\x70".to_vec(), 16));
        assert_eq!(pdf_text_string(&[0xfe, 0xff, 0, b'h', 0, b'i']), "hi");
    }

    #[test]
    fn inline_images_and_junk() {
        let fonts = FontMaps::new();
        let mut t = Text::new(100, &fonts);
        assert!(t.read(b"BT (a) Tj ET BI /W 1 ID \x00\x01(EI) EI BT (b) Tj ET ] ] >> 1 2 3 Tj"));
        assert_eq!(t.finish(), "a\nb\n");
    }
}
