//! rspamd's HTTP protocol without I/O: which command a path names, who may run it, and the
//! scan request its headers make. The HTTP framing itself is hyper's (`server.rs`); the
//! JSON replies are `reply.rs`'s.
//!
//! Nothing here trusts the client: a header that is not text, an address with spaces or
//! controls, an `IP` that is not an address, more recipients than [`MAX_RECIPIENTS`] are a
//! [`ProtoError`] (400), never a panic or a guess.

use std::net::IpAddr;

/// Recipients one request may name (Postfix's `smtpd_recipient_limit` default).
pub const MAX_RECIPIENTS: usize = 1000;

/// Longest address accepted (RFC 5321's path limit is 256; rspamd's clients send what their
/// MTA took, which may be longer with SMTPUTF8).
pub const MAX_ADDRESS: usize = 512;

/// A command, by the path that names it (case-insensitive, the leading `/` optional, as
/// rspamd routes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `/checkv2`: the current JSON reply.
    CheckV2,
    /// `/check`, `/symbols`, `/scan`, `/process`, `/report`, `/report_ifspam`: the old
    /// reply, with the symbols inside a `default` object.
    CheckV1,
    Ping,
    LearnSpam,
    LearnHam,
    /// `/stat`: counters, as rspamc `stat` prints them.
    Stat,
    /// `/auth`: version and uptime (rspamc `uptime`).
    Auth,
    /// `/metrics`: the Prometheus counters of `[metrics]`.
    Metrics,
}

/// Who may run a command: rspamd's normal worker needs no password; its controller's read
/// commands need `password`, its write commands `enable_password`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Open,
    Read,
    Write,
}

impl Command {
    /// The command `path` names, if any.
    pub fn route(path: &str) -> Option<Command> {
        let p = path.strip_prefix('/').unwrap_or(path).to_ascii_lowercase();
        Some(match p.as_str() {
            "checkv2" => Command::CheckV2,
            "check" | "symbols" | "scan" | "process" | "report" | "report_ifspam" => {
                Command::CheckV1
            }
            "ping" => Command::Ping,
            "learnspam" => Command::LearnSpam,
            "learnham" => Command::LearnHam,
            "stat" => Command::Stat,
            "auth" => Command::Auth,
            "metrics" => Command::Metrics,
            _ => return None,
        })
    }

    pub fn access(self) -> Access {
        match self {
            Command::CheckV2 | Command::CheckV1 | Command::Ping => Access::Open,
            Command::Stat | Command::Auth | Command::Metrics => Access::Read,
            Command::LearnSpam | Command::LearnHam => Access::Write,
        }
    }

    /// It reads a message from the body.
    pub fn takes_message(self) -> bool {
        matches!(
            self,
            Command::CheckV2 | Command::CheckV1 | Command::LearnSpam | Command::LearnHam
        )
    }
}

/// A request we refuse, with the HTTP status and the reason (sent as the status line's
/// phrase and as `{"error": ...}`, as rspamd does).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {text}")]
pub struct ProtoError {
    pub status: u16,
    pub text: String,
}

impl ProtoError {
    pub fn bad(text: impl Into<String>) -> ProtoError {
        ProtoError {
            status: 400,
            text: text.into(),
        }
    }

    /// Whether the same request may succeed later: a server-side failure (5xx) may, a
    /// malformed or refused request (4xx) will not.
    pub fn is_temporary(&self) -> bool {
        self.status >= 500
    }
}

/// What a scan or learn request's headers say (rspamd's names; query parameters count as
/// headers, as rspamd takes them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanRequest {
    /// `From`: the envelope sender, empty for `<>`.
    pub from: String,
    /// `Rcpt` (repeated, or a comma-separated list): the envelope recipients.
    pub rcpts: Vec<String>,
    /// `IP`: the SMTP client's address.
    pub ip: Option<IpAddr>,
    /// `Helo`, `Hostname` (the client's name as the MTA resolved it).
    pub helo: Option<String>,
    pub hostname: Option<String>,
    /// `Queue-Id`: the MTA's queue id, for the log.
    pub queue_id: Option<String>,
    /// `User`: the client authenticated as this user (our own users' mail).
    pub user: Option<String>,
    /// `Deliver-To`: the final recipient (per-user Bayes when learning; the recipient of a
    /// check without `Rcpt`).
    pub deliver_to: Option<String>,
    /// `Settings-ID`: a policy bank to load, if it exists.
    pub settings_id: Option<String>,
    /// `Compression: zstd`: the body is one zstd frame.
    pub compressed: bool,
    /// The reply is to be zstd-compressed (a compressed request, or `Flags: zstd`).
    pub compress_reply: bool,
    /// `Flags: skip`: answer without scanning.
    pub skip: bool,
    /// `Password`.
    pub password: Option<String>,
}

impl ScanRequest {
    /// From the request's headers, names in lower case (as the HTTP layer gives them).
    pub fn parse<'a>(
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<ScanRequest, ProtoError> {
        let mut r = ScanRequest::default();
        for (name, raw) in headers {
            let value = std::str::from_utf8(raw)
                .map_err(|_| ProtoError::bad(format!("{name}: not UTF-8")))?
                .trim();
            r.header(name, value)?;
        }
        Ok(r)
    }

    fn header(&mut self, name: &str, value: &str) -> Result<(), ProtoError> {
        match name {
            "from" => self.from = address(name, value)?,
            "rcpt" => self.add_rcpts(value)?,
            "ip" => {
                let ip = value.trim_start_matches("IPv6:");
                self.ip =
                    Some(ip.parse().map_err(|_| {
                        ProtoError::bad(format!("IP: {value:?} is not an address"))
                    })?);
            }
            "helo" => self.helo = Some(word(name, value)?),
            "hostname" => self.hostname = Some(word(name, value)?),
            "queue-id" => self.queue_id = Some(word(name, value)?),
            "user" => self.user = Some(word(name, value)?).filter(|u| !u.is_empty()),
            "deliver-to" => {
                self.deliver_to = Some(address(name, value)?).filter(|a| !a.is_empty());
            }
            "settings-id" => self.settings_id = Some(word(name, value)?),
            // rspamd's inline settings (symbol scores, actions) have no meaning for our
            // verdict and are not applied; a value that is not even JSON is refused, so
            // that a broken client hears of it.
            "settings" => {
                if let Err(e) = serde_json::from_str::<serde_json::Value>(value) {
                    return Err(ProtoError::bad(format!("Settings: not JSON: {e}")));
                }
            }
            // rspamd's clients say `Compression`; a plain HTTP client says the same with
            // `Content-Encoding`.
            "content-encoding" if value.eq_ignore_ascii_case("identity") => {}
            "compression" | "content-encoding" => {
                if !value.eq_ignore_ascii_case("zstd") {
                    return Err(ProtoError {
                        status: 415,
                        text: format!("Invalid compression method {value:?} (zstd only)"),
                    });
                }
                self.compressed = true;
                self.compress_reply = true;
            }
            "dictionary" => {
                return Err(ProtoError {
                    status: 415,
                    text: "Unknown dictionary, undefined locally".into(),
                });
            }
            "flags" => {
                for f in value.split(',').map(str::trim) {
                    // pass_all and the rest: the checks' early stop is a policy's, and a
                    // flag does not change it.
                    self.compress_reply |= f == "zstd";
                    self.skip |= f == "skip";
                }
            }
            "password" => self.password = Some(value.to_string()),
            // rspamd may read the message from a local file or shared memory; we take it
            // from the body only, and must not scan an empty body in its place.
            "file" | "path" | "shm" | "message-length" => {
                return Err(ProtoError::bad(format!(
                    "{name}: not supported: send the message as the body"
                )));
            }
            // rspamd's other headers (Pass, Filename, User-Agent, MTA-Tag, TLS-*, ...) and
            // the HTTP ones say nothing our checks use.
            _ => {}
        }
        Ok(())
    }
}

impl ScanRequest {
    /// `Rcpt`: one address or a list, at most [`MAX_RECIPIENTS`] in all.
    fn add_rcpts(&mut self, value: &str) -> Result<(), ProtoError> {
        for a in split_list(value) {
            let a = address("rcpt", a)?;
            if a.is_empty() {
                continue;
            }
            if self.rcpts.len() == MAX_RECIPIENTS {
                return Err(ProtoError::bad(format!(
                    "more than {MAX_RECIPIENTS} recipients"
                )));
            }
            self.rcpts.push(a);
        }
        Ok(())
    }
}

/// An address as rspamd's clients send it: bare or in angle brackets; empty is `<>`.
fn address(name: &str, value: &str) -> Result<String, ProtoError> {
    let a = value.trim();
    let a = a
        .strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(a)
        .trim();
    if a.len() > MAX_ADDRESS {
        return Err(ProtoError::bad(format!(
            "{name}: address longer than {MAX_ADDRESS} bytes"
        )));
    }
    if a.chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>')
    {
        return Err(ProtoError::bad(format!("{name}: {a:?} is not an address")));
    }
    Ok(a.to_string())
}

/// A one-word value (a host name, a queue id, a bank name): no spaces or controls, so it
/// cannot break the log line it goes into.
fn word(name: &str, value: &str) -> Result<String, ProtoError> {
    if value.len() > MAX_ADDRESS || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ProtoError::bad(format!(
            "{name}: {value:?} is not one word"
        )));
    }
    Ok(value.to_string())
}

/// A comma-separated list, commas inside double quotes kept (`"a,b"@x`).
fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out
}

/// A query string's parameters as headers (`ip=1.2.3.4&deliver-to=u%40x`), names in lower
/// case, values percent-decoded; a parameter that does not decode to text is dropped.
pub fn query_headers(query: &str) -> Vec<(String, Vec<u8>)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k).to_ascii_lowercase(), percent_decode(v))
        })
        .filter_map(|(k, v)| Some((String::from_utf8(k).ok()?, v)))
        .collect()
}

/// `%XX` and `+` decoded (a form's encoding); a broken escape is kept as written.
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(h: &[(&str, &str)]) -> Result<ScanRequest, ProtoError> {
        ScanRequest::parse(h.iter().map(|(n, v)| (*n, v.as_bytes())))
    }

    #[test]
    fn routes_case_insensitively_with_or_without_slash() {
        assert_eq!(Command::route("/checkv2"), Some(Command::CheckV2));
        assert_eq!(Command::route("CHECKV2"), Some(Command::CheckV2));
        assert_eq!(Command::route("/symbols"), Some(Command::CheckV1));
        assert_eq!(Command::route("/LearnSpam"), Some(Command::LearnSpam));
        assert_eq!(Command::route("/checkv2/"), None);
        assert_eq!(Command::route("/../etc/passwd"), None);
        assert_eq!(Command::LearnHam.access(), Access::Write);
        assert_eq!(Command::Stat.access(), Access::Read);
        assert_eq!(Command::CheckV2.access(), Access::Open);
    }

    #[test]
    fn reads_rspamd_headers() {
        let r = parse(&[
            ("from", "<a@x.example>"),
            ("rcpt", "b@y.example"),
            ("rcpt", "c@y.example, \"d,e\"@y.example"),
            ("ip", "192.0.2.7"),
            ("helo", "mx.x.example"),
            ("queue-id", "4ABC"),
            ("user", "alice"),
            ("deliver-to", "b@y.example"),
            ("settings-id", "TRUSTED"),
            ("flags", "pass_all,zstd"),
            ("filename", "whatever"),
            ("settings", "{\"actions\": {\"reject\": 10}}"),
        ])
        .unwrap();
        assert_eq!(r.from, "a@x.example");
        assert_eq!(r.rcpts, ["b@y.example", "c@y.example", "\"d,e\"@y.example"]);
        assert_eq!(r.ip, Some("192.0.2.7".parse().unwrap()));
        assert_eq!(r.queue_id.as_deref(), Some("4ABC"));
        assert_eq!(r.user.as_deref(), Some("alice"));
        assert_eq!(r.settings_id.as_deref(), Some("TRUSTED"));
        assert!(r.compress_reply && !r.compressed);
        let z = parse(&[("content-encoding", "zstd")]).unwrap();
        assert!(z.compressed && z.compress_reply);
        assert!(
            !parse(&[("content-encoding", "identity")])
                .unwrap()
                .compressed
        );
        assert_eq!(parse(&[("from", "")]).unwrap().from, "");
        assert_eq!(parse(&[("from", "<>")]).unwrap().from, "");
    }

    #[test]
    fn refuses_bad_headers() {
        for (n, v) in [
            ("ip", "not-an-ip"),
            ("from", "a b@x"),
            ("rcpt", "a@x\r\nRcpt: b@y"),
            ("helo", "two words"),
            ("compression", "gzip"),
            ("content-encoding", "gzip"),
            ("dictionary", "12"),
            ("file", "/etc/passwd"),
            ("settings", "{actions = {reject = 1"),
        ] {
            let e = parse(&[(n, v)]).unwrap_err();
            assert!(e.status == 400 || e.status == 415, "{n}: {e}");
            assert!(!e.is_temporary());
        }
        let bad = ScanRequest::parse([("from", &b"\xff@x"[..])]).unwrap_err();
        assert_eq!(bad.text, "from: not UTF-8");
        let many = vec!["a@x"; MAX_RECIPIENTS + 1].join(",");
        assert!(parse(&[("rcpt", &many)]).is_err());
    }

    #[test]
    fn query_parameters_are_headers() {
        let q = query_headers("IP=1.2.3.4&deliver-to=u%40x.example&x=%zz&flag");
        assert_eq!(q[0], ("ip".to_string(), b"1.2.3.4".to_vec()));
        assert_eq!(q[1], ("deliver-to".to_string(), b"u@x.example".to_vec()));
        assert_eq!(q[2].1, b"%zz");
        assert_eq!(q[3], ("flag".to_string(), Vec::new()));
    }
}
