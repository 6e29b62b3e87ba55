//! `[http]`: the rspamd-protocol listener and its limits, each with its default and reason.

use serde::Deserialize;

/// rspamd's HTTP protocol. Off by default: a site turns it on by naming an address, which
/// should be loopback (rspamd's own worker listens on `localhost:11333`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// `addr:port` to listen on (`127.0.0.1:11333`, rspamd's normal worker port); empty:
    /// no listener. What a client says (`IP`, `User`, `Settings-ID`) is trusted as the SMTP
    /// port trusts XFORWARD, so this is for the MTA's host: loopback, or a private network.
    pub listen: String,
    /// The controller's read password (rspamd's `password`): `/stat` and `/metrics` from a
    /// client outside `secure_ip`, and the learn commands when `enable_password` is empty.
    /// Empty: those clients may not use them at all. Checks never need a password, as on
    /// rspamd's normal worker.
    pub password: String,
    /// The controller's write password (rspamd's `enable_password`): `/learnspam`,
    /// `/learnham` from a client outside `secure_ip`. Empty: `password` does.
    pub enable_password: String,
    /// Clients that need no password (rspamd's `secure_ip`): loopback by default, so the
    /// MTA and `rspamc` on this host may learn, and a stranger may not poison the Bayes
    /// store. Networks as `10.0.0.0/8` or single addresses.
    pub secure_ip: Vec<String>,
    /// A policy bank every request loads first (empty: none), as a port's bank on the SMTP
    /// listener. `Settings-ID: NAME` loads bank NAME after it, if it exists.
    pub policy_bank: String,
    /// A request with `User:` (an authenticated sender, as rspamd's MTA integrations send
    /// it) loads this bank, if it exists: our users' own mail.
    pub authenticated_bank: String,
    /// Without `Rcpt:` (rspamc on a file) the message is judged as for this one recipient,
    /// or `Deliver-To:` when given. Empty: `postmaster@` our domain (`mydomain`), a local
    /// recipient with the site's settings.
    pub default_recipient: String,
    /// Seconds a client may take to send a request's head and body; the check itself is
    /// bounded by the scanners' own timeouts.
    pub timeout: u64,
    /// Connections served at once; more wait in the kernel's accept queue. Each may hold a
    /// message of up to `limits.message_size_limit` (spooled to disk above
    /// `limits.memory_spool_limit`).
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: String::new(),
            password: String::new(),
            enable_password: String::new(),
            secure_ip: vec!["127.0.0.1".into(), "::1".into()],
            policy_bank: String::new(),
            authenticated_bank: "ORIGINATING".into(),
            default_recipient: String::new(),
            timeout: 60,
            max_connections: 200,
        }
    }
}

impl HttpConfig {
    /// The problem, if any, as (key below `http`, reason).
    pub fn check(&self) -> Result<(), (String, String)> {
        if !self.listen.is_empty() && self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err((
                "listen".into(),
                format!("{:?} is not addr:port (IPv6 as [::1]:11333)", self.listen),
            ));
        }
        self.secure_networks()
            .map_err(|e| ("secure_ip".into(), e))?;
        if self.timeout == 0 {
            return Err(("timeout".into(), "must be at least 1 second".into()));
        }
        if self.max_connections == 0 {
            return Err(("max_connections".into(), "must be at least 1".into()));
        }
        if !self.default_recipient.is_empty() && !self.default_recipient.contains('@') {
            return Err((
                "default_recipient".into(),
                format!("{:?} is not an address", self.default_recipient),
            ));
        }
        Ok(())
    }

    /// `secure_ip` as networks (a bare address is a /32 or /128).
    pub fn secure_networks(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.secure_ip
            .iter()
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("{s:?} is neither an address nor a network"))
            })
            .collect()
    }
}
