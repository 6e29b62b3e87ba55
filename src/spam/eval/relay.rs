//! Eval functions over the relays and Received fields (SpamAssassin's RelayEval and the
//! forged-Received checks of HeaderEval).

use super::{Ctx, Func};
use crate::spam::view::relays::Relay;
use std::net::IpAddr;

pub(super) fn lookup(name: &str) -> Option<Func> {
    Some(match name {
        // As SpamAssassin's: a field no format fits leaves the answer open, so neither
        // "no relays" nor "all trusted" holds.
        "check_no_relays" => |c, _| {
            let r = &c.view.relays;
            r.all().next().is_none() && r.unparseable == 0
        },
        "check_all_trusted" => |c, _| {
            let r = &c.view.relays;
            !r.trusted.is_empty() && r.untrusted.is_empty() && r.unparseable == 0
        },
        "check_relays_unparseable" => |c, _| c.view.relays.unparseable > 0,
        "helo_ip_mismatch" => helo_ip_mismatch,
        "check_for_no_rdns_dotcom_helo" => no_rdns_dotcom_helo,
        "check_for_forged_yahoo_received_headers" => forged_yahoo,
        "check_for_forged_hotmail_received_headers" => |c, _| hotmail(c) == Hotmail::Forged,
        "check_for_no_hotmail_received_headers" => |c, _| hotmail(c) == Hotmail::Missing,
        "check_mailfrom_matches_rcvd" => mailfrom_matches_rcvd,
        _ => return None,
    })
}

/// The envelope sender's domain is the reverse DNS name (or in its registered domain) of the
/// relay that handed the message to us: the first untrusted one, or, when all are trusted,
/// any of them. A sender whose own servers deliver its mail is seldom forged, so many
/// SpamAssassin metas (`__RP_MATCHES_RCVD`) spare such mail.
fn mailfrom_matches_rcvd(ctx: &Ctx, _: &[String]) -> bool {
    let Some(domain) = ctx
        .view
        .header("EnvelopeFrom:addr")
        .and_then(|a| super::domain_of(&a))
    else {
        return false;
    };
    if !domain.contains('.') {
        return false;
    }
    let relays = &ctx.view.relays;
    // Only the first untrusted relay when there is one: the ones before it could be forged.
    let candidates: &[Relay] = match relays.untrusted.first() {
        Some(first) => std::slice::from_ref(first),
        None => &relays.trusted,
    };
    let registered = super::header::registrable(&domain, ctx);
    candidates.iter().any(|r| {
        let rdns = r.rdns.to_ascii_lowercase();
        !rdns.is_empty() && (rdns == domain || super::header::registrable(&rdns, ctx) == registered)
    })
}

fn public_v4(s: &str) -> bool {
    match s.parse::<IpAddr>() {
        Ok(IpAddr::V4(v)) => !(v.is_private() || v.is_loopback() || v.is_link_local()),
        _ => false,
    }
}

fn untrusted_public<'a>(ctx: &Ctx<'a>) -> impl Iterator<Item = &'a Relay> {
    ctx.view.relays.untrusted.iter().filter(|r| {
        r.ip.parse::<IpAddr>().is_ok_and(|ip| match ip {
            IpAddr::V4(v) => !(v.is_private() || v.is_loopback() || v.is_link_local()),
            IpAddr::V6(v) => !v.is_loopback(),
        })
    })
}

/// An untrusted relay that said HELO with a public IPv4 address outside its own /24.
fn helo_ip_mismatch(ctx: &Ctx, _: &[String]) -> bool {
    ctx.view.relays.untrusted.iter().any(|r| {
        public_v4(&r.helo)
            && public_v4(&r.ip)
            && r.helo != r.ip
            && r.helo
                .rsplit_once('.')
                .is_some_and(|(net, _)| !r.ip.starts_with(&format!("{net}.")))
    })
}

/// A big free-mail name in HELO from a host without reverse DNS. As in SpamAssassin, the
/// last public untrusted relay with a HELO decides.
fn no_rdns_dotcom_helo(ctx: &Ctx, _: &[String]) -> bool {
    const DOTCOMS: &[&str] = &[
        "lycos.com",
        "lycos.co.uk",
        "hotmail.com",
        "localhost.com",
        "excite.com",
        "caramail.com",
        "cs.com",
        "aol.com",
        "msn.com",
        "yahoo.com",
        "drizzle.com",
    ];
    let mut verdict = false;
    for r in untrusted_public(ctx) {
        let helo = r.helo.to_ascii_lowercase();
        let dotcom = DOTCOMS
            .iter()
            .any(|d| helo == *d || helo.ends_with(&format!(".{d}")));
        verdict = dotcom && r.no_rdns;
    }
    verdict
}

/// Every Received field, white space runs made one space.
fn received(ctx: &Ctx) -> String {
    ctx.view
        .headers
        .raw_values("Received")
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn matches(re: &str, text: &str) -> bool {
    super::pattern_matches(re, text.as_bytes())
}

const IP: &str = r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}";

/// Mailing-list software that strips Received fields (ezmlm, MSN groups), or none at all:
/// the forged-Received checks cannot judge.
fn received_stripped(ctx: &Ctx, rcvd: &str) -> bool {
    let h = &ctx.view.headers;
    if h.raw_values("Received").is_empty() || rcvd.contains("from groups.msn.com (") {
        return true;
    }
    h.raw_values("Mailing-List")
        .iter()
        .any(|m| m.contains("run by ezmlm"))
        && h.raw_values("Delivered-To")
            .iter()
            .any(|d| d.starts_with("mailing list "))
        && matches(
            r"qmail \d+ invoked (?:from network|by .{3,20})\); \d+ ... \d+",
            rcvd,
        )
}

/// From: a yahoo.com address, but no Received trail Yahoo writes.
fn forged_yahoo(ctx: &Ctx, _: &[String]) -> bool {
    let from = ctx
        .view
        .header("From:addr")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !matches(r"\byahoo\.com$", &from) {
        return false;
    }
    let rcvd = received(ctx);
    if received_stripped(ctx, &rcvd) {
        return false;
    }
    let yahoo_rdns = |r: &Relay| r.rdns.to_ascii_lowercase().ends_with(".yahoo.com");
    if ctx.view.relays.trusted.iter().any(yahoo_rdns)
        || ctx.view.relays.untrusted.first().is_some_and(yahoo_rdns)
    {
        return false;
    }
    let legit = [
        r"by web\S+\.mail\S*\.yahoo\.com via HTTP",
        r"by sonic\S+\.consmr\.mail\S*\.yahoo\.com with HTTP",
        r"by smtp\S+\.yahoo\.com with SMTP",
        &format!(r"from \[{IP}\] by \S+\.(?:groups|scd|dcn)\.yahoo\.com with NNFMP"),
        r"by \w+\.\w+\.yahoo\.com \(\d+\.\d+\.\d+/\d+\.\d+\.\d+\)(?: with ESMTP)? id \w+",
    ];
    if legit.iter().any(|re| matches(re, &rcvd)) {
        return false;
    }
    !(matches(r"\bmailer\d+\.bulk\.scd\.yahoo\.com\b", &rcvd) && from.ends_with("@reply.yahoo.com"))
}

#[derive(PartialEq)]
enum Hotmail {
    Fine,
    /// A Received field claims hotmail.com but Hotmail did not write it.
    Forged,
    /// From: a hotmail.com address, and no Received field from Hotmail.
    Missing,
}

fn hotmail(ctx: &Ctx) -> Hotmail {
    let rcvd = received(ctx);
    if rcvd.contains("from mail pickup service by hotmail.com with Microsoft SMTPSVC;")
        || received_stripped(ctx, &rcvd)
    {
        return Hotmail::Fine;
    }
    let h = &ctx.view.headers;
    let has_ip = h
        .raw_values("X-Originating-Ip")
        .iter()
        .any(|v| matches(IP, v));
    let has_org = h
        .raw_values("X-OriginatorOrg")
        .iter()
        .any(|v| matches(r"hotmail\.com|msonline-outlook", v));
    let genuine = (has_ip
        && matches(
            r"from (?:\S*\.)?hotmail.com \(\S+\.hotmail(?:\.msn)?\.com[ )]",
            &rcvd,
        ))
        || (has_org
            && matches(
                r"from \S*\.outbound\.protection\.outlook\.com \(\S+\.outbound\.protection\.outlook\.com[ )]",
                &rcvd,
            ))
        || (has_org
            && matches(
                &format!(r"from \S*\.(?:eur|nam)prd\d+\.prod\.outlook\.com \({IP}\)"),
                &rcvd,
            ))
        || (has_ip && matches(&format!(r"from \S*\.hotmail.com \(\[{IP}\][ ):]"), &rcvd))
        || (has_ip && matches(r"from \S+ by \S+\.hotmail(?:\.msn)?\.com with HTTP;", &rcvd))
        || (has_ip && matches(r"from \[66\.218.\S+\] by \S+\.yahoo\.com", &rcvd));
    if genuine {
        return Hotmail::Fine;
    }
    if matches(r"(?:from |HELO |helo=)\S*hotmail\.com\b", &rcvd) {
        return Hotmail::Forged;
    }
    let from = ctx
        .view
        .header("From:addr")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if matches(r"\bhotmail\.com$", &from) {
        Hotmail::Missing
    } else {
        Hotmail::Fine
    }
}
