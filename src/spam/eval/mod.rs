//! SpamAssassin's eval functions (`eval:name(args)` in a rule): the ones the shipped rules use
//! most, with SpamAssassin's meaning, grouped by what they look at (one file per family).
//! A rule whose function is not here stays inactive, and start-up lists those functions.
//! Functions that need the network (DNS blocklists, SPF, DKIM keys, Razor, Pyzor, DCC) are
//! off, as with `spamassassin -L`; Bayes answers once it has been trained (issue 9).

pub mod attachments;
mod date;
mod freemail;
mod header;
mod html;
mod locales;
mod mime;
mod relay;
mod wlbl;

#[cfg(test)]
mod tests_sa4;

pub use header::registrable_in;

use super::view::MessageView;
use crate::spam::rules::pattern::Pattern;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A parsed `eval:` call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: String,
    pub args: Vec<String>,
}

/// What an eval function may read besides the message.
pub struct Ctx<'a> {
    pub view: &'a MessageView,
    pub lists: &'a Lists,
    /// The message's Bayes spam probability, when Bayes is on and trained.
    pub bayes: Option<f64>,
}

/// Word lists from the configuration (`freemail_domains`, `util_rb_2tld` ...), with what is
/// derived from them once per rule set.
#[derive(Debug, Default)]
pub struct Lists {
    words: BTreeMap<String, BTreeSet<String>>,
    /// The `freemail_domains` entries with `*` or `?`, as one anchored pattern, as
    /// SpamAssassin's FreeMail plugin compiles them (`*` stays within one label).
    freemail_wild: Option<regex::Regex>,
    /// The welcome and block lists, compiled.
    compiled: wlbl::Compiled,
}

impl Lists {
    pub fn new(words: BTreeMap<String, BTreeSet<String>>) -> Lists {
        let wild: Vec<String> = words
            .get("freemail_domains")
            .into_iter()
            .flatten()
            .filter(|d| d.contains(['*', '?']))
            .map(|d| regex::escape(d).replace(r"\*", "[^.]*").replace(r"\?", "."))
            .collect();
        let freemail_wild = if wild.is_empty() {
            None
        } else {
            regex::Regex::new(&format!("^(?:{})$", wild.join("|"))).ok()
        };
        Lists {
            compiled: wlbl::Compiled::new(&words),
            words,
            freemail_wild,
        }
    }

    /// The entries of one list.
    pub fn get(&self, name: &str) -> Option<&BTreeSet<String>> {
        self.words.get(name)
    }

    /// Is `domain` (lower case) a free mail domain: listed, or matching a wildcard entry?
    pub fn is_freemail_domain(&self, domain: &str) -> bool {
        self.get("freemail_domains")
            .is_some_and(|l| l.contains(domain))
            || self
                .freemail_wild
                .as_ref()
                .is_some_and(|re| re.is_match(domain))
    }
}

type Func = fn(&Ctx, &[String]) -> bool;

/// Functions that need the network or a reputation store; inactive by design.
const NETWORK: &[&str] = &[
    "check_rbl",
    "check_rbl_sub",
    "check_rbl_txt",
    "check_rbl_from_host",
    "check_rbl_from_domain",
    "check_rbl_envfrom",
    "check_rbl_headers",
    "check_rbl_ns_from",
    "check_rbl_rcvd",
    "check_askdns",
    "check_uridnsbl",
    "check_uridnsbl_lookups",
    "check_dcc",
    "check_dcc_reputation_range",
    "check_razor2",
    "check_razor2_range",
    "check_pyzor",
    "check_dns_sender",
    "check_asn",
    "check_hashbl_bodyre",
    "check_hashbl_emails",
    "check_hashbl_uris",
    "check_senders_reputation",
    "check_from_in_auto_welcomelist",
    "check_from_in_auto_whitelist",
];

/// Families that need DNS (SPF records, DKIM/ARC keys, DMARC policies): off, as with
/// `spamassassin -L`. DKIM verification is issue 10's.
const NETWORK_FAMILIES: &[&str] = &[
    "check_for_spf_",
    "check_for_def_spf_",
    "check_dkim_",
    "check_for_dkim_",
    "check_for_def_dkim_",
    "check_arc_",
    "check_dmarc_",
];

/// Reads `eval:name('a', "b", 3)`.
pub fn parse(def: &str) -> Option<Call> {
    let rest = def.trim().strip_prefix("eval:")?;
    let open = rest.find('(')?;
    let name = rest[..open].trim().to_string();
    let inner = rest[open + 1..].trim_end().strip_suffix(')')?;
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in inner.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                any = true;
            }
            None if c == ',' => {
                args.push(std::mem::take(&mut cur).trim().to_string());
                any = false;
            }
            None => {
                cur.push(c);
                any |= !c.is_whitespace();
            }
        }
    }
    if any || !cur.trim().is_empty() {
        args.push(cur.trim().to_string());
    }
    Some(Call { name, args })
}

fn lookup(name: &str) -> Option<Func> {
    header::lookup(name)
        .or_else(|| attachments::lookup(name))
        .or_else(|| date::lookup(name))
        .or_else(|| mime::lookup(name))
        .or_else(|| html::lookup(name))
        .or_else(|| freemail::lookup(name))
        .or_else(|| relay::lookup(name))
        .or_else(|| wlbl::lookup(name))
        .or_else(|| locales::lookup(name))
}

/// How a call can be evaluated.
pub enum Status {
    Implemented,
    /// Needs the network (off).
    Network,
    /// Bayes (`check_bayes`): active in a plan compiled with Bayes on.
    Bayes,
    NotImplemented,
}

/// Whether `name` is one of ours.
pub fn status(name: &str) -> Status {
    if name == "check_bayes" {
        Status::Bayes
    } else if lookup(name).is_some() {
        Status::Implemented
    } else if NETWORK.contains(&name) || NETWORK_FAMILIES.iter().any(|p| name.starts_with(p)) {
        Status::Network
    } else {
        Status::NotImplemented
    }
}

/// Runs a call; `false` for functions we do not have.
pub fn run(call: &Call, ctx: &Ctx) -> bool {
    if call.name == "check_bayes" {
        return check_bayes(ctx, &call.args);
    }
    lookup(&call.name).is_some_and(|f| f(ctx, &call.args))
}

/// `check_bayes(min, max)`: the probability is above `min` (or `min` is 0) and at most `max`
/// (or `max` is `undef`), as SpamAssassin's BAYES_xx rules read it.
fn check_bayes(ctx: &Ctx, args: &[String]) -> bool {
    bayes_in_range(ctx.bayes, args)
}

/// Whether `check_bayes(args)` hits at probability `p` (`None`: Bayes did not answer).
pub fn bayes_in_range(p: Option<f64>, args: &[String]) -> bool {
    let Some(p) = p else { return false };
    let min = num(args, 0).unwrap_or(0.0);
    (min == 0.0 || p > min) && num(args, 1).is_none_or(|max| p <= max)
}

/// An argument as a number; `undef`, `inf` and missing ones are unbounded.
fn num(args: &[String], i: usize) -> Option<f64> {
    args.get(i)
        .and_then(|a| a.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite())
}

/// A Perl regex literal compiled once per process: eval functions take patterns as
/// arguments (from the rule files, so a bounded set), and compiling per message cost more
/// than matching.
fn cached_pattern(literal: &str) -> Option<std::sync::Arc<Pattern>> {
    static CACHE: std::sync::LazyLock<
        std::sync::Mutex<HashMap<String, Option<std::sync::Arc<Pattern>>>>,
    > = std::sync::LazyLock::new(Default::default);
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    cache
        .entry(literal.to_string())
        .or_insert_with(|| {
            crate::spam::rules::pattern::compile(literal)
                .ok()
                .map(std::sync::Arc::new)
        })
        .clone()
}

/// Does `pattern` (a Perl regex without delimiters) match `text`?
fn pattern_matches(pattern: &str, text: &[u8]) -> bool {
    cached_pattern(&format!("/{pattern}/")).is_some_and(|p| p.is_match(text))
}

/// Every address in a field value (`a@b, "N" <c@d>`), in order.
fn addresses(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    let b = v.as_bytes();
    let mut parts = Vec::new();
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                parts.push(&v[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&v[start..]);
    for p in parts {
        let a = match (p.find('<'), p.rfind('>')) {
            (Some(l), Some(r)) if l < r => p[l + 1..r].trim(),
            _ => p.split_whitespace().find(|w| w.contains('@')).unwrap_or(""),
        };
        if a.contains('@') {
            out.push(a.to_string());
        }
    }
    out
}

/// The domain of an address, lower case.
fn domain_of(addr: &str) -> Option<String> {
    let d = addr
        .trim()
        .trim_matches(|c| c == '<' || c == '>')
        .rsplit_once('@')?
        .1;
    let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
    (!d.is_empty()).then_some(d)
}

/// A domain SpamAssassin's registry boundaries call valid: two labels or more, none empty,
/// the last a top-level domain it knows (`util_rb_tld`).
fn valid_tld(domain: &str, lists: &Lists) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| !l.is_empty())
        && lists.get("util_rb_tld").is_some_and(|l| {
            labels
                .last()
                .is_some_and(|t| l.contains(&t.to_ascii_lowercase()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spam::view::MessageView;

    #[test]
    fn parses_calls() {
        assert_eq!(
            parse("eval:check_for_shifted_date('-6', \"-3\")"),
            Some(Call {
                name: "check_for_shifted_date".into(),
                args: vec!["-6".into(), "-3".into()]
            })
        );
        assert_eq!(
            parse("eval:check_no_relays()").unwrap().args,
            Vec::<String>::new()
        );
        assert_eq!(
            parse("eval:image_count('all',1,1)").unwrap().args,
            vec!["all", "1", "1"]
        );
        assert_eq!(parse("eval:check_x('a,b')").unwrap().args, vec!["a,b"]);
        assert!(parse("Subject =~ /x/").is_none());
        assert!(matches!(status("check_rbl"), Status::Network));
        assert!(matches!(status("check_no_relays"), Status::Implemented));
        assert!(matches!(status("no_such_function"), Status::NotImplemented));
    }

    #[test]
    fn envelope_sender_matching_the_delivering_relay() {
        let matches = |return_path: &str, rdns: &str| {
            let msg = format!(
                "Return-Path: <{return_path}>\r\nReceived: from helo.example ({rdns} [192.0.2.7])\r\n\
                 \tby mx.example.org with SMTP; Thu, 25 Jul 2002 19:39:06 -0000\r\nSubject: x\r\n\r\nx\r\n"
            );
            hits(&msg, "eval:check_mailfrom_matches_rcvd()")
        };
        // Same host, or the same registered domain.
        assert!(matches("x@mail.example.com", "mail.example.com"));
        assert!(matches(
            "123.4@bounced.example.com",
            "edc18-ds3.example.com"
        ));
        assert!(!matches("x@example.net", "mail.example.com"));
        // No reverse DNS, no sender: no match.
        assert!(!matches("x@example.com", ""));
        assert!(!matches("", "mail.example.com"));
        // Only the relay that handed the message to us counts: hops before it can be forged.
        let two_hops = |ours: &str, before: &str| {
            let msg = format!(
                "Return-Path: <x@example.com>\r\n\
                 Received: from a ({ours} [192.0.2.8]) by mx.example.org; Thu, 25 Jul 2002 19:39:06 -0000\r\n\
                 Received: from b ({before} [192.0.2.9]) by {ours}; Thu, 25 Jul 2002 19:39:05 -0000\r\n\
                 Subject: x\r\n\r\nx\r\n"
            );
            hits(&msg, "eval:check_mailfrom_matches_rcvd()")
        };
        assert!(!two_hops("relay.example.net", "mail.example.com"));
        assert!(two_hops("mail.example.com", "relay.example.net"));
    }

    #[test]
    fn bayes_ranges() {
        let view = MessageView::new(b"Subject: x\n\nx\n", "");
        let lists = Lists::default();
        let at = |p: Option<f64>, call: &str| {
            let ctx = Ctx {
                view: &view,
                lists: &lists,
                bayes: p,
            };
            run(&parse(call).unwrap(), &ctx)
        };
        assert!(at(Some(0.0), "eval:check_bayes('0.00', '0.01')"));
        assert!(!at(Some(0.01), "eval:check_bayes('0.01', '0.05')"));
        assert!(at(Some(0.01), "eval:check_bayes('0.00', '0.01')"));
        assert!(at(Some(0.9999), "eval:check_bayes('0.999', '1.00')"));
        assert!(!at(None, "eval:check_bayes('0.00', '0.01')"));
    }

    #[test]
    fn freemail_wildcards_stay_within_a_label() {
        let mut words = BTreeMap::new();
        words.insert(
            "freemail_domains".to_string(),
            [
                "gmail.com",
                "yahoo.co*.*",
                "mail2*.com",
                "*.onmicrosoft.com",
            ]
            .map(String::from)
            .into(),
        );
        let lists = Lists::new(words);
        for d in [
            "gmail.com",
            "yahoo.co.uk",
            "yahoo.com.br",
            "mail2world.com",
            "x.onmicrosoft.com",
        ] {
            assert!(lists.is_freemail_domain(d), "{d}");
        }
        for d in [
            "gmail.com.evil",
            "yahoo.co.uk.evil",
            "mail2a.b.com",
            "yahoo.de",
            "onmicrosoft.com",
        ] {
            assert!(!lists.is_freemail_domain(d), "{d}");
        }
    }

    fn hits(msg: &str, call: &str) -> bool {
        let view = MessageView::new(msg.as_bytes(), "");
        let lists = Lists::default();
        let ctx = Ctx {
            view: &view,
            lists: &lists,
            bayes: None,
        };
        run(&parse(call).unwrap(), &ctx)
    }

    fn hits_with_freemail(msg: &str, call: &str) -> bool {
        let view = MessageView::new(msg.as_bytes(), "");
        let mut lists = BTreeMap::new();
        lists.insert(
            "freemail_domains".to_string(),
            ["free.example".to_string(), "mail.example".to_string()].into(),
        );
        let lists = Lists::new(lists);
        let ctx = Ctx {
            view: &view,
            lists: &lists,
            bayes: None,
        };
        run(&parse(call).unwrap(), &ctx)
    }

    #[test]
    fn freemail_replies() {
        let r = |m: &str, w: &str| {
            hits_with_freemail(m, &format!("eval:check_freemail_replyto('{w}')"))
        };
        // Different free mail addresses in From and Reply-To.
        assert!(r(
            "From: a@free.example\nReply-To: b@mail.example\n\nx\n",
            "replyto"
        ));
        assert!(!r(
            "From: a@free.example\nReply-To: a@free.example\n\nx\n",
            "replyto"
        ));
        // Replies go elsewhere than the free mail address the body offers.
        assert!(r(
            "From: a@free.example\n\nwrite to c@mail.example now\n",
            "reply"
        ));
        assert!(!r(
            "From: a@free.example\n\nwrite to a@free.example now\n",
            "reply"
        ));
        assert!(!r(
            "From: a@company.example\n\nwrite to c@mail.example now\n",
            "reply"
        ));
        // Quoted reply attributions are not offers.
        assert!(!r(
            "From: a@free.example\n\nc@mail.example wrote: hi\n",
            "reply"
        ));
    }

    const EXT: &str = "Received: from mx.example.org (mx.example.org [192.0.2.10]) by in.example.net (Postfix) id 1; Thu, 22 Aug 2002 12:00:00 +0000\n";

    #[test]
    fn relay_and_forgery_checks() {
        let yahoo = format!("{EXT}From: a@yahoo.com\nSubject: x\n\nbody\n");
        assert!(hits(
            &yahoo,
            "eval:check_for_forged_yahoo_received_headers()"
        ));
        let genuine = format!(
            "{EXT}Received: from [192.0.2.77] by web1.mail.yahoo.com via HTTP; Thu, 22 Aug 2002 11:59:00 +0000\n\
             From: a@yahoo.com\n\nbody\n"
        );
        assert!(!hits(
            &genuine,
            "eval:check_for_forged_yahoo_received_headers()"
        ));
        let hotmail = format!("{EXT}From: a@hotmail.com\n\nbody\n");
        assert!(hits(
            &hotmail,
            "eval:check_for_no_hotmail_received_headers()"
        ));
        assert!(!hits(
            &hotmail,
            "eval:check_for_forged_hotmail_received_headers()"
        ));
        let helo = "Received: from 198.51.100.9 (unknown [192.0.2.10]) by in.example.net (Postfix) id 1\n\nx\n";
        assert!(hits(helo, "eval:helo_ip_mismatch()"));
        assert!(!hits(&format!("{EXT}\nx\n"), "eval:helo_ip_mismatch()"));
        let dotcom = "Received: from mail.hotmail.com (unknown [192.0.2.10]) by in.example.net (Postfix) id 1\n\nx\n";
        assert!(hits(dotcom, "eval:check_for_no_rdns_dotcom_helo()"));
        let trusted = "Received: from a (a [10.0.0.1]) by b (Postfix) id 1\n\nx\n";
        assert!(
            hits(trusted, "eval:check_all_trusted()") && !hits(trusted, "eval:check_no_relays()")
        );
        assert!(hits("Subject: x\n\ny\n", "eval:check_no_relays()"));
        // A field no format fits: counted, and neither "all trusted" nor "no relays".
        let odd = "Received: from SMTP agent by mail gateway  Wed, 24 Jul 2002 06:43:48 -0000\n";
        assert!(hits(
            &format!("{odd}\nx\n"),
            "eval:check_relays_unparseable()"
        ));
        assert!(!hits(&format!("{odd}\nx\n"), "eval:check_no_relays()"));
        let odd_trusted =
            format!("{odd}Received: from a (a [10.0.0.1]) by b (Postfix) id 1\n\nx\n");
        assert!(!hits(&odd_trusted, "eval:check_all_trusted()"));
        assert!(!hits(trusted, "eval:check_relays_unparseable()"));
    }

    #[test]
    fn header_checks() {
        // A Date 4 to 5 hours before the Received date.
        let past = format!("{EXT}Date: Thu, 22 Aug 2002 07:30:00 +0000\n\nx\n");
        assert!(hits(&past, "eval:check_for_shifted_date('-6', '-3')"));
        assert!(!hits(&past, "eval:check_for_shifted_date('-3', '3')"));
        // Outlook's Message-ID timestamp far from the dates.
        let msgid = format!(
            "{EXT}Date: Thu, 22 Aug 2002 12:00:00 +0000\nMessage-ID: <000a12345678$5144d5e1$0ae40bb3@x>\n\nx\n"
        );
        assert!(hits(&msgid, "eval:check_outlook_message_id()"));
        let recips = "To: aa1@x1.example, aa2@x2.example, aa3@x3.example, aa4@x4.example, aa5@x5.example\n\nx\n";
        assert!(hits(recips, "eval:similar_recipients('0.65','undef')"));
        assert!(!hits(
            "To: joe@a.example, sue@b.example\n\nx\n",
            "eval:similar_recipients('0.65','undef')"
        ));
        assert!(hits(
            "Subject: BUY THESE NOW PLEASE\n\nx\n",
            "eval:subject_is_all_caps()"
        ));
        assert!(!hits(
            "Subject: Re: lunch plans today\n\nx\n",
            "eval:subject_is_all_caps()"
        ));
        // Plain text said to be ASCII with 8-bit bytes in it.
        let fake = "Content-Type: text/plain; charset=us-ascii\n\ncaf\u{e9}\n";
        assert!(hits(fake, "eval:check_for_ascii_text_illegal()"));
        let fine = "Content-Type: text/plain; charset=iso-8859-1\n\ncaf\u{e9}\n";
        assert!(!hits(fine, "eval:check_for_ascii_text_illegal()"));
        assert!(!hits(
            "Subject: x\r\n\r\nplain\r\n",
            "eval:check_for_ascii_text_illegal()"
        ));
    }
}
