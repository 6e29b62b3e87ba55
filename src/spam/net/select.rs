//! Which names a network rule asks about for one message, as SpamAssassin chooses them:
//! relay addresses by the set's suffix, the hosts and domains of the sender addresses, the
//! links' registered domains, an `askdns` template filled from the message's tags.

use super::{NetDefs, NetTest, Source, UriBl};
use crate::dns::{Query, QueryKind, Then, is_private, reverse_ip};
use crate::spam::eval::Lists;
use crate::spam::view::MessageView;
use crate::spam::view::uri::uri_host;
use std::net::IpAddr;

/// SpamAssassin's `num_check_received`: relay addresses looked up per set at most.
const MAX_RELAYS: usize = 9;

pub(super) struct Ctx<'a> {
    pub view: &'a MessageView,
    pub lists: &'a Lists,
    pub defs: &'a NetDefs,
    /// `originating_ip_headers`.
    pub originating: &'a [String],
}

/// The queries of `t` (none for `check_rbl_sub`: it reads its set's).
pub(super) fn queries(t: &NetTest, ctx: &Ctx) -> Vec<Query> {
    match t {
        NetTest::Dnsbl {
            set,
            zone,
            kind,
            source,
            nice,
            domains_only,
            ips_only,
            fields,
            ..
        } => {
            let names = match source {
                Source::Relays => relay_ips(set, *nice, ctx).iter().map(reverse_ip).collect(),
                other => names_of(*other, fields, ctx)
                    .into_iter()
                    .filter_map(|n| match n.parse::<IpAddr>() {
                        Ok(ip) if !domains_only => Some(reverse_ip(&ip)),
                        Ok(_) => None,
                        Err(_) if *ips_only || !valid_host(&n, ctx.lists) => None,
                        Err(_) => Some(n),
                    })
                    .collect::<Vec<_>>(),
            };
            names
                .into_iter()
                .map(|n| Query::new(&format!("{n}.{zone}"), *kind))
                .collect()
        }
        NetTest::DnsblSub { .. } | NetTest::Auth(_) | NetTest::UriIp(_) => Vec::new(),
        NetTest::Uri(bl) => uri_names(bl, ctx)
            .into_iter()
            .map(|n| Query::new(&format!("{n}.{}", bl.zone), bl.kind))
            .collect(),
        NetTest::Ask { template, kind, .. } => ask_names(template, ctx)
            .into_iter()
            .map(|n| Query::new(&n, *kind))
            .collect(),
    }
}

/// Public addresses, each once, in order.
fn uniq_public(ips: impl Iterator<Item = IpAddr>) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for ip in ips {
        if !is_private(&ip) && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

fn parse_ips<'r>(
    relays: impl Iterator<Item = &'r crate::spam::view::relays::Relay>,
) -> Vec<IpAddr> {
    relays.filter_map(|r| r.ip.parse().ok()).collect()
}

/// The relay addresses set `set` looks up (DNSEval's `_check_rbl_backend`).
fn relay_ips(set: &str, nice: bool, ctx: &Ctx) -> Vec<IpAddr> {
    let relays = &ctx.view.relays;
    let untrusted = parse_ips(relays.untrusted.iter());
    let external = parse_ips(relays.external());
    let trust = &ctx.defs.trust;
    let originating: Vec<IpAddr> = originating_ips(ctx)
        .into_iter()
        .filter(|ip| !trust.is_trusted(ip))
        .collect();
    if uniq_public(untrusted.iter().copied()).len() + originating.len() == 0 {
        return Vec::new();
    }
    let with_origin = || uniq_public(untrusted.iter().chain(&originating).copied());
    let mut list = if set.ends_with("-lastexternal") {
        uniq_public(external.into_iter())
            .into_iter()
            .take(1)
            .collect()
    } else if set.ends_with("-notfirsthop") {
        let mut l = uniq_public(external.into_iter());
        if l.len() > 1 {
            l.pop();
        }
        l
    } else if set.ends_with("-firsttrusted") {
        with_origin().into_iter().take(1).collect()
    } else if set.ends_with("-untrusted") {
        with_origin().into_iter().skip(1).collect()
    } else {
        let mut l = with_origin();
        l.reverse();
        l
    };
    list.truncate(MAX_RELAYS);
    if !nice {
        let keep_from = list
            .iter()
            .position(|ip| !trust.is_trusted(ip))
            .unwrap_or(list.len());
        list.drain(..keep_from);
    }
    list
}

/// Every address in the `originating_ip_headers` fields.
fn originating_ips(ctx: &Ctx) -> Vec<IpAddr> {
    ctx.originating
        .iter()
        .flat_map(|h| ctx.view.headers.raw_values(h))
        .flat_map(|v| {
            v.split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':'))
                .filter_map(|w| w.parse::<IpAddr>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The host of an address (`user@host`), lower case, dots squeezed.
fn host_of(addr: &str) -> Option<String> {
    let host = addr.rsplit_once('@')?.1;
    let host: Vec<&str> = host
        .trim()
        .trim_matches(|c| c == '>' || c == '<')
        .split('.')
        .filter(|l| !l.is_empty())
        .collect();
    (host.len() >= 2).then(|| host.join(".").to_ascii_lowercase())
}

/// A name SpamAssassin would look up: two labels or more, letters, digits, `-` and `_`,
/// under a top-level domain it knows (`util_rb_tld`).
fn valid_host(name: &str, lists: &Lists) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && labels.last().is_some_and(|tld| {
            lists
                .get("util_rb_tld")
                .is_some_and(|l| l.contains(&tld.to_ascii_lowercase()))
        })
}

/// The names a DNSEval rule of `source` (other than the relays) looks up.
fn names_of(source: Source, fields: &[String], ctx: &Ctx) -> Vec<String> {
    let mut out: Vec<String> = match source {
        Source::FromHost => ctx
            .view
            .all_from_addrs()
            .iter()
            .filter_map(|a| host_of(a))
            .collect(),
        Source::FromDomain => ctx
            .view
            .all_from_addrs()
            .iter()
            .filter_map(|a| host_of(a))
            .filter(|h| valid_host(h, ctx.lists))
            .map(|h| crate::spam::eval::registrable_in(&h, ctx.lists))
            .collect(),
        Source::EnvFrom => ctx
            .view
            .header("EnvelopeFrom:addr")
            .and_then(|a| host_of(&a))
            .into_iter()
            .collect(),
        Source::Headers => fields.iter().flat_map(|f| header_names(f, ctx)).collect(),
        Source::Rcvd => match ctx.view.relays.untrusted.last() {
            Some(r) => [&r.ip, &r.by, &r.helo, &r.rdns]
                .into_iter()
                .map(|s| s.trim_end_matches('.').to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
            None => Vec::new(),
        },
        Source::Relays => Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    out.retain(|n| seen.insert(n.clone()));
    out
}

/// `check_rbl_headers`: a field's address host, else each line of it that is an address
/// or a name.
fn header_names(field: &str, ctx: &Ctx) -> Vec<String> {
    if let Some(a) = ctx
        .view
        .header(&format!("{field}:addr"))
        .filter(|a| a.contains('@'))
    {
        return host_of(a.lines().next().unwrap_or(""))
            .into_iter()
            .collect();
    }
    ctx.view
        .header(field)
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().to_ascii_lowercase())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The names of a message's links (and DKIM signing domains) a URI blocklist looks up:
/// registered domains (or whole hosts with `notrim`), public IPv4 literals reversed; at
/// most `uridnsbl_max_domains` hosts, in order of appearance.
fn uri_names(bl: &UriBl, ctx: &Ctx) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    let dkim = ctx
        .view
        .headers
        .raw_values("DKIM-Signature")
        .into_iter()
        .filter_map(|v| dkim_domain(&v));
    for h in ctx.view.uris.iter().filter_map(|u| uri_host(u)).chain(dkim) {
        if hosts.len() >= ctx.defs.max_domains {
            break;
        }
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    let mut out: Vec<String> = Vec::new();
    for h in hosts {
        let name = match h.parse::<IpAddr>() {
            Ok(IpAddr::V4(v)) if !bl.domains_only && !is_private(&IpAddr::V4(v)) => {
                reverse_ip(&IpAddr::V4(v))
            }
            Ok(_) => continue,
            Err(_) if bl.ips_only || !valid_host(&h, ctx.lists) => continue,
            Err(_) => {
                let domain = crate::spam::eval::registrable_in(&h, ctx.lists);
                if ctx.defs.skip_domains.contains(&domain) || ctx.defs.skip_domains.contains(&h) {
                    continue;
                }
                if bl.notrim { h } else { domain }
            }
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// The lookups of the URI blocklists of addresses, shared by all of them: each link name's
/// addresses, and its registered domain's name servers' addresses, asked in the zones of
/// the rules with `tflags a` (SpamAssassin 4.0.1's routing; see [`super::UriIpBl`]).
pub(super) fn uri_ip_queries(rules: &[(usize, &NetTest)], ctx: &Ctx) -> Vec<Query> {
    let mut zones: Vec<String> = Vec::new();
    let mut any = false;
    for (_, t) in rules {
        if let NetTest::UriIp(bl) = t {
            any = true;
            if bl.a && !zones.contains(&bl.zone) {
                zones.push(bl.zone.clone());
            }
        }
    }
    if !any || zones.is_empty() {
        return Vec::new();
    }
    let names = UriBl {
        zone: String::new(),
        kind: QueryKind::A,
        sub: None,
        notrim: true,
        domains_only: true,
        ips_only: false,
    };
    let mut out = Vec::new();
    for host in uri_names(&names, ctx) {
        let domain = crate::spam::eval::registrable_in(&host, ctx.lists);
        out.push(Query::new(&host, QueryKind::A).then(Then::AddressesIn(zones.clone())));
        let ns = Query::new(&domain, QueryKind::Ns).then(Then::NamesThenAddressesIn(zones.clone()));
        if !out.contains(&ns) {
            out.push(ns);
        }
    }
    out
}

/// `d=` of a DKIM-Signature value.
fn dkim_domain(v: &str) -> Option<String> {
    v.split(';').find_map(|tag| {
        let (k, val) = tag.split_once('=')?;
        (k.trim() == "d").then(|| val.trim().to_ascii_lowercase())
    })
}

/// An `askdns` query with its tags filled; several when a tag has several values, none
/// when one has none.
fn ask_names(template: &str, ctx: &Ctx) -> Vec<String> {
    let mut names = vec![template.to_string()];
    for (tag, values) in tags(template, ctx) {
        if values.is_empty() {
            return Vec::new();
        }
        names = names
            .iter()
            .flat_map(|n| values.iter().map(|v| n.replace(&tag, v)))
            .collect();
    }
    // A tag we do not fill (`_URIHOSTS_` ...) blocks the query, as an unset tag does in
    // SpamAssassin. The DKIM tags stay, lower case, to be filled once the signatures are
    // verified (`super::fill_late`).
    names
        .into_iter()
        .filter(|n| !has_tag(n))
        .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
        .filter(|n| n.split('.').count() >= 2)
        .collect()
}

/// Whether `name` still holds a `_TAG_` (upper case, digits and inner underscores) other
/// than the DKIM ones filled later.
fn has_tag(name: &str) -> bool {
    name.split('.').any(|label| {
        !super::LATE_TAGS.contains(&label.to_ascii_lowercase().as_str())
            && label.len() > 2
            && label.starts_with('_')
            && label.ends_with('_')
            && label[1..label.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    })
}

/// The `_TAG_`s of a template with their values for this message.
fn tags(template: &str, ctx: &Ctx) -> Vec<(String, Vec<String>)> {
    let v = ctx.view;
    let mut out = Vec::new();
    let last_external = v.relays.external().next();
    for tag in [
        "SENDERDOMAIN",
        "AUTHORDOMAIN",
        "LASTEXTERNALIP",
        "LASTEXTERNALREVIP",
        "LASTEXTERNALRDNS",
        "LASTEXTERNALHELO",
    ] {
        let key = format!("_{tag}_");
        if !template.contains(&key) {
            continue;
        }
        let values: Vec<String> = match tag {
            "SENDERDOMAIN" => v
                .header("EnvelopeFrom:addr")
                .and_then(|a| host_of(&a))
                .into_iter()
                .collect(),
            "AUTHORDOMAIN" => v
                .header("From:addr")
                .unwrap_or_default()
                .lines()
                .filter_map(host_of)
                .collect(),
            "LASTEXTERNALIP" => last_external.map(|r| r.ip.clone()).into_iter().collect(),
            "LASTEXTERNALREVIP" => last_external
                .and_then(|r| r.ip.parse::<IpAddr>().ok())
                .map(|ip| reverse_ip(&ip))
                .into_iter()
                .collect(),
            "LASTEXTERNALRDNS" => last_external.map(|r| r.rdns.clone()).into_iter().collect(),
            _ => last_external.map(|r| r.helo.clone()).into_iter().collect(),
        };
        out.push((key, values.into_iter().filter(|s| !s.is_empty()).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfilled_tags_block_the_query() {
        assert!(has_tag("_URIHOSTS_.example.org") && has_tag("_FIRSTTRUSTEDIP_.x.org"));
        assert!(!has_tag("example.com.lookup.dkimwl.org") && !has_tag("_dmarc.example.com"));
        // The DKIM tags wait for the verification instead.
        assert!(!has_tag("_DKIMDOMAIN_.lookup.dkimwl.org"));
    }

    #[test]
    fn link_hosts() {
        assert_eq!(
            uri_host("http://User@Www.Example.COM:8080/x?y").as_deref(),
            Some("www.example.com")
        );
        assert_eq!(
            uri_host("https://[2001:db8::1]/").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(uri_host("mailto:a@example.com"), None);
        assert_eq!(uri_host("javascript:alert(1)"), None);
    }
}
