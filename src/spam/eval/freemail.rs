//! Eval functions of SpamAssassin's FreeMail plugin: is an address at a free mail provider
//! (`freemail_domains`, with `*` wildcards; `freemail_welcomelist` exempts)?

use super::{Ctx, Func, domain_of};

pub(super) fn lookup(name: &str) -> Option<Func> {
    Some(match name {
        "check_freemail_from" => from,
        "check_freemail_header" => header,
        "check_freemail_replyto" => replyto,
        _ => return None,
    })
}

fn is_freemail(addr: &str, ctx: &Ctx) -> bool {
    let Some(domain) = domain_of(addr) else {
        return false;
    };
    let exempt = ["freemail_welcomelist", "freemail_whitelist"]
        .iter()
        .any(|l| {
            ctx.lists.get(l).is_some_and(|w| {
                w.contains(&addr.trim().to_ascii_lowercase()) || w.contains(&domain)
            })
        });
    ctx.lists.is_freemail_domain(&domain) && !exempt
}

fn matches(addr: &str, re: Option<&String>) -> bool {
    match re {
        None => true,
        Some(re) => super::pattern_matches(re, addr.as_bytes()),
    }
}

fn from(ctx: &Ctx, args: &[String]) -> bool {
    ctx.view
        .header("From:addr")
        .is_some_and(|a| is_freemail(&a, ctx) && matches(&a, args.first()))
}

fn header(ctx: &Ctx, args: &[String]) -> bool {
    let Some(h) = args.first() else { return false };
    ctx.view
        .header(&format!("{h}:addr"))
        .is_some_and(|a| is_freemail(&a, ctx) && matches(&a, args.get(1)))
}

/// Free mail addresses the message body offers: `mailto:` links, then addresses written in
/// the text (not those inside a URL, inside `<...>`, or before a `word:` such as `wrote:`),
/// at most 40 looked at.
fn body_freemails(ctx: &Ctx) -> Vec<String> {
    static EMAIL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        crate::spam::builtin_regex(
            r"(?i)[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,63}[a-z0-9])?\.)+[a-z]{2,}",
        )
    });
    static SKIP: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        crate::spam::builtin_regex(r"(?i)<?https?://\S{0,255}(?:@|%40)\S{0,255}")
    });
    let mut found: Vec<String> = Vec::new();
    // Links (`<a href="mailto:...">`); addresses merely written in the text are in the URI
    // list too, and those are judged below with the text's own exclusions.
    let text_lower = ctx.view.body.join("\n").to_ascii_lowercase();
    for u in &ctx.view.uris {
        if let Some(a) = u.strip_prefix("mailto:") {
            let a = a.split('?').next().unwrap_or(a).to_ascii_lowercase();
            if !found.contains(&a) && !text_lower.contains(&a) {
                found.push(a);
            }
        }
    }
    'body: for p in &ctx.view.body {
        let text = SKIP.replace_all(p, " ");
        for m in EMAIL.find_iter(&text) {
            let before = &text[..m.start()];
            let after = &text[m.end()..];
            let in_brackets = before.ends_with('<') && after.starts_with('>');
            let quoted_reply = after.trim_start().split_once(':').is_some_and(|(w, _)| {
                (2..=11).contains(&w.len()) && w.chars().all(|c| c.is_ascii_alphabetic())
            });
            if in_brackets || before.ends_with("mailto:") || quoted_reply {
                continue;
            }
            let a = m.as_str().to_ascii_lowercase();
            if !found.contains(&a) {
                found.push(a);
            }
            if found.len() >= 40 {
                break 'body;
            }
        }
    }
    found.retain(|a| is_freemail(a, ctx));
    found
}

/// SpamAssassin's FreeMail reply checks. Hit when From and Reply-To are different free mail
/// addresses, or when a free mail address in the body differs from where replies go:
/// Reply-To (`replyto`, which needs a free mail Reply-To), or for `reply` the Reply-To when
/// it is free mail, else From (which must then be free mail, with no Reply-To).
fn replyto(ctx: &Ctx, args: &[String]) -> bool {
    let what = args.first().map(String::as_str).unwrap_or("replyto");
    let from = ctx
        .view
        .header("From:addr")
        .map(|a| a.to_ascii_lowercase())
        .filter(|a| !a.is_empty());
    let reply_to = ctx
        .view
        .header("Reply-To:addr")
        .map(|a| a.to_ascii_lowercase())
        .filter(|a| !a.is_empty());
    let from_fm = from.as_deref().is_some_and(|a| is_freemail(a, ctx));
    let reply_fm = reply_to.as_deref().is_some_and(|a| is_freemail(a, ctx));
    if from_fm && reply_fm && from != reply_to {
        return true;
    }
    match what {
        "replyto" if !reply_fm => return false,
        "reply" if reply_to.is_some() && !reply_fm => return false,
        "reply" if reply_to.is_none() && !from_fm => return false,
        _ => {}
    }
    let target = if what == "replyto" || reply_fm {
        reply_to
    } else {
        from
    };
    let Some(target) = target else { return false };
    body_freemails(ctx).iter().any(|b| *b != target)
}
