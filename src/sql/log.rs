//! The SQL log: amavisd-new's `msgs` row when processing starts, completed with one
//! `msgrcpt` row per recipient when the message's fate is settled; addresses in `maddr`.

use super::dialect::{self, BindBin};
use super::store::MADDR_CACHE;
use super::{Dialect, SqlError, Store, fields};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

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

impl Store {
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
