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

/// The host of a link, lower case; none for `mailto:`, `javascript:`, `cid:` and the like.
pub fn uri_host(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once(':')?;
    if !matches!(
        scheme.to_ascii_lowercase().as_str(),
        "http" | "https" | "ftp"
    ) {
        return None;
    }
    let rest = rest.trim_start_matches(['/', '\\']);
    let authority = rest.split(['/', '?', '#', '\\']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host.split(':').next()?,
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty() && !host.contains('%')).then_some(host)
}

/// What a message links to, as rspamd reports it: the hosts of its web links and the
/// addresses it names, each once, in order of appearance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    pub hosts: Vec<String>,
    pub emails: Vec<String>,
}

impl Links {
    /// From the URI list.
    pub fn of(uris: &[String]) -> Links {
        let mut out = Links::default();
        for u in uris {
            let (list, item) = match u.get(..7) {
                Some(m) if m.eq_ignore_ascii_case("mailto:") => {
                    let addr = u[7..].split(['?', '#']).next().unwrap_or_default();
                    (&mut out.emails, addr.to_ascii_lowercase())
                }
                _ => match uri_host(u) {
                    Some(h) => (&mut out.hosts, h),
                    None => continue,
                },
            };
            if !item.is_empty() && !list.contains(&item) {
                list.push(item);
            }
        }
        out
    }
}

/// Collects URIs without repeats.
#[derive(Debug, Default, Clone)]
pub struct UriList {
    pub uris: Vec<String>,
}

impl UriList {
    /// One URI (a link found outside the text: in a document, a QR code).
    pub fn push(&mut self, u: &str) {
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
