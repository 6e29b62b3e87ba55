//! Bayes lookups on SQLite without sqlx: the thread that scans a message reads its tokens'
//! counts itself.
//!
//! Why: through sqlx a lookup is a hop to the connection's worker thread and back, a wake-up
//! each way, for two queries a message; the store's two sqlx workers took 13% of the filter's
//! CPU at 4 sessions, more than the B-tree seeks they ran. In WAL mode a reader never waits
//! for the writer, so a lookup done in place costs the seeks and nothing else. Learning
//! stays on sqlx, in its transactions (`sql_store`), and a lookup sees what was committed.

use crate::spam::logistic::State;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::collections::HashMap;
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Connections kept open between lookups: one per scan thread is enough on the machines
/// we run on, and each holds a page cache (SQLite's default, up to 2 MiB).
const IDLE: usize = 4;

/// How long a lookup waits on a lock: only a WAL recovery after a crash takes one.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One statement for any number of tokens (a JSON array, which SQLite's `json_each`
/// unpacks): one prepared statement kept, and the plan seeks the primary key per token.
const COUNTS: &str = "SELECT token, spam_count, ham_count FROM bayes_token \
     WHERE username = ?1 AND token IN (SELECT value FROM json_each(?2))";

/// The same for the learner's weights.
const WEIGHTS: &str = "SELECT feature, z, n FROM learner_weight \
     WHERE username = ?1 AND feature IN (SELECT value FROM json_each(?2))";

const TOTALS: &str = "SELECT spam_count, ham_count FROM bayes_vars WHERE username = ?1";

/// Read-only lookups in one SQLite database.
pub(super) struct Reader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Reader {
    /// Lookups in the database at `path`, opened at the first (after the tables exist).
    pub fn new(path: PathBuf) -> Reader {
        Reader {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` on an idle connection or a new one; one that failed is not kept.
    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        let kept = self.idle.lock().ok().and_then(|mut v| v.pop());
        let conn = match kept {
            Some(c) => c,
            None => {
                // Not read-only: such a connection cannot open a WAL database whose
                // shared-memory file is missing. It only ever reads.
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(BUSY_TIMEOUT)?;
                c
            }
        };
        let result = f(&conn);
        if result.is_ok()
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE
        {
            idle.push(conn);
        }
        result
    }

    /// Messages learned for `user`: (spam, ham).
    pub fn totals(&self, user: &str) -> rusqlite::Result<(u64, u64)> {
        self.with(|c| {
            let row = c
                .prepare_cached(TOTALS)?
                .query_row(params![user], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()?;
            Ok(row.map_or((0, 0), |(s, h)| (s.max(0) as u64, h.max(0) as u64)))
        })
    }

    /// The counts of those of `tokens` the store holds for `user`.
    pub fn counts(&self, user: &str, tokens: &[u64]) -> rusqlite::Result<HashMap<u64, (u32, u32)>> {
        let list = json_list(tokens);
        self.with(|c| {
            let mut stmt = c.prepare_cached(COUNTS)?;
            let mut rows = stmt.query(params![user, list])?;
            let mut found = HashMap::with_capacity(tokens.len());
            let count = |v: i64| v.clamp(0, u32::MAX as i64) as u32;
            while let Some(r) = rows.next()? {
                let t: i64 = r.get(0)?;
                found.insert(t as u64, (count(r.get(1)?), count(r.get(2)?)));
            }
            Ok(found)
        })
    }

    /// The learner's states of those of `features` the store holds for `user`.
    pub fn weights(&self, user: &str, features: &[u64]) -> rusqlite::Result<HashMap<u64, State>> {
        let list = json_list(features);
        self.with(|c| {
            let mut stmt = c.prepare_cached(WEIGHTS)?;
            let mut rows = stmt.query(params![user, list])?;
            let mut found = HashMap::new();
            while let Some(r) = rows.next()? {
                let f: i64 = r.get(0)?;
                found.insert(
                    f as u64,
                    (r.get::<_, f64>(1)? as f32, r.get::<_, f64>(2)? as f32),
                );
            }
            Ok(found)
        })
    }
}

/// Keys as a JSON array for `json_each`. They are stored as i64 (their bits), as sqlx binds
/// them.
fn json_list(keys: &[u64]) -> String {
    let mut list = String::with_capacity(keys.len() * 21 + 2);
    list.push('[');
    for (i, t) in keys.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        // Writing to a String cannot fail.
        let _ = write!(list, "{}", *t as i64);
    }
    list.push(']');
    list
}

#[cfg(test)]
mod tests {
    use crate::spam::bayes::sql_store::SqlStore;
    use crate::spam::bayes::store::TokenStore;
    use crate::spam::bayes::{Class, Learned};

    /// What sqlx writes, the reader reads back: tokens with their top bit set (stored as
    /// negative numbers), repeated ones, unknown ones, each user's apart.
    #[tokio::test]
    async fn reads_what_learning_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}/bayes.sqlite", dir.path().display());
        let store = SqlStore::open(&url).await.unwrap();
        let high = u64::MAX - 5;
        let learned = store
            .learn("", &[1; 32], Class::Spam, &[high, 42, 42, 7])
            .await
            .unwrap();
        assert_eq!(learned, Learned::New);
        store.learn("", &[2; 32], Class::Ham, &[42]).await.unwrap();
        store
            .learn("u@example.com", &[3; 32], Class::Ham, &[7])
            .await
            .unwrap();
        assert_eq!(store.totals("").await.unwrap(), (1, 1));
        assert_eq!(store.totals("u@example.com").await.unwrap(), (0, 1));
        assert_eq!(store.totals("nobody").await.unwrap(), (0, 0));
        let counts = store.counts("", &[42, high, 99, 7, high]).await.unwrap();
        assert_eq!(counts, vec![(1, 1), (1, 0), (0, 0), (1, 0), (1, 0)]);
        let theirs = store.counts("u@example.com", &[7, 42]).await.unwrap();
        assert_eq!(theirs, vec![(0, 1), (0, 0)]);
        assert!(store.counts("", &[]).await.unwrap().is_empty());
    }

    /// A store made before the token table was kept in key order is rewritten so at open,
    /// with its counts, and learning and lookups go on as before.
    #[tokio::test]
    async fn an_older_token_table_is_rewritten_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bayes.sqlite");
        let shape = |c: &rusqlite::Connection| -> String {
            c.query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'bayes_token'",
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        {
            let c = rusqlite::Connection::open(&file).unwrap();
            c.execute_batch(
                "CREATE TABLE bayes_token (username VARCHAR(200) NOT NULL, token BIGINT NOT NULL, \
                 spam_count INTEGER NOT NULL DEFAULT 0, ham_count INTEGER NOT NULL DEFAULT 0, \
                 atime BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (username, token));
                 INSERT INTO bayes_token VALUES ('', 42, 3, 1, 5), ('', -6, 0, 2, 5);",
            )
            .unwrap();
            assert!(!shape(&c).contains("WITHOUT ROWID"));
        }
        let url = format!("sqlite:{}", file.display());
        let store = SqlStore::open(&url).await.unwrap();
        let c = rusqlite::Connection::open(&file).unwrap();
        assert!(shape(&c).contains("WITHOUT ROWID"), "{}", shape(&c));
        let counts = store.counts("", &[42, u64::MAX - 5, 7]).await.unwrap();
        assert_eq!(counts, vec![(3, 1), (0, 2), (0, 0)]);
        store.learn("", &[1; 32], Class::Spam, &[7]).await.unwrap();
        assert_eq!(store.counts("", &[7]).await.unwrap(), vec![(1, 0)]);
        // A second open finds nothing to do.
        drop(store);
        let again = SqlStore::open(&url).await.unwrap();
        assert_eq!(again.counts("", &[42]).await.unwrap(), vec![(3, 1)]);
    }
}
