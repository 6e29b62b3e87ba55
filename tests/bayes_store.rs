//! The Bayes stores for real: SQLite (the embedded default), PostgreSQL (127.0.0.1:5432,
//! database `test`) and Redis (127.0.0.1:6379), both started by .ci/run; a test that cannot
//! reach its server fails. The same checks run on each, through the one `TokenStore` trait:
//! learning is counted once, moves over when the class changes, forgets, keeps users apart,
//! classifies, merges a user's store over the site's, and purges by age, hapax and size.
//! Then `amavisd-learn` over a maildir and an mbox, and its `--purge`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amavisd::spam::bayes::shared::SharedStore;
use amavisd::spam::bayes::store::{self, Purge, TokenStore};
use amavisd::spam::bayes::{self, Class, Learned};

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";
const REDIS: &str = "redis://127.0.0.1:6379/0";
const LEARN: &str = env!("CARGO_BIN_EXE_amavisd-learn");

/// A user name of its own for each run, so runs sharing a database do not meet.
fn user(tag: &str) -> String {
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

async fn semantics(url: &str) {
    let store = SharedStore::open(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let (u, other) = (user("u"), user("other"));
    let (a, b) = ([1u8; 32], [2u8; 32]);
    assert_eq!(
        store
            .learn(&u, &a, Class::Spam, &[10, 11, u64::MAX])
            .await
            .unwrap(),
        Learned::New
    );
    assert_eq!(
        store
            .learn(&u, &a, Class::Spam, &[10, 11, u64::MAX])
            .await
            .unwrap(),
        Learned::Unchanged
    );
    assert_eq!(store.totals(&u).await.unwrap(), (1, 0));
    assert_eq!(
        store.counts(&u, &[10, 12, u64::MAX]).await.unwrap(),
        vec![(1, 0), (0, 0), (1, 0)]
    );
    assert_eq!(
        store
            .learn(&u, &a, Class::Ham, &[10, 11, u64::MAX])
            .await
            .unwrap(),
        Learned::Flipped
    );
    assert_eq!(store.totals(&u).await.unwrap(), (0, 1));
    assert_eq!(store.counts(&u, &[10]).await.unwrap(), vec![(0, 1)]);
    assert_eq!(
        store.learn(&u, &b, Class::Spam, &[10]).await.unwrap(),
        Learned::New
    );
    assert_eq!(
        store.forget(&u, &a, &[10, 11, u64::MAX]).await.unwrap(),
        Learned::Forgotten
    );
    assert_eq!(
        store.forget(&u, &a, &[10, 11, u64::MAX]).await.unwrap(),
        Learned::NotLearned
    );
    assert_eq!(store.totals(&u).await.unwrap(), (1, 0));
    assert_eq!(store.token_count(&u).await.unwrap(), 1, "zero rows dropped");
    // Users are apart.
    assert_eq!(store.totals(&other).await.unwrap(), (0, 0));
    assert_eq!(store.counts(&other, &[10]).await.unwrap(), vec![(0, 0)]);
    // Trained, it classifies like the in-memory reference.
    let c = user("c");
    for i in 0..5u8 {
        store
            .learn(&c, &[i; 32], Class::Spam, &[1, 2, 3])
            .await
            .unwrap();
        store
            .learn(&c, &[100 + i; 32], Class::Ham, &[4, 5, 6])
            .await
            .unwrap();
    }
    let totals = store.totals(&c).await.unwrap();
    assert!(bayes::trained(totals, 5) && !bayes::trained(totals, 6));
    let p = |counts: Vec<(u32, u32)>| bayes::from_counts(totals, counts).unwrap();
    assert!(p(store.counts(&c, &[1, 2, 3]).await.unwrap()) > 0.9);
    assert!(p(store.counts(&c, &[4, 5, 6]).await.unwrap()) < 0.1);
    // A user's store over the site's (here `c` plays the site): the user's 10 ham with
    // tokens 1-3 turn them around; a user with no store of its own gets the site's answer.
    let site = store::probability(&store, &c, "", &[1, 2, 3], 5)
        .await
        .unwrap()
        .unwrap();
    assert!(site > 0.9, "{site}");
    let (own, none) = (user("own"), user("none"));
    for i in 0..10u8 {
        store
            .learn(&own, &[100 + i; 32], Class::Ham, &[1, 2, 3])
            .await
            .unwrap();
    }
    let over = store::probability(&store, &c, &own, &[1, 2, 3], 5)
        .await
        .unwrap()
        .unwrap();
    assert!(over < 0.2, "site {site}, the user's over it {over}");
    assert_eq!(
        store::probability(&store, &c, &none, &[1, 2, 3], 5)
            .await
            .unwrap(),
        Some(site)
    );
    purging(&store).await;
}

/// Purging by age, by hapax age and by size; only the user named.
async fn purging(store: &SharedStore) {
    let (u, other) = (user("purge"), user("purge-other"));
    store
        .learn(&u, &[1; 32], Class::Spam, &[1, 2, 3])
        .await
        .unwrap();
    store
        .learn(&u, &[2; 32], Class::Ham, &[3, 4])
        .await
        .unwrap();
    store
        .learn(&other, &[1; 32], Class::Spam, &[1, 2])
        .await
        .unwrap();
    assert!(store.users().await.unwrap().contains(&u));
    const DAY: u64 = 86_400;
    let now = store::now();
    let later = |days: i64| now + days * DAY as i64;
    // Ten days on: nothing is 30 days old; the hapaxes 1, 2 and 4 are older than 5 days.
    let p = Purge {
        now: later(10),
        max_age: 30 * DAY,
        hapax_max_age: 5 * DAY,
        max_tokens: 0,
        seen_max_age: 0,
    };
    assert_eq!(store.purge(&u, &p).await.unwrap(), 3);
    assert_eq!(
        store.counts(&u, &[3, 1]).await.unwrap(),
        vec![(1, 1), (0, 0)]
    );
    assert_eq!(
        store.token_count(&other).await.unwrap(),
        2,
        "other users untouched"
    );
    // Size: five new tokens, at most 2 kept.
    store
        .learn(&u, &[3; 32], Class::Spam, &[5, 6, 7, 8, 9])
        .await
        .unwrap();
    let p = Purge {
        now,
        max_age: 0,
        hapax_max_age: 0,
        max_tokens: 2,
        seen_max_age: 0,
    };
    assert_eq!(store.purge(&u, &p).await.unwrap(), 4);
    assert_eq!(store.token_count(&u).await.unwrap(), 2);
    // Age: 100 days on, everything goes; the messages stay counted (the totals).
    let p = Purge {
        now: later(100),
        max_age: 90 * DAY,
        hapax_max_age: 0,
        max_tokens: 0,
        seen_max_age: 0,
    };
    assert_eq!(store.purge(&u, &p).await.unwrap(), 2);
    assert_eq!(store.token_count(&u).await.unwrap(), 0);
    assert_eq!(store.totals(&u).await.unwrap(), (2, 1));
    // The learned-message records stay until their own age runs out.
    let again = || store.learn(&u, &[1; 32], Class::Spam, &[1]);
    assert_eq!(again().await.unwrap(), Learned::Unchanged);
    let p = Purge {
        now: later(100),
        max_age: 0,
        hapax_max_age: 0,
        max_tokens: 0,
        seen_max_age: 30 * DAY,
    };
    assert_eq!(
        store.purge(&u, &p).await.unwrap(),
        0,
        "no tokens left to go"
    );
    assert_eq!(
        again().await.unwrap(),
        Learned::New,
        "forgotten that it was learned"
    );
    assert_eq!(store.totals(&u).await.unwrap(), (3, 1));
}

#[tokio::test]
async fn sqlite_store() {
    let d = tempfile::tempdir().unwrap();
    semantics(&format!(
        "sqlite:{}",
        d.path().join("bayes.sqlite").display()
    ))
    .await;
}

#[tokio::test]
async fn postgres_store() {
    semantics(PG).await;
}

/// Writers at once, each message with more tokens than one statement takes: every learn
/// succeeds (SQLite's plain BEGIN failed with "database is locked" here) and counts add up.
async fn many_writers(url: &str) {
    let store = std::sync::Arc::new(SharedStore::open(url).await.unwrap());
    let u = user("writers");
    let mut tasks = Vec::new();
    for w in 0..4u8 {
        let (store, u) = (store.clone(), u.clone());
        tasks.push(tokio::spawn(async move {
            for m in 0..10u8 {
                // Token 7 in every message; the rest this message's own.
                let base = (u64::from(w) * 10 + u64::from(m) + 1) * 1000;
                let mut tokens: Vec<u64> = (1..=700).map(|i| base + i).collect();
                tokens.push(7);
                let class = if m % 2 == 0 { Class::Spam } else { Class::Ham };
                let key = [w * 16 + m + 1; 32];
                // A read between the writes, as a scan's lookup comes between autolearns.
                store.counts(&u, &tokens[..50]).await.unwrap();
                assert_eq!(
                    store.learn(&u, &key, class, &tokens).await.unwrap(),
                    Learned::New
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.totals(&u).await.unwrap(), (20, 20));
    assert_eq!(
        store.counts(&u, &[7, 3001, 40700]).await.unwrap(),
        vec![(20, 20), (1, 0), (0, 1)]
    );
    assert_eq!(store.token_count(&u).await.unwrap(), 40 * 700 + 1);
    let key = [1u8; 32];
    let first: Vec<u64> = (1001..=1700).chain([7]).collect();
    assert_eq!(
        store.forget(&u, &key, &first).await.unwrap(),
        Learned::Forgotten
    );
    assert_eq!(
        store.counts(&u, &[7, 1001, 1700]).await.unwrap(),
        vec![(19, 20), (0, 0), (0, 0)]
    );
    assert_eq!(
        store.token_count(&u).await.unwrap(),
        39 * 700 + 1,
        "emptied tokens go"
    );
}

#[tokio::test]
async fn sqlite_takes_many_writers() {
    let d = tempfile::tempdir().unwrap();
    many_writers(&format!(
        "sqlite:{}",
        d.path().join("bayes.sqlite").display()
    ))
    .await;
}

#[tokio::test]
async fn postgres_takes_many_writers() {
    many_writers(PG).await;
}

#[tokio::test]
async fn redis_store() {
    semantics(REDIS).await;
}

#[tokio::test]
async fn amavisd_learn_reads_maildirs_and_mboxes() {
    let d = tempfile::tempdir().unwrap();
    let maildir = d.path().join("Maildir/cur");
    std::fs::create_dir_all(&maildir).unwrap();
    for i in 0..3 {
        std::fs::write(
            maildir.join(format!("{i}:2,S")),
            format!("Message-ID: <m{i}@x>\nSubject: cheap pills {i}\n\nbuy now\n"),
        )
        .unwrap();
    }
    let mbox = d.path().join("ham.mbox");
    std::fs::write(
        &mbox,
        "From a@x Mon Jan  1 00:00:00 2024\nMessage-ID: <h1@x>\nSubject: lunch\n\nsee you\n\n\
From b@x Mon Jan  1 00:00:00 2024\nMessage-ID: <h2@x>\nSubject: notes\n\nthe minutes\n",
    )
    .unwrap();
    let db = format!("sqlite:{}", d.path().join("b.sqlite").display());
    let run = |args: &[&str]| {
        let out = std::process::Command::new(LEARN)
            .args(["--db", &db])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let spam_dir = d.path().join("Maildir").display().to_string();
    let out = run(&["--spam", &spam_dir]);
    assert!(
        out.contains("3 learned") && out.contains("holds 3 spam and 0 ham"),
        "{out}"
    );
    let out = run(&["--ham", mbox.to_str().unwrap()]);
    assert!(
        out.contains("2 learned") && out.contains("holds 3 spam and 2 ham"),
        "{out}"
    );
    // Again: nothing changes; as ham: moved over; forgotten: gone.
    let out = run(&["--spam", &spam_dir]);
    assert!(
        out.contains("3 unchanged") && out.contains("holds 3 spam and 2 ham"),
        "{out}"
    );
    let one = d.path().join("Maildir/cur/0:2,S").display().to_string();
    let out = run(&["--ham", &one]);
    assert!(
        out.contains("1 moved") && out.contains("holds 2 spam and 3 ham"),
        "{out}"
    );
    let out = run(&["--forget", &one]);
    assert!(
        out.contains("1 forgotten") && out.contains("holds 2 spam and 2 ham"),
        "{out}"
    );
    // Per user: apart from the site's store.
    let out = run(&["--user", "joe@example.com", "--spam", &one]);
    assert!(out.contains("holds 1 spam and 0 ham"), "{out}");
    // Purging: every user's store at most 5 tokens, then joe's at most 1; then nothing to do.
    let out = run(&["--purge", "--max-tokens", "5"]);
    assert!(out.contains("tokens of 2 users"), "{out}");
    let out = run(&["--purge", "--user", "joe@example.com", "--max-tokens", "1"]);
    assert!(
        out.starts_with("purged ") && out.contains("of 1 users"),
        "{out}"
    );
    let store = SharedStore::open(&db).await.unwrap();
    assert_eq!(store.token_count("joe@example.com").await.unwrap(), 1);
    assert!(store.token_count("").await.unwrap() <= 5);
    let out = run(&["--purge", "--max-tokens", "5"]);
    assert!(out.contains("purged 0 tokens"), "{out}");
    // A path that does not exist is an error, not silence.
    let out = std::process::Command::new(LEARN)
        .args(["--db", &db, "--spam", "/nonexistent/x"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x"),
        "{out:?}"
    );
}
