//! amavisd-new's sockets: `$inet_socket_port`, `$inet_socket_bind`, `$unix_socketname` and the
//! `%interface_policy` banks that say what each one speaks. A port or socket whose bank sets
//! `protocol => 'AM.PDP'` is the release socket (`[release]`), not an SMTP listener; amavisd-new
//! reads its unix socket as AM.PDP unless told otherwise, as Debian's conf.d sets it. The
//! others become `[[listen]]`, and their banks `[[policy_bank_select]]` rules.

use std::collections::HashMap;
use toml::{Table, Value as T};

/// What the files said about sockets, gathered in any order and resolved at the end.
#[derive(Debug, Default)]
pub struct Sockets {
    pub bind: Option<String>,
    pub ports: Vec<i64>,
    pub unix: Option<String>,
    /// `%interface_policy`: a port number or `SOCK`, and the bank it loads.
    pub interface: Vec<(String, String)>,
    /// Banks' `protocol` settings, upper case.
    pub protocol: HashMap<String, String>,
    /// Banks' `auth_required_release` settings.
    pub auth_required_release: HashMap<String, bool>,
}

/// The banks that only say how to talk (protocol, ACL, release auth): they have no policy of
/// their own to write.
pub const SOCKET_KEYS: [&str; 3] = ["protocol", "inet_acl", "auth_required_release"];

impl Sockets {
    /// The protocol of the socket `key` (a port number or `SOCK`), and its bank.
    fn protocol_of(&self, key: &str) -> (String, Option<&String>) {
        let bank = self
            .interface
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, b)| b);
        let proto = bank
            .and_then(|b| self.protocol.get(b))
            .cloned()
            .unwrap_or_else(|| if key == "SOCK" { "AM.PDP" } else { "SMTP" }.into());
        (proto, bank)
    }

    /// Writes `[[listen]]`, `[release]` and the bank selections into `root`; returns what it
    /// could not express.
    pub fn write(&self, root: &mut Table) -> Vec<String> {
        let mut left = Vec::new();
        let bind = self.bind.clone().unwrap_or_else(|| "127.0.0.1".into());
        let host = if bind.contains(':') && !bind.starts_with('[') {
            format!("[{bind}]")
        } else {
            bind
        };
        let mut listen = Vec::new();
        let mut release = Table::new();
        for &port in &self.ports {
            let (proto, bank) = self.protocol_of(&port.to_string());
            let addr = format!("{host}:{port}");
            if proto == "AM.PDP" {
                if release.contains_key("inet") {
                    left.push(format!("$inet_socket_port {port} (a second AM.PDP port)"));
                } else {
                    release.insert("inet".into(), T::String(addr));
                    self.release_auth(bank, &mut release);
                }
                continue;
            }
            let mut l = Table::new();
            l.insert("inet".into(), T::String(addr));
            if proto == "LMTP" {
                l.insert("protocol".into(), T::String("lmtp".into()));
            } else if proto != "SMTP" {
                left.push(format!("$inet_socket_port {port} (protocol {proto})"));
                continue;
            }
            listen.push(T::Table(l));
            if let Some(b) = bank {
                select(root, "port", T::Integer(port), b);
            }
        }
        if let Some(path) = &self.unix {
            let (proto, bank) = self.protocol_of("SOCK");
            if proto == "AM.PDP" {
                release.insert("unix".into(), T::String(path.clone()));
                self.release_auth(bank, &mut release);
            } else {
                let mut l = Table::new();
                l.insert("unix".into(), T::String(path.clone()));
                if proto == "LMTP" {
                    l.insert("protocol".into(), T::String("lmtp".into()));
                }
                listen.push(T::Table(l));
                if let Some(b) = bank {
                    select(root, "socket", T::String(path.clone()), b);
                }
            }
        }
        if !listen.is_empty() {
            root.insert("listen".into(), T::Array(listen));
        }
        if !release.is_empty() {
            // Only one of our sockets is set by the files: the other keeps no default.
            release
                .entry("unix")
                .or_insert_with(|| T::String(String::new()));
            root.insert("release".into(), T::Table(release));
        }
        left
    }

    fn release_auth(&self, bank: Option<&String>, release: &mut Table) {
        if let Some(auth) = bank.and_then(|b| self.auth_required_release.get(b)) {
            release.insert("require_secret".into(), T::Boolean(*auth));
        }
    }
}

/// Appends a `[[policy_bank_select]]` rule `key = value` loading `bank`.
fn select(root: &mut Table, key: &str, value: T, bank: &str) {
    let mut sel = Table::new();
    sel.insert(key.into(), value);
    sel.insert("bank".into(), T::String(bank.to_string()));
    let entry = root
        .entry("policy_bank_select".to_string())
        .or_insert_with(|| T::Array(Vec::new()));
    if let Some(a) = entry.as_array_mut() {
        a.push(T::Table(sel));
    }
}
