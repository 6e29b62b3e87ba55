//! `cargo bench --bench bayes`: the Bayes store on each backend: learn messages/s, classify
//! ms a message (tokens, lookups and the combination), and store size. SQLite in a temporary
//! file; PostgreSQL at 127.0.0.1:5432/test and Redis at 127.0.0.1:6379 when they answer
//! (skipped otherwise: a benchmark, not a test). Learns easy-ham-1 and spam-1 of the corpus development set, then classifies
//! hard-ham-1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use amavisd::spam::bayes::shared::SharedStore;
use amavisd::spam::bayes::store::TokenStore;
use amavisd::spam::bayes::{self, Class};
use std::time::Instant;

struct Msg {
    key: bayes::MessageKey,
    tokens: Vec<u64>,
}

fn prepare(raw: &[u8]) -> Msg {
    let (key, tokens) = bayes::learnable(raw);
    Msg { key, tokens }
}

/// Bytes the backend holds now: the SQLite file (with its WAL), PostgreSQL's Bayes tables,
/// Redis's used memory. Measured before and after learning, so other users' rows cancel out.
async fn bytes_held(url: &str) -> Option<u64> {
    if let Some(file) = url.strip_prefix("sqlite:") {
        let len = |p: String| std::fs::metadata(p).map_or(0, |m| m.len());
        return Some(len(file.to_string()) + len(format!("{file}-wal")));
    }
    if url.starts_with("postgres") {
        use sqlx::Row;
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
            .await
            .ok()?;
        let row = sqlx::query(
            "SELECT (pg_total_relation_size('bayes_token') + pg_total_relation_size('bayes_seen') \
             + pg_total_relation_size('bayes_vars'))::bigint",
        )
        .fetch_one(&mut conn)
        .await
        .ok()?;
        return row.try_get::<i64, _>(0).ok().map(|n| n as u64);
    }
    let client = redis::Client::open(url).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
}

async fn run(url: &str, label: &str, train: &[(Msg, Class)], test: &[Vec<u8>]) {
    let store = match SharedStore::open(url).await {
        Ok(s) => s,
        Err(e) => {
            println!("{label}: skipped ({e})");
            return;
        }
    };
    let user = format!("bench-{}", std::process::id());
    let before = bytes_held(url).await;
    let t = Instant::now();
    for (m, class) in train {
        store
            .learn(&user, &m.key, *class, &m.tokens)
            .await
            .expect("learn");
    }
    let learn_rate = train.len() as f64 / t.elapsed().as_secs_f64();
    let tokens = store.token_count(&user).await.expect("count");
    if url.starts_with("postgres") {
        // The planner's statistics still describe the table before these 3,000 messages
        // (learned in seconds); autovacuum's ANALYZE brings a running site there, the purge
        // does too, and without it lookups plan sequential scans (classify 20 ms and more).
        if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(url).await {
            let _ = sqlx::query("ANALYZE bayes_token").execute(&mut conn).await;
        }
    }
    if let (Some(a), Some(b)) = (before, bytes_held(url).await) {
        println!(
            "{label}: store grew by {:.1} MB, {:.1} MB per 10,000 messages learned",
            b.saturating_sub(a) as f64 / 1e6,
            b.saturating_sub(a) as f64 / 1e6 * 10_000.0 / train.len() as f64
        );
    }
    let t = Instant::now();
    let mut spam = 0;
    let mut each = Vec::with_capacity(test.len());
    for raw in test {
        let one = Instant::now();
        // What the filter does per message: parse, tokenize, look up, combine.
        let m = prepare(raw);
        let totals = store.totals(&user).await.expect("totals");
        let counts = store.counts(&user, &m.tokens).await.expect("counts");
        if bayes::from_counts(totals, counts).is_some_and(|p| p > 0.5) {
            spam += 1;
        }
        each.push(one.elapsed().as_secs_f64() * 1000.0);
    }
    let ms = t.elapsed().as_secs_f64() * 1000.0 / test.len() as f64;
    each.sort_by(f64::total_cmp);
    let at = |q: f64| each[((each.len() - 1) as f64 * q) as usize];
    println!(
        "{label}: learn {learn_rate:.0} msg/s ({} messages); classify {ms:.2} ms a message on average, median {:.2}, 90th percentile {:.2}, slowest {:.2} ({} of {} hard ham called spam); {tokens} distinct tokens, {:.0} per 10,000 messages learned",
        train.len(),
        at(0.5),
        at(0.9),
        at(1.0),
        spam,
        test.len(),
        tokens as f64 * 10_000.0 / train.len() as f64
    );
    for (m, _) in train {
        let _ = store.forget(&user, &m.key, &m.tokens).await;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let Some(root) = common::corpus() else {
        eprintln!("bayes bench: no corpus (scripts/fetch-corpus.sh)");
        return;
    };
    let read = |set: &str| -> Vec<Vec<u8>> {
        common::set_files(&root, set)
            .iter()
            .map(|f| std::fs::read(f).unwrap_or_default())
            .collect()
    };
    let mut train: Vec<(Msg, Class)> = Vec::new();
    for (set, class) in [("easy-ham-1", Class::Ham), ("spam-1", Class::Spam)] {
        train.extend(read(set).iter().map(|raw| (prepare(raw), class)));
    }
    let test = read("hard-ham-1");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bayes.sqlite");
    run(
        &format!("sqlite:{}", file.display()),
        "SQLite",
        &train,
        &test,
    )
    .await;
    println!(
        "SQLite file after forgetting everything again: {} KiB",
        std::fs::metadata(&file).map_or(0, |m| m.len() / 1024)
    );
    run(
        "postgres://postgres@127.0.0.1:5432/test",
        "PostgreSQL",
        &train,
        &test,
    )
    .await;
    run("redis://127.0.0.1:6379/0", "Redis", &train, &test).await;
}
