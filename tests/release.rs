//! Releasing quarantined mail over AM.PDP with our `amavisd-release` and with Debian's Perl
//! one (package amavisd-new, installed by .ci/run): a blocked message quarantined in a file or
//! in SQL (SQLite, PostgreSQL, MariaDB) reaches the sink again, only for the recipients whose
//! copy was blocked, with resend fields; a wrong secret and an unknown mail_id deliver
//! nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod decode_common;
mod sql_common;
use common::*;
use decode_common::*;
use sql_common::*;

use amavisd::sql::dialect::BindBin;
use amavisd::sql::{SqlConfig, Store};
use amavisd_testing::sink::SinkMode;
use sqlx::Row;
use std::path::Path;
use tokio::process::Command;

const OURS: &str = env!("CARGO_BIN_EXE_amavisd-release");
const PERL: &str = "/usr/sbin/amavisd-release";

fn exe_mail(subject: &str) -> Vec<u8> {
    let m = mail_with_attachment(
        "filename=\"invoice.pdf.exe\"",
        b"not really",
        "application/octet-stream",
    );
    String::from_utf8_lossy(&m)
        .replace("Subject: test", &format!("Subject: {subject}"))
        .into_bytes()
}

/// The mail_id and secret_id of the message with this subject, from the SQL log.
async fn ids(store: &Store, subject: &str) -> (String, String) {
    ids_by(store, "subject", subject).await
}

/// Runs a release client; (exit status success, stderr). Asynchronously: the filter it
/// talks to runs on this test's runtime.
async fn run(program: &[&str], args: &[&str]) -> (bool, String) {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        Command::new(program[0])
            .args(&program[1..])
            .args(args)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{} hangs", program.join(" ")))
    .unwrap_or_else(|e| panic!("{}: {e}", program.join(" ")));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Debian's client, pointed at our socket (its socket path is a variable in the script). It
/// is run as `perl -T FILE` (taint mode, as its #! line asks), not executed itself: a file
/// just written can be "busy" for exec while another test thread forks.
fn perl_client(dir: &Path, socket: &Path) -> std::path::PathBuf {
    let src = std::fs::read_to_string(PERL)
        .unwrap_or_else(|e| panic!("{PERL}: {e}: apt-get install amavisd-new (.ci/run does)"));
    let patched = src.replace(
        "$socketname = '/var/lib/amavis/amavisd.sock';",
        &format!("$socketname = '{}';", socket.display()),
    );
    assert_ne!(src, patched, "the Perl client's socket line changed");
    let p = dir.join("amavisd-release");
    std::fs::write(&p, patched).unwrap();
    p
}

async fn release_roundtrip(url: &str, method: &str, tag: &str) {
    let store = store(url).await;
    let (u, m) = (url.to_string(), method.to_string());
    let rig = Rig::start_with(SinkMode::Accept, false, move |c| {
        c.sql = SqlConfig {
            url: u,
            ..SqlConfig::default()
        };
        c.policy.banned_quarantine_method = m;
        c.recipients.insert(
            "lover@example.com".into(),
            "banned_files_lover = true".parse().unwrap(),
        );
    })
    .await;
    let socket = rig.tmp.path().join("release.sock");
    let subject = format!("{tag}-{}", std::process::id());
    let r = rig
        .client()
        .await
        .send_mail(
            false,
            "s@example.org",
            &["lover@example.com", "blocked@example.com"],
            &exe_mail(&subject),
        )
        .await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    assert_eq!(rig.sink.received().len(), 1, "the lover's copy");
    let (mail_id, secret) = ids(&store, &subject).await;
    let file = if method == "sql:" {
        mail_id.clone()
    } else {
        format!("banned-{mail_id}")
    };
    let sock = socket.to_string_lossy().into_owned();

    // A wrong secret, and a mail_id that is not there: refused, nothing sent.
    let (ok, err) = run(&[OURS, "--socket", &sock], &[&file, "-AAAAAAAAAAA"]).await;
    assert!(!ok && err.contains("554 5.7.1"), "{url}: {err}");
    let (ok, err) = run(
        &[OURS, "--socket", &sock],
        &["banned-zzzzzzzzzzzz", "AAAAAAAAAAAA"],
    )
    .await;
    assert!(!ok && err.contains("5.7.1"), "{url}: {err}");
    assert_eq!(rig.sink.received().len(), 1);

    // Debian's Perl client releases it: to the blocked recipient only.
    let perl = perl_client(rig.tmp.path(), &socket);
    let (ok, err) = run(&["perl", "-T", perl.to_str().unwrap()], &[&file, &secret]).await;
    assert!(ok && err.contains("250 2.0.0"), "{url}: Perl client: {err}");
    let got = rig.sink.received();
    assert_eq!(got.len(), 2, "{url}");
    assert_eq!(got[1].rcpts.len(), 1);
    assert!(
        got[1].rcpts[0].contains("<blocked@example.com>"),
        "{:?}",
        got[1].rcpts
    );
    assert!(got[1].mail.contains("<s@example.org>"));
    let text = String::from_utf8_lossy(&got[1].data);
    assert!(
        text.contains("Resent-Date: ") && text.contains("Resent-Message-ID: <RLS"),
        "{text}"
    );
    assert!(
        !text.contains("X-Envelope-From"),
        "envelope fields are not part of the mail"
    );
    assert!(text.contains(&format!("Subject: {subject}\r\n")), "{text}");
    assert!(text.ends_with("--BOUNDARY--\r\n"), "whole, CRLF again");

    // Options are options: never taken for a mail_id, nothing released.
    for bad in [
        &["--bogus", file.as_str()][..],
        &["-c"],
        &["-x", file.as_str(), &secret],
    ] {
        let (ok, err) = run(&[OURS], bad).await;
        assert!(!ok && err.starts_with("error: "), "{bad:?}: {err}");
    }
    assert_eq!(rig.sink.received().len(), 2);

    // Ours releases it again, to a recipient named in the request, finding the socket in the
    // daemon's configuration file as an admin would give it.
    let conf = rig.tmp.path().join("amavisd.toml");
    std::fs::write(&conf, format!("[release]\nunix = {:?}\n", sock)).unwrap();
    let (ok, err) = run(
        &[
            OURS,
            "-c",
            conf.to_str().unwrap(),
            "--requested-by",
            "admin@example.com",
        ],
        &[&file, &secret, "helpdesk@example.com"],
    )
    .await;
    assert!(ok && err.contains("250 2.0.0"), "{url}: {err}");
    let got = rig.sink.received();
    assert_eq!(got.len(), 3);
    assert!(got[2].rcpts[0].contains("<helpdesk@example.com>"));
    assert!(String::from_utf8_lossy(&got[2].data).contains("Resent-From: admin@example.com\r\n"));

    // The front ends see it released.
    let d = store.dialect();
    let sql = d.sql(&format!(
        "SELECT {} FROM msgrcpt mr JOIN maddr a ON a.id = mr.rid WHERE mr.mail_id = ? AND a.email = ?",
        d.text("mr.rs")
    ));
    let rs: String = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind_bin(d, &mail_id)
        .bind_bin(d, "blocked@example.com")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(rs, "R", "{url}");
    rig.stop().await;
}

#[tokio::test]
async fn release_from_file_quarantine_sqlite_log() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}/r.sqlite", dir.path().display());
    release_roundtrip(&url, "local:banned-%m", "file").await;
}

#[tokio::test]
async fn release_from_sql_quarantine_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}/r.sqlite", dir.path().display());
    release_roundtrip(&url, "sql:", "sqlite").await;
}

#[tokio::test]
async fn release_from_sql_quarantine_postgres() {
    release_roundtrip(PG, "sql:", "pg").await;
}

#[tokio::test]
async fn release_from_sql_quarantine_mariadb() {
    release_roundtrip(MARIADB, "sql:", "maria").await;
}

#[tokio::test]
async fn release_over_tcp_and_requeue() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}/r.sqlite", dir.path().display());
    let u = url.clone();
    let rig = Rig::start_with(SinkMode::Accept, false, move |c| {
        c.sql = SqlConfig {
            url: u,
            ..SqlConfig::default()
        };
        c.release.inet = "127.0.0.1:0".into();
    })
    .await;
    let addr = rig.server.release_addr.expect("release TCP address");
    let r = rig
        .client()
        .await
        .send_mail(
            false,
            "s@example.org",
            &["a@example.com", "b@example.com"],
            &exe_mail("tcp"),
        )
        .await;
    assert!(r.starts_with("250 2.7.0"), "{r}");
    let store = Store::new(&SqlConfig {
        url,
        ..SqlConfig::default()
    })
    .unwrap()
    .unwrap();
    let (mail_id, secret) = ids(&store, "tcp").await;
    let (ok, err) = run(
        &[OURS, "--socket", &addr.to_string(), "--requeue"],
        &[&format!("banned-{mail_id}"), &secret],
    )
    .await;
    assert!(ok, "{err}");
    let got = rig.sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpts.len(), 2, "requeue: every original recipient");
    rig.stop().await;
}

#[tokio::test]
async fn report_sends_an_abuse_report_with_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}/r.sqlite", dir.path().display());
    let u = url.clone();
    let rig = Rig::start_with(SinkMode::Accept, false, move |c| {
        c.sql = SqlConfig {
            url: u,
            ..SqlConfig::default()
        };
    })
    .await;
    let sock = rig.tmp.path().join("release.sock");
    let sock = sock.to_string_lossy().into_owned();
    let r = rig
        .client()
        .await
        .send_mail(false, "s@example.org", &["a@example.com"], &exe_mail("arf"))
        .await;
    assert!(r.starts_with("250 2.7.0"), "{r}");
    let store = store(&url).await;
    let (mail_id, secret) = ids(&store, "arf").await;
    let file = format!("banned-{mail_id}");
    // Without a recipient to send it to: refused.
    let (ok, err) = run(&[OURS, "--socket", &sock, "--report"], &[&file, &secret]).await;
    assert!(!ok && err.contains("5.5.4"), "{err}");
    let (ok, err) = run(
        &[OURS, "--socket", &sock, "--report"],
        &[&file, &secret, "abuse@example.net"],
    )
    .await;
    assert!(ok && err.contains("250 2.0.0"), "{err}");
    let got = rig.sink.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].mail.contains("MAIL FROM:<>"));
    assert!(got[0].rcpts[0].contains("<abuse@example.net>"));
    let text = String::from_utf8_lossy(&got[0].data);
    for want in [
        "report-type=feedback-report",
        "Feedback-Type: abuse",
        "Original-Mail-From: <s@example.org>",
        "Original-Rcpt-To: <a@example.com>",
        "Content-Type: message/rfc822",
        "Subject: arf",
    ] {
        assert!(text.contains(want), "missing {want}: {text}");
    }
    rig.stop().await;
}

/// Release requests retrain Bayes (`spam.bayes_learn_on_release`): Debian's Perl client
/// releasing mail quarantined as spam teaches the site's store and the recipient's own that
/// it is ham; the same client named `amavisd-report` reporting a message teaches spam.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_and_report_retrain_bayes() {
    use amavisd::spam::bayes::shared::SharedStore;
    use amavisd::spam::bayes::store::TokenStore;
    const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}/r.sqlite", dir.path().display());
    let bayes_url = format!("sqlite:{}/bayes.sqlite", dir.path().display());
    let (u, b) = (url.clone(), bayes_url.clone());
    let rig = Rig::start_with(SinkMode::Accept, false, move |c| {
        c.sql = SqlConfig {
            url: u,
            ..SqlConfig::default()
        };
        c.spam.enabled = true;
        c.spam.rules_dir = "/usr/share/spamassassin".into();
        c.spam.site_dir = "/etc/spamassassin".into();
        c.spam.bayes_store = b;
        c.spam.bayes_auto_learn = false;
        c.policy.final_spam_destiny = amavisd::message::Destiny::Discard;
    })
    .await;
    let socket = rig.tmp.path().join("release.sock");
    let perl = perl_client(rig.tmp.path(), &socket);
    let report = rig.tmp.path().join("amavisd-report");
    std::fs::copy(&perl, &report).unwrap();
    let spam = format!(
        "From: s@example.org\r\nTo: A@example.com\r\nSubject: gtube\r\nMessage-ID: <gtube-rt@example.org>\r\n\r\n{GTUBE}\r\n"
    );
    let mut cl = rig.client().await;
    let r = cl
        .send_mail(
            false,
            "s@example.org",
            &["A+tag@example.com"],
            spam.as_bytes(),
        )
        .await;
    assert!(
        r.starts_with("250 2.7.0"),
        "spam discarded and quarantined: {r}"
    );
    let r = cl
        .send_mail(
            false,
            "s@example.org",
            &["b@example.com"],
            &exe_mail("rt-banned"),
        )
        .await;
    assert!(r.starts_with("250 2.7.0"), "{r}");
    let log = store(&url).await;
    let (spam_id, spam_secret) = ids(&log, "gtube").await;
    let (banned_id, banned_secret) = ids(&log, "rt-banned").await;
    let bayes = SharedStore::open(&bayes_url).await.unwrap();
    assert_eq!(bayes.totals("").await.unwrap(), (0, 0));

    // Releasing the spam: a false positive, learned as ham for the site and for <a@...>.
    let (ok, err) = run(
        &["perl", "-T", perl.to_str().unwrap()],
        &[&format!("spam-{spam_id}.gz"), &spam_secret],
    )
    .await;
    assert!(ok && err.contains("250 2.0.0"), "{err}");
    assert_eq!(bayes.totals("").await.unwrap(), (0, 1));
    assert_eq!(bayes.totals("a@example.com").await.unwrap(), (0, 1));

    // Reporting the banned message: spam, for the site and for <b@...>.
    let (ok, err) = run(
        &["perl", "-T", report.to_str().unwrap()],
        &[
            &format!("banned-{banned_id}"),
            &banned_secret,
            "abuse@example.net",
        ],
    )
    .await;
    assert!(ok && err.contains("250 2.0.0"), "{err}");
    assert_eq!(bayes.totals("").await.unwrap(), (1, 1));
    assert_eq!(bayes.totals("b@example.com").await.unwrap(), (1, 0));
    // Releasing banned (not spam) mail teaches nothing.
    let (ok, err) = run(
        &["perl", "-T", perl.to_str().unwrap()],
        &[&format!("banned-{banned_id}"), &banned_secret],
    )
    .await;
    assert!(ok && err.contains("250 2.0.0"), "{err}");
    assert_eq!(bayes.totals("").await.unwrap(), (1, 1));
    rig.stop().await;
}

#[tokio::test]
async fn idle_release_clients_cannot_take_every_session() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        c.release.inet = "127.0.0.1:0".into();
    })
    .await;
    let addr = rig.server.release_addr.expect("release TCP address");
    let connect = || tokio::net::TcpStream::connect(addr);
    // Every session taken by a client that says nothing.
    let mut idle = Vec::new();
    for _ in 0..amavisd::release::server::MAX_SESSIONS {
        idle.push(connect().await.unwrap());
    }
    let mut late = connect().await.unwrap();
    late.write_all(b"request=status\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 256];
    let waited =
        tokio::time::timeout(std::time::Duration::from_millis(300), late.read(&mut buf)).await;
    assert!(waited.is_err(), "served beyond MAX_SESSIONS");
    // One idle client goes: the waiting one is served.
    drop(idle.pop());
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), late.read(&mut buf))
        .await
        .expect("served once a session is free")
        .unwrap();
    assert!(n > 0);
    rig.stop().await;
}
