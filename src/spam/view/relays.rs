//! The relays a message passed through, from its `Received` fields, as SpamAssassin's
//! pseudo-headers `X-Spam-Relays-Trusted`, `-Untrusted`, `-Internal` and `-External` show
//! them: `[ ip=... rdns=... helo=... by=... ident= envfrom=... intl=0|1 id=... auth=... msa=0 ]`.
//!
//! Trust comes from `trusted_networks` and its kin, or is inferred as SpamAssassin does
//! when they are not set (see [`super::trust`]). A `Received` field with no address in its
//! `from` part (local submission, `qmail invoked by`) is no relay. Each field is read by
//! [`super::received`], SpamAssassin's own parser ported.

use super::received::{
    Parsed, ParsedRelay, Signal, parse_received_line, parse_received_line_with_signal,
};
use super::trust::Trust;

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
    /// The address is private as SpamAssassin's `IP_PRIVATE` says (inferred trust).
    pub ip_private: bool,
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
    /// `Received` fields no format fits (SpamAssassin's `num_relays_unparseable`).
    pub unparseable: usize,
}

impl From<ParsedRelay> for Relay {
    fn from(r: ParsedRelay) -> Self {
        Relay {
            ip: r.ip,
            rdns: r.rdns,
            helo: r.helo,
            by: r.by,
            ident: r.ident,
            // SpamAssassin's `as_string` prints an undefined envelope sender as empty.
            envfrom: r.envfrom.unwrap_or_default(),
            id: r.id,
            auth: r.auth,
            internal: false,
            msa: false,
            no_rdns: r.no_reverse_dns,
            ip_private: r.ip_private,
        }
    }
}

/// Parses one unfolded `Received` value; `None` when it names no relay (skipped or
/// unparseable).
pub fn parse(value: &str) -> Option<Relay> {
    match parse_received_line(value) {
        Parsed::Relay(r) => Some(r.into()),
        Parsed::Skip | Parsed::Unparseable => None,
    }
}

/// One `Received` field (or originating-IP header) as the walk over them meets it.
enum Event {
    /// The next relay, and the `Received` field it came from (`None`: an originating-IP
    /// header).
    Relay(Option<usize>),
    /// A POP/IMAP fetcher's field: the relays so far are forgotten if all were trusted.
    MailFetcher,
}

/// The fields parsed: what each was in order, the relays (in the same order) and how
/// many no format fits.
struct Walk {
    events: Vec<Event>,
    relays: Vec<Relay>,
    unparseable: usize,
}

/// Parses the fields in order, as SpamAssassin's `parse_received_headers` does: a
/// qmail-scanner field lends its envelope sender to the next field's relay, and
/// unparseable fields are counted.
fn walk<'a>(
    values: impl Iterator<Item = &'a str>,
    originating: impl Iterator<Item = String>,
) -> Walk {
    let mut out = Walk {
        events: Vec::new(),
        relays: Vec::new(),
        unparseable: 0,
    };
    let mut held_envfrom: Option<String> = None;
    let synthetic: Vec<String> = originating
        .map(|ip| format!("from X-Originating-IP: {ip}"))
        .collect();
    let fields = values
        .enumerate()
        .map(|(i, v)| (Some(i), v))
        .chain(synthetic.iter().map(|v| (None, v.as_str())));
    for (field, value) in fields {
        let lent = held_envfrom.take();
        let (parsed, signal) = parse_received_line_with_signal(value);
        match signal {
            Some(Signal::MailFetcher) => out.events.push(Event::MailFetcher),
            Some(Signal::QmailScannerEnvFrom(e)) => held_envfrom = e,
            None => {}
        }
        match parsed {
            Parsed::Relay(r) => {
                let mut r = Relay::from(r);
                if let Some(e) = lent.filter(|e| !e.is_empty() && e != "0") {
                    r.envfrom = e;
                }
                out.events.push(Event::Relay(field));
                out.relays.push(r);
            }
            Parsed::Unparseable => out.unparseable += 1,
            Parsed::Skip => {}
        }
    }
    out
}

impl Relays {
    /// Relays from the `Received` values, top first, trust inferred.
    pub fn from_received<'a>(values: impl Iterator<Item = &'a str>) -> Relays {
        Self::with_originating(values, std::iter::empty(), &Trust::default())
    }

    /// Same, with the addresses of fields like `X-Originating-IP` (SpamAssassin's
    /// `originating_ip_headers`) as the oldest relays, and the site's trust.
    pub fn with_originating<'a>(
        values: impl Iterator<Item = &'a str>,
        originating: impl Iterator<Item = String>,
        trust: &Trust,
    ) -> Relays {
        let Walk {
            events,
            relays,
            unparseable,
        } = walk(values, originating);
        let standings = trust.walk(&relays);
        let mut relays = relays.into_iter().zip(standings);
        let mut out = Relays {
            unparseable,
            ..Relays::default()
        };
        for event in events {
            let field = match event {
                Event::Relay(field) => field,
                // SpamAssassin restarts the parse at a fetcher's field while every relay
                // above it was trusted: the relays before the download are not ours.
                Event::MailFetcher => {
                    if out.untrusted.is_empty() {
                        out.trusted.clear();
                    }
                    continue;
                }
            };
            let Some((mut r, standing)) = relays.next() else {
                break;
            };
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

    #[test]
    fn the_header_walk_counts_skips_fetchers_and_qmail_scanner_as_spamassassin() {
        // An unparseable field is counted, a skipped one is not.
        let rel = Relays::from_received(
            [
                "from SMTP agent by mail gateway  Wed, 24 Jul 2002 06:43:48 -0000",
                "by localhost with LMTP id x",
                "from c (c.example [192.0.2.1]) by d",
            ]
            .into_iter(),
        );
        assert_eq!((rel.unparseable, rel.untrusted.len()), (1, 1));
        // A fetcher's field while all above it were trusted: those relays are forgotten.
        let rel = Relays::from_received(
            [
                "from a (a [127.0.0.1]) by b",
                "from cabbage.jmason.org [127.0.0.1] by localhost with IMAP (fetchmail-5.9.0) for jm@localhost (single-drop); Thu, 13 Mar 2003 20:39:56 -0800 (PST)",
                "from c (c.example [192.0.2.1]) by d",
            ]
            .into_iter(),
        );
        assert_eq!((rel.trusted.len(), rel.untrusted.len()), (0, 1));
        // Below an untrusted relay, a fetcher's field changes nothing.
        let rel = Relays::from_received(
            [
                "from c (c.example [192.0.2.1]) by d",
                "from cabbage.jmason.org [127.0.0.1] by localhost with IMAP (fetchmail-5.9.0) for jm@localhost (single-drop); Thu, 13 Mar 2003 20:39:56 -0800 (PST)",
            ]
            .into_iter(),
        );
        assert_eq!(rel.untrusted.len(), 1);
        // qmail-scanner lends its envelope sender to the next field's relay only.
        let rel = Relays::from_received(
            [
                "from 156.56.111.196 by blazing.arsecandle.org (envelope-from <gentoo-announce-return-530-rod=arsecandle.org@lists.gentoo.org>, uid 502) with qmail-scanner-1.24 (clamdscan: 0.80/594. f-prot: 4.4.2/3.14.11. Clear:RC:0(156.56.111.196):. Processed in 0.288806 secs); 06 Feb 2005 21:11:38 -0000",
                "from c (c.example [192.0.2.1]) by d",
                "from e (e.example [192.0.2.2]) by f",
            ]
            .into_iter(),
        );
        let envfroms: Vec<&str> = rel.all().map(|r| r.envfrom.as_str()).collect();
        assert_eq!(
            envfroms,
            [
                "gentoo-announce-return-530-rod=arsecandle.org@lists.gentoo.org",
                ""
            ]
        );
    }

    #[test]
    fn originating_ip_headers_are_the_oldest_relays_ipv6_too() {
        let rel = Relays::with_originating(
            ["from c (c.example [192.0.2.1]) by d"].into_iter(),
            ["2001:db8::7".to_string()].into_iter(),
            &Trust::default(),
        );
        let last = rel.all().last().map(|r| (r.ip.clone(), r.by.clone()));
        assert_eq!(last, Some(("2001:db8::7".into(), String::new())));
    }
}
