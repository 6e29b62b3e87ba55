//! The connection pool and what it needs to know about its database: the dialect, the
//! partition tag, the schema (created on first use when `sql.create_schema` is on), and a
//! timeout around every use.

use super::{Dialect, SqlConfig, SqlError, dialect};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, AssertSqlSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A connection pool and what it needs to know about its database.
pub struct Store {
    pub(super) pool: AnyPool,
    pub(super) dialect: Dialect,
    pub(super) partition_tag: i64,
    schema_ready: AtomicBool,
    create_schema: bool,
    timeout: Duration,
    /// maddr ids already known: most mail comes from and goes to addresses seen before, and
    /// each lookup saved is a round trip (measured: the SQL log cost a third of throughput).
    /// Ids never change once assigned, so the cache cannot go stale; it is cleared when full.
    pub(super) maddr_cache: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    /// On SQLite, the SQL log's own writer ([`super::sqlite_writer`]).
    pub(super) writer: Option<super::sqlite_writer::Writer>,
}

/// Entries in the maddr cache before it is cleared.
pub(super) const MADDR_CACHE: usize = 100_000;

/// Closes, instead of pooling, a connection given back with a transaction still open. sqlx
/// keeps a connection's transaction depth itself, and a COMMIT that fails (SQLite's "database
/// or disk is full", a lost server) leaves it at one: every later BEGIN on that connection
/// then fails ("begin_with at non-zero transaction depth"), so the log stayed down after the
/// disk had room again (found by the chaos run). Only failed transactions pay for it.
pub fn never_pool_an_open_transaction(opts: AnyPoolOptions) -> AnyPoolOptions {
    opts.after_release(|conn, _| {
        use sqlx::Connection;
        let clean = !conn.is_in_transaction();
        Box::pin(async move { Ok(clean) })
    })
}

impl Store {
    /// A store for `cfg.url`; connects lazily, so a database that is down at start only makes
    /// messages wait until it is back. Call it within a tokio runtime (the pool needs one).
    pub fn new(cfg: &SqlConfig) -> Result<Option<Store>, SqlError> {
        if cfg.url.is_empty() {
            return Ok(None);
        }
        sqlx::any::install_default_drivers();
        let dialect = Dialect::of(&cfg.url)
            .ok_or_else(|| SqlError::Other(format!("unknown database URL {:?}", cfg.url)))?;
        let url = dialect::creating(&cfg.url);
        let timeout = Duration::from_secs(cfg.timeout);
        let mut opts = AnyPoolOptions::new()
            .max_connections(cfg.pool_size())
            .acquire_timeout(timeout);
        if dialect == Dialect::Sqlite {
            // WAL lets readers (a web front end) work beside us; FULL makes a commit durable,
            // which the quarantine relies on; the busy timeout waits out other writers.
            opts = opts.after_connect(|conn, _| {
                Box::pin(async move {
                    for pragma in [
                        "PRAGMA journal_mode=WAL",
                        "PRAGMA synchronous=FULL",
                        "PRAGMA busy_timeout=10000",
                    ] {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            });
        }
        let pool = never_pool_an_open_transaction(opts).connect_lazy(&url)?;
        let writer = match dialect::sqlite_file(&cfg.url) {
            Some(file) => Some(super::sqlite_writer::Writer::spawn(file.to_path_buf())?),
            None => None,
        };
        Ok(Some(Store {
            pool,
            dialect,
            partition_tag: cfg.partition_tag,
            schema_ready: AtomicBool::new(!cfg.create_schema),
            create_schema: cfg.create_schema,
            timeout,
            maddr_cache: std::sync::Mutex::new(std::collections::HashMap::new()),
            writer,
        }))
    }

    /// The database kind.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The pool, for the quarantine and release, which share the database.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// amavisd-new's partition tag of our rows.
    pub fn partition_tag(&self) -> i64 {
        self.partition_tag
    }

    /// Creates the tables that are missing (every statement is "if not exists"). Several
    /// filter nodes (or tests) may start at once: PostgreSQL can fail two concurrent
    /// `CREATE TABLE IF NOT EXISTS` of one table, so they take turns under a database lock.
    pub async fn create_schema(&self) -> Result<(), SqlError> {
        let mut conn = self.pool.acquire().await?;
        let (lock, unlock) = match self.dialect {
            Dialect::Postgres => (
                Some("SELECT pg_advisory_lock(72741)"),
                Some("SELECT pg_advisory_unlock(72741)"),
            ),
            Dialect::Mysql => (
                Some("SELECT GET_LOCK('amavisd_schema', 30)"),
                Some("SELECT RELEASE_LOCK('amavisd_schema')"),
            ),
            Dialect::Sqlite => (None, None),
        };
        if let Some(l) = lock {
            sqlx::query(l).execute(&mut *conn).await?;
        }
        let result = run_schema(self.dialect, &mut conn).await;
        if let Some(u) = unlock {
            sqlx::query(u).execute(&mut *conn).await?;
        }
        result?;
        self.schema_ready.store(true, Ordering::Release);
        Ok(())
    }

    pub(super) async fn ready(&self) -> Result<(), SqlError> {
        if self.create_schema && !self.schema_ready.load(Ordering::Acquire) {
            self.create_schema().await?;
        }
        Ok(())
    }

    /// Begins a write transaction. SQLite's plain BEGIN takes its write lock only at the
    /// first write, and a transaction that read first then fails at once ("database is
    /// locked") when another writer holds it; BEGIN IMMEDIATE waits for it (busy_timeout).
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, SqlError> {
        Ok(match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres | Dialect::Mysql => self.pool.begin().await?,
        })
    }

    /// Runs `f` within the configured timeout.
    pub async fn timed<T>(
        &self,
        f: impl Future<Output = Result<T, SqlError>>,
    ) -> Result<T, SqlError> {
        tokio::time::timeout(self.timeout, f)
            .await
            .map_err(|_| SqlError::Other(format!("no answer within {:?}", self.timeout)))?
    }
}

/// The schema file's statements on `conn`: those that run at every start (`CREATE ... IF
/// NOT EXISTS`), then, on SQLite below [`dialect::SQLITE_SCHEMA_VERSION`], the run-once
/// part, after which the version is recorded.
async fn run_schema(d: Dialect, conn: &mut sqlx::AnyConnection) -> Result<(), SqlError> {
    let (always, once) = dialect::schema_parts(d.schema());
    for st in always {
        sqlx::query(AssertSqlSafe(st)).execute(&mut *conn).await?;
    }
    if once.is_empty() || d != Dialect::Sqlite {
        return Ok(());
    }
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *conn)
        .await?;
    if version >= dialect::SQLITE_SCHEMA_VERSION {
        return Ok(());
    }
    for st in once {
        sqlx::query(AssertSqlSafe(st)).execute(&mut *conn).await?;
    }
    let set = format!("PRAGMA user_version = {}", dialect::SQLITE_SCHEMA_VERSION);
    sqlx::query(AssertSqlSafe(set)).execute(&mut *conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A disk that fills mid-transaction: SQLite rolls the transaction back itself, sqlx's
    /// ROLLBACK then fails and its count of open transactions stays at one. The pool's one
    /// connection must not stay unusable (it did: the SQL log stayed down after the disk had
    /// room again). `max_page_count` makes the database "full" without filling a disk.
    #[tokio::test]
    async fn a_full_disk_mid_transaction_does_not_poison_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SqlConfig {
            url: format!("sqlite:{}/t.sqlite", dir.path().display()),
            max_connections: 1,
            create_schema: false,
            ..SqlConfig::default()
        };
        let store = Store::new(&cfg).unwrap().unwrap();
        sqlx::query("CREATE TABLE t (b BLOB)")
            .execute(store.pool())
            .await
            .unwrap();
        let mut tx = store.begin().await.unwrap();
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "PRAGMA max_page_count = {pages}"
        )))
        .execute(&mut *tx)
        .await
        .unwrap();
        let full = sqlx::query("INSERT INTO t (b) VALUES (zeroblob(1000000))")
            .execute(&mut *tx)
            .await
            .unwrap_err();
        assert!(full.to_string().contains("full"), "{full}");
        drop(tx);
        let mut tx = store
            .begin()
            .await
            .expect("a usable connection after the failure");
        sqlx::query("PRAGMA max_page_count = 1000000")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t (b) VALUES (x'00')")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
}
