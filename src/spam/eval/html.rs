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
        "html_title_subject_ratio" => title_subject_ratio,
        "check_https_http_mismatch" => https_http_mismatch,
        "check_uri_truncated" => uri_truncated,
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

/// An HTML title more than `ratio` times as long as the Subject.
fn title_subject_ratio(ctx: &Ctx, args: &[String]) -> bool {
    let subject = ctx.view.header("Subject").unwrap_or_default();
    let subject_len = subject.trim_end_matches('\n').chars().count();
    let Some(ratio) = num(args, 0) else {
        return false;
    };
    subject_len > 0
        && any(ctx, |h| {
            !h.title.is_empty() && h.title.chars().count() as f64 / subject_len as f64 > ratio
        })
}

/// A link whose text shows an `https://` address of another domain than the link goes to,
/// in a part with between `min` and `max` (exclusive) links to valid domains: a phish
/// dressed as a secure site.
fn https_http_mismatch(ctx: &Ctx, args: &[String]) -> bool {
    let min = num(args, 0).unwrap_or(1.0).max(1.0);
    let max = num(args, 1);
    let domain = |host: &str| -> Option<String> {
        if host.parse::<std::net::IpAddr>().is_ok() {
            return None;
        }
        let d = super::header::registrable(&host.to_ascii_lowercase(), ctx);
        super::valid_tld(&d, ctx.lists).then_some(d)
    };
    let host_after = |s: &str, scheme: &str| -> Option<String> {
        let lower = s.to_ascii_lowercase();
        let at = lower.find(scheme)? + scheme.len();
        let host: String = s[at..]
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, '/' | ':' | '?' | '#'))
            .collect();
        (!host.is_empty()).then_some(host)
    };
    any(ctx, |h| {
        let mut seen = std::collections::BTreeSet::new();
        let (mut anchors, mut hit) = (0usize, false);
        for (href, text) in &h.links {
            if text.is_empty() || !seen.insert(href.as_str()) {
                continue;
            }
            let target = host_after(href, "http://").or_else(|| host_after(href, "https://"));
            let lower = href.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                continue;
            }
            let Some(target) = target.and_then(|t| domain(&t)) else {
                continue;
            };
            anchors += 1;
            if let Some(shown) = host_after(text, "https://") {
                let shown = if shown.parse::<std::net::IpAddr>().is_ok() {
                    Some(shown)
                } else {
                    domain(&shown)
                };
                hit |= shown.is_some_and(|s| s != target);
            }
        }
        hit && anchors as f64 >= min && max.is_none_or(|m| (anchors as f64) < m)
    })
}

/// SpamAssassin cuts URIs at 8 KiB; a longer one is a filter-evasion attempt.
fn uri_truncated(ctx: &Ctx, _: &[String]) -> bool {
    /// SpamAssassin's MAX_URI_LENGTH.
    const MAX_URI_LENGTH: usize = 8192;
    ctx.view.uris.iter().any(|u| u.len() > MAX_URI_LENGTH)
        || any(ctx, |h| {
            h.links.iter().any(|(l, _)| l.len() > MAX_URI_LENGTH)
        })
}
