//! SpamAssassin 4.0.1's reading of one `Received` field, decision for decision.
//!
//! A port of `parse_received_line` in `Mail::SpamAssassin::Message::Metadata::Received`
//! (`Metadata/Received.pm`): the same preprocessing, the same patterns tried in the same
//! order (the first that fits wins), the same captures into the same fields, and the same
//! clean-up once a relay is found. What the caller does with the answer is
//! `parse_received_headers` (same file): a relay is kept, [`Parsed::Skip`] is dropped
//! silently, and [`Parsed::Unparseable`] is dropped but counted.
//!
//! SpamAssassin matches Perl regexes against the raw header bytes, so the patterns here
//! run on bytes too (`regex::bytes`, Unicode off): `\s`, `\S`, `\d`, `\b`, `.` and `(?i)`
//! then mean exactly what they mean to Perl on a byte string. The `regex` crate has no
//! lookaround; the few places SpamAssassin uses it are emulated by hand and say so.
//!
//! DRAFT: written against the Perl source without being compiled.

use regex::bytes::NoExpand;

#[macro_use]
mod pattern;
mod late;
mod mta;
mod nonstandard;
#[cfg(test)]
mod tests;

use late::*;
use mta::*;
use nonstandard::*;
use pattern::*;

/// What SpamAssassin makes of one `Received` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A handover it could read.
    Relay(ParsedRelay),
    /// A field it knows and ignores on purpose (local pickup, fetchmail, BSMTP, ...):
    /// no relay, and not counted as unparseable. Perl's `return 0`.
    Skip,
    /// A field it could not make sense of: no relay, counted in
    /// `num_relays_unparseable`. Perl's bare `return`.
    Unparseable,
}

/// One relay as `parse_received_line` builds it (the fields of its hash that do not
/// depend on trust; `lc_*` and `as_string` are derived from these).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedRelay {
    pub ip: String,
    pub rdns: String,
    pub helo: String,
    pub by: String,
    pub ident: String,
    pub envfrom: Option<String>,
    pub id: String,
    pub auth: String,
    /// The receiving MTA is known to look up reverse DNS and recorded none.
    pub no_reverse_dns: bool,
    /// No reverse DNS recorded, and the format does not say whether it was looked up.
    pub rdns_not_in_headers: bool,
    /// `ip` matches SpamAssassin's `IP_PRIVATE` (used when trust is inferred).
    pub ip_private: bool,
}

/// Side effects `parse_received_line` has on the parse of the whole header block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A POP3/IMAP fetcher's field (`found_pop_fetcher_sig`): if still inside the trusted
    /// relays, SpamAssassin forgets the trusted, internal and external relays seen so far.
    MailFetcher,
    /// A qmail-scanner field: the envelope sender it logged (cleaned as an `envfrom`) is
    /// the `envfrom` of the relay parsed from the *next* `Received` field, if that one
    /// gives a relay and the value is true to Perl (neither empty nor `"0"`).
    QmailScannerEnvFrom(Option<String>),
}

/// The first address in `s` as SpamAssassin's `m/($IP_ADDRESS)/` finds it (how it reads
/// an `originating_ip_headers` field).
pub fn first_ip_address(s: &str) -> Option<String> {
    set_line(s.as_bytes());
    caps(ip_re!(r"({IP})"), s.as_bytes(), &[1]).map(|c| text(&c, 1))
}

/// `ip` (a relay's cleaned address) is private as SpamAssassin's `IP_PRIVATE` says: what
/// its inferred trust takes as ours.
pub fn is_ip_private(ip: &str) -> bool {
    IP_PRIVATE.is_match(ip.as_bytes())
}

/// Parses one unfolded `Received` value (without the field name).
pub fn parse_received_line(value: &str) -> Parsed {
    parse_received_line_with_signal(value).0
}

/// [`parse_received_line`], with the side effect the field has on the rest of the parse.
pub fn parse_received_line_with_signal(value: &str) -> (Parsed, Option<Signal>) {
    let mut f = Fields::default();
    let verdict = read(value, &mut f);
    let signal = f.signal.take();
    let parsed = match verdict {
        Verdict::Enough => Parsed::Relay(finish(f)),
        Verdict::Skip => Parsed::Skip,
        Verdict::Unparseable => Parsed::Unparseable,
    };
    (parsed, signal)
}

// ---------------------------------------------------------------------------------------
// State

/// Perl's lexicals in `parse_received_line`. Branches that do not match may still have
/// set some of them (the Exim fallback does), and later branches keep what they do not
/// overwrite, so they live here rather than in each branch's result.
#[derive(Debug, Default)]
struct Fields {
    ip: String,
    helo: String,
    rdns: String,
    by: String,
    id: String,
    ident: String,
    envfrom: Option<String>,
    auth: String,
    /// Perl's `$mta_looked_up_dns`: the format is one whose MTA always records the reverse
    /// DNS it found, so an empty one means there was none.
    mta_looked_up_dns: bool,
    signal: Option<Signal>,
}

/// What one branch decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Not this one: go on to the next test.
    Next,
    /// `goto enough`: build the relay from the fields.
    Enough,
    /// `return 0`.
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Enough,
    Skip,
    Unparseable,
}

type Branch = fn(&[u8], &mut Fields) -> Step;

// ---------------------------------------------------------------------------------------
// The parse, top down

fn read(value: &str, f: &mut Fields) -> Verdict {
    set_line(value.as_bytes());
    let line = normalise(value);
    if skipped_before_parsing(&line) {
        return Verdict::Skip;
    }
    let line = strip_date(&line);
    extract_common(&line, f);
    f.auth = detect_auth(&line);

    // Perl strips the keyword in place (`s/^from //`), so the fall-through tests below
    // see the rest of the field.
    let (rest, step) = if let Some(rest) = line.strip_prefix(b"from ") {
        (rest, run(FROM_BRANCHES, rest, f))
    } else if let Some(rest) = line.strip_prefix(b"FROM ") {
        (rest, simta(rest, f))
    } else if let Some(rest) = line.strip_prefix(b"(from ") {
        (rest, parenthesised_from(rest, f))
    } else {
        (&line[..], Step::Next)
    };
    match step {
        Step::Enough => Verdict::Enough,
        Step::Skip => Verdict::Skip,
        Step::Next => fall_through(rest, f),
    }
}

fn run(branches: &[Branch], s: &[u8], f: &mut Fields) -> Step {
    for branch in branches {
        let step = branch(s, f);
        if step != Step::Next {
            return step;
        }
    }
    Step::Next
}

/// Whitespace runs become one space, the ends are trimmed, and trailing `;` go (with one
/// space before each).
fn normalise(value: &str) -> Vec<u8> {
    let squeezed = re!(r"\s+").replace_all(value.as_bytes(), NoExpand(b" "));
    let mut s: &[u8] = &squeezed;
    s = s.strip_prefix(b" ").unwrap_or(s);
    s = s.strip_suffix(b" ").unwrap_or(s);
    let mut s = s.to_vec();
    while let Some(end) = re!(r"\s?;$").find(&s).map(|m| m.start()) {
        s.truncate(end);
    }
    s
}

/// Fields that are no SMTP handover at all: not starting with `from` (`(qmail 123
/// invoked by uid 0)`, `by host (Postfix, from userid 0)`, ...), local Exim deliveries,
/// and `from NAME by HOST;` with nothing else (unless NAME is a bare `[a.b.c.d]`).
fn skipped_before_parsing(s: &[u8]) -> bool {
    if !re!(r"(?i)^\(?from ").is_match(s) {
        return true;
    }
    if re!(r"\bwith local for\b").is_match(s) {
        return true;
    }
    if let Some(c) = re!(r"(?i)^from (\S+) by [^\s;]+ ?;").captures(s) {
        return !c
            .get(1)
            .is_some_and(|m| re!(r"^\[[\d.]+\]$").is_match(m.as_bytes()));
    }
    false
}

/// Drops a trailing date (only when a single token follows the time: `-0400 (EDT)` keeps
/// it) and mends `...)by host` into `...) by host`.
fn strip_date(s: &[u8]) -> Vec<u8> {
    let s = re!(
        r"[\s;]+(?:(?:Mon|T(?:ue|hu)|Wed|Fri|S(?:at|un)), )?\d+ (?:J(?:an|u[nl])|Feb|Ma[ry]|A(?:pr|ug)|Sep|Oct|Nov|Dec) \d+ \d+:\d+(?::\d+)? \S+$"
    )
    .replace(s, NoExpand(b""));
    re!(r"\)by ").replace(&s, NoExpand(b") by ")).into_owned()
}

/// The message id, the HELO name (Exim's `helo=`, or a `HELO`/`EHLO` comment) and the
/// receiving host, wherever they appear; branches below may overwrite them.
fn extract_common(s: &[u8], f: &mut Fields) {
    if let Some(c) = re!(r" id <?([^\s<>;]{3,})").captures(s) {
        f.id = text(&c, 1);
    }
    if let Some(c) =
        re!(r"\bhelo=([\-A-Za-z0-9.\^+_&:=?!@%*$\\/]+)(?:[^\-A-Za-z0-9.\^+_&:=?!@%*$\\/]|$)")
            .captures(s)
    {
        f.helo = text(&c, 1);
    } else if let Some(c) = re!(
        r"\b(?:HELO|EHLO) ([\-A-Za-z0-9.\^+_&:=?!@%*$\\/]+)(?:[^\-A-Za-z0-9.\^+_&:=?!@%*$\\/]|$)"
    )
    .captures(s)
    {
        f.helo = text(&c, 1);
    }
    if let Some(c) = re!(r" by (\S+)(?:[^\-A-Za-z0-9;.]|$)").captures(s) {
        f.by = text(&c, 1);
    }
}

/// How the sender authenticated, if the field says so: RFC 3848 `with ESMTPA` and kin
/// first, then MTA-specific markers.
fn detect_auth(s: &[u8]) -> String {
    if has(s, " by ")
        && let Some(c) =
            re!(r"(?i) with ((?:ES|L|UTF8S|UTF8L)MTPS?A|ASMTP|HTTP[SU]?)(?: |;|$)").captures(s)
    {
        return text(&c, 1);
    }
    // Gmail's submission servers say ESMTPS for authenticated clients; their ids and TLS
    // comment give them away.
    if re!(r" by mx\.google\.com with ESMTPS id [a-z0-9]{1,4}sm[0-9]{2,9}[a-z]{3}\.[0-9]{1,3}\.[0-9]{4}\.(?:[0-6][0-9]\.){4}[0-6][0-9]").is_match(s)
        && let Some(c) = re!(r"\(version=([^ ]+) cipher=([^\)]+)\)").captures(s)
    {
        return format!("GMail - transport={} cipher={}", text(&c, 1), text(&c, 2));
    }
    // Courier.
    if let Some(c) =
        re!(r"^from .*?(?:\]\)|\)\]) \(AUTH: (LOGIN|PLAIN|DIGEST-MD5|CRAM-MD5) \S+(?:, .*?)?\) by ")
            .captures(s)
    {
        return text(&c, 1);
    }
    // Sendmail, MDaemon and some webmail: an `(authenticated ...)` comment after the client.
    if has(s, "authenticated")
        && re!(r"^from .*?(?:\](?: \([^)]*\))?\)|\)\]) .*?\(.*?authenticated.*?\).*? by")
            .is_match(s)
    {
        return "Sendmail".into();
    }
    // GMX authenticates its users without saying so.
    if let Some(c) = caps(
        ip_re!(
            r"from \S* \((?:HELO|EHLO) (\S*)\) \[({IP})\] by (mail\.gmx\.(?:net|com)) \([^\)]+\) with ((?:ESMTP|SMTP))"
        ),
        s,
        &[2],
    ) {
        return format!("GMX ({} / {})", text(&c, 4), text(&c, 3));
    }
    // Critical Path Messaging Server.
    if has(s, " (authenticated as ")
        && re!(r"\) by .+ \(\d{1,2}\.\d\.\d{3}(?:\.\d{1,3})?\) \(authenticated as .+\) id ")
            .is_match(s)
    {
        return "CriticalPath".into();
    }
    // Postfix with smtpd_sasl_authenticated_header; the name may be changed by mail_name.
    if let Some(c) = re!(r"\) \(Authenticated sender: \S+\) by \S+ \(([^\)]+)\) with ").captures(s)
    {
        let name = text(&c, 1);
        return if name == "Postfix" {
            name
        } else {
            format!("Postfix ({name})")
        };
    }
    if re!(r"CommuniGate Pro (HTTP|SMTP|XIMSS|IMAP)").is_match(s) && has(s, " (account ") {
        return "Communigate".into();
    }
    if re!(r" with Microsoft Exchange Server HTTP-DAV\b").is_match(s) {
        return "HTTP-DAV".into();
    }
    // Webmail that writes a `(via HTTP)` comment instead of a protocol.
    if has(s, " by ")
        && let Some(c) = re!(r"(?i) \(via (HTTP.?)\)(?: |;|$)").captures(s)
    {
        return text(&c, 1);
    }
    String::new()
}

/// The `from` branches, in SpamAssassin's order.
const FROM_BRANCHES: &[Branch] = &[
    envelope_sender,
    webmail,
    mta_signatures,
    numeric_helo_http,
    sendmail,
    nonstandard_early,
    nonstandard_named,
    qmail,
    bracketed_forms,
    fetchers_and_qmailish,
    nonstandard_late,
    nonstandard_later,
    nonstandard_last,
    ignored_handovers,
    guess_helo,
];

// ---------------------------------------------------------------------------------------
// After `enough:`

/// Builds the relay as SpamAssassin does once a branch is satisfied. There are no
/// further validity checks here in 4.0.1: even an empty `ip` (the Hotmail branch allows
/// one) gives a relay.
fn finish(f: Fields) -> ParsedRelay {
    // A trailing dot on the name goes; `unknown` and `[...]` are no name.
    let mut rdns = f.rdns.trim_end_matches('.').to_string();
    if rdns.eq_ignore_ascii_case("unknown") || rdns.starts_with('[') {
        rdns.clear();
    }

    let mut ip = f.ip;
    if ip.len() >= 5 && ip.as_bytes()[..5].eq_ignore_ascii_case(b"ipv6:") {
        ip.drain(..5);
    }
    if let Some(rest) = ip.strip_prefix('[') {
        ip = rest.to_string();
    }
    if let Some(rest) = ip.strip_suffix(']') {
        ip = rest.to_string();
    }
    // An IPv6 zone (`%eth0`) goes, and an IPv4-mapped address (`::ffff:a.b.c.d`, only
    // in its zero-compressed form) becomes plain IPv4.
    let unscoped = lossy(&re!(r"(?i)%[A-Z0-9._~\-]*\z").replace(ip.as_bytes(), NoExpand(b"")));
    ip = unscoped;
    let mapped = re!(r"(?i)^0*:0*:(?:0*:)*ffff:(\d+\.\d+\.\d+\.\d+)$")
        .captures(ip.as_bytes())
        .map(|c| text(&c, 1));
    if let Some(v4) = mapped {
        ip = v4;
    }
    let by = f.by.strip_suffix(';').unwrap_or(&f.by).to_string();

    let ip = flag_invalid(&ip);
    let rdns = flag_invalid(&rdns);
    let no_rdns = rdns.is_empty();
    let ip_private = is_ip_private(&ip);
    ParsedRelay {
        ip,
        helo: flag_invalid(&f.helo),
        by: flag_invalid(&by),
        ident: flag_invalid(&f.ident),
        envfrom: f.envfrom.as_deref().map(clean_envfrom),
        id: f.id,
        auth: f.auth,
        no_reverse_dns: no_rdns && f.mta_looked_up_dns,
        rdns_not_in_headers: no_rdns && !f.mta_looked_up_dns,
        ip_private,
        rdns,
    }
}

/// Characters that have no place in these fields become `!`, so that an address-literal
/// HELO `[1.2.3.4]` reads `!1.2.3.4!` (Perl's `[\s\000\#\[\]\(\)\<\>\|]`, `\s` being
/// ASCII whitespace on a byte string).
fn flag_invalid(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c' | '\0' | '#' | '[' | ']' | '(' | ')'
            | '<' | '>' | '|' => '!',
            c => c,
        })
        .collect()
}

/// An envelope sender without its angle brackets and surrounding space, invalid
/// characters flagged.
fn clean_envfrom(e: &str) -> String {
    let ws = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c');
    let e = e.trim_start_matches(ws).trim_start_matches('<');
    let e = e.trim_end_matches(ws).trim_end_matches('>');
    flag_invalid(e)
}
