//! What SpamAssassin's HTML eval functions (`html_test`, `html_range`, `html_tag_exists`,
//! `html_tag_balance`, `html_text_match`, `html_image_only`, `html_image_ratio`) ask about an
//! HTML part: which tags appear and whether they balance, the visible text and its length,
//! images and their area, font sizes and colours, comments, the title and link texts.
//!
//! A small tokenizer rather than a DOM crate: these are counts over the tag stream, which is
//! what SpamAssassin's own HTML parser produces too, and broken HTML (the spammer's kind) must
//! still give an answer.

use std::collections::{BTreeMap, BTreeSet};

/// Tags SpamAssassin knows; others count towards `bad_tag_ratio`.
const KNOWN_TAGS: &[&str] = &[
    "a",
    "abbr",
    "acronym",
    "address",
    "applet",
    "area",
    "article",
    "aside",
    "audio",
    "b",
    "base",
    "basefont",
    "bdi",
    "bdo",
    "bgsound",
    "big",
    "blink",
    "blockquote",
    "body",
    "br",
    "button",
    "canvas",
    "caption",
    "center",
    "cite",
    "code",
    "col",
    "colgroup",
    "data",
    "datalist",
    "dd",
    "del",
    "details",
    "dfn",
    "dialog",
    "dir",
    "div",
    "dl",
    "dt",
    "em",
    "embed",
    "fieldset",
    "figcaption",
    "figure",
    "font",
    "footer",
    "form",
    "frame",
    "frameset",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "header",
    "hr",
    "html",
    "i",
    "iframe",
    "ilayer",
    "img",
    "input",
    "ins",
    "isindex",
    "kbd",
    "keygen",
    "label",
    "layer",
    "legend",
    "li",
    "link",
    "listing",
    "main",
    "map",
    "mark",
    "marquee",
    "menu",
    "meta",
    "meter",
    "multicol",
    "nav",
    "nobr",
    "noembed",
    "noframes",
    "nolayer",
    "noscript",
    "object",
    "ol",
    "optgroup",
    "option",
    "output",
    "p",
    "param",
    "picture",
    "plaintext",
    "pre",
    "progress",
    "q",
    "rb",
    "rp",
    "rt",
    "rtc",
    "ruby",
    "s",
    "samp",
    "script",
    "section",
    "select",
    "small",
    "source",
    "spacer",
    "span",
    "strike",
    "strong",
    "style",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "template",
    "textarea",
    "tfoot",
    "th",
    "thead",
    "time",
    "title",
    "tr",
    "track",
    "tt",
    "u",
    "ul",
    "var",
    "video",
    "wbr",
    "xmp",
    "o:p",
];

/// Elements with no closing tag; they never unbalance.
const VOID: &[&str] = &[
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img", "input",
    "isindex", "keygen", "link", "meta", "param", "source", "spacer", "track", "wbr",
];

/// Elements whose content is not visible text (the title is kept apart, for `html_text_match`).
const INVISIBLE: &[&str] = &["script", "style", "head", "noscript", "xml"];

/// The summary of one or more HTML parts.
#[derive(Debug, Default, Clone)]
pub struct Html {
    /// Tag names seen (lower case).
    pub tags: BTreeSet<String>,
    /// Opening minus closing tags, per tag.
    pub balance: BTreeMap<String, i64>,
    /// The visible text.
    pub text: String,
    /// Number of tags, of tags SpamAssassin does not know, of closing tags with nothing open.
    pub tag_count: usize,
    pub bad_tags: usize,
    pub closed_extra: usize,
    /// Images and their summed area (width x height where given).
    pub images: usize,
    pub image_area: u64,
    /// The largest font size (1-7; `+N` is relative to 3).
    pub max_size: f64,
    /// Comments as written (`<!-- ... -->`, `<!...>`).
    pub comments: Vec<String>,
    pub title: String,
    /// Text inside links; an image inside a link adds `<img>`.
    pub anchor: String,
    /// Characters written as character references in the text, and all text characters.
    pub obfuscated_chars: usize,
    pub text_chars: usize,
    /// Named tests that hold (`html_test`): `embeds`, `font_face_bad`, `font_low_contrast`,
    /// `font_invalid_color`, `form_action_mailto`.
    pub tests: BTreeSet<&'static str>,
}

fn attrs(tag_body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = tag_body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        if start == i {
            i += 1;
            continue;
        }
        let name = tag_body[start..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let s = i + 1;
                i = s;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                value = tag_body.get(s..i).unwrap_or("").to_string();
                i += 1;
            } else {
                let s = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = tag_body.get(s..i).unwrap_or("").to_string();
            }
        }
        out.push((name, value));
    }
    out
}

/// Decodes character references, counting how many there were.
fn entities(text: &str, count: &mut usize) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        let end = rest[1..]
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '#')
            .map(|e| e + 1)
            .unwrap_or(rest.len());
        let name = &rest[1..end];
        let decoded = if let Some(n) = name.strip_prefix("#x").or(name.strip_prefix("#X")) {
            u32::from_str_radix(n, 16).ok().and_then(char::from_u32)
        } else if let Some(n) = name.strip_prefix('#') {
            n.parse::<u32>().ok().and_then(char::from_u32)
        } else {
            match name.to_ascii_lowercase().as_str() {
                "nbsp" => Some(' '),
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "copy" => Some('©'),
                "reg" => Some('®'),
                _ => None,
            }
        };
        match decoded {
            Some(c) if end > 1 => {
                if name.starts_with('#') {
                    *count += 1;
                }
                out.push(c);
                rest = &rest[end..];
                if rest.starts_with(';') {
                    rest = &rest[1..];
                }
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

fn colour(v: &str) -> Option<(u8, u8, u8)> {
    let v = v.trim().trim_start_matches('#');
    let named = match v.to_ascii_lowercase().as_str() {
        "white" => Some((255, 255, 255)),
        "black" => Some((0, 0, 0)),
        "red" => Some((255, 0, 0)),
        "blue" => Some((0, 0, 255)),
        "green" => Some((0, 128, 0)),
        "yellow" => Some((255, 255, 0)),
        "gray" | "grey" => Some((128, 128, 128)),
        "silver" => Some((192, 192, 192)),
        _ => None,
    };
    if named.is_some() {
        return named;
    }
    if v.len() == 6 && v.chars().all(|c| c.is_ascii_hexdigit()) {
        let p = |i: usize| u8::from_str_radix(&v[i..i + 2], 16).ok();
        return Some((p(0)?, p(2)?, p(4)?));
    }
    None
}

fn brightness((r, g, b): (u8, u8, u8)) -> f64 {
    (299.0 * r as f64 + 587.0 * g as f64 + 114.0 * b as f64) / 1000.0
}

impl Html {
    /// Adds one HTML part.
    pub fn add(&mut self, html: &str) {
        let mut rest = html;
        let mut hidden: Vec<String> = Vec::new();
        let mut in_anchor = 0usize;
        let mut in_title = false;
        let mut bg: Option<(u8, u8, u8)> = None;
        while !rest.is_empty() {
            let Some(lt) = rest.find('<') else {
                self.text_run(rest, &hidden, in_anchor > 0, in_title);
                break;
            };
            self.text_run(&rest[..lt], &hidden, in_anchor > 0, in_title);
            rest = &rest[lt..];
            if rest.starts_with("<!--") {
                let end = rest.find("-->").map(|e| e + 3).unwrap_or(rest.len());
                self.comments.push(rest[..end].to_string());
                rest = &rest[end..];
                continue;
            }
            if rest.starts_with("<!") || rest.starts_with("<?") {
                let end = rest.find('>').map(|e| e + 1).unwrap_or(rest.len());
                self.comments.push(rest[..end].to_string());
                rest = &rest[end..];
                continue;
            }
            let second = rest[1..].chars().next();
            if !second.is_some_and(|c| c.is_ascii_alphabetic() || c == '/') {
                // A lone '<' is text.
                self.text_run("<", &hidden, in_anchor > 0, in_title);
                rest = &rest[1..];
                continue;
            }
            let end = rest.find('>').map(|e| e + 1).unwrap_or(rest.len());
            let inner = rest[1..end].trim_end_matches('>');
            rest = &rest[end..];
            let closing = inner.starts_with('/');
            let inner = inner.trim_start_matches('/');
            let name_end = inner
                .find(|c: char| c.is_ascii_whitespace() || c == '/')
                .unwrap_or(inner.len());
            let name = inner[..name_end].to_ascii_lowercase();
            if name.is_empty() {
                continue;
            }
            self.tag_count += 1;
            if !KNOWN_TAGS.contains(&name.as_str()) {
                self.bad_tags += 1;
            }
            self.tags.insert(name.clone());
            if closing {
                let open = self.balance.entry(name.clone()).or_default();
                if *open <= 0 && !VOID.contains(&name.as_str()) {
                    self.closed_extra += 1;
                }
                *open -= 1;
                if let Some(p) = hidden.iter().rposition(|h| *h == name) {
                    hidden.truncate(p);
                }
                if name == "a" {
                    in_anchor = in_anchor.saturating_sub(1);
                }
                if name == "title" {
                    in_title = false;
                }
                continue;
            }
            if !VOID.contains(&name.as_str()) {
                *self.balance.entry(name.clone()).or_default() += 1;
            }
            let a = attrs(&inner[name_end..]);
            let attr = |k: &str| a.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            match name.as_str() {
                n if INVISIBLE.contains(&n) => hidden.push(name.clone()),
                "title" => in_title = true,
                "a" => in_anchor += 1,
                "img" => {
                    self.images += 1;
                    let dim = |k| {
                        attr(k)
                            .and_then(|v| v.trim().trim_end_matches("px").parse::<u64>().ok())
                            .unwrap_or(0)
                    };
                    self.image_area += dim("width").saturating_mul(dim("height"));
                    if in_anchor > 0 {
                        self.anchor.push_str("<img>");
                    }
                }
                "embed" | "object" | "applet" => {
                    self.tests.insert("embeds");
                }
                "body" => bg = attr("bgcolor").and_then(colour),
                "form"
                    if attr("action")
                        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("mailto:")) =>
                {
                    self.tests.insert("form_action_mailto");
                }
                "font" => {
                    if let Some(s) = attr("size") {
                        let s = s.trim();
                        let size = if let Some(r) = s.strip_prefix('+') {
                            r.parse::<f64>().map(|x| 3.0 + x).ok()
                        } else if let Some(r) = s.strip_prefix('-') {
                            r.parse::<f64>().map(|x| 3.0 - x).ok()
                        } else {
                            s.parse::<f64>().ok()
                        };
                        if let Some(v) = size {
                            self.max_size = self.max_size.max(v);
                        }
                    }
                    if let Some(face) = attr("face")
                        && face.split(',').any(|f| {
                            let f = f.trim().trim_matches('"');
                            !f.is_empty()
                                && !f
                                    .chars()
                                    .all(|c| c.is_ascii_alphanumeric() || " -_".contains(c))
                        })
                    {
                        self.tests.insert("font_face_bad");
                    }
                    if let Some(c) = attr("color") {
                        match colour(c) {
                            None if !c.trim().is_empty() => {
                                self.tests.insert("font_invalid_color");
                            }
                            Some(fg) => {
                                let back = bg.unwrap_or((255, 255, 255));
                                if (brightness(fg) - brightness(back)).abs() < 20.0 {
                                    self.tests.insert("font_low_contrast");
                                }
                            }
                            None => {}
                        }
                    }
                }
                _ => {}
            }
            if matches!(
                name.as_str(),
                "br" | "p" | "div" | "tr" | "li" | "td" | "table"
            ) {
                self.text.push('\n');
            }
        }
    }

    fn text_run(&mut self, raw: &str, hidden: &[String], anchor: bool, title: bool) {
        if raw.is_empty() {
            return;
        }
        let mut refs = 0;
        let t = entities(raw, &mut refs);
        if title {
            self.title.push_str(&t);
            return;
        }
        if !hidden.is_empty() {
            return;
        }
        self.obfuscated_chars += refs;
        self.text_chars += t.chars().filter(|c| !c.is_whitespace()).count();
        if anchor {
            self.anchor.push_str(&t);
        }
        self.text.push_str(&t);
    }

    /// A named figure for `html_range` / `html_eval`.
    pub fn figure(&self, name: &str) -> Option<f64> {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Some(match name {
            "length" => self.text_chars as f64,
            "max_size" => self.max_size,
            "bad_tag_ratio" => ratio(self.bad_tags, self.tag_count),
            "closed_extra_ratio" => ratio(self.closed_extra, self.tag_count),
            "obfuscation_ratio" => ratio(self.obfuscated_chars, self.text_chars),
            "image_area" => self.image_area as f64,
            _ => return None,
        })
    }

    /// The text `html_text_match` looks in: `comment`, `title`, `anchor`.
    pub fn text_of(&self, what: &str) -> Option<String> {
        Some(match what {
            "comment" => self.comments.join("\n"),
            "title" => self.title.clone(),
            "anchor" => self.anchor.clone(),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_the_eval_functions_ask() {
        let mut h = Html::default();
        h.add(
            "<html><head><title>Offer</title><style>p{}</style></head><body bgcolor=white>\
             <!-- saved from url=(0022) --><font size=+4 color=\"#fefefe\" face=\"@@\">Bu&#121; now</font>\
             <a href=x><img src=a width=10 height=20></a><blink>x</blink></center></body></html>",
        );
        assert!(h.tags.contains("head") && h.tags.contains("blink"));
        assert_eq!(h.balance["center"], -1);
        assert_eq!(h.closed_extra, 1);
        assert_eq!(h.balance["body"], 0);
        assert_eq!(h.title, "Offer");
        assert!(h.text.contains("Buy now") && !h.text.contains("p{}"));
        assert_eq!(h.image_area, 200);
        assert_eq!(h.anchor, "<img>");
        assert_eq!(h.max_size, 7.0);
        assert!(h.tests.contains("font_low_contrast") && h.tests.contains("font_face_bad"));
        assert_eq!(h.comments.len(), 1);
        assert!(h.figure("obfuscation_ratio").unwrap() > 0.1);
    }
}
