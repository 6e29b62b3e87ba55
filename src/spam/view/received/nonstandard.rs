//! The `from` branches for less regular formats, first half, in SpamAssassin's order.

use super::pattern::*;
use super::{Fields, Signal, Step};

/// Less regular formats, first part: Exchange IMS, Exim without `Exim` in the field,
/// AT&T (attbi), ident-only Sendmail.
pub(super) fn nonstandard_early(s: &[u8], f: &mut Fields) -> Step {
    // Exchange Internet Mail Service: `from helo (rdns [ip]) by host with SMTP (`.
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \((\S+) \[({IP})\]\) by (\S+) with \S+ \("),
        s,
        &[3],
    ) {
        f.mta_looked_up_dns = true;
        (f.rdns, f.ip, f.helo, f.by) = (text(&c, 2), text(&c, 3), text(&c, 1), text(&c, 4));
        return Step::Enough;
    }
    // Exim-style `from rdns ([ip] helo=name) by host with`.
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \(\[({IP})\] helo=(\S+)\) by (\S+) with "),
        s,
        &[2],
    ) {
        (f.rdns, f.ip, f.helo, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3), text(&c, 4));
        return Step::Enough;
    }
    // attbi without a name: `(<unknown.domain>[ip])`.
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \(<unknown\S*>\[({IP})\]\) by (\S+) "),
        s,
        &[2],
    ) {
        (f.helo, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3));
        return Step::Enough;
    }
    // attbi with a name: `(rdns[ip])`.
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \((\S+\.\S+)\[({IP})\]\) by (\S+) "),
        s,
        &[3],
    ) {
        f.mta_looked_up_dns = true;
        (f.helo, f.rdns, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3), text(&c, 4));
        return Step::Enough;
    }
    // Sendmail with an ident and no reverse DNS: `(user@[ip])`; it did look.
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \((\S*)@\[({IP})\].*\) by (\S+) \("),
        s,
        &[3],
    ) {
        f.mta_looked_up_dns = true;
        (f.helo, f.ip, f.by, f.ident) = (text(&c, 1), text(&c, 3), text(&c, 4), text(&c, 2));
        return Step::Enough;
    }
    Step::Next
}

/// Less regular formats, continued: Hotmail, qpsmtpd, LMTP, GMX, smtpd.
pub(super) fn nonstandard_named(s: &[u8], f: &mut Fields) -> Step {
    // Hotmail's web front ends: the address, if any, leads.
    if let Some(c) = re!(r"by (\S+\.hotmail\.msn\.com) ").captures(s) {
        f.by = text(&c, 1);
        if let Some(c) = caps(ip_re!(r"^({IP}) "), s, &[1]) {
            f.ip = text(&c, 1);
        }
        return Step::Enough;
    }
    // qpsmtpd: `from rdns (HELO name) (ip) by host (qpsmtpd/x) with SMTP`.
    if let Some(c) = caps(
        ip_re!(
            r"^(\S+) \((?:HELO|EHLO) (\S*)\) \(({IP})\) by (\S+) \(qpsmtpd/\S+\) with (?:ESMTP|SMTP)"
        ),
        s,
        &[3],
    ) {
        (f.rdns, f.helo, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3), text(&c, 4));
        return Step::Enough;
    }
    // LMTP hop: `from rdns (LHLO name) (ip) by host with LMTP`.
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \(LHLO (\S*)\) \(({IP})\) by (\S+) with LMTP"),
        s,
        &[3],
    ) {
        (f.rdns, f.helo, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3), text(&c, 4));
        return Step::Enough;
    }
    // GMX: `from rdns (EHLO name) [ip] by host (id) with SMTP`.
    if let Some(c) = caps(
        ip_re!(
            r"^(\S+) \((?:HELO|EHLO) (\S*)\) \[({IP})\] by (\S+) \([^\)]+\) with (?:ESMTP|SMTP)"
        ),
        s,
        &[3],
    ) {
        (f.rdns, f.helo, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3), text(&c, 4));
        return Step::Enough;
    }
    // A firewall's smtpd proxy: `by host via smtpd (for x) with SMTP(`.
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \(\[({IP})\]\) by (\S+) via smtpd \(for \S+\) with SMTP\("),
        s,
        &[2],
    ) {
        (f.helo, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3));
        return Step::Enough;
    }
    Step::Next
}

/// qmail and its patches: `from rdns|unknown (HELO name) (ident@ip) by host with SMTP`.
/// The HELO comment is left out when it equals the reverse DNS. qmail records a reverse
/// DNS only when its tcpserver looked one up, so `unknown` says nothing.
pub(super) fn qmail(s: &[u8], f: &mut Fields) -> Step {
    // Perl ends this guard with `(SMTP|QMQP)(?! id )`, which keeps Sendmail fields (`with
    // SMTP id x`) out. Nothing follows the lookahead and only a yes/no is wanted, so it
    // becomes the consuming alternatives "end, or anything but ` id `".
    if !re!(r"^\S+( \((?:HELO|EHLO) \S*\))? \((\S+@)?\[?{IP}\]?\)( \(envelope-sender <\S+>\))? by \S+( \(.+\))* with (.* )?(SMTP|QMQP)(?:$|[^ ]| $| [^i]| i$| i[^d]| id$| id[^ ])")
        .is_match(s)
    {
        return Step::Next;
    }
    if let Some(c) = caps(
        ip_re!(
            r"^(\S+) \((?:HELO|EHLO) ([^ \(\)]*)\) \((\S*)@\[?({IP})\]?\)( \(envelope-sender <\S+>\))? by (\S+)"
        ),
        s,
        &[4],
    ) {
        (f.rdns, f.helo, f.ident) = (text(&c, 1), text(&c, 2), text(&c, 3));
        (f.ip, f.by) = (text(&c, 4), text(&c, 6));
    } else if let Some(c) = caps(
        ip_re!(
            r"^(\S+) \((?:HELO|EHLO) ([^ \(\)]*)\) \(\[?({IP})\]?\)( \(envelope-sender <\S+>\))? by (\S+)"
        ),
        s,
        &[3],
    ) {
        (f.rdns, f.helo, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3), text(&c, 5));
    } else if let Some(c) = caps(
        ip_re!(r"^(\S+) \((\S*)@\[?({IP})\]?\)( \(envelope-sender <\S+>\))? by (\S+)"),
        s,
        &[3],
    ) {
        (f.helo, f.rdns, f.ident) = (text(&c, 1), text(&c, 1), text(&c, 2));
        (f.ip, f.by) = (text(&c, 3), text(&c, 5));
    } else if let Some(c) = caps(
        ip_re!(r"^(\S+) \(\[?({IP})\]?\)( \(envelope-sender <\S+>\))? by (\S+)"),
        s,
        &[2],
    ) {
        (f.helo, f.rdns, f.ip, f.by) = (text(&c, 1), text(&c, 1), text(&c, 2), text(&c, 4));
    }
    // Even when none of the four matched, this is a qmail field and parsing stops here.
    if f.rdns != "unknown" {
        f.mta_looked_up_dns = true;
    } else {
        f.rdns.clear();
    }
    Step::Enough
}

/// Bracketed-address forms: Yahoo and other webmail, MessageWall, MDaemon, and the
/// Sendmail and Courier variants the earlier patterns missed.
pub(super) fn bracketed_forms(s: &[u8], f: &mut Fields) -> Step {
    // Yahoo webmail: `from [ip] by host via HTTP`.
    if s.ends_with(b" via HTTP")
        && let Some(c) = caps(ip_re!(r"^\[({IP})\] by (\S+) via HTTP$"), s, &[1])
    {
        (f.ip, f.by) = (text(&c, 1), text(&c, 2));
        return Step::Enough;
    }
    // `from x ( [ip]) as user u by host`.
    if let Some(c) = caps(ip_re!(r"^(\S+) \( \[({IP})\]\).*? by (\S+) "), s, &[2]) {
        (f.ip, f.by) = (text(&c, 2), text(&c, 3));
        return Step::Enough;
    }
    if let Some(c) = caps(ip_re!(r"^\((\S+) \[({IP})\]\) by (\S+) "), s, &[2]) {
        (f.helo, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3));
        return Step::Enough;
    }
    if let Some(c) = caps(ip_re!(r"^\[({IP})\] by (\S+) "), s, &[1]) {
        (f.ip, f.by) = (text(&c, 1), text(&c, 2));
        return Step::Enough;
    }
    if let Some(c) = caps(ip_re!(r"^\(\[?({IP})\]?\) by (\S+) "), s, &[1]) {
        (f.ip, f.by) = (text(&c, 1), text(&c, 2));
        return Step::Enough;
    }
    // MDaemon, which looks the client up: `from helo [ip] by host [ip] with`.
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \[({IP})\] by (\S+) \[{IP}\] with "),
        s,
        &[2],
    ) {
        f.mta_looked_up_dns = true;
        (f.helo, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3));
        return Step::Enough;
    }
    // MDaemon 19: `from helo [(ip)] by host (ip)`.
    if let Some(c) = caps(ip_re!(r"^(\S+) \[\(({IP})\)\] by (\S+) \({IP}\) "), s, &[2]) {
        (f.helo, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3));
        return Step::Enough;
    }
    // Sendmail with no reverse DNS: `from helo ([ip]) by host (version)`.
    if let Some(c) = caps(ip_re!(r"^(\S+) \(\[({IP})\]\) by (\S+) \("), s, &[2]) {
        f.mta_looked_up_dns = true;
        (f.helo, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3));
        return Step::Enough;
    }
    // Sendmail and couriertcpd: `(rdns [ip])`; couriertcpd's `softdnserr` is no name.
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \((\S+) \[({IP})\]\).*? by (\S+)\b"),
        s,
        &[3],
    ) {
        if text(&c, 2) == "softdnserr" {
            f.mta_looked_up_dns = false;
        } else {
            f.mta_looked_up_dns = true;
            f.rdns = text(&c, 2);
        }
        (f.helo, f.ip, f.by) = (text(&c, 1), text(&c, 3), text(&c, 4));
        return Step::Enough;
    }
    // `([ip.port])` or `([ip:port])`.
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \(\[({IP})(?:[.:]\d+)?\]\).*? by (\S+) "),
        s,
        &[2],
    ) {
        f.mta_looked_up_dns = true;
        (f.helo, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3));
        return Step::Enough;
    }
    // Sendmail 8.12+ with `(authenticated bits=0)` between client and `by`.
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \((\S+) \[({IP})\]\)(?: \(authenticated bits=\d+\))? by (\S+) \("),
        s,
        &[3],
    ) {
        f.mta_looked_up_dns = true;
        (f.helo, f.rdns, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3), text(&c, 4));
        return Step::Enough;
    }
    Step::Next
}

/// Mail fetchers (fetchmail, getmail), then looser qmail forms, smap, Post.Office,
/// ArGoSoft, InterScan/SMTPL and BSMTP.
pub(super) fn fetchers_and_qmailish(s: &[u8], f: &mut Fields) -> Step {
    if re!(r"with (?:POP3|IMAP)").is_match(s) {
        f.signal = Some(Signal::MailFetcher);
        return Step::Skip;
    }
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \((?:HELO|EHLO) ([^\)]*)\) \((\S*@)?\[?({IP})\]?\).* by (\S+) "),
        s,
        &[4],
    ) {
        f.mta_looked_up_dns = true;
        (f.rdns, f.helo, f.ident) = (text(&c, 1), text(&c, 2), text(&c, 3));
        (f.ip, f.by) = (text(&c, 4), text(&c, 5));
        strip_ident_at(f);
        return Step::Enough;
    }
    // Without a HELO comment qmail's HELO was the reverse DNS.
    if let Some(c) = caps(
        ip_re!(r"^(\S+) \((\S*@)?\[?({IP})\]?\).* by (\S+) "),
        s,
        &[3],
    ) {
        f.mta_looked_up_dns = true;
        (f.rdns, f.helo, f.ident) = (text(&c, 1), text(&c, 1), text(&c, 2));
        (f.ip, f.by) = (text(&c, 3), text(&c, 4));
        strip_ident_at(f);
        return Step::Enough;
    }
    if has(s, " with http for ")
        && let Some(c) = caps(ip_re!(r"^\[({IP})\] by (\S+) with http for "), s, &[1])
    {
        (f.ip, f.by) = (text(&c, 1), text(&c, 2));
        return Step::Enough;
    }
    // TIS smap: `from rdns(ip) by host via smap`, and with `, HELO name`.
    if has(s, " via smap ")
        && let Some(c) = caps(ip_re!(r"^(\S+)\(({IP})\) by (\S+) via smap "), s, &[2])
    {
        f.mta_looked_up_dns = true;
        (f.rdns, f.ip, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3));
        return Step::Enough;
    }
    if let Some(c) = caps(
        ip_re!(r"^(\S+)\(({IP}), (?:HELO|EHLO) (\S*)\) by (\S+) via smap "),
        s,
        &[2],
    ) {
        f.mta_looked_up_dns = true;
        (f.rdns, f.ip, f.helo, f.by) = (text(&c, 1), text(&c, 2), text(&c, 3), text(&c, 4));
        return Step::Enough;
    }
    if has(s, " (Post")
        && let Some(c) = caps(ip_re!(r"^\[({IP})\] by (\S+) \(Post"), s, &[1])
    {
        (f.ip, f.by) = (text(&c, 1), text(&c, 2));
        return Step::Enough;
    }
    if has(s, " (ArGoSoft")
        && let Some(c) = caps(ip_re!(r"^\[({IP})\] by (\S+) \(ArGoSoft"), s, &[1])
    {
        (f.ip, f.by) = (text(&c, 1), text(&c, 2));
        return Step::Enough;
    }
    if let Some(c) = caps(ip_re!(r"^({IP}) by (\S+) \((?:SMTPL|InterScan)\b"), s, &[1]) {
        (f.ip, f.by) = (text(&c, 1), text(&c, 2));
        return Step::Enough;
    }
    // Batched SMTP is no TCP handover.
    if has(s, " with BSMTP") && re!(r"^\S+ by \S+ with BSMTP").is_match(s) {
        return Step::Skip;
    }
    Step::Next
}

/// Perl's `if ($ident) { $ident =~ s/\@$//; }`.
pub(super) fn strip_ident_at(f: &mut Fields) {
    if truthy(&f.ident)
        && let Some(rest) = f.ident.strip_suffix('@')
    {
        f.ident = rest.to_string();
    }
}
