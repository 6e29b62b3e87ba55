//! What SpamAssassin's MIME, body and image eval functions count in each part's raw lines
//! and decoded bytes (MIMEEval's `_check_attachments`, BodyEval's
//! `multipart_alternative_difference`, ImageInfo's sizes), worked out once as the view is
//! built so that no eval function goes back to the raw message.

use std::collections::HashMap;

/// Counts over one leaf part's raw (still encoded) lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawFacts {
    /// Longest line of a base64 part, its line break counted (`check_base64_length`);
    /// 0 for other parts and for calendars (`application/ics`), which wrap as they like.
    pub base64_line_max: usize,
    /// Plain text sent unencoded: `&#xHHHH;` entities, and the other bytes
    /// (`check_abundant_unicode_ratio`).
    pub unicode_entities: usize,
    pub plain_bytes: usize,
    /// Bytes of the raw lines, line breaks counted as one (`check_mime_multipart_ratio`).
    pub raw_len: usize,
}

/// `&#xHHHH;` with capital hex digits, as SpamAssassin counts them.
fn entity_at(line: &[u8], i: usize) -> bool {
    line.len() >= i + 8
        && &line[i..i + 3] == b"&#x"
        && line[i + 3..i + 7]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b))
        && line[i + 7] == b';'
}

pub fn raw_facts(ctype: &str, encoding: &str, raw_body: &[u8]) -> RawFacts {
    let mut f = RawFacts::default();
    let base64 = encoding == "base64" && ctype != "application/ics";
    let plain = ctype == "text/plain" && matches!(encoding, "" | "7bit" | "8bit");
    let mut lines = raw_body.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let newline = usize::from(lines.peek().is_some());
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let len = line.len() + newline;
        if len == 0 {
            continue;
        }
        f.raw_len += len;
        if base64 {
            f.base64_line_max = f.base64_line_max.max(len);
        }
        if plain {
            let mut i = 0;
            let mut entities = 0;
            while i < line.len() {
                if entity_at(line, i) {
                    entities += 1;
                    i += 8;
                } else {
                    i += 1;
                }
            }
            f.unicode_entities += entities;
            f.plain_bytes += len - 8 * entities;
        }
    }
    f
}

/// The type and pixel area of a GIF, PNG or JPEG image from its decoded bytes, as
/// SpamAssassin's ImageInfo reads them (the logical screen of a GIF, the IHDR chunk of a
/// PNG, the first start-of-frame marker of a JPEG); `None` when the header does not say.
pub fn image_area(ctype: &str, data: &[u8]) -> Option<(&'static str, u64)> {
    let be16 = |b: &[u8], i: usize| Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]) as u64);
    let (kind, w, h) = match ctype {
        "image/gif" => {
            if !(data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a")) || data.len() < 10 {
                return None;
            }
            let le16 = |i: usize| u16::from_le_bytes([data[i], data[i + 1]]) as u64;
            ("gif", le16(6), le16(8))
        }
        "image/png" => {
            if !data.starts_with(b"\x89PNG\r\n\x1a\n") || data.get(12..16) != Some(b"IHDR") {
                return None;
            }
            let be32 = |i: usize| {
                data.get(i..i + 4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64)
            };
            ("png", be32(16)?, be32(20)?)
        }
        "image/jpeg" | "image/jpg" => {
            if !data.starts_with(b"\xff\xd8") {
                return None;
            }
            let mut pos = 2;
            loop {
                let (mark, len) = (*data.get(pos + 1)?, be16(data, pos + 2)? as usize);
                if data[pos] != 0xff || mark == 0xda || mark == 0xd9 || len < 2 {
                    return None;
                }
                let sof = matches!(mark, 0xc0..=0xc3 | 0xc5..=0xc7 | 0xc9..=0xcb | 0xcd..=0xcf);
                if sof {
                    break ("jpeg", be16(data, pos + 7)?, be16(data, pos + 5)?);
                }
                pos += 2 + len;
            }
        }
        _ => return None,
    };
    (w > 0 && h > 0).then_some((kind, w * h))
}

/// How much of the HTML alternative's wording the plain-text alternative lacks
/// (`multipart_alternative_difference`): the largest share, in percent, of distinct HTML
/// words that the text part does not have as often, over every multipart/alternative; and
/// the distinct word counts of the last alternative that had HTML words.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Alternative {
    pub diff: f64,
    pub html_words: usize,
    pub text_words: usize,
}

/// One text alternative's rendered words (those with a word character), and for HTML
/// whether it had an image (an HTML part of images alone counts as one word, so that it
/// differs from any text).
pub struct Rendered<'a> {
    pub html: bool,
    pub text: &'a str,
    pub has_img: bool,
}

fn words(text: &str) -> HashMap<&str, usize> {
    let mut m = HashMap::new();
    for w in text
        .split_whitespace()
        .filter(|w| w.chars().any(|c| c.is_alphanumeric() || c == '_'))
    {
        *m.entry(w).or_insert(0) += 1;
    }
    m
}

impl Alternative {
    /// Folds in one multipart/alternative, given the text parts under it.
    pub fn add(&mut self, texts: &[Rendered<'_>]) {
        let mut html: HashMap<&str, usize> = HashMap::new();
        let mut text: HashMap<&str, usize> = HashMap::new();
        for t in texts {
            let target = if t.html { &mut html } else { &mut text };
            for (w, n) in words(t.text) {
                *target.entry(w).or_insert(0) += n;
            }
            if t.html && html.is_empty() && t.has_img {
                html.insert("\n", 1);
            }
        }
        if html.is_empty() {
            return;
        }
        let orig = html.len();
        self.html_words = orig;
        self.text_words = text.len();
        let missing = html
            .iter()
            .filter(|(w, n)| text.get(*w).is_none_or(|t| **n > *t))
            .count();
        let diff = missing as f64 * 100.0 / orig as f64;
        self.diff = self.diff.max(diff);
    }
}

/// [`Alternative`] over every multipart/alternative of `msg` (`parts` are its parts' facts,
/// `rendered` gives a text part's rendered text by part number). A calendar invitation
/// (alternative of HTML and text/calendar alone) is left out, as SpamAssassin does.
pub fn alternatives<'t>(
    msg: &mail_parser::Message<'_>,
    parts: &[super::Part],
    rendered: impl Fn(usize) -> Option<Rendered<'t>>,
) -> Alternative {
    let mut out = Alternative::default();
    let types: Vec<&str> = parts.iter().map(|p| p.content_type.as_str()).collect();
    if types == ["multipart/alternative", "text/html", "text/calendar"] {
        return out;
    }
    for (n, p) in parts.iter().enumerate() {
        if p.content_type != "multipart/alternative" {
            continue;
        }
        // The text parts anywhere under it, in order.
        let mut under = Vec::new();
        let mut stack = vec![n];
        while let Some(i) = stack.pop() {
            match msg.parts.get(i).map(|p| &p.body) {
                Some(mail_parser::PartType::Multipart(children)) => {
                    stack.extend(children.iter().rev().map(|&c| c as usize));
                }
                _ if parts
                    .get(i)
                    .is_some_and(|p| p.content_type.starts_with("text")) =>
                {
                    under.extend(rendered(i));
                }
                _ => {}
            }
        }
        out.add(&under);
    }
    out
}

/// Base64 as SpamAssassin's `Util::base64_decode` reads it when it is not clean (a list
/// footer after the data, a stray character): everything outside the alphabet dropped, the
/// final padding dropped, a `=` inside taken as the last digit, and the rest decoded. A
/// strict decoder gives up on such a part, and the body rules would see the encoded text
/// instead of the message.
pub fn lenient_base64(raw: &[u8]) -> Vec<u8> {
    let mut digits: Vec<u8> = raw
        .iter()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
        .copied()
        .collect();
    while digits.last() == Some(&b'=') {
        digits.pop();
    }
    let value = |c: u8| -> u32 {
        u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            _ => 63, // '/' and an inner '='
        })
    };
    let mut out = Vec::with_capacity(digits.len() / 4 * 3 + 2);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in &digits {
        acc = (acc << 6) | value(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            // Keeping the low byte is the point of the cast.
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_lines_are_counted_as_spamassassin_does() {
        let b64 = raw_facts("text/plain", "base64", b"QUJD\r\nQUJDRA==\r\n");
        assert_eq!(b64.base64_line_max, 9);
        assert_eq!(b64.raw_len, 14);
        let ics = raw_facts("application/ics", "base64", b"QUJDRA==\n");
        assert_eq!(ics.base64_line_max, 0);
        let u = raw_facts("text/plain", "", b"&#x0041;&#x0042;ab\n&#xzz41;\n");
        assert_eq!((u.unicode_entities, u.plain_bytes), (2, 3 + 9));
    }

    #[test]
    fn image_sizes_from_their_headers() {
        let gif = b"GIF89a\x0a\x00\x14\x00\x00\x00\x00";
        assert_eq!(image_area("image/gif", gif), Some(("gif", 200)));
        let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        png.extend_from_slice(&[0, 0, 1, 0, 0, 0, 0, 2]);
        assert_eq!(image_area("image/png", &png), Some(("png", 512)));
        let jpeg = b"\xff\xd8\xff\xe0\x00\x04ab\xff\xc0\x00\x0b\x08\x00\x03\x00\x05\x01";
        assert_eq!(image_area("image/jpeg", jpeg), Some(("jpeg", 15)));
        assert_eq!(image_area("image/jpeg", b"\xff\xd8\xff\xda"), None);
        assert_eq!(image_area("image/gif", b"GIF89"), None);
    }

    #[test]
    fn the_html_words_the_text_lacks() {
        let mut a = Alternative::default();
        a.add(&[
            Rendered {
                html: false,
                text: "buy cheap pills",
                has_img: false,
            },
            Rendered {
                html: true,
                text: "buy cheap pills now - today",
                has_img: false,
            },
        ]);
        assert_eq!((a.html_words, a.text_words), (5, 3));
        assert!((a.diff - 40.0).abs() < 1e-9);
        let mut img = Alternative::default();
        img.add(&[
            Rendered {
                html: false,
                text: "hello",
                has_img: false,
            },
            Rendered {
                html: true,
                text: "",
                has_img: true,
            },
        ]);
        assert_eq!(img.diff, 100.0);
    }

    #[test]
    fn base64_with_a_footer_decodes_as_spamassassin_decodes_it() {
        let raw = b"PGh0bWw+aGk8L2h0bWw+\n\n-------\nA list footer.\n";
        let out = lenient_base64(raw);
        assert!(
            out.starts_with(b"<html>hi</html>"),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
        assert_eq!(lenient_base64(b"aGk=\n"), b"hi");
        assert_eq!(
            lenient_base64(b"aGk=aGk=").len(),
            5,
            "an inner = is a digit"
        );
    }

    #[test]
    fn a_body_rule_reads_base64_text_behind_a_list_footer() {
        let msg = b"Subject: x\nMIME-Version: 1.0\nContent-Type: text/html\n\
Content-Transfer-Encoding: base64\n\nPGh0bWw+Q2hlYXAgcGlsbHM8L2h0bWw+\n\n\
------------------------\nThis list is sponsored by: x\n";
        let body = &msg[msg.len() - 88..];
        assert!(
            body.starts_with(b"PGh0"),
            "{:?}",
            String::from_utf8_lossy(body)
        );
        assert!(
            mail_parser::decoders::base64::base64_decode(body).is_none(),
            "a strict decoder gives up here"
        );
        let view = crate::spam::view::MessageView::new(msg, "");
        assert!(
            view.body.iter().any(|p| p.contains("Cheap pills")),
            "{:?}",
            view.body
        );
    }
}
