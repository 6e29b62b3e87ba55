//! Eval functions over the HTML parts (SpamAssassin's HTMLEval): each holds when some HTML
//! part satisfies it.

use super::{Ctx, Func, num};
use crate::spam::view::html::Html;

pub(super) fn lookup(name: &str) -> Option<Func> {
    Some(match name {
        "html_test" => html_test,
        "html_range" => html_range,
        "html_eval" => html_eval,
        "html_tag_exists" => tag_exists,
        "html_tag_balance" => tag_balance,
        "html_text_match" => text_match,
        "html_image_only" => image_only,
        "html_image_ratio" => image_ratio,
        _ => return None,
    })
}

fn any(ctx: &Ctx, f: impl Fn(&Html) -> bool) -> bool {
    ctx.view.html.iter().any(f)
}

fn html_test(ctx: &Ctx, args: &[String]) -> bool {
    match args.first().map(String::as_str) {
        Some("html") => ctx.view.has_html,
        Some(t) => any(ctx, |h| h.tests.contains(t)),
        None => false,
    }
}

/// A figure in (min, max]; `inf` or no max is open.
fn html_range(ctx: &Ctx, args: &[String]) -> bool {
    let Some(name) = args.first() else {
        return false;
    };
    any(ctx, |h| {
        h.figure(name).is_some_and(|v| {
            num(args, 1).is_none_or(|min| v > min) && num(args, 2).is_none_or(|max| v <= max)
        })
    })
}

/// `op value` as in `'< 384'` or `'!= 0'`.
fn compare(v: f64, expr: &str) -> bool {
    let expr = expr.trim();
    let (op, rest) = ["<=", ">=", "==", "!=", "<", ">"]
        .iter()
        .find_map(|op| expr.strip_prefix(op).map(|r| (*op, r)))
        .unwrap_or(("==", expr));
    let Ok(n) = rest.trim().parse::<f64>() else {
        return false;
    };
    match op {
        "<=" => v <= n,
        ">=" => v >= n,
        "!=" => v != n,
        "<" => v < n,
        ">" => v > n,
        _ => v == n,
    }
}

fn html_eval(ctx: &Ctx, args: &[String]) -> bool {
    let (Some(name), Some(expr)) = (args.first(), args.get(1)) else {
        return false;
    };
    any(ctx, |h| h.figure(name).is_some_and(|v| compare(v, expr)))
}

fn tag_exists(ctx: &Ctx, args: &[String]) -> bool {
    let Some(tag) = args.first().map(|t| t.to_ascii_lowercase()) else {
        return false;
    };
    any(ctx, |h| h.tags.contains(&tag))
}

/// Tags left open, compared (`'!= 0'`).
fn tag_balance(ctx: &Ctx, args: &[String]) -> bool {
    let (Some(tag), Some(expr)) = (args.first().map(|t| t.to_ascii_lowercase()), args.get(1))
    else {
        return false;
    };
    any(ctx, |h| {
        h.inside.get(&tag).is_some_and(|b| compare(*b as f64, expr))
    })
}

fn text_match(ctx: &Ctx, args: &[String]) -> bool {
    let (Some(what), Some(re)) = (args.first(), args.get(1)) else {
        return false;
    };
    any(ctx, |h| {
        h.text_of(what)
            .is_some_and(|t| super::pattern_matches(re, t.as_bytes()))
    })
}

/// A part with an image and (min, max] bytes of HTML source.
fn image_only(ctx: &Ctx, args: &[String]) -> bool {
    any(ctx, |h| {
        let len = h.source_len as f64;
        h.has_img
            && num(args, 0).is_none_or(|min| len > min)
            && num(args, 1).is_none_or(|max| len <= max)
    })
}

/// Visible characters per pixel of image area, in (min, max].
fn image_ratio(ctx: &Ctx, args: &[String]) -> bool {
    any(ctx, |h| {
        if h.image_area == 0 {
            return false;
        }
        let r = h.non_space_len() as f64 / h.image_area as f64;
        num(args, 0).is_none_or(|min| r > min) && num(args, 1).is_none_or(|max| r <= max)
    })
}
