//! `msgs` rows a killed process began and never completed. As in amavisd-new, a row is
//! written with `content` NULL when processing starts and completed at the end; a process
//! killed in between leaves it so. The client got no reply and sends the message again
//! (under a new mail_id), so such a row is a record of the attempt, and amavisd-new's
//! documented maintenance deletes these rows after an hour. One case matters more: a kill
//! after the quarantine copy was written but before the row was completed leaves a copy
//! that no row points at, which nobody can find or release. [`Store::interrupted`] finds
//! the rows, [`Store::record_quarantine`] points one at its copy, [`Store::mark_interrupted`]
//! keeps the next start from finding them again.

use super::dialect::BindBin;
use super::{SqlError, Store};
use sqlx::{AssertSqlSafe, Row};

/// How far back a start looks for interrupted rows, in seconds. Within this the search uses
/// the `time_num` index; without it, it read the whole `msgs` table at every start (1.1 s
/// for a 110 MB log, and a site keeps months). A row older than this is older than any
/// restart after the kill that left it, and amavisd-new's maintenance deletes such rows.
const INTERRUPTED_LOOKBACK: i64 = 7 * 24 * 3600;

/// A row begun and never completed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interrupted {
    pub mail_id: String,
    /// The log id of the process that began it (`PID-NN`).
    pub am_id: String,
}

impl Store {
    /// The rows this host (`msgs.host`) began up to second `up_to` (unix time), never
    /// completed and not yet looked at by an earlier start ([`Store::mark_interrupted`]).
    /// The caller leaves out its own rows of that second (by `am_id`): seconds are all the
    /// table keeps, and a restart often comes within the second of the kill. Rows of other
    /// hosts sharing the database are theirs to repair: they may be in flight.
    pub async fn interrupted(&self, host: &str, up_to: i64) -> Result<Vec<Interrupted>, SqlError> {
        let d = self.dialect();
        let sql = d.sql(
            // `+partition_tag`: not an index column here, or SQLite's planner takes the
            // primary key's prefix, which every row of the partition matches.
            "SELECT mail_id, am_id FROM msgs WHERE +partition_tag = ? AND content IS NULL \
             AND host = ? AND time_num <= ? AND time_num >= ? AND dsn_sent IS NULL",
        );
        let rows = self
            .timed(async {
                self.ready().await?;
                Ok(sqlx::query(AssertSqlSafe(sql))
                    .bind(self.partition_tag)
                    .bind(super::fields::ascii(host, 255))
                    .bind(up_to)
                    .bind(up_to.saturating_sub(INTERRUPTED_LOOKBACK))
                    .fetch_all(self.pool())
                    .await?)
            })
            .await?;
        Ok(rows
            .iter()
            .map(|r| Interrupted {
                mail_id: String::from_utf8_lossy(&super::dialect::bin_column(r, 0)).into_owned(),
                am_id: r.try_get::<String, _>(1).unwrap_or_default(),
            })
            .collect())
    }

    /// Whether the SQL quarantine (`quarantine` table) holds a copy of `mail_id`.
    pub async fn in_sql_quarantine(&self, mail_id: &str) -> Result<bool, SqlError> {
        let d = self.dialect();
        let sql = d.sql("SELECT COUNT(*) FROM quarantine WHERE partition_tag = ? AND mail_id = ?");
        let row = self
            .timed(async {
                Ok(sqlx::query(AssertSqlSafe(sql))
                    .bind(self.partition_tag)
                    .bind_bin(d, mail_id)
                    .fetch_one(self.pool())
                    .await?)
            })
            .await?;
        Ok(row.try_get::<i64, _>(0).unwrap_or(0) > 0)
    }

    /// Points an interrupted row at its quarantined copy (`quar_type`, `quar_loc`) and, when
    /// known, records its content category, so that the copy can be found and released.
    pub async fn record_quarantine(
        &self,
        mail_id: &str,
        content: Option<char>,
        quar_type: char,
        quar_loc: &str,
    ) -> Result<(), SqlError> {
        let d = self.dialect();
        let sql = d.sql(
            "UPDATE msgs SET quar_type = ?, quar_loc = ?, content = COALESCE(?, content) \
             WHERE partition_tag = ? AND mail_id = ? AND content IS NULL",
        );
        self.timed(async {
            sqlx::query(AssertSqlSafe(sql))
                .bind(quar_type.to_string())
                .bind_bin(d, &super::fields::ascii(quar_loc, 255))
                .bind(content.map(|c| c.to_string()))
                .bind(self.partition_tag)
                .bind_bin(d, mail_id)
                .execute(self.pool())
                .await?;
            Ok(())
        })
        .await
    }

    /// Marks an interrupted row as looked at, so that later starts do not find and report
    /// it again: `dsn_sent` becomes `N` (true: the interrupted attempt sent no DSN; a
    /// completed row always has it set), and `content` stays NULL, so amavisd-new's
    /// maintenance still deletes it.
    pub async fn mark_interrupted(&self, mail_id: &str) -> Result<(), SqlError> {
        let d = self.dialect();
        let sql = d.sql(
            "UPDATE msgs SET dsn_sent = 'N' WHERE partition_tag = ? AND mail_id = ? \
             AND dsn_sent IS NULL",
        );
        self.timed(async {
            sqlx::query(AssertSqlSafe(sql))
                .bind(self.partition_tag)
                .bind_bin(d, mail_id)
                .execute(self.pool())
                .await?;
            Ok(())
        })
        .await
    }
}
