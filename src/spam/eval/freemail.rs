//! Eval functions of SpamAssassin's FreeMail plugin: is an address at a free mail provider
//! (`freemail_domains`, with `*` wildcards; `freemail_welcomelist` exempts)?

use super::header::registrable;
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
    let listed = |list: &str| {
        ctx.lists.get(list).is_some_and(|l| {
            l.contains(&domain)
                || l.iter().any(|d| {
                    d.contains('*') && {
                        let (pre, post) = d.split_once('*').unwrap_or((d, ""));
                        domain.starts_with(pre)
                            && domain.ends_with(post)
                            && domain.len() >= pre.len() + post.len()
                    }
                })
        })
    };
    let exempt = ["freemail_welcomelist", "freemail_whitelist"]
        .iter()
        .any(|l| {
            ctx.lists.get(*l).is_some_and(|w| {
                w.contains(&addr.trim().to_ascii_lowercase()) || w.contains(&domain)
            })
        });
    listed("freemail_domains") && !exempt
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

/// A free mail Reply-To (or the first free mail address in the body, for `reply`) that is
/// not the sender's own.
fn replyto(ctx: &Ctx, args: &[String]) -> bool {
    let from = ctx
        .view
        .header("From:addr")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let reply = match args.first().map(String::as_str) {
        Some("reply") => ctx
            .view
            .header("Reply-To:addr")
            .filter(|a| !a.is_empty())
            .or_else(|| {
                ctx.view
                    .uris
                    .iter()
                    .find_map(|u| u.strip_prefix("mailto:").map(str::to_string))
            }),
        _ => ctx.view.header("Reply-To:addr"),
    };
    let Some(reply) = reply.filter(|r| !r.is_empty()) else {
        return false;
    };
    let same = reply.to_ascii_lowercase() == from
        || domain_of(&from)
            .zip(domain_of(&reply))
            .is_some_and(|(a, b)| {
                registrable(&a, ctx) == registrable(&b, ctx) && !is_freemail(&from, ctx)
            });
    is_freemail(&reply, ctx) && !same
}
