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

use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

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

/// Elements whose content is not rendered (SpamAssassin shows the title, and everything
/// else, in the body text).
const INVISIBLE: &[&str] = &["script", "style"];

/// The white space a tag stands for in the rendered text, opening or closing (SpamAssassin's
/// rendering: line breaks, paragraph breaks, cell separators).
fn whitespace_of(tag: &str) -> &'static str {
    match tag {
        "br" | "div" => "\n",
        "li" | "th" | "td" | "dt" | "dd" | "embed" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => " ",
        "p" | "hr" | "blockquote" | "pre" | "listing" | "plaintext" | "xmp" | "title" => "\n\n",
        _ => "",
    }
}

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
    /// Named tests that hold (`html_test`): `embeds`, `font_face_bad`, `font_low_contrast`,
    /// `font_invalid_color`, `form_action_mailto`.
    pub tests: BTreeSet<&'static str>,
}

/// A colour as SpamAssassin reads one: a name, `#rgb`/`#rrggbb` (other lengths cut or
/// padded), `rgb(r,g,b)`; anything else is invalid.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Colour {
    Rgb(u8, u8, u8),
    Invalid,
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

/// Colour names browsers know (the HTML 4 set and the common CSS ones).
const NAMED: &[(&str, u32)] = &[
    ("black", 0x000000),
    ("silver", 0xc0c0c0),
    ("gray", 0x808080),
    ("grey", 0x808080),
    ("white", 0xffffff),
    ("maroon", 0x800000),
    ("red", 0xff0000),
    ("purple", 0x800080),
    ("fuchsia", 0xff00ff),
    ("magenta", 0xff00ff),
    ("green", 0x008000),
    ("lime", 0x00ff00),
    ("olive", 0x808000),
    ("yellow", 0xffff00),
    ("navy", 0x000080),
    ("blue", 0x0000ff),
    ("teal", 0x008080),
    ("aqua", 0x00ffff),
    ("cyan", 0x00ffff),
    ("orange", 0xffa500),
    ("darkblue", 0x00008b),
    ("darkred", 0x8b0000),
    ("darkgreen", 0x006400),
    ("darkgray", 0xa9a9a9),
    ("darkgrey", 0xa9a9a9),
    ("lightgray", 0xd3d3d3),
    ("lightgrey", 0xd3d3d3),
    ("dimgray", 0x696969),
    ("dimgrey", 0x696969),
    ("gainsboro", 0xdcdcdc),
    ("whitesmoke", 0xf5f5f5),
    ("pink", 0xffc0cb),
    ("brown", 0xa52a2a),
    ("gold", 0xffd700),
    ("beige", 0xf5f5dc),
    ("ivory", 0xfffff0),
    ("tan", 0xd2b48c),
    ("khaki", 0xf0e68c),
    ("violet", 0xee82ee),
    ("indigo", 0x4b0082),
    ("crimson", 0xdc143c),
    ("coral", 0xff7f50),
    ("salmon", 0xfa8072),
    ("orangered", 0xff4500),
    ("darkorange", 0xff8c00),
    ("midnightblue", 0x191970),
    ("steelblue", 0x4682b4),
    ("royalblue", 0x4169e1),
    ("skyblue", 0x87ceeb),
    ("lightblue", 0xadd8e6),
    ("lightyellow", 0xffffe0),
    ("lightsteelblue", 0xb0c4de),
    ("forestgreen", 0x228b22),
    ("seagreen", 0x2e8b57),
    ("darkslategray", 0x2f4f4f),
    ("darkslategrey", 0x2f4f4f),
    ("slategray", 0x708090),
    ("slategrey", 0x708090),
    ("firebrick", 0xb22222),
    ("darkviolet", 0x9400d3),
    ("chocolate", 0xd2691e),
    ("tomato", 0xff6347),
    ("limegreen", 0x32cd32),
    ("yellowgreen", 0x9acd32),
    ("lightgreen", 0x90ee90),
    ("darkcyan", 0x008b8b),
    ("cornflowerblue", 0x6495ed),
    ("dodgerblue", 0x1e90ff),
    ("deepskyblue", 0x00bfff),
    ("lavender", 0xe6e6fa),
    ("linen", 0xfaf0e6),
    ("snow", 0xfffafa),
    ("honeydew", 0xf0fff0),
    ("azure", 0xf0ffff),
    ("aliceblue", 0xf0f8ff),
    ("mintcream", 0xf5fffa),
    ("ghostwhite", 0xf8f8ff),
    ("floralwhite", 0xfffaf0),
    ("oldlace", 0xfdf5e6),
    ("seashell", 0xfff5ee),
    ("cornsilk", 0xfff8dc),
    ("lemonchiffon", 0xfffacd),
    ("wheat", 0xf5deb3),
    ("darkkhaki", 0xbdb76b),
    ("goldenrod", 0xdaa520),
    ("peru", 0xcd853f),
    ("sienna", 0xa0522d),
    ("saddlebrown", 0x8b4513),
    ("hotpink", 0xff69b4),
    ("deeppink", 0xff1493),
    ("orchid", 0xda70d6),
    ("plum", 0xdda0dd),
    ("thistle", 0xd8bfd8),
    ("turquoise", 0x40e0d0),
    ("aquamarine", 0x7fffd4),
    ("darkmagenta", 0x8b008b),
    ("mediumblue", 0x0000cd),
    ("blueviolet", 0x8a2be2),
    ("cadetblue", 0x5f9ea0),
];

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

fn colour(v: &str) -> Colour {
    let c = v.trim().to_ascii_lowercase();
    if let Some((_, hex)) = NAMED.iter().find(|(n, _)| *n == c) {
        return Colour::Rgb((hex >> 16) as u8, (hex >> 8) as u8, *hex as u8);
    }
    if let Some(inner) = c.strip_prefix("rgb(").and_then(|r| r.strip_suffix(')')) {
        let n: Vec<u8> = inner
            .split(',')
            .filter_map(|x| x.trim().trim_end_matches('%').parse::<u32>().ok())
            .map(|x| x.min(255) as u8)
            .collect();
        return match n[..] {
            [r, g, b] => Colour::Rgb(r, g, b),
            _ => Colour::Invalid,
        };
    }
    // Hex without '#' is invalid, as in SpamAssassin (browsers disagree).
    let Some(hex) = c.strip_prefix('#') else {
        return Colour::Invalid;
    };
    let mut h: String = hex.chars().filter(char::is_ascii_hexdigit).collect();
    if h.len() > 6 {
        h.truncate(6);
    }
    if h.len() > 3 && h.len() < 6 {
        h.truncate(3);
    }
    while !h.len().is_multiple_of(3) || h.is_empty() {
        h.push('0');
    }
    if h.len() == 3 {
        h = h.chars().flat_map(|x| [x, x]).collect();
    }
    let p = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).unwrap_or(0);
    Colour::Rgb(p(0), p(2), p(4))
}

/// SpamAssassin's near-invisibility: the same colour, or a brightness-weighted distance
/// under 12.
fn low_contrast(fg: (u8, u8, u8), bg: (u8, u8, u8)) -> bool {
    let d = |a: u8, b: u8| a as f64 - b as f64;
    let dist = ((0.2126 * d(fg.0, bg.0)).powi(2)
        + (0.7152 * d(fg.1, bg.1)).powi(2)
        + (0.0722 * d(fg.2, bg.2)).powi(2))
    .sqrt();
    dist < 12.0
}

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
                let end = rest.find("-->").map(|e| e + 3).unwrap_or(rest.len());
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
            self.text.push_str(ws);
            cur.last_wordish = false;
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
            "a" => cur.anchors += 1,
            "img" => {
                self.has_img = true;
                if cur.anchors > 0 {
                    self.anchor.push_str("<img>\n");
                }
                if let (Some(w), Some(ht)) = (attr("width"), attr("height")) {
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

    fn text_run(&mut self, raw: &str, cur: &mut Cursor) {
        if raw.is_empty() {
            return;
        }
        let mut refs = 0;
        let t = entities(raw, &mut refs);
        if cur.anchors > 0 {
            self.anchor.push_str(&t);
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
        if !invisible {
            self.text.push_str(&t);
        }
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
}
