//! DKIM through the filter: our users' mail signed per author domain, every message verified
//! with an `Authentication-Results` field, forged ones of our authserv-id removed; the key
//! tools (`amavisd genrsa|showkeys|testkeys`); and both directions against an independent
//! implementation, Debian's Perl Mail::DKIM (`libmail-dkim-perl`): its signatures verify
//! here, ours verify there. Key records come from `[dkim.dns]` (the test's "DNS").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use amavisd::config::Config;
use amavisd::dkim::{KeyConfig, Keys};
use amavisd_testing::sink::SinkMode;
use common::{Rig, send_xf};
use std::path::{Path, PathBuf};
use std::process::Command;

const AMAVISD: &str = env!("CARGO_BIN_EXE_amavisd");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dkim");
/// Our authserv-id in the tests: common::config's myhostname.
const ID: &str = "filter.example.com";

/// The client of an originating message (in the default mynetworks: the MYNETS bank).
const OURS: &str = "ADDR=10.1.2.3";
/// The client of a message from outside.
const OUTSIDE: &str = "ADDR=192.0.2.7";

const MSG: &[u8] = b"From: Joe User <joe@example.com>\r\nTo: <bob@example.org>\r\nSubject: quarterly figures\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <q1@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nThe figures are attached in spirit.\r\n\r\n";

/// A new 2048-bit key in `dir`, written by `amavisd genrsa`.
fn genrsa(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new(AMAVISD)
        .arg("genrsa")
        .arg(&path)
        .output()
        .expect("run amavisd genrsa");
    assert!(out.status.success(), "{out:?}");
    path
}

/// The TXT text that publishes `key_file`'s key.
fn record_of(domain: &str, selector: &str, key_file: &Path) -> String {
    let keys = Keys::load(&[KeyConfig {
        domain: domain.into(),
        selector: selector.into(),
        key_file: key_file.into(),
    }])
    .expect("load key");
    keys.iter().next().expect("one key").record()
}

/// Signing for example.com with `key`, verifying with `records` as DNS.
fn dkim_config(c: &mut Config, key: &Path, records: &[(&str, String)]) {
    c.dkim.sign = true;
    c.dkim.verify = true;
    c.dkim.keys = vec![KeyConfig {
        domain: "example.com".into(),
        selector: "s2026".into(),
        key_file: key.into(),
    }];
    for (name, text) in records {
        c.dkim.dns.insert(name.to_string(), text.clone());
    }
}

/// Sends `msg` from `client` (OURS or OUTSIDE) with envelope sender `from` to
/// bob@example.org; checks that it was accepted and gives what the next hop received.
async fn relay(rig: &Rig, client: &str, from: &str, msg: &[u8]) -> Vec<u8> {
    let r = send_xf(rig.addr, false, client, from, &["bob@example.org"], msg).await;
    assert!(r.starts_with("250"), "{r}");
    rig.sink.received().last().expect("delivered").data.clone()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The header fields named `name` in a message, unfolded.
fn fields(msg: &[u8], name: &str) -> Vec<String> {
    let t = text(msg);
    let head = t
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .replace("\r\n\t", " ");
    let head = head.replace("\r\n ", " ");
    head.split("\r\n")
        .filter(|l| {
            l.split_once(':')
                .is_some_and(|(n, _)| n.eq_ignore_ascii_case(name))
        })
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn our_users_mail_is_signed_and_verifies_on_the_way_back_in() {
    let keydir = tempfile::tempdir().unwrap();
    let key = genrsa(keydir.path(), "example.com.pem");
    let record = record_of("example.com", "s2026", &key);
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        dkim_config(c, &key, &[("s2026._domainkey.example.com", record)])
    })
    .await;

    // Our user's mail: signed, d= the author's domain.
    let signed = relay(&rig, OURS, "joe@example.com", MSG).await;
    assert!(signed.starts_with(b"DKIM-Signature: "), "{}", text(&signed));
    let sig = &fields(&signed, "DKIM-Signature")[0];
    assert!(
        sig.contains("d=example.com") && sig.contains("s=s2026"),
        "{sig}"
    );
    assert!(sig.contains("c=relaxed/simple"), "{sig}");
    // Verified on the way in too: no signature yet.
    assert_eq!(
        fields(&signed, "Authentication-Results"),
        [format!(
            "Authentication-Results: {ID} (amavisd-rs); dkim=none"
        )]
    );

    // The signed copy comes back from outside: it passes, and the earlier field with our id
    // (now forged, as far as anyone can tell) is gone.
    let back = relay(&rig, OUTSIDE, "joe@example.com", &signed).await;
    let ar = fields(&back, "Authentication-Results");
    assert_eq!(ar.len(), 1, "{ar:?}");
    assert!(
        ar[0].starts_with(&format!("Authentication-Results: {ID} (amavisd-rs); dkim=pass header.d=example.com header.s=s2026 header.b=")),
        "{}",
        ar[0]
    );
    // Mail from outside is not signed again.
    assert_eq!(fields(&back, "DKIM-Signature").len(), 1);

    // Changed on the way: a signed header field, then the body.
    let altered = text(&signed).replace("quarterly figures", "quarterly fig ures");
    let got = relay(&rig, OUTSIDE, "joe@example.com", altered.as_bytes()).await;
    let ar = fields(&got, "Authentication-Results");
    assert!(ar[0].contains("dkim=fail (verification failed)"), "{ar:?}");
    let altered = text(&signed).replace("in spirit", "in letter");
    let got = relay(&rig, OUTSIDE, "joe@example.com", altered.as_bytes()).await;
    let ar = fields(&got, "Authentication-Results");
    assert!(ar[0].contains("body hash did not verify"), "{ar:?}");
    assert!(!ar[0].contains("dkim=pass"), "{ar:?}");
    rig.stop().await;
}

#[tokio::test]
async fn only_originating_mail_of_a_keyed_domain_is_signed() {
    let keydir = tempfile::tempdir().unwrap();
    let key = genrsa(keydir.path(), "k.pem");
    let rig = Rig::start_with(SinkMode::Accept, false, |c| dkim_config(c, &key, &[])).await;
    let from = |f: &str| text(MSG).replace("joe@example.com", f);
    // From outside: not ours to sign, whatever it claims.
    relay(&rig, OUTSIDE, "joe@example.com", MSG).await;
    // Ours, from a domain without a key.
    relay(
        &rig,
        OURS,
        "ann@example.net",
        from("ann@example.net").as_bytes(),
    )
    .await;
    // Ours, from a subdomain: the parent's key signs (aligned for DMARC's relaxed mode).
    relay(
        &rig,
        OURS,
        "joe@sales.example.com",
        from("joe@sales.example.com").as_bytes(),
    )
    .await;
    // The author decides, not the envelope; with no keyed author, the envelope sender.
    relay(&rig, OURS, "bounces@example.net", MSG).await;
    relay(
        &rig,
        OURS,
        "list@example.com",
        from("ann@example.net").as_bytes(),
    )
    .await;
    let got = rig.sink.received();
    let sigs: Vec<Vec<String>> = got
        .iter()
        .map(|m| fields(&m.data, "DKIM-Signature"))
        .collect();
    assert!(sigs[0].is_empty());
    assert!(sigs[1].is_empty());
    assert!(sigs[2][0].contains("d=example.com"), "{:?}", sigs[2]);
    assert!(sigs[3][0].contains("d=example.com"), "{:?}", sigs[3]);
    assert!(sigs[4][0].contains("d=example.com"), "{:?}", sigs[4]);
    rig.stop().await;
}

#[tokio::test]
async fn forged_authentication_results_are_removed_and_others_kept() {
    let rig = Rig::start_with(SinkMode::Accept, false, |c| c.dkim.verify = true).await;
    let msg = format!(
        "Authentication-Results: {} ; dkim=pass header.d=bank.example\r\nAuthentication-Results: mx.isp.example; spf=pass smtp.mailfrom=bank.example\r\nAuthentication-Results:\r\n (comment) FILTER.example.com 1;\r\n dmarc=pass\r\n{}",
        ID,
        text(MSG)
    );
    let got = relay(&rig, OUTSIDE, "joe@example.com", msg.as_bytes()).await;
    let ar = fields(&got, "Authentication-Results");
    assert_eq!(
        ar,
        [
            format!("Authentication-Results: {ID} (amavisd-rs); dkim=none"),
            "Authentication-Results: mx.isp.example; spf=pass smtp.mailfrom=bank.example"
                .to_string(),
        ]
    );
    rig.stop().await;
}

#[tokio::test]
async fn without_verification_nothing_is_added_or_removed() {
    let rig = Rig::start(SinkMode::Accept, false).await;
    let msg = format!("Authentication-Results: {ID}; dkim=pass\r\n{}", text(MSG));
    let got = relay(&rig, OUTSIDE, "joe@example.com", msg.as_bytes()).await;
    let ar = fields(&got, "Authentication-Results");
    assert_eq!(ar, [format!("Authentication-Results: {ID}; dkim=pass")]);
    rig.stop().await;
}

/// Runs one of the Perl helpers in tests/fixtures/dkim with `input` on stdin.
fn perl(script: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("perl")
        .arg(Path::new(FIXTURES).join(script))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("perl (Debian's perl with libmail-dkim-perl, installed by .ci/run)");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{script}: {}", text(&out.stderr));
    out.stdout
}

#[tokio::test]
async fn mail_dkim_signatures_verify_here_and_ours_verify_in_mail_dkim() {
    let keydir = tempfile::tempdir().unwrap();
    let key = genrsa(keydir.path(), "k.pem");
    let record = record_of("example.com", "s2026", &key);
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        dkim_config(c, &key, &[("s2026._domainkey.example.com", record.clone())])
    })
    .await;

    // Perl signs (relaxed/relaxed) with the key amavisd genrsa wrote; we verify.
    let theirs = perl(
        "sign.pl",
        &[key.to_str().unwrap(), "example.com", "s2026"],
        MSG,
    );
    let got = relay(&rig, OUTSIDE, "joe@example.com", &theirs).await;
    let ar = fields(&got, "Authentication-Results");
    assert!(ar[0].contains("dkim=pass header.d=example.com"), "{ar:?}");

    // We sign (relaxed/simple); Perl verifies what the next hop got.
    let ours = relay(&rig, OURS, "joe@example.com", MSG).await;
    let verdict = text(&perl(
        "verify.pl",
        &["s2026._domainkey.example.com", &record],
        &ours,
    ));
    assert!(verdict.contains("example.com pass"), "{verdict}");
    assert!(verdict.ends_with("result=pass\n"), "{verdict}");
    // ... and notices a change.
    let altered = text(&ours).replace("Subject: quarterly", "Subject: annual");
    let verdict = text(&perl(
        "verify.pl",
        &["s2026._domainkey.example.com", &record],
        altered.as_bytes(),
    ));
    assert!(verdict.contains("result=fail"), "{verdict}");
    rig.stop().await;
}

#[tokio::test]
async fn a_known_good_signed_message_passes() {
    // Signed once by Perl Mail::DKIM with an openssl-made key; the record is its public half.
    let msg = std::fs::read(Path::new(FIXTURES).join("known-good.eml")).unwrap();
    let record = std::fs::read_to_string(Path::new(FIXTURES).join("known-good.record")).unwrap();
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        c.dkim.verify = true;
        c.dkim.dns.insert(
            "kg2026._domainkey.mail.example.net".into(),
            record.trim().to_string(),
        );
    })
    .await;
    let got = relay(&rig, OUTSIDE, "jane@mail.example.net", &msg).await;
    let ar = fields(&got, "Authentication-Results");
    assert!(
        ar[0].contains("dkim=pass header.d=mail.example.net header.s=kg2026"),
        "{ar:?}"
    );
    rig.stop().await;
}

#[test]
fn amavisd_new_style_pkcs1_keys_load() {
    // `openssl genrsa -traditional` (and amavisd-new's genrsa) write "BEGIN RSA PRIVATE KEY".
    let keys = Keys::load(&[KeyConfig {
        domain: "Mail.Example.NET".into(),
        selector: "kg2026".into(),
        key_file: Path::new(FIXTURES).join("pkcs1-test-key.pem"),
    }])
    .unwrap();
    let k = keys.iter().next().unwrap();
    assert_eq!(
        (k.kind, k.bits, k.domain.as_str()),
        ("rsa", 2048, "mail.example.net")
    );
    let published = std::fs::read_to_string(Path::new(FIXTURES).join("known-good.record")).unwrap();
    let p = |r: &str| r.split("p=").nth(1).map(|p| p.trim().to_string());
    assert_eq!(p(&k.record()), p(&published));
}

/// A config file in `dir` with `body` appended.
fn config_file(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("amavisd.toml");
    std::fs::write(&path, format!("myhostname = \"{ID}\"\n{body}")).unwrap();
    path
}

fn run(args: &[&str], config: &Path) -> (bool, String, String) {
    let out = Command::new(AMAVISD)
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .expect("run amavisd");
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn the_key_tools() {
    let dir = tempfile::tempdir().unwrap();
    let key = genrsa(dir.path(), "example.com.pem");
    // A key file is private, and never overwritten (it may be published already).
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = Command::new(AMAVISD)
        .arg("genrsa")
        .arg(&key)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("exists"), "{again:?}");
    let bits = Command::new(AMAVISD)
        .arg("genrsa")
        .arg(dir.path().join("x"))
        .arg("512")
        .output()
        .unwrap();
    assert!(!bits.status.success());

    let keys = format!(
        "[dkim]\n[[dkim.keys]]\ndomain = \"example.com\"\nselector = \"s1\"\nkey_file = \"{}\"\n",
        key.display()
    );
    // showkeys: the zone-file record, whose p= is the key's.
    let cfg = config_file(dir.path(), &keys);
    let (ok, shown, err) = run(&["showkeys"], &cfg);
    assert!(ok, "{err}");
    assert!(
        shown.contains("; key#1 2048 bits, s=s1, d=example.com,"),
        "{shown}"
    );
    assert!(
        shown.contains("s1._domainkey.example.com.\t3600 TXT ("),
        "{shown}"
    );
    let joined: String = shown
        .lines()
        .filter(|l| l.starts_with("  \""))
        .map(|l| l.trim().trim_end_matches(')').trim_matches('"'))
        .collect();
    assert_eq!(joined, record_of("example.com", "s1", &key));
    assert_eq!(run(&["showkeys", "example.org"], &cfg).1, "");

    // testkeys against a published record: the right one passes, another key's fails.
    let published = |record: String| {
        format!("{keys}[dkim.dns]\n\"s1._domainkey.example.com\" = \"{record}\"\n")
    };
    let cfg = config_file(dir.path(), &published(record_of("example.com", "s1", &key)));
    let (ok, out, err) = run(&["testkeys"], &cfg);
    assert!(ok, "{out}{err}");
    assert_eq!(
        out,
        "TESTING#1 example.com: s1._domainkey.example.com => pass\n"
    );
    let other = genrsa(dir.path(), "other.pem");
    let cfg = config_file(
        dir.path(),
        &published(record_of("example.com", "s1", &other)),
    );
    let (ok, out, _) = run(&["testkeys"], &cfg);
    assert!(!ok);
    assert!(out.contains("=> fail"), "{out}");
}

#[test]
fn a_bad_key_is_refused_with_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let cfg = config_file(
        dir.path(),
        &format!(
            "[dkim]\nsign = true\n[[dkim.keys]]\ndomain = \"example.com\"\nselector = \"s1\"\nkey_file = \"{}\"\n",
            missing.display()
        ),
    );
    let err = Config::load(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("amavisd.toml") && err.contains("dkim.keys[0]"),
        "{err}"
    );
    assert!(err.contains("missing.pem"), "{err}");

    std::fs::write(&missing, "not a key\n").unwrap();
    let err = Config::load(&cfg).unwrap_err().to_string();
    assert!(err.contains("no PEM private key"), "{err}");

    let cfg = config_file(
        dir.path(),
        "[dkim]\n[dkim.dns]\n\"s._domainkey.x.org\" = \"v=DKIM1; p=@@\"\n",
    );
    let err = Config::load(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("dkim.dns") && err.contains("s._domainkey.x.org"),
        "{err}"
    );
    let cfg = config_file(dir.path(), "[dkim]\nsign_headers = [\"To\"]\n");
    let err = Config::load(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("dkim.sign_headers") && err.contains("From"),
        "{err}"
    );
}
