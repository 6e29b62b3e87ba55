//! The Bayes stores for real: SQLite (the embedded default) and PostgreSQL (127.0.0.1:5432,
//! database `test`, started by .ci/run; a test that cannot reach it fails). The same checks
//! run on each: learning is counted once, moves over when the class changes, forgets, keeps
//! users apart, and classifies. Then `amavisd-learn` over a maildir and an mbox.

use amavisd::spam::bayes::sql_store::SqlStore;
use amavisd::spam::bayes::{self, Class, Learned};

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";
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
    let store = SqlStore::open(url)
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
