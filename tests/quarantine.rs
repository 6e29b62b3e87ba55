//! The quarantine through the whole pipe: blocked mail kept in a file or in SQL (on the three
//! databases), with amavisd-new's envelope fields, before the client hears 250; a quarantine
//! that cannot be written makes the message wait; passed copies of a quarantined message
//! carry X-Quarantine-ID.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod decode_common;
mod sql_common;
use common::*;
use decode_common::*;
use sql_common::*;

use amavisd::quarantine::{QuarantineConfig, fetch};
use amavisd::sql::SqlConfig;
use amavisd::sql::dialect::bin_column;
use amavisd_testing::sink::SinkMode;
use sqlx::Row;

#[tokio::test]
async fn banned_mail_is_kept_in_a_file_before_250() {
    let rig = Rig::start(SinkMode::Accept, false).await;
    let qdir = rig.tmp.path().join("quarantine");
    let r = rig
        .client()
        .await
        .send_mail(
            false,
            "s@example.org",
            &["u@example.com", "v@example.com"],
            &exe_mail(),
        )
        .await;
    assert!(r.starts_with("250 2.7.0 Ok, discarded"), "{r}");
    let files: Vec<_> = std::fs::read_dir(&qdir)
        .expect("quarantine folder")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with("banned-"), "{files:?}");
    let mail_id = files[0].trim_start_matches("banned-").to_string();
    let text = std::fs::read_to_string(qdir.join(&files[0])).unwrap();
    assert!(
        text.starts_with(&format!(
            "X-Envelope-From: <s@example.org>\nX-Envelope-To: <u@example.com>,\n  <v@example.com>\n\
             X-Envelope-To-Blocked: <u@example.com>,\n  <v@example.com>\nX-Quarantine-ID: <{mail_id}>\n"
        )),
        "{text}"
    );
    assert!(text.contains("\nContent-Disposition: attachment; filename=\"invoice.pdf.exe\"\n"));
    assert!(
        !text.contains('\r'),
        "LF line ends, as amavisd-new stores them"
    );
    rig.stop().await;
}

#[tokio::test]
async fn lover_copy_carries_the_quarantine_id() {
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        c.recipients.insert(
            "lover@example.com".into(),
            "banned_files_lover = true".parse().unwrap(),
        );
    })
    .await;
    let r = rig
        .client()
        .await
        .send_mail(
            false,
            "s@example.org",
            &["lover@example.com", "x@example.com"],
            &exe_mail(),
        )
        .await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let got = rig.sink.received();
    let text = String::from_utf8_lossy(&got[0].data);
    let file = std::fs::read_dir(rig.tmp.path().join("quarantine"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .into_owned();
    let mail_id = file.trim_start_matches("banned-");
    assert!(
        text.contains(&format!("X-Quarantine-ID: <{mail_id}>\r\n")),
        "{text}"
    );
    rig.stop().await;
}

#[tokio::test]
async fn quarantine_that_cannot_be_written_makes_mail_wait() {
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        // A file where the folder should be: nothing can be created under it.
        let blocker = c.tempdir.join("not-a-folder");
        std::fs::write(&blocker, b"x").unwrap();
        c.quarantine.directory = blocker.join("quarantine");
    })
    .await;
    let r = rig
        .client()
        .await
        .send_mail(
            true,
            "s@example.org",
            &["u@example.com", "v@example.com"],
            &exe_mail(),
        )
        .await;
    assert_eq!(r.matches("451 4.3.0").count(), 2, "{r}");
    assert!(rig.sink.received().is_empty());
    rig.stop().await;
}

async fn sql_quarantine(url: &str) {
    let store = store(url).await;
    let u = url.to_string();
    let rig = Rig::start_with(SinkMode::Accept, false, move |c| {
        c.sql = SqlConfig {
            url: u,
            ..SqlConfig::default()
        };
        c.policy.banned_quarantine_method = "sql:".into();
    })
    .await;
    // A large message, so that it spans several 16 KB chunks.
    let big: Vec<u8> = (0..40_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let msg = mail_with_attachment("filename=\"big.exe\"", &big, "application/octet-stream");
    let tag = format!("q{}", std::process::id());
    let msg = String::from_utf8_lossy(&msg)
        .replace("Subject: test", &format!("Subject: {tag}"))
        .into_bytes();
    let r = rig
        .client()
        .await
        .send_mail(false, "s@example.org", &["u@example.com"], &msg)
        .await;
    assert!(r.starts_with("250 2.7.0"), "{url}: {r}");
    let d = store.dialect();
    let row = sqlx::query(sqlx::AssertSqlSafe(d.sql(&format!(
        "SELECT mail_id, {}, quar_loc FROM msgs WHERE subject = ? ORDER BY time_num DESC",
        d.text("quar_type")
    ))))
    .bind(tag.clone())
    .fetch_one(store.pool())
    .await
    .unwrap_or_else(|e| panic!("{url}: msgs row: {e}"));
    let mail_id = String::from_utf8_lossy(&bin_column(&row, 0)).into_owned();
    let qt: String = row.try_get(1).unwrap();
    assert_eq!(qt, "Q", "{url}");
    let stored = fetch(
        'Q',
        &mail_id,
        &mail_id,
        0,
        &QuarantineConfig::default(),
        Some(&store),
    )
    .await
    .unwrap()
    .expect("quarantined");
    let text = String::from_utf8_lossy(&stored);
    assert!(
        text.starts_with("X-Envelope-From: <s@example.org>\n"),
        "{url}: {text:.200}"
    );
    assert!(text.contains(&format!("Subject: {tag}\n")));
    assert!(
        stored.len() > 3 * amavisd::quarantine::SQL_CHUNK,
        "{url}: several chunks"
    );
    rig.stop().await;
}

#[tokio::test]
async fn sql_quarantine_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    sql_quarantine(&format!("sqlite:{}/q.sqlite", dir.path().display())).await;
}

#[tokio::test]
async fn sql_quarantine_postgres() {
    sql_quarantine(PG).await;
}

#[tokio::test]
async fn sql_quarantine_mariadb() {
    sql_quarantine(MARIADB).await;
}
