//! The SMTP/LMTP server's configuration: its listening sockets and every limit, with its
//! default and the reason for it (Postfix's VAR_/DEF_ habit).
//!
//! Each limit is a hard cap against a client that is broken or hostile. The defaults are
//! written again, with the same reasons, in `etc/amavisd.toml`; a test checks the two agree.

use serde::Deserialize;
use std::path::PathBuf;

/// Which protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ListenProtocol {
    /// Decided per session by the greeting, as amavisd-new does on inet sockets: EHLO/HELO means
    /// SMTP, LHLO means LMTP.
    #[default]
    Auto,
    /// SMTP only; LHLO is refused.
    Smtp,
    /// LMTP only; EHLO/HELO are refused.
    Lmtp,
}

/// One listening socket.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// `addr:port` for an inet socket (IPv6 as `[::1]:10024`).
    pub inet: Option<String>,
    /// A unix socket path; an old socket file left at that path is replaced at start.
    pub unix: Option<PathBuf>,
    /// `auto` (default), `smtp` or `lmtp`.
    #[serde(default)]
    pub protocol: ListenProtocol,
}

/// Inbound (SMTP/LMTP server) limits.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Concurrent sessions. Above it a new client gets `421 4.3.2` and is closed. Set it to the
    /// `maxproc` of Postfix's feed transport, so Postfix never sees the 421.
    pub max_connections: usize,
    /// Longest command line, CRLF included. RFC 5321 allows 512 plus 2048 for extension
    /// parameters; beyond this a line is read and thrown away, and answered 500 5.5.2, so a
    /// client cannot make us buffer without end.
    pub line_length_limit: usize,
    /// Largest header section, in bytes. Postfix itself truncates at 102400 bytes
    /// (`header_size_limit`), so more than that is not from Postfix. Over it: 552 5.3.4.
    pub header_size_limit: usize,
    /// Largest message, in bytes; advertised as `SIZE n`. Checked at `MAIL ... SIZE=` and while
    /// DATA is read (552 5.3.4). Above Postfix's default `message_size_limit` (10240000) so that
    /// Postfix, not we, refuses ordinary over-size mail.
    pub message_size_limit: u64,
    /// Recipients per message; more get `452 4.5.3` and the client sends them in another
    /// transaction. amavisd-new's `$smtpd_recipient_limit` is 1100; Postfix sends at most
    /// `amavisfeed_destination_recipient_limit` (we suggest 1000).
    pub recipient_limit: usize,
    /// A message up to this size stays in memory; above it, it is spooled to a temporary file
    /// under `tempdir`, so memory never grows with message size. amavisd-new keeps mail under
    /// 100 KiB in memory.
    pub memory_spool_limit: usize,
    /// Seconds to wait for the next command when the client has sent nothing (421 4.4.2).
    /// amavisd-new's `$smtpd_timeout` is 8 minutes; Postfix's own side waits `smtp_*_timeout`.
    pub idle_timeout: u64,
    /// Seconds in which a command line, once started, must be complete (421 4.4.2): a client
    /// that trickles one byte at a time cannot hold a session for ever.
    pub command_timeout: u64,
    /// Seconds of silence allowed while DATA is read (421 4.4.2).
    pub data_timeout: u64,
    /// Errors (bad commands, refused parameters) in one session before it is closed with
    /// `421 4.7.0`; Postfix's `smtpd_hard_error_limit` is 20. Refused recipients (452) do not
    /// count.
    pub error_limit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            line_length_limit: 4096,
            header_size_limit: 262_144,
            message_size_limit: 52_428_800,
            recipient_limit: 1100,
            memory_spool_limit: 262_144,
            idle_timeout: 480,
            command_timeout: 300,
            data_timeout: 480,
            error_limit: 20,
        }
    }
}

impl Limits {
    /// Refuses a limit that would refuse all mail; the error is `(key, reason)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        nonzero("max_connections", self.max_connections as u64)?;
        if self.line_length_limit < 512 {
            return Err((
                "line_length_limit",
                "must be at least 512 (RFC 5321 command line)".into(),
            ));
        }
        nonzero("header_size_limit", self.header_size_limit as u64)?;
        nonzero("message_size_limit", self.message_size_limit)?;
        nonzero("recipient_limit", self.recipient_limit as u64)?;
        nonzero("idle_timeout", self.idle_timeout)?;
        nonzero("command_timeout", self.command_timeout)?;
        nonzero("data_timeout", self.data_timeout)?;
        nonzero("error_limit", self.error_limit as u64)?;
        Ok(())
    }
}

fn nonzero(key: &'static str, v: u64) -> Result<(), (&'static str, String)> {
    if v == 0 {
        Err((key, "must be greater than 0".into()))
    } else {
        Ok(())
    }
}
