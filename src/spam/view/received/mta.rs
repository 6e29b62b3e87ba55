//! The `from` branches for the formats of named MTAs (webmail, Microsoft, XMail,
//! ecelerity, Exim, Postfix, Scalix, Lotus, Sendmail), in SpamAssassin's order.

use super::pattern::*;
use super::{Fields, Step};

/// Not a decision: notes an envelope sender given in the field.
pub(super) fn envelope_sender(s: &[u8], f: &mut Fields) -> Step {
    if let Some(c) = re!(r"(?i)(?:return-path:? |envelope-(?:sender|from)[ =])(\S+)\b").captures(s)
    {
        f.envfrom = Some(text(&c, 1));
    }
    Step::Next
}

/// SquirrelMail/NaSMail and AOL webmail: the client address, and the web server as `by`.
pub(super) fn webmail(s: &[u8], f: &mut Fields) -> Step {
    if re!(r" \((?:SquirrelMail|NaSMail) authenticated user ").is_match(s) {
        // Perl: `(IP)\b(?![.-])`; the lookahead is checked on the byte after the address.
        let found = caps_where(
            ip_re!(r"({IP})\b.{10,80}by (\S+) with HTTP"),
            s,
            &[1],
            |c| {
                c.get(1)
                    .is_some_and(|m| !matches!(s.get(m.end()), Some(b'.' | b'-')))
            },
        );
        if let Some(c) = found {
            f.ip = text(&c, 1);
            f.by = text(&c, 2);
            return Step::Enough;
        }
    }
    if has(s, "aol.com")
        && has(s, "with HTTP (WebMailUI)")
        && let Some(c) = caps(
            ip_re!(r"({IP}) by (\S+) \({IP}\) with HTTP \(WebMailUI\)"),
            s,
            &[1],
        )
    {
        f.ip = text(&c, 1);
        f.by = text(&c, 2);
        return Step::Enough;
    }
    Step::Next
}

/// The `if/elsif` chain keyed on an MTA's signature: only the first signature present
/// gets its patterns tried, and if none fits, parsing goes on with the general forms.
pub(super) fn mta_signatures(s: &[u8], f: &mut Fields) -> Step {
    if has(s, " SMTPSVC") {
        microsoft_smtpsvc(s, f)
    } else if re!(
        r" with (?:Microsoft SMTP Server|mapi id) (?:\([^\)]+\) )?\d+\.\d+\.\d+\.\d+(?:$| )"
    )
    .is_match(s)
    {
        microsoft_smtp_server(s, f)
    } else if has(s, "[XMail ") {
        xmail(s, f)
    } else if re!(r"\(ecelerity\b").is_match(s) {
        ecelerity(s, f)
    } else if has(s, "Exim") {
        exim(s, f)
    } else if has(s, " (Postfix) with") {
        postfix(s, f)
    } else if has(s, "(Scalix SMTP Relay") {
        scalix(s, f)
    } else if has(s, " (Lotus Domino ") {
        lotus(s, f)
    } else {
        Step::Next
    }
}

/// IIS's SMTP service, which never records reverse DNS.
pub(super) fn microsoft_smtpsvc(s: &[u8], f: &mut Fields) -> Step {
    if let Some(c) = caps(
        ip_re!(r"^(\S*) \(\[({IP})\][^\)]{0,40}\) by (\S+) with Microsoft SMTPSVC"),
        s,
        &[2],
    ) {
        f.helo = text(&c, 1);
        f.ip = text(&c, 2);
        f.by = text(&c, 3);
        return Step::Enough;
    }
    // Its own pickup directory: no network handover.
    if re!(r"^mail pickup service by (\S+) with Microsoft SMTPSVC$").is_match(s) {
        return Step::Skip;
    }
    Step::Next
}

/// Exchange 2013 and later (`with Microsoft SMTP Server ... id 15.1.x.y`, `with mapi id`):
/// the name before the address is the HELO; its version-like `id` is dropped.
pub(super) fn microsoft_smtp_server(s: &[u8], f: &mut Fields) -> Step {
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \(\[?({IP})(?:%[A-Z0-9._~\-]*)?\]?\) by (\S+) "),
        s,
        &[2],
    ) {
        f.helo = text(&c, 1);
        f.ip = text(&c, 2);
        f.by = text(&c, 3);
        f.id.clear();
        return Step::Enough;
    }
    Step::Next
}

/// XMail, which writes the client's port and its own `id <...>` and `from <...>`.
pub(super) fn xmail(s: &[u8], f: &mut Fields) -> Step {
    // Perl's group 2 is `(\[?IP\]?)`; the address inside gets a group of its own here
    // (3) for the lookaround check, which moves `by` from 3 to 4.
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \((\[?({IP})\]?)(?::\d+)\) by (\S+)(?: \(\S+\))? with \[XMail"),
        s,
        &[3],
    ) {
        f.helo = text(&c, 1);
        f.ip = text(&c, 2);
        f.by = text(&c, 4);
        if let Some(c) = re!(r" id <(\S+)>").captures(s) {
            f.id = text(&c, 1);
        }
        if let Some(c) = re!(r" from <(\S+)>").captures(s) {
            f.envfrom = Some(text(&c, 1));
        }
        return Step::Enough;
    }
    Step::Next
}

/// Message Systems' ecelerity: `from ([ip:port] helo=name)` or `from name ([ip:port])`.
pub(super) fn ecelerity(s: &[u8], f: &mut Fields) -> Step {
    if let Some(c) = caps(ip_re!(r"^\(\[({IP}):\d+\] helo=(\S+)\) by (\S+) "), s, &[1]) {
        f.ip = text(&c, 1);
        f.helo = text(&c, 2);
        f.by = text(&c, 3);
        return Step::Enough;
    }
    if let Some(c) = caps(ip_re!(r"^\S+ \(\[({IP}):\d+\]\) by (\S+) "), s, &[1]) {
        f.ip = text(&c, 1);
        f.by = text(&c, 2);
        return Step::Enough;
    }
    Step::Next
}

/// Exim's many formats. The last resort picks up pieces one by one; what it finds stays
/// in the fields even when it gives up.
pub(super) fn exim(s: &[u8], f: &mut Fields) -> Step {
    // Local submission (`with local`, `local-esmtp`, `local-bsmtp`, ...).
    if re!(r"\bwith local(?:-\S+)? ").is_match(s) {
        return Step::Skip;
    }
    // `from [ip] (helo=name ident=x) by host`: no reverse DNS.
    if let Some(c) = caps(ip_re!(r"^\[({IP})\] \((.*?)\) by (\S+) "), s, &[1]) {
        f.ip = text(&c, 1);
        f.by = text(&c, 3);
        exim_helo_ident(c.get(2).map_or(Vec::new(), |m| m.as_bytes().to_vec()), f);
        return Step::Enough;
    }
    // `from rdns ([ip] helo=name)`: the HELO defaults to the rDNS (it is omitted when
    // they agree).
    if let Some(c) = caps(ip_re!(r"^(\S+) \(\[({IP})\](.*?)\) by (\S+) "), s, &[2]) {
        f.rdns = text(&c, 1);
        f.ip = text(&c, 2);
        f.by = text(&c, 4);
        f.helo = f.rdns.clone();
        exim_helo_ident(c.get(3).map_or(Vec::new(), |m| m.as_bytes().to_vec()), f);
        return Step::Enough;
    }
    // Old Exim: `from name [ip] by host`.
    if let Some(c) = caps(ip_re!(r"^(\S+) \[({IP})\](:\d+)? by (\S+) "), s, &[2]) {
        f.rdns = text(&c, 1);
        f.ip = text(&c, 2);
        f.helo = text(&c, 1);
        f.by = text(&c, 4);
        return Step::Enough;
    }
    // Last resort: first word as rDNS, a `(name)` as HELO, a `[ip]` (maybe `.port`).
    if let Some(c) = re!(r"^(\S+) ").captures(s) {
        f.rdns = text(&c, 1);
    }
    if let Some(c) = re!(r" \((\S+)\) ").captures(s) {
        f.helo = text(&c, 1);
    }
    if let Some(c) = caps(ip_re!(r" \[({IP})(?:\.\d+)?\] "), s, &[1]) {
        f.ip = text(&c, 1);
    }
    if let Some(c) = re!(r"by (\S+) ").captures(s) {
        f.by = text(&c, 1);
        if truthy(&f.ip) {
            return Step::Enough;
        }
    }
    Step::Next
}

/// Exim's comment after the address: `helo=` then `ident=`, each cut out before the
/// next is looked for.
pub(super) fn exim_helo_ident(mut sub: Vec<u8>, f: &mut Fields) {
    if let Some(helo) = cut(re!(r"helo=(\S+)"), &mut sub) {
        f.helo = helo;
    }
    if let Some(ident) = cut(re!(r"ident=(\S*)"), &mut sub) {
        f.ident = ident;
    }
}

/// Postfix always looks up the client, and writes `unknown` when there is no name.
pub(super) fn postfix(s: &[u8], f: &mut Fields) -> Step {
    let found = caps(ip_re!(r"^(\S+) \((\S+) \[({IP})\]\) by (\S+) "), s, &[3])
        // pobox.com's variant without the space.
        .or_else(|| caps(ip_re!(r"^(\S+) \((\S+)\[({IP})\]\) by (\S+) "), s, &[3]));
    if let Some(c) = found {
        f.mta_looked_up_dns = true;
        f.helo = text(&c, 1);
        f.rdns = text(&c, 2);
        f.ip = text(&c, 3);
        f.by = text(&c, 4);
        if f.rdns == "unknown" {
            f.rdns.clear();
        }
        return Step::Enough;
    }
    Step::Next
}

pub(super) fn scalix(s: &[u8], f: &mut Fields) -> Step {
    if let Some(c) = caps(ip_re!(r"^(\S+) \( ?({IP})\) by (\S+)"), s, &[2]) {
        f.helo = text(&c, 1);
        f.ip = text(&c, 2);
        f.by = text(&c, 3);
        return Step::Enough;
    }
    Step::Next
}

/// Lotus Domino never records reverse DNS.
pub(super) fn lotus(s: &[u8], f: &mut Fields) -> Step {
    if let Some(c) = caps(ip_re!(r"^(\S+) \(\[({IP})\]\) by (\S+) \(Lotus"), s, &[2]) {
        f.mta_looked_up_dns = false;
        f.helo = text(&c, 1);
        f.ip = text(&c, 2);
        f.by = text(&c, 3);
        return Step::Enough;
    }
    Step::Next
}

/// Webmail (IMP) that fakes a numeric HELO: `from ip ([ip]) by host ... with HTTP`.
pub(super) fn numeric_helo_http(s: &[u8], f: &mut Fields) -> Step {
    if re!(r"\bwith HTTP\b").is_match(s)
        && let Some(c) = caps(ip_re!(r"^({IP}) \(\[{IP}\]\) by (\S+)"), s, &[1])
    {
        f.ip = text(&c, 1);
        f.by = text(&c, 2);
        return Step::Enough;
    }
    Step::Next
}

/// Sendmail's `from helo (rdns [ip] ...) by host (version)`, which may carry an ident
/// (`IDENT:user@rdns`, `user@rdns`). Skipped for qmail-ldap, whose fields look alike.
pub(super) fn sendmail(s: &[u8], f: &mut Fields) -> Step {
    if re!(r" by \S+ \(qmail-\S+\) with ").is_match(s) {
        return Step::Next;
    }
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \((\S+) \[({IP})\].*\) by (\S+) \("),
        s,
        &[3],
    ) {
        f.mta_looked_up_dns = true;
        f.helo = text(&c, 1);
        f.rdns = text(&c, 2);
        f.ip = text(&c, 3);
        f.by = text(&c, 4);
        let mut rdns = std::mem::take(&mut f.rdns).into_bytes();
        if let Some(ident) = cut(re!(r"^IDENT:([^@]*)@"), &mut rdns) {
            f.ident = ident;
        }
        if let Some(ident) = cut(re!(r"^([^@]*)@"), &mut rdns) {
            f.ident = ident;
        }
        f.rdns = lossy(&rdns);
        return Step::Enough;
    }
    Step::Next
}
