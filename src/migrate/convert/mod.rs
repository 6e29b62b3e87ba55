//! `amavisd convert-config amavisd.conf...`: turns the common settings of an amavisd-new
//! configuration into our TOML (sockets and what they speak, forward method, mynetworks,
//! local domains, spam levels, destinies, quarantine methods and directory, admins, lovers
//! and bypasses with their per-recipient lists, SQL DSNs, banned file names, decoder and
//! SMTP limits, the clamd scanner, policy banks and what loads them). What it cannot
//! convert it lists by name, so the administrator knows what to look at; what it writes
//! always loads.

mod listen;
mod maps;
mod special;
mod tables;

use super::perl_conf::{self, Target, Value};
use std::collections::HashMap;
use tables::{GLOBAL, Kind, POLICY, POLICY_MAPS, scalar, strings};
use toml::{Table, Value as T};

/// The result: TOML text (which `Config::load` reads) and the settings left behind.
#[derive(Debug)]
pub struct Converted {
    pub toml: String,
    /// amavisd-new names not converted (`$DO_SYSLOG`, `@av_scanners`,
    /// `$policy_bank{'X'}{forward_method}`), in file order.
    pub unconverted: Vec<String>,
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

/// Appends `v` to the array of tables `key`.
fn push(root: &mut Table, key: &str, v: T) {
    let entry = root
        .entry(key.to_string())
        .or_insert_with(|| T::Array(Vec::new()));
    if let Some(a) = entry.as_array_mut() {
        a.push(v);
    }
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

/// The conversion as it goes.
struct Conversion {
    root: Table,
    unconverted: Vec<String>,
    /// Every assignment by its name (`@virus_lovers_acl`), for references to it.
    assigned: HashMap<String, Value>,
    sockets: listen::Sockets,
    /// Variables read through references of converted settings (`\@virus_lovers_acl`).
    referenced: Vec<String>,
}

impl Conversion {
    fn left(&mut self, name: String) {
        if !self.unconverted.contains(&name) {
            self.unconverted.push(name);
        }
    }

    /// One per-policy setting (`name` as amavisd-new spells it) into `table` (`["policy"]`
    /// or `["policy_bank", NAME]`); false when it is not one we convert.
    fn policy_setting(&mut self, table: &[&str], name: &str, v: &Value) -> bool {
        if unresolved(v) {
            return false;
        }
        if let Some((_, key, kind)) = POLICY.iter().find(|(n, _, _)| *n == name) {
            return match (kind, v) {
                (Kind::Level, Value::Undef) => true,
                _ => scalar(v, *kind)
                    .map(|t| set_in(&mut self.root, &at(table, key), t))
                    .is_some(),
            };
        }
        if let Some((_, key, kind)) = POLICY_MAPS.iter().find(|(n, _, _)| *n == name) {
            return self.maps_setting(table, key, *kind, v);
        }
        if matches!(name, "local_domains_maps" | "local_domains_acl") {
            let mut domains = Vec::new();
            if strings(v, &mut domains) {
                let list = domains.into_iter().map(T::String).collect();
                set_in(&mut self.root, &at(table, "local_domains"), T::Array(list));
                return true;
            }
        }
        false
    }

    /// A `*_maps` list: its constant into `table`, its lookup keys into `[recipients]`
    /// (which apply to every bank, so a bank's own keys cannot be expressed).
    fn maps_setting(&mut self, table: &[&str], key: &str, kind: Kind, v: &Value) -> bool {
        let Some(m) = maps::read(v, &self.assigned) else {
            return false;
        };
        let global = table == ["policy"];
        // A bank's own keys cannot be expressed; an ACL gives only true or false.
        if !m.keys.is_empty() && (!global || (m.acl && kind != Kind::Bool)) {
            return false;
        }
        let mut values = Vec::new();
        for (k, val) in &m.keys {
            match scalar(val, kind) {
                Some(t) => values.push((k.clone(), t)),
                None => return false,
            }
        }
        let constant = match &m.constant {
            Some(c) => match scalar(c, kind) {
                Some(t) => Some(t),
                None => return false,
            },
            None => None,
        };
        for (k, t) in values {
            set_in(&mut self.root, &["recipients", &k, key], t);
        }
        self.referenced.extend(m.refs);
        if let Some(t) = constant {
            set_in(&mut self.root, &at(table, key), t);
        }
        true
    }

    /// `$policy_bank{NAME} = { ... }`.
    fn policy_bank(&mut self, bank: &str, pairs: &[(String, Value)]) {
        let table = ["policy_bank", bank];
        let socket_only = pairs
            .iter()
            .all(|(k, _)| listen::SOCKET_KEYS.contains(&k.as_str()));
        if !socket_only {
            // An empty bank still exists (MYNETS with no overrides).
            set_in(&mut self.root, &table, T::Table(Table::new()));
        }
        for (k, v) in pairs {
            let done = match (k.as_str(), v) {
                ("protocol", Value::Str(p)) => {
                    self.sockets
                        .protocol
                        .insert(bank.to_string(), p.to_ascii_uppercase());
                    true
                }
                ("auth_required_release", v) => match scalar(v, Kind::Bool) {
                    Some(T::Boolean(b)) => {
                        self.sockets
                            .auth_required_release
                            .insert(bank.to_string(), b);
                        true
                    }
                    _ => false,
                },
                // Our release socket and listeners take loopback only; an ACL that says
                // so is what we do anyway.
                ("inet_acl", v) => {
                    let mut nets = Vec::new();
                    strings(v, &mut nets)
                        && nets.iter().all(|n| {
                            let n = n.trim_matches(['[', ']']);
                            n.starts_with("127.") || n == "::1"
                        })
                }
                ("av_scanners" | "av_scanners_backup", v) => {
                    let which = if k == "av_scanners" {
                        "primary"
                    } else {
                        "backup"
                    };
                    let (ours, others) = special::clamd_scanners(v);
                    others.is_empty() && {
                        set_in(
                            &mut self.root,
                            &["policy_bank", bank, "av", which],
                            T::Array(ours),
                        );
                        true
                    }
                }
                _ => self.policy_setting(&table, k, v),
            };
            if !done {
                self.left(format!("$policy_bank{{'{bank}'}}{{{k}}}"));
            }
        }
    }

    /// One assignment; false when it is not converted.
    fn item(&mut self, target: &Target, v: &Value) -> bool {
        if let Target::Array(n) = target
            && (n == "av_scanners" || n == "av_scanners_backup")
        {
            self.scanners(n, v);
            return true;
        }
        if unresolved(v) {
            return false;
        }
        if let Some(done) = self.socket_item(target, v) {
            return done;
        }
        match target {
            // Only interpolated into other settings, which carry its value.
            Target::Scalar(n) if n == "MYHOME" => true,
            Target::Scalar(n) if n == "smtpd_timeout" => match scalar(v, Kind::Int) {
                Some(t) => {
                    set(&mut self.root, "limits.idle_timeout", t.clone());
                    set(&mut self.root, "limits.data_timeout", t);
                    true
                }
                None => false,
            },
            // 0 means "no limit" to amavisd-new; we always have one: keep ours, say so.
            Target::Scalar(n) if n == "smtpd_message_size_limit" => match scalar(v, Kind::Int) {
                Some(T::Integer(i)) if i > 0 => {
                    set(&mut self.root, "limits.message_size_limit", T::Integer(i));
                    true
                }
                _ => false,
            },
            Target::Scalar(n) | Target::Array(n) if n == "banned_filename_re" => self.banned(v),
            Target::Array(n) if n == "client_ipaddr_policy" => {
                match special::client_policy(v, &self.assigned) {
                    Some(rules) => {
                        for r in rules {
                            push(&mut self.root, "policy_bank_select", r);
                        }
                        true
                    }
                    None => false,
                }
            }
            Target::Array(n) if n == "mynetworks" || n == "mynetworks_maps" => {
                let mut nets = Vec::new();
                strings(v, &mut nets) && {
                    let list = nets.into_iter().map(T::String).collect();
                    set(&mut self.root, "mynetworks", T::Array(list));
                    true
                }
            }
            Target::Array(n) if n == "storage_sql_dsn" || n == "lookup_sql_dsn" => self.dsn(n, v),
            Target::HashElem(h, bank) if h == "policy_bank" => match v {
                Value::Hash(pairs) => {
                    self.policy_bank(bank, pairs);
                    true
                }
                _ => false,
            },
            Target::Scalar(n) => match GLOBAL.iter().find(|(g, _, _)| g == n) {
                Some((_, key, kind)) => scalar(v, *kind)
                    .map(|t| set(&mut self.root, key, t))
                    .is_some(),
                None => self.policy_setting(&["policy"], n, v),
            },
            Target::Array(n) => self.policy_setting(&["policy"], n, v),
            _ => false,
        }
    }

    /// `@av_scanners`, `@av_scanners_backup`: judged entry by entry, so that an unknown
    /// variable in another scanner's entry does not spoil the clamd one.
    fn scanners(&mut self, name: &str, v: &Value) {
        let (ours, others) = special::clamd_scanners(v);
        if !others.is_empty() {
            self.left(format!("@{name} (not clamd): {}", others.join(", ")));
        }
        let which = if name == "av_scanners" {
            "av.primary"
        } else {
            "av.backup"
        };
        if !ours.is_empty() {
            set(&mut self.root, which, T::Array(ours));
        }
    }

    /// The sockets' settings, gathered for [`listen::Sockets::write`]; `None` for others.
    fn socket_item(&mut self, target: &Target, v: &Value) -> Option<bool> {
        Some(match (target, v) {
            (Target::Scalar(n), Value::Str(s)) if n == "inet_socket_bind" => {
                self.sockets.bind = Some(s.clone());
                true
            }
            (Target::Scalar(n), Value::Str(s)) if n == "unix_socketname" => {
                self.sockets.unix = Some(s.clone());
                true
            }
            (Target::Scalar(n), _) if n == "inet_socket_port" => {
                let list = match v {
                    Value::List(items) => items.clone(),
                    one => vec![one.clone()],
                };
                let ports: Vec<i64> = list
                    .iter()
                    .filter_map(|p| scalar(p, Kind::Int)?.as_integer())
                    .collect();
                let ok = ports.len() == list.len();
                self.sockets.ports = ports;
                ok
            }
            (Target::HashElem(h, key), Value::Str(bank)) if h == "interface_policy" => {
                self.sockets.interface.push((key.clone(), bank.clone()));
                true
            }
            (Target::Scalar(n) | Target::HashElem(n, _), _)
                if n == "inet_socket_bind" || n == "unix_socketname" || n == "interface_policy" =>
            {
                false
            }
            _ => return None,
        })
    }

    /// `$banned_filename_re`: the SITE rule set, its refused rules listed.
    fn banned(&mut self, v: &Value) -> bool {
        let Some((rules, refused)) = special::banned_rules(v) else {
            return false;
        };
        set(&mut self.root, "banned.rule_sets.SITE", T::Array(rules));
        set(
            &mut self.root,
            "policy.banned_rules",
            T::String("SITE".into()),
        );
        for r in refused {
            self.left(r);
        }
        true
    }

    /// `@storage_sql_dsn`, `@lookup_sql_dsn`: the first DSN as `[sql] url`.
    fn dsn(&mut self, name: &str, v: &Value) -> bool {
        let first = match v {
            Value::List(items) => items.first(),
            _ => None,
        };
        let Some(url) = first.and_then(special::dsn_url) else {
            return false;
        };
        set(&mut self.root, "sql.url", T::String(url));
        if name == "lookup_sql_dsn" {
            set(&mut self.root, "sql.lookups", T::Boolean(true));
        }
        true
    }
}

/// Converts the amavisd-new configuration files `sources` (read in order, as amavisd-new
/// reads its conf.d files).
pub fn convert(sources: &[String]) -> Converted {
    let mut vars: HashMap<String, String> = HashMap::new();
    // amavisd-new's own defaults that configurations interpolate.
    vars.insert("MYHOME".into(), "/var/lib/amavis".into());
    vars.insert("myproduct_name".into(), "amavisd-new".into());
    let reads: Vec<perl_conf::Assignments> = sources
        .iter()
        .map(|src| perl_conf::read(src, &mut vars))
        .collect();
    let mut c = Conversion {
        root: Table::new(),
        unconverted: Vec::new(),
        assigned: HashMap::new(),
        sockets: listen::Sockets::default(),
        referenced: Vec::new(),
    };
    for read in &reads {
        for (target, v) in &read.items {
            c.assigned.insert(target.display(), v.clone());
        }
    }
    for read in &reads {
        for s in &read.skipped {
            c.left(s.clone());
        }
        for (name, args) in &read.calls {
            match special::dkim_key(args).filter(|_| name == "dkim_key") {
                Some(key) => {
                    let dkim = c
                        .root
                        .entry("dkim".to_string())
                        .or_insert_with(|| T::Table(Table::new()));
                    if let Some(d) = dkim.as_table_mut() {
                        push(d, "keys", key);
                    }
                }
                None => c.left(format!("{name}()")),
            }
        }
        for (target, v) in &read.items {
            if !c.item(target, v) {
                c.left(target.display());
            }
        }
    }
    for l in c.sockets.write(&mut c.root) {
        c.left(l);
    }
    ensure_selected_banks(&mut c.root);
    let referenced = c.referenced;
    c.unconverted.retain(|n| !referenced.contains(n));
    render(c.root, c.unconverted)
}

/// A bank that `%interface_policy` or `@client_ipaddr_policy` loads but the files never
/// define loads nothing in amavisd-new: an empty table here, so the selection still loads.
fn ensure_selected_banks(root: &mut Table) {
    let banks: Vec<String> = root
        .get("policy_bank_select")
        .and_then(T::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.get("bank")?.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for b in banks {
        let exists = root.get("policy_bank").and_then(|t| t.get(&b)).is_some();
        if !exists {
            set_in(root, &["policy_bank", &b], T::Table(Table::new()));
        }
    }
}

/// The TOML text, with what was left listed at the top.
fn render(root: Table, unconverted: Vec<String>) -> Converted {
    let mut text = String::from(
        "# Converted from an amavisd-new configuration by `amavisd convert-config`.\n\
         # Every key not set here has its default (etc/amavisd.toml documents them all).\n",
    );
    if !unconverted.is_empty() {
        text.push_str("# Not converted (set by hand if still needed):\n");
        for n in &unconverted {
            let one_line: String = n
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            text.push_str(&format!("#   {one_line}\n"));
        }
    }
    text.push('\n');
    text.push_str(&toml::to_string(&root).unwrap_or_default());
    Converted {
        toml: text,
        unconverted,
    }
}

#[cfg(test)]
mod tests {
    use super::special::dsn_url;
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
