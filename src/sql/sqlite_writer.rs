//! The SQL log's writer on SQLite: one thread owns one connection and writes the log rows the
//! sessions send it, as many messages to a transaction as are waiting.
//!
//! Why not sqlx, as on the servers: through sqlx every statement is a hop to the connection's
//! worker thread and back (a wake-up each way) and every message two transactions of its own.
//! The log cost more CPU than anything but the spam scan (1.6 of 5.3 ms a message at 4
//! sessions, measured against a run without the log). SQLite writes one transaction at a time
//! anyway, so one writer loses nothing, and a transaction of many messages is one sync to
//! disk instead of two a message. Each caller still hears back only after the commit.
//!
//! Each message's rows are in a savepoint of their own: one that fails (a trigger, a
//! constraint) is rolled back alone. A failure that ends the whole transaction (a full disk)
//! fails every message in it; those messages then wait (451), as before.

use super::SqlError;
use super::dialect::{self, Dialect};
use super::log::{
    EndRows, INSERT_MSGRCPT, Maddr, SELECT_MADDR, StartRow, UPDATE_MSGS, insert_msgs,
};
use super::store::MADDR_CACHE;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Log writes queued before a sender waits for room: a bound on memory when the disk is slow.
const QUEUE: usize = 1024;

/// Most log writes in one transaction: bounds how long a commit holds SQLite's write lock
/// from the other writers (the SQL quarantine, the release server, a web front end).
const MAX_BATCH: usize = 256;

/// The `msgs` insert in SQLite's form, made once (the writer prepares it per message).
static INSERT_MSGS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| insert_msgs(Dialect::Sqlite));

/// How long a statement waits for another writer's lock, as the sqlx pool's connections do.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

enum Op {
    Start(StartRow),
    End(EndRows),
}

struct Job {
    op: Op,
    done: oneshot::Sender<Result<(), String>>,
}

/// The handle the [`super::Store`] keeps; the thread ends when it is dropped.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer for the database at `path` (opened at the first write, so that a
    /// file that cannot be opened yet only makes messages wait).
    pub fn spawn(path: PathBuf) -> Result<Writer, SqlError> {
        let (jobs, queue) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("amavisd-sqllog".into())
            .spawn(move || run(&path, queue))
            .map_err(|e| SqlError::Other(format!("SQL log writer thread: {e}")))?;
        Ok(Writer { jobs })
    }

    /// Writes the `msgs` row as processing starts.
    pub async fn start(&self, row: StartRow) -> Result<(), SqlError> {
        self.send(Op::Start(row)).await
    }

    /// Completes the `msgs` row and writes the `msgrcpt` rows.
    pub async fn end(&self, rows: EndRows) -> Result<(), SqlError> {
        self.send(Op::End(rows)).await
    }

    async fn send(&self, op: Op) -> Result<(), SqlError> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job { op, done })
            .await
            .map_err(|_| SqlError::Other("the SQL log writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| SqlError::Other("the SQL log writer lost the write".into()))?
            .map_err(SqlError::Other)
    }
}

/// The thread: takes what is waiting, writes it in one transaction, answers each sender.
fn run(path: &Path, mut queue: mpsc::Receiver<Job>) {
    let mut conn: Option<Connection> = None;
    let mut ids: HashMap<String, i64> = HashMap::new();
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let ops: Vec<&Op> = batch.iter().map(|j| &j.op).collect();
        // A panic here must not stop the log for good: its messages fail (and wait), the
        // connection is opened afresh, and the next batch is written.
        let results = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            write_batch(path, &mut conn, &mut ids, &ops)
        }))
        .unwrap_or_else(|_| {
            conn = None;
            vec![Err(format!("SQL log {}: the writer panicked", path.display())); ops.len()]
        });
        for (job, result) in batch.into_iter().zip(results) {
            // A sender that gave up (its timeout) no longer listens.
            let _ = job.done.send(result);
        }
    }
}

/// Writes `ops` in one transaction on the connection, opened if need be; one result each.
fn write_batch(
    path: &Path,
    conn: &mut Option<Connection>,
    ids: &mut HashMap<String, i64>,
    ops: &[&Op],
) -> Vec<Result<(), String>> {
    let fail = |e: rusqlite::Error| format!("SQL log {}: {e}", path.display());
    if conn.is_none() {
        match open(path) {
            Ok(c) => *conn = Some(c),
            Err(e) => return vec![Err(fail(e)); ops.len()],
        }
    }
    let Some(c) = conn.as_ref() else {
        return vec![Err(format!("SQL log {}: not open", path.display())); ops.len()];
    };
    // A message whose failure ends the transaction is answered, and the others of the
    // batch are written again without it: one bad message must not make 255 others wait.
    let mut results: Vec<Option<Result<(), String>>> = vec![None; ops.len()];
    let mut pending: Vec<usize> = (0..ops.len()).collect();
    let mut reopen = false;
    while !pending.is_empty() {
        let these: Vec<&Op> = pending.iter().map(|&i| ops[i]).collect();
        match in_transaction(c, ids, &these) {
            Ok(written) => {
                for (&i, r) in pending.iter().zip(written) {
                    results[i] = Some(r.map_err(fail));
                }
                break;
            }
            Err(Ended { by: Some(k), error }) if refused(&error) => {
                results[pending[k]] = Some(Err(fail(error)));
                pending.remove(k);
            }
            Err(Ended { error, .. }) => {
                // Whatever the state, start the next batch on a fresh connection.
                let _ = c.execute_batch("ROLLBACK");
                reopen = true;
                let e = fail(error);
                for &i in &pending {
                    results[i] = Some(Err(e.clone()));
                }
                break;
            }
        }
    }
    if reopen {
        *conn = None;
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("SQL log: not written".into())))
        .collect()
}

/// The database refused this message's rows (a constraint or a site's trigger), as opposed
/// to failing whatever was written (a full disk, an I/O error, a lock held too long).
fn refused(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
}

/// Opens the database as the sqlx pool's connections are opened.
fn open(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // WAL lets readers work beside the writer; FULL makes each commit durable.
    c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    c.execute_batch("PRAGMA synchronous=FULL")?;
    c.busy_timeout(BUSY_TIMEOUT)?;
    Ok(c)
}

/// Why a transaction wrote nothing: `by` the op whose failure ended it, if one did.
struct Ended {
    by: Option<usize>,
    error: rusqlite::Error,
}

impl From<rusqlite::Error> for Ended {
    fn from(error: rusqlite::Error) -> Ended {
        Ended { by: None, error }
    }
}

/// The transaction around `ops`: an error means none of them was written. The maddr ids
/// learned are kept only once committed (a rolled-back id would point at nothing).
fn in_transaction(
    c: &Connection,
    ids: &mut HashMap<String, i64>,
    ops: &[&Op],
) -> Result<Vec<rusqlite::Result<()>>, Ended> {
    c.execute_batch("BEGIN IMMEDIATE")?;
    let mut results = Vec::with_capacity(ops.len());
    let mut learned = Vec::new();
    for (k, op) in ops.iter().enumerate() {
        let mut mine = Vec::new();
        let result = in_savepoint(c, ids, op, &mut mine);
        if c.is_autocommit() {
            // The failure ended the transaction (SQLite rolls back on a full disk, say):
            // the messages written before it are gone too.
            return Err(Ended {
                by: Some(k),
                error: result.err().unwrap_or(rusqlite::Error::InvalidQuery),
            });
        }
        if result.is_ok() {
            learned.append(&mut mine);
        }
        results.push(result);
    }
    c.execute_batch("COMMIT")?;
    if ids.len() + learned.len() > MADDR_CACHE {
        ids.clear();
    }
    ids.extend(learned);
    Ok(results)
}

/// One message's rows, rolled back alone when they fail.
fn in_savepoint(
    c: &Connection,
    ids: &HashMap<String, i64>,
    op: &Op,
    learned: &mut Vec<(String, i64)>,
) -> rusqlite::Result<()> {
    c.execute_batch("SAVEPOINT msg")?;
    let written = match op {
        Op::Start(row) => start(c, ids, row, learned),
        Op::End(rows) => end(c, ids, rows, learned),
    };
    match written {
        Ok(()) => c.execute_batch("RELEASE msg"),
        Err(e) => {
            // Fails only when the transaction is gone, which the caller checks.
            let _ = c.execute_batch("ROLLBACK TO msg; RELEASE msg");
            learned.clear();
            Err(e)
        }
    }
}

fn start(
    c: &Connection,
    ids: &HashMap<String, i64>,
    r: &StartRow,
    learned: &mut Vec<(String, i64)>,
) -> rusqlite::Result<()> {
    let sid = maddr_id(c, ids, r.partition_tag, &r.sender, learned)?;
    c.prepare_cached(&INSERT_MSGS)?.execute(params![
        r.partition_tag,
        r.mail_id,
        r.secret_id,
        r.am_id,
        r.time,
        dialect::time_iso(r.time),
        sid,
        r.policy,
        r.client_addr,
        r.size,
        r.originating,
        r.message_id,
        r.from_addr,
        r.subject,
        r.host,
    ])?;
    Ok(())
}

fn end(
    c: &Connection,
    ids: &HashMap<String, i64>,
    r: &EndRows,
    learned: &mut Vec<(String, i64)>,
) -> rusqlite::Result<()> {
    c.prepare_cached(UPDATE_MSGS)?.execute(params![
        r.content,
        r.quar_type,
        r.quar_loc,
        r.dsn_sent,
        r.spam_level,
        r.partition_tag,
        r.mail_id,
    ])?;
    for rc in &r.rcpts {
        let rid = maddr_id(c, ids, r.partition_tag, &rc.addr, learned)?;
        c.prepare_cached(INSERT_MSGRCPT)?.execute(params![
            r.partition_tag,
            r.mail_id,
            rc.rseqnum,
            rid,
            rc.is_local,
            rc.content,
            rc.ds,
            rc.bl,
            rc.wl,
            rc.bspam_level,
            rc.smtp_resp,
        ])?;
    }
    Ok(())
}

/// The `maddr` id of `a`, inserted when new; a new one is added to `learned`.
fn maddr_id(
    c: &Connection,
    ids: &HashMap<String, i64>,
    tag: i64,
    a: &Maddr,
    learned: &mut Vec<(String, i64)>,
) -> rusqlite::Result<i64> {
    if let Some(id) = ids.get(&a.email) {
        return Ok(*id);
    }
    let select = || {
        c.prepare_cached(SELECT_MADDR)?
            .query_row(params![tag, a.email], |row| row.get::<_, i64>(0))
            .optional()
    };
    let id = match select()? {
        Some(id) => id,
        None => {
            c.prepare_cached(Dialect::Sqlite.insert_maddr())?
                .execute(params![tag, a.email, a.domain])?;
            select()?.ok_or(rusqlite::Error::QueryReturnedNoRows)?
        }
    };
    learned.push((a.email.clone(), id));
    Ok(id)
}

#[cfg(test)]
mod tests {
    use crate::sql::{MsgEnd, MsgStart, RcptRow, SqlConfig, Store};

    async fn store(dir: &tempfile::TempDir) -> Store {
        let cfg = SqlConfig {
            url: format!("sqlite:{}/log.sqlite", dir.path().display()),
            ..SqlConfig::default()
        };
        let store = Store::new(&cfg).unwrap().unwrap();
        store.create_schema().await.unwrap();
        store
    }

    fn start<'a>(mail_id: &'a str, subject: &'a str) -> MsgStart<'a> {
        MsgStart {
            mail_id,
            secret_id: "secret",
            am_id: "1-01",
            time: 1_800_000_000,
            sender: "sender@example.org",
            policy: "",
            client_addr: "127.0.0.1",
            size: 100,
            originating: false,
            message_id: "<m@example.org>",
            from_addr: "sender@example.org",
            subject,
            host: "test",
        }
    }

    fn end() -> MsgEnd {
        MsgEnd {
            content: 'C',
            quar_type: ' ',
            quar_loc: String::new(),
            dsn_sent: 'N',
            spam_level: Some(1.5),
        }
    }

    fn rcpt(address: &str) -> RcptRow {
        RcptRow {
            address: address.into(),
            is_local: true,
            content: 'C',
            ds: 'P',
            bspam_level: Some(1.5),
            smtp_resp: "250 2.0.0 Ok".into(),
            blacklisted: false,
            whitelisted: false,
        }
    }

    async fn count(store: &Store, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(store.pool())
            .await
            .unwrap()
    }

    /// Logs message `i` from start to end, as a session does.
    async fn log_one(store: &Store, i: usize, subject: &str) -> Result<(), crate::sql::SqlError> {
        let id = format!("id{i:010}");
        store.log_start(&start(&id, subject)).await?;
        let rcpts = [
            rcpt(&format!("r{}@example.com", i % 7)),
            rcpt("all@example.com"),
        ];
        store.log_end(&id, &end(), &rcpts).await
    }

    /// Sessions at once share transactions: every message is written whole, the addresses
    /// once each, and each caller hears back only after its rows are committed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_sessions_share_transactions_and_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(store(&dir).await);
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let s = store.clone();
                tokio::spawn(async move { log_one(&s, i, "hello").await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM msgs WHERE content = 'C'").await,
            200
        );
        assert_eq!(count(&store, "SELECT COUNT(*) FROM msgrcpt").await, 400);
        // The sender, seven recipients and the shared one: once each.
        assert_eq!(count(&store, "SELECT COUNT(*) FROM maddr").await, 9);
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM msgrcpt r JOIN maddr a ON r.rid = a.id"
            )
            .await,
            400
        );
    }

    /// A message whose rows fail is rolled back alone; one whose failure ends the whole
    /// transaction takes the others of its batch with it. Either way a caller told "written"
    /// has its rows, and one told otherwise has none (its message waits and comes again).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failed_write_is_reported_and_never_half_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(store(&dir).await);
        for trigger in [
            "CREATE TRIGGER one BEFORE INSERT ON msgs WHEN NEW.subject = 'abort' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END",
            "CREATE TRIGGER all_ BEFORE INSERT ON msgs WHEN NEW.subject = 'rollback' \
             BEGIN SELECT RAISE(ROLLBACK, 'refused'); END",
        ] {
            sqlx::query(trigger).execute(store.pool()).await.unwrap();
        }
        let subject = |i: usize| match i % 25 {
            3 => "abort",
            17 => "rollback",
            _ => "fine",
        };
        let tasks: Vec<_> = (0..300)
            .map(|i| {
                let s = store.clone();
                tokio::spawn(async move {
                    let id = format!("id{i:010}");
                    let started = s.log_start(&start(&id, subject(i))).await;
                    let ended = s.log_end(&id, &end(), &[rcpt("r@example.com")]).await;
                    (id, started, ended)
                })
            })
            .collect();
        let mut written = 0;
        for t in tasks {
            let (id, started, ended) = t.await.unwrap();
            for (result, table) in [(started, "msgs"), (ended, "msgrcpt")] {
                let sql = format!("SELECT COUNT(*) FROM {table} WHERE mail_id = '{id}'");
                let rows = count(&store, &sql).await;
                match result {
                    Ok(()) => {
                        assert_eq!(rows, 1, "{id} reported written to {table}");
                        written += 1;
                    }
                    Err(e) => {
                        assert!(e.is_temporary());
                        assert_eq!(rows, 0, "{id} reported failed for {table}: {e}");
                    }
                }
            }
        }
        let refused = count(&store, "SELECT COUNT(*) FROM msgs WHERE subject <> 'fine'").await;
        assert_eq!(refused, 0, "a refused message's row was kept");
        assert_eq!(written, 600 - 2 * 12, "too few written: {written}");
        // The writer carries on after the failures.
        log_one(&store, 1000, "fine").await.unwrap();
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM msgrcpt WHERE mail_id = 'id0000001000'"
            )
            .await,
            2
        );
    }
}
