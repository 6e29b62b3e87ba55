//! Two filter nodes sharing one PostgreSQL (SQL log, SQL quarantine) and one Redis (Bayes),
//! as a site with several filter hosts runs them: what one node learns, the other scores
//! with; what one quarantines, the other releases; their mail_ids never collide. The kill
//! of one node under load is the two-node chaos run (tests/chaos.rs). Needs PostgreSQL,
//! Redis, clamd, spamc and SpamAssassin's rule files (.ci/run).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use amavisd_testing::sink::{Sink, SinkMode};
use sqlx::Row;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_amavisd");
const PG: &str = "postgres://postgres@127.0.0.1:5432/test";
/// A Redis database of its own, emptied first.
const REDIS: &str = "redis://127.0.0.1:6379/11";

struct Node {
    cfg: PathBuf,
    smtp: u16,
    spamd: u16,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .arg("-c")
            .arg(&self.cfg)
            .arg("stop")
            .output();
    }
}

fn start_node(dir: &Path, name: &str, sink_port: u16, prefilter: &Path) -> Node {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let (smtp, spamd) = (free_port(), free_port());
    let cfg = d.join("amavisd.toml");
    std::fs::write(
        &cfg,
        format!(
            "myhostname = \"{name}.example.com\"\n\
             forward_method = \"smtp:[127.0.0.1]:{sink_port}\"\n\
             tempdir = \"{d}/tmp\"\npid_file = \"{d}/amavisd.pid\"\n\
             [[listen]]\ninet = \"127.0.0.1:{smtp}\"\n\
             [log]\nfile = \"{d}/amavisd.log\"\n\
             [spam]\nenabled = true\nbayes_store = \"{REDIS}\"\nbayes_min_learned = 1\n\
             spamd_listen = \"127.0.0.1:{spamd}\"\nprefilter_cache = \"{p}\"\n\
             [sql]\nurl = \"{PG}\"\n\
             [quarantine]\ndirectory = \"{d}/quarantine\"\n\
             [release]\nunix = \"{d}/amavisd.sock\"\n\
             [policy]\nvirus_quarantine_method = \"sql:\"\n",
            d = d.display(),
            p = prefilter.display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&cfg)
        .arg("start")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Node { cfg, smtp, spamd }
}

const OFFER: &[u8] = b"From: deals@offers.example\r\nTo: u@example.com\r\n\
Subject: cheap watches pharmacy offer\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <offer-nodes@offers.example>\r\n\r\n\
Replica watches, cheap pharmacy, casino bonus, click now for the unbeatable offer.\r\n";

const LETTER: &[u8] = b"From: colleague@example.org\r\nTo: u@example.com\r\n\
Subject: minutes of the meeting\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <minutes-nodes@example.org>\r\n\r\n\
Here are the minutes of Tuesday's meeting about the quarterly budget review.\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_bayes_the_quarantine_and_the_log() {
    let flushed = Command::new("redis-cli")
        .args(["-n", "11", "flushdb"])
        .output()
        .unwrap();
    assert!(
        flushed.status.success(),
        "redis-cli: Redis on 127.0.0.1:6379 (.ci/run)"
    );
    let sink = Sink::new(SinkMode::Accept, true);
    let (sink_port, sink_task) = sink.spawn().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let prefilter = dir.path().join("prefilter");
    let a = start_node(dir.path(), "node-a", sink_port, &prefilter);
    let b = start_node(dir.path(), "node-b", sink_port, &prefilter);
    let ports = (a.spamd, b.spamd);

    // Learned through node A (spamd TELL), scored on node B.
    let (_, before) = spamc(ports.1, &["-y"], OFFER).await;
    assert!(!before.contains("BAYES_"), "nothing learned yet: {before}");
    let told = spamc(ports.0, &["-L", "spam"], OFFER).await.1
        + &spamc(ports.0, &["-L", "ham"], LETTER).await.1;
    assert_eq!(told.matches("successfully").count(), 2, "{told}");
    let (_, after) = spamc(ports.1, &["-y"], OFFER).await;
    assert!(
        after.contains("BAYES_9"),
        "node B reads what A learned: {after}"
    );

    // Quarantined by node A (SQL quarantine), released through node B's AM.PDP socket.
    let eicar = format!(
        "From: s@example.org\r\nTo: u@example.com\r\nSubject: nodes virus\r\n\
         Message-ID: <virus-{}@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nsee the file\r\n\
         --b\r\nContent-Type: application/octet-stream; name=\"e.txt\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        std::process::id(),
        "WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNULUZJTEUhJEgrSCo="
    );
    let mut c = Client::connect(([127, 0, 0, 1], a.smtp).into()).await;
    let r = c
        .send_mail(false, "s@example.org", &["u@example.com"], eicar.as_bytes())
        .await;
    assert!(r.starts_with("250 2.7.0") && r.contains("INFECTED"), "{r}");
    let pool = sqlx::postgres::PgPool::connect(PG).await.unwrap();
    let row = sqlx::query(
        "SELECT encode(mail_id, 'escape'), encode(secret_id, 'escape'), quar_type::text, host FROM msgs \
         WHERE message_id = $1",
    )
    .bind(format!("<virus-{}@example.org>", std::process::id()))
    .fetch_one(&pool)
    .await
    .unwrap();
    let (mail_id, secret): (String, String) = (row.get(0), row.get(1));
    assert_eq!(row.get::<String, _>(2), "Q");
    assert_eq!(row.get::<String, _>(3), "node-a.example.com");
    let cfg_b = b.cfg.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_amavisd-release"))
            .arg("-c")
            .arg(&cfg_b)
            .args([&mail_id, &secret])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("250 2.0.0"), "{err}");
    let got = sink.received();
    assert_eq!(got.len(), 1, "the released copy");
    assert!(String::from_utf8_lossy(&got[0].data).contains("nodes virus"));

    // Both log to one database, under their own names and mail_ids.
    let mut c = Client::connect(([127, 0, 0, 1], b.smtp).into()).await;
    let r = c
        .send_mail(false, "s@example.org", &["u@example.com"], LETTER)
        .await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let hosts: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT host, COUNT(*), COUNT(DISTINCT mail_id) FROM msgs \
         WHERE host IN ('node-a.example.com', 'node-b.example.com') GROUP BY host ORDER BY host",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(hosts.len(), 2, "{hosts:?}");
    for (host, rows, ids) in &hosts {
        assert_eq!(rows, ids, "{host}: one mail_id per message");
    }
    drop((a, b));
    sink_task.abort();
}
