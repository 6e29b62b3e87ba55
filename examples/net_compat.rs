//! The network rules beside SpamAssassin's own, on corpus mail, against one real DNS server
//! (NSD) whose blocklist zones list a fixed share of the relays and link hosts the messages
//! carry (chosen by hash: some in Spamhaus ZEN with each return code, SpamCop, DNSWL; some
//! link hosts and registered domains in DBL, SURBL, URIBL). Prints the agreement on the
//! network rules with `spamassassin -t` asking the same server, the queries per message,
//! and the network-check time per message with a cold and a warm cache, optionally with
//! each query delayed (a forwarding proxy in front of NSD).
//!
//! ```text
//! cargo run --release --example net_compat -- [MESSAGES] [--delay-ms MS] [--no-sa]
//! ```
//! Needs nsd and spamassassin (scripts/test-services.sh nsd; Debian's spamassassin).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use amavisd::dns::DnsConfig;
use amavisd::spam::engine::Rules;
use amavisd::spam::view::MessageView;
use amavisd::spam::{Engine, SpamConfig};
use amavisd_testing::nsd::{Nsd, Zone};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

const RULES: &str = "/usr/share/spamassassin";

fn is_network_rule(name: &str) -> bool {
    ["RCVD_IN_", "URIBL_", "SURBL_"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// FNV-1a: a stable choice of what to list.
fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

fn reverse(ip: &std::net::Ipv4Addr) -> String {
    let o = ip.octets();
    format!("{}.{}.{}.{}", o[3], o[2], o[1], o[0])
}

fn uri_host(u: &str) -> Option<String> {
    let rest = u.split_once("://")?.1;
    let auth = rest.split(['/', '?', '#']).next()?;
    let host = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    let host = host
        .split(':')
        .next()?
        .trim_end_matches('.')
        .to_ascii_lowercase();
    (host.contains('.')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
    .then_some(host)
}

/// The zones' records: relays and link hosts of `msgs`, a share of each listed.
fn zones_for(msgs: &[Vec<u8>], rules: &Rules) -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut z: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for m in msgs {
        let view = MessageView::build(m, "", &rules.view);
        for r in view.relays.all() {
            let Ok(IpAddr::V4(ip)) = r.ip.parse::<IpAddr>() else {
                continue;
            };
            let (h, rev) = (hash(&r.ip), reverse(&ip));
            let code = ["127.0.0.2", "127.0.0.4", "127.0.0.10", "127.0.0.3"];
            if let Some(c) = code.get((h % 6) as usize) {
                z.entry("zen.spamhaus.org")
                    .or_default()
                    .insert(format!("{rev} A {c}"));
            }
            if h % 7 == 0 {
                let spamcop = z.entry("bl.spamcop.net").or_default();
                spamcop.insert(format!("{rev} A 127.0.0.2"));
                spamcop.insert(format!(
                    "{rev} TXT \"Blocked - see https://www.spamcop.net/bl.shtml?{}\"",
                    r.ip
                ));
            }
            if h % 5 == 1 {
                z.entry("list.dnswl.org").or_default().insert(format!(
                    "{rev} A 127.0.{}.{}",
                    h % 20,
                    (h / 5) % 4
                ));
            }
        }
        for host in view.uris.iter().filter_map(|u| uri_host(u)) {
            let domain = amavisd::spam::eval::registrable_in(&host, &rules.lists);
            let (hh, hd) = (hash(&host), hash(&domain));
            if hh % 4 == 0 {
                z.entry("dbl.spamhaus.org")
                    .or_default()
                    .insert(format!("{host}. A 127.0.1.2"));
            }
            if hd % 4 == 1 {
                z.entry("dbl.spamhaus.org")
                    .or_default()
                    .insert(format!("{domain}. A 127.0.1.4"));
            }
            if hh % 5 == 0 {
                z.entry("multi.surbl.org")
                    .or_default()
                    .insert(format!("{host}. A 127.0.0.8"));
            }
            if hd % 5 == 1 {
                z.entry("multi.surbl.org")
                    .or_default()
                    .insert(format!("{domain}. A 127.0.0.16"));
            }
            if hd % 3 == 0 {
                z.entry("multi.uribl.com")
                    .or_default()
                    .insert(format!("{domain}. A 127.0.0.2"));
            }
            if hh % 3 == 1 {
                z.entry("multi.uribl.com")
                    .or_default()
                    .insert(format!("{host}. A 127.0.0.4"));
            }
        }
    }
    // Absolute names must lie inside their zone.
    for (apex, records) in z.iter_mut() {
        let kept: BTreeSet<String> = records
            .iter()
            .map(|r| {
                let (name, rest) = r.split_once(' ').unwrap();
                match name.strip_suffix('.') {
                    Some(abs) => format!("{abs}.{apex}. {rest}"),
                    None => r.clone(),
                }
            })
            .collect();
        *records = kept;
    }
    z
}

/// A UDP proxy in front of `upstream` that holds every query `delay` first.
async fn delaying_proxy(upstream: SocketAddr, delay: Duration) -> SocketAddr {
    let sock = std::sync::Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let q = buf[..n].to_vec();
            let sock = std::sync::Arc::clone(&sock);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let up = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                up.send_to(&q, upstream).await.unwrap();
                let mut r = [0u8; 4096];
                if let Ok(Ok((m, _))) =
                    tokio::time::timeout(Duration::from_secs(3), up.recv_from(&mut r)).await
                {
                    let _ = sock.send_to(&r[..m], from).await;
                }
            });
        }
    });
    addr
}

/// `spamassassin -t` asking `server`: the network rules that hit.
fn spamassassin(msg: &[u8], site: &Path) -> BTreeSet<String> {
    let mut child = std::process::Command::new("spamassassin")
        .arg("-t")
        .arg("-p")
        .arg(site.join("user_prefs"))
        .arg(format!("--siteconfigpath={}", site.display()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spamassassin");
    child.stdin.take().unwrap().write_all(msg).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let status = text.split("X-Spam-Status:").nth(1).unwrap_or("");
    let tests = status
        .split("autolearn=")
        .next()
        .unwrap_or("")
        .split("tests=")
        .nth(1)
        .unwrap_or("");
    tests
        .split([',', ' ', '\n', '\t'])
        .map(str::trim)
        .filter(|t| is_network_rule(t))
        .map(String::from)
        .collect()
}

/// Queries sent and milliseconds, from a scan's DNS summary (`12/12 in 3 ms ...`).
fn sent_and_ms(summary: &str) -> (u64, u64) {
    let sent = summary
        .split(' ')
        .next()
        .and_then(|a| a.split('/').nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let ms = summary
        .split(" in ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (sent, ms)
}

fn site_dir(extra: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir("/etc/spamassassin").unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "pre") {
            std::fs::copy(&p, d.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(d.path().join("local.cf"), extra).unwrap();
    d
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(60);
    let delay = args
        .iter()
        .position(|a| a == "--delay-ms")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis);
    let with_sa = !args.iter().any(|a| a == "--no-sa");
    let files = common::dev_files(n);
    let msgs: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let opts = amavisd::spam::engine::LoadOptions {
        network: true,
        ..Default::default()
    };
    let rules =
        Rules::load_opts(Path::new(RULES), Some(Path::new("/etc/spamassassin")), opts).unwrap();
    let mut zones = zones_for(&msgs, &rules);
    // Every other zone the rules ask, empty: NXDOMAIN as from the Internet, not REFUSED.
    for r in &rules.plan.rules {
        use amavisd::spam::net::NetTest;
        let zone = match &r.test {
            amavisd::spam::rules::plan::Test::Net(NetTest::Dnsbl { zone, .. }) => zone.clone(),
            amavisd::spam::rules::plan::Test::Net(NetTest::Uri(bl)) => bl.zone.clone(),
            _ => continue,
        };
        let zone: &'static str = Box::leak(zone.into_boxed_str());
        zones.entry(zone).or_default();
    }
    // And the top-level domains and askdns zones, for the queries about senders' domains.
    for tld in [
        "com", "net", "org", "edu", "gov", "uk", "de", "fr", "nl", "ru", "jp", "info", "biz", "us",
        "ca", "au", "it", "se", "ch", "be", "at", "dk", "no", "fi", "pl", "cz", "ie", "il", "in",
        "kr", "tw", "cn", "br", "mx", "za", "nz", "la", "es", "pt", "gr", "hu", "ro", "sg", "hk",
    ] {
        zones.entry(tld).or_default();
    }
    let texts: Vec<(String, String)> = zones
        .iter()
        .map(|(a, r)| {
            (
                a.to_string(),
                r.iter().cloned().collect::<Vec<_>>().join("\n"),
            )
        })
        .collect();
    let nsd = Nsd::start(
        &texts
            .iter()
            .map(|(apex, records)| Zone { apex, records })
            .collect::<Vec<_>>(),
    )
    .expect("nsd");
    let listed: usize = zones.values().map(BTreeSet::len).sum();
    println!(
        "{} messages; {listed} records in {} zones on {}",
        msgs.len(),
        zones.len(),
        nsd.server()
    );
    let server = match delay {
        Some(d) => delaying_proxy(nsd.addr, d).await.to_string(),
        None => nsd.server(),
    };
    let cfg = SpamConfig {
        rules_dir: RULES.into(),
        prefilter_cache: std::path::PathBuf::new(),
        early_stop: false,
        ..SpamConfig::default()
    };
    let dns = DnsConfig {
        servers: vec![server.clone()],
        ..DnsConfig::default()
    };
    let engine = Engine::new(&cfg, &dns).expect("engine");
    let mut ours: Vec<BTreeSet<String>> = Vec::new();
    for pass in ["cold", "warm"] {
        let (mut queries, mut ms, mut max_ms) = (0u64, 0u64, 0u64);
        ours.clear();
        for m in &msgs {
            let scan = engine.scan_whole().unwrap();
            let raw = m.clone();
            let halfway = tokio::task::spawn_blocking(move || {
                let parsed = amavisd::decode::parse(&raw);
                scan.run(&raw, &parsed, "")
            })
            .await
            .unwrap()
            .unwrap();
            let s = halfway.finish(None).await.expect("scan");
            let (q, t) = sent_and_ms(&s.dns);
            if std::env::var("NET_DEBUG").is_ok() {
                eprintln!("{pass} {}", s.dns);
            }
            queries += q;
            ms += t;
            max_ms = max_ms.max(t);
            ours.push(
                s.outcomes[0]
                    .hits
                    .iter()
                    .map(|h| h.name.clone())
                    .filter(|h| is_network_rule(h))
                    .collect(),
            );
        }
        let k = msgs.len().max(1) as u64;
        println!(
            "{pass} cache{}: {:.1} queries/message, network checks {:.1} ms/message on average, {max_ms} ms at most",
            delay.map_or(String::new(), |d| format!(
                ", {} ms added per query",
                d.as_millis()
            )),
            queries as f64 / k as f64,
            ms as f64 / k as f64,
        );
    }
    if !with_sa {
        return;
    }
    let site = site_dir(&format!(
        "dns_server {server}\ndns_available yes\nuse_bayes 0\nrbl_timeout 5\n"
    ));
    let (mut same, mut rule_hits) = (0usize, BTreeMap::<String, (u32, u32, u32)>::new());
    for (i, m) in msgs.iter().enumerate() {
        let theirs = spamassassin(m, site.path());
        if theirs == ours[i] {
            same += 1;
        } else {
            println!(
                "  {}: ours {:?} theirs {:?}",
                files[i].display(),
                ours[i],
                theirs
            );
        }
        for r in ours[i].union(&theirs) {
            let e = rule_hits.entry(r.clone()).or_default();
            match (ours[i].contains(r), theirs.contains(r)) {
                (true, true) => e.0 += 1,
                (true, false) => e.1 += 1,
                _ => e.2 += 1,
            }
        }
    }
    println!("same network rules on {same}/{} messages", msgs.len());
    for (r, (both, only_ours, only_theirs)) in rule_hits {
        println!(
            "  {r:<28} both {both:>4}  only ours {only_ours:>3}  only SpamAssassin {only_theirs:>3}"
        );
    }
}
