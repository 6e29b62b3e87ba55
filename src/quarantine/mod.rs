//! The quarantine, as amavisd-new keeps it: a blocked message is stored whole, behind
//! `X-Envelope-From`, `X-Envelope-To`, `X-Envelope-To-Blocked` and `X-Quarantine-ID` fields,
//! with LF line ends, either in a file under the quarantine folder (`virus-%m`,
//! `spam-%m.gz` ...; `quar_type` F or Z) or in the SQL `quarantine` table in 16 KB chunks
//! (`quar_type` Q). Nothing is answered 250 before the copy is durable: the file is fsync'd
//! and renamed into place (and its folder fsync'd), the SQL transaction committed.

use crate::message::Spool;
use crate::message::line_ends::to_lf;
use crate::sql::dialect::BindBin;
use crate::sql::{SqlError, Store};
use serde::Deserialize;
use sqlx::AssertSqlSafe;
use std::io::Write;
use std::path::{Path, PathBuf};

mod orphans;
pub use orphans::find_copies;

/// The `[quarantine]` table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QuarantineConfig {
    /// amavisd-new's `$QUARANTINEDIR`, for `local:` methods.
    pub directory: PathBuf,
    /// `$quarantine_subdir_levels`: 0, or 1 to spread files over subfolders named by the
    /// first character of the mail_id.
    pub subdir_levels: u8,
}

impl Default for QuarantineConfig {
    fn default() -> Self {
        QuarantineConfig {
            directory: PathBuf::from("var/quarantine"),
            subdir_levels: 0,
        }
    }
}

/// amavisd-new's `$sql_quarantine_chunksize_max`.
pub const SQL_CHUNK: usize = 16384;

/// Where a copy went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// `F` file, `Z` gzipped file, `Q` SQL.
    pub quar_type: char,
    /// The file path relative to the quarantine folder, or the mail_id for SQL.
    pub quar_loc: String,
}

/// Why a copy could not be stored: the message then waits (451).
#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("quarantine {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("quarantine: {0}")]
    Sql(#[from] SqlError),
    #[error("quarantine: cannot read the spooled message: {0}")]
    Spool(std::io::Error),
    #[error("quarantine method {0:?} is not `local:NAME` or `sql:`")]
    Method(String),
}

impl QuarantineError {
    /// Every variant is temporary: a full disk, a database that is down and a method that a
    /// policy names wrongly (the configuration is fixed) all pass, and a message must not be
    /// answered 250 before its blocked copies are stored, so it waits (451) meanwhile.
    pub fn is_temporary(&self) -> bool {
        match self {
            QuarantineError::File { .. }
            | QuarantineError::Sql(_)
            | QuarantineError::Spool(_)
            | QuarantineError::Method(_) => true,
        }
    }
}

/// A method as written in policy: `local:virus-%m`, `local:spam-%m.gz`, `sql:`, or empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    None,
    Local(String),
    Sql,
}

impl Method {
    /// Parses a method; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Method, String> {
        if s.is_empty() {
            return Ok(Method::None);
        }
        if s == "sql:" || s.starts_with("sql:") {
            return Ok(Method::Sql);
        }
        match s.strip_prefix("local:") {
            Some(name) if !name.is_empty() && !name.contains('/') && !name.contains("..") => {
                Ok(Method::Local(name.to_string()))
            }
            _ => Err(format!(
                "{s:?}: use \"local:NAME\" (%m is the mail_id; .gz compresses) or \"sql:\""
            )),
        }
    }
}

/// The envelope lines amavisd-new puts in front of a quarantined message.
pub fn envelope_header(sender: &str, rcpts: &[&str], blocked: &[&str], mail_id: &str) -> Vec<u8> {
    let list = |v: &[&str]| {
        v.iter()
            .map(|a| format!("<{a}>"))
            .collect::<Vec<_>>()
            .join(",\n  ")
    };
    let clean = |s: String| {
        s.chars()
            .map(|c| if c == '\r' || c == '\0' { ' ' } else { c })
            .collect::<String>()
    };
    let mut h = format!("X-Envelope-From: <{}>\n", clean(sender.to_string()));
    h.push_str(&clean(format!("X-Envelope-To: {}\n", list(rcpts))));
    h.push_str(&clean(format!(
        "X-Envelope-To-Blocked: {}\n",
        list(blocked)
    )));
    h.push_str(&format!("X-Quarantine-ID: <{mail_id}>\n"));
    h.into_bytes()
}

fn file_err(path: &Path) -> impl Fn(std::io::Error) -> QuarantineError + '_ {
    move |source| QuarantineError::File {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `dir/name` durably: a temporary file in the same folder, fsync'd, then
/// renamed into place and the folder fsync'd, so that a crash leaves the whole file or none
/// (and a temporary file the next start sweeps away: `message::temp`).
fn write_durably(dir: &Path, name: &str, bytes: &[u8], gzip: bool) -> Result<(), QuarantineError> {
    std::fs::create_dir_all(dir).map_err(file_err(dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&crate::message::temp::hidden_prefix("quar"))
        .tempfile_in(dir)
        .map_err(file_err(dir))?;
    if gzip {
        let mut gz =
            flate2::write::GzEncoder::new(tmp.as_file_mut(), flate2::Compression::default());
        gz.write_all(bytes).map_err(file_err(dir))?;
        gz.finish().map_err(file_err(dir))?;
    } else {
        tmp.write_all(bytes).map_err(file_err(dir))?;
    }
    tmp.as_file().sync_all().map_err(file_err(dir))?;
    let path = dir.join(name);
    tmp.persist(&path).map_err(|e| QuarantineError::File {
        path: path.clone(),
        source: e.error,
    })?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(file_err(dir))?;
    Ok(())
}

/// Stores the message. `head` is [`envelope_header`]; the spool is read whole.
pub async fn store(
    method: &Method,
    cfg: &QuarantineConfig,
    sql: Option<&Store>,
    mail_id: &str,
    head: Vec<u8>,
    spool: &Spool,
) -> Result<Option<Stored>, QuarantineError> {
    match method {
        Method::None => Ok(None),
        Method::Local(pattern) => {
            let name = pattern.replace("%m", mail_id);
            let gzip = name.ends_with(".gz");
            let (dir, rel) = if cfg.subdir_levels > 0 {
                let sub: String = mail_id.chars().take(1).collect();
                (cfg.directory.join(&sub), format!("{sub}/{name}"))
            } else {
                (cfg.directory.clone(), name.clone())
            };
            let raw = spool_bytes(spool).await?;
            let name2 = name.clone();
            tokio::task::spawn_blocking(move || {
                let mut all = head;
                all.extend_from_slice(&to_lf(&raw));
                write_durably(&dir, &name2, &all, gzip)
            })
            .await
            .map_err(|e| {
                QuarantineError::Spool(std::io::Error::other(crate::catch_panic::join_error_text(
                    e,
                )))
            })??;
            Ok(Some(Stored {
                quar_type: if gzip { 'Z' } else { 'F' },
                quar_loc: rel,
            }))
        }
        Method::Sql => {
            let Some(store) = sql else {
                return Err(QuarantineError::Method(
                    "sql: (no [sql] url is configured)".into(),
                ));
            };
            let raw = spool_bytes(spool).await?;
            let mut all = head;
            all.extend_from_slice(&to_lf(&raw));
            sql_put(store, mail_id, &all).await?;
            Ok(Some(Stored {
                quar_type: 'Q',
                quar_loc: mail_id.to_string(),
            }))
        }
    }
}

async fn spool_bytes(spool: &Spool) -> Result<Vec<u8>, QuarantineError> {
    use tokio::io::AsyncReadExt;
    let mut v = Vec::with_capacity(spool.len() as usize);
    spool
        .reader()
        .await
        .map_err(QuarantineError::Spool)?
        .read_to_end(&mut v)
        .await
        .map_err(QuarantineError::Spool)?;
    Ok(v)
}

async fn sql_put(store: &Store, mail_id: &str, all: &[u8]) -> Result<(), SqlError> {
    store
        .timed(async {
            let d = store.dialect();
            let mut tx = store.begin().await?;
            for (i, chunk) in all.chunks(SQL_CHUNK).enumerate() {
                sqlx::query(AssertSqlSafe(d.sql(
                    "INSERT INTO quarantine (partition_tag, mail_id, chunk_ind, mail_text) \
                     VALUES (?, ?, ?, ?)",
                )))
                .bind(store.partition_tag())
                .bind_bin(d, mail_id)
                .bind(i as i64 + 1)
                .bind(chunk.to_vec())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
}

/// Reads a quarantined message back: from SQL (`Q`), or from a file (`F`, `Z`) relative to
/// the quarantine folder. `None` when it is not there (purged, or never stored).
pub async fn fetch(
    quar_type: char,
    quar_loc: &str,
    mail_id: &str,
    partition_tag: i64,
    cfg: &QuarantineConfig,
    sql: Option<&Store>,
) -> Result<Option<Vec<u8>>, QuarantineError> {
    match quar_type {
        'Q' => {
            let Some(store) = sql else {
                return Err(QuarantineError::Method("sql: (no [sql] url)".into()));
            };
            let rows = store
                .timed(async {
                    let sql = store.dialect().sql(
                        "SELECT mail_text FROM quarantine WHERE partition_tag = ? AND mail_id = ? \
                         ORDER BY chunk_ind",
                    );
                    Ok(sqlx::query(AssertSqlSafe(sql))
                        .bind(partition_tag)
                        .bind_bin(store.dialect(), mail_id)
                        .fetch_all(store.pool())
                        .await?)
                })
                .await?;
            if rows.is_empty() {
                return Ok(None);
            }
            let mut all = Vec::new();
            for r in rows {
                use sqlx::Row;
                let chunk: Vec<u8> = r.try_get(0).map_err(SqlError::from)?;
                all.extend_from_slice(&chunk);
            }
            Ok(Some(all))
        }
        'F' | 'Z' => {
            // A name from a request: only a plain relative path inside the folder.
            let rel = Path::new(quar_loc);
            if rel.is_absolute()
                || rel
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Ok(None);
            }
            let path = cfg.directory.join(rel);
            let gz = quar_type == 'Z' || quar_loc.ends_with(".gz");
            tokio::task::spawn_blocking(move || match std::fs::read(&path) {
                Ok(bytes) if gz => {
                    let mut out = Vec::new();
                    use std::io::Read;
                    flate2::read::MultiGzDecoder::new(&bytes[..])
                        .read_to_end(&mut out)
                        .map_err(file_err(&path))?;
                    Ok(Some(out))
                }
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(file_err(&path)(e)),
            })
            .await
            .map_err(|e| {
                QuarantineError::Spool(std::io::Error::other(crate::catch_panic::join_error_text(
                    e,
                )))
            })?
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods() {
        assert_eq!(Method::parse(""), Ok(Method::None));
        assert_eq!(Method::parse("sql:"), Ok(Method::Sql));
        assert_eq!(
            Method::parse("local:spam-%m.gz"),
            Ok(Method::Local("spam-%m.gz".into()))
        );
        assert!(Method::parse("local:../etc/passwd").is_err());
        assert!(Method::parse("bsmtp:x").is_err());
    }

    #[test]
    fn envelope_lines() {
        let h = envelope_header("s@x", &["a@y", "b@y"], &["b@y"], "abcDEF123456");
        assert_eq!(
            String::from_utf8(h).unwrap(),
            "X-Envelope-From: <s@x>\nX-Envelope-To: <a@y>,\n  <b@y>\nX-Envelope-To-Blocked: <b@y>\nX-Quarantine-ID: <abcDEF123456>\n"
        );
    }

    #[test]
    fn files_are_written_whole_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        write_durably(dir.path(), "virus-x", b"hello\n", false).unwrap();
        write_durably(dir.path(), "spam-x.gz", b"hello\n", true).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("virus-x")).unwrap(),
            b"hello\n"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let cfg = QuarantineConfig {
            directory: dir.path().to_path_buf(),
            subdir_levels: 0,
        };
        let got = rt
            .block_on(fetch('Z', "spam-x.gz", "x", 0, &cfg, None))
            .unwrap();
        assert_eq!(got.as_deref(), Some(&b"hello\n"[..]));
        let none = rt.block_on(fetch('F', "../x", "x", 0, &cfg, None)).unwrap();
        assert_eq!(none, None, "no path outside the folder");
        let none = rt.block_on(fetch('F', "gone", "x", 0, &cfg, None)).unwrap();
        assert_eq!(none, None);
    }
}
