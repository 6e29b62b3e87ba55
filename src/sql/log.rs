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

/// An address as `maddr` keeps it: `email` in IDNA form and `domain` reversed
/// (`com.example`), both cut to their columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Maddr {
    pub email: String,
    pub domain: String,
}

impl Maddr {
    fn of(addr: &str) -> Maddr {
        let addr = fields::address(addr);
        Maddr {
            email: fields::cut(&addr, 255),
            domain: fields::cut(&dialect::reversed_domain(&addr), 255),
        }
    }
}

/// The `msgs` row's values as stored, made safe for their columns ([`fields`]).
#[derive(Debug, Clone)]
pub(super) struct StartRow {
    pub partition_tag: i64,
    pub mail_id: String,
    pub secret_id: String,
    pub am_id: String,
    pub time: i64,
    pub sender: Maddr,
    pub policy: String,
    pub client_addr: String,
    pub size: i64,
    pub originating: &'static str,
    pub message_id: String,
    pub from_addr: String,
    pub subject: String,
    pub host: String,
}

impl StartRow {
    fn of(m: &MsgStart<'_>, partition_tag: i64) -> StartRow {
        StartRow {
            partition_tag,
            mail_id: m.mail_id.to_string(),
            secret_id: m.secret_id.to_string(),
            am_id: fields::ascii(m.am_id, 20),
            time: m.time,
            sender: Maddr::of(m.sender),
            policy: fields::ascii(m.policy, 255),
            client_addr: fields::ascii(m.client_addr, 255),
            size: i64::try_from(m.size).unwrap_or(i64::MAX),
            originating: if m.originating { "Y" } else { "N" },
            message_id: fields::ascii(m.message_id, 255),
            from_addr: fields::decoded(m.from_addr, 255),
            subject: fields::decoded(m.subject, 255),
            host: fields::ascii(m.host, 255),
        }
    }
}

/// What the end of processing writes, made safe for the columns.
#[derive(Debug, Clone)]
pub(super) struct EndRows {
    pub partition_tag: i64,
    pub mail_id: String,
    pub content: String,
    pub quar_type: String,
    pub quar_loc: String,
    pub dsn_sent: String,
    pub spam_level: Option<f64>,
    pub rcpts: Vec<RcptValues>,
}

/// One `msgrcpt` row's values.
#[derive(Debug, Clone)]
pub(super) struct RcptValues {
    pub rseqnum: i64,
    pub addr: Maddr,
    pub is_local: &'static str,
    pub content: String,
    pub ds: String,
    pub bl: &'static str,
    pub wl: &'static str,
    pub bspam_level: Option<f64>,
    pub smtp_resp: String,
}

impl EndRows {
    fn of(mail_id: &str, end: &MsgEnd, rcpts: &[RcptRow], partition_tag: i64) -> EndRows {
        let flag = |on: bool, yes: &'static str| if on { yes } else { " " };
        EndRows {
            partition_tag,
            mail_id: mail_id.to_string(),
            content: end.content.to_string(),
            quar_type: end.quar_type.to_string(),
            quar_loc: fields::ascii(&end.quar_loc, 255),
            dsn_sent: end.dsn_sent.to_string(),
            spam_level: end.spam_level,
            rcpts: rcpts
                .iter()
                .enumerate()
                .map(|(seq, r)| RcptValues {
                    rseqnum: seq as i64 + 1,
                    addr: Maddr::of(&r.address),
                    is_local: flag(r.is_local, "Y"),
                    content: r.content.to_string(),
                    ds: r.ds.to_string(),
                    bl: flag(r.blacklisted, "Y"),
                    wl: flag(r.whitelisted, "Y"),
                    bspam_level: r.bspam_level,
                    smtp_resp: fields::ascii(&r.smtp_resp, 255),
                })
                .collect(),
        }
    }
}

/// The `msgs` insert; the `time_iso` value is the dialect's expression.
pub(super) fn insert_msgs(d: Dialect) -> String {
    d.sql(&format!(
        "INSERT INTO msgs (partition_tag, mail_id, secret_id, am_id, time_num, time_iso, \
         sid, policy, client_addr, size, originating, quar_type, quar_loc, message_id, \
         from_addr, subject, host) VALUES (?, ?, ?, ?, ?, {}, ?, ?, ?, ?, ?, ' ', '', ?, ?, ?, ?)",
        d.time_iso_expr()
    ))
}

pub(super) const UPDATE_MSGS: &str = "UPDATE msgs SET content = ?, quar_type = ?, quar_loc = ?, \
     dsn_sent = ?, spam_level = ? WHERE partition_tag = ? AND mail_id = ?";

pub(super) const INSERT_MSGRCPT: &str = "INSERT INTO msgrcpt (partition_tag, mail_id, rseqnum, \
     rid, is_local, content, ds, rs, bl, wl, bspam_level, smtp_resp) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ' ', ?, ?, ?, ?)";

pub(super) const SELECT_MADDR: &str = "SELECT id FROM maddr WHERE partition_tag = ? AND email = ?";

impl Store {
    /// The `maddr` id of `addr`, inserted when new.
    async fn maddr_id(
        &self,
        conn: &mut sqlx::AnyConnection,
        addr: &Maddr,
    ) -> Result<i64, SqlError> {
        if let Some(id) = self
            .maddr_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&addr.email).copied())
        {
            return Ok(id);
        }
        let id = self.maddr_lookup(conn, addr).await?;
        if let Ok(mut c) = self.maddr_cache.lock() {
            if c.len() >= MADDR_CACHE {
                c.clear();
            }
            c.insert(addr.email.clone(), id);
        }
        Ok(id)
    }

    async fn maddr_lookup(
        &self,
        conn: &mut sqlx::AnyConnection,
        addr: &Maddr,
    ) -> Result<i64, SqlError> {
        let select = self.dialect.sql(SELECT_MADDR);
        let found: Option<AnyRow> = sqlx::query(AssertSqlSafe(select.clone()))
            .bind(self.partition_tag)
            .bind_bin(self.dialect, &addr.email)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = found {
            return Ok(row.try_get::<i64, _>(0)?);
        }
        sqlx::query(AssertSqlSafe(self.dialect.sql(self.dialect.insert_maddr())))
            .bind(self.partition_tag)
            .bind_bin(self.dialect, &addr.email)
            .bind(addr.domain.clone())
            .execute(&mut *conn)
            .await?;
        let row: AnyRow = sqlx::query(AssertSqlSafe(select))
            .bind(self.partition_tag)
            .bind_bin(self.dialect, &addr.email)
            .fetch_one(&mut *conn)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Writes the `msgs` row as processing starts (`content` NULL).
    pub async fn log_start(&self, m: &MsgStart<'_>) -> Result<(), SqlError> {
        let row = StartRow::of(m, self.partition_tag);
        self.timed(async move {
            self.ready().await?;
            if let Some(w) = &self.writer {
                return w.start(row).await;
            }
            // One transaction: on SQLite every statement outside one is a sync to disk.
            let mut conn = self.begin().await?;
            let sid = self.maddr_id(&mut conn, &row.sender).await?;
            let q = sqlx::query(AssertSqlSafe(insert_msgs(self.dialect)))
                .bind(row.partition_tag)
                .bind_bin(self.dialect, &row.mail_id)
                .bind_bin(self.dialect, &row.secret_id)
                .bind(row.am_id)
                .bind(row.time);
            let q = match self.dialect {
                Dialect::Postgres => q.bind(row.time),
                Dialect::Sqlite | Dialect::Mysql => q.bind(dialect::time_iso(row.time)),
            };
            q.bind(sid)
                .bind(row.policy)
                .bind(row.client_addr)
                .bind(row.size)
                .bind(row.originating)
                .bind(row.message_id)
                .bind(row.from_addr)
                .bind(row.subject)
                .bind(row.host)
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
        let rows = EndRows::of(mail_id, end, rcpts, self.partition_tag);
        self.timed(async move {
            if let Some(w) = &self.writer {
                return w.end(rows).await;
            }
            let mut tx = self.begin().await?;
            sqlx::query(AssertSqlSafe(self.dialect.sql(UPDATE_MSGS)))
                .bind(rows.content)
                .bind(rows.quar_type)
                .bind_bin(self.dialect, &rows.quar_loc)
                .bind(rows.dsn_sent)
                .bind(rows.spam_level)
                .bind(rows.partition_tag)
                .bind_bin(self.dialect, &rows.mail_id)
                .execute(&mut *tx)
                .await?;
            for r in rows.rcpts {
                let rid = self.maddr_id(&mut tx, &r.addr).await?;
                sqlx::query(AssertSqlSafe(self.dialect.sql(INSERT_MSGRCPT)))
                    .bind(rows.partition_tag)
                    .bind_bin(self.dialect, &rows.mail_id)
                    .bind(r.rseqnum)
                    .bind(rid)
                    .bind(r.is_local)
                    .bind(r.content)
                    .bind(r.ds)
                    .bind(r.bl)
                    .bind(r.wl)
                    .bind(r.bspam_level)
                    .bind(r.smtp_resp)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }
}
