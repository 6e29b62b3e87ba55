//! Charsets against the site's `ok_locales` (SpamAssassin's Locales and the "faraway
//! charset" tests of MIMEEval and HTMLEval). With the default, `ok_locales all`, no charset
//! is far away and these tests never hit.

use super::{Ctx, Func};

pub(super) fn lookup(name: &str) -> Option<Func> {
    Some(match name {
        "check_for_faraway_charset" => faraway_charset,
        "check_for_faraway_charset_in_headers" => faraway_in_headers,
        "html_charset_faraway" => html_faraway,
        _ => return None,
    })
}

/// The charsets each language may use beyond the ones every locale accepts.
const FOR_LOCALE: &[(&str, &str)] = &[
    (
        "ja",
        "EUCJP JISX020119760 JISX020819830 JISX020819900 JISX020819970 JISX021219900 \
         JISX021320001 JISX021320002 SHIFT_JIS SHIFTJIS ISO2022JP SJIS JIS7 JISX0201 JISX0208 \
         JISX0212",
    ),
    ("ko", "EUCKR KSC56011987"),
    ("ru", CYRILLIC),
    ("ka", CYRILLIC),
    ("tg", CYRILLIC),
    ("be", CYRILLIC),
    ("uk", CYRILLIC),
    ("bg", CYRILLIC),
    ("th", "TIS620"),
    (
        "zh",
        "GB1988 GB2312 GB231219800 GB18030 GBK BIG5HKSCS BIG5 EUCTW ISO2022CN",
    ),
];
const CYRILLIC: &str = "KOI8R KOI8U KOI8T ISOIR111 CP1251 GEORGIANPS PT154 CP866";

/// The locales the site accepts; `None` when it accepts all (the default).
fn locales(ctx: &Ctx) -> Option<Vec<String>> {
    let l = ctx.lists.get("ok_locales")?;
    (!l.is_empty() && !l.contains("all")).then(|| l.iter().cloned().collect())
}

/// Whether text in `charset` suits one of `locales`.
pub fn charset_ok(charset: &str, locales: &[String]) -> bool {
    let mut cs: String = charset
        .to_ascii_uppercase()
        .split(':')
        .next()
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    // Broken by quoted-printable (`=3Dutf-8`).
    if let Some(rest) = cs.strip_prefix("3D") {
        cs = rest.to_string();
    }
    let everywhere = ["USASCII", "ASCII", "IBM852", "XUNKNOWN", "ISO"].contains(&cs.as_str())
        || [
            "ISO8859",
            "ISO10646",
            "UTF",
            "UCS",
            "CP125",
            "WINDOWS",
            "UNICODE11UTF7",
            "UNICODE11UTF8",
        ]
        .iter()
        .any(|p| cs.starts_with(p));
    everywhere
        || locales.iter().any(|l| {
            let lang: String = l.chars().take(2).collect::<String>().to_ascii_lowercase();
            let lang = if lang == "c" { "en".to_string() } else { lang };
            FOR_LOCALE
                .iter()
                .any(|(loc, list)| *loc == lang && list.split_whitespace().any(|c| c == cs))
        })
}

/// The body in a far charset (the message's Content-Type), mostly in non-ASCII letters.
fn faraway_charset(ctx: &Ctx, _: &[String]) -> bool {
    let Some(locales) = locales(ctx) else {
        return false;
    };
    let charset = ctx
        .view
        .parts
        .first()
        .map(|p| p.charset.as_str())
        .unwrap_or("");
    if charset.is_empty() || charset_ok(charset, &locales) {
        return false;
    }
    let (mut high, mut low) = (0usize, 0usize);
    for c in ctx.view.body.iter().flat_map(|p| p.chars()) {
        if c.is_ascii() { low += 1 } else { high += 1 }
    }
    low <= high && high > 3
}

/// An encoded word in From or Subject in a far charset.
fn faraway_in_headers(ctx: &Ctx, _: &[String]) -> bool {
    let Some(locales) = locales(ctx) else {
        return false;
    };
    ["From", "Subject"].iter().any(|h| {
        let v = ctx.view.headers.raw_values(h).join(" ");
        v.split("=?")
            .skip(1)
            .filter_map(|w| w.split_once('?').map(|(cs, _)| cs))
            .any(|cs| !charset_ok(cs, &locales))
    })
}

/// An HTML part in a far charset (the part's MIME charset: our HTML reader does not keep
/// `<meta>` charsets).
fn html_faraway(ctx: &Ctx, _: &[String]) -> bool {
    let Some(locales) = locales(ctx) else {
        return false;
    };
    ctx.view
        .parts
        .iter()
        .filter(|p| p.content_type == "text/html" && !p.charset.is_empty())
        .any(|p| !charset_ok(&p.charset, &locales))
}

/// Some part in a far charset (`check_for_mime('mime_faraway_charset')`).
pub(super) fn any_part_faraway(ctx: &Ctx) -> bool {
    locales(ctx).is_some_and(|l| {
        ctx.view.parts.iter().any(|p| {
            p.charset.chars().any(|c| c.is_ascii_alphabetic()) && !charset_ok(&p.charset, &l)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charsets_by_locale() {
        let en = vec!["en".to_string()];
        let ja = vec!["ja_JP".to_string()];
        assert!(charset_ok("utf-8", &en) && charset_ok("ISO-8859-1", &en));
        assert!(charset_ok("windows-1252", &en) && charset_ok("=3Dus-ascii", &en));
        assert!(!charset_ok("shift_jis", &en) && charset_ok("shift_jis", &ja));
        assert!(!charset_ok("koi8-r", &en) && !charset_ok("euc-kr", &ja));
    }
}
