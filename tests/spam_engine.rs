//! The embedded spam engine in use, with Debian's SpamAssassin rule files (.ci/run installs
//! `spamassassin` and `spamc`): scores reach the verdict and the headers, the spamd listener
//! answers the real spamc, and a reload with a broken rule file keeps the running rules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use amavisd::config::Config;
use amavisd::server;
use amavisd_testing::sink::SinkMode;
use common::*;
use std::path::Path;
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

async fn spamd_server(site: &Path) -> server::Running {
    let tmp = tempfile::tempdir().expect("tempdir").keep();
    let mut cfg = common::config("smtp:[127.0.0.1]:9", &tmp);
    spam_on(&mut cfg);
    cfg.spam.site_dir = site.to_path_buf();
    cfg.spam.spamd_listen = "127.0.0.1:0".into();
    server::start(common::valid(cfg)).await.expect("server")
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
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("bayes.sqlite").display());
    let u = url.clone();
    let rig = Rig::start_with(SinkMode::Accept, false, move |c| bayes_on(c, u)).await;
    // Untrained: no BAYES_ rule.
    let r = send(&rig, &spammy(0)).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    assert!(!spam_status(&rig.sink.received()[0].data).contains("BAYES_"));
    // Train 3 spam and 3 ham, as amavisd-learn does.
    train_site(&url).await;
    let r = send(&rig, &spammy(9)).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let s = spam_status(&rig.sink.received()[1].data);
    assert!(s.contains("BAYES_99=3.8"), "{s}");
    let r = send(&rig, &hammy(9)).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let s = spam_status(&rig.sink.received()[2].data);
    assert!(s.contains("BAYES_00=-1.5"), "{s}");
    rig.stop().await;
}

/// A Bayes store that cannot answer (PostgreSQL or Redis, nothing listening) makes mail
/// wait: 451, nothing delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_bayes_store_makes_mail_wait() {
    for url in [
        format!("postgres://postgres@127.0.0.1:{}/test", free_port()),
        format!("redis://127.0.0.1:{}/0", free_port()),
    ] {
        let u = url.clone();
        let rig = Rig::start_with(SinkMode::Accept, false, move |c| {
            spam_on(c);
            c.spam.bayes_store = u;
            c.spam.bayes_min_learned = 1;
        })
        .await;
        let r = send(&rig, &message("lunch", "See you at noon.")).await;
        assert!(r.starts_with("451 4.3.0"), "{url}: {r}");
        assert!(rig.sink.received().is_empty());
        rig.stop().await;
    }
}

/// The engine with a Bayes store that answers after 3 of each class, spam headers for every
/// score, no autolearning (the tests train the store themselves).
fn bayes_on(c: &mut Config, url: String) {
    spam_on(c);
    c.policy.spam_tag_level = Some(-999.0);
    c.spam.bayes_store = url;
    c.spam.bayes_min_learned = 3;
    c.spam.bayes_auto_learn = false;
}

/// A message that the site's training makes spammy.
fn spammy(i: usize) -> Vec<u8> {
    message(
        &format!("zqxv offer {i}"),
        "zqxv wonder pills vkrt deals qplm",
    )
    .pipe_id(i, "s")
}

fn hammy(i: usize) -> Vec<u8> {
    message(
        &format!("minutes {i}"),
        "meeting agenda budget review notes",
    )
    .pipe_id(i, "h")
}

/// Gives a test message its own Message-ID (learning keys messages by it).
trait PipeId {
    fn pipe_id(self, i: usize, tag: &str) -> Vec<u8>;
}

impl PipeId for Vec<u8> {
    fn pipe_id(self, i: usize, tag: &str) -> Vec<u8> {
        String::from_utf8(self)
            .unwrap()
            .replace("<t1@example.org>", &format!("<t{i}{tag}@example.org>"))
            .into_bytes()
    }
}

/// Learns 3 spammy and 3 hammy messages into the site's store.
async fn train_site(url: &str) {
    use amavisd::spam::bayes::shared::SharedStore;
    use amavisd::spam::bayes::store::TokenStore;
    use amavisd::spam::bayes::{self, Class};
    let store = SharedStore::open(url).await.unwrap();
    for i in 1..=3 {
        for (raw, class) in [(spammy(i), Class::Spam), (hammy(i), Class::Ham)] {
            let (key, tokens) = bayes::learnable(&raw);
            store.learn("", &key, class, &tokens).await.unwrap();
        }
    }
}

/// A report as a mail client forwards it: a note, then each reported message attached.
fn report_of(subject: &str, messages: &[Vec<u8>]) -> Vec<u8> {
    let mut m = String::from(
        "From: u@example.com\r\nTo: ham-report@example.com\r\nSubject: SUBJECT\r\n\
Message-ID: <report1@example.com>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"r\"\r\n\r\n--r\r\nContent-Type: text/plain\r\n\r\nAbout these: SUBJECT\r\n",
    )
    .replace("SUBJECT", subject);
    for msg in messages {
        m.push_str("--r\r\nContent-Type: message/rfc822\r\n\r\n");
        m.push_str(&String::from_utf8_lossy(msg));
    }
    m.push_str("--r--\r\n");
    m.into_bytes()
}

/// dspam-style per-user training through the filter: a recipient with `bayes_per_user` sees
/// the site's Bayes until the user reports false positives to the ham report address (from
/// our own network); then that user's copy loses BAYES_99 while another recipient's keeps
/// it. A report from outside our networks is refused and teaches nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_user_stores_and_report_addresses() {
    use amavisd::spam::bayes::shared::SharedStore;
    use amavisd::spam::bayes::store::TokenStore;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("bayes.sqlite").display());
    let u = url.clone();
    let rig = Rig::start_with(SinkMode::Accept, false, move |c| {
        bayes_on(c, u);
        c.spam.bayes_report_spam_to = "spam-report@example.com".into();
        c.spam.bayes_report_ham_to = "ham-report@example.com".into();
        c.mynetworks = vec!["10.0.0.0/8".into()];
        c.recipients.insert(
            "u@example.com".into(),
            "bayes_per_user = true".parse().unwrap(),
        );
    })
    .await;
    train_site(&url).await;
    let to = ["u@example.com", "v@example.com"];
    let r = send_xf(rig.addr, false, "", "s@example.org", &to, &spammy(9)).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let got = rig.sink.received();
    assert_eq!(got.len(), 1, "the same copy for both");
    assert!(spam_status(&got[0].data).contains("BAYES_99"));

    // From outside our networks: refused, nothing learned, nothing delivered.
    let report = report_of("not spam", &(20..26).map(spammy).collect::<Vec<_>>());
    let r = send_xf(
        rig.addr,
        false,
        "ADDR=192.0.2.7",
        "u@example.com",
        &["ham-report@example.com"],
        &report,
    )
    .await;
    assert!(r.starts_with("554 5.7.1"), "{r}");
    // Without a sender there is no one to learn for.
    let r = send_xf(
        rig.addr,
        false,
        "ADDR=10.1.2.3",
        "",
        &["ham-report@example.com"],
        &report,
    )
    .await;
    assert!(r.starts_with("554 5.7.1"), "{r}");
    let store = SharedStore::open(&url).await.unwrap();
    assert_eq!(store.totals("u@example.com").await.unwrap(), (0, 0));
    // From our network (MYNETS): six false positives learned into u's own store.
    let r = send_xf(
        rig.addr,
        false,
        "ADDR=10.1.2.3",
        "U+x@example.com",
        &["ham-report@example.com"],
        &report,
    )
    .await;
    assert!(
        r.starts_with("250 2.7.0") && r.contains("6 reported"),
        "{r}"
    );
    assert_eq!(store.totals("u@example.com").await.unwrap(), (0, 6));
    assert_eq!(
        store.totals("").await.unwrap(),
        (3, 3),
        "the site's store untouched"
    );
    assert_eq!(rig.sink.received().len(), 1, "reports are not delivered");

    // Now u's copy differs from v's: two transactions.
    let r = send_xf(rig.addr, false, "", "s@example.org", &to, &spammy(30)).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let got = rig.sink.received();
    assert_eq!(got.len(), 3);
    let copy = |who: &str| {
        got[1..]
            .iter()
            .find(|m| m.rcpts.iter().any(|r| r.contains(who)))
            .map(|m| spam_status(&m.data))
            .unwrap_or_else(|| panic!("no copy for {who}"))
    };
    let (mine, theirs) = (copy("<u@example.com>"), copy("<v@example.com>"));
    assert!(theirs.contains("BAYES_99"), "{theirs}");
    assert!(
        !mine.contains("BAYES_99") && !mine.contains("BAYES_9"),
        "{mine}"
    );
    rig.stop().await;
}

/// Autolearning with SpamAssassin's thresholds: a message scoring 12 or more without Bayes,
/// with 3 points each from header and body rules, is learned as spam after the reply; a
/// message below 0.1 as ham; the X-Spam-Status says which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autolearn_learns_the_clear_cases() {
    use amavisd::spam::bayes::shared::SharedStore;
    use amavisd::spam::bayes::store::TokenStore;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("bayes.sqlite").display());
    let site = dir.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(
        site.join("local.cf"),
        "header LOCAL_AL_HEAD Subject =~ /zqxv/\nscore LOCAL_AL_HEAD 7.0\n\
         body LOCAL_AL_BODY /vkrt/\nscore LOCAL_AL_BODY 7.0\n",
    )
    .unwrap();
    let (u, s) = (url.clone(), site.clone());
    let rig = Rig::start_with(SinkMode::Accept, false, move |c| {
        spam_on(c);
        c.spam.site_dir = s;
        c.policy.spam_tag_level = Some(-999.0);
        c.spam.bayes_store = u;
        c.policy.final_spam_destiny = amavisd::message::Destiny::Pass;
        c.policy.originating = true;
        c.spam.bayes_report_spam_to = "spam-report@example.com".into();
    })
    .await;
    let store = SharedStore::open(&url).await.unwrap();
    let r = send(&rig, &spammy(1)).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let status = spam_status(&rig.sink.received()[0].data);
    assert!(status.contains("autolearn=spam"), "{status}");
    let mut learned = (0, 0);
    for _ in 0..100 {
        learned = store.totals("").await.unwrap();
        if learned == (1, 0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(learned, (1, 0));
    let r = send(&rig, &hammy(1)).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let status = spam_status(&rig.sink.received()[1].data);
    assert!(status.contains("autolearn=ham"), "{status}");
    for _ in 0..100 {
        learned = store.totals("").await.unwrap();
        if learned == (1, 1) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(learned, (1, 1));
    // Between the thresholds: not learned.
    let r = send(
        &rig,
        &message("zqxv middling", "nothing much").pipe_id(2, "m"),
    )
    .await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let status = spam_status(&rig.sink.received()[2].data);
    assert!(status.contains("autolearn=no"), "{status}");
    // A report is learned for its sender; the report itself (spammy enough to autolearn)
    // is not autolearned into the site's store.
    let r = rig
        .client()
        .await
        .send_mail(
            false,
            "s@example.org",
            &["spam-report@example.com"],
            &report_of("zqxv vkrt again", &[spammy(5)]),
        )
        .await;
    assert!(r.starts_with("250 2.7.0"), "{r}");
    assert_eq!(store.totals("s@example.org").await.unwrap(), (1, 0));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(store.totals("").await.unwrap(), (1, 1));
    rig.stop().await;
}

/// spamc -L (TELL) trains the store the filter reads: learned once ("successfully"), then
/// "already"; forget takes it out; without a store TELL is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spamc_learn_tells_our_bayes_store() {
    use amavisd::spam::bayes::shared::SharedStore;
    use amavisd::spam::bayes::store::TokenStore;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("bayes.sqlite").display());
    let tmp = tempfile::tempdir().expect("tempdir").keep();
    let mut cfg = common::config("smtp:[127.0.0.1]:9", &tmp);
    spam_on(&mut cfg);
    cfg.spam.spamd_listen = "127.0.0.1:0".into();
    cfg.spam.bayes_store = url.clone();
    let running = server::start(common::valid(cfg)).await.expect("server");
    let port = running.spamd_addr.expect("spamd").port();
    let store = SharedStore::open(&url).await.unwrap();
    let m = spammy(1);
    let (code, out) = spamc(port, &["-L", "spam"], &m).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Message successfully un/learned"), "{out}");
    assert_eq!(store.totals("").await.unwrap(), (1, 0));
    let (_, out) = spamc(port, &["-L", "spam"], &m).await;
    assert!(out.contains("Message was already un/learned"), "{out}");
    let (_, out) = spamc(port, &["-L", "ham"], &m).await;
    assert!(out.contains("successfully"), "{out}");
    assert_eq!(store.totals("").await.unwrap(), (0, 1));
    // A user named by address has a store of its own.
    let (_, out) = spamc(port, &["-L", "spam", "-u", "Joe+lists@example.com"], &m).await;
    assert!(out.contains("successfully"), "{out}");
    assert_eq!(store.totals("joe@example.com").await.unwrap(), (1, 0));
    let (_, out) = spamc(port, &["-L", "forget"], &m).await;
    assert!(out.contains("successfully"), "{out}");
    assert_eq!(store.totals("").await.unwrap(), (0, 0));
    running.stop().await;

    let tmp = tempfile::tempdir().expect("tempdir").keep();
    let mut cfg = common::config("smtp:[127.0.0.1]:9", &tmp);
    spam_on(&mut cfg);
    cfg.spam.spamd_listen = "127.0.0.1:0".into();
    let running = server::start(common::valid(cfg)).await.expect("server");
    let port = running.spamd_addr.expect("spamd").port();
    let (code, out) = spamc(port, &["-L", "spam"], &m).await;
    assert_ne!(code, 0, "{out}");
    running.stop().await;
}

/// The filter's purge (what its timer runs) applies `[spam]`'s bounds to every user's store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filter_purges_its_store() {
    use amavisd::spam::bayes::shared::SharedStore;
    use amavisd::spam::bayes::store::TokenStore;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("bayes.sqlite").display());
    train_site(&url).await;
    let store = SharedStore::open(&url).await.unwrap();
    let held = store.token_count("").await.unwrap();
    assert!(held > 10, "{held}");
    let u = url.clone();
    let rig = Rig::start_with(SinkMode::Accept, false, move |c| {
        bayes_on(c, u);
        c.spam.bayes_max_tokens = 10;
    })
    .await;
    let (users, removed) = rig.server.purge_bayes().await.expect("a store").unwrap();
    assert_eq!((users, removed), (1, held - 10));
    assert_eq!(store.token_count("").await.unwrap(), 10);
    rig.stop().await;
}
