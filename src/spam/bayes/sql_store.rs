//! Bayes counts in SQL: SQLite (the embedded default) or PostgreSQL (shared by filter
//! nodes), through sqlx's `Any` driver as the SQL log uses it. Three tables, created on first
//! use: `bayes_vars` (messages learned per user), `bayes_token` (per user and token hash: spam
//! and ham counts, last use) and `bayes_seen` (which messages were learned as what, so that
//! learning again is recognised). A user's rows are apart from every other user's; the site's
//! store is the user `""`.
//!
//! Each learn or forget is one transaction: a message is counted wholly or not at all.

use super::store::{BayesError, Purge, TokenStore, now};
use super::{Class, Learned, MessageKey};
use crate::sql::Dialect;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, AssertSqlSafe, Row};

/// How long a lookup waits for a connection: a message waits at most this long for an
/// unreachable store before its check fails (451) and Postfix retries it later.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Tokens looked up per query (a bound on the statement's size).
pub(super) const LOOKUP_BATCH: usize = 500;

/// Tokens counted per statement when learning (three parameters each: far below SQLite's
/// 32,766 and PostgreSQL's 65,535).
const WRITE_BATCH: usize = 300;

const TOKEN_TABLE: &str = "CREATE TABLE IF NOT EXISTS bayes_token (username VARCHAR(200) NOT NULL, \
     token BIGINT NOT NULL, spam_count INTEGER NOT NULL DEFAULT 0, ham_count INTEGER NOT NULL \
     DEFAULT 0, atime BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (username, token))";

/// On SQLite the token table is stored in its primary key's order: a lookup is one seek
/// where a rowid table takes two (its key's index, then the row), and the lookups of a
/// scan took half the time (800 tokens: 1.4 -> 0.7 ms).
const WITHOUT_ROWID: &str = " WITHOUT ROWID";

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS bayes_vars (username VARCHAR(200) NOT NULL PRIMARY KEY, \
     spam_count BIGINT NOT NULL DEFAULT 0, ham_count BIGINT NOT NULL DEFAULT 0)",
    // On SQLite with `WITHOUT_ROWID` added.
    TOKEN_TABLE,
    "CREATE TABLE IF NOT EXISTS bayes_seen (username VARCHAR(200) NOT NULL, msgkey VARCHAR(64) NOT NULL, \
     flag VARCHAR(1) NOT NULL, atime BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (username, msgkey))",
    "CREATE INDEX IF NOT EXISTS bayes_seen_atime ON bayes_seen (username, atime)",
    // Purging finds the least recently learned tokens.
    "CREATE INDEX IF NOT EXISTS bayes_token_atime ON bayes_token (username, atime)",
    // The learner's weights (`super::sql_weights`); on SQLite with `WITHOUT_ROWID` added.
    super::sql_weights::WEIGHT_TABLE,
    "CREATE INDEX IF NOT EXISTS learner_weight_atime ON learner_weight (username, atime)",
];

/// A SQL Bayes store.
pub struct SqlStore {
    pub(super) pool: AnyPool,
    pub(super) dialect: Dialect,
    url: String,
    /// The tables exist (created on first use).
    ready: tokio::sync::OnceCell<()>,
    /// On SQLite, the lookups done in place ([`super::sqlite_reader`]).
    pub(super) reader: Option<super::sqlite_reader::Reader>,
}

fn hex(key: &MessageKey) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// The count column of `class`.
fn column(class: Class) -> &'static str {
    match class {
        Class::Spam => "spam_count",
        Class::Ham => "ham_count",
    }
}

/// `tokens` once each: two tokens may hash alike, and PostgreSQL refuses to update one row
/// twice in a statement.
pub(super) fn unique(tokens: &[u64]) -> Vec<u64> {
    let mut v = tokens.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

fn flag(class: Class) -> &'static str {
    match class {
        Class::Spam => "s",
        Class::Ham => "h",
    }
}

impl SqlStore {
    /// Connects to `url` (`sqlite:FILE` or `postgres://...`) and creates the tables if
    /// missing.
    pub async fn open(url: &str) -> Result<SqlStore, BayesError> {
        let store = Self::new(url)?;
        store.ready().await?;
        Ok(store)
    }

    /// The store for `url`, connecting on first use (the filter builds it at start-up and
    /// on reload, outside any async context; a database down at start only costs the
    /// messages scanned meanwhile their Bayes answer). Call within a tokio runtime.
    pub fn new(url: &str) -> Result<SqlStore, BayesError> {
        sqlx::any::install_default_drivers();
        let fail = |reason: String| BayesError::Open {
            url: url.to_string(),
            reason,
        };
        let dialect = match Dialect::of(url) {
            Some(d @ (Dialect::Sqlite | Dialect::Postgres)) => d,
            _ => return Err(fail("not a sqlite: or postgres:// URL".into())),
        };
        let full = crate::sql::dialect::creating(url);
        let pool = crate::sql::store::never_pool_an_open_transaction(AnyPoolOptions::new())
            // Lookups come from the scan threads (as many as cores); SQLite writes one
            // at a time, and each of its connections holds a page cache and a thread.
            .max_connections(if dialect == Dialect::Sqlite { 2 } else { 4 })
            .acquire_timeout(CONNECT_TIMEOUT)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=10000"] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_lazy(&full)
            .map_err(|e| fail(e.to_string()))?;
        Ok(SqlStore {
            pool,
            dialect,
            url: url.to_string(),
            ready: tokio::sync::OnceCell::new(),
            reader: crate::sql::dialect::sqlite_file(url)
                .map(|file| super::sqlite_reader::Reader::new(file.to_path_buf())),
        })
    }

    /// Creates the tables once.
    pub(super) async fn ready(&self) -> Result<(), BayesError> {
        self.ready
            .get_or_try_init(|| async {
                let fail = |e: sqlx::Error| BayesError::Open {
                    url: self.url.clone(),
                    reason: e.to_string(),
                };
                for stmt in SCHEMA {
                    let stmt = match (*stmt, self.dialect) {
                        (t @ (TOKEN_TABLE | super::sql_weights::WEIGHT_TABLE), Dialect::Sqlite) => {
                            format!("{t}{WITHOUT_ROWID}")
                        }
                        _ => stmt.to_string(),
                    };
                    // Our own constants, no outside data.
                    sqlx::query(sqlx::AssertSqlSafe(stmt))
                        .execute(&self.pool)
                        .await
                        .map_err(fail)?;
                }
                if self.dialect == Dialect::Sqlite {
                    self.sqlite_token_table_by_key().await.map_err(fail)?;
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }
}

impl SqlStore {
    /// Rewrites a SQLite token table made before it was kept in key order (see
    /// [`WITHOUT_ROWID`]), once, in one transaction: seconds for millions of tokens, at the
    /// first start after the upgrade. Another process doing the same waits for the write
    /// lock and then finds the work done.
    async fn sqlite_token_table_by_key(&self) -> Result<(), sqlx::Error> {
        const SHAPE: &str =
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'bayes_token'";
        let by_rowid = |sql: Option<String>| {
            sql.is_some_and(|s| !s.to_ascii_uppercase().contains(WITHOUT_ROWID.trim()))
        };
        let sql: Option<String> = sqlx::query_scalar(SHAPE).fetch_optional(&self.pool).await?;
        if !by_rowid(sql) {
            return Ok(());
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let sql: Option<String> = sqlx::query_scalar(SHAPE).fetch_optional(&mut *tx).await?;
        if !by_rowid(sql) {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let new_table =
            format!("{TOKEN_TABLE}{WITHOUT_ROWID}").replace("bayes_token", "bayes_token_by_key");
        for stmt in [
            new_table,
            "INSERT INTO bayes_token_by_key (username, token, spam_count, ham_count, atime) \
             SELECT username, token, spam_count, ham_count, atime FROM bayes_token"
                .into(),
            "DROP TABLE bayes_token".into(),
            "ALTER TABLE bayes_token_by_key RENAME TO bayes_token".into(),
            "CREATE INDEX IF NOT EXISTS bayes_token_atime ON bayes_token (username, atime)".into(),
        ] {
            // Our own constants, no outside data.
            sqlx::query(sqlx::AssertSqlSafe(stmt))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        tracing::info!(
            "bayes: {}: token table rewritten in key order (one seek a lookup) in {:.1} s",
            self.url,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Begins a learning transaction. SQLite's plain BEGIN takes the write lock only at the
    /// first write, and a transaction that has read meanwhile then fails at once ("database
    /// is locked", whatever busy_timeout says) when another connection wrote: autolearn
    /// failed so for one message in seven at 4 sessions. BEGIN IMMEDIATE waits its turn.
    pub(super) async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, BayesError> {
        Ok(match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            _ => self.pool.begin().await?,
        })
    }

    /// The counts of those of `tokens` a database server holds for `user` (SQLite's are
    /// read in place, by the `reader`).
    async fn server_counts(
        &self,
        user: &str,
        tokens: &[u64],
    ) -> Result<std::collections::HashMap<u64, (u32, u32)>, BayesError> {
        let mut found = std::collections::HashMap::with_capacity(tokens.len());
        for batch in tokens.chunks(LOOKUP_BATCH) {
            let marks = vec!["?"; batch.len()].join(",");
            let sql = self.dialect.sql(&format!(
                "SELECT token, spam_count, ham_count FROM bayes_token \
                 WHERE username = ? AND token IN ({marks})"
            ));
            // PostgreSQL plans a statement it keeps once for any parameters (a generic plan
            // after five runs); for a long IN list over one user's rows that plan became a
            // sequential scan comparing every row with every token (0.3 s to 6 s a message
            // in the benchmark). An unnamed statement is planned for its own parameters.
            let mut q = sqlx::query(AssertSqlSafe(sql))
                .persistent(self.dialect != Dialect::Postgres)
                .bind(user);
            for t in batch {
                q = q.bind(*t as i64);
            }
            for r in q.fetch_all(&self.pool).await? {
                let t: i64 = r.try_get(0)?;
                let s: i32 = r.try_get(1)?;
                let h: i32 = r.try_get(2)?;
                found.insert(t as u64, (s.max(0) as u32, h.max(0) as u32));
            }
        }
        Ok(found)
    }
}

impl TokenStore for SqlStore {
    async fn totals(&self, user: &str) -> Result<(u64, u64), BayesError> {
        self.ready().await?;
        if let Some(r) = &self.reader {
            return Ok(r.totals(user)?);
        }
        let sql = self
            .dialect
            .sql("SELECT spam_count, ham_count FROM bayes_vars WHERE username = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(user)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => (
                r.try_get::<i64, _>(0)?.max(0) as u64,
                r.try_get::<i64, _>(1)?.max(0) as u64,
            ),
            None => (0, 0),
        })
    }

    /// (spam, ham) counts of each token for `user`, in order; (0, 0) for unknown ones.
    async fn counts(&self, user: &str, tokens: &[u64]) -> Result<Vec<(u32, u32)>, BayesError> {
        self.ready().await?;
        let found = match &self.reader {
            Some(r) => r.counts(user, tokens)?,
            None => self.server_counts(user, tokens).await?,
        };
        Ok(tokens
            .iter()
            .map(|t| found.get(t).copied().unwrap_or((0, 0)))
            .collect())
    }

    /// Learns a message as `class` for `user`: once; moved over when learned as the other
    /// class.
    async fn learn(
        &self,
        user: &str,
        key: &MessageKey,
        class: Class,
        tokens: &[u64],
    ) -> Result<Learned, BayesError> {
        self.ready().await?;
        let mut tx = self.begin().await?;
        let was = self.learned_as(&mut tx, user, key).await?;
        let outcome = match was {
            Some(c) if c == class => Learned::Unchanged,
            Some(other) => {
                self.remove(&mut tx, user, key, other, tokens).await?;
                self.add(&mut tx, user, key, class, tokens).await?;
                Learned::Flipped
            }
            None => {
                self.add(&mut tx, user, key, class, tokens).await?;
                Learned::New
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Takes a learned message back out.
    async fn forget(
        &self,
        user: &str,
        key: &MessageKey,
        tokens: &[u64],
    ) -> Result<Learned, BayesError> {
        self.ready().await?;
        let mut tx = self.begin().await?;
        let outcome = match self.learned_as(&mut tx, user, key).await? {
            Some(c) => {
                self.remove(&mut tx, user, key, c, tokens).await?;
                Learned::Forgotten
            }
            None => Learned::NotLearned,
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Distinct tokens held for `user` (the store's size).
    async fn token_count(&self, user: &str) -> Result<u64, BayesError> {
        self.rows_of("bayes_token", user).await
    }

    async fn users(&self) -> Result<Vec<String>, BayesError> {
        self.ready().await?;
        let rows = sqlx::query("SELECT username FROM bayes_vars")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(BayesError::from))
            .collect()
    }

    async fn purge(&self, user: &str, purge: &Purge) -> Result<u64, BayesError> {
        self.ready().await?;
        let d = self.dialect;
        let mut removed = 0;
        let older = |age: u64| purge.now.saturating_sub(age.min(i64::MAX as u64) as i64);
        if purge.max_age > 0 {
            removed += sqlx::query(AssertSqlSafe(
                d.sql("DELETE FROM bayes_token WHERE username = ? AND atime < ?"),
            ))
            .bind(user)
            .bind(older(purge.max_age))
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        if purge.hapax_max_age > 0 {
            removed += sqlx::query(AssertSqlSafe(d.sql(
                "DELETE FROM bayes_token WHERE username = ? AND spam_count + ham_count <= 1 \
                 AND atime < ?",
            )))
            .bind(user)
            .bind(older(purge.hapax_max_age))
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        if purge.seen_max_age > 0 {
            sqlx::query(AssertSqlSafe(
                d.sql("DELETE FROM bayes_seen WHERE username = ? AND atime < ?"),
            ))
            .bind(user)
            .bind(older(purge.seen_max_age))
            .execute(&self.pool)
            .await?;
        }
        removed += self
            .keep_newest("bayes_token", "token", user, purge.max_tokens)
            .await?;
        if d == Dialect::Postgres && removed > 0 {
            // Fresh statistics after a large delete, or lookups may plan sequential scans
            // (autovacuum gets there too, later).
            sqlx::query("ANALYZE bayes_token")
                .execute(&self.pool)
                .await?;
        }
        Ok(removed)
    }
}

/// What the token and weight tables share: rows per user, each with its last use (`atime`).
impl SqlStore {
    /// Rows `user` has in `table` (one of ours).
    pub(super) async fn rows_of(&self, table: &str, user: &str) -> Result<u64, BayesError> {
        self.ready().await?;
        let sql = self
            .dialect
            .sql(&format!("SELECT COUNT(*) FROM {table} WHERE username = ?"));
        // `table` is one of our constants.
        let n: i64 = sqlx::query(AssertSqlSafe(sql))
            .bind(user)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(n.max(0) as u64)
    }

    /// Deletes `user`'s least recently used rows of `table` (keyed by `key`) beyond `max`
    /// (0: no bound); gives how many went.
    pub(super) async fn keep_newest(
        &self,
        table: &str,
        key: &str,
        user: &str,
        max: u64,
    ) -> Result<u64, BayesError> {
        let held = self.rows_of(table, user).await?;
        if max == 0 || held <= max {
            return Ok(0);
        }
        let excess = (held - max).min(i64::MAX as u64) as i64;
        // `table` and `key` are our constants.
        let sql = self.dialect.sql(&format!(
            "DELETE FROM {table} WHERE username = ? AND {key} IN \
             (SELECT {key} FROM {table} WHERE username = ? ORDER BY atime, {key} LIMIT ?)"
        ));
        Ok(sqlx::query(AssertSqlSafe(sql))
            .bind(user)
            .bind(user)
            .bind(excess)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}

impl SqlStore {
    async fn learned_as(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        user: &str,
        key: &MessageKey,
    ) -> Result<Option<Class>, BayesError> {
        let sql = self
            .dialect
            .sql("SELECT flag FROM bayes_seen WHERE username = ? AND msgkey = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(user)
            .bind(hex(key))
            .fetch_optional(&mut **tx)
            .await?;
        Ok(match row {
            Some(r) => match r.try_get::<String, _>(0)?.as_str() {
                "s" => Some(Class::Spam),
                _ => Some(Class::Ham),
            },
            None => None,
        })
    }

    /// Adds one message of `class`: its tokens, the totals and the seen record.
    async fn add(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        user: &str,
        key: &MessageKey,
        class: Class,
        tokens: &[u64],
    ) -> Result<(), BayesError> {
        let col = column(class);
        let d = self.dialect;
        let exec = |sql: String| sqlx::query(AssertSqlSafe(d.sql(&sql)));
        exec(format!(
            "INSERT INTO bayes_vars (username, {col}) VALUES (?, 1) \
             ON CONFLICT (username) DO UPDATE SET {col} = bayes_vars.{col} + 1"
        ))
        .bind(user)
        .execute(&mut **tx)
        .await?;
        let at = now();
        // Many rows a statement: one statement a token cost a round trip each (~10 ms of
        // CPU for a message of 500 tokens on SQLite, through sqlx's worker thread).
        for batch in unique(tokens).chunks(WRITE_BATCH) {
            let rows = vec!["(?, ?, 1, ?)"; batch.len()].join(", ");
            let mut q = exec(format!(
                "INSERT INTO bayes_token (username, token, {col}, atime) VALUES {rows} \
                 ON CONFLICT (username, token) DO UPDATE SET {col} = bayes_token.{col} + 1, \
                 atime = excluded.atime"
            ));
            for t in batch {
                q = q.bind(user).bind(*t as i64).bind(at);
            }
            q.execute(&mut **tx).await?;
        }
        exec("INSERT INTO bayes_seen (username, msgkey, flag, atime) VALUES (?, ?, ?, ?)".into())
            .bind(user)
            .bind(hex(key))
            .bind(flag(class))
            .bind(at)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Takes one message of `class` back out: its tokens (rows left at zero go), the totals
    /// and the seen record.
    async fn remove(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        user: &str,
        key: &MessageKey,
        class: Class,
        tokens: &[u64],
    ) -> Result<(), BayesError> {
        let col = column(class);
        let d = self.dialect;
        let exec = |sql: String| sqlx::query(AssertSqlSafe(d.sql(&sql)));
        exec(format!(
            "UPDATE bayes_vars SET {col} = CASE WHEN {col} > 0 THEN {col} - 1 ELSE 0 END \
             WHERE username = ?"
        ))
        .bind(user)
        .execute(&mut **tx)
        .await?;
        for batch in unique(tokens).chunks(WRITE_BATCH) {
            let marks = vec!["?"; batch.len()].join(",");
            for sql in [
                format!(
                    "UPDATE bayes_token SET {col} = CASE WHEN {col} > 0 THEN {col} - 1 ELSE 0 END \
                     WHERE username = ? AND token IN ({marks})"
                ),
                format!(
                    "DELETE FROM bayes_token WHERE username = ? AND token IN ({marks}) \
                     AND spam_count = 0 AND ham_count = 0"
                ),
            ] {
                let mut q = exec(sql).bind(user);
                for t in batch {
                    q = q.bind(*t as i64);
                }
                q.execute(&mut **tx).await?;
            }
        }
        exec("DELETE FROM bayes_seen WHERE username = ? AND msgkey = ?".into())
            .bind(user)
            .bind(hex(key))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}
