//! "Never lose mail" under many faults at once: the real `amavisd` binary takes messages from
//! a Postfix-like client while its next hop, clamd, its SQL server and its disk fail in turn
//! and together, and it is killed with SIGKILL and restarted; then every message is
//! accounted for by its Message-ID (testing/src/chaos). Needs clamd, PostgreSQL and MariaDB
//! (scripts/test-services.sh) and root, to mount the small tmpfs that is filled for "disk
//! full". The 10,000-message run is a benchmark: README, "Never lose mail, measured".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amavisd_testing::chaos::{ChaosOptions, Fault, debian_clamd, run};
use std::time::Duration;

fn options(sql: &str, count: usize, seed: u64) -> ChaosOptions {
    ChaosOptions {
        amavisd: env!("CARGO_BIN_EXE_amavisd").into(),
        count,
        sessions: 8,
        nodes: 1,
        // Spread over 60 s, so that every kind of fault meets mail: the twelve next-hop
        // kinds share one resource and so come one after another (~40 s at this pace).
        rate: Some(count as f64 / 60.0),
        fault_every: Duration::from_millis(1200),
        faults: ChaosOptions::all_faults(),
        sql: sql.into(),
        spam: false,
        redis: None,
        prefilter_cache: None,
        corpus: corpus(),
        seed,
        max_time: Duration::from_secs(240),
        clamd: debian_clamd(),
        require_disk: true,
    }
}

/// Real messages (SpamAssassin's samples from its Debian package, a DKIM-signed one from our
/// fixtures), with generated ones between them; the run adds EICAR and banned ones.
fn corpus() -> Vec<Vec<u8>> {
    let examples = std::path::Path::new("/usr/share/doc/spamassassin/examples");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dkim");
    let mut v: Vec<Vec<u8>> = [
        examples.join("sample-spam.txt"),
        examples.join("sample-nonspam.txt"),
        fixture.join("known-good.eml"),
    ]
    .iter()
    .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
    .collect();
    v.extend((0..8).map(|n| amavisd_testing::load::generated_message(3000 + n * 997, n as u64)));
    v
}

async fn chaos(sql: &str, count: usize, seed: u64, nodes: usize) {
    let mut opts = options(sql, count, seed);
    opts.nodes = nodes;
    let report = run(&opts).await.unwrap();
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert_eq!(report.tally.lost(), 0);
    assert_eq!(
        report.tally.accepted + report.tally.bounced,
        count,
        "every message got its final answer"
    );
    assert!(
        report.tally.quarantined > 0 && report.tally.delivered > 0,
        "{report}"
    );
    // Every kind of fault this setup can make was made at least once.
    let kinds = opts
        .faults
        .iter()
        .filter(|f| !matches!(f, Fault::RedisDown) && (sql != "sqlite" || !is_sql(f)))
        // Nodes keep blocked mail in SQL: no quarantine file to watch for.
        .filter(|f| nodes == 1 || !matches!(f, Fault::Kill9InQuarantine));
    for f in kinds {
        assert!(
            report.injected.counts.contains_key(f),
            "{} never injected\n{report}",
            f.name()
        );
    }
}

fn is_sql(f: &Fault) -> bool {
    matches!(f, Fault::SqlDown | Fault::SqlHang)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_messages_through_faults_and_kills_on_postgresql_none_lost() {
    chaos("postgres://postgres@127.0.0.1:5432/test", 1000, 21, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_kills_on_mariadb_none_lost() {
    chaos("mysql://root@127.0.0.1:3306/test", 400, 22, 1).await;
}

/// SQLite on the run's disk: "disk full" fails the SQL log and the quarantine together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_kills_on_sqlite_with_its_disk_full_none_lost() {
    chaos("sqlite", 400, 23, 1).await;
}

/// Two nodes sharing PostgreSQL (SQL log and SQL quarantine): the client, as Postfix with a
/// next hop of two addresses, goes to the other node while one is killed or restarting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgresql_none_lost_when_one_dies() {
    chaos("postgres://postgres@127.0.0.1:5432/test", 600, 24, 2).await;
}
