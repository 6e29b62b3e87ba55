//! The reinjection client's configuration: `forward_method` / `notify_method` values, as
//! amavisd-new writes them, and the client's limits.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the next hop listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardTarget {
    /// An inet socket, written `[host]:port`.
    Inet(SocketAddr),
    /// A unix socket, written `unix:/path`.
    Unix(PathBuf),
}

/// A parsed delivery method: protocol and target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardMethod {
    /// LMTP (one reply per recipient after DATA) rather than SMTP.
    pub lmtp: bool,
    /// Where to connect.
    pub target: ForwardTarget,
}

impl Default for ForwardMethod {
    fn default() -> Self {
        ForwardMethod {
            lmtp: false,
            target: ForwardTarget::Inet(SocketAddr::from(([127, 0, 0, 1], 10025))),
        }
    }
}

impl std::fmt::Display for ForwardMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proto = if self.lmtp { "lmtp" } else { "smtp" };
        match &self.target {
            ForwardTarget::Inet(a) => write!(f, "{proto}:[{}]:{}", a.ip(), a.port()),
            ForwardTarget::Unix(p) => write!(f, "{proto}:unix:{}", p.display()),
        }
    }
}

impl ForwardMethod {
    /// Parses `smtp:[127.0.0.1]:10025`, `lmtp:[::1]:24`, `lmtp:unix:/path`. Host names are not
    /// accepted: the next hop of a content filter is a local address, and a DNS failure must not
    /// be able to bounce mail.
    pub fn parse(s: &str) -> Result<ForwardMethod, String> {
        let (proto, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: expected smtp:[addr]:port or lmtp:..."))?;
        let lmtp = match proto.to_ascii_lowercase().as_str() {
            "smtp" => false,
            "lmtp" => true,
            other => {
                return Err(format!(
                    "{s:?}: delivery method {other:?} is not supported (smtp or lmtp)"
                ));
            }
        };
        if let Some(path) = rest.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(format!("{s:?}: empty unix socket path"));
            }
            return Ok(ForwardMethod {
                lmtp,
                target: ForwardTarget::Unix(PathBuf::from(path)),
            });
        }
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("{s:?}: missing :port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ip: std::net::IpAddr = host
            .parse()
            .map_err(|_| format!("{s:?}: {host:?} is not an IP address"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{s:?}: {port:?} is not a port number"))?;
        Ok(ForwardMethod {
            lmtp,
            target: ForwardTarget::Inet(SocketAddr::new(ip, port)),
        })
    }
}

/// Reinjection client limits and its connection cache.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardLimits {
    /// Seconds to connect and read the greeting; amavisd-new uses 35.
    pub connect_timeout: u64,
    /// Seconds to wait for the reply to each command (EHLO, MAIL, RCPT, DATA).
    pub command_timeout: u64,
    /// Seconds to wait for the reply after the final dot; RFC 5321 suggests 10 minutes, and a
    /// shorter wait risks duplicates (the next hop may have accepted the mail).
    pub data_done_timeout: u64,
    /// Idle connections kept open for reuse (reset with RSET before reuse); 0 disables the cache.
    pub max_idle_connections: usize,
}

impl Default for ForwardLimits {
    fn default() -> Self {
        Self {
            connect_timeout: 35,
            command_timeout: 300,
            data_done_timeout: 600,
            max_idle_connections: 64,
        }
    }
}

impl ForwardLimits {
    /// Refuses a timeout of 0; the error is `(key, reason)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (key, v) in [
            ("connect_timeout", self.connect_timeout),
            ("command_timeout", self.command_timeout),
            ("data_done_timeout", self.data_done_timeout),
        ] {
            if v == 0 {
                return Err((key, "must be greater than 0".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_back() {
        for s in [
            "smtp:[127.0.0.1]:10025",
            "lmtp:[::1]:24",
            "lmtp:unix:/run/x.sock",
        ] {
            assert_eq!(ForwardMethod::parse(s).unwrap().to_string(), s);
        }
        assert!(ForwardMethod::parse("smtp:mx.example.com:25").is_err());
        assert!(ForwardMethod::parse("pipe:argv=x").is_err());
        assert!(ForwardMethod::parse("smtp:[127.0.0.1]").is_err());
    }
}
