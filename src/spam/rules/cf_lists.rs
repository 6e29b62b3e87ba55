//! The list directives of SpamAssassin's configuration that name addresses, hosts or
//! subjects (`welcomelist_from`, `enlist_addrlist (NAME) ...`, `enlist_uri_host (NAME) ...`,
//! `def_welcomelist_from_rcvd ...`), read into the word lists the eval functions get
//! (`eval::Lists`), under one name per list whatever the spelling (SpamAssassin 4 renamed
//! white/black to welcome/block and kept the old names as aliases).
//!
//! Entries stay text here: `addr` globs, `addr relay` pairs for the `_rcvd` lists, `host` or
//! `!host` for URI host lists. The eval functions compile them (`eval::wlbl`).

use std::collections::{BTreeMap, BTreeSet};

/// Where a list directive's entries go: the list's name, and whether they are removed.
fn target(directive: &str) -> Option<(&'static str, bool)> {
    Some(match directive {
        "welcomelist_from" | "whitelist_from" => ("welcomelist_from", false),
        "unwelcomelist_from" | "unwhitelist_from" => ("welcomelist_from", true),
        "blocklist_from" | "blacklist_from" => ("blocklist_from", false),
        "unblocklist_from" | "unblacklist_from" => ("blocklist_from", true),
        "welcomelist_from_rcvd" | "whitelist_from_rcvd" => ("welcomelist_from_rcvd", false),
        "def_welcomelist_from_rcvd" | "def_whitelist_from_rcvd" => {
            ("def_welcomelist_from_rcvd", false)
        }
        "welcomelist_allows_relays" | "whitelist_allows_relays" => {
            ("welcomelist_allows_relays", false)
        }
        "welcomelist_to" | "whitelist_to" => ("welcomelist_to", false),
        "blocklist_to" | "blacklist_to" => ("blocklist_to", false),
        "more_spam_to" => ("more_spam_to", false),
        "all_spam_to" => ("all_spam_to", false),
        "welcomelist_subject" | "whitelist_subject" => ("welcomelist_subject", false),
        "blocklist_subject" | "blacklist_subject" => ("blocklist_subject", false),
        "blocklist_uri_host" | "blacklist_uri_host" => ("uri_host:BLOCK", false),
        "welcomelist_uri_host" | "whitelist_uri_host" => ("uri_host:WELCOME", false),
        "welcomelist_bounce_relays" | "whitelist_bounce_relays" => {
            ("welcomelist_bounce_relays", false)
        }
        _ => return None,
    })
}

/// `(NAME) rest` of the `enlist_`/`delist_` directives.
fn named(rest: &str) -> Option<(&str, &str)> {
    let rest = rest.trim().strip_prefix('(')?;
    let (name, tail) = rest.split_once(')')?;
    Some((name.trim(), tail))
}

/// Reads one list directive into `lists`; false when `directive` is not one.
pub fn read(lists: &mut BTreeMap<String, BTreeSet<String>>, directive: &str, rest: &str) -> bool {
    if directive == "ok_locales" {
        // A setting, not a list: the last line wins.
        let words = rest
            .split_whitespace()
            .map(str::to_ascii_lowercase)
            .collect();
        lists.insert(directive.to_string(), words);
        return true;
    }
    let (list, remove, entries): (String, bool, Vec<String>) = match directive {
        "enlist_addrlist" | "delist_addrlist" | "enlist_uri_host" | "delist_uri_host" => {
            let Some((name, tail)) = named(rest) else {
                return true;
            };
            let kind = if directive.ends_with("addrlist") {
                "addrlist"
            } else {
                "uri_host"
            };
            (
                format!("{kind}:{name}"),
                directive.starts_with("delist"),
                tail.split_whitespace()
                    .map(str::to_ascii_lowercase)
                    .collect(),
            )
        }
        d => {
            let Some((list, remove)) = target(d) else {
                return false;
            };
            let entries = if list.ends_with("_rcvd") {
                // One `addr relay` pair a line.
                let mut w = rest.split_whitespace();
                match (w.next(), w.next()) {
                    (Some(a), Some(r)) => {
                        vec![format!(
                            "{} {}",
                            a.to_ascii_lowercase(),
                            r.to_ascii_lowercase()
                        )]
                    }
                    _ => return true,
                }
            } else if list.ends_with("_subject") {
                vec![rest.trim().to_ascii_lowercase()]
            } else {
                rest.split_whitespace()
                    .map(str::to_ascii_lowercase)
                    .collect()
            };
            (list.to_string(), remove, entries)
        }
    };
    let set = lists.entry(list).or_default();
    for e in entries.into_iter().filter(|e| !e.is_empty()) {
        if remove {
            set.remove(&e);
        } else {
            set.insert(e);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_lands_in_one_list() {
        let mut l = BTreeMap::new();
        assert!(read(&mut l, "whitelist_from", "*@Example.com bob@x.org"));
        assert!(read(&mut l, "welcomelist_from", "ann@y.org"));
        assert!(read(&mut l, "unwhitelist_from", "bob@x.org"));
        assert!(read(
            &mut l,
            "def_whitelist_from_rcvd",
            "*@bank.com  bank.com"
        ));
        assert!(read(
            &mut l,
            "enlist_addrlist",
            "(PAYPAL) *@paypal.com *@paypal.de"
        ));
        assert!(read(&mut l, "delist_addrlist", "(PAYPAL) *@paypal.de"));
        assert!(read(
            &mut l,
            "enlist_uri_host",
            "(BAD) example.top !ok.example.top"
        ));
        assert!(!read(&mut l, "score", "X 1"));
        let get = |n: &str| {
            l.get(n)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect::<Vec<_>>()
        };
        assert_eq!(get("welcomelist_from"), ["*@example.com", "ann@y.org"]);
        assert_eq!(get("def_welcomelist_from_rcvd"), ["*@bank.com bank.com"]);
        assert_eq!(get("addrlist:PAYPAL"), ["*@paypal.com"]);
        assert_eq!(get("uri_host:BAD"), ["!ok.example.top", "example.top"]);
    }
}
