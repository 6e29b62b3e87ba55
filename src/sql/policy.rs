//! Per-recipient settings and white/blacklists from SQL, as amavisd-new reads them
//! (README.lookups): `users` rows whose `email` is one of the recipient's SQL lookup keys,
//! highest `priority` first, joined to their `policy` row; for each setting the first row
//! with a non-NULL value wins. A `users` match also makes the recipient local. `wblist` rows
//! for that user and the sender's keys (through `mailaddr`, highest priority first) give
//! `W`, `B` or a score.
//!
//! The result is a TOML table of `[policy]` keys, so it overrides the static settings the same
//! way a `[recipients."..."]` entry does, in front of them (amavisd-new consults SQL first).

use super::dialect::BindBin;
use super::{SqlError, Store};
use sqlx::{AssertSqlSafe, Row};

/// amavisd-new's SQL lookup keys for `addr`: `user+ext@dom`, `user@dom`, `user+ext` and
/// `user` (local domains only), `@dom`, `@.dom`, `@.parent` ..., `@.`.
pub fn sql_keys(addr: &str, delimiter: &str, local: bool) -> Vec<String> {
    let (user, domain) = match addr.rsplit_once('@') {
        Some((u, d)) => (u.to_lowercase(), d.to_lowercase()),
        None => (addr.to_lowercase(), String::new()),
    };
    let base = match delimiter.chars().next() {
        Some(d) if !user.starts_with(d) => user.split(d).next().unwrap_or(&user).to_string(),
        _ => user.clone(),
    };
    let mut k: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !k.contains(&s) {
            k.push(s);
        }
    };
    push(format!("{user}@{domain}"));
    push(format!("{base}@{domain}"));
    if local {
        push(user.clone());
        push(base);
    }
    if !domain.is_empty() {
        push(format!("@{domain}"));
        let mut d = domain.as_str();
        loop {
            push(format!("@.{d}"));
            match d.split_once('.') {
                Some((_, rest)) => d = rest,
                None => break,
            }
        }
    }
    push("@.".into());
    k
}

/// `policy` columns and the `[policy]` keys they set: (column, key, kind).
const COLUMNS: &[(&str, &str, Kind)] = &[
    ("virus_lover", "virus_lover", Kind::Flag),
    ("spam_lover", "spam_lover", Kind::Flag),
    ("unchecked_lover", "unchecked_lover", Kind::Flag),
    ("banned_files_lover", "banned_files_lover", Kind::Flag),
    ("bad_header_lover", "bad_header_lover", Kind::Flag),
    ("bypass_virus_checks", "bypass_virus_checks", Kind::Flag),
    ("bypass_spam_checks", "bypass_spam_checks", Kind::Flag),
    ("bypass_banned_checks", "bypass_banned_checks", Kind::Flag),
    ("bypass_header_checks", "bypass_header_checks", Kind::Flag),
    ("spam_tag_level", "spam_tag_level", Kind::Float),
    ("spam_tag2_level", "spam_tag2_level", Kind::Float),
    ("spam_tag3_level", "spam_tag3_level", Kind::Float),
    ("spam_kill_level", "spam_kill_level", Kind::Float),
    (
        "spam_dsn_cutoff_level",
        "spam_dsn_cutoff_level",
        Kind::Float,
    ),
    (
        "spam_quarantine_cutoff_level",
        "spam_quarantine_cutoff_level",
        Kind::Float,
    ),
    ("addr_extension_virus", "addr_extension_virus", Kind::Text),
    ("addr_extension_spam", "addr_extension_spam", Kind::Text),
    ("addr_extension_banned", "addr_extension_banned", Kind::Text),
    (
        "addr_extension_bad_header",
        "addr_extension_bad_header",
        Kind::Text,
    ),
    ("warnvirusrecip", "warn_virus_recip", Kind::Flag),
    ("warnbannedrecip", "warn_banned_recip", Kind::Flag),
    ("warnbadhrecip", "warn_bad_header_recip", Kind::Flag),
    ("virus_admin", "virus_admin", Kind::Text),
    ("banned_admin", "banned_admin", Kind::Text),
    ("bad_header_admin", "bad_header_admin", Kind::Text),
    ("spam_admin", "spam_admin", Kind::Text),
    ("spam_subject_tag", "spam_subject_tag", Kind::Text),
    ("spam_subject_tag2", "spam_subject_tag2", Kind::Text),
    ("spam_subject_tag3", "spam_subject_tag3", Kind::Text),
    ("message_size_limit", "message_size_limit", Kind::Int),
    ("banned_rulenames", "banned_rules", Kind::Text),
];

#[derive(Clone, Copy)]
enum Kind {
    Flag,
    Float,
    Int,
    Text,
}

/// What SQL says about one recipient.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlRecipient {
    /// `[policy]` keys from the `policy` rows, first non-NULL value of each.
    pub settings: toml::Table,
    /// A `users` row matched: the recipient is local.
    pub known: bool,
    /// The `wblist` entry for the sender: `W`, `B`, or a score (`-3.5`).
    pub wb: Option<String>,
}

fn flag(v: &str) -> Option<bool> {
    match v.trim().chars().next()? {
        'Y' | 'y' | '1' | 'T' | 't' => Some(true),
        'N' | 'n' | '0' | 'F' | 'f' => Some(false),
        _ => None,
    }
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

impl Store {
    /// Looks `addr` up in `users`/`policy`, and the sender in its `wblist`.
    pub async fn lookup_recipient(
        &self,
        addr: &str,
        delimiter: &str,
        local: bool,
        sender: &str,
    ) -> Result<SqlRecipient, SqlError> {
        self.timed(async {
            let d = self.dialect();
            let keys = sql_keys(addr, delimiter, local);
            // Every column read as text: Any cannot decode every database's char/real types.
            let cols: Vec<String> = COLUMNS
                .iter()
                .map(|(c, _, _)| match d {
                    super::Dialect::Postgres => format!("CAST(p.{c} AS TEXT)"),
                    super::Dialect::Mysql => format!("CAST(p.{c} AS CHAR)"),
                    super::Dialect::Sqlite => format!("CAST(p.{c} AS TEXT)"),
                })
                .collect();
            let sql = d.sql(&format!(
                "SELECT u.id, {} FROM users u LEFT JOIN policy p ON u.policy_id = p.id \
                 WHERE u.email IN ({}) ORDER BY u.priority DESC",
                cols.join(", "),
                placeholders(keys.len())
            ));
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for k in &keys {
                q = q.bind_bin(d, k);
            }
            let rows = q.fetch_all(self.pool()).await?;
            let mut out = SqlRecipient {
                known: !rows.is_empty(),
                ..SqlRecipient::default()
            };
            for row in &rows {
                for (i, (_, key, kind)) in COLUMNS.iter().enumerate() {
                    if out.settings.contains_key(*key) {
                        continue;
                    }
                    let Ok(Some(v)) = row.try_get::<Option<String>, _>(i + 1) else {
                        continue;
                    };
                    let value = match kind {
                        Kind::Flag => flag(&v).map(toml::Value::Boolean),
                        Kind::Float => v.trim().parse::<f64>().ok().map(toml::Value::Float),
                        Kind::Int => v.trim().parse::<i64>().ok().map(toml::Value::Integer),
                        Kind::Text => Some(toml::Value::String(v)),
                    };
                    if let Some(value) = value {
                        out.settings.insert(key.to_string(), value);
                    }
                }
            }
            if let Some(first) = rows.first() {
                let uid: i64 = first.try_get(0)?;
                let skeys = sql_keys(sender, delimiter, false);
                let sql = d.sql(&format!(
                    "SELECT w.wb FROM wblist w JOIN mailaddr m ON w.sid = m.id \
                     WHERE w.rid = ? AND m.email IN ({}) ORDER BY m.priority DESC",
                    placeholders(skeys.len())
                ));
                let mut q = sqlx::query(AssertSqlSafe(sql)).bind(uid);
                for k in &skeys {
                    q = q.bind_bin(d, k);
                }
                if let Some(r) = q.fetch_optional(self.pool()).await? {
                    out.wb = r.try_get::<String, _>(0).ok().map(|s| s.trim().to_string());
                }
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amavisd_new_sql_key_order() {
        assert_eq!(
            sql_keys("User+foo@Sub.Example.com", "+", true),
            [
                "user+foo@sub.example.com",
                "user@sub.example.com",
                "user+foo",
                "user",
                "@sub.example.com",
                "@.sub.example.com",
                "@.example.com",
                "@.com",
                "@."
            ]
        );
        assert_eq!(
            sql_keys("a@x.org", "+", false),
            ["a@x.org", "@x.org", "@.x.org", "@.org", "@."]
        );
    }

    #[test]
    fn flags() {
        assert_eq!(flag("Y"), Some(true));
        assert_eq!(flag("N "), Some(false));
        assert_eq!(flag(""), None);
    }
}
