//! The database layer: amavisd-new's tables on SQLite (the embedded default), PostgreSQL or
//! MariaDB/MySQL through one code path (sqlx `Any`).
//!
//! - [`store`]: the connection pool, the schema, transactions within a timeout.
//! - [`log`]: the SQL log (`msgs`, `msgrcpt`, `maddr`). As in amavisd-new, the `msgs` row is
//!   written when processing starts, with `content` NULL, and completed at the end together
//!   with one `msgrcpt` row per recipient. A message whose start row cannot be written waits
//!   (451): a site that logs to SQL relies on every message being there.
//! - [`policy`]: per-recipient settings and white/blacklists (`users`, `policy`, `wblist`,
//!   `mailaddr`), which `policy_bank` reads.
//! - `sqlite_writer`: on SQLite, the log's one writer thread, many messages to a transaction.
//! - [`dialect`]: the SQL that differs per database; [`fields`]: values made safe to store.
//!
//! The quarantine (`quarantine` table) and the Bayes store use the same [`Store`].

pub mod dialect;
pub mod fields;
mod interrupted;
pub mod log;
pub mod policy;
mod sqlite_writer;
pub mod store;

pub use dialect::Dialect;
pub use interrupted::Interrupted;
pub use log::{MsgEnd, MsgStart, RcptRow};
pub use policy::SqlRecipient;
pub use store::Store;

use serde::Deserialize;

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
    /// Connections in the pool; 0: by database ([`SqlConfig::pool_size`]).
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
            max_connections: 0,
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
        if self.timeout == 0 {
            return Err(("timeout".into(), "must be greater than 0".into()));
        }
        Ok(())
    }

    /// Connections in the pool: `max_connections`, or when 0, 2 for SQLite and 8 for a
    /// server. SQLite writes one transaction at a time, and each connection keeps its own
    /// page cache (up to 2 MiB) and worker thread: at 16 sessions 2 connections gave the
    /// same rate as 8 with half the p99 latency, and 64 sessions of 1 MB messages peaked at
    /// 152-181 MiB instead of 195-224.
    pub fn pool_size(&self) -> u32 {
        match (self.max_connections, Dialect::of(&self.url)) {
            (0, Some(Dialect::Sqlite)) => 2,
            (0, _) => 8,
            (n, _) => n,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_is_sized_by_database_unless_set() {
        let mut c = SqlConfig::default();
        assert_eq!(c.pool_size(), 2, "SQLite");
        c.url = "postgres://postgres@127.0.0.1/test".into();
        assert_eq!(c.pool_size(), 8);
        c.max_connections = 3;
        assert_eq!(c.pool_size(), 3);
        assert!(c.validate().is_ok());
        c.timeout = 0;
        assert_eq!(c.validate().unwrap_err().0, "timeout");
    }
}
