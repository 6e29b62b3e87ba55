//! The SQL log on the three databases, for real: SQLite in a temporary folder, and the
//! PostgreSQL and MariaDB that `scripts/test-services.sh` starts on their loopback
//! ports (.ci/run does). A database that cannot be reached fails the test, never skips it.
//! Each backend is exercised by one test so that its steps (schema, then rows) run in order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod decode_common;
mod sql_common;
use common::*;
use decode_common::*;
use sql_common::*;

use amavisd::config::Config;
use amavisd::message::Destiny;
use amavisd::sql::dialect::{BindBin, bin_column};
use amavisd::sql::{SqlConfig, Store};
use amavisd_testing::sink::SinkMode;
use sqlx::Row;

/// The rows of a message as a third-party report would read them: recipient, ds, content,
/// smtp_resp, and msgs.content/policy/sender, joined over maddr.
async fn report(s: &Store, mail_id: &str) -> Vec<(String, String, String, String, String, String)> {
    let d = s.dialect();
    let sql = d.sql(&format!(
        "SELECT r.email, {}, {}, mr.smtp_resp, {}, s.email \
         FROM msgs m JOIN msgrcpt mr ON mr.mail_id = m.mail_id AND mr.partition_tag = m.partition_tag \
         JOIN maddr r ON r.id = mr.rid JOIN maddr s ON s.id = m.sid \
         WHERE m.mail_id = ? ORDER BY mr.rseqnum",
        d.text("mr.ds"),
        d.text("mr.content"),
        d.text("m.content")
    ));
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind_bin(d, mail_id)
        .fetch_all(s.pool())
        .await
        .expect("report query")
        .into_iter()
        .map(|row| {
            let text = |i: usize| -> String {
                row.try_get::<Vec<u8>, _>(i)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .or_else(|_| row.try_get::<String, _>(i))
                    .unwrap_or_default()
            };
            (text(0), text(1), text(2), text(3), text(4), text(5))
        })
        .collect()
}

/// The mail_id of the newest `msgs` row with this Message-ID.
async fn mail_id_of(s: &Store, message_id: &str) -> String {
    ids_by(s, "message_id", message_id).await.0
}

fn unique(tag: &str) -> String {
    let n: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    format!("<{tag}.{n}@test.example>")
}

fn mail(message_id: &str, attachment: Option<&str>) -> Vec<u8> {
    let m = match attachment {
        Some(name) => mail_with_attachment(
            &format!("filename=\"{name}\""),
            b"data",
            "application/octet-stream",
        ),
        None => SIMPLE.to_vec(),
    };
    let text = String::from_utf8_lossy(&m).into_owned();
    let text = match text.find("Message-ID: ") {
        Some(at) => {
            let end = at + text[at..].find("\r\n").unwrap_or(0);
            format!("{}Message-ID: {message_id}{}", &text[..at], &text[end..])
        }
        None => text,
    };
    text.into_bytes()
}

/// Through the whole pipe: a clean message to two recipients and a banned one rejected for
/// one recipient, each logged with the right rows.
async fn pipe_logs_every_message(url: &str) {
    let s = store(url).await;
    let url2 = url.to_string();
    let rig = Rig::start_with(SinkMode::Accept, false, move |c: &mut Config| {
        c.sql = sql_config(&url2);
        c.policy.final_banned_destiny = Destiny::Reject;
        c.recipients.insert(
            "lover@example.com".into(),
            "banned_files_lover = true".parse().unwrap(),
        );
    })
    .await;
    let clean = unique("clean");
    let r = rig
        .client()
        .await
        .send_mail(
            false,
            "s@example.org",
            &["a@example.com", "b@elsewhere.org"],
            &mail(&clean, None),
        )
        .await;
    assert!(r.starts_with("250 2.0.0"), "{url}: {r}");
    let id = mail_id_of(&s, &clean).await;
    let rows = report(&s, &id).await;
    assert_eq!(rows.len(), 2, "{url}: {rows:?}");
    assert_eq!(rows[0].0, "a@example.com");
    assert_eq!(
        (rows[0].1.as_str(), rows[0].2.as_str()),
        ("P", "C"),
        "{url}"
    );
    assert!(rows[0].3.starts_with("250 2.0.0"), "{url}: {rows:?}");
    assert_eq!(rows[1].0, "b@elsewhere.org");
    assert_eq!(rows[0].4, "C");
    assert_eq!(rows[0].5, "s@example.org");

    let banned = unique("banned");
    let r = rig
        .client()
        .await
        .send_mail(
            true,
            "s@example.org",
            &["lover@example.com", "x@example.com"],
            &mail(&banned, Some("a.exe")),
        )
        .await;
    assert!(
        r.lines().count() == 2 && r.contains("554 5.7.0"),
        "{url}: {r}"
    );
    let id = mail_id_of(&s, &banned).await;
    let rows = report(&s, &id).await;
    assert_eq!(rows.len(), 2, "{url}: {rows:?}");
    assert_eq!(
        (rows[0].1.as_str(), rows[0].2.as_str()),
        ("P", "B"),
        "{url}: lover"
    );
    assert_eq!(
        (rows[1].1.as_str(), rows[1].2.as_str()),
        ("R", "B"),
        "{url}: rejected"
    );
    assert!(rows[1].3.starts_with("554 5.7.0 Reject"), "{url}: {rows:?}");
    assert_eq!(rows[0].4, "B", "msgs.content");
    rig.stop().await;
}

/// Values the database could refuse at every retry (a NUL byte, bytes that are not UTF-8,
/// a Message-ID and a sender domain that are not ASCII, over-long fields) are made safe as
/// amavisd-new makes them, so the message passes and is logged instead of waiting for ever;
/// and an admin finds it by hand with plain text literals, on every database.
async fn hostile_values_are_logged_and_found_by_hand(url: &str) {
    let s = store(url).await;
    let url2 = url.to_string();
    let rig = Rig::start_with(SinkMode::Accept, false, move |c: &mut Config| {
        c.sql = sql_config(&url2);
        c.policy.bypass_header_checks = true;
    })
    .await;
    let tag = unique("hostile");
    let mut msg = format!(
        "From: =?utf-8?q?J=C3=B6rg?= <j\u{f6}rg@b\u{fc}cher.example>\r\nTo: u@example.com\r\n\
         Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <caf\u{e9}.{}@b\u{fc}cher.example>\r\n\
         Subject: {tag} =?utf-8?q?Gr=C3=BC=C3=9Fe?= nul\0here {}",
        std::process::id(),
        "\u{1f600}".repeat(100)
    )
    .into_bytes();
    msg.extend_from_slice(b" latin1 \xe4\r\n\r\nbody\r\n");
    let mut c = rig.client().await;
    assert!(c.cmd("EHLO client.example").await.starts_with("250"));
    let r = c
        .cmd("MAIL FROM:<j\u{f6}rg@B\u{fc}cher.example> SMTPUTF8")
        .await;
    assert!(r.starts_with("250"), "{r}");
    assert!(c.cmd("RCPT TO:<u@example.com>").await.starts_with("250"));
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(&stuff(&msg)).await;
    let r = c.reply().await;
    assert!(r.starts_with("250 2.0.0"), "{url}: {r}");
    rig.stop().await;

    // Found by hand, as the README shows: text literals, no casts.
    let like = format!("{tag} Gr\u{fc}\u{df}e nul here %");
    let sql = format!(
        "SELECT mail_id, message_id FROM msgs WHERE subject LIKE '{}'",
        like.replace('\'', "''")
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_one(s.pool())
        .await
        .unwrap_or_else(|e| panic!("{url}: the decoded subject: {e}"));
    let mail_id = String::from_utf8_lossy(&bin_column(&row, 0)).into_owned();
    let message_id: String = row.try_get(1).unwrap();
    assert!(message_id.starts_with("<caf?."), "{url}: {message_id}");
    let sql = format!("SELECT secret_id FROM msgs WHERE mail_id = '{mail_id}'");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_one(s.pool())
        .await
        .unwrap_or_else(|e| panic!("{url}: mail_id by a text literal: {e}"));
    assert_eq!(bin_column(&row, 0).len(), 12, "{url}: a secret_id");
    let sql = "SELECT domain FROM maddr WHERE email = 'j\u{f6}rg@xn--bcher-kva.example'";
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_one(s.pool())
        .await
        .unwrap_or_else(|e| panic!("{url}: the sender in its IDNA form: {e}"));
    let domain: String = row.try_get(0).unwrap();
    assert_eq!(domain, "example.xn--bcher-kva", "{url}");
}

#[tokio::test]
async fn sqlite_log() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}/log.sqlite", dir.path().display());
    pipe_logs_every_message(&url).await;
    hostile_values_are_logged_and_found_by_hand(&url).await;
}

#[tokio::test]
async fn postgres_log() {
    pipe_logs_every_message(PG).await;
    hostile_values_are_logged_and_found_by_hand(PG).await;
}

#[tokio::test]
async fn mariadb_log() {
    pipe_logs_every_message(MARIADB).await;
    hostile_values_are_logged_and_found_by_hand(MARIADB).await;
}

/// A SQLite log written before varbinary values were text: its blobs become text at the next
/// start, so lookups by text find the old rows too; that conversion (a scan of every table)
/// runs once, recorded in `PRAGMA user_version`.
#[tokio::test]
async fn sqlite_blobs_of_an_older_log_become_text() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}/old.sqlite", dir.path().display());
    let s = store(&url).await;
    sqlx::query(
        "INSERT INTO msgs (mail_id, secret_id, am_id, time_num, time_iso, sid, size, host) \
         VALUES (X'6F6C64', X'736563726574', 'a', 0, '', 1, 0, 'h')",
    )
    .execute(s.pool())
    .await
    .unwrap();
    let version = || sqlx::query_scalar::<_, i64>("PRAGMA user_version");
    assert_eq!(version().fetch_one(s.pool()).await.unwrap(), 1);
    // As the older versions left it: they never set the schema version.
    sqlx::query("PRAGMA user_version = 0")
        .execute(s.pool())
        .await
        .unwrap();
    drop(s);
    let s = store(&url).await;
    assert_eq!(version().fetch_one(s.pool()).await.unwrap(), 1);
    let row = sqlx::query("SELECT typeof(mail_id), secret_id FROM msgs WHERE mail_id = 'old'")
        .fetch_one(s.pool())
        .await
        .expect("the old row, by text");
    let kind: String = row.try_get(0).unwrap();
    assert_eq!(kind, "text");
    assert_eq!(bin_column(&row, 1), b"secret");
}

/// A TCP relay to the real PostgreSQL that the test can cut (every connection closed, new
/// ones refused) and restore: a database server stopping and coming back, as the pool sees it.
struct Relay {
    port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start(to: &'static str) -> Relay {
        use std::sync::atomic::Ordering;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (u, c) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = l.accept().await {
                if !u.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                c.lock().unwrap().push(task);
            }
        });
        Relay { port, up, conns }
    }

    fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for t in self.conns.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn database_stopping_mid_run_makes_mail_wait_and_it_recovers() {
    store(PG).await; // the schema exists
    let relay = Relay::start("127.0.0.1:5432").await;
    let url = format!("postgres://postgres@127.0.0.1:{}/test", relay.port);
    let direct = store(PG).await;
    let u2 = url.clone();
    let rig = Rig::start_with(SinkMode::Accept, false, move |c| {
        c.sql = SqlConfig {
            timeout: 3,
            ..sql_config(&u2)
        };
    })
    .await;
    let send = |id: String| {
        let addr = rig.addr;
        async move {
            Client::connect(addr)
                .await
                .send_mail(false, "s@example.org", &["a@example.com"], &mail(&id, None))
                .await
        }
    };
    let before = unique("before");
    assert!(send(before.clone()).await.starts_with("250 2.0.0"));
    relay.down();
    let during = unique("during");
    let r = send(during.clone()).await;
    assert!(r.starts_with("451 4.3.0"), "database down: {r}");
    assert_eq!(rig.sink.received().len(), 1, "nothing delivered unlogged");
    relay.restore();
    let after = unique("after");
    let r = send(after.clone()).await;
    assert!(
        r.starts_with("250 2.0.0"),
        "recovered without a restart: {r}"
    );
    assert_eq!(rig.sink.received().len(), 2);
    // Both delivered messages are logged completely; the deferred one is not there at all
    // (Postfix retries it: it will be logged then).
    for id in [&before, &after] {
        let rows = report(&direct, &mail_id_of(&direct, id).await).await;
        assert_eq!(rows.len(), 1, "{id}");
        assert_eq!(rows[0].1, "P");
    }
    let sql = direct
        .dialect()
        .sql("SELECT COUNT(*) FROM msgs WHERE message_id = ?");
    let n: i64 = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(during.clone())
        .fetch_one(direct.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(n, 0);
    rig.stop().await;
}

#[tokio::test]
async fn unreachable_database_makes_mail_wait() {
    // A port nobody listens on: a server that is not running.
    let dead = format!("postgres://postgres@127.0.0.1:{}/test", free_port());
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        c.sql = SqlConfig {
            timeout: 2,
            ..sql_config(&dead)
        };
    })
    .await;
    let id = unique("waits");
    let r = rig
        .client()
        .await
        .send_mail(false, "s@example.org", &["a@example.com"], &mail(&id, None))
        .await;
    assert!(r.starts_with("451 4.3.0"), "{r}");
    assert!(rig.sink.received().is_empty(), "nothing delivered unlogged");
    rig.stop().await;
}

/// Per-recipient settings and white/blacklists from amavisd-new's `users`, `policy`,
/// `mailaddr` and `wblist` tables.
async fn lookups(url: &str) {
    let s = store(url).await;
    let d = s.dialect();
    let tag = format!("{}x{}", std::process::id(), url.len());
    let lover = format!("lover{tag}@example.com");
    let strict = format!("strict{tag}@example.com");
    let bad = format!("bad{tag}@spam.example");
    let exec = |sql: &str, binds: Vec<Vec<u8>>| {
        let sql = d.sql(sql);
        let pool = s.pool().clone();
        async move {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for b in binds {
                q = q.bind(String::from_utf8(b).unwrap());
            }
            q.execute(&pool).await.unwrap();
        }
    };
    let id_of = |sql: &str, key: String| {
        let sql = d.sql(sql);
        let pool = s.pool().clone();
        async move {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind_bin(d, &key)
                .fetch_one(&pool)
                .await
                .unwrap();
            row.try_get::<i64, _>(0).unwrap()
        }
    };
    exec(
        "INSERT INTO policy (policy_name, banned_files_lover) VALUES (?, 'Y')",
        vec![format!("lovers{tag}").into_bytes()],
    )
    .await;
    let pid: i64 = {
        let sql = d.sql("SELECT id FROM policy WHERE policy_name = ?");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(format!("lovers{tag}"))
            .fetch_one(s.pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    };
    let insert_user = d.sql("INSERT INTO users (priority, policy_id, email) VALUES (7, ?, ?)");
    // strict has no policy row (NULL join): known, local, default settings.
    for (policy, email) in [(pid, &lover), (999_999, &strict)] {
        sqlx::query(sqlx::AssertSqlSafe(insert_user.clone()))
            .bind(policy)
            .bind_bin(d, email)
            .execute(s.pool())
            .await
            .unwrap();
    }
    sqlx::query(sqlx::AssertSqlSafe(
        d.sql("INSERT INTO mailaddr (priority, email) VALUES (7, ?)"),
    ))
    .bind_bin(d, &bad)
    .execute(s.pool())
    .await
    .unwrap();
    let rid = id_of("SELECT id FROM users WHERE email = ?", strict.clone()).await;
    let sid = id_of("SELECT id FROM mailaddr WHERE email = ?", bad.clone()).await;
    sqlx::query(sqlx::AssertSqlSafe(
        d.sql("INSERT INTO wblist (rid, sid, wb) VALUES (?, ?, 'B')"),
    ))
    .bind(rid)
    .bind(sid)
    .execute(s.pool())
    .await
    .unwrap();

    let u = url.to_string();
    let rig = Rig::start_with(SinkMode::Accept, false, move |c: &mut Config| {
        c.sql = SqlConfig {
            lookups: true,
            ..sql_config(&u)
        };
        c.policy.final_banned_destiny = Destiny::Reject;
        c.policy.final_spam_destiny = Destiny::Reject;
    })
    .await;
    // The lover (from SQL) gets the banned file; the other recipient does not.
    let r = rig
        .client()
        .await
        .send_mail(
            true,
            "s@example.org",
            &[&lover, &strict],
            &mail(&unique("l"), Some("a.exe")),
        )
        .await;
    let lines: Vec<&str> = r.lines().collect();
    assert!(lines[0].starts_with("250 2.0.0"), "{url}: SQL lover: {r}");
    assert!(lines[1].starts_with("554 5.7.0"), "{url}: {r}");
    // The blacklisted sender is spam for `strict`, not for the lover.
    let r = rig
        .client()
        .await
        .send_mail(true, &bad, &[&lover, &strict], &mail(&unique("b"), None))
        .await;
    let lines: Vec<&str> = r.lines().collect();
    assert!(lines[0].starts_with("250 2.0.0"), "{url}: {r}");
    assert!(
        lines[1].starts_with("554 5.7.0") && lines[1].contains("SPAM"),
        "{url}: blacklisted: {r}"
    );
    rig.stop().await;
}

#[tokio::test]
async fn sqlite_lookups() {
    let dir = tempfile::tempdir().unwrap();
    lookups(&format!("sqlite:{}/l.sqlite", dir.path().display())).await;
}

#[tokio::test]
async fn postgres_lookups() {
    lookups(PG).await;
}

#[tokio::test]
async fn mariadb_lookups() {
    lookups(MARIADB).await;
}

/// Rows a killed process began and never completed: found by host and start time, pointed
/// at their quarantined copy, marked as looked at and then no longer listed; another host's
/// are never touched.
async fn interrupted_rows(url: &str) {
    let s = store(url).await;
    let host = unique("host");
    let other = unique("other");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut ids = Vec::new();
    for h in [&host, &host, &other] {
        let id = amavisd::message::generate_mail_id().unwrap();
        s.log_start(&amavisd::sql::MsgStart {
            mail_id: &id.mail_id,
            secret_id: &id.secret_id,
            am_id: "kill-1",
            time: now - 30,
            sender: "s@example.org",
            policy: "",
            client_addr: "127.0.0.1",
            size: 10,
            originating: false,
            message_id: "<killed@example.org>",
            from_addr: "s@example.org",
            subject: "killed",
            host: h,
        })
        .await
        .unwrap();
        ids.push(id.mail_id);
    }
    let found = |h: &String, up_to: i64| {
        let s = &s;
        let h = h.clone();
        async move {
            let mut v: Vec<String> = s
                .interrupted(&h, up_to)
                .await
                .unwrap()
                .into_iter()
                .map(|r| {
                    assert_eq!(r.am_id, "kill-1");
                    r.mail_id
                })
                .collect();
            v.sort();
            v
        }
    };
    let mut mine = ids[..2].to_vec();
    mine.sort();
    assert_eq!(found(&host, now).await, mine, "{url}");
    // The second they began in counts: a restart often comes within it.
    assert_eq!(found(&host, now - 30).await, mine, "{url}");
    assert!(
        found(&host, now - 31).await.is_empty(),
        "{url}: started before them"
    );
    assert!(!s.in_sql_quarantine(&ids[0]).await.unwrap());
    let loc = format!("virus-{}", ids[0]);
    s.record_quarantine(&ids[0], Some('V'), 'F', &loc)
        .await
        .unwrap();
    assert_eq!(found(&host, now).await, vec![ids[1].clone()], "{url}");
    assert_eq!(found(&other, now).await, vec![ids[2].clone()], "{url}");
    // Looked at once: a later start does not find it again; the other host's stays.
    s.mark_interrupted(&ids[1]).await.unwrap();
    assert!(found(&host, now + 60).await.is_empty(), "{url}");
    assert_eq!(found(&other, now).await.len(), 1, "{url}");
    let (mail_id, _) = ids_by(&s, "subject", "killed").await;
    assert!(ids.contains(&mail_id));
}

#[tokio::test]
async fn sqlite_interrupted_rows() {
    let dir = tempfile::tempdir().unwrap();
    interrupted_rows(&format!("sqlite:{}/int.sqlite", dir.path().display())).await;
}

#[tokio::test]
async fn postgres_interrupted_rows() {
    interrupted_rows(PG).await;
}

#[tokio::test]
async fn mariadb_interrupted_rows() {
    interrupted_rows(MARIADB).await;
}
