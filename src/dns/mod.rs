//! DNS for the network checks (blocklists on relays and links, `askdns`): one resolver for
//! the process, configured in `[dns]`, and the per-message batch that sends a message's
//! queries out together early in the scan and collects what came back by its deadline.
//!
//! # Limits
//! - `query_timeout` (3 s): one query, retried once by the resolver within it.
//! - `budget` (10 s): all lookups of one message together, counted from the first query;
//!   SpamAssassin's `rbl_timeout` is 15 s, less here because mail waits in our slot.
//! - `max_queries` (100): queries of one message; the rest are not sent (a message can
//!   name thousands of links, and each is a query to someone else's server).
//! - `cache_size` (10,000): answers kept, each until its TTL, NXDOMAIN too (by the zone's
//!   SOA minimum), so repeated relays and links cost nothing.
//!
//! # Failure
//! A slow, dead or lying server is never an error that holds mail: a lookup that fails or
//! is still out at the deadline is an [`Answer::Failed`], the rules that needed it do not
//! fire, and the scan says how many timed out. DNS never turns into a 4xx.

mod address;
mod batch;
mod resolver;

pub use address::{is_private, reverse_ip};

pub use batch::{Answers, Pending, Query, QueryKind, Then};
pub use resolver::{Answer, Failure, Resolver, settings as resolver_settings};

use serde::Deserialize;

/// The `[dns]` table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Network checks on (SpamAssassin's `dns_available yes`): DNS blocklists, URI
    /// blocklists, `askdns`, with score sets 1 and 3. Off: score sets 0 and 2, no query
    /// ever leaves the host, as amavisd-new with `skip_rbl_checks 1` / `local_tests_only`.
    pub enabled: bool,
    /// Name servers as `ip` or `ip:port` (`127.0.0.1:10053`, `[::1]:53`); empty: those of
    /// /etc/resolv.conf. A site with blocklist subscriptions points this at its own
    /// caching resolver (public resolvers are refused by most blocklists).
    pub servers: Vec<String>,
    /// Seconds one query may take (the resolver retries once within it).
    pub query_timeout: u64,
    /// Seconds all lookups of one message may take together; what has not answered by
    /// then counts as not listed, and the message goes on.
    pub budget: u64,
    /// Queries per message at most.
    pub max_queries: usize,
    /// Answers cached (positive and negative), each until its TTL.
    pub cache_size: u64,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            enabled: true,
            servers: Vec::new(),
            query_timeout: 3,
            budget: 10,
            max_queries: 100,
            cache_size: 10_000,
        }
    }
}

impl DnsConfig {
    /// Refuses values the resolver could not work with: `(key, reason)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.query_timeout == 0 {
            return Err(("query_timeout".into(), "must be at least 1 second".into()));
        }
        if self.budget == 0 {
            return Err(("budget".into(), "must be at least 1 second".into()));
        }
        for s in &self.servers {
            resolver::server_addr(s).map_err(|e| ("servers".to_string(), e))?;
        }
        Ok(())
    }
}

/// Why the resolver could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// No server configured and /etc/resolv.conf unusable; permanent until fixed.
    #[error("DNS resolver: {0}")]
    Setup(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_and_times_are_checked() {
        let ok = DnsConfig {
            servers: vec!["127.0.0.1:10053".into(), "::1".into(), "[::1]:53".into()],
            ..DnsConfig::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        let bad = DnsConfig {
            servers: vec!["dns.example".into()],
            ..DnsConfig::default()
        };
        let (key, why) = bad.validate().unwrap_err();
        assert_eq!(key, "servers");
        assert!(why.contains("dns.example"), "{why}");
        let zero = DnsConfig {
            budget: 0,
            ..DnsConfig::default()
        };
        assert_eq!(zero.validate().unwrap_err().0, "budget");
    }
}
