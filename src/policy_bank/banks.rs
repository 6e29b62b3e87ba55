//! Policy banks and per-recipient settings, resolved.
//!
//! A bank is a TOML table of `[policy]` keys that overrides the ones below it. For a message,
//! banks load in this order, each at most once, and stack (the path `A/B` goes to the log and
//! to SQL `msgs.policy`): the listening port or socket, then `MYNETS` when the original client
//! (XFORWARD ADDR; our direct peer is always the MTA) is in `mynetworks`, as amavisd-new's
//! default `@client_ipaddr_policy` does, whether or not a `[policy_bank.MYNETS]` table exists;
//! it implies `originating = true`. Then the `[[policy_bank_select]]` rules by client address
//! and by sender, in the order written.
//!
//! For each recipient, `[recipients."KEY"]` tables (amavisd-new's hash lookups, keys tried in
//! the order of [`super::lookup::keys`]) and then `[[recipient_regex]]` entries override the
//! message's settings; for every key the first entry that defines it wins. SQL lookups will
//! come in front of these static tables through `Policies::recipient_overrides`.
//!
//! Merged settings are cached by bank path and matching entries: a message costs a few map
//! lookups, not a TOML deserialisation.

use super::lookup::{self, NetEntry};
use super::settings::Policy;
use crate::message::ClientInfo;
use regex::Regex;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// One `[[policy_bank_select]]` rule: exactly one criterion, and the bank it loads.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BankSelect {
    pub bank: String,
    /// Our listening port.
    pub port: Option<u16>,
    /// Our listening unix socket.
    pub socket: Option<PathBuf>,
    /// The original client (XFORWARD ADDR) in these networks (`!` excludes, first match).
    #[serde(default)]
    pub client: Vec<String>,
    /// The envelope sender matches one of these lookup keys (`user@dom`, `dom`, `.dom`, ...).
    #[serde(default)]
    pub sender: Vec<String>,
}

/// One `[[recipient_regex]]` entry: `regex` over the recipient address, then settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct RecipientRegex {
    pub regex: String,
    #[serde(flatten)]
    pub settings: toml::Table,
}

enum Criterion {
    Port(u16),
    Socket(PathBuf),
    Client(Vec<NetEntry>),
    Sender(Vec<String>),
}

/// The settings in force for one message.
#[derive(Debug, Clone)]
pub struct MessagePolicy {
    /// Loaded banks, in order (`MYNETS`, `ORIGINATING` ...); empty for none.
    pub banks: Vec<String>,
    /// The merged settings of the banks over `[policy]`.
    pub policy: Arc<Policy>,
}

impl MessagePolicy {
    /// amavisd-new's bank path, `A/B` (empty when no bank is loaded).
    pub fn path(&self) -> String {
        self.banks.join("/")
    }
}

/// Everything needed to resolve settings, built once per configuration.
pub struct Policies {
    base: toml::Table,
    banks: BTreeMap<String, toml::Table>,
    select: Vec<(Criterion, String)>,
    mynets: Vec<NetEntry>,
    recipients: HashMap<String, (usize, toml::Table)>,
    regex: Vec<(Regex, toml::Table)>,
    mydomain: String,
    cache: Mutex<HashMap<String, Arc<Policy>>>,
}

/// The error of building: a key path and the reason.
pub type BuildError = (String, String);

fn overlay(into: &mut toml::Table, from: &toml::Table) {
    for (k, v) in from {
        into.insert(k.clone(), v.clone());
    }
}

fn to_policy(t: &toml::Table) -> Result<Policy, BuildError> {
    let de = toml::Value::Table(t.clone());
    let p = serde_path_to_error::deserialize::<_, Policy>(de).map_err(|e| {
        let key = e.path().to_string();
        (key, e.into_inner().to_string())
    })?;
    p.check()?;
    Ok(p)
}

impl Policies {
    /// Checks and compiles the banks, selection rules and recipient tables; every bank and
    /// entry is tried on top of `[policy]`, so a wrong key or value is refused at load with
    /// its path (`policy_bank.MYNETS.spam_kill_level`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        policy: &Policy,
        banks: &BTreeMap<String, toml::Table>,
        select: &[BankSelect],
        mynetworks: &[String],
        recipients: &BTreeMap<String, toml::Table>,
        regex: &[RecipientRegex],
        mydomain: &str,
    ) -> Result<Policies, BuildError> {
        let base =
            toml::Table::try_from(policy).map_err(|e| ("policy".to_string(), e.to_string()))?;
        let check = |prefix: String, t: &toml::Table| {
            let mut m = base.clone();
            overlay(&mut m, t);
            to_policy(&m).map_err(|(k, r)| (format!("{prefix}.{k}"), r))
        };
        for (name, t) in banks {
            check(format!("policy_bank.{name}"), t)?;
        }
        let mut sel = Vec::new();
        for (i, s) in select.iter().enumerate() {
            let at = format!("policy_bank_select[{i}]");
            if !banks.contains_key(&s.bank) {
                return Err((
                    format!("{at}.bank"),
                    format!("no [policy_bank.{}] table", s.bank),
                ));
            }
            let n = usize::from(s.port.is_some())
                + usize::from(s.socket.is_some())
                + usize::from(!s.client.is_empty())
                + usize::from(!s.sender.is_empty());
            if n != 1 {
                return Err((
                    at,
                    "give exactly one of `port`, `socket`, `client` or `sender`".into(),
                ));
            }
            let c = if let Some(p) = s.port {
                Criterion::Port(p)
            } else if let Some(p) = &s.socket {
                Criterion::Socket(p.clone())
            } else if !s.client.is_empty() {
                Criterion::Client(
                    lookup::parse_nets(&s.client).map_err(|e| (format!("{at}.client"), e))?,
                )
            } else {
                Criterion::Sender(s.sender.iter().map(|x| x.to_lowercase()).collect())
            };
            sel.push((c, s.bank.clone()));
        }
        let mynets = lookup::parse_nets(mynetworks).map_err(|e| ("mynetworks".into(), e))?;
        let mut rcpts = HashMap::new();
        for (i, (key, t)) in recipients.iter().enumerate() {
            check(format!("recipients.\"{key}\""), t)?;
            rcpts.insert(key.to_lowercase(), (i, t.clone()));
        }
        let mut res = Vec::new();
        for (i, r) in regex.iter().enumerate() {
            let re = Regex::new(&r.regex)
                .map_err(|e| (format!("recipient_regex[{i}].regex"), e.to_string()))?;
            check(format!("recipient_regex[{i}]"), &r.settings)?;
            res.push((re, r.settings.clone()));
        }
        Ok(Policies {
            base,
            banks: banks.clone(),
            select: sel,
            mynets,
            recipients: rcpts,
            regex: res,
            mydomain: mydomain.to_string(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The settings with bank `name` alone loaded over `[policy]` (for tools and tests);
    /// `None` for an unknown bank.
    pub fn bank(&self, name: &str) -> Option<Policy> {
        let b = self.banks.get(name)?;
        let mut t = self.base.clone();
        overlay(&mut t, b);
        to_policy(&t).ok()
    }

    /// Whether bank `name` exists.
    pub fn has_bank(&self, name: &str) -> bool {
        self.banks.contains_key(name)
    }

    /// The banks for a message, by socket, client address and sender, and their settings.
    pub fn for_message(&self, client: &ClientInfo, sender: &str) -> MessagePolicy {
        self.for_message_with(client, sender, &[])
    }

    /// Same, with the banks a front end names loaded first, as a bank chosen by the
    /// listening socket is (a milter's `{daemon_name}`); names of no bank are skipped.
    pub fn for_message_with(
        &self,
        client: &ClientInfo,
        sender: &str,
        named: &[String],
    ) -> MessagePolicy {
        let mut names: Vec<String> = Vec::new();
        let mut load = |n: &str| {
            if !names.iter().any(|x| x == n) {
                names.push(n.to_string());
            }
        };
        for n in named {
            if self.has_bank(n) {
                load(n);
            } else {
                tracing::warn!("policy bank {n:?} named by a front end does not exist");
            }
        }
        for (c, bank) in &self.select {
            match c {
                Criterion::Port(p) if client.local.is_some_and(|a| a.port() == *p) => load(bank),
                Criterion::Socket(s) if client.socket_path.as_ref() == Some(s) => load(bank),
                _ => {}
            }
        }
        let addr = client
            .xforward
            .addr
            .as_deref()
            .map(|a| a.strip_prefix("IPv6:").unwrap_or(a))
            .and_then(|a| a.parse::<std::net::IpAddr>().ok());
        if let Some(ip) = addr
            && lookup::ip_in(ip, &self.mynets)
        {
            load("MYNETS");
        }
        let sender_keys = lookup::keys(sender, "+");
        for (c, bank) in &self.select {
            match c {
                Criterion::Client(nets) if addr.is_some_and(|ip| lookup::ip_in(ip, nets)) => {
                    load(bank)
                }
                Criterion::Sender(list) if sender_keys.iter().any(|k| list.contains(k)) => {
                    load(bank)
                }
                _ => {}
            }
        }
        let policy = self.merged(&names, &[]);
        MessagePolicy {
            banks: names,
            policy,
        }
    }

    /// The entries that apply to `addr`, highest priority first: hash keys in amavisd-new's
    /// order, then regex entries in file order. This is the seam for SQL lookups, which
    /// amavisd-new consults before static tables.
    fn recipient_overrides(&self, addr: &str, delimiter: &str) -> Vec<(String, &toml::Table)> {
        let mut out = Vec::new();
        for k in lookup::keys(addr, delimiter) {
            if let Some((i, t)) = self.recipients.get(&k) {
                out.push((format!("h{i}"), t));
            }
        }
        for (i, (re, t)) in self.regex.iter().enumerate() {
            if re.is_match(addr) {
                out.push((format!("r{i}"), t));
            }
        }
        out
    }

    /// The settings for one recipient, with settings from SQL (amavisd-new's `users` and
    /// `policy` tables) in front of the static tables.
    pub fn for_recipient_with(
        &self,
        msg: &MessagePolicy,
        addr: &str,
        sql: &toml::Table,
    ) -> Result<Arc<Policy>, BuildError> {
        if sql.is_empty() {
            return Ok(self.for_recipient(msg, addr));
        }
        // SQL values come from outside the configuration: checked like a table in the file
        // (once per distinct settings, then cached), and refused (the message waits) rather
        // than half-applied.
        let mut found = vec![(format!("s{}", sql), sql)];
        found.extend(self.recipient_overrides(addr, &msg.policy.recipient_delimiter));
        self.merge(&msg.banks, &found)
            .map_err(|(k, r)| (format!("SQL policy.{k}"), r))
    }

    /// The settings for one recipient of a message.
    pub fn for_recipient(&self, msg: &MessagePolicy, addr: &str) -> Arc<Policy> {
        if self.recipients.is_empty() && self.regex.is_empty() {
            return Arc::clone(&msg.policy);
        }
        let found = self.recipient_overrides(addr, &msg.policy.recipient_delimiter);
        if found.is_empty() {
            return Arc::clone(&msg.policy);
        }
        self.merged(&msg.banks, &found)
    }

    /// True when `addr` is in the policy's local domains.
    pub fn is_local(&self, policy: &Policy, addr: &str) -> bool {
        lookup::domain_in(addr, &policy.local_domains, &self.mydomain)
    }

    /// Settings from the configuration: every table was checked on top of [policy] at load,
    /// and overlaying checked tables keeps each value checked; should it fail anyway, the
    /// default policy is the safe answer.
    fn merged(&self, banks: &[String], rcpt: &[(String, &toml::Table)]) -> Arc<Policy> {
        self.merge(banks, rcpt).unwrap_or_default()
    }

    /// The banks' and recipient entries' tables over [policy], cached by their ids; a table
    /// that does not make a valid policy is an error and is not cached.
    fn merge(
        &self,
        banks: &[String],
        rcpt: &[(String, &toml::Table)],
    ) -> Result<Arc<Policy>, BuildError> {
        let mut key = banks.join("/");
        for (id, _) in rcpt {
            key.push('|');
            key.push_str(id);
        }
        if let Some(p) = self.cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(p);
        }
        let mut t = self.base.clone();
        for b in banks {
            if let Some(bt) = self.banks.get(b) {
                overlay(&mut t, bt);
            }
            if b == "MYNETS"
                && !self
                    .banks
                    .get(b)
                    .is_some_and(|x| x.contains_key("originating"))
            {
                t.insert("originating".into(), toml::Value::Boolean(true));
            }
        }
        // Lowest priority first, so that the first entry that defines a key wins.
        for (_, rt) in rcpt.iter().rev() {
            overlay(&mut t, rt);
        }
        let p = Arc::new(to_policy(&t)?);
        if let Ok(mut c) = self.cache.lock() {
            // Bounded: distinct keys are bank paths times matching entries (and distinct SQL
            // settings); past the bound, settings are merged afresh each time.
            if c.len() < 10_000 {
                c.insert(key, Arc::clone(&p));
            }
        }
        Ok(p)
    }
}
