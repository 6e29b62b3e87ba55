//! The URI list `uri` rules match: links from HTML attributes, and URIs written in the text
//! (with a scheme, schemeless `www.` / `ftp.` hosts made `http://` / `ftp://`, mail addresses
//! made `mailto:`), each once, in order of appearance.

use regex::Regex;
use std::sync::LazyLock;

static IN_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    crate::spam::builtin_regex(
        r#"(?i)\b(?:(?:https?|ftp|mailto|file)://[^\s<>"'`]+|(?:www|ftp)\.[a-z0-9-]+(?:\.[a-z0-9-]+)+[^\s<>"'`]*|mailto:[^\s<>"'`]+|[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+)"#,
    )
});

static IN_HTML: LazyLock<Regex> = LazyLock::new(|| {
    crate::spam::builtin_regex(
        r#"(?is)\b(?:href|src|action|background|lowsrc|cite|longdesc|usemap|codebase)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))"#,
    )
});

/// Collects URIs without repeats.
#[derive(Debug, Default, Clone)]
pub struct UriList {
    pub uris: Vec<String>,
}

impl UriList {
    fn push(&mut self, u: &str) {
        let u = u
            .trim()
            .trim_end_matches(['.', ',', ';', ')', ']', '!', '?', '>']);
        if u.is_empty() {
            return;
        }
        let lower = u.to_ascii_lowercase();
        let full = if lower.starts_with("www.") {
            format!("http://{u}")
        } else if lower.starts_with("ftp.") {
            format!("ftp://{u}")
        } else if !lower.contains(':') && u.contains('@') {
            format!("mailto:{u}")
        } else {
            u.to_string()
        };
        if !self.uris.contains(&full) {
            self.uris.push(full);
        }
    }

    /// URIs written in plain text.
    pub fn add_text(&mut self, text: &str) {
        for m in IN_TEXT.find_iter(text) {
            self.push(m.as_str());
        }
    }

    /// Link targets in HTML source (then its text is added with `add_text`).
    pub fn add_html(&mut self, html: &str) {
        for c in IN_HTML.captures_iter(html) {
            if let Some(v) = c.get(1).or(c.get(2)).or(c.get(3)) {
                let v = v.as_str().replace("&amp;", "&");
                let v = v.trim();
                if v.starts_with('#')
                    || v.is_empty()
                    || v.to_ascii_lowercase().starts_with("javascript:")
                {
                    continue;
                }
                self.push(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_links_in_text_and_html() {
        let mut l = UriList::default();
        l.add_html(r#"<a href="http://a.example/x?a=1&amp;b=2">go</a> <img src='cid:1'>"#);
        l.add_text("see www.b.example/path. or mail joe@c.example, or http://a.example/x?a=1&b=2");
        assert_eq!(
            l.uris,
            vec![
                "http://a.example/x?a=1&b=2",
                "cid:1",
                "http://www.b.example/path",
                "mailto:joe@c.example"
            ]
        );
    }
}
