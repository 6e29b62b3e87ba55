//! The embedded spam engine in use, with Debian's SpamAssassin rule files (.ci/run installs
//! `spamassassin` and `spamc`): scores reach the verdict and the headers, the spamd listener
//! answers the real spamc, and a reload with a broken rule file keeps the running rules.

mod common;

use amavisd::config::Config;
use amavisd::server;
use amavisd::sink::SinkMode;
use common::*;
use std::path::Path;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Sender <s@example.org>\r\nTo: u@example.com\r\nSubject: {subject}\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <t1@example.org>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// Sends `msg` from s@example.org to the local u@example.com; the reply after the dot.
async fn send(rig: &Rig, msg: &[u8]) -> String {
    let mut cl = rig.client().await;
    cl.send_mail(false, "s@example.org", &["u@example.com"], msg)
        .await
}

fn spam_on(c: &mut Config) {
    c.spam.enabled = true;
    c.spam.early_stop = false;
    c.spam.rules_dir = "/usr/share/spamassassin".into();
    c.spam.site_dir = "/etc/spamassassin".into();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_reach_the_verdict_and_the_headers() {
    assert!(
        Path::new("/usr/share/spamassassin/50_scores.cf").exists(),
        "SpamAssassin's rule files are missing: apt-get install spamassassin (.ci/run does)"
    );
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        spam_on(c);
        // Spam headers for every score (amavisd.conf's usual $sa_tag_level_deflt = -999).
        c.policy.spam_tag_level = Some(-999.0);
        c.policy.final_spam_destiny = amavisd::message::Destiny::Discard;
    })
    .await;
    // Ham: delivered, with the engine's status for the local recipient.
    let r = send(&rig, &message("lunch", "See you at noon.")).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let got = rig.sink.received();
    assert_eq!(got.len(), 1);
    let text = String::from_utf8_lossy(&got[0].data).into_owned();
    assert!(text.contains("X-Spam-Flag: NO"), "{text}");
    assert!(text.contains("X-Spam-Status: No, score="), "{text}");
    // GTUBE scores 1000: spam, discarded by this policy, nothing delivered.
    let r = send(&rig, &message("offer", GTUBE)).await;
    assert!(r.starts_with("250 2.7.0"), "{r}");
    assert_eq!(rig.sink.received().len(), 1, "the spam was not delivered");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spam_is_tagged_when_its_destiny_is_pass() {
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        spam_on(c);
        c.policy.spam_subject_tag2 = "***SPAM*** ".into();
    })
    .await;
    let r = send(&rig, &message("offer", GTUBE)).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let got = rig.sink.received();
    let text = String::from_utf8_lossy(&got[0].data).into_owned();
    assert!(text.contains("X-Spam-Flag: YES"), "{text}");
    assert!(text.contains("Subject: ***SPAM*** offer"), "{text}");
    assert!(
        text.contains("GTUBE=1000"),
        "tests list with scores: {text}"
    );
    rig.stop().await;
}

/// Runs the real spamc against our listener.
async fn spamc(port: u16, args: &[&str], input: &[u8]) -> (i32, String) {
    let mut child = tokio::process::Command::new("spamc")
        .args(["-d", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spamc (apt-get install spamc; .ci/run does)");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).await.expect("write");
    drop(stdin);
    let out = child.wait_with_output().await.expect("spamc output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

async fn spamd_server(site: &Path) -> server::Running {
    let tmp = tempfile::tempdir().expect("tempdir").keep();
    let mut cfg = common::config("smtp:[127.0.0.1]:9", &tmp);
    spam_on(&mut cfg);
    cfg.spam.site_dir = site.to_path_buf();
    cfg.spam.spamd_listen = "127.0.0.1:0".into();
    server::start(cfg).await.expect("server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spamc_talks_to_our_spamd_listener() {
    let site = tempfile::tempdir().expect("site");
    let running = spamd_server(site.path()).await;
    let port = running.spamd_addr.expect("spamd address").port();
    let spam = message("offer", GTUBE);
    let ham = message("lunch", "See you at noon.");
    // -K: PING.
    let (code, out) = spamc(port, &["-K"], b"").await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("SPAMD/1.5 0"),
        "spamc prints the PONG status line: {out}"
    );
    // -c: CHECK, exit code 1 for spam, "score/required" printed.
    let (code, out) = spamc(port, &["-c"], &spam).await;
    assert_eq!((code, out.trim_end().ends_with("/5.0")), (1, true), "{out}");
    assert!(out.starts_with("100"), "GTUBE scores 1000 and more: {out}");
    let (code, out) = spamc(port, &["-c"], &ham).await;
    assert_eq!(code, 0, "{out}");
    // -y: SYMBOLS.
    let (_, out) = spamc(port, &["-y"], &spam).await;
    assert!(out.split(',').any(|s| s.trim() == "GTUBE"), "{out}");
    // -R: REPORT; -r: REPORT_IFSPAM gives nothing for ham.
    let (_, out) = spamc(port, &["-R"], &spam).await;
    assert!(
        out.contains("Content analysis details") && out.contains("GTUBE"),
        "{out}"
    );
    let (_, out) = spamc(port, &["-r"], &ham).await;
    assert!(!out.contains("Content analysis details"), "{out}");
    // Default: PROCESS, the message back with X-Spam-* fields.
    let (_, out) = spamc(port, &[], &spam).await;
    assert!(
        out.contains("X-Spam-Flag: YES") && out.contains("X-Spam-Status: Yes"),
        "{out}"
    );
    assert!(out.contains(GTUBE), "the body comes back: {out}");
    // --headers: HEADERS; we send the header section, spamc puts its own copy of the body
    // under it.
    let (_, out) = spamc(port, &["--headers"], &spam).await;
    assert!(
        out.contains("X-Spam-Status: Yes") && out.matches(GTUBE).count() == 1,
        "{out}"
    );
    // -u: User is accepted.
    let (code, _) = spamc(port, &["-c", "-u", "joe"], &spam).await;
    assert_eq!(code, 1);
    // TELL (learning) is not there yet and says so.
    let (code, out) = spamc(port, &["-L", "spam"], &spam).await;
    assert_ne!(code, 0, "{out}");
    // A malformed request gets spamd's protocol error, not a hang.
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    c.write_all(b"CHECK SPAMC/1.5\r\nContent-length: nine\r\n\r\n")
        .await
        .expect("write");
    let mut reply = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut c, &mut reply)
        .await
        .expect("read");
    assert!(reply.starts_with("SPAMD/1.0 76 "), "{reply}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_with_a_broken_rule_file_keeps_the_running_rules() {
    let site = tempfile::tempdir().expect("site");
    let local = site.path().join("local.cf");
    std::fs::write(
        &local,
        "body LOCAL_MARKER /amavisd-rs-marker-one/\nscore LOCAL_MARKER 3.0\n",
    )
    .unwrap();
    let running = spamd_server(site.path()).await;
    let port = running.spamd_addr.expect("spamd").port();
    let m1 = message("x", "amavisd-rs-marker-one");
    let m2 = message("x", "amavisd-rs-marker-two");
    let (_, out) = spamc(port, &["-y"], &m1).await;
    assert!(out.contains("LOCAL_MARKER"), "{out}");
    // A regex that does not compile: refused, naming file and line; the old rules stay.
    std::fs::write(
        &local,
        "body LOCAL_MARKER /amavisd-rs-marker-one/\nbody BROKEN /(unclosed/\n",
    )
    .unwrap();
    let cfg_path = site.path().join("amavisd.toml");
    let toml = format!(
        "tempdir = \"{d}/tmp\"\npid_file = \"{d}/pid\"\nforward_method = \"smtp:[127.0.0.1]:9\"\n\
         [[listen]]\ninet = \"127.0.0.1:0\"\n[av]\nprimary = []\n[sql]\nurl = \"\"\n\
         [spam]\nsite_dir = \"{d}\"\nspamd_listen = \"127.0.0.1:0\"\nearly_stop = false\n",
        d = site.path().display()
    );
    std::fs::write(&cfg_path, &toml).unwrap();
    let e = running
        .reload_from(&cfg_path)
        .await
        .expect_err("broken rule refused");
    let text = e.to_string();
    assert!(
        text.contains("local.cf:2") && text.contains("BROKEN"),
        "{text}"
    );
    let (_, out) = spamc(port, &["-y"], &m1).await;
    assert!(out.contains("LOCAL_MARKER"), "old rules still run: {out}");
    // Mended: the new rules are in force for the next message.
    std::fs::write(
        &local,
        "body LOCAL_MARKER2 /amavisd-rs-marker-two/\nscore LOCAL_MARKER2 2.0\n",
    )
    .unwrap();
    running.reload_from(&cfg_path).await.expect("reload");
    let (_, out) = spamc(port, &["-y"], &m2).await;
    assert!(out.contains("LOCAL_MARKER2"), "{out}");
    let (_, out) = spamc(port, &["-y"], &m1).await;
    assert!(!out.contains("LOCAL_MARKER"), "{out}");
    running.stop().await;
}

/// With `spam.bayes_store` set, the filter reads the store amavisd-learn trains: a message
/// like the learned spam gets BAYES_99 (score set 2) in its X-Spam-Status, one like the
/// learned ham BAYES_00; an untrained store gives no BAYES_ rule at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bayes_store_reaches_the_headers() {
    use amavisd::spam::bayes::store::{SharedStore, TokenStore};
    use amavisd::spam::bayes::{self, Class};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("bayes.sqlite").display());
    let spammy = |i: usize| {
        message(
            &format!("zqxv offer {i}"),
            "zqxv wonder pills vkrt deals qplm",
        )
    };
    let hammy = |i: usize| {
        message(
            &format!("minutes {i}"),
            "meeting agenda budget review notes",
        )
    };
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        spam_on(c);
        c.policy.spam_tag_level = Some(-999.0);
        c.spam.bayes_store = url.clone();
        c.spam.bayes_min_learned = 3;
        c.spam.bayes_auto_learn = false;
    })
    .await;
    let status = |data: &[u8]| {
        let text = String::from_utf8_lossy(data).into_owned();
        let start = text.find("X-Spam-Status:").expect("X-Spam-Status");
        let end = text[start..]
            .find("\r\n\r\n")
            .map_or(text.len(), |e| start + e);
        text[start..end]
            .replace("\r\n\t", " ")
            .replace("\r\n ", " ")
    };
    // Untrained: no BAYES_ rule.
    let r = send(&rig, &spammy(0)).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    assert!(!status(&rig.sink.received()[0].data).contains("BAYES_"));
    // Train 3 spam and 3 ham (different Message-IDs), as amavisd-learn does.
    let store = SharedStore::open(&url).await.unwrap();
    for i in 1..=3 {
        for (raw, class) in [(spammy(i), Class::Spam), (hammy(i), Class::Ham)] {
            let raw = String::from_utf8(raw)
                .unwrap()
                .replace("<t1@example.org>", &format!("<t{i}{class:?}@example.org>"));
            let (key, tokens) = bayes::learnable(raw.as_bytes());
            store.learn("", &key, class, &tokens).await.unwrap();
        }
    }
    let r = send(&rig, &spammy(9)).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let s = status(&rig.sink.received()[1].data);
    assert!(s.contains("BAYES_99=3.8"), "{s}");
    let r = send(&rig, &hammy(9)).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let s = status(&rig.sink.received()[2].data);
    assert!(s.contains("BAYES_00=-1.5"), "{s}");
    rig.stop().await;
}

/// A Bayes store that cannot answer makes mail wait: 451, nothing delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_bayes_store_makes_mail_wait() {
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        spam_on(c);
        // Nothing listens there.
        c.spam.bayes_store = format!("postgres://postgres@127.0.0.1:{}/test", free_port());
        c.spam.bayes_min_learned = 1;
    })
    .await;
    let r = send(&rig, &message("lunch", "See you at noon.")).await;
    assert!(r.starts_with("451 4.3.0"), "{r}");
    assert!(rig.sink.received().is_empty());
    rig.stop().await;
}
