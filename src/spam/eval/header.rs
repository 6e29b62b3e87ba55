//! Eval functions over header fields and relays (SpamAssassin's HeaderEval and relay checks).

use super::date::{RCVD_DATE, parse_date};
use super::{Ctx, Func, domain_of, num};

pub(super) fn lookup(name: &str) -> Option<Func> {
    Some(match name {
        "check_for_missing_to_header" => missing_to,
        "check_outlook_message_id" => outlook_message_id,
        "similar_recipients" => similar_recipients,
        "sorted_recipients" => sorted_recipients,
        "check_equal_from_domains" => different_from_domains,
        "check_illegal_chars" => illegal_chars,
        "check_header_count_range" => header_count_range,
        "subject_is_all_caps" => subject_all_caps,
        _ => return None,
    })
}

fn missing_to(ctx: &Ctx, _: &[String]) -> bool {
    let h = &ctx.view.headers;
    !h.exists("To") && !h.exists("Apparently-To")
}

/// The domain a registrar hands out: the last two labels, or three under a two-label
/// public suffix (`util_rb_2tld`), or four under a three-label one (`util_rb_3tld`).
pub(super) fn registrable(domain: &str, ctx: &Ctx) -> String {
    registrable_in(domain, ctx.lists)
}

/// [`registrable`] with the lists alone (the network rules' link domains).
pub fn registrable_in(domain: &str, lists: &super::Lists) -> String {
    let labels: Vec<&str> = domain.split('.').collect();
    let tail = |n: usize| labels[labels.len().saturating_sub(n)..].join(".");
    let listed = |list: &str, v: &str| lists.get(list).is_some_and(|l| l.contains(v));
    if labels.len() >= 4 && listed("util_rb_3tld", &tail(3)) {
        tail(4)
    } else if labels.len() >= 3 && listed("util_rb_2tld", &tail(2)) {
        tail(3)
    } else {
        tail(2)
    }
}

/// From: and the envelope sender are in different registered domains.
fn different_from_domains(ctx: &Ctx, _: &[String]) -> bool {
    let from = ctx.view.header("From:addr").and_then(|a| domain_of(&a));
    let env = ctx
        .view
        .header("EnvelopeFrom:addr")
        .and_then(|a| domain_of(&a));
    match (from, env) {
        (Some(f), Some(e)) => registrable(&f, ctx) != registrable(&e, ctx),
        _ => false,
    }
}

/// Characters outside ASCII in a field (`ALL`: every field but Subject and From): at least
/// `count` of them and more than `ratio` of its length.
fn illegal_chars(ctx: &Ctx, args: &[String]) -> bool {
    let which = args.first().map(String::as_str).unwrap_or("ALL");
    let ratio = num(args, 1).unwrap_or(0.0);
    let count = num(args, 2).unwrap_or(1.0);
    let text: String = if which == "ALL" {
        let h = &ctx.view.headers;
        let names: Vec<String> = h.names().map(str::to_string).collect();
        names
            .iter()
            .filter(|n| !n.eq_ignore_ascii_case("Subject") && !n.eq_ignore_ascii_case("From"))
            .flat_map(|n| h.raw_values(n).into_iter().take(1))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        ctx.view.headers.raw_values(which).join("\n")
    };
    if text.is_empty() {
        return false;
    }
    let illegal = text.chars().filter(|c| !c.is_ascii()).count() as f64;
    illegal >= count && illegal / text.chars().count() as f64 > ratio
}

fn header_count_range(ctx: &Ctx, args: &[String]) -> bool {
    let Some(name) = args.first() else {
        return false;
    };
    let n = ctx.view.headers.raw_values(name).len() as f64;
    num(args, 1).is_none_or(|min| n >= min) && num(args, 2).is_none_or(|max| n <= max)
}

/// A subject of several words, at least 10 characters, whose letters are all capitals.
fn subject_all_caps(ctx: &Ctx, _: &[String]) -> bool {
    let Some(s) = ctx.view.headers.get("Subject") else {
        return false;
    };
    let mut s = s.trim();
    loop {
        let lower = s.to_ascii_lowercase();
        let Some(p) = ["re:", "fw:", "fwd:", "aw:", "antwort:", "sv:"]
            .iter()
            .find(|p| lower.starts_with(**p))
        else {
            break;
        };
        s = s[p.len()..].trim_start();
    }
    if !s.contains(char::is_whitespace) || s.len() < 10 {
        return false;
    }
    let letters: Vec<char> = s.chars().filter(char::is_ascii_alphabetic).collect();
    !letters.is_empty() && letters.iter().all(char::is_ascii_uppercase)
}

/// Outlook's Message-ID carries a timestamp (`<xxxxTTTTTTTT$...$...@`): invalid when it is
/// far (250 ticks) from both the Date field and the oldest Received date.
fn outlook_message_id(ctx: &Ctx, _: &[String]) -> bool {
    static ID: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        crate::spam::builtin_regex(r"^<[0-9a-f]{4}([0-9a-f]{8})\$[0-9a-f]{8}\$[0-9a-f]{8}@")
    });
    let Some(id) = ctx.view.header("MESSAGEID") else {
        return false;
    };
    let Some(token) = ID
        .captures(&id)
        .and_then(|c| i64::from_str_radix(&c[1], 16).ok())
    else {
        return false;
    };
    let expected = |t: i64| (t as f64 * 0.0023283064365387 + 27111902.8329849) as i64;
    let far = |t: Option<i64>| (token - expected(t.unwrap_or(0))).abs() >= 250;
    let date = ctx
        .view
        .headers
        .raw_values("Date")
        .first()
        .and_then(|d| parse_date(d));
    if !far(date) {
        return false;
    }
    let oldest = ctx
        .view
        .headers
        .raw_values("Received")
        .last()
        .and_then(|r| RCVD_DATE.find(r).and_then(|m| parse_date(m.as_str())));
    far(oldest)
}

/// The recipients in To and Cc (then Bcc), neighbours that repeat dropped, at most 256.
fn recipients(ctx: &Ctx) -> Vec<String> {
    let mut inputs: Vec<String> = Vec::new();
    for field in [&["To", "Cc"][..], &["Bcc"][..]] {
        for name in field {
            for v in ctx.view.headers.raw_values(name) {
                inputs.extend(super::addresses(&v));
            }
        }
        if inputs.len() >= 5 {
            break;
        }
    }
    let mut out: Vec<String> = Vec::new();
    for a in inputs {
        if out.last().is_none_or(|p| !p.eq_ignore_ascii_case(&a)) {
            out.push(a);
        }
        if out.len() == 256 {
            break;
        }
    }
    out
}

/// How alike the recipients are: pairs sharing the first two characters of the local part,
/// or of different host names, per pair (5 or more recipients), in [min, max).
fn similar_recipients(ctx: &Ctx, args: &[String]) -> bool {
    let addr = recipients(ctx);
    let mut similar = 0.0;
    if addr.len() >= 5 {
        let two = |s: &str| s.chars().take(2).collect::<String>();
        let host = |a: &str| {
            a.split_once('@')
                .map(|(_, h)| h.to_string())
                .unwrap_or_default()
        };
        let (mut hits, mut pairs) = (0usize, 0usize);
        for i in 0..addr.len() {
            for j in i + 1..addr.len() {
                hits += usize::from(two(&addr[i]) == two(&addr[j]));
                let (hi, hj) = (host(&addr[i]), host(&addr[j]));
                hits += usize::from(two(&hi) == two(&hj) && hi != hj);
                pairs += 1;
            }
        }
        similar = hits as f64 / pairs as f64;
    }
    num(args, 0).is_none_or(|min| similar >= min) && num(args, 1).is_none_or(|max| similar < max)
}

/// Seven or more recipients in sorted order.
fn sorted_recipients(ctx: &Ctx, _: &[String]) -> bool {
    let addr = recipients(ctx);
    addr.len() >= 7 && addr.windows(2).all(|w| w[0] <= w[1])
}
