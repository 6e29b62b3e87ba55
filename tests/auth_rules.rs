//! SPF, DKIM and DMARC against a real DNS server (NSD with the test domains' records),
//! through the pipeline: the spam rules that read them (SPF_*, DKIM_*, DMARC_*) and the
//! results the `Authentication-Results` field is made of.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use amavisd::config::Config;
use amavisd::message::{ClientInfo, Envelope, Protocol, Recipient, Spool, XForward};
use amavisd::pipeline::{Assessment, CheckOptions, Pipeline};
use amavisd_testing::nsd::{Nsd, Zone};
use std::path::Path;
use std::sync::Arc;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dkim");

/// The client Postfix saw (XFORWARD), the one SPF checks.
const SENDER_IP: &str = "45.67.89.10";

/// A message with no signature, from a domain that publishes SPF `-all` and DMARC reject.
const STRICT: &str = "From: Boss <boss@strict-test.com>\r\nTo: u@example.org\r\n\
Subject: wire the money\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <3@strict-test.com>\r\n\r\nNow.\r\n";

/// The same from a domain without any DMARC record, whose SPF is `~all`.
const LAX: &str = "From: Someone <a@lax-test.com>\r\nTo: u@example.org\r\n\
Subject: hello\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <4@lax-test.com>\r\n\r\nHi.\r\n";

/// A TXT record's text in 255-byte strings, as a zone file writes a long one.
fn txt(text: &str) -> String {
    text.as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn start_nsd() -> Nsd {
    let key = std::fs::read_to_string(Path::new(FIXTURES).join("known-good.record")).unwrap();
    let signed = format!(
        "@ TXT \"v=spf1 ip4:{SENDER_IP} -all\"\n_dmarc TXT \"v=DMARC1; p=reject\"\nkg2026._domainkey TXT {}\n",
        txt(key.trim())
    );
    let zones = [
        ("mail.example.net", signed),
        (
            "strict-test.com",
            "@ TXT \"v=spf1 -all\"\n_dmarc TXT \"v=DMARC1; p=reject\"\n".to_string(),
        ),
        ("lax-test.com", "@ TXT \"v=spf1 ~all\"\n".to_string()),
        // The top-level domains, so that names outside the test domains get NXDOMAIN, as
        // from a real resolver (DMARC's tree walk asks up to `_dmarc.net`), not REFUSED.
        // A DKIM whitelist (askdns over the valid signatures' domains): high trust.
        (
            "lookup.dkimwl.org",
            "mail.example.net.lookup.dkimwl.org. A 127.0.0.5\n".to_string(),
        ),
        ("com", String::new()),
        ("net", String::new()),
    ];
    let zones: Vec<Zone<'_>> = zones
        .iter()
        .map(|(apex, records)| Zone { apex, records })
        .collect();
    Nsd::start(&zones).expect("nsd (scripts/test-services.sh nsd)")
}

fn pipeline(nsd: &Nsd, tmp: &Path) -> Pipeline {
    pipeline_with(nsd, tmp, |_| {})
}

/// Same, with `tweak` applied to the configuration.
fn pipeline_with(nsd: &Nsd, tmp: &Path, tweak: impl FnOnce(&mut Config)) -> Pipeline {
    let site = common::spamassassin_site("");
    let mut c = common::config(&format!("smtp:[127.0.0.1]:{}", common::free_port()), tmp);
    c.spam.enabled = true;
    c.spam.rules_dir = "/usr/share/spamassassin".into();
    c.spam.site_dir = site.path().to_path_buf();
    c.spam.prefilter_cache = std::path::PathBuf::new();
    c.spam.early_stop = false;
    c.dns.enabled = true;
    c.dns.servers = vec![nsd.server()];
    c.dns.budget = 5;
    c.dkim.verify_timeout = 5;
    tweak(&mut c);
    // The rules are read here; the site folder may go when this returns.
    Pipeline::new(Arc::new(common::valid(c))).unwrap()
}

async fn check(p: &Pipeline, msg: &[u8], mail_from: &str, client_ip: &str) -> Assessment {
    let env = Envelope {
        mail_from: mail_from.into(),
        mail_params: vec![],
        recipients: vec![Recipient {
            address: "u@example.org".into(),
            params: vec![],
        }],
        client: ClientInfo {
            xforward: XForward {
                addr: Some(client_ip.into()),
                helo: Some("mx.sender-test.com".into()),
                ..XForward::default()
            },
            ..ClientInfo::default()
        },
        protocol: Protocol::Smtp,
        received_at: std::time::SystemTime::now(),
    };
    p.check_with(
        env,
        Arc::new(Spool::from_bytes(msg.to_vec())),
        &CheckOptions::default(),
    )
    .await
    .expect("a verdict")
}

fn hits(a: &Assessment) -> Vec<String> {
    let o = a.spam.as_ref().expect("scanned");
    o.hits.iter().map(|h| h.name.clone()).collect()
}

fn assert_hits(a: &Assessment, yes: &[&str], no: &[&str]) {
    let h = hits(a);
    for r in yes {
        assert!(h.iter().any(|x| x == r), "{r} missing: {h:?}");
    }
    for r in no {
        assert!(!h.iter().any(|x| x == r), "{r} hit: {h:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_message_from_its_spf_host_passes_everything() {
    let nsd = start_nsd();
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(&nsd, tmp.path());
    let msg = std::fs::read(Path::new(FIXTURES).join("known-good.eml")).unwrap();
    let a = check(&p, &msg, "jane@mail.example.net", SENDER_IP).await;
    assert_hits(
        &a,
        &[
            "DKIMWL_WL_HIGH",
            "SPF_PASS",
            "DKIM_SIGNED",
            "DKIM_VALID",
            "DKIM_VALID_AU",
            "DKIM_VALID_EF",
            "DMARC_PASS",
        ],
        &["SPF_FAIL", "DKIM_INVALID", "DMARC_REJECT", "DMARC_MISSING"],
    );
    let v = a.dkim.expect("verified");
    assert!(v.header.contains("dkim=pass"), "{}", v.header);
    assert!(v.header.contains("spf=pass"), "{}", v.header);
    assert!(v.header.contains("dmarc=pass"), "{}", v.header);

    // The same signed message from another host: SPF fails, DKIM still carries DMARC.
    let a = check(&p, &msg, "jane@mail.example.net", "45.67.89.99").await;
    assert_hits(
        &a,
        &["SPF_FAIL", "DKIM_VALID_AU", "DMARC_PASS"],
        &["SPF_PASS"],
    );

    // Altered after signing: the signature fails, and so does DMARC under p=reject.
    let tampered = String::from_utf8_lossy(&msg).replace("Known-good", "Known-bad");
    let a = check(
        &p,
        tampered.as_bytes(),
        "jane@mail.example.net",
        "45.67.89.99",
    )
    .await;
    assert_hits(
        &a,
        &["DKIM_SIGNED", "DKIM_INVALID", "SPF_FAIL", "DMARC_REJECT"],
        &["DKIM_VALID", "DMARC_PASS", "DKIMWL_WL_HIGH"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_mail_meets_its_domains_policies() {
    let nsd = start_nsd();
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(&nsd, tmp.path());
    let a = check(&p, STRICT.as_bytes(), "boss@strict-test.com", SENDER_IP).await;
    assert_hits(
        &a,
        &["SPF_FAIL", "DMARC_REJECT"],
        &["DKIM_SIGNED", "DMARC_PASS", "SPF_PASS"],
    );
    let a = check(&p, LAX.as_bytes(), "a@lax-test.com", SENDER_IP).await;
    assert_hits(
        &a,
        &["SPF_SOFTFAIL", "DMARC_MISSING"],
        &["DMARC_REJECT", "SPF_FAIL"],
    );
    // The null sender: SPF checks the HELO name's domain, which publishes nothing here.
    let a = check(&p, LAX.as_bytes(), "", SENDER_IP).await;
    assert_hits(&a, &[], &["SPF_PASS", "SPF_FAIL", "SPF_SOFTFAIL"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_own_clients_are_not_checked_with_spf() {
    let nsd = start_nsd();
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(&nsd, tmp.path());
    let a = check(&p, STRICT.as_bytes(), "boss@strict-test.com", "192.168.1.5").await;
    assert_hits(&a, &[], &["SPF_FAIL", "SPF_PASS", "SPF_NONE"]);
    assert!(a.dkim.expect("verified").spf.is_none());
}

/// `msg` sealed by Perl Mail::DKIM's ARC signer for mail.example.net (the known-good key),
/// as a mailing list that rewrote the subject would.
fn arc_sealed(msg: &str) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("perl")
        .arg(Path::new(FIXTURES).join("arc-seal.pl"))
        .arg(Path::new(FIXTURES).join("pkcs1-test-key.pem"))
        .args(["mail.example.net", "kg2026"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("perl (Debian's perl with libmail-dkim-perl, installed by .ci/run)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(msg.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_lists_arc_seal_lets_a_dmarc_failure_through() {
    let nsd = start_nsd();
    let tmp = tempfile::tempdir().unwrap();
    // The list got it from strict-test.com's host, checked it, tagged the subject and sealed.
    let listed = arc_sealed(
        "Authentication-Results: mail.example.net; spf=pass smtp.mailfrom=boss@strict-test.com\r\n\
         From: Boss <boss@strict-test.com>\r\nTo: list@mail.example.net\r\n\
         Subject: [list] wire the money\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
         Message-ID: <5@strict-test.com>\r\n\r\nNow.\r\n",
    );
    // From the list's host with the list's bounce address: SPF passes for the list, not
    // for the author's domain, so DMARC fails under p=reject.
    let bounce = "list-bounces@mail.example.net";
    let p = pipeline(&nsd, tmp.path());
    let a = check(&p, &listed, bounce, SENDER_IP).await;
    assert_hits(
        &a,
        &["ARC_VALID", "DMARC_REJECT"],
        &["ARC_INVALID", "DMARC_PASS"],
    );
    let v = a.dkim.expect("verified");
    assert_eq!(v.arc.as_ref().map(|a| a.result), Some("pass"), "{v:?}");
    assert!(
        v.header.contains("arc=pass header.d=mail.example.net"),
        "{}",
        v.header
    );

    let tmp2 = tempfile::tempdir().unwrap();
    let p = pipeline_with(&nsd, tmp2.path(), |c| {
        c.dkim.arc_trusted_sealers = vec!["mail.example.net".into()];
    });
    let a = check(&p, &listed, bounce, SENDER_IP).await;
    assert_hits(&a, &["ARC_VALID", "DMARC_PASS"], &["DMARC_REJECT"]);
    let v = a.dkim.expect("verified");
    assert!(
        v.header.contains("dmarc=pass (policy overridden"),
        "{}",
        v.header
    );

    // Changed after sealing: the chain fails, and the trust does not apply.
    let broken = String::from_utf8_lossy(&listed).replace("Now.", "Now!");
    let a = check(&p, broken.as_bytes(), bounce, SENDER_IP).await;
    assert_hits(
        &a,
        &["ARC_INVALID", "DMARC_REJECT"],
        &["ARC_VALID", "DMARC_PASS"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_that_enforces_dmarc_blocks_reject_failures_as_spam() {
    use amavisd::message::{Category, Destiny};
    let nsd = start_nsd();
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(&nsd, tmp.path());
    // SpamAssassin's way by default: a few points, no more.
    let a = check(&p, STRICT.as_bytes(), "boss@strict-test.com", SENDER_IP).await;
    assert!(
        !a.results
            .spam
            .as_ref()
            .unwrap()
            .tests
            .iter()
            .any(|(t, _)| t == "DMARC_REJECT_POLICY")
    );
    assert_eq!(a.recipients[0].verdict.category, Category::Clean);
    // A recipient domain that enforces it: spam, and final_spam_destiny.
    let tmp2 = tempfile::tempdir().unwrap();
    let p = pipeline_with(&nsd, tmp2.path(), |c| {
        let strict: toml::Table = "dmarc_reject_score = 20.0\nfinal_spam_destiny = \"reject\""
            .parse()
            .unwrap();
        c.recipients.insert("example.org".into(), strict);
    });
    let a = check(&p, STRICT.as_bytes(), "boss@strict-test.com", SENDER_IP).await;
    let v = &a.recipients[0].verdict;
    assert_eq!(v.category, Category::Spam, "{v:?}");
    assert_eq!(v.destiny, Destiny::Reject, "{v:?}");
    // Mail that passes DMARC is not touched.
    let lax = check(&p, LAX.as_bytes(), "a@lax-test.com", SENDER_IP).await;
    assert_eq!(lax.recipients[0].verdict.category, Category::Clean);
}
