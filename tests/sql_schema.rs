//! The three schema files (`sql/{sqlite,postgres,mysql}.sql`) are written by hand, one per
//! dialect, because their types differ (bytea, varbinary, blob) and amavisd-new's own
//! README.sql files differ the same way. This test holds them to the same tables and columns,
//! in the same order, so a column added to one dialect cannot be forgotten in another.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

/// Table name -> its column names in order, from the `CREATE TABLE` statements of `sql`.
fn tables(sql: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in sql.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
            let name = rest.trim_end_matches('(').trim().to_string();
            current = Some((name, Vec::new()));
            continue;
        }
        let Some((name, cols)) = current.as_mut() else {
            continue;
        };
        if line.starts_with(')') {
            out.insert(std::mem::take(name), std::mem::take(cols));
            current = None;
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or_default();
        let first = first.trim_matches(['`', '"']).to_ascii_lowercase();
        let constraint = [
            "primary",
            "unique",
            "constraint",
            "foreign",
            "index",
            "key",
            "check",
        ];
        if !first.is_empty() && !first.starts_with("--") && !constraint.contains(&first.as_str()) {
            cols.push(first);
        }
    }
    out
}

#[test]
fn the_dialects_define_the_same_tables_and_columns() {
    let read = |f: &str| {
        let path = format!("{}/sql/{f}", env!("CARGO_MANIFEST_DIR"));
        tables(&std::fs::read_to_string(&path).unwrap())
    };
    let sqlite = read("sqlite.sql");
    // amavisd-new's tables, all of them.
    let names: Vec<&str> = sqlite.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "maddr",
            "mailaddr",
            "msgrcpt",
            "msgs",
            "policy",
            "quarantine",
            "users",
            "wblist"
        ]
    );
    assert!(sqlite["msgs"].contains(&"quar_loc".to_string()));
    for other in ["postgres.sql", "mysql.sql"] {
        let t = read(other);
        assert_eq!(
            t.keys().collect::<Vec<_>>(),
            sqlite.keys().collect::<Vec<_>>(),
            "{other}"
        );
        for (name, cols) in &sqlite {
            assert_eq!(&t[name], cols, "{other}: table {name}");
        }
    }
}
