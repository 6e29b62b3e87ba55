//! The text of an XML document part (`word/document.xml`, `content.xml`), tags dropped.
//!
//! Written here rather than with an XML parser: the text is for rules, not for display, and a
//! spam filter must read a document that a strict parser refuses (unbalanced tags, unknown
//! entities). One linear pass; entities are decoded, and the end of a paragraph, row or
//! cell becomes a line break or a space so that words do not run together.

/// Closing tags (local names) after which a line break goes.
const BREAK_AFTER: [&str; 6] = ["p", "h", "tr", "row", "si", "br"];
/// Tags (local names) that stand for a space.
const SPACE_AT: [&str; 5] = ["tab", "s", "c", "tc", "cr"];

/// Appends the text of `xml` to `out`, keeping `out` within `max` bytes. False once full.
pub fn append(xml: &[u8], out: &mut String, max: usize) -> bool {
    let xml = String::from_utf8_lossy(xml);
    let mut rest: &str = &xml;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            return super::push_capped(out, &decode_entities(rest), max);
        };
        // White space with a line break between tags is the indentation of pretty-printed
        // XML, not text (a run's own space, `<w:t> </w:t>`, has none).
        let between = &rest[..lt];
        let layout = between.trim().is_empty() && between.contains('\n');
        if lt > 0 && !layout && !super::push_capped(out, &decode_entities(between), max) {
            return false;
        }
        let Some(gt) = rest[lt..].find('>') else {
            return true;
        };
        let tag = &rest[lt + 1..lt + gt];
        rest = &rest[lt + gt + 1..];
        if let Some(sep) = separator(tag)
            && !out.ends_with(sep)
            && !super::push_capped(out, sep, max)
        {
            return false;
        }
    }
    true
}

/// What a tag stands for in the text: a line break, a space or nothing.
fn separator(tag: &str) -> Option<&'static str> {
    let closing = tag.starts_with('/');
    let name = tag
        .trim_start_matches('/')
        .split(|c: char| c.is_whitespace() || c == '/')
        .next()
        .unwrap_or("");
    let local = name.rsplit(':').next().unwrap_or(name);
    let empty = tag.ends_with('/');
    if (closing || empty || local == "br") && BREAK_AFTER.contains(&local) {
        Some("\n")
    } else if (empty || closing) && SPACE_AT.contains(&local) {
        Some(" ")
    } else {
        None
    }
}

/// `&lt;`, `&amp;`, `&#233;`, `&#xE9;` and the other predefined entities decoded; anything
/// else is kept as written.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| entity(&rest[1..e]));
        match (end, decoded) {
            (Some(e), Some(c)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    let code = |digits: &str, radix| u32::from_str_radix(digits, radix).ok();
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => name
            .strip_prefix("#x")
            .or_else(|| name.strip_prefix("#X"))
            .and_then(|h| code(h, 16))
            .or_else(|| name.strip_prefix('#').and_then(|d| code(d, 10)))
            .and_then(char::from_u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(xml: &str) -> String {
        let mut out = String::new();
        append(xml.as_bytes(), &mut out, 1000);
        out
    }

    #[test]
    fn paragraphs_and_entities() {
        let xml = r#"<?xml version="1.0"?><w:document><w:body><w:p><w:r><w:t>Win &amp; claim</w:t></w:r><w:r><w:tab/><w:t xml:space="preserve">your &#x20AC;1000</w:t></w:r></w:p><w:p><w:r><w:t>now</w:t></w:r></w:p></w:body></w:document>"#;
        assert_eq!(text(xml), "Win & claim your €1000\nnow\n");
    }

    #[test]
    fn broken_markup_is_still_read() {
        assert_eq!(
            text("a &bogus; <b>c</b> &#99999999; <unclosed"),
            "a &bogus; c &#99999999; "
        );
    }

    #[test]
    fn indentation_is_not_text() {
        let xml = "<office:text>\n  <text:p>One</text:p>\n  <text:p>Two<text:s/>words</text:p>\n</office:text>";
        assert_eq!(text(xml), "One\nTwo words\n");
    }

    #[test]
    fn stops_at_the_cap() {
        let mut out = String::new();
        assert!(!append("<t>ééééé</t>".as_bytes(), &mut out, 5));
        assert_eq!(out, "éé");
    }
}
