//! SpamAssassin's network rules, read from its own files: DNS blocklists on the relays
//! (`check_rbl` and kin, DNSEval), on the names the message carries (`check_rbl_from_host`
//! ...), on the links (`urirhsbl`/`urirhssub`, URIDNSBL) and `askdns`.
//!
//! A rule compiles to a [`NetTest`]. For each message, on the scanning thread, [`needs`]
//! lists the queries every network rule wants (sent at once, see `dns::Resolver::start`);
//! once the answers are back, [`count`] says which rules hit. Nothing here does I/O.

mod auth;
mod select;
mod subtest;

pub use auth::AuthEval;
pub use subtest::Sub;

use crate::dns::{Answer, Answers, Query, QueryKind};
use crate::spam::eval::{Call, Lists};
use crate::spam::rules::cf::Config;
use crate::spam::view::MessageView;
use crate::spam::view::trust::Trust;
use std::collections::{BTreeSet, HashMap};

/// Which names a DNSEval rule asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Relay addresses, chosen by the set name's suffix (`-lastexternal` ...).
    Relays,
    /// The hosts of the author and sender addresses (`check_rbl_from_host`).
    FromHost,
    /// Their registered domains (`check_rbl_from_domain`).
    FromDomain,
    /// The envelope sender's host (`check_rbl_envfrom`).
    EnvFrom,
    /// Addresses and names in the given fields (`check_rbl_headers`).
    Headers,
    /// The first relay's address and names (`check_rbl_rcvd`).
    Rcvd,
}

/// A URI blocklist (`urirhsbl`, `urirhssub`; `uridnsbl` on addresses).
#[derive(Debug, Clone)]
pub struct UriBl {
    pub zone: String,
    pub kind: QueryKind,
    pub sub: Option<Sub>,
    /// Look up the name as written, not trimmed to its registered domain (`notrim`).
    pub notrim: bool,
    pub domains_only: bool,
    pub ips_only: bool,
}

/// A URI blocklist of addresses (`uridnsbl`, `uridnssub`): the addresses a link's name
/// resolves to, or its domain's name servers', reversed in `zone`.
#[derive(Debug, Clone)]
pub struct UriIpBl {
    pub zone: String,
    pub sub: Option<Sub>,
    /// `tflags a`: the link's own addresses. SpamAssassin 4.0.1 also sends the name
    /// servers' addresses to these rules' zones, and none to the rules without `a`
    /// (URIBL_SBL, URIBL_CSS never fire there); we do as it does.
    pub a: bool,
}

/// One network rule, compiled.
#[derive(Debug, Clone)]
pub enum NetTest {
    /// Queries `zone` for the names `source` gives; hits on an answer passing `sub` (any
    /// 127/8 address or any TXT text without one). `set` names it for `check_rbl_sub`.
    Dnsbl {
        set: String,
        zone: String,
        kind: QueryKind,
        source: Source,
        sub: Option<Sub>,
        /// `tflags nice`: our own trusted relays are queried too.
        nice: bool,
        domains_only: bool,
        ips_only: bool,
        /// `check_rbl_headers`' fields.
        fields: Vec<String>,
    },
    /// Asks nothing itself: the answers to its set's queries passing `sub`.
    DnsblSub {
        set: String,
        sub: Sub,
    },
    Uri(UriBl),
    UriIp(UriIpBl),
    /// SPF, DKIM and DMARC results (no query of its own: the verification beside the
    /// checks made them).
    Auth(AuthEval),
    /// `askdns`: one query built from the message's tags.
    Ask {
        template: String,
        kind: QueryKind,
        sub: Option<Sub>,
    },
}

/// The network directives of a rule set, read once.
#[derive(Debug, Clone, Default)]
pub struct NetDefs {
    pub trust: Trust,
    uribl: HashMap<String, UriBl>,
    uriip: HashMap<String, UriIpBl>,
    askdns: HashMap<String, (String, QueryKind, Option<Sub>)>,
    pub skip_domains: BTreeSet<String>,
    pub max_domains: usize,
    pub skip_rbl: bool,
    pub skip_uribl: bool,
    rbl_headers: Vec<String>,
    /// Lines that could not be read, with why.
    pub problems: Vec<String>,
}

/// SpamAssassin's `uridnsbl_max_domains`.
const MAX_DOMAINS: usize = 20;

impl NetDefs {
    /// Reads the directives `cfg` kept, in file order.
    pub fn read(cfg: &Config) -> NetDefs {
        let mut d = NetDefs {
            max_domains: MAX_DOMAINS,
            rbl_headers: ["EnvelopeFrom", "Reply-To", "Disposition-Notification-To"]
                .into_iter()
                .chain(["X-WebmailclientIP", "X-Source-IP"])
                .map(String::from)
                .collect(),
            ..NetDefs::default()
        };
        let mut tflags: HashMap<&str, &[String]> = HashMap::new();
        for r in cfg.rules.values() {
            tflags.insert(&r.name, &r.tflags);
        }
        for (origin, directive, rest) in &cfg.net_lines {
            let at = format!("{}:{}", origin.file.display(), origin.line);
            if let Err(e) = d.directive(directive, rest, &tflags) {
                d.problems.push(format!("{at}: {directive} {rest}: {e}"));
            }
        }
        d
    }

    fn directive(
        &mut self,
        directive: &str,
        rest: &str,
        tflags: &HashMap<&str, &[String]>,
    ) -> Result<(), String> {
        let words: Vec<&str> = rest.split_whitespace().collect();
        let bad = |b: Vec<String>| {
            if b.is_empty() {
                Ok(())
            } else {
                Err(format!("cannot read {}", b.join(" ")))
            }
        };
        match directive {
            "trusted_networks" => return bad(self.trust.trusted.add(rest)),
            "internal_networks" => return bad(self.trust.internal.add(rest)),
            "msa_networks" => return bad(self.trust.msa.add(rest)),
            "clear_trusted_networks" => self.trust.trusted = Default::default(),
            "clear_internal_networks" => self.trust.internal = Default::default(),
            "clear_msa_networks" => self.trust.msa = Default::default(),
            "uridnsbl_skip_domain" => self
                .skip_domains
                .extend(words.iter().map(|w| w.to_ascii_lowercase())),
            "clear_uridnsbl_skip_domain" if words.is_empty() => self.skip_domains.clear(),
            "clear_uridnsbl_skip_domain" => {
                for w in words {
                    self.skip_domains.remove(&w.to_ascii_lowercase());
                }
            }
            "uridnsbl_max_domains" => {
                self.max_domains = rest.trim().parse().map_err(|_| "not a number")?;
            }
            "skip_rbl_checks" => self.skip_rbl = rest.trim() == "1",
            "skip_uribl_checks" => self.skip_uribl = rest.trim() == "1",
            "rbl_headers" => {
                self.rbl_headers = rest.split(',').map(|h| h.trim().to_string()).collect();
            }
            "askdns" => return self.askdns(&words),
            uri => return self.uri_directive(uri, &words, tflags),
        }
        Ok(())
    }

    fn askdns(&mut self, words: &[&str]) -> Result<(), String> {
        let (Some(name), Some(template)) = (words.first(), words.get(1)) else {
            return Err("needs a rule name and a query".into());
        };
        let types = words.get(2).copied().unwrap_or("A");
        let kind = match types.split(',').collect::<Vec<_>>().as_slice() {
            [one] => QueryKind::parse(one).ok_or_else(|| format!("type {one} not supported"))?,
            _ => return Err("several types (ANY) not supported".into()),
        };
        let sub = match words.get(3..).filter(|w| !w.is_empty()) {
            Some(w) => Some(Sub::uribl(&w.join(" "))?),
            None => None,
        };
        self.askdns
            .insert(name.to_string(), (template.to_string(), kind, sub));
        Ok(())
    }

    fn uri_directive(
        &mut self,
        directive: &str,
        words: &[&str],
        tflags: &HashMap<&str, &[String]>,
    ) -> Result<(), String> {
        let with_sub = directive.ends_with("sub");
        let need = if with_sub { 4 } else { 3 };
        if words.len() < need {
            return Err(format!("needs {need} words"));
        }
        let (name, zone, kind) = (words[0], words[1], words[2]);
        let kind = QueryKind::parse(kind).ok_or_else(|| format!("type {kind} not supported"))?;
        let sub = if with_sub {
            Some(Sub::uribl(&words[3..].join(" "))?)
        } else {
            None
        };
        let flags = tflags.get(name).copied().unwrap_or(&[]);
        let has = |f: &str| flags.iter().any(|t| t == f);
        let bl = UriBl {
            zone: zone.trim_end_matches('.').to_ascii_lowercase(),
            kind,
            sub,
            notrim: has("notrim"),
            domains_only: has("domains_only"),
            ips_only: has("ips_only"),
        };
        // Name lookups and address lookups; the blocklists of name servers' names
        // (urinsrhsbl, urifullnsrhsbl) stay inactive.
        if directive.starts_with("urirhs") {
            self.uribl.insert(name.to_string(), bl);
        } else if directive.starts_with("uridns") {
            let ip = UriIpBl {
                zone: bl.zone,
                sub: bl.sub,
                a: has("a"),
            };
            self.uriip.insert(name.to_string(), ip);
        }
        Ok(())
    }

    /// The test of network rule `rule` (`call` its eval), if we can run it.
    pub fn compile(&self, rule: &str, call: &Call, tflags: &[String]) -> Option<NetTest> {
        let arg = |i: usize| call.args.get(i).map(|a| a.trim().to_string());
        let has = |f: &str| tflags.iter().any(|t| t == f);
        if let Some(a) = AuthEval::parse(&call.name, &call.args) {
            return Some(NetTest::Auth(a));
        }
        let source = match call.name.as_str() {
            "check_uridnsbl" if !self.skip_uribl => {
                return match self.uribl.get(rule) {
                    Some(bl) => Some(NetTest::Uri(bl.clone())),
                    None => self.uriip.get(rule).cloned().map(NetTest::UriIp),
                };
            }
            "check_askdns" => {
                let (template, kind, sub) = self.askdns.get(rule)?.clone();
                return Some(NetTest::Ask {
                    template,
                    kind,
                    sub,
                });
            }
            _ if self.skip_rbl => return None,
            "check_rbl_sub" => {
                let sub = Sub::dnseval(&arg(1)?).ok()?;
                return Some(NetTest::DnsblSub { set: arg(0)?, sub });
            }
            "check_rbl" | "check_rbl_txt" => Source::Relays,
            "check_rbl_from_host" => Source::FromHost,
            "check_rbl_from_domain" => Source::FromDomain,
            "check_rbl_envfrom" => Source::EnvFrom,
            "check_rbl_headers" => Source::Headers,
            "check_rbl_rcvd" => Source::Rcvd,
            _ => return None,
        };
        let sub = match arg(2).filter(|s| !s.is_empty()) {
            Some(s) => Some(Sub::dnseval(&s).ok()?),
            None => None,
        };
        let fields = match arg(3) {
            Some(list) => list.split(',').map(|h| h.trim().to_string()).collect(),
            None => self.rbl_headers.clone(),
        };
        Some(NetTest::Dnsbl {
            set: arg(0)?,
            zone: arg(1)?.trim_end_matches('.').to_ascii_lowercase(),
            kind: if call.name == "check_rbl_txt" {
                QueryKind::Txt
            } else {
                QueryKind::A
            },
            source,
            sub,
            nice: has("nice"),
            domains_only: has("domains_only"),
            ips_only: has("ips_only"),
            fields,
        })
    }
}

/// The queries of each network rule for one message: `(rule index, queries)`.
pub type Needs = Vec<(usize, Vec<Query>)>;

/// The `askdns` tags of the verified DKIM signatures, as they stand in a query name until
/// the verification (which runs beside the scan) is in: `_dkimdomain_`, `_dkimselector_`.
pub const LATE_TAGS: [&str; 2] = ["_dkimdomain_", "_dkimselector_"];

/// Whether `q` waits for the DKIM results (a placeholder in its name).
pub fn is_late(q: &Query) -> bool {
    LATE_TAGS.iter().any(|t| q.name.contains(t))
}

/// The rules of `needs` whose queries waited for the DKIM results, with those filled from
/// `auth`'s valid signatures (none without a valid signature: the tag is unset).
pub fn fill_late(needs: &Needs, auth: Option<&crate::dkim::Verification>) -> Needs {
    let valid: Vec<(&str, &str)> = auth
        .map(|v| {
            v.signatures
                .iter()
                .filter(|s| s.result == "pass")
                .map(|s| (s.domain.as_str(), s.selector.as_str()))
                .collect()
        })
        .unwrap_or_default();
    needs
        .iter()
        .filter(|(_, qs)| qs.iter().any(is_late))
        .map(|(i, qs)| {
            let mut filled: Vec<Query> = Vec::new();
            for q in qs.iter().filter(|q| is_late(q)) {
                for (domain, selector) in &valid {
                    let name = q
                        .name
                        .replace(LATE_TAGS[0], domain)
                        .replace(LATE_TAGS[1], selector);
                    let q = Query::new(&name, q.kind);
                    if !filled.contains(&q) {
                        filled.push(q);
                    }
                }
            }
            (*i, filled)
        })
        .collect()
}

/// What every network rule of `rules` (index and test) asks for `view`. A `check_rbl_sub`
/// rule is given its set's queries.
pub fn needs<'a>(
    rules: impl Iterator<Item = (usize, &'a NetTest)>,
    view: &MessageView,
    lists: &Lists,
    defs: &NetDefs,
    originating: &[String],
) -> Needs {
    let rules: Vec<(usize, &NetTest)> = rules.collect();
    let ctx = select::Ctx {
        view,
        lists,
        defs,
        originating,
    };
    let mut by_set: HashMap<&str, Vec<Query>> = HashMap::new();
    let mut out: Needs = Vec::new();
    let uri_ip = select::uri_ip_queries(&rules, &ctx);
    for &(i, t) in &rules {
        let qs = match t {
            NetTest::UriIp(_) => uri_ip.clone(),
            _ => select::queries(t, &ctx),
        };
        if let NetTest::Dnsbl { set, .. } = t {
            by_set.entry(set).or_default().extend(qs.iter().cloned());
        }
        if !matches!(t, NetTest::DnsblSub { .. }) {
            out.push((i, qs));
        }
    }
    for &(i, t) in &rules {
        if let NetTest::DnsblSub { set, .. } = t {
            out.push((i, by_set.get(set.as_str()).cloned().unwrap_or_default()));
        }
    }
    out
}

/// Does rule `t`, whose queries were `queries`, hit with `answers` (and the message's
/// authentication results `auth`)? (1 or 0.)
pub fn count(
    t: &NetTest,
    queries: &[Query],
    answers: &Answers,
    auth: Option<&crate::dkim::Verification>,
) -> u32 {
    let (sub, blocklist) = match t {
        NetTest::Auth(a) => return u32::from(auth.is_some_and(|v| a.hits(v))),
        NetTest::UriIp(bl) => return uri_ip_count(bl, queries, answers),
        NetTest::Dnsbl { sub, .. } => (sub.as_ref(), true),
        NetTest::DnsblSub { sub, .. } => (Some(sub), true),
        // URIDNSBL drops answers outside 127/8 only when no subtest is given.
        NetTest::Uri(bl) => (bl.sub.as_ref(), bl.sub.is_none()),
        NetTest::Ask { sub, .. } => (sub.as_ref(), false),
    };
    let hit = queries.iter().any(|q| {
        let Some(Answer::Found(records)) = answers.get(q) else {
            return false;
        };
        records.iter().any(|r| {
            // Blocklists answer inside 127/8; anything else is a wildcard or a hijacking
            // resolver's ad server, never a listing (SpamAssassin drops those too).
            if blocklist && q.kind == QueryKind::A && !subtest::in_loopback(r) {
                return false;
            }
            sub.is_none_or(|s| s.matches(r))
        })
    });
    u32::from(hit)
}

/// A URI blocklist of addresses: some address the links' lookups led to is listed.
fn uri_ip_count(bl: &UriIpBl, queries: &[Query], answers: &Answers) -> u32 {
    if !bl.a {
        return 0;
    }
    let suffix = format!(".{}", bl.zone);
    let hit = queries.iter().any(|root| {
        answers.followed(root).iter().any(|(q, a)| {
            let Answer::Found(records) = a else {
                return false;
            };
            q.name.ends_with(&suffix)
                && records.iter().any(|r| match &bl.sub {
                    Some(s) => s.matches(r),
                    None => subtest::in_loopback(r),
                })
        })
    });
    u32::from(hit)
}
