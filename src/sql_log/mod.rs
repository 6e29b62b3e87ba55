//! The SQL log in amavisd-new's tables (`msgs`, `msgrcpt`, `maddr`), on SQLite (the embedded
//! default), PostgreSQL or MariaDB/MySQL through one code path (sqlx `Any`), with the SQL that
//! differs per database in [`dialect`].
//!
//! As in amavisd-new, the `msgs` row is written when processing starts, with `content` NULL,
//! and completed at the end together with one `msgrcpt` row per recipient. A message whose
//! start row cannot be written waits (451): a site that logs to SQL relies on every message
//! being there. The schema is created on first use when `sql.create_schema` is on.

pub mod dialect;
pub mod fields;
pub mod lookup;

pub use dialect::Dialect;
pub use lookup::SqlRecipient;

use dialect::BindBin;
use serde::Deserialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Row};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The `[sql]` table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SqlConfig {
    /// `sqlite:var/amavisd.sqlite`, `postgres://user@127.0.0.1/db`,
    /// `mysql://user@127.0.0.1/db`; empty: no SQL log (and no `sql:` quarantine).
    pub url: String,
    /// Create the tables on first use when they are missing.
    pub create_schema: bool,
    /// amavisd-new's `partition_tag` for the rows we write (0: none).
    pub partition_tag: i64,
    /// Connections in the pool.
    pub max_connections: u32,
    /// Seconds to wait for a connection or a statement before the message waits (451).
    pub timeout: u64,
    /// Read per-recipient settings from `users`/`policy` and white/blacklists from
    /// `wblist`/`mailaddr` (amavisd-new's `@lookup_sql_dsn`).
    pub lookups: bool,
}

impl Default for SqlConfig {
    fn default() -> Self {
        SqlConfig {
            url: "sqlite:var/amavisd.sqlite".into(),
            create_schema: true,
            partition_tag: 0,
            max_connections: 8,
            timeout: 10,
            lookups: false,
        }
    }
}

impl SqlConfig {
    /// Refuses what cannot work; the error is `(key, reason)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if !self.url.is_empty() && Dialect::of(&self.url).is_none() {
            return Err((
                "url".into(),
                format!("{:?}: use sqlite:, postgres:// or mysql://", self.url),
            ));
        }
        if self.max_connections == 0 || self.timeout == 0 {
            return Err((
                "max_connections".into(),
                "max_connections and timeout must be greater than 0".into(),
            ));
        }
        Ok(())
    }
}

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("SQL: {0}")]
    Db(#[from] sqlx::Error),
    #[error("SQL: {0}")]
    Other(String),
}

impl SqlError {
    /// Temporary, every variant: a database that is down, locked, slow or missing a table
    /// comes back or is fixed, and a site that logs to SQL expects every message there, so
    /// the message waits (451, as amavisd-new). What the same message would meet at every
    /// try, a value the database refuses, cannot happen: [`fields`] makes every value from
    /// the message safe for its column first.
    pub fn is_temporary(&self) -> bool {
        match self {
            SqlError::Db(_) | SqlError::Other(_) => true,
        }
    }
}

/// The `msgs` row as processing starts.
#[derive(Debug, Clone)]
pub struct MsgStart<'a> {
    pub mail_id: &'a str,
    pub secret_id: &'a str,
    pub am_id: &'a str,
    /// Seconds since the epoch when the message arrived.
    pub time: i64,
    pub sender: &'a str,
    /// The policy bank path.
    pub policy: &'a str,
    pub client_addr: &'a str,
    pub size: u64,
    pub originating: bool,
    pub message_id: &'a str,
    pub from_addr: &'a str,
    pub subject: &'a str,
    pub host: &'a str,
}

/// What the end of processing adds to `msgs`.
#[derive(Debug, Clone)]
pub struct MsgEnd {
    /// The category letter (`V`, `B`, `U`, `S`, `Y`, `H`, `O`, `C`).
    pub content: char,
    /// `F` file, `Z` gzipped file, `Q` SQL, ` ` none.
    pub quar_type: char,
    pub quar_loc: String,
    /// `Y` a DSN went out, `N` none, `q` one was suppressed.
    pub dsn_sent: char,
    pub spam_level: Option<f64>,
}

/// One `msgrcpt` row.
#[derive(Debug, Clone)]
pub struct RcptRow {
    pub address: String,
    pub is_local: bool,
    pub content: char,
    /// `P` passed, `R` rejected, `B` bounced, `D` discarded, `T` tempfailed.
    pub ds: char,
    pub bspam_level: Option<f64>,
    pub smtp_resp: String,
    /// The sender is black- or whitelisted for this recipient.
    pub blacklisted: bool,
    pub whitelisted: bool,
}

/// A connection pool and what it needs to know about its database.
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    partition_tag: i64,
    schema_ready: AtomicBool,
    create_schema: bool,
    timeout: Duration,
    /// maddr ids already known: most mail comes from and goes to addresses seen before, and
    /// each lookup saved is a round trip (measured: the SQL log cost a third of throughput).
    /// Ids never change once assigned, so the cache cannot go stale; it is cleared when full.
    maddr_cache: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

/// Entries in the maddr cache before it is cleared.
const MADDR_CACHE: usize = 100_000;

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
            .max_connections(cfg.max_connections)
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
        let pool = opts.connect_lazy(&url)?;
        Ok(Some(Store {
            pool,
            dialect,
            partition_tag: cfg.partition_tag,
            schema_ready: AtomicBool::new(!cfg.create_schema),
            create_schema: cfg.create_schema,
            timeout,
            maddr_cache: std::sync::Mutex::new(std::collections::HashMap::new()),
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
        let mut result: Result<(), SqlError> = Ok(());
        for st in dialect::statements(self.dialect.schema()) {
            if let Err(e) = sqlx::query(AssertSqlSafe(st)).execute(&mut *conn).await {
                result = Err(e.into());
                break;
            }
        }
        if let Some(u) = unlock {
            sqlx::query(u).execute(&mut *conn).await?;
        }
        result?;
        self.schema_ready.store(true, Ordering::Release);
        Ok(())
    }

    async fn ready(&self) -> Result<(), SqlError> {
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

    /// The `maddr` id of `addr`, inserted when new.
    async fn maddr_id(&self, conn: &mut sqlx::AnyConnection, addr: &str) -> Result<i64, SqlError> {
        if let Some(id) = self
            .maddr_cache
            .lock()
            .ok()
            .and_then(|c| c.get(addr).copied())
        {
            return Ok(id);
        }
        let id = self.maddr_lookup(conn, addr).await?;
        if let Ok(mut c) = self.maddr_cache.lock() {
            if c.len() >= MADDR_CACHE {
                c.clear();
            }
            c.insert(addr.to_string(), id);
        }
        Ok(id)
    }

    async fn maddr_lookup(
        &self,
        conn: &mut sqlx::AnyConnection,
        addr: &str,
    ) -> Result<i64, SqlError> {
        let addr = fields::address(addr);
        let email = fields::cut(&addr, 255);
        let select = self
            .dialect
            .sql("SELECT id FROM maddr WHERE partition_tag = ? AND email = ?");
        let found: Option<AnyRow> = sqlx::query(AssertSqlSafe(select.clone()))
            .bind(self.partition_tag)
            .bind_bin(self.dialect, &email)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = found {
            return Ok(row.try_get::<i64, _>(0)?);
        }
        sqlx::query(AssertSqlSafe(self.dialect.sql(self.dialect.insert_maddr())))
            .bind(self.partition_tag)
            .bind_bin(self.dialect, &email)
            .bind(fields::cut(&dialect::reversed_domain(&addr), 255))
            .execute(&mut *conn)
            .await?;
        let row: AnyRow = sqlx::query(AssertSqlSafe(select))
            .bind(self.partition_tag)
            .bind_bin(self.dialect, &email)
            .fetch_one(&mut *conn)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Writes the `msgs` row as processing starts (`content` NULL).
    pub async fn log_start(&self, m: &MsgStart<'_>) -> Result<(), SqlError> {
        self.timed(async {
            self.ready().await?;
            // One transaction: on SQLite every statement outside one is a sync to disk.
            let mut conn = self.begin().await?;
            let sid = self.maddr_id(&mut conn, m.sender).await?;
            let sql = format!(
                "INSERT INTO msgs (partition_tag, mail_id, secret_id, am_id, time_num, time_iso, \
                 sid, policy, client_addr, size, originating, quar_type, quar_loc, message_id, \
                 from_addr, subject, host) VALUES (?, ?, ?, ?, ?, {}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self.dialect.time_iso_expr()
            );
            let q = sqlx::query(AssertSqlSafe(self.dialect.sql(&sql)))
                .bind(self.partition_tag)
                .bind_bin(self.dialect, m.mail_id)
                .bind_bin(self.dialect, m.secret_id)
                .bind(fields::ascii(m.am_id, 20))
                .bind(m.time);
            let q = match self.dialect {
                Dialect::Postgres => q.bind(m.time),
                Dialect::Sqlite | Dialect::Mysql => q.bind(dialect::time_iso(m.time)),
            };
            q.bind(sid)
                .bind(fields::ascii(m.policy, 255))
                .bind(fields::ascii(m.client_addr, 255))
                .bind(i64::try_from(m.size).unwrap_or(i64::MAX))
                .bind(if m.originating { "Y" } else { "N" })
                .bind(" ")
                .bind_bin(self.dialect, "")
                .bind(fields::ascii(m.message_id, 255))
                .bind(fields::decoded(m.from_addr, 255))
                .bind(fields::decoded(m.subject, 255))
                .bind(fields::ascii(m.host, 255))
                .execute(&mut *conn)
                .await?;
            conn.commit().await?;
            Ok(())
        })
        .await
    }

    /// Completes the `msgs` row and writes the `msgrcpt` rows, in one transaction.
    pub async fn log_end(
        &self,
        mail_id: &str,
        end: &MsgEnd,
        rcpts: &[RcptRow],
    ) -> Result<(), SqlError> {
        self.timed(async {
            let mut tx = self.begin().await?;
            sqlx::query(AssertSqlSafe(self.dialect.sql(
                "UPDATE msgs SET content = ?, quar_type = ?, quar_loc = ?, dsn_sent = ?, \
                 spam_level = ? WHERE partition_tag = ? AND mail_id = ?",
            )))
            .bind(end.content.to_string())
            .bind(end.quar_type.to_string())
            .bind_bin(self.dialect, &fields::ascii(&end.quar_loc, 255))
            .bind(end.dsn_sent.to_string())
            .bind(end.spam_level)
            .bind(self.partition_tag)
            .bind_bin(self.dialect, mail_id)
            .execute(&mut *tx)
            .await?;
            for (seq, r) in rcpts.iter().enumerate() {
                let rid = self.maddr_id(&mut tx, &r.address).await?;
                sqlx::query(AssertSqlSafe(self.dialect.sql(
                    "INSERT INTO msgrcpt (partition_tag, mail_id, rseqnum, rid, is_local, content, \
                     ds, rs, bl, wl, bspam_level, smtp_resp) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ' ', ?, ?, ?, ?)",
                )))
                .bind(self.partition_tag)
                .bind_bin(self.dialect, mail_id)
                .bind(seq as i64 + 1)
                .bind(rid)
                .bind(if r.is_local { "Y" } else { "N" })
                .bind(r.content.to_string())
                .bind(r.ds.to_string())
                .bind(if r.blacklisted { "Y" } else { " " })
                .bind(if r.whitelisted { "Y" } else { " " })
                .bind(r.bspam_level)
                .bind(fields::ascii(&r.smtp_resp, 255))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }
}
