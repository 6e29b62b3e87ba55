//! `[[milter]]`: the milter listeners and their limits, each with its default and reason.

use serde::Deserialize;
use std::path::PathBuf;

/// One milter socket. No listener by default: the after-queue SMTP slot is the default
/// place in the mail flow; a site that wants to refuse during the SMTP dialogue adds one and
/// points Postfix's `smtpd_milters` at it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MilterListener {
    /// `addr:port` (Postfix's `inet:127.0.0.1:10030`); loopback, unless the MTA is on
    /// another host: anyone who can connect can have mail checked and learn its verdict.
    pub inet: Option<String>,
    /// A unix socket path (Postfix's `unix:/path`); an old socket file there is replaced.
    pub unix: Option<PathBuf>,
    /// A policy bank every message on this socket loads first (empty: none), as a port's
    /// bank on the SMTP listener.
    #[serde(default)]
    pub policy_bank: String,
    /// Mail from a client that authenticated (the `{auth_authen}` macro) loads this bank, if
    /// it exists: our users' own mail, as Postfix's submission service with
    /// `milter_macro_daemon_name=ORIGINATING` marks it. The `{daemon_name}` macro's value
    /// loads the bank of that name, if one exists (amavisd-milter's `-B`).
    #[serde(default = "default_authenticated_bank")]
    pub authenticated_bank: String,
    /// A message no copy of which passes is accepted into the MTA's hold queue
    /// (`SMFIR_QUARANTINE`; `postsuper -H` releases it) instead of refused or discarded, as
    /// well as kept in our quarantine as policy says.
    #[serde(default)]
    pub hold_blocked: bool,
    /// Seconds to wait for the MTA's next packet. Postfix keeps a milter connection for
    /// the whole SMTP session and the client may be slow (`smtpd_timeout` is 300 s), so
    /// this is longer; a stalled MTA then cannot hold a connection for ever.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: u64,
    /// Connections served at once; more wait in the kernel's accept queue. Postfix opens one
    /// per smtpd process (`default_process_limit` is 100).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_authenticated_bank() -> String {
    "ORIGINATING".into()
}

fn default_idle_timeout() -> u64 {
    600
}

fn default_max_connections() -> usize {
    200
}

impl MilterListener {
    /// The listener's problem, if any, as (key, reason) below `milter[i]`.
    pub fn check(&self) -> Result<(), (String, String)> {
        match (&self.inet, &self.unix) {
            (Some(a), None) if a.parse::<std::net::SocketAddr>().is_err() => Err((
                "inet".into(),
                format!("{a:?} is not addr:port (IPv6 as [::1]:10030)"),
            )),
            (Some(_), None) | (None, Some(_)) => {
                if self.idle_timeout == 0 {
                    return Err(("idle_timeout".into(), "must be at least 1 second".into()));
                }
                if self.max_connections == 0 {
                    return Err(("max_connections".into(), "must be at least 1".into()));
                }
                Ok(())
            }
            _ => Err((String::new(), "give exactly one of `inet` or `unix`".into())),
        }
    }
}
