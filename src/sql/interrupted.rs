//! `msgs` rows a killed process began and never completed. As in amavisd-new, a row is
//! written with `content` NULL when processing starts and completed at the end; a process
//! killed in between leaves it so. The client got no reply and sends the message again
//! (under a new mail_id), so such a row is a record of the attempt, and amavisd-new's
//! documented maintenance deletes these rows after an hour. One case matters more: a kill
//! after the quarantine copy was written but before the row was completed leaves a copy
//! that no row points at, which nobody can find or release. [`Store::interrupted`] finds
//! the rows, [`Store::record_quarantine`] points one at its copy.

use super::dialect::BindBin;
use super::{SqlError, Store};
use sqlx::{AssertSqlSafe, Row};

impl Store {
    /// The mail_ids of rows this host (`msgs.host`) began before `before` (unix time) and
    /// never completed, whose quarantine location is not recorded. Rows of other hosts
    /// sharing the database are theirs to repair: they may be in flight.
    pub async fn interrupted(&self, host: &str, before: i64) -> Result<Vec<String>, SqlError> {
        let d = self.dialect();
        let sql = d.sql(
            "SELECT mail_id FROM msgs WHERE partition_tag = ? AND content IS NULL AND host = ? \
             AND time_num < ? AND (quar_type IS NULL OR quar_type = ' ' OR quar_type = '')",
        );
        let rows = self
            .timed(async {
                self.ready().await?;
                Ok(sqlx::query(AssertSqlSafe(sql))
                    .bind(self.partition_tag)
                    .bind(super::fields::ascii(host, 255))
                    .bind(before)
                    .fetch_all(self.pool())
                    .await?)
            })
            .await?;
        Ok(rows
            .iter()
            .map(|r| String::from_utf8_lossy(&super::dialect::bin_column(r, 0)).into_owned())
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
}
