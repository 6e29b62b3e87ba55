//! amavisd-new's `*_maps` lists (`@virus_lovers_maps = (\%virus_lovers, \@virus_lovers_acl,
//! \$virus_lovers_re)`) read as what they say: a constant for everyone, or per-recipient
//! lookup keys, which become `[recipients."KEY"]` tables (our hash lookups try keys in
//! amavisd-new's order). An ACL's `user@dom`, `dom` and `.dom` are the same keys in a hash;
//! `!key` gives false.

use super::super::perl_conf::Value;
use std::collections::HashMap;

/// What a `*_maps` list says.
#[derive(Debug, Default, PartialEq)]
pub struct Maps {
    /// A constant that applies to every recipient not matched by a key before it.
    pub constant: Option<Value>,
    /// Lookup keys (lower case) with their values, in the order written.
    pub keys: Vec<(String, Value)>,
    /// Some keys came from an ACL: their values are only true or false.
    pub acl: bool,
    /// The variables it refers to (`@virus_lovers_acl`): converted through it.
    pub refs: Vec<String>,
}

/// Reads a `*_maps` list; `None` when it holds what we cannot express (regex tables, SQL or
/// LDAP, `read_hash()` calls, references to something not assigned as a list or hash).
/// References to variables that the files never assign are amavisd-new's empty defaults.
pub fn read(v: &Value, assigned: &HashMap<String, Value>) -> Option<Maps> {
    let items: Vec<&Value> = match v {
        Value::List(items) => items.iter().collect(),
        one => vec![one],
    };
    let mut m = Maps::default();
    for item in items {
        if m.constant.is_some() {
            // Everything after a constant is unreachable.
            break;
        }
        match item {
            Value::Num(_) | Value::Str(_) | Value::Undef => m.constant = Some(item.clone()),
            Value::List(acl) => {
                m.acl = true;
                acl_keys(acl, &mut m.keys)?
            }
            Value::Hash(pairs) => {
                for (k, val) in pairs {
                    m.keys.push((k.to_lowercase(), val.clone()));
                }
            }
            Value::Ref(name) => {
                m.refs.push(name.clone());
                from_reference(name, assigned.get(name.as_str()), &mut m)?;
            }
            _ => return None,
        }
    }
    Some(m)
}

/// What a reference in a `*_maps` list adds: the list, hash or scalar it names, as assigned
/// in the files; nothing when never assigned (amavisd-new's empty default).
fn from_reference(name: &str, value: Option<&Value>, m: &mut Maps) -> Option<()> {
    match (name.chars().next(), value) {
        (_, None) => {}
        (Some('@'), Some(Value::List(acl))) => {
            m.acl = true;
            acl_keys(acl, &mut m.keys)?
        }
        (Some('%'), Some(Value::List(flat))) => {
            for pair in flat.chunks(2) {
                let [Value::Str(k), val] = pair else {
                    return None;
                };
                m.keys.push((k.to_lowercase(), val.clone()));
            }
        }
        (Some('$'), Some(Value::Undef)) => {}
        (Some('$'), Some(c @ (Value::Num(_) | Value::Str(_)))) => {
            m.constant = Some(c.clone());
        }
        _ => return None,
    }
    Some(())
}

/// The keys of an ACL list (nested lists flattened), each true, or false with `!`.
fn acl_keys(acl: &[Value], keys: &mut Vec<(String, Value)>) -> Option<()> {
    for e in acl {
        match e {
            Value::Str(s) => {
                let (key, value) = match s.strip_prefix('!') {
                    Some(k) => (k, Value::Num(0.0)),
                    None => (s.as_str(), Value::Num(1.0)),
                };
                keys.push((key.to_lowercase(), value));
            }
            Value::List(inner) => acl_keys(inner, keys)?,
            _ => return None,
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn maps_as_sites_write_them() {
        let none = HashMap::new();
        // Debian's defaults: references to empty variables.
        let refs = Value::List(vec![
            Value::Ref("%virus_lovers".into()),
            Value::Ref("@virus_lovers_acl".into()),
            Value::Ref("$virus_lovers_re".into()),
        ]);
        let m = read(&refs, &none).unwrap();
        assert!(m.keys.is_empty() && m.constant.is_none());
        assert_eq!(
            m.refs,
            ["%virus_lovers", "@virus_lovers_acl", "$virus_lovers_re"]
        );
        // Those variables set elsewhere in the files.
        let mut assigned = HashMap::new();
        assigned.insert(
            "@virus_lovers_acl".into(),
            Value::List(vec![s("a@example.com"), s("!.example.net")]),
        );
        assigned.insert(
            "%virus_lovers".into(),
            Value::List(vec![s("B@Example.org"), Value::Num(1.0)]),
        );
        let m = read(&refs, &assigned).unwrap();
        assert_eq!(
            m.keys,
            [
                ("b@example.org".into(), Value::Num(1.0)),
                ("a@example.com".into(), Value::Num(1.0)),
                (".example.net".into(), Value::Num(0.0)),
            ]
        );
        // A constant, and an inline ACL.
        assert_eq!(
            read(&Value::List(vec![Value::Num(1.0)]), &none)
                .unwrap()
                .constant,
            Some(Value::Num(1.0))
        );
        let acl = Value::List(vec![Value::List(vec![s("x@y")])]);
        assert_eq!(
            read(&acl, &none).unwrap().keys,
            [("x@y".into(), Value::Num(1.0))]
        );
        // Regex tables are not expressible here.
        let re = Value::List(vec![Value::Call("new_RE".into(), vec![])]);
        assert_eq!(read(&re, &none), None);
    }
}
