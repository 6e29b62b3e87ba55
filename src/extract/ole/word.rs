//! The text of a Word 97-2003 document (MS-DOC): the characters of its piece table, with
//! the links of its HYPERLINK fields.
//!
//! Word keeps the text in the `WordDocument` stream in pieces, each either one byte a
//! character (Windows-1252) or UTF-16; the piece table (the `Clx` in the `0Table` or
//! `1Table` stream, found through the FIB) says where each piece is. Written here rather than
//! taken from a crate: the Rust crates that read `.doc` convert whole documents (styles,
//! tables, pictures) and trust the offsets they read; this reads the pieces alone and checks
//! every offset against the stream it points into.

use crate::extract::{Limits, field_links, push_capped};
use std::io::{Read, Seek};
use std::path::Path;

/// The FIB's identifier of a Word document.
const WORD_IDENT: u16 = 0xa5ec;

/// Pieces read at most: a real document has a few hundred, a hostile one could claim
/// millions of tiny ones.
const MAX_PIECES: usize = 10_000;

/// What a Word document's text gave.
#[derive(Debug, Default, PartialEq)]
pub struct WordText {
    pub text: String,
    /// Targets of HYPERLINK fields (and other links in field codes).
    pub links: Vec<String>,
    pub truncated: bool,
}

/// The text of the Word document in `cf`, or `None` when it has no readable one (not a
/// Word file, encrypted, or a damaged FIB or piece table).
pub fn text<F: Read + Seek>(cf: &mut cfb::CompoundFile<F>, limits: &Limits) -> Option<WordText> {
    // The stream the text lives in, read whole (within the input limit): pieces point
    // anywhere in it.
    let doc = super::read_stream(cf, Path::new("/WordDocument"), limits.max_input);
    let fib = Fib::parse(&doc)?;
    let table_name = if fib.table_one { "/1Table" } else { "/0Table" };
    let table = super::read_stream(cf, Path::new(table_name), limits.max_input);
    let clx = table.get(fib.clx_at..fib.clx_at.checked_add(fib.clx_len)?)?;
    let pieces = pieces(clx)?;
    let mut chars = Fields::default();
    let mut out = WordText::default();
    for p in pieces {
        if !p.read(&doc, &mut |c| chars.push(c, &mut out, limits.max_text)) {
            out.truncated = true;
            break;
        }
    }
    Some(out)
}

/// What the FIB says about where the text is.
struct Fib {
    /// The piece table is in `1Table` (else `0Table`).
    table_one: bool,
    clx_at: usize,
    clx_len: usize,
}

impl Fib {
    fn parse(doc: &[u8]) -> Option<Fib> {
        if u16_at(doc, 0)? != WORD_IDENT {
            return None;
        }
        let flags = u16_at(doc, 0x0a)?;
        // fEncrypted: the pieces are ciphertext. fWhichTblStm: which table stream.
        if flags & 0x0100 != 0 {
            return None;
        }
        let table_one = flags & 0x0200 != 0;
        // After the 32-byte FibBase: csw 16-bit words, cslw 32-bit words, then cbRgFcLcb
        // pairs of (offset, length) of which fcClx/lcbClx is pair 33 (MS-DOC 2.5.1).
        let csw = usize::from(u16_at(doc, 32)?);
        let at_lw = 34 + csw * 2;
        let cslw = usize::from(u16_at(doc, at_lw)?);
        let at_fclcb = at_lw + 2 + cslw * 4;
        let pairs = usize::from(u16_at(doc, at_fclcb)?);
        if pairs <= 33 {
            return None;
        }
        let clx = at_fclcb + 2 + 33 * 8;
        Some(Fib {
            table_one,
            clx_at: u32_at(doc, clx)? as usize,
            clx_len: u32_at(doc, clx + 4)? as usize,
        })
    }
}

/// One run of text: `chars` characters at byte `at` of the document stream, one byte each
/// (Windows-1252) when `compressed`, else UTF-16LE.
#[derive(Debug, PartialEq)]
struct Piece {
    at: usize,
    chars: usize,
    compressed: bool,
}

impl Piece {
    /// Gives each character to `put` while it accepts them; false once it stopped.
    fn read(&self, doc: &[u8], put: &mut impl FnMut(char) -> bool) -> bool {
        if self.compressed {
            let end = self.at.saturating_add(self.chars).min(doc.len());
            for &b in doc.get(self.at..end).unwrap_or_default() {
                if !put(cp1252(b)) {
                    return false;
                }
            }
        } else {
            let end = self.at.saturating_add(self.chars * 2).min(doc.len());
            let units = doc
                .get(self.at..end)
                .unwrap_or_default()
                .chunks_exact(2)
                .map(|u| u16::from_le_bytes([u[0], u[1]]));
            for c in char::decode_utf16(units) {
                if !put(c.unwrap_or('\u{fffd}')) {
                    return false;
                }
            }
        }
        true
    }
}

/// The pieces of a `Clx`: formatting records (`Prc`, type 1) are skipped to the piece table
/// (`Pcdt`, type 2): n+1 character positions, then n 8-byte piece descriptors.
fn pieces(clx: &[u8]) -> Option<Vec<Piece>> {
    let mut at = 0;
    while clx.get(at) == Some(&1) {
        let len = usize::from(u16_at(clx, at + 1)?);
        at += 3 + len;
    }
    if clx.get(at) != Some(&2) {
        return None;
    }
    let len = u32_at(clx, at + 1)? as usize;
    let plc = clx.get(at + 5..(at + 5).checked_add(len)?)?;
    let n = (plc.len().checked_sub(4)? / 12).min(MAX_PIECES);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (start, end) = (u32_at(plc, i * 4)?, u32_at(plc, i * 4 + 4)?);
        let fc = u32_at(plc, (n + 1) * 4 + i * 8 + 2)?;
        let compressed = fc & 0x4000_0000 != 0;
        let fc = (fc & 0x3fff_ffff) as usize;
        out.push(Piece {
            at: if compressed { fc / 2 } else { fc },
            chars: end.saturating_sub(start) as usize,
            compressed,
        });
    }
    Some(out)
}

/// Turns Word's characters into text: paragraph, cell and page marks become line breaks,
/// field codes (between 0x13 and 0x14) are kept apart and searched for links, and the
/// marks of pictures and drawn objects go.
#[derive(Default)]
struct Fields {
    /// Nesting of fields whose code is being read (their results are text as usual).
    in_code: usize,
    code: String,
}

impl Fields {
    /// Takes one character; false once the text is full.
    fn push(&mut self, c: char, out: &mut WordText, max: usize) -> bool {
        match c {
            '\u{13}' => {
                self.in_code += 1;
                self.code.clear();
                return true;
            }
            '\u{14}' | '\u{15}' => {
                if self.in_code > 0 {
                    self.in_code -= 1;
                    self.links_of_code(out);
                }
                return true;
            }
            _ if self.in_code > 0 => {
                if self.code.len() < 8192 {
                    self.code.push(c);
                }
                return true;
            }
            _ => {}
        }
        let s = match c {
            '\r' | '\u{0b}' | '\u{0c}' | '\u{0e}' => "\n",
            '\u{07}' => "\t",
            '\u{1e}' => "-",
            '\u{00}'..='\u{08}' | '\u{1f}' => "",
            _ => return push_char(&mut out.text, c, max),
        };
        push_capped(&mut out.text, s, max)
    }

    /// The links of the field code just read.
    fn links_of_code(&mut self, out: &mut WordText) {
        field_links(&self.code, &mut out.links);
        self.code.clear();
    }
}

fn push_char(out: &mut String, c: char, max: usize) -> bool {
    let mut buf = [0u8; 4];
    push_capped(out, c.encode_utf8(&mut buf), max)
}

/// Windows-1252, as Word's one-byte pieces are stored (MS-DOC 2.4.1 maps 0x80-0x9F so).
pub fn cp1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9f => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::fixtures;
    use std::io::Cursor;

    fn read(file: &[u8], limits: &Limits) -> Option<WordText> {
        let mut cf = cfb::CompoundFile::open(Cursor::new(file)).unwrap();
        text(&mut cf, limits)
    }

    /// One-byte and UTF-16 pieces, in piece-table order, with paragraph marks and a
    /// HYPERLINK field whose code gives the link and whose result stays text.
    #[test]
    fn pieces_in_both_encodings_and_a_hyperlink() {
        let file = fixtures::word_document(&[
            ("Dear customer,\rYour account \u{93}needs\u{94} ", true),
            (
                "review: \u{13} HYPERLINK \"http://bad.example/login\" \u{14}click here\u{15}.\r",
                false,
            ),
            ("Größe ☺\u{07}end", false),
        ])
        .unwrap();
        let t = read(&file, &Limits::default()).unwrap();
        assert_eq!(
            t.text,
            "Dear customer,\nYour account “needs” review: click here.\nGröße ☺\tend"
        );
        assert_eq!(t.links, vec!["http://bad.example/login"]);
        assert!(!t.truncated);
    }

    #[test]
    fn text_stops_at_the_limit() {
        let long = "spam ".repeat(1000);
        let file = fixtures::word_document(&[(&long, true)]).unwrap();
        let limits = Limits {
            max_text: 100,
            ..Limits::default()
        };
        let t = read(&file, &limits).unwrap();
        assert_eq!(t.text.len(), 100);
        assert!(t.truncated);
    }

    /// Offsets past the streams, an encrypted FIB, a truncated Clx: nothing or less, never
    /// a panic.
    #[test]
    fn damaged_tables_give_what_can_be_read() {
        let file = fixtures::word_document(&[("hello world", true)]).unwrap();
        let mut cf = cfb::CompoundFile::open(Cursor::new(&file)).unwrap();
        let mut doc = super::super::read_stream(&mut cf, Path::new("/WordDocument"), 1 << 20);
        let table = super::super::read_stream(&mut cf, Path::new("/1Table"), 1 << 20);
        let mut encrypted = doc.clone();
        encrypted[0x0b] |= 0x01;
        let f = fixtures::compound(&[("/WordDocument", &encrypted), ("/1Table", &table)]).unwrap();
        assert_eq!(read(&f, &Limits::default()), None);
        for cut in [0, 3, 9, table.len() - 1] {
            let f =
                fixtures::compound(&[("/WordDocument", &doc), ("/1Table", &table[..cut])]).unwrap();
            assert_eq!(read(&f, &Limits::default()), None, "Clx cut at {cut}");
        }
        // A piece pointing past the end of the document stream gives no text.
        let n = doc.len();
        doc.truncate(n - 11);
        let f = fixtures::compound(&[("/WordDocument", &doc), ("/1Table", &table)]).unwrap();
        assert_eq!(read(&f, &Limits::default()).unwrap().text, "");
    }
}
