//! Fonts' `/ToUnicode` character maps: which text a string's codes stand for in a font that
//! does not use a standard encoding (the two-byte fonts of most PDF writers today).

use super::FontMaps;
use std::collections::HashMap;

/// Codes mapped per character map, at most.
const MAX_CODES: usize = 65_536;
/// Bytes after `obj` searched for `endobj` (font and resource dictionaries are small).
const OBJECT_WINDOW: usize = 8 * 1024;

/// One character map: codes of one or two bytes to text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CMap {
    two_bytes: bool,
    codes: HashMap<u32, String>,
}

impl CMap {
    /// The text of a string shown in this font; unmapped codes are dropped.
    pub fn decode(&self, s: &[u8]) -> String {
        if self.two_bytes {
            s.chunks(2)
                .filter_map(|p| {
                    let code = (u32::from(p[0]) << 8) | u32::from(p.get(1).copied().unwrap_or(0));
                    self.codes.get(&code).map(String::as_str)
                })
                .collect()
        } else {
            s.iter()
                .filter_map(|&b| self.codes.get(&u32::from(b)).map(String::as_str))
                .collect()
        }
    }

    /// Reads the `bfchar` and `bfrange` sections of a CMap program.
    pub fn parse(d: &[u8]) -> CMap {
        let text = String::from_utf8_lossy(d);
        let mut map = CMap::default();
        for section in text.split("beginbfchar").skip(1) {
            let body = section.split("endbfchar").next().unwrap_or("");
            let hexes = hex_tokens(body);
            for pair in hexes.chunks_exact(2) {
                map.add(&pair[0], utf16_text(&pair[1]));
            }
        }
        for section in text.split("beginbfrange").skip(1) {
            let body = section.split("endbfrange").next().unwrap_or("");
            map.add_ranges(body);
        }
        map
    }

    fn add(&mut self, code: &[u8], text: String) {
        if self.codes.len() >= MAX_CODES || code.is_empty() || code.len() > 2 {
            return;
        }
        self.two_bytes |= code.len() == 2;
        let c = code.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b));
        self.codes.insert(c, text);
    }

    /// `<lo> <hi> <dst>` (consecutive text from `dst`) and `<lo> <hi> [<d1> <d2> ...]`,
    /// read from one pass over the section's tokens.
    fn add_ranges(&mut self, body: &str) {
        let tokens = range_tokens(body);
        let mut i = 0;
        while i + 2 < tokens.len() && self.codes.len() < MAX_CODES {
            let (Token::Hex(lo), Token::Hex(hi)) = (&tokens[i], &tokens[i + 1]) else {
                i += 1;
                continue;
            };
            let value = |b: &[u8]| b.iter().fold(0u32, |a, &x| (a << 8) | u32::from(x));
            let (l, h) = (value(lo), value(hi));
            i += 2;
            match &tokens[i] {
                Token::Open => {
                    i += 1;
                    let mut code = l;
                    while let Some(Token::Hex(dst)) = tokens.get(i) {
                        self.add(&code_bytes(code, lo.len()), utf16_text(dst));
                        code = code.saturating_add(1);
                        i += 1;
                    }
                }
                Token::Hex(dst) => {
                    i += 1;
                    let mut units = utf16_units(dst);
                    for code in l..=h.min(l.saturating_add(MAX_CODES as u32)) {
                        if self.codes.len() >= MAX_CODES {
                            return;
                        }
                        self.add(
                            &code_bytes(code, lo.len()),
                            String::from_utf16_lossy(&units),
                        );
                        if let Some(last) = units.last_mut() {
                            *last = last.wrapping_add(1);
                        }
                    }
                }
                Token::Close => i += 1,
            }
        }
    }
}

/// A token of a `bfrange` section.
enum Token {
    Hex(Vec<u8>),
    Open,
    Close,
}

fn range_tokens(body: &str) -> Vec<Token> {
    let b = body.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'<' => {
                let (bytes, used) = super::content::hex_string(&b[i..]);
                out.push(Token::Hex(bytes));
                i += used.max(1);
            }
            b'[' => {
                out.push(Token::Open);
                i += 1;
            }
            b']' => {
                out.push(Token::Close);
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

fn code_bytes(code: u32, len: usize) -> Vec<u8> {
    let b = code.to_be_bytes();
    b[4 - len.clamp(1, 4)..].to_vec()
}

/// The `<...>` hex tokens of `s`, as bytes.
fn hex_tokens(s: &str) -> Vec<Vec<u8>> {
    s.split('<')
        .skip(1)
        .filter_map(|t| t.split_once('>'))
        .map(|(hex, _)| super::content::hex_string(format!("<{hex}>").as_bytes()).0)
        .collect()
}

fn utf16_units(b: &[u8]) -> Vec<u16> {
    b.chunks(2)
        .map(|p| (u16::from(p[0]) << 8) | u16::from(p.get(1).copied().unwrap_or(0)))
        .collect()
}

fn utf16_text(b: &[u8]) -> String {
    String::from_utf16_lossy(&utf16_units(b))
}

/// Whether decoded stream data is a character map program.
pub fn is_cmap(d: &[u8]) -> bool {
    memchr::memmem::find(d, b"begincmap").is_some()
}

/// The numbered objects of `objects` (`N G obj ... endobj`) by number.
fn object_bodies(objects: &[u8]) -> HashMap<u32, &[u8]> {
    let mut found = HashMap::new();
    for at in memchr::memmem::find_iter(objects, b" obj") {
        let Some(n) = super::object_number(&objects[..at]) else {
            continue;
        };
        // A bounded window: a file of `obj` words without `endobj` must not be read to its
        // end from each of them.
        let body = &objects[at + 4..];
        let window = &body[..body.len().min(OBJECT_WINDOW)];
        let end = memchr::memmem::find(window, b"endobj").unwrap_or(window.len().min(4096));
        found.entry(n).or_insert(&body[..end]);
    }
    found
}

/// `N G R` right after `key` in `body`: the object number it refers to.
fn reference_after(body: &[u8], key: &[u8]) -> Option<u32> {
    let at = memchr::memmem::find(body, key)? + key.len();
    let words: Vec<&[u8]> = body[at..]
        .split(|c| c.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .take(3)
        .collect();
    (words.len() == 3 && words[2].starts_with(b"R"))
        .then(|| std::str::from_utf8(words[0]).ok()?.parse().ok())
        .flatten()
}

/// Font resource names (`/F1`) mapped to the character maps of the fonts they name.
pub fn font_maps(objects: &[u8], decoded: &[(Option<u32>, &[u8], Vec<u8>)]) -> FontMaps {
    let cmaps: HashMap<u32, CMap> = decoded
        .iter()
        .filter(|(_, _, d)| is_cmap(d))
        .filter_map(|(n, _, d)| Some(((*n)?, CMap::parse(d))))
        .collect();
    let mut maps = FontMaps::new();
    if cmaps.is_empty() {
        return maps;
    }
    let bodies = object_bodies(objects);
    let font_cmap = |font: u32| {
        let body = bodies.get(&font)?;
        cmaps.get(&reference_after(body, b"/ToUnicode")?)
    };
    for body in bodies.values() {
        let Some(at) = memchr::memmem::find(body, b"/Font") else {
            continue;
        };
        let after = &body[at + 5..];
        let trimmed = after.trim_ascii_start();
        // `/Font << /F1 6 0 R ... >>`, or `/Font 9 0 R` naming such a dictionary.
        let dict: &[u8] = if trimmed.starts_with(b"<<") {
            trimmed
        } else {
            match reference_after(body, b"/Font").and_then(|n| bodies.get(&n)) {
                Some(d) => d,
                None => continue,
            }
        };
        let end = memchr::memmem::find(dict, b">>").unwrap_or(dict.len());
        for name_at in memchr::memchr_iter(b'/', &dict[..end]) {
            let name_len = 1 + dict[name_at + 1..end]
                .iter()
                .position(|c| c.is_ascii_whitespace() || b"/<>[]".contains(c))
                .unwrap_or(end - name_at - 1);
            let name = &dict[name_at..name_at + name_len];
            if let Some(map) = reference_after(&dict[name_at..end], name).and_then(font_cmap) {
                maps.entry(name.to_vec()).or_insert_with(|| map.clone());
            }
        }
    }
    maps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bfchar_and_bfrange() {
        let prog = b"begincmap 1 begincodespacerange <0000> <FFFF> endcodespacerange
            2 beginbfchar <0003> <0020> <0011> <0048> endbfchar
            2 beginbfrange <0044> <0046> <0061> <0050> <0051> [<0078> <00E9>] endbfrange endcmap";
        let m = CMap::parse(prog);
        assert_eq!(
            m.decode(&[0, 0x11, 0, 0x44, 0, 0x03, 0, 0x46, 0, 0x51, 0, 0x99]),
            "Ha cé"
        );
    }
}
