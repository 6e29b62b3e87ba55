//! Key records: the ones configured in `[dkim.dns]`, then what DNS answered, kept until
//! their TTL runs out. mail-auth asks this cache before it asks DNS.

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::{ResolverCache, Txt};
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Records remembered from DNS; past it the cache starts over (a flood of signatures with
/// made-up selectors must not grow memory without end).
const MAX_LEARNED: usize = 10_000;

/// A key record's TXT text, parsed; the reason when mail-auth refuses it.
pub fn parse_record(text: &str) -> Result<Txt, String> {
    DomainKey::parse(text.as_bytes())
        .map(|k| Txt::DomainKey(Arc::new(k)))
        .map_err(|e| format!("not a DKIM key record: {e}"))
}

/// The name as mail-auth looks it up: lower case, with the root's dot.
fn fqdn(name: &str) -> Box<str> {
    let mut n = name.trim().to_ascii_lowercase();
    if !n.ends_with('.') {
        n.push('.');
    }
    n.into()
}

/// Configured records over a bounded cache of DNS answers.
pub struct KeyRecords {
    fixed: HashMap<Box<str>, Txt>,
    learned: Mutex<HashMap<Box<str>, (Txt, Instant)>>,
}

impl KeyRecords {
    /// The records of `[dkim.dns]`; errors name the record.
    pub fn new(fixed: &BTreeMap<String, String>) -> Result<KeyRecords, String> {
        let fixed = fixed
            .iter()
            .map(|(name, text)| {
                parse_record(text)
                    .map(|t| (fqdn(name), t))
                    .map_err(|e| format!("dns.{name:?}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(KeyRecords {
            fixed,
            learned: Mutex::new(HashMap::new()),
        })
    }
}

impl ResolverCache<Box<str>, Txt> for KeyRecords {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(t) = self.fixed.get(name) {
            return Some(t.clone());
        }
        let mut learned = self.learned.lock().unwrap_or_else(|p| p.into_inner());
        match learned.get(name) {
            Some((t, until)) if *until > Instant::now() => Some(t.clone()),
            Some(_) => {
                learned.remove(name);
                None
            }
            None => None,
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut learned = self.learned.lock().unwrap_or_else(|p| p.into_inner());
        learned.remove(name).map(|(t, _)| t)
    }

    fn insert(&self, key: Box<str>, value: Txt, valid_until: Instant) {
        let mut learned = self.learned.lock().unwrap_or_else(|p| p.into_inner());
        if learned.len() >= MAX_LEARNED {
            learned.clear();
        }
        learned.insert(key, (value, valid_until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_records_are_found_by_fqdn() {
        let mut m = BTreeMap::new();
        m.insert(
            "Sel._domainkey.Example.com".to_string(),
            "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".to_string(),
        );
        let r = KeyRecords::new(&m).unwrap();
        assert!(matches!(
            r.get::<str>("sel._domainkey.example.com."),
            Some(Txt::DomainKey(_))
        ));
        assert!(r.get::<str>("other._domainkey.example.com.").is_none());
    }

    #[test]
    fn a_bad_record_is_named() {
        let mut m = BTreeMap::new();
        m.insert(
            "s._domainkey.x.org".to_string(),
            "v=DKIM1; p=%%%".to_string(),
        );
        let Err(e) = KeyRecords::new(&m) else {
            panic!("a bad record was taken");
        };
        assert!(e.contains("s._domainkey.x.org"), "{e}");
    }
}
