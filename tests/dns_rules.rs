//! SpamAssassin's network rules against a real DNS server (NSD with the zones written here):
//! relay blocklists by set and suffix, TXT lists, sub-rules, URI blocklists, whitelists,
//! trust; and a server that is dead, slow or lying keeps every message within the budget,
//! with the network rules silent and no temporary failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use amavisd::dns::DnsConfig;
use amavisd::spam::{Engine, SpamConfig};
use amavisd_testing::nsd::{Nsd, Zone};
use std::path::Path;
use std::time::{Duration, Instant};

/// The relay that handed the message to our MX (last external) and the one before it.
const LISTED: &str = "\
Received: from mail.spammer-test.com (mail.spammer-test.com [45.67.89.10])\r
\tby mx.example.org (Postfix) with ESMTP id 4ABC; Mon, 1 Jan 2024 00:00:05 +0000\r
Received: from pc (unknown [45.67.89.11]) by mail.spammer-test.com with SMTP; Mon, 1 Jan 2024 00:00:00 +0000\r
From: Seller <a@spammer-test.com>\r
To: u@example.org\r
Subject: cheap offer\r
Date: Mon, 1 Jan 2024 00:00:00 +0000\r
Message-ID: <1@spammer-test.com>\r
\r
Visit http://www.badsite-test.com/x and http://phishy-test.com/login today.\r
";

/// A message from a relay that is listed on no blocklist but on a whitelist.
const WELL_KNOWN: &str = "\
Received: from out.bank-test.com (out.bank-test.com [81.2.3.4])\r
\tby mx.example.org (Postfix) with ESMTP id 4ABD; Mon, 1 Jan 2024 00:00:05 +0000\r
From: Bank <news@bank-test.com>\r
To: u@example.org\r
Subject: your statement\r
Date: Mon, 1 Jan 2024 00:00:00 +0000\r
Message-ID: <2@bank-test.com>\r
\r
See http://www.bank-test.com/statement\r
";

fn zones() -> Vec<Zone<'static>> {
    vec![
        Zone {
            apex: "zen.spamhaus.org",
            // 45.67.89.10 in the XBL, 45.67.89.11 in the SBL; 127.0.0.1 answers are never
            // listings of anything but the test address.
            records: "10.89.67.45 A 127.0.0.4\n11.89.67.45 A 127.0.0.2\n\
                      99.89.67.45 A 127.0.0.2\n98.89.67.45 A 127.0.0.3\n",
        },
        Zone {
            // The link's own zone: its web host, and its name server, each on a listed
            // address (the URI blocklists of addresses look them up).
            apex: "badsite-test.com",
            records: "www A 45.67.89.99\n@ NS ns1.badsite-test.com.\nns1 A 45.67.89.98\n",
        },
        Zone {
            apex: "bl.spamcop.net",
            records: "10.89.67.45 TXT \"Blocked - see https://www.spamcop.net/bl.shtml?45.67.89.10\"\n\
                      10.89.67.45 A 127.0.0.2\n",
        },
        Zone {
            apex: "dbl.spamhaus.org",
            // `notrim`: the whole host is looked up.
            records: "www.badsite-test.com A 127.0.1.2\n",
        },
        Zone {
            apex: "multi.surbl.org",
            records: "phishy-test.com A 127.0.0.8\n",
        },
        Zone {
            apex: "list.dnswl.org",
            records: "4.3.2.81 A 127.0.10.2\n",
        },
    ]
}

fn engine(site: &Path, dns: &DnsConfig) -> Engine {
    let cfg = SpamConfig {
        rules_dir: "/usr/share/spamassassin".into(),
        site_dir: site.to_path_buf(),
        prefilter_cache: std::path::PathBuf::new(),
        early_stop: false,
        ..SpamConfig::default()
    };
    Engine::new(&cfg, dns).expect("engine")
}

fn dns_at(server: &str, budget: u64) -> DnsConfig {
    DnsConfig {
        servers: vec![server.to_string()],
        budget,
        query_timeout: 1,
        ..DnsConfig::default()
    }
}

/// The names of the rules that hit, with the engine's DNS summary.
async fn scan(engine: &Engine, msg: &str) -> (Vec<String>, amavisd::spam::Scanned) {
    let scan = engine.scan_whole().expect("rules loaded");
    let raw = msg.as_bytes().to_vec();
    let halfway = tokio::task::spawn_blocking(move || {
        let parsed = amavisd::decode::parse(&raw);
        scan.run(&raw, &parsed, "a@spammer-test.com")
    })
    .await
    .unwrap()
    .expect("no Bayes, no error");
    let scanned = halfway.finish(None).await.unwrap();
    let o = &scanned.outcomes[0];
    let mut names: Vec<String> = o.hits.iter().map(|h| h.name.clone()).collect();
    names.extend(o.subtests.iter().cloned());
    (names, scanned)
}

fn has(names: &[String], rule: &str) -> bool {
    names.iter().any(|n| n == rule)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_rule_family_fires_where_listed_and_only_there() {
    let nsd = Nsd::start(&zones()).expect("nsd (scripts/test-services.sh nsd)");
    let site = common::spamassassin_site("");
    let e = engine(site.path(), &dns_at(&nsd.server(), 5));
    let (hits, scanned) = scan(&e, LISTED).await;
    // Relays: the set `zen` (all untrusted) and its sub-rule; `-lastexternal` with a subtest.
    for rule in [
        "__RCVD_IN_ZEN",
        "RCVD_IN_SBL",
        "RCVD_IN_XBL",
        "RCVD_IN_BL_SPAMCOP_NET",
        "URIBL_DBL_SPAM",
        "URIBL_PH_SURBL",
        // The link's address in the SBL; its name server's in the CSS (SpamAssassin 4.0.1
        // sends name servers' addresses to the `a` rules' zones).
        "URIBL_SBL_A",
        "URIBL_CSS_A",
    ] {
        assert!(has(&hits, rule), "{rule} missing: {hits:?}");
    }
    // Listed, but not with these codes / not for the last external relay.
    for rule in [
        "URIBL_SBL",
        "URIBL_CSS",
        "RCVD_IN_PBL",
        "RCVD_IN_SBL_CSS",
        "URIBL_DBL_PHISH",
        "URIBL_MW_SURBL",
        "RCVD_IN_DNSWL_MED",
    ] {
        assert!(!has(&hits, rule), "{rule} hit: {hits:?}");
    }
    assert!(!scanned.dns_incomplete, "{}", scanned.dns);
    assert!(scanned.dns.contains(" in "), "{}", scanned.dns);
    // Score set 1: the network rules carry their network scores.
    let o = &scanned.outcomes[0];
    let sbl = o.hits.iter().find(|h| h.name == "RCVD_IN_SBL").unwrap();
    assert!((sbl.score - 2.596).abs() < 1e-9, "{sbl:?}");

    let (hits, _) = scan(&e, WELL_KNOWN).await;
    assert!(has(&hits, "RCVD_IN_DNSWL_MED"), "{hits:?}");
    for rule in [
        "RCVD_IN_SBL",
        "RCVD_IN_XBL",
        "URIBL_DBL_SPAM",
        "RCVD_IN_BL_SPAMCOP_NET",
    ] {
        assert!(!has(&hits, rule), "{rule} hit: {hits:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_trusted_relays_are_not_looked_up() {
    let nsd = Nsd::start(&zones()).expect("nsd (scripts/test-services.sh nsd)");
    // The relay that reached our MX is a backup MX of ours: trusted, internal.
    let site = common::spamassassin_site("trusted_networks 45.67.89.10\n");
    let e = engine(site.path(), &dns_at(&nsd.server(), 5));
    let (hits, _) = scan(&e, LISTED).await;
    // The relay before it is the last external one now: in the SBL, not in the XBL.
    assert!(has(&hits, "RCVD_IN_SBL"), "{hits:?}");
    assert!(!has(&hits, "RCVD_IN_XBL"), "{hits:?}");
    assert!(!has(&hits, "RCVD_IN_BL_SPAMCOP_NET"), "{hits:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_checks_off_send_nothing_and_use_score_set_0() {
    let nsd = Nsd::start(&zones()).expect("nsd (scripts/test-services.sh nsd)");
    let site = common::spamassassin_site("");
    let off = DnsConfig {
        enabled: false,
        ..dns_at(&nsd.server(), 5)
    };
    let e = engine(site.path(), &off);
    let (hits, scanned) = scan(&e, LISTED).await;
    assert!(
        !hits
            .iter()
            .any(|h| h.starts_with("RCVD_IN_") || h.starts_with("URIBL_")),
        "{hits:?}"
    );
    assert_eq!(scanned.dns, "");
}

/// A DNS server that answers every query the same bad way, or never.
#[derive(Clone, Copy, Debug)]
enum Bad {
    Silent,
    ServFail,
    Truncated,
    WrongType,
    Garbage,
}

async fn bad_server(how: Bad) -> std::net::SocketAddr {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let q = &buf[..n];
            if n < 12 {
                continue;
            }
            let reply = match how {
                Bad::Silent => continue,
                Bad::Garbage => vec![q[0], q[1], 0xff, 0xff, 0, 9, 0, 9],
                Bad::ServFail => answer(q, 0x8182, &[]),
                Bad::Truncated => answer(q, 0x8380, &[]),
                // An MX record (to the root) whatever was asked (addresses, text).
                Bad::WrongType => answer(
                    q,
                    0x8180,
                    &[0xc0, 12, 0, 15, 0, 1, 0, 0, 0, 60, 0, 3, 0, 10, 0],
                ),
            };
            let _ = sock.send_to(&reply, from).await;
        }
    });
    addr
}

/// The query echoed back as a response with `flags` and one answer record (if given).
fn answer(q: &[u8], flags: u16, record: &[u8]) -> Vec<u8> {
    let mut r = q.to_vec();
    r[2..4].copy_from_slice(&flags.to_be_bytes());
    if !record.is_empty() {
        r[6..8].copy_from_slice(&1u16.to_be_bytes());
        // Drop an EDNS record the query may carry: answers go after the question.
        let qend = 12 + q[12..].iter().position(|&b| b == 0).unwrap() + 5;
        r.truncate(qend);
        r[10..12].copy_from_slice(&0u16.to_be_bytes());
        r.extend_from_slice(record);
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_slow_or_lying_server_costs_at_most_the_budget() {
    let site = common::spamassassin_site("");
    // Nothing listens on this port at all.
    let dead = format!("127.0.0.1:{}", common::free_port());
    let mut servers = vec![("dead".to_string(), dead)];
    for how in [
        Bad::Silent,
        Bad::ServFail,
        Bad::Truncated,
        Bad::WrongType,
        Bad::Garbage,
    ] {
        servers.push((format!("{how:?}"), bad_server(how).await.to_string()));
    }
    for (what, server) in servers {
        let e = engine(site.path(), &dns_at(&server, 2));
        let started = Instant::now();
        let (hits, scanned) = scan(&e, LISTED).await;
        let took = started.elapsed();
        assert!(took < Duration::from_millis(3_500), "{what}: {took:?}");
        assert!(
            !hits
                .iter()
                .any(|h| h.starts_with("RCVD_IN_") || h.starts_with("URIBL_")),
            "{what}: {hits:?}"
        );
        // The local rules still ran.
        assert!(
            !scanned.outcomes[0].hits.is_empty() || !scanned.outcomes[0].subtests.is_empty(),
            "{what}"
        );
        assert!(!scanned.dns.is_empty(), "{what}");
        if what == "Silent" {
            assert!(scanned.dns_incomplete, "{what}: {}", scanned.dns);
            assert!(scanned.dns.contains("timed out"), "{what}: {}", scanned.dns);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_resolver_is_no_temporary_failure_in_the_pipeline() {
    use amavisd::message::{ClientInfo, Destiny, Envelope, Protocol, Recipient, Spool};
    use amavisd::pipeline::Pipeline;
    let tmp = tempfile::tempdir().unwrap();
    let site = common::spamassassin_site("");
    let mut c = common::config(
        &format!("smtp:[127.0.0.1]:{}", common::free_port()),
        tmp.path(),
    );
    c.spam.enabled = true;
    c.spam.rules_dir = "/usr/share/spamassassin".into();
    c.spam.site_dir = site.path().to_path_buf();
    c.spam.prefilter_cache = std::path::PathBuf::new();
    c.dns = dns_at(&bad_server(Bad::Silent).await.to_string(), 1);
    let pipeline = Pipeline::new(std::sync::Arc::new(common::valid(c))).unwrap();
    let env = Envelope {
        mail_from: "a@spammer-test.com".into(),
        recipients: vec![Recipient {
            address: "u@example.org".into(),
            params: vec![],
        }],
        mail_params: vec![],
        client: ClientInfo::default(),
        protocol: Protocol::Smtp,
        received_at: std::time::SystemTime::now(),
    };
    let started = Instant::now();
    let a = pipeline
        .check(env, Spool::from_bytes(LISTED.as_bytes().to_vec()))
        .await
        .expect("a verdict, not a temporary failure");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_ne!(a.recipients[0].verdict.destiny, Destiny::Tempfail);
    let spam = a.results.spam.expect("scored");
    assert!(
        spam.dns_incomplete && spam.dns.contains("timed out"),
        "{spam:?}"
    );
}

/// The rules that look things up in DNS, by their names in SpamAssassin's files.
fn is_network_rule(name: &str) -> bool {
    ["RCVD_IN_", "URIBL_", "SURBL_", "DNSWL_"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// SpamAssassin's own `spamassassin -t` on `msg`, asking the same server (`dns_server`),
/// with `local` added to its site configuration: the network rules that hit.
fn spamassassin_network_hits(msg: &str, nsd: &Nsd, local: &str) -> Vec<String> {
    let site = common::spamassassin_site(&format!(
        "dns_server {}\ndns_available yes\nuse_bayes 0\nrbl_timeout 3\n{local}",
        nsd.server()
    ));
    let prefs = site.path().join("user_prefs");
    let mut child = std::process::Command::new("spamassassin")
        .arg("-t")
        .arg("-p")
        .arg(&prefs)
        .arg(format!("--siteconfigpath={}", site.path().display()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spamassassin (Debian package spamassassin)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(msg.replace("\r\n", "\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // X-Spam-Status: Yes, score=7.4 required=5.0 tests=A,B,\n\tC autolearn=...
    let status: String = text
        .split("X-Spam-Status:")
        .nth(1)
        .expect("an X-Spam-Status field")
        .split("autolearn=")
        .next()
        .unwrap_or("")
        .to_string();
    let tests = status.split("tests=").nth(1).unwrap_or("");
    let mut hits: Vec<String> = tests
        .split([',', ' ', '\n', '\t'])
        .map(str::trim)
        .filter(|t| is_network_rule(t))
        .map(String::from)
        .collect();
    hits.sort();
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spamassassin_agrees_on_the_network_rules() {
    let nsd = Nsd::start(&zones()).expect("nsd (scripts/test-services.sh nsd)");
    let cases = [
        (LISTED, ""),
        (WELL_KNOWN, ""),
        (LISTED, "trusted_networks 45.67.89.10\n"),
        (WELL_KNOWN, "trusted_networks 81.2.3.4\n"),
    ];
    for (msg, local) in cases {
        let site = common::spamassassin_site(local);
        let e = engine(site.path(), &dns_at(&nsd.server(), 5));
        let (hits, _) = scan(&e, msg).await;
        let mut ours: Vec<String> = hits.into_iter().filter(|h| is_network_rule(h)).collect();
        ours.sort();
        let theirs = spamassassin_network_hits(msg, &nsd, local);
        assert_eq!(ours, theirs, "local.cf {local:?}");
        assert!(
            !local.is_empty() || !ours.is_empty(),
            "the case tests nothing"
        );
    }
}
