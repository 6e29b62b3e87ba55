//! What SpamAssassin's HTML eval functions (`html_test`, `html_range`, `html_eval`,
//! `html_tag_exists`, `html_tag_balance`, `html_text_match`, `html_image_only`,
//! `html_image_ratio`) ask about one HTML part, with SpamAssassin's meaning: tags seen and
//! left open (never below zero; a close with nothing open counts as `closed_extra`), known
//! and unknown tags, the source length, the rendered text, images and their area (200 pixels
//! a side when not given, percentages of an 800x600 screen), the largest font size, font faces
//! and colours of text actually shown, words split by tags (`obfuscation`), comments, title and
//! link texts.
//!
//! A small tokenizer rather than a DOM crate: these are counts over the tag stream, which is
//! what SpamAssassin's own parser produces too, and broken HTML (the spammer's kind) must
//! still give an answer.

mod colour;
mod entities;
mod tags;

use colour::{Colour, colour, low_contrast};
use entities::entities;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;
use tags::{INVISIBLE, KNOWN_TAGS, VOID, attrs, whitespace_of};

/// Links kept with their text per HTML part: enough for any real message; a page of more
/// links gains nothing from the tests that read them.
pub const MAX_LINKS: usize = 1000;

/// The summary of one HTML part.
#[derive(Debug, Default, Clone)]
pub struct Html {
    /// Tags seen, opening or closing (lower case): `html_tag_exists`.
    pub tags: BTreeSet<String>,
    /// Tags still open at the end, never below zero: `html_tag_balance`.
    pub inside: BTreeMap<String, i64>,
    /// The rendered (visible) text.
    pub text: String,
    /// Bytes of HTML source (SpamAssassin's `length`).
    pub source_len: usize,
    /// Tags, tags SpamAssassin knows as elements, distinct tags and distinct known ones,
    /// closing tags with nothing open, words split by a tag.
    pub tag_count: usize,
    pub element_count: usize,
    pub tags_seen: usize,
    pub elements_seen: usize,
    pub closed_extra: usize,
    pub obfuscation: usize,
    /// An `img` tag appeared; the summed area of those with width and height.
    pub has_img: bool,
    pub image_area: u64,
    /// The largest font size (1-7, starts at 3; `+N` is relative to 3).
    pub max_size: f64,
    /// Comments as written (`<!-- ... -->`, `<!...>`).
    pub comments: Vec<String>,
    pub title: String,
    /// Text inside links; an image inside a link adds `<img>`.
    pub anchor: String,
    /// Each link's target and the text inside it, in order (at most [`MAX_LINKS`]).
    pub links: Vec<(String, String)>,
    /// Named tests that hold (`html_test`): `embeds`, `font_face_bad`, `font_low_contrast`,
    /// `font_invalid_color`, `form_action_mailto`.
    pub tests: BTreeSet<&'static str>,
}

/// The text style in force: what `<font>`, `<body>` and table cells set.
#[derive(Debug, Clone, Copy)]
struct Style {
    fg: Colour,
    bg: Colour,
}

/// SpamAssassin's font-face test: names of letters, spaces and dashes, a digit at the end,
/// quoted or not, separated by commas.
static GOOD_FACE: LazyLock<Regex> = LazyLock::new(|| {
    crate::spam::builtin_regex(
        r#"(?i)^\s*["'.]?[a-z ][a-z -]*[a-z]\d?["']?(?:,\s*["']?[a-z][a-z -]*[a-z]\d?["']?)*;?$"#,
    )
});

/// Letters and digits (not white space, not ASCII punctuation): a tag between two of these
/// splits a word.
fn wordish(c: char) -> bool {
    !c.is_whitespace() && !c.is_ascii_punctuation()
}

/// The parser's running state.
struct Cursor {
    hidden: Vec<String>,
    anchors: usize,
    in_title: bool,
    /// (tag, style) pushed by tags that set colours.
    styles: Vec<(String, Style)>,
    /// The last text chunk ended inside a word.
    last_wordish: bool,
    /// What was rendered last: SpamAssassin trims the space between a text run and the
    /// white space a tag stands for.
    last: Last,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Last {
    Nothing,
    Text { invisible: bool },
    TagSpace,
}

/// Tags that open a text style (SpamAssassin's list); a closing tag ends its style and those
/// opened after it.
const TEXT_STYLE: &[&str] = &[
    "body", "font", "table", "tr", "th", "td", "big", "small", "basefont", "marquee", "span", "p",
    "div", "a",
];

impl Cursor {
    /// Opens a style for `tag`: the current one, changed by the colours the tag may set.
    /// As in SpamAssassin, a `bgcolor` attribute changes nothing (only CSS backgrounds do),
    /// and a new cell or row first ends the open fonts and cells (and rows).
    fn open_style(&mut self, tag: &str, attrs: &[(String, String)]) {
        let tag = if tag == "th" { "td" } else { tag };
        if (tag == "td" || tag == "tr") && self.styles.iter().any(|(t, _)| t == tag) {
            while let Some((top, _)) = self.styles.last() {
                let closes = match tag {
                    "td" => top == "font" || top == "td",
                    _ => top == "font" || top == "td" || top == "tr",
                };
                if !closes {
                    break;
                }
                self.styles.pop();
            }
        }
        let parent = self.style();
        let mut st = parent;
        let attr = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let colour_attr = match tag {
            "font" | "basefont" => attr("color"),
            "body" => attr("text"),
            _ => None,
        };
        if let Some(c) = colour_attr {
            st.fg = colour(c);
        }
        if matches!(tag, "table" | "td" | "tr" | "span" | "p" | "div" | "a")
            && let Some(css) = attr("style")
        {
            for decl in css.split(';') {
                let Some((prop, value)) = decl.split_once(':') else {
                    continue;
                };
                let value = value.trim().to_ascii_lowercase();
                let value = value.trim_end_matches("!important").trim();
                let c = match value {
                    "inherit" => continue,
                    "transparent" => None,
                    v => Some(colour(v)),
                };
                match prop.trim().to_ascii_lowercase().as_str() {
                    "color" => st.fg = c.unwrap_or(st.bg),
                    "background-color" => st.bg = c.unwrap_or(parent.bg),
                    "background" => {
                        if let Some(c) = value
                            .split_whitespace()
                            .map(colour)
                            .find(|c| *c != Colour::Invalid)
                        {
                            st.bg = c;
                        }
                    }
                    _ => {}
                }
            }
        }
        self.styles.push((tag.to_string(), st));
    }

    fn style(&self) -> Style {
        self.styles.last().map(|(_, s)| *s).unwrap_or(Style {
            fg: Colour::Rgb(0, 0, 0),
            bg: Colour::Rgb(255, 255, 255),
        })
    }
}

impl Html {
    /// Parses one HTML part.
    pub fn parse(html: &str) -> Html {
        let mut h = Html {
            source_len: html.len(),
            max_size: 3.0,
            ..Html::default()
        };
        let mut cur = Cursor {
            hidden: Vec::new(),
            anchors: 0,
            in_title: false,
            styles: Vec::new(),
            last_wordish: false,
            last: Last::Nothing,
        };
        let mut rest = html;
        while !rest.is_empty() {
            let Some(lt) = rest.find('<') else {
                h.text_run(rest, &mut cur);
                break;
            };
            h.text_run(&rest[..lt], &mut cur);
            rest = &rest[lt..];
            if rest.starts_with("<!--") {
                // As HTML::Parser (SpamAssassin's): to `-->`, or with none anywhere after,
                // to the first `>`. Running to the end instead would hide the rest of the
                // message from the body rules behind one `<!--`.
                let end = rest
                    .find("-->")
                    .map(|e| e + 3)
                    .or_else(|| rest.find('>').map(|e| e + 1))
                    .unwrap_or(rest.len());
                h.comments.push(rest[..end].to_string());
                rest = &rest[end..];
                continue;
            }
            if rest.starts_with("<!") || rest.starts_with("<?") {
                let end = rest.find('>').map(|e| e + 1).unwrap_or(rest.len());
                if rest[..end].to_ascii_lowercase().starts_with("<!doctype") {
                    h.tag_count += 1;
                    h.element_count += 1;
                } else {
                    h.comments.push(rest[..end].to_string());
                }
                rest = &rest[end..];
                continue;
            }
            let second = rest[1..].chars().next();
            if !second.is_some_and(|c| c.is_ascii_alphabetic() || c == '/') {
                // A lone '<' is text.
                h.text_run("<", &mut cur);
                rest = &rest[1..];
                continue;
            }
            let end = rest.find('>').map(|e| e + 1).unwrap_or(rest.len());
            let inner = rest[1..end].trim_end_matches('>');
            rest = &rest[end..];
            h.tag(inner, &mut cur);
        }
        h
    }

    fn tag(&mut self, inner: &str, cur: &mut Cursor) {
        let closing = inner.starts_with('/');
        let inner = inner.trim_start_matches('/');
        let name_end = inner
            .find(|c: char| c.is_ascii_whitespace() || c == '/')
            .unwrap_or(inner.len());
        let name = inner[..name_end].to_ascii_lowercase();
        if name.is_empty() {
            return;
        }
        let known = KNOWN_TAGS.contains(&name.as_str());
        let first_time = !self.tags.contains(&name);
        self.tag_count += 1;
        self.element_count += usize::from(known);
        self.tags_seen += usize::from(first_time);
        self.elements_seen += usize::from(first_time && known);
        self.tags.insert(name.clone());
        let ws = whitespace_of(&name);
        if !ws.is_empty() {
            if cur.last == (Last::Text { invisible: false }) && self.text.ends_with(' ') {
                self.text.pop();
            }
            self.text.push_str(ws);
            cur.last_wordish = false;
            cur.last = Last::TagSpace;
        }
        let open = self.inside.entry(name.clone()).or_default();
        if closing {
            *open -= 1;
            if *open < 0 {
                *open = 0;
                self.closed_extra += 1;
            }
            if let Some(p) = cur.hidden.iter().rposition(|t| *t == name) {
                cur.hidden.truncate(p);
            }
            // Browsers keep rendering after </body>; SpamAssassin keeps its style too.
            let style_tag = if name == "th" { "td" } else { name.as_str() };
            if name != "body"
                && let Some(p) = cur.styles.iter().rposition(|(t, _)| t == style_tag)
            {
                cur.styles.truncate(p);
            }
            match name.as_str() {
                "a" => cur.anchors = cur.anchors.saturating_sub(1),
                "title" => cur.in_title = false,
                _ => {}
            }
            return;
        }
        if !VOID.contains(&name.as_str()) {
            *open += 1;
        }
        let a = attrs(&inner[name_end..]);
        let attr = |k: &str| a.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        match name.as_str() {
            n if INVISIBLE.contains(&n) => cur.hidden.push(name.clone()),
            "title" => cur.in_title = true,
            "a" => {
                cur.anchors += 1;
                if let Some(href) = attr("href")
                    && self.links.len() < MAX_LINKS
                {
                    self.links.push((href.trim().to_string(), String::new()));
                }
            }
            "img" => self.image(cur, attr("width"), attr("height")),
            "embed" | "object" => {
                self.tests.insert("embeds");
            }
            "form"
                if attr("action").is_some_and(|v| v.to_ascii_lowercase().contains("mailto:")) =>
            {
                self.tests.insert("form_action_mailto");
            }
            _ => {}
        }
        if matches!(name.as_str(), "font" | "basefont") {
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
                && !GOOD_FACE.is_match(face)
            {
                self.tests.insert("font_face_bad");
            }
        }
        if TEXT_STYLE.contains(&name.as_str()) {
            cur.open_style(&name, &a);
        }
    }

    /// An `img`: counted, marked in the link text it stands in, its area summed (a size
    /// that is missing or 0 counts as 200, a percentage of an 800 x 600 window).
    fn image(&mut self, cur: &Cursor, width: Option<&str>, height: Option<&str>) {
        self.has_img = true;
        if cur.anchors > 0 {
            self.anchor.push_str("<img>\n");
        }
        if let (Some(w), Some(ht)) = (width, height) {
            let dim = |v: &str, pct: u64| {
                let v = v.trim();
                let (num, is_pct) = match v.strip_suffix('%') {
                    Some(n) => (n, true),
                    None => (v, false),
                };
                match num.parse::<u64>() {
                    Ok(0) | Err(_) => 200,
                    Ok(n) if is_pct => n * pct,
                    Ok(n) => n,
                }
            };
            self.image_area += dim(w, 8).saturating_mul(dim(ht, 6));
        }
    }

    fn text_run(&mut self, raw: &str, cur: &mut Cursor) {
        if raw.is_empty() {
            return;
        }
        let mut refs = 0;
        let t = entities(raw, &mut refs);
        if cur.anchors > 0 {
            self.anchor.push_str(&t);
            if let Some((_, text)) = self.links.last_mut() {
                text.push_str(&t);
            }
        }
        if cur.in_title {
            self.title.push_str(&t);
        }
        if !cur.hidden.is_empty() {
            return;
        }
        // Text in a colour that cannot be seen (or cannot be read) is not rendered.
        let mut invisible = false;
        if t.chars().any(|c| !c.is_whitespace()) {
            let st = cur.style();
            match (st.fg, st.bg) {
                (Colour::Invalid, _) | (_, Colour::Invalid) => {
                    self.tests.insert("font_invalid_color");
                    invisible = true;
                }
                (Colour::Rgb(a, b, c), Colour::Rgb(x, y, z)) => {
                    if low_contrast((a, b, c), (x, y, z)) {
                        self.tests.insert("font_low_contrast");
                        invisible = true;
                    }
                }
            }
        }
        if cur.last_wordish && t.chars().next().is_some_and(wordish) {
            self.obfuscation += 1;
        }
        cur.last_wordish = t.chars().last().is_some_and(wordish);
        // Rendered all the same: SpamAssassin's body rules read every text run, the
        // invisible ones included (its `rendered`; only Bayes tells them apart). Runs of
        // white space (line breaks of the source, no-break spaces) are one space; only tags
        // break lines.
        let mut run = String::with_capacity(t.len());
        for c in t.chars() {
            if matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{c}' | '\u{b}' | '\u{a0}') {
                if !run.ends_with(' ') {
                    run.push(' ');
                }
            } else {
                run.push(c);
            }
        }
        let run = if cur.last == Last::TagSpace && !invisible {
            run.strip_prefix(' ').unwrap_or(&run)
        } else {
            &run
        };
        self.text.push_str(run);
        cur.last = Last::Text { invisible };
    }

    /// Non-white-space characters of the rendered text.
    pub fn non_space_len(&self) -> usize {
        self.text.chars().filter(|c| !c.is_whitespace()).count()
    }

    /// A named figure for `html_range` / `html_eval`.
    pub fn figure(&self, name: &str) -> Option<f64> {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Some(match name {
            "length" => self.source_len as f64,
            "max_size" => self.max_size,
            "bad_tag_ratio" => ratio(self.tag_count - self.element_count, self.tag_count),
            "non_element_ratio" => ratio(self.tags_seen - self.elements_seen, self.tags_seen),
            "closed_extra_ratio" => ratio(self.closed_extra, self.tag_count),
            "obfuscation_ratio" => ratio(self.obfuscation, self.tag_count),
            "image_area" => self.image_area as f64,
            "non_space_len" => self.non_space_len() as f64,
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
    fn an_unterminated_comment_hides_nothing() {
        // HTML::Parser's reading: with no `-->` anywhere after it, `<!--` ends at `>`.
        let h = Html::parse("<p>a <!--#rotate>b <b>c</b> d");
        assert_eq!(h.comments, ["<!--#rotate>"]);
        assert!(h.text.contains("b c d"), "{:?}", h.text);
        // With one later, everything up to it is the comment.
        let h = Html::parse("<p>a <!--#rotate>b <b>c</b> d -->e");
        assert!(
            !h.text.contains('c') && h.text.contains('e'),
            "{:?}",
            h.text
        );
    }

    #[test]
    fn counts_what_the_eval_functions_ask() {
        let h = Html::parse(
            "<html><head><title>Offer</title><style>p{}</style></head><body bgcolor=white>\
             <!-- saved from url=(0022) --><font size=+4 face=Arial, Helvetica>Bu<b>y</b> now</font>\
             <font color=\"#fefefe\">hidden</font><font color=000000>bad</font>\
             <a href=x><img src=a width=10 height=20></a><xyz>x</xyz></center></body></html>",
        );
        assert!(h.tags.contains("head") && h.tags.contains("xyz") && h.tags.contains("center"));
        assert_eq!(h.inside["center"], 0, "never below zero");
        assert_eq!(h.closed_extra, 1);
        assert_eq!(h.inside["body"], 0);
        assert_eq!(h.title, "Offer");
        assert!(h.text.contains("Buy now") && !h.text.contains("p{}"));
        assert_eq!(h.image_area, 200);
        assert_eq!(h.anchor, "<img>\n");
        assert_eq!(h.max_size, 7.0);
        // Bu<b>y, now</font><font>hidden, hidden</font><font>bad, bad ... <blink>x.
        assert_eq!(h.obfuscation, 4);
        for t in ["font_low_contrast", "font_face_bad", "font_invalid_color"] {
            assert!(h.tests.contains(t), "{t}: {:?}", h.tests);
        }
        assert_eq!(h.comments.len(), 1);
        assert!(h.figure("bad_tag_ratio").unwrap() > 0.0);
        assert_eq!(h.figure("length").unwrap(), h.source_len as f64);
        assert_eq!(colour("#FFF"), Colour::Rgb(255, 255, 255));
        assert_eq!(colour("rgb(1, 2, 300)"), Colour::Rgb(1, 2, 255));
        assert_eq!(colour("ffffff"), Colour::Invalid);
        assert!(GOOD_FACE.is_match("\"Tahoma\", Verdana, Arial, sans-serif"));
        assert!(!GOOD_FACE.is_match("Arial,"));
    }

    #[test]
    fn text_is_rendered_as_spamassassin_renders_it() {
        // Source line breaks are one space; a form laid out in a table is one paragraph.
        let form = "<table><tr>\n  <td><font color=#ffffff>Name:</font></td>\n  \
                    <td><input></td></tr>\n<tr>\n  <td>City:</td></tr></table>";
        let h = Html::parse(form);
        assert!(!h.text.contains('\n'), "{:?}", h.text);
        let words: Vec<&str> = h.text.split_whitespace().collect();
        assert_eq!(words, ["Name:", "City:"]);
        // White text on white is low contrast, and still rendered (SpamAssassin's body rules
        // read it; only Bayes sets it apart).
        assert!(h.tests.contains("font_low_contrast"));
        // Tags that break lines still do; a no-break space is a space.
        let p = Html::parse("<p>one&nbsp;&nbsp;two</p><br>three");
        assert_eq!(p.text.trim(), "one two\n\n\nthree");
    }
}
