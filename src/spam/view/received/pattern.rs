//! The patterns of the Received parser and the helpers that run them: SpamAssassin's
//! address patterns rebuilt for the `regex` crate, and the lookarounds checked by hand.

use regex::bytes::{Captures, Regex, RegexBuilder};
use std::cell::Cell;
use std::sync::{LazyLock, OnceLock};

thread_local! {
    /// Whether the field being parsed on this thread could hold an IPv6 address (see
    /// [`Pattern`]).
    static IPV6_POSSIBLE: Cell<bool> = const { Cell::new(true) };
    /// Tests: every line gets the whole patterns, to compare both forms' answers.
    #[cfg(test)]
    pub(super) static ALWAYS_FULL: Cell<bool> = const { Cell::new(false) };
}

/// Notes, for the patterns used while parsing `line` on this thread, whether it could
/// hold an IPv6 address: every IPv6 form of `IP_ADDRESS` and `LOCALHOST` has a `::` or at
/// least six colons in one run of hex digits and colons; a line with neither (most lines:
/// a time has two) cannot match them.
pub(super) fn set_line(line: &[u8]) {
    #[cfg(test)]
    if ALWAYS_FULL.with(Cell::get) {
        IPV6_POSSIBLE.with(|c| c.set(true));
        return;
    }
    IPV6_POSSIBLE.with(|c| c.set(may_hold_ipv6(line)));
}

/// A string cut out of the line (what `cut` leaves) may join two runs: it can only make
/// IPv6 possible, never rule it out again.
fn note_derived(s: &[u8]) {
    if may_hold_ipv6(s) {
        IPV6_POSSIBLE.with(|c| c.set(true));
    }
}

pub(super) fn may_hold_ipv6(s: &[u8]) -> bool {
    if s.windows(2).any(|w| w == b"::") {
        return true;
    }
    let mut colons = 0;
    for &b in s {
        if b == b':' {
            colons += 1;
            if colons >= 6 {
                return true;
            }
        } else if !b.is_ascii_hexdigit() {
            colons = 0;
        }
    }
    false
}

fn ipv6_possible() -> bool {
    IPV6_POSSIBLE.with(Cell::get)
}

/// One of the parser's patterns in two compiled forms: the whole of it, and the same with
/// `IP_ADDRESS` and `LOCALHOST` cut to their IPv4 and name forms, which serves the lines
/// that cannot hold an IPv6 address and gives the same answers there. The IPv6
/// alternatives make each compiled pattern and each thread's search caches several times
/// larger (a hundred patterns: ~15 MiB more over four scan threads), so they are built
/// only when a line needs them.
pub(super) struct Pattern {
    template: &'static str,
    full: OnceLock<Regex>,
    v4: OnceLock<Regex>,
}

impl Pattern {
    pub(super) const fn new(template: &'static str) -> Self {
        Self {
            template,
            full: OnceLock::new(),
            v4: OnceLock::new(),
        }
    }

    /// The form for the line being parsed on this thread.
    pub(super) fn get(&self) -> &Regex {
        if ipv6_possible() {
            self.full.get_or_init(|| compile(self.template))
        } else {
            self.v4
                .get_or_init(|| compile_parts(self.template, &IPV4_ADDRESS, LOCALHOST_V4))
        }
    }
}

/// Compiles one of the patterns below: `{IP}` and `{LOCALHOST}` stand for SpamAssassin's
/// `IP_ADDRESS` and `LOCALHOST`; matching is on bytes with Unicode off, as Perl does.
/// The patterns are constants, so a failure is our bug, met by the first test that parses
/// a field (the same reasoning as `crate::spam::builtin_regex`).
pub(super) fn compile(template: &str) -> Regex {
    compile_parts(template, &IP_ADDRESS, &LOCALHOST)
}

/// [`compile`], with `ip` and `localhost` standing in for `{IP}` and `{LOCALHOST}`.
#[allow(clippy::panic)]
pub(super) fn compile_parts(template: &str, ip: &str, localhost: &str) -> Regex {
    let pattern = template
        .replace("{IP}", ip)
        .replace("{LOCALHOST}", localhost);
    RegexBuilder::new(&pattern)
        .unicode(false)
        .build()
        .unwrap_or_else(|e| panic!("Received pattern {template:?}: {e}"))
}

/// A pattern compiled once, where it is used (so the order reads as in the Perl), in the
/// form the line being parsed needs.
macro_rules! re {
    ($pattern:expr) => {{
        static RE: Pattern = Pattern::new($pattern);
        RE.get()
    }};
}

/// A pattern that captures addresses, for [`caps`]: compiled once, where it is used.
macro_rules! ip_re {
    ($pattern:expr) => {{
        static RE: IpPattern = IpPattern::new($pattern);
        &RE
    }};
}

/// One IPv4 octet, longest forms first (as in `Constants.pm`).
pub(super) const OCTET: &str = r"(?:1\d\d|2[0-4]\d|25[0-5]|[1-9]\d|\d)";

/// SpamAssassin's `IP_ADDRESS`: plain IPv4, IPv4 mapped in IPv6, or IPv6, optionally
/// `IPv6:`-prefixed, case-insensitive.
///
/// Changed for the `regex` crate:
/// * the lookbehinds (`(?<!:)` before IPv4, `(?<![a-f0-9:])` before IPv6) and the
///   lookahead (`(?![a-f0-9:])` after IPv6) are dropped here and checked on the captured
///   address by [`ip_fit`] in [`caps_where`]; every place the address is not captured
///   is between delimiters (`[ ]`, `( )`, `@`, space) for which they always hold;
/// * "trailing zeros omitted" (`(?:h:){1,7}:`) moves to the end of the pure-IPv6
///   alternatives. Without the lookahead it would win on a prefix (`2001:db8::` of
///   `2001:db8::1`) wherever free text follows the address; last, it only wins where Perl's
///   lookahead would also let it (the address really ends in `::`).
pub(super) static IP_ADDRESS: LazyLock<String> = LazyLock::new(|| ip_address(true));

/// `IP_ADDRESS` without its IPv4-mapped alternatives: where Perl, having matched one,
/// fails its lookahead, it backtracks into the pure IPv6 ones, which this gives
/// [`caps_where`] to try.
pub(super) static IP_ADDRESS_UNMAPPED: LazyLock<String> = LazyLock::new(|| ip_address(false));

/// `IP_ADDRESS`'s IPv4 alternative alone (see [`Pattern`]).
static IPV4_ADDRESS: LazyLock<String> =
    LazyLock::new(|| format!(r"(?i:\b{}\b)", [OCTET; 4].join(r"\.")));

/// `LOCALHOST`'s name and IPv4 alternatives alone (see [`Pattern`]).
static LOCALHOST_V4: &str = r"(?i:localhost(?:\.localdomain)?|\b127\.0\.0\.1\b)";

pub(super) fn ip_address(with_mapped: bool) -> String {
    let v4 = [OCTET; 4].join(r"\.");
    let mapped_head = [
        "(?:H:){6}",
        "::(?:H:){0,5}",
        "(?:H:){1,5}:",
        "H::(?:H:){1,4}",
        "(?:H:){2}:(?:H:){1,3}",
        "(?:H:){3}:(?:H:){1,2}",
        "(?:H:){4}:H:",
    ]
    .join("|")
    .replace('H', "[a-f0-9]{1,4}");
    let pure = [
        "(?:H:){7}H",
        ":(?::H){1,7}",
        "H:(?::H){1,6}",
        "(?:H:){2}(?::H){1,5}",
        "(?:H:){3}(?::H){1,4}",
        "(?:H:){4}(?::H){1,3}",
        "(?:H:){5}(?::H){1,2}",
        "(?:H:){6}:H",
        "(?:H:){1,7}:", // third in Constants.pm, see above
        "::",
    ]
    .join("|")
    .replace('H', "[a-f0-9]{1,4}");
    let mapped = if with_mapped {
        format!("(?:{mapped_head}){v4}|")
    } else {
        String::new()
    };
    format!(r"(?i:\b{v4}\b|(?:IPv6:)?(?:{mapped}{pure}))")
}

/// The first twelve bytes of an IPv4-mapped IPv6 address written with zeros only, as
/// `LOCALHOST` and `IP_PRIVATE` spell them.
pub(super) fn zero_mapped_heads() -> String {
    [
        "(?:Z:){5}ffff:",
        "::(?:Z:){0,4}ffff:",
        "(?:Z:){1,4}:ffff:",
        "Z::(?:Z:){1,3}ffff:",
        "(?:Z:){2}:0{1,2}:ffff:",
        "(?:Z:){3}:0:ffff:",
        "(?:Z:){4}:ffff:",
    ]
    .join("|")
    .replace('Z', "0{1,4}")
}

/// `::1` in all the spellings `LOCALHOST` and `IP_PRIVATE` accept.
pub(super) fn ipv6_loopback() -> String {
    [
        "(?:Z:){7}L",
        ":(?::Z){0,6}:L",
        "Z:(?::Z){0,5}:L",
        "(?:Z:){2}(?::Z){0,4}:L",
        "(?:Z:){3}(?::Z){0,3}:L",
        "(?:Z:){4}(?::Z){0,2}:L",
        "(?:Z:){5}(?::Z){0,1}:L",
        "(?:Z:){6}:L",
    ]
    .join("|")
    .replace('Z', "0{1,4}")
    .replace('L', "0{0,3}1")
}

/// SpamAssassin's `LOCALHOST`. Its lookarounds are dropped: it is only used in tests
/// (never captured) where it sits between `@`/`(`/`[`/start and `)`/`]`/`[`/space, where
/// they always hold, so a match here is a match there and back.
pub(super) static LOCALHOST: LazyLock<String> = LazyLock::new(|| {
    format!(
        r"(?i:localhost(?:\.localdomain)?|\b127\.0\.0\.1\b|(?:IPv6:)?(?:(?:{})127\.0\.0\.1|{}))",
        zero_mapped_heads(),
        ipv6_loopback()
    )
});

/// SpamAssassin's `IP_PRIVATE`, matched against a relay's cleaned address. It is anchored
/// at the start, so its lookbehind always holds; its final lookahead becomes a consuming
/// `(?:$|[^a-f0-9:])`, exact here because nothing follows it and only `is_match` is asked.
pub(super) static IP_PRIVATE: LazyLock<Regex> = LazyLock::new(|| {
    let v4 = r"(?:10|127|169\.254|172\.(?:1[6-9]|2[0-9]|3[01])|192\.168|100\.(?:6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7]))";
    compile(&format!(
        r"^(?i:{v4}\..*|(?:IPv6:)?(?:(?:{heads}){v4}\..*|fe[89ab][0-9a-f]:.*|{loopback})(?:$|[^a-f0-9:]))",
        heads = zero_mapped_heads(),
        loopback = ipv6_loopback(),
    ))
});

/// A pattern with `{IP}` in it, plus the same without the IPv4-mapped alternatives
/// (compiled only if ever needed).
pub(super) struct IpPattern {
    pattern: Pattern,
    unmapped: OnceLock<Regex>,
}

impl IpPattern {
    pub(super) const fn new(template: &'static str) -> Self {
        Self {
            pattern: Pattern::new(template),
            unmapped: OnceLock::new(),
        }
    }

    pub(super) fn get(&self) -> &Regex {
        self.pattern.get()
    }

    /// Only asked for an address with a colon in it, so only on lines that may hold IPv6.
    pub(super) fn unmapped(&self) -> &Regex {
        self.unmapped
            .get_or_init(|| compile_parts(self.pattern.template, &IP_ADDRESS_UNMAPPED, &LOCALHOST))
    }
}

/// How an address a pattern captured fares against the lookarounds of `IP_ADDRESS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fit {
    Yes,
    No,
    /// An IPv4-mapped address that fails only the lookahead: Perl would go on to the
    /// pure IPv6 alternatives from the same place.
    TryUnmapped,
}

/// The lookarounds of `IP_ADDRESS`, checked on an address captured at `hay[start..end]`:
/// an IPv4 address (no colon) must not follow a `:`; an IPv6 one must neither follow
/// (unless `IPv6:`-prefixed) nor precede a hex digit or `:`.
pub(super) fn ip_fit(hay: &[u8], start: usize, end: usize) -> Fit {
    let hex_or_colon = |b: &u8| b.is_ascii_hexdigit() || *b == b':';
    let ip = &hay[start..end];
    let before = start.checked_sub(1).map(|i| hay[i]);
    if !ip.contains(&b':') {
        return if before == Some(b':') {
            Fit::No
        } else {
            Fit::Yes
        };
    }
    let prefixed = ip.len() >= 5 && ip[..5].eq_ignore_ascii_case(b"IPv6:");
    if !prefixed && before.as_ref().is_some_and(hex_or_colon) {
        Fit::No
    } else if !hay.get(end).is_some_and(hex_or_colon) {
        Fit::Yes
    } else if ip.contains(&b'.') {
        Fit::TryUnmapped
    } else {
        Fit::No
    }
}

/// The worst fit among the address groups `ip_groups` of `c`.
pub(super) fn fit_all(hay: &[u8], c: &Captures<'_>, ip_groups: &[usize]) -> Fit {
    let mut fit = Fit::Yes;
    for m in ip_groups.iter().filter_map(|&g| c.get(g)) {
        match ip_fit(hay, m.start(), m.end()) {
            Fit::No => return Fit::No,
            Fit::TryUnmapped => fit = Fit::TryUnmapped,
            Fit::Yes => {}
        }
    }
    fit
}

/// Captures of `p` in `hay` whose address groups `ip_groups` pass the lookarounds of
/// `IP_ADDRESS`.
pub(super) fn caps<'h>(p: &IpPattern, hay: &'h [u8], ip_groups: &[usize]) -> Option<Captures<'h>> {
    caps_where(p, hay, ip_groups, |_| true)
}

/// [`caps`], the match also passing `extra` (another emulated lookaround).
///
/// Perl backtracks on a failed lookaround; the `regex` crate gives one match per start.
/// When that match fails, this does what Perl would do next: an IPv4-mapped address that
/// only fails the lookahead is tried again as pure IPv6 from the same start; otherwise
/// the search moves one byte on. (Other paths from the same start end the address at the
/// same place, so they cannot pass either, save where an optional part before the
/// address could also start it elsewhere: see the notes.)
pub(super) fn caps_where<'h>(
    p: &IpPattern,
    hay: &'h [u8],
    ip_groups: &[usize],
    extra: impl Fn(&Captures<'h>) -> bool,
) -> Option<Captures<'h>> {
    let mut from = 0;
    while from <= hay.len() {
        let c = p.get().captures_at(hay, from)?;
        let start = c.get_match().start();
        match fit_all(hay, &c, ip_groups) {
            Fit::Yes if extra(&c) => return Some(c),
            Fit::TryUnmapped => {
                let again = p
                    .unmapped()
                    .captures_at(hay, start)
                    .filter(|u| u.get_match().start() == start)
                    .filter(|u| fit_all(hay, u, ip_groups) == Fit::Yes && extra(u));
                if again.is_some() {
                    return again;
                }
            }
            Fit::Yes | Fit::No => {}
        }
        from = start + 1;
    }
    None
}

pub(super) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Group `i` as text, empty when it did not take part (Perl's undef interpolates as "").
pub(super) fn text(c: &Captures<'_>, i: usize) -> String {
    c.get(i).map_or_else(String::new, |m| lossy(m.as_bytes()))
}

/// Group `i`, `None` when it did not take part (for Perl's `defined $n` tests).
pub(super) fn text_opt(c: &Captures<'_>, i: usize) -> Option<String> {
    c.get(i).map(|m| lossy(m.as_bytes()))
}

/// Whether `s` contains the literal `lit` (Perl tests such as `/ SMTPSVC/`).
pub(super) fn has(s: &[u8], lit: &str) -> bool {
    s.windows(lit.len()).any(|w| w == lit.as_bytes())
}

/// Perl's truth for a string: neither empty nor `"0"`.
pub(super) fn truthy(s: &str) -> bool {
    !s.is_empty() && s != "0"
}

/// Perl's `$sub =~ s/PATTERN// and $field = $1`: cuts the first match out of `sub` and
/// gives its first group.
pub(super) fn cut(re: &Regex, sub: &mut Vec<u8>) -> Option<String> {
    let c = re.captures(sub.as_slice())?;
    let (whole, value) = (c.get_match().range(), text(&c, 1));
    sub.drain(whole);
    note_derived(sub);
    Some(value)
}
