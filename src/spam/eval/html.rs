//! Eval functions over the HTML parts (SpamAssassin's HTMLEval).

use super::{Ctx, Func, num};
use crate::spam::pattern;

pub(super) fn lookup(name: &str) -> Option<Func> {
    Some(match name {
        "html_test" => html_test,
        "html_range" => html_range,
        "html_eval" => html_eval,
        "html_tag_exists" => |c, a| {
            c.view.has_html
                && a.first()
                    .is_some_and(|t| c.view.html.tags.contains(&t.to_ascii_lowercase()))
        },
        "html_tag_balance" => tag_balance,
        "html_text_match" => text_match,
        "html_image_only" => image_only,
        "html_image_ratio" => image_ratio,
        _ => return None,
    })
}

fn html_test(ctx: &Ctx, args: &[String]) -> bool {
    match args.first().map(String::as_str) {
        Some("html") => ctx.view.has_html,
        Some(t) => ctx.view.html.tests.contains(t),
        None => false,
    }
}

fn html_range(ctx: &Ctx, args: &[String]) -> bool {
    if !ctx.view.has_html {
        return false;
    }
    let Some(v) = args.first().and_then(|f| ctx.view.html.figure(f)) else {
        return false;
    };
    num(args, 1).is_none_or(|min| v > min) && num(args, 2).is_none_or(|max| v <= max)
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
    ctx.view.has_html
        && args
            .first()
            .and_then(|f| ctx.view.html.figure(f))
            .is_some_and(|v| compare(v, args.get(1).map(String::as_str).unwrap_or("")))
}

fn tag_balance(ctx: &Ctx, args: &[String]) -> bool {
    let Some(tag) = args.first() else {
        return false;
    };
    let Some(b) = ctx.view.html.balance.get(&tag.to_ascii_lowercase()) else {
        return false;
    };
    compare(*b as f64, args.get(1).map(String::as_str).unwrap_or(""))
}

fn text_match(ctx: &Ctx, args: &[String]) -> bool {
    let (Some(what), Some(re)) = (args.first(), args.get(1)) else {
        return false;
    };
    let Some(text) = ctx.view.html.text_of(what) else {
        return false;
    };
    pattern::compile(&format!("/{re}/")).is_ok_and(|p| p.is_match(text.as_bytes()))
}

/// HTML with images and between `min` and `max` characters of text.
fn image_only(ctx: &Ctx, args: &[String]) -> bool {
    let h = &ctx.view.html;
    let len = h.text_chars as f64;
    ctx.view.has_html
        && h.images > 0
        && num(args, 0).is_none_or(|min| len > min)
        && num(args, 1).is_none_or(|max| len <= max)
}

/// Text characters per pixel of image area.
fn image_ratio(ctx: &Ctx, args: &[String]) -> bool {
    let h = &ctx.view.html;
    if !ctx.view.has_html || h.image_area == 0 {
        return false;
    }
    let r = h.text_chars as f64 / h.image_area as f64;
    num(args, 0).is_none_or(|min| r > min) && num(args, 1).is_none_or(|max| r <= max)
}
