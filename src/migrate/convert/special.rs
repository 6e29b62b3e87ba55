//! Settings that are not one value each: SQL DSNs, `$banned_filename_re`, `dkim_key()` calls,
//! the clamd entries of `@av_scanners`, and `@client_ipaddr_policy`.

use super::super::perl_conf::Value;
use super::tables::{Kind, scalar, strings};
use crate::banned::{Action, Rule, RuleSpec};
use std::collections::HashMap;
use toml::{Table, Value as T};

/// `DBI:Pg:database=mail;host=127.0.0.1;port=5432`, user, password as a URL for `[sql] url`.
pub fn dsn_url(v: &Value) -> Option<String> {
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
/// allows, `=> 1` bans. Each rule is compiled as the filter will compile it; one that does not
/// compile is left out and named in the second list, never written broken. `None` when the
/// value is not a `new_RE` of such rules.
pub fn banned_rules(v: &Value) -> Option<(Vec<T>, Vec<String>)> {
    let Value::Call(f, items) = v else {
        return None;
    };
    if f != "new_RE" {
        return None;
    }
    let mut rules = Vec::new();
    let mut refused = Vec::new();
    for i in items {
        let (pattern, flags, allow) = match i {
            Value::Regex { pattern, flags } => (pattern, flags, false),
            Value::List(pair) => match pair.as_slice() {
                [Value::Regex { pattern, flags }, action] => {
                    let ban = scalar(action, Kind::Bool)?;
                    (pattern, flags, ban == T::Boolean(false))
                }
                _ => return None,
            },
            _ => return None,
        };
        let inline: String = flags
            .chars()
            .filter(|c| matches!(c, 'i' | 'x' | 's' | 'm'))
            .collect();
        let regex = if inline.is_empty() {
            pattern.to_string()
        } else {
            format!("(?{inline}){pattern}")
        };
        let spec = RuleSpec {
            regex: Some(regex.clone()),
            glob: None,
            action: if allow { Action::Allow } else { Action::Ban },
            why: String::new(),
        };
        if Rule::compile(&spec).is_err() {
            refused.push(format!("$banned_filename_re: qr'{pattern}'{flags}"));
            continue;
        }
        let mut t = Table::new();
        t.insert("regex".into(), T::String(regex));
        if allow {
            t.insert("action".into(), T::String("allow".into()));
        }
        t.insert(
            "why".into(),
            T::String("from amavisd-new's $banned_filename_re".into()),
        );
        rules.push(T::Table(t));
    }
    Some((rules, refused))
}

/// `dkim_key('example.com', 'dkim', '/var/db/dkim/example.com.pem', OPTIONS...)` as a
/// `[[dkim.keys]]` table; `None` when its arguments are not three plain strings first.
pub fn dkim_key(args: &[Value]) -> Option<T> {
    let [
        Value::Str(domain),
        Value::Str(selector),
        Value::Str(file),
        ..,
    ] = args
    else {
        return None;
    };
    let mut k = Table::new();
    k.insert("domain".into(), T::String(domain.clone()));
    k.insert("selector".into(), T::String(selector.clone()));
    k.insert("key_file".into(), T::String(file.clone()));
    Some(T::Table(k))
}

/// The scanners of an `@av_scanners` list that we can run: the clamd ones (`\&ask_daemon`
/// with a clamd command and a socket path or `host:port`) as `[[av.primary]]` tables; the
/// names of the others, to be listed. amavisd-new's own socket protocols (CONTSCAN,
/// MULTISCAN, SCAN) become INSTREAM, which needs no shared files.
pub fn clamd_scanners(v: &Value) -> (Vec<T>, Vec<String>) {
    let mut ours = Vec::new();
    let mut others = Vec::new();
    let Value::List(entries) = v else {
        return (ours, vec!["(not a list)".into()]);
    };
    for e in entries {
        let Value::List(fields) = e else {
            others.push("(an entry that is not a list)".into());
            continue;
        };
        let name = match fields.first() {
            Some(Value::Str(n)) => n.clone(),
            _ => "(unnamed)".into(),
        };
        match clamd_entry(&name, fields).filter(|_| !super::unresolved(e)) {
            Some(t) => ours.push(t),
            None => others.push(name),
        }
    }
    (ours, others)
}

/// One `['ClamAV-clamd', \&ask_daemon, ["CONTSCAN {}\n", "/var/run/clamav/clamd.ctl"], ...]`.
fn clamd_entry(name: &str, fields: &[Value]) -> Option<T> {
    // \&ask_daemon reads as a reference to "&" followed by the bare name.
    let daemon = fields
        .iter()
        .any(|f| matches!(f, Value::Bare(b) if b == "ask_daemon"));
    let args = fields.iter().find_map(|f| match f {
        Value::List(a) => Some(a),
        _ => None,
    })?;
    let (Some(Value::Str(cmd)), Some(Value::Str(socket))) = (args.first(), args.get(1)) else {
        return None;
    };
    let clamd_cmd = ["CONTSCAN", "MULTISCAN", "SCAN", "zINSTREAM", "INSTREAM"]
        .iter()
        .any(|c| cmd.trim_start().starts_with(c));
    if !daemon || !clamd_cmd {
        return None;
    }
    let mut t = Table::new();
    t.insert("name".into(), T::String(name.to_string()));
    t.insert("type".into(), T::String("clamd".into()));
    if socket.starts_with('/') {
        t.insert("socket".into(), T::String(socket.clone()));
    } else {
        let addr: std::net::SocketAddr = socket.parse().ok()?;
        t.insert("tcp".into(), T::String(addr.to_string()));
    }
    t.insert("timeout".into(), T::Integer(60));
    Some(T::Table(t))
}

/// `@client_ipaddr_policy = (\@mynetworks => 'MYNETS', [qw(10.1.0.0/16)] => 'LAN', ...)` as
/// `[[policy_bank_select]]` client rules. `\@mynetworks => 'MYNETS'` is what we do anyway and
/// needs no rule. `None` when a network list cannot be read.
pub fn client_policy(v: &Value, assigned: &HashMap<String, Value>) -> Option<Vec<T>> {
    let Value::List(items) = v else {
        return None;
    };
    let mut rules = Vec::new();
    for pair in items.chunks(2) {
        let [nets, Value::Str(bank)] = pair else {
            return None;
        };
        let mut list = Vec::new();
        match nets {
            Value::Ref(r)
                if (r == "@mynetworks" || r == "@mynetworks_maps") && bank == "MYNETS" =>
            {
                continue;
            }
            Value::Ref(r) => {
                if !strings(assigned.get(r.as_str())?, &mut list) {
                    return None;
                }
            }
            other => {
                if !strings(other, &mut list) {
                    return None;
                }
            }
        }
        let mut t = Table::new();
        t.insert("bank".into(), T::String(bank.clone()));
        t.insert(
            "client".into(),
            T::Array(list.into_iter().map(T::String).collect()),
        );
        rules.push(T::Table(t));
    }
    Some(rules)
}
