//! The relays a message passed through, from its `Received` fields, as SpamAssassin's
//! pseudo-headers `X-Spam-Relays-Trusted`, `-Untrusted`, `-Internal` and `-External` show
//! them: `[ ip=... rdns=... helo=... by=... ident= envfrom=... intl=0|1 id=... auth=... msa=0 ]`.
//!
//! Trust comes from `trusted_networks` and its kin, or is inferred as SpamAssassin does
//! when they are not set (see [`super::trust`]). A `Received` field with no address in its
//! `from` part (local submission, `qmail invoked by`) is no relay.

use super::trust::Trust;
use std::net::IpAddr;

/// One parsed relay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Relay {
    pub ip: String,
    pub rdns: String,
    pub helo: String,
    pub by: String,
    pub ident: String,
    pub envfrom: String,
    pub id: String,
    pub auth: String,
    pub internal: bool,
    /// It is in `msa_networks`: a submission server, whose clients count as ours.
    pub msa: bool,
    /// The receiving MTA looked the address up and found no reverse DNS (an empty `rdns`
    /// may also mean it did not look).
    pub no_rdns: bool,
}

impl Relay {
    /// SpamAssassin's bracketed form.
    pub fn render(&self) -> String {
        format!(
            "[ ip={} rdns={} helo={} by={} ident={} envfrom={} intl={} id={} auth={} msa={} ]",
            self.ip,
            self.rdns,
            self.helo,
            self.by,
            self.ident,
            self.envfrom,
            u8::from(self.internal),
            self.id,
            self.auth,
            u8::from(self.msa)
        )
    }
}

/// The relays, top (nearest us) first, split by trust.
#[derive(Debug, Clone, Default)]
pub struct Relays {
    pub trusted: Vec<Relay>,
    pub untrusted: Vec<Relay>,
    /// Which `Received` field (from 0, top down) the first untrusted relay came from: where
    /// the headers outside our trust begin (`ALL-EXTERNAL`).
    pub first_untrusted_field: Option<usize>,
}

/// The first IP address in `s` (bracketed or bare), as written.
fn first_ip(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len()
            && (bytes[i].is_ascii_hexdigit() || bytes[i] == b'.' || bytes[i] == b':')
        {
            i += 1;
        }
        if i > start {
            let cand = s[start..i].trim_matches(|c| c == '.' || c == ':');
            let cand = cand.strip_prefix("IPv6:").unwrap_or(cand);
            let before_ok = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
            if before_ok
                && (cand.contains('.') || cand.matches(':').count() >= 2)
                && cand.parse::<IpAddr>().is_ok()
            {
                return Some(cand.to_string());
            }
        } else {
            i += 1;
        }
    }
    None
}

fn word_after<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let lower = s.to_ascii_lowercase();
    let at = lower.find(key)?;
    s[at + key.len()..]
        .split(|c: char| c.is_whitespace() || c == ';' || c == ')' || c == '(')
        .find(|w| !w.is_empty())
}

/// A host name as MTAs write it (`localhost` and bare names too), not an address, not
/// `unknown`.
fn hostname_like(s: &str) -> bool {
    !s.is_empty()
        && !s.eq_ignore_ascii_case("unknown")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
        && s.parse::<IpAddr>().is_err()
}

/// Parses one unfolded `Received` value; `None` when it names no relay.
pub fn parse(value: &str) -> Option<Relay> {
    let v = value.split_whitespace().collect::<Vec<_>>().join(" ");
    let lower = v.to_ascii_lowercase();
    // fetchmail's own field records a POP/IMAP download, not an SMTP relay.
    if lower.contains("(fetchmail-") {
        return None;
    }
    let from_at = lower.find("from ")?;
    if from_at > 0 && !lower[..from_at].trim().is_empty() {
        return None;
    }
    // The `from` clause runs to " by ".
    let by_at = lower.find(" by ").unwrap_or(v.len());
    let from = &v[from_at + 5..by_at.max(from_at + 5)];
    // The connecting address is the bracketed one, preferably inside the parentheses
    // (`from 200.1.2.3 (unknown [192.0.2.9])`, `from [10.0.0.4] (host [192.0.2.9])`: the
    // first is what the client said in HELO).
    let bracketed = |from_at: usize| {
        from[from_at..].match_indices('[').find_map(|(i, _)| {
            let rest = &from[from_at + i + 1..];
            let end = rest.find(']')?;
            let cand = rest[..end].strip_prefix("IPv6:").unwrap_or(&rest[..end]);
            cand.parse::<IpAddr>().is_ok().then(|| cand.to_string())
        })
    };
    let ip = from
        .find('(')
        .and_then(bracketed)
        .or_else(|| bracketed(0))
        .or_else(|| first_ip(from))?;
    let mut r = Relay {
        ip: ip.clone(),
        ..Relay::default()
    };
    let first = from.split_whitespace().next().unwrap_or("");
    let lf = from.to_ascii_lowercase();
    let exim = lower.contains("(exim");
    if let Some(h) = word_after(from, "helo=") {
        // Exim: `from rdns ([ip] helo=name)`.
        r.helo = h.trim_matches(|c| c == '[' || c == ']').to_string();
        if hostname_like(first) {
            r.rdns = first.to_string();
        }
    } else if first.starts_with('[') && !from.contains('(') {
        // `from [ip] by ...`: no HELO was recorded.
    } else if let Some(h) = word_after(from, "(helo ") {
        // qmail: `from rdns (HELO name) (ip)`.
        r.helo = h.to_string();
        if hostname_like(first) {
            r.rdns = first.to_string();
        }
    } else {
        // Sendmail and Postfix: `from helo (rdns [ip])`; an address literal as HELO is
        // shown as `!ip!`, as SpamAssassin does.
        r.helo = match first.strip_prefix('[').and_then(|f| f.strip_suffix(']')) {
            Some(literal) => format!("!{literal}!"),
            None => first.to_string(),
        };
        if let Some(open) = from.find('(') {
            let inner = &from[open + 1..];
            let address_only = inner.trim_start().starts_with('[');
            let mut tok = inner.split_whitespace().next().unwrap_or("");
            tok = tok.split('[').next().unwrap_or(tok);
            // Sendmail writes `ident@rdns`.
            if let Some((ident, host)) = tok.split_once('@') {
                r.ident = ident.trim_start_matches("IDENT:").to_string();
                tok = host;
            }
            if hostname_like(tok) && !lf.contains("unknown [") {
                r.rdns = tok.to_string();
            } else if address_only && exim && hostname_like(first) {
                // Exim writes `from name ([ip])` when the HELO name is the reverse DNS
                // (others, Sendmail first, when there was no reverse DNS).
                r.rdns = first.to_string();
            } else if tok.trim_end_matches(')').parse::<IpAddr>().is_ok() && hostname_like(first) {
                // qmail without a HELO part, `from name (ip)`: the name is the reverse DNS
                // and was the HELO too.
                r.rdns = first.to_string();
            }
        }
    }
    r.by = word_after(&v[by_at..], " by ").unwrap_or("").to_string();
    r.id = word_after(&v, " id ")
        .unwrap_or("")
        .trim_end_matches(';')
        .trim_matches(|c| c == '<' || c == '>')
        .to_string();
    if let Some(e) = word_after(&v, "envelope-from ") {
        r.envfrom = e.trim_matches(|c| c == '<' || c == '>').to_string();
    }
    if lower.contains("(authenticated") {
        r.auth = "Sendmail".into();
    }
    if let Some(w) = word_after(&v, " with ") {
        let w = w.to_ascii_uppercase();
        if w.ends_with("SA") || w == "ESMTPA" || w.starts_with("ESMTPSA") || w == "LMTPA" {
            r.auth = w;
        } else if w == "ASMTP" {
            r.auth = "asmtp".into();
        }
    }
    // Postfix and Sendmail look up every client: `(name [ip])` with no usable name, or
    // `([ip])`, means there was none.
    r.no_rdns = r.rdns.is_empty()
        && from
            .find('(')
            .is_some_and(|p| from[p..].contains(&format!("[{}]", r.ip)));
    Some(r)
}

impl Relays {
    /// Relays from the `Received` values, top first, trust inferred.
    pub fn from_received<'a>(values: impl Iterator<Item = &'a str>) -> Relays {
        Self::with_originating(values, std::iter::empty(), &Trust::default())
    }

    /// Same, with the addresses of fields like `X-Originating-IP` (SpamAssassin's
    /// `originating_ip_headers`) as the oldest relays, address only, and the site's trust.
    pub fn with_originating<'a>(
        values: impl Iterator<Item = &'a str>,
        originating: impl Iterator<Item = String>,
        trust: &Trust,
    ) -> Relays {
        let synthetic = originating.map(|ip| Relay {
            ip,
            ..Relay::default()
        });
        let (fields, relays): (Vec<Option<usize>>, Vec<Relay>) = values
            .enumerate()
            .filter_map(|(i, v)| parse(v).map(|r| (Some(i), r)))
            .chain(synthetic.map(|r| (None, r)))
            .unzip();
        let mut out = Relays::default();
        for ((field, mut r), standing) in fields
            .into_iter()
            .zip(relays.clone())
            .zip(trust.walk(&relays))
        {
            r.internal = standing.internal;
            r.msa = standing.msa;
            if standing.trusted {
                out.trusted.push(r);
            } else {
                if out.untrusted.is_empty() {
                    out.first_untrusted_field = field;
                }
                out.untrusted.push(r);
            }
        }
        out
    }

    /// The relays outside our internal network, newest first: the trusted ones that are
    /// not internal, then the untrusted (SpamAssassin's `relays_external`).
    pub fn external(&self) -> impl Iterator<Item = &Relay> {
        self.trusted
            .iter()
            .filter(|r| !r.internal)
            .chain(self.untrusted.iter())
    }

    /// The pseudo-header value `name` asks for, if it is one of ours.
    pub fn pseudo_header(&self, name: &str) -> Option<String> {
        let render = |list: Vec<&Relay>| {
            list.iter()
                .map(|r| r.render())
                .collect::<Vec<_>>()
                .join(" ")
        };
        Some(match name {
            "X-Spam-Relays-Trusted" => render(self.trusted.iter().collect()),
            "X-Spam-Relays-Untrusted" => render(self.untrusted.iter().collect()),
            "X-Spam-Relays-Internal" => {
                render(self.trusted.iter().filter(|r| r.internal).collect())
            }
            "X-Spam-Relays-External" => render(self.external().collect()),
            "X-Spam-Last-Untrusted" => self
                .untrusted
                .first()
                .map(Relay::render)
                .unwrap_or_default(),
            "X-Spam-Last-External" => self
                .external()
                .next()
                .map(Relay::render)
                .unwrap_or_default(),
            _ => return None,
        })
    }

    /// All relays, top first.
    pub fn all(&self) -> impl Iterator<Item = &Relay> {
        self.trusted.iter().chain(self.untrusted.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_received_forms() {
        let r = parse("from mail.example.org (mx1.example.org [192.0.2.7]) by mx.local (Postfix) with ESMTP id ABC123; Mon, 1 Jan 2024").unwrap();
        assert_eq!(
            (r.ip.as_str(), r.rdns.as_str(), r.helo.as_str()),
            ("192.0.2.7", "mx1.example.org", "mail.example.org")
        );
        assert_eq!((r.by.as_str(), r.id.as_str()), ("mx.local", "ABC123"));
        let r =
            parse("from host.example.net ([198.51.100.2] helo=HELLO) by x.y with esmtp (Exim 4.0)")
                .unwrap();
        assert_eq!(
            (r.rdns.as_str(), r.helo.as_str()),
            ("host.example.net", "HELLO")
        );
        let r = parse("from unknown (HELO box) (203.0.113.9) by q.example with SMTP").unwrap();
        assert_eq!(
            (r.ip.as_str(), r.helo.as_str(), r.rdns.as_str()),
            ("203.0.113.9", "box", "")
        );
        let r = parse("from foo (unknown [203.0.113.1]) by bar").unwrap();
        assert_eq!(r.rdns, "");
        assert!(parse("by localhost with LMTP id x").is_none());
        let r = parse("from h.example.com ([192.0.2.5]) by mx.example with esmtp (Exim 4.0) id 1")
            .unwrap();
        assert_eq!(
            r.rdns, "h.example.com",
            "Exim: the HELO name was the reverse DNS"
        );
        let r =
            parse("from h.example.com ([192.0.2.5]) by mx.example (8.11.6/8.11.6) id 1").unwrap();
        assert_eq!(r.rdns, "", "Sendmail: no reverse DNS");
        let r = parse("from [10.0.0.4] (h.example.net [192.0.2.9]) (authenticated) by mx").unwrap();
        assert_eq!(
            (
                r.ip.as_str(),
                r.helo.as_str(),
                r.rdns.as_str(),
                r.auth.as_str()
            ),
            ("192.0.2.9", "!10.0.0.4!", "h.example.net", "Sendmail")
        );
        let r = parse("from [192.0.2.7] (helo=box) by mx with esmtp (Exim 4.05)").unwrap();
        assert_eq!((r.ip.as_str(), r.helo.as_str()), ("192.0.2.7", "box"));
        let r = parse("from [192.0.2.8] by n20.grp.example with NNFMP").unwrap();
        assert_eq!(r.helo, "");
        let r = parse("from 200.1.1.1 (unknown [192.0.2.9]) by smtp.example (Postfix)").unwrap();
        assert_eq!((r.ip.as_str(), r.helo.as_str()), ("192.0.2.9", "200.1.1.1"));
        let r =
            parse("from bocelli.example.com (64.41.120.21) by h1.example.net with SMTP").unwrap();
        assert_eq!(
            (r.rdns.as_str(), r.helo.as_str()),
            ("bocelli.example.com", "bocelli.example.com")
        );
        assert!(
            parse("from mail.example.net [193.0.2.9] by localhost with POP3 (fetchmail-5.9.0)")
                .is_none()
        );
        assert!(parse("(qmail 123 invoked by uid 0); 1 Jan").is_none());
        let rel = Relays::from_received(
            [
                "from a (a [127.0.0.1]) by b",
                "from c (c.example [192.0.2.1]) by d",
                "from e (e [10.0.0.1]) by f",
            ]
            .into_iter(),
        );
        assert_eq!((rel.trusted.len(), rel.untrusted.len()), (1, 2));
        assert!(
            rel.pseudo_header("X-Spam-Relays-Untrusted")
                .unwrap()
                .starts_with("[ ip=192.0.2.1 rdns=c.example helo=c by=d")
        );
    }
}
