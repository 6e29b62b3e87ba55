//! The `from` branches for less regular formats, second half, the ignored handovers
//! and the last-resort guesses, in SpamAssassin's order.

use super::mta::exim_helo_ident;
use super::pattern::*;
use super::{Fields, Signal, Step, Verdict, clean_envfrom};

/// Less regular formats, second part: Sendmail `with`, Yahoo, CommuniGate, IronPort,
/// Content Technologies, Tumbleweed.
pub(super) fn nonstandard_late(s: &[u8], f: &mut Fields) -> Step {
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \((\S+) \[({IP})\]\) by (\S+) with "),
        s,
        &[3],
    ) {
        f.mta_looked_up_dns = true;
        (f.helo, f.rdns, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3), text(&c, 4));
        return Step::Enough;
    }
    // Yahoo: `(user@ip with plain)`.
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \((?:HELO|EHLO) (\S*)\) \((?:(\S+)@)?({IP}).*?\) by (\S+) with "),
        s,
        &[4],
    ) {
        f.mta_looked_up_dns = true;
        (f.rdns, f.helo, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 4), text(&c, 5));
        if let Some(ident) = text_opt(&c, 3) {
            f.ident = ident;
        }
        return Step::Enough;
    }
    // CommuniGate Pro: `from [ip] (account x HELO name) by host (`.
    if let Some(c) = caps(
        ip_re!(r"^\[({IP})\] \((?:account \S+ )?(?:HELO|EHLO) (\S*)\) by (\S+) \("),
        s,
        &[1],
    ) {
        (f.ip, f.helo, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3));
        return Step::Enough;
    }
    // CommuniGate Pro: `from name ([ip] verified)`, the name being its lookup.
    if has(s, " (CommuniGate Pro")
        && let Some(c) = caps(
            ip_re!(r"^(\S+) \(\[({IP})\] verified\) by (\S+) \("),
            s,
            &[2],
        )
    {
        f.mta_looked_up_dns = true;
        (f.rdns, f.helo, f.ip, f.by) = (text(&c, 1), text(&c, 1), text(&c, 2), text(&c, 3));
        return Step::Enough;
    }
    if let Some(c) = caps(ip_re!(r"^\(\[({IP})\]\) by (\S+) with "), s, &[1]) {
        (f.ip, f.by) = (text(&c, 1), text(&c, 2));
        return Step::Enough;
    }
    // IronPort and the like: `from helo (ip) by host`, HELO not starting with a digit.
    if let Some(c) = caps(ip_re!(r"^([^\d]\S+) \(({IP})\) by (\S+) "), s, &[2]) {
        (f.helo, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3));
        return Step::Enough;
    }
    // Content Technologies gives no address.
    if re!(r"^\S+ \(\S+\) by \S+ \(Content Technologies ").is_match(s) {
        return Step::Skip;
    }
    // `([ip] [x])`: SpamAssassin does not know what the second one is either.
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \(\[({IP})\] \[(\S+)\]\) by (\S+) with "),
        s,
        &[2],
    ) {
        (f.helo, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 4));
        return Step::Enough;
    }
    // Tumbleweed: `from ip by host with`.
    if let Some(c) = caps(ip_re!(r"^({IP}) by (\S+) with "), s, &[1]) {
        (f.ip, f.by) = (text(&c, 1), text(&c, 2));
        return Step::Enough;
    }
    Step::Next
}

/// Less regular formats, third part: attbi, F-Secure, AltaVista, SMTPD32, csmap,
/// MailGate, `unverified`, proxied webmail.
pub(super) fn nonstandard_later(s: &[u8], f: &mut Fields) -> Step {
    if let Some(c) = caps(ip_re!(r"^(\S+) \((\S+)\[({IP})\]\) by (\S+) "), s, &[3]) {
        f.mta_looked_up_dns = true;
        (f.helo, f.rdns, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3), text(&c, 4));
        return Step::Enough;
    }
    if let Some(c) = caps(
        ip_re!(r"^\[({IP})\]\S+ \((?:HELO|EHLO) (\S*)\) by (\S+) "),
        s,
        &[1],
    ) {
        (f.ip, f.helo, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3));
        return Step::Enough;
    }
    if let Some(c) = caps(
        ip_re!(r"^({IP}) \((?:HELO|EHLO) (\S*)\) by (\S+) "),
        s,
        &[1],
    ) {
        (f.ip, f.helo, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3));
        return Step::Enough;
    }
    if let Some(c) = caps(ip_re!(r"^(\S+) \[({IP})\] by (\S+) "), s, &[2]) {
        (f.helo, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3));
        return Step::Enough;
    }
    if let Some(c) = caps(ip_re!(r"^(\S+)\(({IP})\) by (\S+) "), s, &[2]) {
        (f.rdns, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3));
        return Step::Enough;
    }
    if let Some(c) = caps(ip_re!(r"^\[({IP})\] by (\S+) \(MailGate "), s, &[1]) {
        (f.ip, f.by) = (text(&c, 1), text(&c, 2));
        return Step::Enough;
    }
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \(unverified \[({IP})\]\) by (\S+) "),
        s,
        &[2],
    ) {
        (f.helo, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3));
        return Step::Enough;
    }
    if let Some(c) = caps(
        ip_re!(r"^({IP}) \([A-Za-z][^\)]+\) by (\S+) with "),
        s,
        &[1],
    ) {
        (f.ip, f.by) = (text(&c, 1), text(&c, 2));
        return Step::Enough;
    }
    Step::Next
}

/// Less regular formats, last part: `[ip] (comment)` (CommuniGate, Exim, Nemesis),
/// `(ident@ip)`, Obtuse smtpd, Yahoo's authenticated SMTP, and the synthetic field
/// `parse_received_headers` makes from `X-Originating-IP` and its kin.
pub(super) fn nonstandard_last(s: &[u8], f: &mut Fields) -> Step {
    if let Some(c) = caps(ip_re!(r"^\[({IP})\] \(([^\)]+)\) by (\S+) "), s, &[1]) {
        f.ip = text(&c, 1);
        f.by = text(&c, 3);
        exim_helo_ident(c.get(2).map_or(Vec::new(), |m| m.as_bytes().to_vec()), f);
        return Step::Enough;
    }
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \((?:\S+@)?({IP})\) by (\S+) with "),
        s,
        &[2],
    ) {
        (f.rdns, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3));
        return Step::Enough;
    }
    // Obtuse smtpd: `from rdns(ip), claiming to be "helo" via SMTP by host,`; it writes
    // UNKNOWN when it found no name.
    if let Some(c) = caps(
        ip_re!(r#"^(\S+)\(({IP})\)(?:, claiming to be "(\S+)")? via \S+ by (\S+),"#),
        s,
        &[2],
    ) {
        (f.rdns, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 4));
        f.helo = text_opt(&c, 3).unwrap_or_default();
        if text(&c, 1) != "UNKNOWN" {
            f.mta_looked_up_dns = true;
            f.rdns = text(&c, 1);
        }
        return Step::Enough;
    }
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \((\S+)@({IP}) with login\) by (\S+\.yahoo\.com) with SMTP"),
        s,
        &[3],
    ) {
        (f.helo, f.ip, f.by) = (text(&c, 1), text(&c, 3), text(&c, 4));
        return Step::Enough;
    }
    if let Some(c) = caps(ip_re!(r"^X-Originating-IP: ({IP})$"), s, &[1]) {
        f.ip = text(&c, 1);
        f.by.clear();
        return Step::Enough;
    }
    Step::Next
}

/// Handovers SpamAssassin ignores on purpose, up to the qmail-scanner one: local
/// submissions and loopback hops, and known MTAs that log no client address.
pub(super) static IGNORED_BEFORE_QMAIL_SCANNER: [Pattern; 14] = [
    Pattern::new(r"^\S+ \([^\s@]+@{LOCALHOST}\) by \S+ \("),
    Pattern::new(r"^\S+ \S+ by \S+ with local-e?smtp "),
    Pattern::new(r"^127\.0\.0\.1 \(AVG SMTP \S+ \[\S+\]\)"),
    Pattern::new(r"^\S+@\S+ by \S+ by uid \S+ "),
    Pattern::new(r"^\S+@\S+ by \S+ "),
    Pattern::new(r"^Unknown/Local \("),
    Pattern::new(r"^{LOCALHOST} \((?:\S+@)?{LOCALHOST}[\)\[]"),
    Pattern::new(r"^\S+ \((?:\S+@)?{LOCALHOST}\) "),
    Pattern::new(r"^\S+ \(\S+@\S+ \[{LOCALHOST}\]\) "),
    Pattern::new(r"^\(AUTH: \S+\) by \S+ with "),
    Pattern::new(r"^localhost \(localhost \[\[UNIX: localhost\]\]\) by "),
    Pattern::new(r"^\S+\.amazon\.com by \S+\.amazon\.com with ESMTP \(peer crosscheck: "),
    Pattern::new(r"^[^.]+ by \S+ with Novell_GroupWise"),
    Pattern::new(r"^no\.name\.available by \S+ via smtpd \(for "),
];

/// The rest of the ignored handovers, after the qmail-scanner one.
pub(super) static IGNORED_AFTER_QMAIL_SCANNER: [Pattern; 12] = [
    Pattern::new(r"^\S+ by \S+ with local"),
    Pattern::new(
        r"^\S+ \(\[unix socket\]\) by \S+ \(Cyrus v[0-9]*?\.[0-9]*?\.[0-9]*?\) with LMTPA",
    ),
    Pattern::new(r"^\S+ by \S+ (?:with|via|for|\()"),
    Pattern::new(r"^\S+ (?:(?:with|via|for) \S+|\(unverified\)) by\b"),
    Pattern::new(r"^\S+ \(unknown\) by \S+ \(SG\) with \b"),
    Pattern::new(r"^\S+ \(\S+ \[local\]\) by \S+ \(OpenSMTPD\) with \b"),
    Pattern::new(r"\(LSMTP for"),
    Pattern::new(r"^\(\[{LOCALHOST}\]\) with MailEnable "),
    Pattern::new(r"^facebook\.com \([^\)]+\) by facebook\.com with Thrift id \S+$"),
    Pattern::new(r"^\S+ named \S+ by gmailapi\.google\.com with HTTPREST$"),
    Pattern::new(r"^\S+ id \S+$"),
    Pattern::new(r"^\[<.*? \(Jetsend"),
];

/// Perl's "STUFF TO IGNORE" list, in order. Only the qmail-scanner entry has a side
/// effect, so the plain entries before and after it can be tried as groups.
pub(super) fn ignored_handovers(s: &[u8], f: &mut Fields) -> Step {
    if IGNORED_BEFORE_QMAIL_SCANNER
        .iter()
        .any(|p| p.get().is_match(s))
    {
        return Step::Skip;
    }
    // qmail-scanner logs the handover the field above described; its envelope sender
    // goes to the next relay.
    if re!(r"^\S+ by \S+ \(.{0,100}\) with qmail-scanner").is_match(s) {
        let envfrom = f.envfrom.as_deref().map(clean_envfrom);
        f.signal = Some(Signal::QmailScannerEnvFrom(envfrom));
        return Step::Skip;
    }
    if IGNORED_AFTER_QMAIL_SCANNER
        .iter()
        .any(|p| p.get().is_match(s))
    {
        return Step::Skip;
    }
    Step::Next
}

/// Last in the `from` branch: with no HELO found yet, the first word (up to a character
/// a host name cannot have) is taken as one.
pub(super) fn guess_helo(s: &[u8], f: &mut Fields) -> Step {
    if !truthy(&f.helo)
        && let Some(c) = re!(r"^(\S+)[^\-A-Za-z0-9.]").captures(s)
    {
        f.helo = text(&c, 1);
    }
    Step::Next
}

/// simta, which writes its keywords in upper case: `FROM helo (rdns [ip]) BY host ID x`
/// (and Rockliffe's `... WITH SMTP ID <x> FOR <rcpt>`).
pub(super) fn simta(s: &[u8], f: &mut Fields) -> Step {
    if let Some(c) = caps(
        ip_re!(
            r"^(\S+) \((\S+) \[({IP})\]\) BY (\S+) (?:\([^\)]+\) WITH SMTP )?ID <?(\S+?)>?(?: FOR <[^>]+>)?$"
        ),
        s,
        &[3],
    ) {
        f.mta_looked_up_dns = true;
        (f.helo, f.rdns, f.ip) = (text(&c, 1), text(&c, 2), text(&c, 3));
        (f.by, f.id) = (text(&c, 4), text(&c, 5));
        if f.rdns == "unverified" {
            f.rdns.clear();
        }
        return Step::Enough;
    }
    Step::Next
}

/// `(from ...)`: Norton AntiVirus Gateway, and local submissions to skip.
pub(super) fn parenthesised_from(s: &[u8], f: &mut Fields) -> Step {
    if let Some(c) = caps(
        ip_re!(r"^(\S*) \[({IP})\]\) by (\S+) \(NAVGW .*?\) with "),
        s,
        &[2],
    ) {
        (f.helo, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3));
        return Step::Enough;
    }
    // `sendmail -t` run by a local user.
    if re!(r"^\S+@localhost\) by \S+ ").is_match(s) {
        return Step::Skip;
    }
    // Juno's jqueuemail. (As SpamAssassin writes it, this needs `host(jqueuemail)` with
    // no space, so the example it is meant for does not match; kept as is.)
    if re!(r"^[^\s@]+@[^)]+\) by \S+\(jqueuemail\) id [^\s;]+").is_match(s) {
        return Step::Skip;
    }
    Step::Next
}

/// After all the named forms: any bracketed address will do, and with an address and a
/// `by` the field counts as parsed.
pub(super) fn fall_through(s: &[u8], f: &mut Fields) -> Verdict {
    if !truthy(&f.ip)
        && let Some(c) = caps(ip_re!(r"\[({IP})\]"), s, &[1])
    {
        f.ip = text(&c, 1);
    }
    if truthy(&f.ip) && truthy(&f.by) {
        Verdict::Enough
    } else {
        Verdict::Unparseable
    }
}
