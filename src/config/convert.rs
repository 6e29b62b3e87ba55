//! `amavisd convert-config amavisd.conf...`: turns the common settings of an amavisd-new
//! configuration into our TOML (ports, forward method, mynetworks, local domains, spam
//! levels, destinies, quarantine methods and directory, admins, lovers and bypasses, SQL DSNs,
//! banned file names, decoder limits, policy banks and the ports that load them). What it
//! cannot convert it lists by name, so the administrator knows what to look at.

use super::perl_conf::{self, Target, Value};
use std::collections::HashMap;
use toml::{Table, Value as T};

/// The result: TOML text (which `Config::load` reads) and the settings left behind.
#[derive(Debug)]
pub struct Converted {
    pub toml: String,
    /// amavisd-new names not converted (`$DO_SYSLOG`, `@av_scanners`,
    /// `$policy_bank{'X'}{forward_method}`), in file order.
    pub unconverted: Vec<String>,
}

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Float,
    /// A level that may be `undef` (no level: off).
    Level,
    /// `$sa_tag_level_deflt`, whose `undef` means "at any score" (-999 here).
    TagLevel,
    Bool,
    Destiny,
}

/// amavisd-new's global scalars that are not per policy, and where they go.
const GLOBAL: &[(&str, &str, Kind)] = &[
    ("myhostname", "myhostname", Kind::Str),
    ("enable_dkim_verification", "dkim.verify", Kind::Bool),
    ("enable_dkim_signing", "dkim.sign", Kind::Bool),
    ("myauthservid", "dkim.authserv_id", Kind::Str),
    ("mydomain", "mydomain", Kind::Str),
    ("forward_method", "forward_method", Kind::Str),
    ("notify_method", "notify_method", Kind::Str),
    ("TEMPBASE", "tempdir", Kind::Str),
    ("pid_file", "pid_file", Kind::Str),
    ("daemon_user", "user", Kind::Str),
    ("daemon_group", "group", Kind::Str),
    ("QUARANTINEDIR", "quarantine.directory", Kind::Str),
    (
        "quarantine_subdir_levels",
        "quarantine.subdir_levels",
        Kind::Int,
    ),
    ("sa_mail_body_size_limit", "spam.max_size", Kind::Int),
    ("MAXLEVELS", "decode.max_levels", Kind::Int),
    ("MAXFILES", "decode.max_files", Kind::Int),
    (
        "MIN_EXPANSION_QUOTA",
        "decode.min_expansion_quota",
        Kind::Int,
    ),
    (
        "MAX_EXPANSION_QUOTA",
        "decode.max_expansion_quota",
        Kind::Int,
    ),
    (
        "MIN_EXPANSION_FACTOR",
        "decode.min_expansion_factor",
        Kind::Int,
    ),
    (
        "MAX_EXPANSION_FACTOR",
        "decode.max_expansion_factor",
        Kind::Int,
    ),
    ("X_HEADER_TAG", "headers.x_header_tag", Kind::Str),
    ("X_HEADER_LINE", "headers.x_header_line", Kind::Str),
];

/// Per-policy settings: global scalars in amavisd-new, keys of `$policy_bank{...}` hashes.
const POLICY: &[(&str, &str, Kind)] = &[
    ("sa_tag_level_deflt", "spam_tag_level", Kind::TagLevel),
    ("sa_tag2_level_deflt", "spam_tag2_level", Kind::Float),
    ("sa_tag3_level_deflt", "spam_tag3_level", Kind::Level),
    ("sa_kill_level_deflt", "spam_kill_level", Kind::Float),
    ("sa_dsn_cutoff_level", "spam_dsn_cutoff_level", Kind::Float),
    (
        "sa_quarantine_cutoff_level",
        "spam_quarantine_cutoff_level",
        Kind::Level,
    ),
    ("final_virus_destiny", "final_virus_destiny", Kind::Destiny),
    (
        "final_banned_destiny",
        "final_banned_destiny",
        Kind::Destiny,
    ),
    (
        "final_unchecked_destiny",
        "final_unchecked_destiny",
        Kind::Destiny,
    ),
    ("final_spam_destiny", "final_spam_destiny", Kind::Destiny),
    (
        "final_bad_header_destiny",
        "final_bad_header_destiny",
        Kind::Destiny,
    ),
    (
        "virus_quarantine_method",
        "virus_quarantine_method",
        Kind::Str,
    ),
    (
        "banned_quarantine_method",
        "banned_quarantine_method",
        Kind::Str,
    ),
    (
        "spam_quarantine_method",
        "spam_quarantine_method",
        Kind::Str,
    ),
    (
        "bad_header_quarantine_method",
        "bad_header_quarantine_method",
        Kind::Str,
    ),
    (
        "unchecked_quarantine_method",
        "unchecked_quarantine_method",
        Kind::Str,
    ),
    ("virus_admin", "virus_admin", Kind::Str),
    ("banned_admin", "banned_admin", Kind::Str),
    ("spam_admin", "spam_admin", Kind::Str),
    ("bad_header_admin", "bad_header_admin", Kind::Str),
    ("sa_spam_subject_tag1", "spam_subject_tag", Kind::Str),
    ("sa_spam_subject_tag", "spam_subject_tag2", Kind::Str),
    ("sa_spam_subject_tag3", "spam_subject_tag3", Kind::Str),
    (
        "undecipherable_subject_tag",
        "subject_tag_unchecked",
        Kind::Str,
    ),
    ("recipient_delimiter", "recipient_delimiter", Kind::Str),
    ("soft_bounce", "soft_bounce", Kind::Bool),
    ("originating", "originating", Kind::Bool),
    ("addr_extension_virus", "addr_extension_virus", Kind::Str),
    ("addr_extension_banned", "addr_extension_banned", Kind::Str),
    ("addr_extension_spam", "addr_extension_spam", Kind::Str),
    (
        "addr_extension_bad_header",
        "addr_extension_bad_header",
        Kind::Str,
    ),
    ("warnvirusrecip", "warn_virus_recip", Kind::Bool),
    ("warnbannedrecip", "warn_banned_recip", Kind::Bool),
    ("warnbadhrecip", "warn_bad_header_recip", Kind::Bool),
];

/// Per-policy `*_maps` whose usual form is one constant (`(1)`, `['admin@x']`, `[6.9]`).
const POLICY_MAPS: &[(&str, &str, Kind)] = &[
    (
        "bypass_virus_checks_maps",
        "bypass_virus_checks",
        Kind::Bool,
    ),
    ("bypass_spam_checks_maps", "bypass_spam_checks", Kind::Bool),
    (
        "bypass_banned_checks_maps",
        "bypass_banned_checks",
        Kind::Bool,
    ),
    (
        "bypass_header_checks_maps",
        "bypass_header_checks",
        Kind::Bool,
    ),
    ("virus_lovers_maps", "virus_lover", Kind::Bool),
    ("spam_lovers_maps", "spam_lover", Kind::Bool),
    ("banned_files_lovers_maps", "banned_files_lover", Kind::Bool),
    ("bad_header_lovers_maps", "bad_header_lover", Kind::Bool),
    ("unchecked_lovers_maps", "unchecked_lover", Kind::Bool),
    ("virus_admin_maps", "virus_admin", Kind::Str),
    ("spam_admin_maps", "spam_admin", Kind::Str),
    ("banned_admin_maps", "banned_admin", Kind::Str),
    ("bad_header_admin_maps", "bad_header_admin", Kind::Str),
    ("spam_tag_level_maps", "spam_tag_level", Kind::TagLevel),
    ("spam_tag2_level_maps", "spam_tag2_level", Kind::Float),
    ("spam_tag3_level_maps", "spam_tag3_level", Kind::Level),
    ("spam_kill_level_maps", "spam_kill_level", Kind::Float),
    (
        "spam_dsn_cutoff_level_maps",
        "spam_dsn_cutoff_level",
        Kind::Float,
    ),
    ("spam_subject_tag2_maps", "spam_subject_tag2", Kind::Str),
    ("message_size_limit_maps", "message_size_limit", Kind::Int),
];

/// A Perl scalar as a TOML value of `kind`; `None` when it is not one (or `undef` for a
/// level, which means "no level": the key is left out).
fn scalar(v: &Value, kind: Kind) -> Option<T> {
    let num = |v: &Value| match v {
        Value::Num(n) => Some(*n),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    };
    match kind {
        Kind::Str => match v {
            Value::Str(s) => Some(T::String(s.clone())),
            Value::Num(n) => Some(T::String(n.to_string())),
            Value::Undef => Some(T::String(String::new())),
            _ => None,
        },
        Kind::Int => num(v)
            .filter(|n| n.fract() == 0.0)
            .map(|n| T::Integer(n as i64)),
        Kind::Float | Kind::Level => num(v).map(T::Float),
        Kind::TagLevel => match v {
            Value::Undef => Some(T::Float(-999.0)),
            other => num(other).map(T::Float),
        },
        Kind::Bool => match v {
            Value::Undef => Some(T::Boolean(false)),
            other => num(other).map(|n| T::Boolean(n != 0.0)),
        },
        Kind::Destiny => match v {
            Value::Bare(b) => match b.as_str() {
                "D_PASS" => Some("pass"),
                "D_DISCARD" => Some("discard"),
                "D_BOUNCE" => Some("bounce"),
                "D_REJECT" => Some("reject"),
                "D_TEMPFAIL" => Some("tempfail"),
                _ => None,
            }
            .map(|d| T::String(d.into())),
            _ => None,
        },
    }
}

/// A `*_maps` list holding one constant (`(1)`, `[1]`, `(['admin@x'])`): that constant.
fn single_constant(v: &Value) -> Option<&Value> {
    match v {
        Value::List(items) if items.len() == 1 => match &items[0] {
            inner @ Value::List(_) => single_constant(inner),
            c @ (Value::Num(_) | Value::Str(_) | Value::Undef) => Some(c),
            _ => None,
        },
        c @ (Value::Num(_) | Value::Str(_)) => Some(c),
        _ => None,
    }
}

/// Strings of a list, and of lists within it (amavisd-new's ACL list refs).
fn strings(v: &Value, out: &mut Vec<String>) -> bool {
    match v {
        Value::Str(s) => out.push(s.clone()),
        Value::List(items) => {
            for i in items {
                if !strings(i, out) {
                    return false;
                }
            }
        }
        _ => return false,
    }
    true
}

/// `DBI:Pg:database=mail;host=127.0.0.1;port=5432`, user, password as a URL for `[sql] url`.
fn dsn_url(v: &Value) -> Option<String> {
    let mut parts = Vec::new();
    if !strings(v, &mut parts) || parts.is_empty() {
        return None;
    }
    let mut it = parts[0].splitn(3, ':');
    let (_dbi, driver, rest) = (it.next()?, it.next()?, it.next().unwrap_or(""));
    let attrs: HashMap<String, String> = rest
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let db = attrs
        .get("database")
        .or_else(|| attrs.get("dbname"))
        .or_else(|| attrs.get("db"))?;
    let scheme = match driver.to_ascii_lowercase().as_str() {
        "pg" => "postgres",
        "mysql" | "mariadb" => "mysql",
        "sqlite" => return Some(format!("sqlite:{db}")),
        _ => return None,
    };
    let user = parts.get(1).map(String::as_str).unwrap_or("");
    let pass = parts.get(2).map(String::as_str).unwrap_or("");
    let auth = match (user, pass) {
        ("", _) => String::new(),
        (u, "") => format!("{u}@"),
        (u, p) => format!("{u}:{p}@"),
    };
    let host = attrs.get("host").map_or("127.0.0.1", String::as_str);
    let port = attrs
        .get("port")
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    Some(format!("{scheme}://{auth}{host}{port}/{db}"))
}

/// `$banned_filename_re = new_RE(...)` as a rule set: a bare regex bans, `[qr'...' => 0]`
/// allows, `=> 1` bans.
fn banned_rules(v: &Value) -> Option<Vec<T>> {
    let Value::Call(f, items) = v else {
        return None;
    };
    if f != "new_RE" {
        return None;
    }
    let rule = |pattern: &str, flags: &str, allow: bool| {
        let mut t = Table::new();
        let inline: String = flags
            .chars()
            .filter(|c| matches!(c, 'i' | 'x' | 's' | 'm'))
            .collect();
        let regex = if inline.is_empty() {
            pattern.to_string()
        } else {
            format!("(?{inline}){pattern}")
        };
        t.insert("regex".into(), T::String(regex));
        if allow {
            t.insert("action".into(), T::String("allow".into()));
        }
        t.insert(
            "why".into(),
            T::String("from amavisd-new's $banned_filename_re".into()),
        );
        T::Table(t)
    };
    items
        .iter()
        .map(|i| match i {
            Value::Regex { pattern, flags } => Some(rule(pattern, flags, false)),
            Value::List(pair) => match pair.as_slice() {
                [Value::Regex { pattern, flags }, action] => {
                    let ban = scalar(action, Kind::Bool)?;
                    Some(rule(pattern, flags, ban == T::Boolean(false)))
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Sets the key `keys` (one table name each: a bank name may hold dots, `AM.PDP-SOCK`) in
/// `root` to `v`.
fn set_in(root: &mut Table, keys: &[&str], v: T) {
    let Some((last, tables)) = keys.split_last() else {
        return;
    };
    let mut t = root;
    for k in tables {
        let entry = t
            .entry(k.to_string())
            .or_insert_with(|| T::Table(Table::new()));
        if !entry.is_table() {
            *entry = T::Table(Table::new());
        }
        let Some(next) = entry.as_table_mut() else {
            return;
        };
        t = next;
    }
    t.insert(last.to_string(), v);
}

/// Sets the dotted `path` in `root` to `v`.
fn set(root: &mut Table, path: &str, v: T) {
    set_in(root, &path.split('.').collect::<Vec<_>>(), v)
}

/// `table` (`["policy"]`, `["policy_bank", NAME]`) and `key`.
fn at<'a>(table: &[&'a str], key: &'a str) -> Vec<&'a str> {
    let mut k = table.to_vec();
    k.push(key);
    k
}

/// One per-policy setting (`name` as amavisd-new spells it) into `table` (`["policy"]` or
/// `["policy_bank", NAME]`); false when it is not one we convert.
fn policy_setting(root: &mut Table, table: &[&str], name: &str, v: &Value) -> bool {
    if unresolved(v) {
        return false;
    }
    if let Some((_, key, kind)) = POLICY.iter().find(|(n, _, _)| *n == name) {
        return match (kind, v) {
            (Kind::Level, Value::Undef) => true,
            _ => scalar(v, *kind)
                .map(|t| set_in(root, &at(table, key), t))
                .is_some(),
        };
    }
    if let Some((_, key, kind)) = POLICY_MAPS.iter().find(|(n, _, _)| *n == name) {
        return single_constant(v)
            .and_then(|c| scalar(c, *kind))
            .map(|t| set_in(root, &at(table, key), t))
            .is_some();
    }
    if matches!(name, "local_domains_maps" | "local_domains_acl") {
        let mut domains = Vec::new();
        if strings(v, &mut domains) {
            let list = domains.into_iter().map(T::String).collect();
            set_in(root, &at(table, "local_domains"), T::Array(list));
            return true;
        }
    }
    false
}

/// A value built from a variable whose value the file does not give (`$mydomain` read from
/// /etc/mailname by Perl code): not converted, rather than converted wrong.
fn unresolved(v: &Value) -> bool {
    match v {
        Value::Str(s) => s.contains(perl_conf::UNKNOWN),
        Value::List(items) => items.iter().any(unresolved),
        Value::Hash(pairs) => pairs.iter().any(|(_, v)| unresolved(v)),
        _ => false,
    }
}

/// Converts the amavisd-new configuration files `sources` (read in order, as amavisd-new
/// reads its conf.d files).
/// `dkim_key('example.com', 'dkim', '/var/db/dkim/example.com.pem', OPTIONS...)` as a
/// `[[dkim.keys]]` table; false when its arguments are not three plain strings first.
fn dkim_key(root: &mut Table, args: &[Value]) -> bool {
    let [
        Value::Str(domain),
        Value::Str(selector),
        Value::Str(file),
        ..,
    ] = args
    else {
        return false;
    };
    let mut k = Table::new();
    k.insert("domain".into(), T::String(domain.clone()));
    k.insert("selector".into(), T::String(selector.clone()));
    k.insert("key_file".into(), T::String(file.clone()));
    let dkim = root
        .entry("dkim".to_string())
        .or_insert_with(|| T::Table(Table::new()));
    match dkim.as_table_mut() {
        Some(t) => {
            push(t, "keys", T::Table(k));
            true
        }
        None => false,
    }
}

pub fn convert(sources: &[String]) -> Converted {
    let mut vars: HashMap<String, String> = HashMap::new();
    // amavisd-new's own defaults that configurations interpolate.
    vars.insert("MYHOME".into(), "/var/lib/amavis".into());
    vars.insert("myproduct_name".into(), "amavisd-new".into());
    let mut root = Table::new();
    let mut unconverted: Vec<String> = Vec::new();
    let mut left = |name: String| {
        if !unconverted.contains(&name) {
            unconverted.push(name);
        }
    };
    let mut bind = "127.0.0.1".to_string();
    let mut ports: Vec<T> = Vec::new();
    for src in sources {
        let read = perl_conf::read(src, &mut vars);
        for s in read.skipped {
            left(s);
        }
        for (name, args) in &read.calls {
            if !(name == "dkim_key" && dkim_key(&mut root, args)) {
                left(format!("{name}()"));
            }
        }
        for (target, v) in &read.items {
            let done = !unresolved(v)
                && match target {
                    // Only interpolated into other settings, which carry its value.
                    Target::Scalar(n) if n == "MYHOME" => true,
                    Target::Scalar(n) if n == "inet_socket_bind" => match v {
                        Value::Str(s) => {
                            bind = s.clone();
                            true
                        }
                        _ => false,
                    },
                    Target::Scalar(n) if n == "inet_socket_port" => {
                        let list = match v {
                            Value::List(items) => items.clone(),
                            one => vec![one.clone()],
                        };
                        ports = list.iter().filter_map(|p| scalar(p, Kind::Int)).collect();
                        ports.len() == list.len()
                    }
                    Target::Scalar(n) if n == "unix_socketname" => match v {
                        Value::Str(s) => {
                            let mut l = Table::new();
                            l.insert("unix".into(), T::String(s.clone()));
                            push(&mut root, "listen", T::Table(l));
                            true
                        }
                        _ => false,
                    },
                    Target::Scalar(n) | Target::Array(n) if n == "banned_filename_re" => {
                        match banned_rules(v) {
                            Some(rules) => {
                                set(&mut root, "banned.rule_sets.SITE", T::Array(rules));
                                set(&mut root, "policy.banned_rules", T::String("SITE".into()));
                                true
                            }
                            None => false,
                        }
                    }
                    Target::Array(n) if n == "mynetworks" || n == "mynetworks_maps" => {
                        let mut nets = Vec::new();
                        strings(v, &mut nets) && {
                            set(
                                &mut root,
                                "mynetworks",
                                T::Array(nets.into_iter().map(T::String).collect()),
                            );
                            true
                        }
                    }
                    Target::Array(n) if n == "storage_sql_dsn" || n == "lookup_sql_dsn" => {
                        let first = match v {
                            Value::List(items) => items.first().cloned(),
                            _ => None,
                        };
                        match first.as_ref().and_then(dsn_url) {
                            Some(url) => {
                                set(&mut root, "sql.url", T::String(url));
                                if n == "lookup_sql_dsn" {
                                    set(&mut root, "sql.lookups", T::Boolean(true));
                                }
                                true
                            }
                            None => false,
                        }
                    }
                    Target::HashElem(h, port) if h == "interface_policy" => match v {
                        Value::Str(bank) => match port.parse::<i64>() {
                            Ok(p) => {
                                let mut sel = Table::new();
                                sel.insert("port".into(), T::Integer(p));
                                sel.insert("bank".into(), T::String(bank.clone()));
                                push(&mut root, "policy_bank_select", T::Table(sel));
                                true
                            }
                            Err(_) => false,
                        },
                        _ => false,
                    },
                    Target::HashElem(h, bank) if h == "policy_bank" => match v {
                        Value::Hash(pairs) => {
                            let table = ["policy_bank", bank.as_str()];
                            // An empty bank still exists (MYNETS with no overrides).
                            set_in(&mut root, &table, T::Table(Table::new()));
                            for (k, v) in pairs {
                                if !policy_setting(&mut root, &table, k, v) {
                                    left(format!("$policy_bank{{'{bank}'}}{{{k}}}"));
                                }
                            }
                            true
                        }
                        _ => false,
                    },
                    Target::Scalar(n) => match GLOBAL.iter().find(|(g, _, _)| g == n) {
                        Some((_, key, kind)) => {
                            !unresolved(v)
                                && scalar(v, *kind).map(|t| set(&mut root, key, t)).is_some()
                        }
                        None => policy_setting(&mut root, &["policy"], n, v),
                    },
                    Target::Array(n) => policy_setting(&mut root, &["policy"], n, v),
                    _ => false,
                };
            if !done {
                left(target.display());
            }
        }
    }
    if !ports.is_empty() {
        for p in ports {
            let mut l = Table::new();
            let addr = if bind.contains(':') {
                format!("[{bind}]")
            } else {
                bind.clone()
            };
            l.insert(
                "inet".into(),
                T::String(format!("{addr}:{}", p.as_integer().unwrap_or(10024))),
            );
            push(&mut root, "listen", T::Table(l));
        }
    }
    let mut text = String::from(
        "# Converted from an amavisd-new configuration by `amavisd convert-config`.\n\
         # Every key not set here has its default (etc/amavisd.toml documents them all).\n",
    );
    if !unconverted.is_empty() {
        text.push_str("# Not converted (set by hand if still needed):\n");
        for n in &unconverted {
            text.push_str(&format!("#   {n}\n"));
        }
    }
    text.push('\n');
    text.push_str(&toml::to_string(&root).unwrap_or_default());
    Converted {
        toml: text,
        unconverted,
    }
}

/// Appends `v` to the array of tables `key`.
fn push(root: &mut Table, key: &str, v: T) {
    let entry = root
        .entry(key.to_string())
        .or_insert_with(|| T::Array(Vec::new()));
    if let Some(a) = entry.as_array_mut() {
        a.push(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsns_become_urls() {
        let dsn = |s: &[&str]| {
            dsn_url(&Value::List(
                s.iter().map(|x| Value::Str(x.to_string())).collect(),
            ))
        };
        assert_eq!(
            dsn(&[
                "DBI:Pg:database=mail;host=127.0.0.1;port=5432",
                "amavis",
                "pw"
            ])
            .as_deref(),
            Some("postgres://amavis:pw@127.0.0.1:5432/mail")
        );
        assert_eq!(
            dsn(&["DBI:mysql:database=mail;host=db.example", "amavis", ""]).as_deref(),
            Some("mysql://amavis@db.example/mail")
        );
        assert_eq!(
            dsn(&["DBI:SQLite:dbname=/var/lib/amavis/mail.sqlite", "", ""]).as_deref(),
            Some("sqlite:/var/lib/amavis/mail.sqlite")
        );
        assert_eq!(dsn(&["DBI:Oracle:x"]), None);
    }

    #[test]
    fn values_from_unknown_variables_are_listed_not_converted() {
        let c = convert(&[
            "@mynetworks = (\"$our_net\");\n$virus_admin = \"postmaster\\@$mydomain\";\n\
             $sa_kill_level_deflt = 7;\n"
                .to_string(),
        ]);
        assert_eq!(c.unconverted, vec!["@mynetworks", "$virus_admin"]);
        assert!(c.toml.contains("spam_kill_level = 7.0"), "{}", c.toml);
        assert!(!c.toml.contains("unknown"), "{}", c.toml);
    }
}
