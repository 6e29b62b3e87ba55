//! The body as SpamAssassin's `body` rules see it: the Subject first, then the text of every
//! text part decoded to UTF-8 (HTML rendered to text), split into paragraphs at blank lines,
//! each paragraph's white space runs reduced to one space. Body rules match each paragraph
//! on its own.
//!
//! mail-parser decodes the parts; HTML is rendered by [`crate::spam::view::html`] with SpamAssassin's
//! white space for tags and without text nobody can see (script, style, invisible colours).
//! The compatibility harness (`examples/sa_compat.rs`) measures what still differs.

use mail_parser::{Message, MessageParser, PartType};

/// The rendered paragraphs of `raw` (a whole message).
pub fn body_paragraphs(raw: &[u8]) -> Vec<String> {
    match MessageParser::default().parse(raw) {
        Some(msg) => paragraphs_of(&msg),
        None => Vec::new(),
    }
}

/// The rendered paragraphs of a parsed message.
fn paragraphs_of(msg: &Message) -> Vec<String> {
    let parts: Vec<(bool, &str)> = msg
        .parts
        .iter()
        .filter_map(|part| match &part.body {
            PartType::Text(t) => Some((false, t.as_ref())),
            PartType::Html(h) => Some((true, h.as_ref())),
            _ => None,
        })
        .collect();
    render(msg.subject(), &parts)
}

/// The paragraphs of a Subject and text parts (`true`: HTML, rendered as SpamAssassin
/// renders it, see [`crate::spam::view::html`]).
pub fn render(subject: Option<&str>, parts: &[(bool, &str)]) -> Vec<String> {
    let mut text = String::new();
    if let Some(s) = subject {
        text.push_str(s);
        text.push_str("\n\n");
    }
    for (html, t) in parts {
        if *html {
            text.push_str(&crate::spam::view::html::Html::parse(t).text);
        } else {
            text.push_str(t);
        }
        text.push_str("\n\n");
    }
    paragraphs(&text)
}

/// Splits at blank lines and reduces white space, as SpamAssassin's rendered body array.
pub fn paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        for word in line.split_whitespace() {
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(word);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out.into_iter().flat_map(short_lines).collect()
}

/// Longest line a body rule sees at once (SpamAssassin's 2048 bytes).
const MAX_LINE: usize = 2048;

/// A long paragraph cut into lines of at most 2048 bytes, after the last space that fits
/// (so a URL is not cut in half), else at 2048 bytes (moved back to a character boundary).
fn short_lines(mut p: String) -> Vec<String> {
    let mut out = Vec::new();
    while p.len() > MAX_LINE {
        let mut cut = p.as_bytes()[..MAX_LINE]
            .iter()
            .rposition(|&b| b == b' ')
            .map_or(MAX_LINE, |i| i + 1);
        while !p.is_char_boundary(cut) {
            cut -= 1;
        }
        let rest = p.split_off(cut);
        out.push(std::mem::replace(&mut p, rest));
    }
    out.push(p);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_then_paragraphs() {
        let m = b"Subject: Cheap   stuff\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Buy  now,\r\nsave =E4 lot.\r\n\r\nUnsubscribe below.\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>Hello <b>there</b></p>\r\n--b--\r\n";
        let p = body_paragraphs(m);
        assert_eq!(p[0], "Cheap stuff");
        assert_eq!(p[1], "Buy now, save \u{e4} lot.");
        assert_eq!(p[2], "Unsubscribe below.");
        assert!(p.iter().any(|x| x.contains("Hello there")), "{p:?}");
        // Long paragraphs come as lines of at most 2048 bytes, cut after a space.
        let long = paragraphs(&"word ".repeat(1000));
        assert!(
            long.len() == 3 && long.iter().all(|l| l.len() <= 2048),
            "{:?}",
            long.iter().map(String::len).collect::<Vec<_>>()
        );
        assert!(long[0].ends_with(' ') && long.concat() == "word ".repeat(1000).trim_end());
    }
}
