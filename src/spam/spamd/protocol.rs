//! The spamc/spamd protocol (SPAMC/1.x), without I/O: reading a request's head and writing
//! the answer. A request is `VERB SPAMC/1.5`, header lines (`Content-length`, `User`,
//! `Message-class`, `Set`, `Remove`), an empty line, then `Content-length` bytes of message.
//! spamc opens one connection per request.

use crate::spam::report;
use crate::spam::scan::Outcome;

/// Longest request head we read (spamc sends a few short lines).
pub const MAX_HEAD: usize = 8 * 1024;

/// spamd's exit-code style status numbers.
pub const EX_OK: u8 = 0;
pub const EX_USAGE: u8 = 64;
pub const EX_DATAERR: u8 = 65;
pub const EX_UNAVAILABLE: u8 = 69;
pub const EX_SOFTWARE: u8 = 70;
pub const EX_PROTOCOL: u8 = 76;

/// What the client asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Ping,
    Check,
    Symbols,
    Report,
    ReportIfSpam,
    Process,
    Headers,
    Tell,
    Skip,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub verb: Verb,
    pub content_length: Option<usize>,
    pub user: Option<String>,
    /// TELL: `Message-class`, `Set`, `Remove`.
    pub message_class: Option<String>,
    pub set: Option<String>,
    pub remove: Option<String>,
}

impl Request {
    /// TELL's `Set` or `Remove` (`which`) names `local`.
    pub fn tells(&self, which: &str) -> bool {
        let v = if which == "set" {
            &self.set
        } else {
            &self.remove
        };
        v.as_deref()
            .is_some_and(|v| v.split(',').any(|x| x.trim().eq_ignore_ascii_case("local")))
    }

    /// The class TELL learns the message as (`Set: local` with `Message-class: spam|ham`);
    /// an error when `Set` asks without a valid class, as spamd answers.
    pub fn tell_class(&self) -> Result<Option<&str>, ProtoError> {
        if !self.tells("set") {
            return Ok(None);
        }
        match self.message_class.as_deref() {
            Some(c @ ("spam" | "ham")) => Ok(Some(c)),
            _ => Err(err(
                EX_PROTOCOL,
                "(Message-class header contains invalid class)",
            )),
        }
    }
}

/// A request that cannot be served, with spamd's status and text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {text}")]
pub struct ProtoError {
    pub code: u8,
    pub text: String,
}

fn err(code: u8, text: impl Into<String>) -> ProtoError {
    ProtoError {
        code,
        text: text.into(),
    }
}

/// Where the head ends (after its empty line), if it is complete in `buf`.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    memchr::memmem::find(buf, b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| memchr::memmem::find(buf, b"\n\n").map(|p| p + 2))
}

/// Parses a complete head (up to and including its empty line).
pub fn parse_head(head: &[u8]) -> Result<Request, ProtoError> {
    let text =
        std::str::from_utf8(head).map_err(|_| err(EX_PROTOCOL, "Bad header line: not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let first = lines.next().unwrap_or("");
    let (verb, proto) = first
        .split_once(' ')
        .ok_or_else(|| err(EX_PROTOCOL, format!("Malformed request: {first:?}")))?;
    if !proto.trim().starts_with("SPAMC/1.") {
        return Err(err(EX_PROTOCOL, format!("Bad protocol: {proto:?}")));
    }
    let verb = match verb {
        "PING" => Verb::Ping,
        "CHECK" => Verb::Check,
        "SYMBOLS" => Verb::Symbols,
        "REPORT" => Verb::Report,
        "REPORT_IFSPAM" => Verb::ReportIfSpam,
        "PROCESS" => Verb::Process,
        "HEADERS" => Verb::Headers,
        "TELL" => Verb::Tell,
        "SKIP" => Verb::Skip,
        other => return Err(err(EX_PROTOCOL, format!("Bad request method: {other:?}"))),
    };
    let mut req = Request {
        verb,
        content_length: None,
        user: None,
        message_class: None,
        set: None,
        remove: None,
    };
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| err(EX_PROTOCOL, format!("Bad header line: {line:?}")))?;
        let value = value.trim().to_string();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                req.content_length = Some(
                    value
                        .parse()
                        .map_err(|_| err(EX_PROTOCOL, format!("Bad Content-length: {value:?}")))?,
                )
            }
            "user" => req.user = Some(value),
            "message-class" => req.message_class = Some(value),
            "set" => req.set = Some(value),
            "remove" => req.remove = Some(value),
            "compress" => return Err(err(EX_PROTOCOL, "Compress is not supported")),
            // Other fields (Spamc-side options, Content-Type) change nothing here.
            _ => {}
        }
    }
    let needs_body = !matches!(req.verb, Verb::Ping | Verb::Skip);
    if needs_body && req.content_length.is_none() {
        return Err(err(EX_PROTOCOL, "Missing Content-length header"));
    }
    Ok(req)
}

/// The answer to PING.
pub fn pong() -> Vec<u8> {
    b"SPAMD/1.5 0 PONG\r\n".to_vec()
}

/// The answer to TELL: what was done (spamc prints "successfully" when it was, "already"
/// otherwise).
pub fn told(did_set: bool, did_remove: bool) -> Vec<u8> {
    let mut a = String::from("SPAMD/1.1 0 EX_OK\r\n");
    if did_set {
        a.push_str("DidSet: local\r\n");
    }
    if did_remove {
        a.push_str("DidRemove: local\r\n");
    }
    a.push_str("\r\n\r\n");
    a.into_bytes()
}

/// An error answer.
pub fn error(e: &ProtoError) -> Vec<u8> {
    format!("SPAMD/1.0 {} {}\r\n", e.code, e.text).into_bytes()
}

fn spam_line(o: &Outcome) -> String {
    format!(
        "Spam: {} ; {:.1} / {:.1}\r\n",
        if o.is_spam() { "True" } else { "False" },
        o.score,
        o.required
    )
}

/// The message's header fields with SpamAssassin's X-Spam-* fields added (incoming ones
/// removed), as `report_safe 0` writes them.
pub fn marked_headers(message: &[u8], o: &Outcome) -> Vec<u8> {
    let head = crate::decode::header_section(message);
    let nl: &[u8] = if memchr::memmem::find(head, b"\r\n").is_some() {
        b"\r\n"
    } else {
        b"\n"
    };
    let mut out = crate::message::header_edit::rewrite_header(head, true, "", |_| false);
    let field = |out: &mut Vec<u8>, name: &str, value: &str| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(nl);
    };
    field(
        &mut out,
        "X-Spam-Checker-Version",
        concat!("amavisd-rs ", env!("CARGO_PKG_VERSION")),
    );
    if o.is_spam() {
        field(&mut out, "X-Spam-Flag", "YES");
    }
    let stars = "*".repeat(o.score.clamp(0.0, 50.0) as usize);
    field(&mut out, "X-Spam-Level", &stars);
    field(&mut out, "X-Spam-Status", &report::status_field(o));
    out.extend_from_slice(nl);
    out
}

/// The answer to a scanning verb.
pub fn answer(verb: Verb, o: &Outcome, message: &[u8]) -> Vec<u8> {
    let body: Vec<u8> = match verb {
        Verb::Check => Vec::new(),
        Verb::Symbols => o
            .hits
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>()
            .join(",")
            .into_bytes(),
        Verb::Report => report::report_text(o).into_bytes(),
        Verb::ReportIfSpam if o.is_spam() => report::report_text(o).into_bytes(),
        Verb::ReportIfSpam => Vec::new(),
        Verb::Process => {
            let end = crate::spam::view::body_start(message);
            let mut m = marked_headers(message, o);
            m.extend_from_slice(&message[end..]);
            m
        }
        Verb::Headers => marked_headers(message, o),
        Verb::Ping | Verb::Tell | Verb::Skip => Vec::new(),
    };
    let mut out = format!("SPAMD/1.1 {EX_OK} EX_OK\r\n").into_bytes();
    if verb != Verb::Check {
        out.extend_from_slice(format!("Content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(spam_line(o).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spam::scan::Hit;

    fn outcome(score: f64) -> Outcome {
        Outcome {
            score,
            required: 5.0,
            hits: vec![Hit {
                name: "A_RULE".into(),
                score,
                count: 1,
                describe: "a rule".into(),
            }],
            ..Outcome::default()
        }
    }

    #[test]
    fn heads() {
        let r =
            parse_head(b"SYMBOLS SPAMC/1.5\r\nContent-length: 12\r\nUser: joe\r\n\r\n").unwrap();
        assert_eq!(
            (r.verb, r.content_length, r.user.as_deref()),
            (Verb::Symbols, Some(12), Some("joe"))
        );
        assert_eq!(
            parse_head(b"PING SPAMC/1.5\r\n\r\n").unwrap().verb,
            Verb::Ping
        );
        assert_eq!(
            parse_head(b"CHECK SPAMC/1.5\r\n\r\n").unwrap_err().code,
            EX_PROTOCOL
        );
        assert_eq!(
            parse_head(b"FROB SPAMC/1.5\r\n\r\n").unwrap_err().code,
            EX_PROTOCOL
        );
        assert_eq!(
            parse_head(b"CHECK HTTP/1.1\r\n\r\n").unwrap_err().code,
            EX_PROTOCOL
        );
        assert_eq!(
            parse_head(b"CHECK SPAMC/1.5\r\nContent-length: x\r\n\r\n")
                .unwrap_err()
                .code,
            EX_PROTOCOL
        );
        assert_eq!(head_end(b"PING SPAMC/1.5\r\n\r\nrest"), Some(18));
        assert_eq!(head_end(b"PING SPAMC/1.5\r\n"), None);
    }

    #[test]
    fn answers() {
        let m = b"Subject: hi\r\nX-Spam-Flag: YES\r\n\r\nbody\r\n";
        let a = String::from_utf8(answer(Verb::Check, &outcome(7.0), m)).unwrap();
        assert_eq!(a, "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 7.0 / 5.0\r\n\r\n");
        let a = String::from_utf8(answer(Verb::Symbols, &outcome(1.0), m)).unwrap();
        assert_eq!(
            a,
            "SPAMD/1.1 0 EX_OK\r\nContent-length: 6\r\nSpam: False ; 1.0 / 5.0\r\n\r\nA_RULE"
        );
        let a = String::from_utf8(answer(Verb::Process, &outcome(7.0), m)).unwrap();
        assert!(
            a.contains("\r\n\r\nSubject: hi\r\nX-Spam-Checker-Version"),
            "{a}"
        );
        assert_eq!(a.matches("X-Spam-Flag: YES").count(), 1, "{a}");
        assert!(a.ends_with("tests=A_RULE autolearn=no autolearn_force=no version=amavisd-rs-0.1.0\r\n\r\nbody\r\n"), "{a}");
        let a = String::from_utf8(answer(Verb::ReportIfSpam, &outcome(1.0), m)).unwrap();
        assert!(a.contains("Content-length: 0\r\n"));
    }
}
