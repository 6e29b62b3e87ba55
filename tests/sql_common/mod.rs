//! Shared by the SQL tests: the test databases (started by .ci/run through
//! scripts/test-services.sh), a ready store, and reading our rows back.
#![allow(dead_code)]

use amavisd::sql::dialect::bin_column;
use amavisd::sql::{SqlConfig, Store};

pub const PG: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const MARIADB: &str = "mysql://root@127.0.0.1:3306/test";

/// `[sql]` for `url`, the rest default.
pub fn sql_config(url: &str) -> SqlConfig {
    SqlConfig {
        url: url.into(),
        ..SqlConfig::default()
    }
}

/// A store on `url` with the schema in place; fails (never skips) when the server is down.
pub async fn store(url: &str) -> Store {
    let s = Store::new(&sql_config(url))
        .expect("store")
        .expect("a URL gives a store");
    s.create_schema().await.unwrap_or_else(|e| {
        panic!("{url}: cannot create the schema (is the server up? .ci/run starts it): {e}")
    });
    s
}

/// mail_id and secret_id of the newest message whose `column` (subject, message_id) is `value`.
pub async fn ids_by(store: &Store, column: &str, value: &str) -> (String, String) {
    let sql = store.dialect().sql(&format!(
        "SELECT mail_id, secret_id FROM msgs WHERE {column} = ? ORDER BY time_num DESC"
    ));
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(value.to_string())
        .fetch_one(store.pool())
        .await
        .unwrap_or_else(|e| panic!("no msgs row with {column} {value}: {e}"));
    let s = |i: usize| String::from_utf8_lossy(&bin_column(&row, i)).into_owned();
    (s(0), s(1))
}
