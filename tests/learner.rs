//! The learner (second statistical engine) for real: its weights in SQLite, PostgreSQL
//! (127.0.0.1:5432, database `test`) and Redis (127.0.0.1:6379), both started by .ci/run; a
//! test that cannot reach its server fails. On each store, through the one `WeightStore`
//! trait: training gives exactly the in-memory model's weights, a user's weights sit over
//! the site's, and purging drops weightless, old and surplus features. Then the filter:
//! `amavisd-learn --learner` trains it and the LEARNER_xx rules reach X-Spam-Status.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use amavisd::spam::bayes::shared::SharedStore;
use amavisd::spam::bayes::weights::{self, WeightPurge, WeightStore};
use amavisd::spam::logistic::{Model, Params, sigmoid};
use amavisd_testing::sink::SinkMode;
use common::*;

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";
const REDIS: &str = "redis://127.0.0.1:6379/0";
const LEARN: &str = env!("CARGO_BIN_EXE_amavisd-learn");

/// Settings that learn in a few steps.
const FAST: Params = Params {
    alpha: 0.5,
    beta: 1.0,
    l1: 0.1,
    l2: 0.1,
};

/// A user name of its own for each run, so runs sharing a database do not meet.
fn user(tag: &str) -> String {
    format!(
        "learner-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

const SPAM: [u64; 4] = [1, 2, 3, u64::MAX];
const HAM: [u64; 4] = [4, 5, 6, u64::MAX];

async fn semantics(url: &str) {
    let store = SharedStore::open(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let (site, u) = (user("site"), user("u"));
    let mut model = Model::new(FAST);
    for _ in 0..20 {
        for (f, spam) in [(&SPAM, true), (&HAM, false)] {
            weights::learn(&store, &FAST, &site, &site, f, spam)
                .await
                .unwrap();
            model.learn(f, spam);
        }
    }
    // Exactly the reference's states, read back (f32 stored without loss).
    let all = [1, 2, 3, 4, 5, 6, u64::MAX];
    let held = store.weights(&site, &all).await.unwrap();
    for f in all {
        assert_eq!(held.get(&f).copied(), model.state(f), "{url}: feature {f}");
    }
    assert!(store.weights(&site, &[99]).await.unwrap().is_empty());
    assert_eq!(store.weight_count(&site).await.unwrap(), 7);
    let m = weights::margins(&store, &FAST, &site, &[&u], &SPAM)
        .await
        .unwrap();
    assert!((sigmoid(m[0]) - model.probability(&SPAM)).abs() < 1e-6);
    assert!(sigmoid(m[0]) > 0.9, "{url}: {m:?}");
    assert_eq!(
        m[0], m[1],
        "{url}: an untrained user gets the site's answer"
    );

    // The user calls the site's spam ham: their weights move, the site's do not.
    for _ in 0..20 {
        weights::learn(&store, &FAST, &site, &u, &SPAM, false)
            .await
            .unwrap();
    }
    let m = weights::margins(&store, &FAST, &site, &[&u], &SPAM)
        .await
        .unwrap();
    assert!(sigmoid(m[0]) > 0.9, "{url}: the site's unchanged: {m:?}");
    assert!(sigmoid(m[1]) < 0.5, "{url}: the user's over it: {m:?}");
    let site_now = store.weights(&site, &all).await.unwrap();
    assert_eq!(site_now, held, "{url}");
    purging(&store, &site).await;
}

/// Weightless features go when idle, any feature when old, the least recently trained
/// beyond the bound.
async fn purging(store: &SharedStore, site: &str) {
    let weightless = 77;
    weights::learn(store, &FAST, site, site, &[weightless], true)
        .await
        .unwrap();
    let state = store.weights(site, &[weightless]).await.unwrap()[&weightless];
    // One step moves z by at most 0.5 (the gradient at p = 0.5): over FAST's L1 of 0.1, so
    // the purge is given an L1 of 0.5 to count it weightless.
    assert!(state.0.abs() <= 0.5, "{state:?}");
    let now = amavisd::spam::now();
    let later = |days: i64| WeightPurge {
        now: now + days * 86_400,
        max_age: 0,
        idle_max_age: 86_400,
        l1: 0.5,
        max_rows: 0,
    };
    // Within a day nothing goes.
    assert_eq!(store.purge_weights(site, &later(0)).await.unwrap(), 0);
    // Two days on, the weightless features go (the new one, and the one every message had,
    // whose evidence cancelled out) and the trained ones stay.
    assert_eq!(store.purge_weights(site, &later(2)).await.unwrap(), 2);
    assert_eq!(store.weight_count(site).await.unwrap(), 6);
    let left = store.weights(site, &[1, 2, 3, 4, 5, 6]).await.unwrap();
    assert_eq!(left.len(), 6);
    // A bound of 3: the three least recently trained go.
    let bound = WeightPurge {
        idle_max_age: 0,
        max_rows: 3,
        ..later(0)
    };
    assert_eq!(store.purge_weights(site, &bound).await.unwrap(), 3);
    assert_eq!(store.weight_count(site).await.unwrap(), 3);
    // Old: everything goes.
    let old = WeightPurge {
        max_age: 86_400,
        idle_max_age: 0,
        ..later(2)
    };
    assert_eq!(store.purge_weights(site, &old).await.unwrap(), 3);
    assert_eq!(store.weight_count(site).await.unwrap(), 0);
}

#[tokio::test]
async fn sqlite_weights() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}/bayes.sqlite", dir.path().display());
    semantics(&url).await;
}

#[tokio::test]
async fn postgres_weights() {
    semantics(PG).await;
}

#[tokio::test]
async fn redis_weights() {
    semantics(REDIS).await;
}

fn message(id: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Sender <s@example.org>\r\nTo: u@example.com\r\nSubject: {subject}\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{id}@example.org>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn spammy(i: usize) -> Vec<u8> {
    message(
        &format!("s{i}"),
        &format!("zqxv offer {i}"),
        "zqxv wonder pills vkrt deals qplm cheapest refinance mortgage casino jackpot \
         viagra bonus winner prize claim unsubscribe lottery investment opportunity guaranteed \
         income millionaire secret formula limited",
    )
}

fn hammy(i: usize) -> Vec<u8> {
    message(
        &format!("h{i}"),
        &format!("minutes {i}"),
        "meeting agenda budget review notes quarterly planning roadmap minutes attendees \
         project milestone deadline sprint retrospective engineering release schedule \
         kernel patch compile benchmark regression",
    )
}

/// `amavisd-learn --learner` over a maildir of each class, in one run (interleaved).
fn learn_folders(url: &str, dir: &std::path::Path) {
    for (class, make) in [("spam", spammy as fn(usize) -> Vec<u8>), ("ham", hammy)] {
        let folder = dir.join(class).join("cur");
        std::fs::create_dir_all(&folder).unwrap();
        for i in 1..=30 {
            std::fs::write(folder.join(format!("{i}:2,S")), make(i)).unwrap();
        }
    }
    let out = std::process::Command::new(LEARN)
        .args(["--learner", "--db", url, "--spam"])
        .arg(dir.join("spam"))
        .arg("--ham")
        .arg(dir.join("ham"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("holds 30 spam and 30 ham"), "{text}");
}

/// With `spam.learner` on, mail like the learned spam hits LEARNER_95 or _99 with its
/// configured score, mail like the learned ham LEARNER_00; before any training the learner,
/// like Bayes, says nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learner_rules_reach_the_headers() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("bayes.sqlite").display());
    let u = url.clone();
    let rig = Rig::start_with(SinkMode::Accept, false, move |c| {
        c.spam.enabled = true;
        c.spam.early_stop = false;
        c.spam.rules_dir = "/usr/share/spamassassin".into();
        c.spam.site_dir = "/etc/spamassassin".into();
        c.policy.spam_tag_level = Some(-999.0);
        c.spam.bayes_store = u;
        c.spam.bayes_min_learned = 3;
        c.spam.bayes_auto_learn = false;
        c.spam.learner = true;
        c.spam.learner_scores = [-0.25, 0.5, 1.5, 1.75];
    })
    .await;
    let send = |msg: Vec<u8>| {
        let rig = &rig;
        async move {
            let mut cl = rig.client().await;
            cl.send_mail(false, "s@example.org", &["u@example.com"], &msg)
                .await
        }
    };
    let r = send(spammy(0)).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let s = spam_status(&rig.sink.received()[0].data);
    assert!(!s.contains("LEARNER_"), "untrained: {s}");
    learn_folders(&url, dir.path());
    let r = send(spammy(99)).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let s = spam_status(&rig.sink.received()[1].data);
    assert!(
        s.contains("LEARNER_95=1.5") || s.contains("LEARNER_99=1.75"),
        "{s}"
    );
    let r = send(hammy(99)).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let s = spam_status(&rig.sink.received()[2].data);
    assert!(s.contains("LEARNER_00=-0.25"), "{s}");
    rig.stop().await;
}
