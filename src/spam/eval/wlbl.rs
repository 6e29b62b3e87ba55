//! Welcome and block lists (SpamAssassin's WLBLEval, WelcomeListSubject and VBounce): the
//! senders, recipients, subjects and URI hosts a site lists in its configuration
//! (`welcomelist_from`, `enlist_addrlist (NAME)`, `enlist_uri_host (NAME)` ...), read by
//! `rules::cf_lists` into the word lists and compiled here once per rule set.

use super::{Ctx, Func};
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub(super) fn lookup(name: &str) -> Option<Func> {
    Some(match name {
        "check_from_in_list" => |c, a| from_in(c, &format!("addrlist:{}", arg(a))),
        "check_replyto_in_list" => replyto_in_list,
        "check_uri_host_listed" => |c, a| uri_host_listed(c, arg(a)),
        "check_uri_host_in_blocklist" | "check_uri_host_in_blacklist" => {
            |c, _| uri_host_listed(c, "BLOCK")
        }
        "check_uri_host_in_welcomelist" | "check_uri_host_in_whitelist" => {
            |c, _| uri_host_listed(c, "WELCOME")
        }
        "check_from_in_welcomelist" | "check_from_in_whitelist" => {
            |c, _| from_in(c, "welcomelist_from") || from_rcvd(c, "welcomelist_from_rcvd")
        }
        "check_from_in_default_welcomelist" | "check_from_in_default_whitelist" => {
            |c, _| from_rcvd(c, "def_welcomelist_from_rcvd")
        }
        "check_from_in_blocklist" | "check_from_in_blacklist" => {
            |c, _| from_in(c, "blocklist_from")
        }
        "check_to_in_welcomelist" | "check_to_in_whitelist" => |c, _| to_in(c, "welcomelist_to"),
        "check_to_in_blocklist" | "check_to_in_blacklist" => |c, _| to_in(c, "blocklist_to"),
        "check_to_in_more_spam" => |c, _| to_in(c, "more_spam_to"),
        "check_to_in_all_spam" => |c, _| to_in(c, "all_spam_to"),
        "check_subject_in_welcomelist" | "check_subject_in_whitelist" => {
            |c, _| subject_in(c, "welcomelist_subject")
        }
        "check_subject_in_blocklist" | "check_subject_in_blacklist" => {
            |c, _| subject_in(c, "blocklist_subject")
        }
        "have_any_bounce_relays" => |c, _| !c.lists.compiled.bounce_relays.is_empty(),
        "check_welcomelist_bounce_relays" | "check_whitelist_bounce_relays" => bounce_relays,
        _ => return None,
    })
}

fn arg(args: &[String]) -> &str {
    args.first().map(String::as_str).unwrap_or("")
}

/// The lists compiled: address globs as anchored patterns, `_rcvd` pairs, URI host
/// verdicts, subject globs.
#[derive(Debug, Default)]
pub struct Compiled {
    addresses: HashMap<String, Vec<Regex>>,
    /// `_rcvd` lists: (address pattern, relay domain or `[ip]`).
    rcvd: HashMap<String, Vec<(Regex, String)>>,
    allows_relays: Vec<Regex>,
    /// List name -> host -> listed (false for a `!host` exception).
    uri_hosts: BTreeMap<String, HashMap<String, bool>>,
    subjects: HashMap<String, Vec<Regex>>,
    bounce_relays: Vec<String>,
}

/// A welcomelist glob (`*@example.com`, `?ob@x.org`) as a pattern: `*` any run, `?` any
/// one character, case ignored; `anchored` for addresses, not for subjects.
fn glob(g: &str, anchored: bool) -> Option<Regex> {
    let mut re = String::from("(?is)");
    if anchored {
        re.push('^');
    }
    for c in g.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    if anchored {
        re.push('$');
    }
    Regex::new(&re).ok()
}

impl Compiled {
    pub fn new(words: &BTreeMap<String, BTreeSet<String>>) -> Compiled {
        let mut c = Compiled::default();
        for (name, entries) in words {
            let globs = |anchored| entries.iter().filter_map(|e| glob(e, anchored)).collect();
            if let Some(list) = name.strip_prefix("uri_host:") {
                let hosts = entries
                    .iter()
                    .map(|h| match h.strip_prefix('!') {
                        Some(h) => (h.to_string(), false),
                        None => (h.to_string(), true),
                    })
                    .collect();
                c.uri_hosts.insert(list.to_string(), hosts);
            } else if name.ends_with("_rcvd") {
                let pairs = entries
                    .iter()
                    .filter_map(|e| {
                        let (a, r) = e.split_once(' ')?;
                        Some((glob(a, true)?, r.to_string()))
                    })
                    .collect();
                c.rcvd.insert(name.clone(), pairs);
            } else if name.ends_with("_subject") {
                c.subjects.insert(name.clone(), globs(false));
            } else if name == "welcomelist_allows_relays" {
                c.allows_relays = globs(true);
            } else if name == "welcomelist_bounce_relays" {
                c.bounce_relays = entries.iter().cloned().collect();
            } else if name.starts_with("addrlist:")
                || name.ends_with("_from")
                || name.ends_with("_to")
            {
                c.addresses.insert(name.clone(), globs(true));
            }
        }
        c
    }

    fn listed(&self, list: &str, addr: &str) -> bool {
        let addr = addr.to_ascii_lowercase();
        self.addresses
            .get(list)
            .is_some_and(|l| l.iter().any(|re| re.is_match(&addr)))
    }
}

/// The recipients the message names: the Resent- fields when there are any, else the
/// usual recipient fields and the `for <addr>` of the three newest Received fields.
fn all_to_addrs(ctx: &Ctx) -> Vec<String> {
    let h = &ctx.view.headers;
    let mut out = Vec::new();
    for name in ["Resent-To", "Resent-Cc"] {
        out.extend(h.raw_values(name).iter().flat_map(|v| super::addresses(v)));
    }
    if !out.is_empty() {
        return out;
    }
    for v in h.raw_values("Received").iter().take(3) {
        if let Some(rest) = v.split(" for ").nth(1) {
            let a = rest.split([';', ' ']).next().unwrap_or("");
            let a = a.trim_matches(|c| c == '<' || c == '>');
            if a.contains('@') {
                out.push(a.to_string());
            }
        }
    }
    for name in [
        "To",
        "Cc",
        "Apparently-To",
        "Delivered-To",
        "Envelope-Recipients",
        "Apparently-Resent-To",
        "X-Envelope-To",
        "Envelope-To",
        "X-Delivered-To",
        "X-Original-To",
        "X-Rcpt-To",
        "X-Real-To",
    ] {
        out.extend(h.raw_values(name).iter().flat_map(|v| super::addresses(v)));
    }
    out
}

fn from_in(ctx: &Ctx, list: &str) -> bool {
    ctx.view
        .all_from_addrs()
        .iter()
        .any(|a| ctx.lists.compiled.listed(list, a))
}

fn to_in(ctx: &Ctx, list: &str) -> bool {
    all_to_addrs(ctx)
        .iter()
        .any(|a| ctx.lists.compiled.listed(list, a))
}

fn replyto_in_list(ctx: &Ctx, args: &[String]) -> bool {
    let r = ctx.view.header("Reply-To:addr").unwrap_or_default();
    let r = r.trim();
    !r.is_empty()
        && ctx
            .lists
            .compiled
            .listed(&format!("addrlist:{}", arg(args)), r)
}

/// A sender on a `_rcvd` list, relayed to us by a host of the domain (or address) it was
/// listed with: the first untrusted relay, or, with none untrusted, any trusted one.
fn from_rcvd(ctx: &Ctx, list: &str) -> bool {
    let Some(pairs) = ctx.lists.compiled.rcvd.get(list) else {
        return false;
    };
    let relays = &ctx.view.relays;
    let hops: Vec<&crate::spam::view::relays::Relay> = match relays.untrusted.first() {
        Some(first) => vec![first],
        None => relays.trusted.iter().collect(),
    };
    if hops.is_empty() {
        return false;
    }
    ctx.view.all_from_addrs().iter().any(|addr| {
        pairs
            .iter()
            .filter(|(re, _)| re.is_match(addr))
            .any(|(_, domain)| hops.iter().any(|hop| relay_matches(hop, domain)))
    })
}

/// A relay is a listed one: its address in `[ip]` (exact, or a classful prefix `[10.1.]`),
/// or its reverse DNS name in the domain.
fn relay_matches(hop: &crate::spam::view::relays::Relay, domain: &str) -> bool {
    if let Some(ip) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        if hop.ip.is_empty() {
            return false;
        }
        if ip.parse::<std::net::IpAddr>().is_ok() {
            return ip == hop.ip;
        }
        let prefix = format!("{}.", ip.trim_end_matches('.'));
        return hop.ip.starts_with(&prefix);
    }
    let rdns = hop.rdns.to_ascii_lowercase();
    rdns == domain || rdns.ends_with(&format!(".{domain}"))
}

/// A host of the message's URIs (or a parent domain of it, nearest first) on URI host list
/// `list`, unless a `!host` entry nearer to it excepts it.
fn uri_host_listed(ctx: &Ctx, list: &str) -> bool {
    let Some(hosts) = ctx.lists.compiled.uri_hosts.get(list) else {
        return false;
    };
    let mut seen = BTreeSet::new();
    for uri in &ctx.view.uris {
        if uri.to_ascii_lowercase().starts_with("mailto:") {
            continue;
        }
        let Some(host) = crate::spam::view::uri::uri_host(uri) else {
            continue;
        };
        // Only hosts SpamAssassin takes for a domain: an address, or a name under a
        // known top-level domain (a relative link `top` is not the host `top`).
        let is_ip = host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok();
        if !seen.insert(host.clone()) || !(is_ip || super::valid_tld(&host, ctx.lists)) {
            continue;
        }
        let mut h = host.trim_matches(|c| c == '[' || c == ']');
        loop {
            if let Some(&listed) = hosts.get(h) {
                if listed {
                    return true;
                }
                break;
            }
            match h.split_once('.') {
                Some((_, parent)) if h.parse::<std::net::IpAddr>().is_err() => h = parent,
                _ => break,
            }
        }
    }
    false
}

fn subject_in(ctx: &Ctx, list: &str) -> bool {
    let subject = ctx.view.header("Subject").unwrap_or_default();
    ctx.lists
        .compiled
        .subjects
        .get(list)
        .is_some_and(|l| l.iter().any(|re| re.is_match(subject.trim_end())))
}

/// A bounce that quotes a Received field naming one of our outgoing relays
/// (`welcomelist_bounce_relays`): it answers mail we really sent.
fn bounce_relays(ctx: &Ctx, _: &[String]) -> bool {
    let relays = &ctx.lists.compiled.bounce_relays;
    if relays.is_empty() {
        return false;
    }
    let ours = |host: &str| {
        let host = host.to_ascii_lowercase();
        relays
            .iter()
            .any(|r| host == *r || host.ends_with(&format!(".{r}")))
    };
    let start = crate::spam::view::body_start(&ctx.view.full);
    let raw = String::from_utf8_lossy(&ctx.view.full[start..]);
    ctx.view
        .body
        .iter()
        .flat_map(|p| p.lines())
        .chain(raw.lines())
        .filter(|l| {
            let t = l.trim_start_matches(['>', ' ']).as_bytes();
            t.len() >= 9 && t[..9].eq_ignore_ascii_case(b"received:")
        })
        .any(|l| l.split_whitespace().filter(|w| w.contains('.')).any(ours))
}
