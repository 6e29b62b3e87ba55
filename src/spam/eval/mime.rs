//! Eval functions over the MIME structure and the body text (SpamAssassin's MIMEEval,
//! BodyEval and ImageInfo counts).

use super::{Ctx, Func, num};
use crate::spam::view::Part;

pub(super) fn lookup(name: &str) -> Option<Func> {
    Some(match name {
        "check_for_mime" => check_for_mime,
        "check_for_mime_html" => |c, _| c.view.has_html,
        "check_for_ascii_text_illegal" => |c, _| c.view.parts.iter().any(|p| p.ascii_illegal),
        "check_for_mime_html_only" => |c, _| c.view.has_html && !c.view.has_text_plain,
        "check_msg_parse_flags" => parse_flags,
        "image_count" => image_count,
        "check_body_length" => body_length,
        "check_for_uppercase" => uppercase,
        "check_base64_length" => base64_length,
        "check_abundant_unicode_ratio" => abundant_unicode,
        "check_mime_multipart_ratio" => multipart_ratio,
        "multipart_alternative_difference" => alternative_difference,
        "multipart_alternative_difference_count" => alternative_difference_count,
        "tvd_vertical_words" => vertical_words,
        "pixel_coverage" => pixel_coverage,
        "image_to_text_ratio" => image_to_text_ratio,
        _ => return None,
    })
}

/// SpamAssassin's MIME counters and flags.
fn check_for_mime(ctx: &Ctx, args: &[String]) -> bool {
    let parts = &ctx.view.parts;
    let text = |p: &&super::super::view::Part| p.content_type.starts_with("text/");
    match args.first().map(String::as_str).unwrap_or("") {
        "mime_attachment" => parts.iter().any(|p| p.attachment),
        "mime_qp_count" => parts.iter().any(|p| p.encoding == "quoted-printable"),
        "mime_qp_long_line" => parts.iter().any(|p| p.qp_long_line),
        "mime_base64_count" => parts.iter().any(|p| p.encoding == "base64"),
        "mime_body_html_count" => parts.iter().any(|p| p.content_type == "text/html"),
        "mime_body_text_count" => parts
            .iter()
            .filter(text)
            .any(|p| p.content_type == "text/plain"),
        "mime_bad_iso_charset" => parts.iter().any(|p| {
            p.charset.starts_with("iso-")
                && !p.charset.starts_with("iso-8859-")
                && !p.charset.starts_with("iso-2022-")
        }),
        "mimepart_limit_exceeded" => parts.len() > 1000,
        "mime_base64_encoded_text" => parts.iter().any(base64_encoded_text),
        "mime_faraway_charset" => super::locales::any_part_faraway(ctx),
        _ => false,
    }
}

/// Only `mime_epilogue_exists` is detected (text after the final boundary); the other flags
/// (`missing_mime_headers`, `missing_mime_head_body_separator`, `truncated`) never hold.
fn parse_flags(ctx: &Ctx, args: &[String]) -> bool {
    args.first().is_some_and(|a| a == "mime_epilogue_exists") && ctx.view.epilogue
}

/// Text sent base64-encoded though it is plain US-ASCII (or says no charset), and not as
/// an attachment or inline part: a way to hide words from filters.
fn base64_encoded_text(p: &Part) -> bool {
    static ASCII: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        crate::spam::builtin_regex(
            r"us-ascii|ansi_x3\.4-1968|iso-ir-6|ansi_x3\.4-1986|iso_646\.irv:1991|ascii|iso646-us|us|ibm367|cp367|csascii",
        )
    });
    p.content_type.starts_with("text")
        && p.encoding.contains("base64")
        && (p.charset.is_empty() || ASCII.is_match(&p.charset))
        && !(p.disposition.starts_with("attachment") || p.disposition.starts_with("inline"))
}

/// SpamAssassin's range test of a figure: at least `min`, and at most `max` (below it when
/// `below_max`); no `max` means no upper bound.
fn in_range(value: f64, args: &[String], from: usize, below_max: bool) -> bool {
    let Some(min) = num(args, from) else {
        return false;
    };
    value >= min
        && num(args, from + 1).is_none_or(|max| if below_max { value < max } else { value <= max })
}

/// The images ImageInfo counts: base64 GIF, PNG and JPEG parts, `all` or of one kind.
fn images<'v>(ctx: &'v Ctx, want: &'v str) -> impl Iterator<Item = &'v Part> {
    ctx.view.parts.iter().filter(move |p| {
        let kind = match p.content_type.as_str() {
            "image/gif" => "gif",
            "image/png" => "png",
            "image/jpeg" | "image/jpg" => "jpeg",
            _ => return false,
        };
        p.leaf && p.encoding == "base64" && (want == "all" || want == kind)
    })
}

/// Images of a type (`all`, `gif`, `jpeg`, `png`) counted against [min, max].
fn image_count(ctx: &Ctx, args: &[String]) -> bool {
    let want = args.first().map(String::as_str).unwrap_or("all");
    in_range(images(ctx, want).count() as f64, args, 1, false)
}

/// Pixels of the images of a type, summed, within [min, max].
fn image_pixels(ctx: &Ctx, want: &str) -> u64 {
    images(ctx, want)
        .filter_map(|p| p.image)
        .map(|(_, a)| a)
        .sum()
}

fn pixel_coverage(ctx: &Ctx, args: &[String]) -> bool {
    let want = args.first().map(String::as_str).unwrap_or("all");
    in_range(image_pixels(ctx, want) as f64, args, 1, false)
}

/// Characters of text per pixel of image, within [min, max): little text beside a big
/// picture is how image spam looks. `body` rules count the rendered text, `rawbody` rules
/// (the same function) would count the decoded parts; both are given the rendered text
/// here, as eval functions do not learn which kind of rule called them.
fn image_to_text_ratio(ctx: &Ctx, args: &[String]) -> bool {
    let want = args.first().map(String::as_str).unwrap_or("all");
    if num(args, 2).is_none() {
        return false;
    }
    let pixels = image_pixels(ctx, want);
    let text: usize = ctx.view.body.iter().map(String::len).sum();
    text > 0 && pixels > 0 && in_range(text as f64 / pixels as f64, args, 1, true)
}

/// The longest line of a base64 part (encoders wrap at 76; ratware does not) in
/// [min, max].
fn base64_length(ctx: &Ctx, args: &[String]) -> bool {
    let longest = ctx
        .view
        .parts
        .iter()
        .map(|p| p.raw.base64_line_max)
        .max()
        .unwrap_or(0);
    in_range(longest as f64, args, 0, false)
}

/// Plain text sent unencoded whose `&#xHHHH;` entities make up at least `ratio` of it.
fn abundant_unicode(ctx: &Ctx, args: &[String]) -> bool {
    let Some(ratio) = args.first().filter(|a| {
        let (i, f) = a.split_once('.').unwrap_or(("x", ""));
        i.len() <= 3
            && i.chars().all(|c| c.is_ascii_digit())
            && (1..=3).contains(&f.len())
            && f.chars().all(|c| c.is_ascii_digit())
    }) else {
        return false;
    };
    let (entities, plain) = ctx.view.parts.iter().fold((0, 0), |(e, p), part| {
        (e + part.raw.unicode_entities, p + part.raw.plain_bytes)
    });
    plain > 0 && entities as f64 / plain as f64 >= ratio.parse::<f64>().unwrap_or(f64::MAX)
}

/// Bytes of the plain-text alternative per byte of the HTML one, in [min, max): an empty
/// text part beside a full HTML one is a spam tool's. Counted, as SpamAssassin does, over
/// the text and HTML parts from the first multipart/alternative on, attachments left out;
/// 1.0 without an alternative.
fn multipart_ratio(ctx: &Ctx, args: &[String]) -> bool {
    let parts = &ctx.view.parts;
    let ratio = parts
        .iter()
        .position(|p| p.content_type == "multipart/alternative")
        .and_then(|first| {
            let counted = |p: &&Part| p.leaf && !p.disposition.contains("attachment");
            let bytes = |ty: &str| {
                parts
                    .iter()
                    .enumerate()
                    .rev()
                    .filter(|(_, p)| counted(p))
                    .find_map(|(i, p)| {
                        (p.content_type == ty).then_some(if i > first { p.raw.raw_len } else { 0 })
                    })
            };
            match (bytes("text/plain"), bytes("text/html")) {
                (Some(t), Some(h)) if h > 0 => Some(t as f64 / h as f64),
                _ => None,
            }
        })
        .unwrap_or(1.0);
    num(args, 0).is_some_and(|min| ratio >= min) && num(args, 1).is_some_and(|max| ratio < max)
}

/// The share (percent) of the HTML alternative's words missing from the text one, in
/// (min, max]; `min` 0 takes 0 too, `max` `undef` has no bound.
fn alternative_difference(ctx: &Ctx, args: &[String]) -> bool {
    let d = ctx.view.alternative.diff;
    let min = num(args, 0).unwrap_or(0.0);
    (min == 0.0 || d > min) && num(args, 1).is_none_or(|max| d <= max)
}

/// More than `minhtml` distinct HTML words, and more than `ratio` text words per HTML word.
fn alternative_difference_count(ctx: &Ctx, args: &[String]) -> bool {
    let a = &ctx.view.alternative;
    let (Some(ratio), Some(min_html)) = (num(args, 0), num(args, 1)) else {
        return false;
    };
    a.html_words as f64 > min_html && a.text_words as f64 / a.html_words as f64 > ratio
}

/// The highest share of spaces among the body's lines longer than 5 characters (spaces per
/// other character, percent, 100 at most), in [min, max): text set one letter a line, or
/// spread with spaces, scores high.
fn vertical_words(ctx: &Ctx, args: &[String]) -> bool {
    let mut most: i64 = -1;
    for line in &ctx.view.body {
        let len = line.chars().count();
        if len <= 5 {
            continue;
        }
        let spaces = line.chars().filter(|&c| c == ' ').count();
        let other = len - spaces;
        let pct = if spaces > other || other == 0 {
            100
        } else {
            (100 * spaces / other) as i64
        };
        most = most.max(pct);
    }
    let min = num(args, 0).unwrap_or(0.0);
    let max = num(args, 1).map_or(101.0, |m| if m >= 100.0 { 101.0 } else { m });
    most as f64 >= min && (most as f64) < max
}

fn body_length(ctx: &Ctx, args: &[String]) -> bool {
    num(args, 0).is_some_and(|max| (ctx.view.body_len as f64) < max)
}

/// The share of capital letters in the body text (Subject excluded), in percent, within
/// [min, max]; bodies with fewer than 200 letters do not count.
fn uppercase(ctx: &Ctx, args: &[String]) -> bool {
    let skip = usize::from(ctx.view.headers.exists("Subject"));
    let (mut letters, mut upper) = (0usize, 0usize);
    for p in ctx.view.body.iter().skip(skip) {
        for c in p.chars().filter(char::is_ascii_alphabetic) {
            letters += 1;
            upper += usize::from(c.is_ascii_uppercase());
        }
    }
    if letters < 200 {
        return false;
    }
    let pct = upper as f64 * 100.0 / letters as f64;
    num(args, 0).is_none_or(|min| pct >= min)
        && num(args, 1).is_none_or(|max| pct < max || max >= 100.0)
}
