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
    /// Role and machine addresses that are never a person's free mail box.
    static ROLE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        crate::spam::builtin_regex(
            r"(?i)^(?:abuse|support|sales|info|helpdesk|contact|kontakt|(?:post|host|domain)master|undisclosed.*|request-[a-f0-9]{16}|bounced?-|[a-f0-9]{8}(?:\.[a-f0-9]{8}|-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12})|.+=.+=.+)@",
        )
    });
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
    ctx.lists.is_freemail_domain(&domain) && !exempt && !ROLE.is_match(addr.trim())
}

fn matches(addr: &str, re: Option<&String>) -> bool {
    match re {
        None => true,
        Some(re) => super::pattern_matches(re, addr.as_bytes()),
    }
}

/// Any address the message is from (From, the envelope sender and kin) at a free mail
/// provider, matching the optional pattern.
fn from(ctx: &Ctx, args: &[String]) -> bool {
    ctx.view
        .all_from_addrs()
        .iter()
        .any(|a| is_freemail(a, ctx) && matches(a, args.first()))
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
/// Addresses in the body are looked at only when there are few: a message quoting many
/// addresses (a list digest, a thread) says nothing by naming a free mail one.
/// SpamAssassin's `freemail_max_body_emails` and `freemail_max_body_freemails`, with
/// `freemail_skip_when_over_max` on (their defaults).
const MAX_BODY_EMAILS: usize = 5;
const MAX_BODY_FREEMAILS: usize = 3;

/// An address as FreeMail finds it in text: a boundary before it, at most 64 characters
/// before the `@`, up to 4 domain labels.
static EMAIL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    crate::spam::builtin_regex(
        r"(?i)(?:^|[^a-z0-9!#$%&'*+/=?^_`{|}~-])([a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,59}[a-z0-9])?\.){1,4}[a-z]{2,})",
    )
});

/// The addresses in `text` FreeMail counts, in order: with a known top-level domain, not
/// part of a link, and not a quoted author (`<a@b>` or `a@b wrote:`) unless written after
/// `mailto:`.
fn text_emails(text: &str, ctx: &Ctx, out: &mut Vec<String>) {
    static IN_LINK: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        crate::spam::builtin_regex(r"(?i)<?https?://\S{0,255}(?:@|%40)\S{0,255}")
    });
    static LABEL: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| crate::spam::builtin_regex(r"(?i)^\s{1,10}([a-z]{2,11}):"));
    let text = IN_LINK.replace_all(text, " ");
    for c in EMAIL.captures_iter(&text) {
        let Some(m) = c.get(1) else { continue };
        let (before, after) = (&text[..m.start()], &text[m.end()..]);
        let local = m.as_str().split('@').next().unwrap_or("");
        let tld_ok = m.as_str().rsplit('.').next().is_some_and(|t| {
            ctx.lists
                .get("util_rb_tld")
                .is_none_or(|l| l.contains(&t.to_ascii_lowercase()))
        });
        if local.len() > 64 || !tld_ok {
            continue;
        }
        let after_mailto = before.len() >= 7
            && before.as_bytes()[before.len() - 7..].eq_ignore_ascii_case(b"mailto:");
        let quoted = after.starts_with('>')
            || LABEL.captures(after).is_some_and(|l| {
                let w = l[1].to_ascii_lowercase();
                // `Fax:`, `Tel:`, `E-mail:` after an address label it; they do not quote.
                !["fax", "facsi", "tel", "phone", "mail", "email"]
                    .iter()
                    .any(|p| w.starts_with(p))
            });
        if quoted && !after_mailto {
            continue;
        }
        let a = m.as_str().to_ascii_lowercase();
        if !out.contains(&a) {
            out.push(a);
        }
    }
}

/// The free mail addresses in the body (links with `mailto:`, then the text), or `None`
/// when the body names too many addresses to say anything.
fn body_freemails(ctx: &Ctx) -> Option<Vec<String>> {
    let mut found: Vec<String> = Vec::new();
    for (href, _) in ctx.view.html.iter().flat_map(|h| &h.links) {
        if found.len() >= 20 {
            break;
        }
        let mailto = href.get(7..).filter(|_| {
            href.get(..7)
                .is_some_and(|p| p.eq_ignore_ascii_case("mailto:"))
        });
        if let Some(m) = mailto
            .and_then(|t| EMAIL.captures(t))
            .and_then(|c| c.get(1))
        {
            let a = m.as_str().to_ascii_lowercase();
            if m.start() == 0 && !found.contains(&a) {
                found.push(a);
            }
        }
    }
    for p in &ctx.view.body {
        text_emails(p, ctx, &mut found);
        if found.len() >= 40 {
            found.truncate(40);
            break;
        }
    }
    if found.len() >= MAX_BODY_EMAILS {
        return None;
    }
    found.retain(|a| is_freemail(a, ctx));
    (found.len() < MAX_BODY_FREEMAILS).then_some(found)
}

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
        "reply" if !from_fm => return false,
        "replyto" | "reply" => {}
        _ => return false,
    }
    if bulk_envelope_sender(ctx) {
        return false;
    }
    let target = if what == "replyto" || reply_fm {
        reply_to
    } else {
        from
    };
    let Some(target) = target else { return false };
    body_freemails(ctx).is_some_and(|found| found.iter().any(|b| *b != target))
}

/// Bounces, list and no-reply senders: their Reply-To says nothing about a person
/// (SpamAssassin's `freemail_skip_bulk_envfrom`, on by default).
fn bulk_envelope_sender(ctx: &Ctx) -> bool {
    static BULK: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        crate::spam::builtin_regex(
            r"(?i)(?:^(?:post|host|domain)master|^double-bounce|^(?:sentto|owner|return|(?:gr)?bounced?)-.+|-(?:request|bounces?|admin|owner)|\b(?:do[._-t]?)?no[._-t]?repl(?:y|ies)|.+=.+)@",
        )
    });
    ctx.view
        .envelope_from()
        .is_some_and(|e| BULK.is_match(e.trim()))
}
