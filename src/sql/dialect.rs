//! What differs between the three databases. sqlx's `Any` driver runs the same code on all
//! three, but passes SQL through untouched: PostgreSQL wants `$1` placeholders, the others
//! `?`; each has its own "insert unless present" and its own `time_iso` type.

/// A query through sqlx's `Any` driver.
pub type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binding values of `varbinary` columns (mail_id, secret_id, quar_loc, email).
pub trait BindBin {
    /// Binds `v`: as bytes, as amavisd-new's schemas declare these columns, but as text on
    /// SQLite, where a blob never equals a text literal: an admin's `WHERE mail_id = 'abc'` or
    /// `INSERT INTO users (email) VALUES ('u@example.com')` must work as on the others.
    fn bind_bin(self, d: Dialect, v: &str) -> Self;
}

impl BindBin for AnyQuery<'_> {
    fn bind_bin(self, d: Dialect, v: &str) -> Self {
        match d {
            Dialect::Sqlite => self.bind(v.to_string()),
            Dialect::Postgres | Dialect::Mysql => self.bind(v.as_bytes().to_vec()),
        }
    }
}

/// Column `i` of `row`, a `varbinary` value read as bytes or as text (SQLite keeps text).
pub fn bin_column(row: &sqlx::any::AnyRow, i: usize) -> Vec<u8> {
    use sqlx::Row;
    row.try_get::<Vec<u8>, _>(i)
        .or_else(|_| row.try_get::<String, _>(i).map(String::into_bytes))
        .unwrap_or_default()
}

/// The database behind a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

/// The folder a `sqlite:` URL's database file is in; `None` for other URLs and for a file in
/// the current folder.
pub fn sqlite_folder(url: &str) -> Option<&std::path::Path> {
    sqlite_file(url)?
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
}

/// The database file a `sqlite:` URL names; `None` for other URLs.
pub fn sqlite_file(url: &str) -> Option<&std::path::Path> {
    let file = url.strip_prefix("sqlite:")?.trim_start_matches("//");
    let file = file.split('?').next().unwrap_or(file);
    Some(std::path::Path::new(file))
}

/// `url` as it is opened: a `sqlite:` database is created on first use (`mode=rwc`) and its
/// folder made now, as the embedded defaults must start on a fresh machine; other URLs as
/// they are.
pub fn creating(url: &str) -> String {
    if Dialect::of(url) != Some(Dialect::Sqlite) || url.contains("mode=") {
        return url.to_string();
    }
    if let Some(dir) = sqlite_folder(url) {
        let _ = std::fs::create_dir_all(dir);
    }
    format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
}

impl Dialect {
    /// From the URL scheme (`sqlite:`, `postgres://` or `postgresql://`, `mysql://` or
    /// `mariadb://`).
    pub fn of(url: &str) -> Option<Dialect> {
        let scheme = url.split(':').next()?.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Dialect::Sqlite),
            "postgres" | "postgresql" => Some(Dialect::Postgres),
            "mysql" | "mariadb" => Some(Dialect::Mysql),
            _ => None,
        }
    }

    /// The schema file for this database (`sql/*.sql`).
    pub fn schema(self) -> &'static str {
        match self {
            Dialect::Sqlite => include_str!("../../sql/sqlite.sql"),
            Dialect::Postgres => include_str!("../../sql/postgres.sql"),
            Dialect::Mysql => include_str!("../../sql/mysql.sql"),
        }
    }

    /// `sql` written with `?` placeholders, in this database's form.
    pub fn sql(self, sql: &str) -> String {
        if self != Dialect::Postgres {
            return sql.to_string();
        }
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push_str(&format!("${n}"));
            } else {
                out.push(c);
            }
        }
        out
    }

    /// `col` readable as text through sqlx `Any`, which cannot decode PostgreSQL's `char(n)`
    /// (bpchar): amavisd-new's one-letter columns are `char(1)`.
    pub fn text(self, col: &str) -> String {
        match self {
            Dialect::Postgres => format!("{col}::text"),
            Dialect::Sqlite | Dialect::Mysql => col.to_string(),
        }
    }

    /// "INSERT ... unless the row exists", for `maddr`.
    pub fn insert_maddr(self) -> &'static str {
        match self {
            Dialect::Mysql => {
                "INSERT IGNORE INTO maddr (partition_tag, email, domain) VALUES (?, ?, ?)"
            }
            Dialect::Sqlite | Dialect::Postgres => {
                "INSERT INTO maddr (partition_tag, email, domain) VALUES (?, ?, ?) \
                 ON CONFLICT DO NOTHING"
            }
        }
    }

    /// The `time_iso` value expression for a bound epoch second (and, for the text form,
    /// the bound text): PostgreSQL has a timestamptz column, the others `char(16)` text.
    pub fn time_iso_expr(self) -> &'static str {
        match self {
            Dialect::Postgres => "to_timestamp(?)",
            Dialect::Sqlite | Dialect::Mysql => "?",
        }
    }
}

/// amavisd-new's `time_iso` text: `20261124T003000Z`.
pub fn time_iso(epoch: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(epoch)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// amavisd-new's `maddr.domain`: the labels reversed, lower case (`com.example.mail`), so
/// that reports can group by domain with a prefix match.
pub fn reversed_domain(addr: &str) -> String {
    let domain = addr.rsplit_once('@').map_or("", |(_, d)| d);
    let mut labels: Vec<&str> = domain.split('.').filter(|l| !l.is_empty()).collect();
    labels.reverse();
    labels.join(".").to_lowercase()
}

/// Splits a schema file into statements (`;` at a line end), dropping comments.
/// Where a schema file's run-once part starts (SQLite only; see `sql/sqlite.sql`).
const ONCE: &str = "-- ONCE:";

/// The schema version a SQLite database is at once its run-once part has run
/// (`PRAGMA user_version`).
pub const SQLITE_SCHEMA_VERSION: i64 = 1;

/// A schema file's statements that run at every start, and those that run once.
pub fn schema_parts(schema: &str) -> (Vec<String>, Vec<String>) {
    match schema.find(ONCE) {
        Some(at) => (statements(&schema[..at]), statements(&schema[at..])),
        None => (statements(schema), Vec::new()),
    }
}

pub fn statements(schema: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in schema.lines() {
        let l = line.trim_end();
        if l.trim_start().starts_with("--") || l.trim().is_empty() {
            continue;
        }
        cur.push_str(l);
        cur.push('\n');
        if l.ends_with(';') {
            out.push(cur.trim().trim_end_matches(';').to_string());
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialects() {
        assert_eq!(Dialect::of("sqlite:var/a.db"), Some(Dialect::Sqlite));
        assert_eq!(Dialect::of("postgres://u@h/db"), Some(Dialect::Postgres));
        assert_eq!(
            Dialect::of("mariadb://root@127.0.0.1/test"),
            Some(Dialect::Mysql)
        );
        assert_eq!(Dialect::of("oracle://x"), None);
        assert_eq!(
            Dialect::Postgres.sql("INSERT INTO t VALUES (?, ?)"),
            "INSERT INTO t VALUES ($1, $2)"
        );
        assert_eq!(Dialect::Mysql.sql("a = ?"), "a = ?");
    }

    #[test]
    fn values() {
        assert_eq!(time_iso(0), "19700101T000000Z");
        assert_eq!(time_iso(1_795_478_400), "20261124T000000Z");
        assert_eq!(reversed_domain("u@Mail.Example.COM"), "com.example.mail");
        assert_eq!(reversed_domain(""), "");
    }

    #[test]
    fn every_schema_splits_into_create_statements() {
        for d in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
            let st = statements(d.schema());
            assert!(st.len() >= 8, "{d:?}");
            // SQLite's also converts an older log's blob ids to text (UPDATE ... WHERE typeof).
            assert!(
                st.iter()
                    .all(|s| s.starts_with("CREATE ") || s.starts_with("UPDATE OR IGNORE ")),
                "{d:?}"
            );
        }
    }
}
