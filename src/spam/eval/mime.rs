//! Eval functions over the MIME structure and the body text (SpamAssassin's MIMEEval,
//! BodyEval and ImageInfo counts).

use super::{Ctx, Func, num};

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
        _ => false,
    }
}

/// Only `mime_epilogue_exists` is detected (text after the final boundary); the other flags
/// (`missing_mime_headers`, `missing_mime_head_body_separator`, `truncated`) never hold.
fn parse_flags(ctx: &Ctx, args: &[String]) -> bool {
    args.first().is_some_and(|a| a == "mime_epilogue_exists") && ctx.view.epilogue
}

/// Images of a type (`all`, `gif`, `jpeg`, `png`) counted against [min, max].
fn image_count(ctx: &Ctx, args: &[String]) -> bool {
    let want = args.first().map(String::as_str).unwrap_or("all");
    let n = ctx
        .view
        .parts
        .iter()
        .filter(|p| p.leaf && p.content_type.starts_with("image/"))
        .filter(|p| {
            want == "all"
                || p.content_type.ends_with(want)
                || (want == "jpeg" && p.content_type.ends_with("jpg"))
        })
        .count() as f64;
    num(args, 1).is_none_or(|min| n >= min) && num(args, 2).is_none_or(|max| n <= max)
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
