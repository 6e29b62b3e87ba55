//! The tag tables SpamAssassin's HTML tests use, and a tag's attributes read as browsers
//! read them (quoted or not, names lower-cased).

/// Tags SpamAssassin knows; others count towards `bad_tag_ratio`.
pub(super) const KNOWN_TAGS: &[&str] = &[
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
pub(super) const VOID: &[&str] = &[
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img", "input",
    "isindex", "keygen", "link", "meta", "param", "source", "spacer", "track", "wbr",
];

/// Elements whose content is not rendered (SpamAssassin shows the title, and everything
/// else, in the body text).
pub(super) const INVISIBLE: &[&str] = &["script", "style"];

/// The white space a tag stands for in the rendered text, opening or closing (SpamAssassin's
/// rendering: line breaks, paragraph breaks, cell separators).
pub(super) fn whitespace_of(tag: &str) -> &'static str {
    match tag {
        "br" | "div" => "\n",
        "li" | "th" | "td" | "dt" | "dd" | "embed" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => " ",
        "p" | "hr" | "blockquote" | "pre" | "listing" | "plaintext" | "xmp" | "title" => "\n\n",
        _ => "",
    }
}

/// A tag's attributes, `(name, value)`, in order.
pub(super) fn attrs(tag_body: &str) -> Vec<(String, String)> {
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
