//! The text of an RTF document, with the links of its fields and whether it embeds objects
//! (the carrier of the Equation Editor and OLE-link exploits).
//!
//! Written here: RTF's text is a stream of groups, control words and characters, and what
//! the rules need (the visible text, the field links) is a single pass over it. The crates
//! that parse RTF build a document model of every group and style, and recurse as deep as
//! the groups nest; this keeps one small state per open group, at most [`MAX_DEPTH`].

use super::ole::Macros;
use super::{Extracted, Limits, push_capped};
use encoding_rs::{Encoding, WINDOWS_1252};

/// Groups open at once that are followed; deeper ones are skipped whole (Word itself stops
/// reading far earlier; exploits nest thousands of groups to break parsers).
const MAX_DEPTH: usize = 500;

/// Longest control word name and parameter RTF allows (32 letters, a 16-bit number; a few
/// more digits are tolerated).
const MAX_WORD: usize = 32;
const MAX_DIGITS: usize = 10;

/// Character bytes decoded at once at most: a long run of text is not held whole (a
/// double-byte pair split here once in 64 KiB costs one character).
const PENDING: usize = 64 << 10;

/// Destinations whose content is not text: font and colour tables, styles, document
/// properties, pictures and embedded data.
const NOT_TEXT: &[&[u8]] = &[
    b"fonttbl",
    b"colortbl",
    b"stylesheet",
    b"info",
    b"pict",
    b"themedata",
    b"colorschememapping",
    b"datastore",
    b"latentstyles",
    b"listtable",
    b"listoverridetable",
    b"rsidtbl",
    b"generator",
    b"xmlnstbl",
    b"filetbl",
    b"revtbl",
    b"pgdsctbl",
    b"objdata",
    b"objclass",
    b"objname",
];

/// Whether `bytes` is an RTF document (Word opens any file that starts so, whatever it is
/// called).
pub fn is_rtf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"{\\rtf")
}

/// What a group passes to the groups inside it.
#[derive(Clone, Copy)]
struct Group {
    /// Its content is not text.
    skip: bool,
    /// Its content is a field's code (`\fldinst`), read for links.
    code: bool,
    /// Characters to skip after a `\u` (`\uc`, default 1).
    uc: usize,
}

struct Reader<'a> {
    src: &'a [u8],
    at: usize,
    groups: Vec<Group>,
    /// Groups deeper than [`MAX_DEPTH`] still open.
    too_deep: usize,
    encoding: &'static Encoding,
    /// `\'hh` bytes waiting to be decoded together (double-byte code pages).
    pending: Vec<u8>,
    /// Fallback characters still to skip after a `\u`.
    skip_chars: usize,
    /// The next control word starts a destination (`\*` or a group's first word).
    group_start: bool,
    code: String,
    out: Extracted,
    max_text: usize,
    full: bool,
}

/// Reads an RTF document within `limits`.
pub fn extract(bytes: &[u8], limits: &Limits) -> Extracted {
    let mut r = Reader {
        src: bytes,
        at: 0,
        groups: vec![Group {
            skip: false,
            code: false,
            uc: 1,
        }],
        too_deep: 0,
        encoding: WINDOWS_1252,
        pending: Vec::new(),
        skip_chars: 0,
        group_start: false,
        code: String::new(),
        out: Extracted {
            kind: "rtf",
            macros: Some(Macros::default()),
            ..Extracted::default()
        },
        max_text: limits.max_text,
        full: false,
    };
    r.run();
    r.flush();
    r.out.truncated |= r.full;
    r.out
}

impl Reader<'_> {
    fn state(&self) -> Group {
        self.groups.last().copied().unwrap_or(Group {
            skip: true,
            code: false,
            uc: 1,
        })
    }

    fn run(&mut self) {
        while self.at < self.src.len() && !self.full {
            let b = self.src[self.at];
            self.at += 1;
            match b {
                b'{' => self.open(),
                b'}' => self.close(),
                b'\\' => self.control(),
                b'\r' | b'\n' => {}
                _ if self.too_deep > 0 => {}
                _ => self.byte(b),
            }
        }
    }

    fn open(&mut self) {
        self.flush();
        if self.too_deep > 0 || self.groups.len() >= MAX_DEPTH {
            self.too_deep += 1;
            return;
        }
        let inherited = self.state();
        self.groups.push(inherited);
        self.group_start = true;
    }

    fn close(&mut self) {
        self.flush();
        self.group_start = false;
        if self.too_deep > 0 {
            self.too_deep -= 1;
            return;
        }
        let closed = self.groups.pop();
        if closed.is_some_and(|g| g.code) && !self.state().code {
            self.links_of_code();
        }
        if self.groups.len() <= 1 {
            // The document's closing brace: what follows is not RTF.
            self.at = self.src.len();
        }
    }

    /// A control word or symbol, after its backslash.
    fn control(&mut self) {
        let Some(&c) = self.src.get(self.at) else {
            return;
        };
        if !c.is_ascii_alphabetic() {
            self.at += 1;
            return self.symbol(c);
        }
        let start = self.at;
        while self.at < self.src.len()
            && self.at - start < MAX_WORD
            && self.src[self.at].is_ascii_alphabetic()
        {
            self.at += 1;
        }
        let word = &self.src[start..self.at];
        let num_start = self.at;
        if self.src.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        while self.at < self.src.len()
            && self.at - num_start < MAX_DIGITS
            && self.src[self.at].is_ascii_digit()
        {
            self.at += 1;
        }
        let param = std::str::from_utf8(&self.src[num_start..self.at])
            .ok()
            .and_then(|n| n.parse::<i64>().ok());
        if self.src.get(self.at) == Some(&b' ') {
            self.at += 1;
        }
        if self.too_deep == 0 {
            self.word(word, param);
        }
    }

    fn symbol(&mut self, c: u8) {
        if self.too_deep > 0 {
            return;
        }
        match c {
            b'\'' => {
                let end = (self.at + 2).min(self.src.len());
                let hex = &self.src[self.at..end];
                self.at = end;
                let value = std::str::from_utf8(hex)
                    .ok()
                    .filter(|h| h.len() == 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(v) = value {
                    self.byte(v);
                }
            }
            b'*' => {
                // An optional destination: its content is not text unless we know it is.
                if let Some(g) = self.groups.last_mut()
                    && !g.code
                {
                    g.skip = true;
                }
                self.group_start = true;
            }
            b'~' => self.text("\u{a0}"),
            b'_' => self.text("-"),
            b'\r' | b'\n' => self.text("\n"),
            b'\\' | b'{' | b'}' => self.byte(c),
            _ => {}
        }
    }

    fn word(&mut self, word: &[u8], param: Option<i64>) {
        let starts_group = std::mem::take(&mut self.group_start);
        self.flush();
        match word {
            b"fldinst" => {
                if let Some(g) = self.groups.last_mut() {
                    (g.skip, g.code) = (false, true);
                }
                self.code.clear();
                return;
            }
            b"object" | b"objdata" | b"objemb" | b"objlink" | b"objautlink" => {
                if let Some(m) = &mut self.out.macros {
                    m.object = true;
                }
            }
            _ => {}
        }
        if starts_group && NOT_TEXT.contains(&word) {
            if let Some(g) = self.groups.last_mut() {
                g.skip = true;
            }
            return;
        }
        match (word, param) {
            (b"bin", Some(n)) => {
                // Raw bytes follow: skipped unread.
                self.flush();
                self.at = self.at.saturating_add(n.max(0) as usize);
            }
            (b"ansicpg", Some(n)) => {
                self.encoding = code_page(n).unwrap_or(WINDOWS_1252);
            }
            (b"uc", Some(n)) => {
                if let Some(g) = self.groups.last_mut() {
                    g.uc = n.clamp(0, 10) as usize;
                }
            }
            (b"u", Some(n)) => {
                self.flush();
                // A signed 16-bit number: negative values are the upper half.
                let unit = if n < 0 { n + 65536 } else { n };
                let c = char::from_u32(unit as u32).unwrap_or('\u{fffd}');
                let mut buf = [0; 4];
                self.text(c.encode_utf8(&mut buf));
                self.skip_chars = self.state().uc;
            }
            _ => {
                let s = match word {
                    b"par" | b"line" | b"sect" | b"page" | b"row" => "\n",
                    b"tab" | b"cell" => "\t",
                    b"emdash" => "\u{2014}",
                    b"endash" => "\u{2013}",
                    b"lquote" => "\u{2018}",
                    b"rquote" => "\u{2019}",
                    b"ldblquote" => "\u{201c}",
                    b"rdblquote" => "\u{201d}",
                    b"bullet" => "\u{2022}",
                    b"emspace" | b"enspace" | b"qmspace" => " ",
                    _ => return,
                };
                self.text(s);
            }
        }
    }

    /// A character byte in the document's code page.
    fn byte(&mut self, b: u8) {
        self.group_start = false;
        if self.skip_chars > 0 {
            self.skip_chars -= 1;
            return;
        }
        self.pending.push(b);
        if self.pending.len() >= PENDING {
            self.flush();
        }
    }

    /// Decodes the bytes waiting and adds them.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let bytes = std::mem::take(&mut self.pending);
        let (s, _) = self.encoding.decode_without_bom_handling(&bytes);
        self.add(&s);
    }

    fn text(&mut self, s: &str) {
        self.flush();
        self.group_start = false;
        if self.skip_chars > 0 {
            self.skip_chars -= 1;
            return;
        }
        self.add(s);
    }

    fn add(&mut self, s: &str) {
        let g = self.state();
        if g.code {
            if self.code.len() < 8192 {
                self.code.push_str(s);
            }
        } else if !g.skip && !push_capped(&mut self.out.text, s, self.max_text) {
            self.full = true;
        }
    }

    /// The links of the field code just read.
    fn links_of_code(&mut self) {
        super::field_links(&self.code, &mut self.out.uris);
        self.code.clear();
    }
}

/// The encoding of a Windows code page number, for those RTF writers use.
fn code_page(n: i64) -> Option<&'static Encoding> {
    let label: &[u8] = match n {
        874 => b"windows-874",
        932 => b"shift_jis",
        936 => b"gbk",
        949 => b"euc-kr",
        950 => b"big5",
        866 => b"ibm866",
        1250..=1258 => return Encoding::for_label(format!("windows-{n}").as_bytes()),
        10000 => b"macintosh",
        20866 => b"koi8-r",
        65001 => b"utf-8",
        _ => return None,
    };
    Encoding::for_label(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(rtf: &str) -> Extracted {
        extract(rtf.as_bytes(), &Limits::default())
    }

    #[test]
    fn text_without_tables_pictures_or_hidden_destinations() {
        let doc = read(
            r"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss Arial;}}{\colortbl;\red255\green0\blue0;}
{\*\generator Msftedit 5.41;}{\info{\title Invoice}{\author Bob}}
\pard\f0\fs20 Dear customer,\par Your account \ldblquote needs\rdblquote  review \endash  act now.\par
{\pict\pngblip 89504e470d0a1a0a}Caf\'e9 \u8364?100\tab done\line}",
        );
        assert_eq!(
            doc.text,
            "Dear customer,\nYour account “needs” review – act now.\nCafé €100\tdone\n"
        );
        assert_eq!(doc.kind, "rtf");
        assert!(!doc.macros.unwrap().object);
    }

    #[test]
    fn field_links_and_embedded_objects() {
        let doc = read(
            r#"{\rtf1{\field{\*\fldinst{HYPERLINK "http://bad.example/x"}}{\fldrslt{click}}} here {\object
\objemb{\*\objclass Equation.3}{\*\objdata 01050000020000000b000000}{\result{shown}}}}"#,
        );
        assert_eq!(doc.text, "click here shown");
        assert_eq!(doc.uris, vec!["http://bad.example/x"]);
        assert!(doc.macros.unwrap().object);
    }

    /// Code pages: double-byte pairs decoded together, `\uc` fallbacks skipped.
    #[test]
    fn code_pages_and_unicode_fallbacks() {
        let doc = read(r"{\rtf1\ansi\ansicpg1251 \'cf\'f0\'e8\'e2\'e5\'f2}");
        assert_eq!(doc.text, "Привет");
        let doc = read(r"{\rtf1\ansi\ansicpg936 \'c4\'e3\'ba\'c3 {\uc2\u20320\'c4\'e3}!}");
        assert_eq!(doc.text, "你好 你!");
    }

    /// Deep nesting, binary runs, cut documents, the text limit: bounded, no panic.
    #[test]
    fn hostile_documents_are_bounded() {
        let deep = format!(
            "{{\\rtf1 a{}b{}c}}",
            "{".repeat(100_000),
            "}".repeat(100_000)
        );
        assert_eq!(read(&deep).text, "ac");
        assert_eq!(read(r"{\rtf1 x\bin4 }}}}y}").text, "xy");
        assert_eq!(read(r"{\rtf1 x\bin99999999").text, "x");
        for cut in [r"{\rtf1 a\'", r"{\rtf1 a\'4", r"{\rtf1 a\u", r"{\rtf1 a\"] {
            assert_eq!(read(cut).text, "a", "{cut}");
        }
        let long = format!("{{\\rtf1 {}}}", "spam ".repeat(1000));
        let limits = Limits {
            max_text: 100,
            ..Limits::default()
        };
        let doc = extract(long.as_bytes(), &limits);
        assert_eq!(doc.text.len(), 100);
        assert!(doc.truncated);
    }
}
