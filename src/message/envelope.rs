//! The envelope of one message as received, with every parameter kept byte-exact so that it can
//! be passed on to the next hop as it came.

use std::net::SocketAddr;
use std::time::SystemTime;

/// SMTP or LMTP, as the session settled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Smtp,
    Lmtp,
}

impl Protocol {
    /// The word for `Received: ... with X`.
    pub fn with_name(self, esmtp: bool) -> &'static str {
        match (self, esmtp) {
            (Protocol::Lmtp, _) => "LMTP",
            (Protocol::Smtp, true) => "ESMTP",
            (Protocol::Smtp, false) => "SMTP",
        }
    }
}

/// One ESMTP parameter of MAIL or RCPT: keyword as sent (any case) and raw value (still
/// xtext-encoded where the extension says so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub keyword: String,
    pub value: Option<String>,
}

impl Param {
    /// `KEY` or `KEY=VALUE`, as it goes on the wire.
    pub fn wire(&self) -> String {
        match &self.value {
            Some(v) => format!("{}={}", self.keyword, v),
            None => self.keyword.clone(),
        }
    }

    /// One ESMTP parameter word: `KEY=VALUE` or a bare `KEY`.
    pub fn parse(word: &str) -> Param {
        match word.split_once('=') {
            Some((k, v)) => Param {
                keyword: k.to_string(),
                value: Some(v.to_string()),
            },
            None => Param {
                keyword: word.to_string(),
                value: None,
            },
        }
    }

    /// True when the keyword is `k` (case-insensitive).
    pub fn is(&self, k: &str) -> bool {
        self.keyword.eq_ignore_ascii_case(k)
    }
}

/// Attributes from Postfix's XFORWARD command: the original client, as Postfix saw it. Values
/// are xtext-decoded; `[UNAVAILABLE]`/`[TEMPUNAVAIL]` are kept as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XForward {
    pub name: Option<String>,
    pub addr: Option<String>,
    pub port: Option<String>,
    pub proto: Option<String>,
    pub helo: Option<String>,
    pub ident: Option<String>,
    pub source: Option<String>,
}

impl XForward {
    /// Attribute names we accept and pass on, in Postfix's order.
    pub const NAMES: [&'static str; 7] =
        ["NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE"];

    /// The slot for attribute `name` (upper case), if it is one we know.
    pub fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name {
            "NAME" => &mut self.name,
            "ADDR" => &mut self.addr,
            "PORT" => &mut self.port,
            "PROTO" => &mut self.proto,
            "HELO" => &mut self.helo,
            "IDENT" => &mut self.ident,
            "SOURCE" => &mut self.source,
            _ => return None,
        })
    }

    /// `(name, value)` for every attribute that was set, in Postfix's order.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        let vals = [
            &self.name,
            &self.addr,
            &self.port,
            &self.proto,
            &self.helo,
            &self.ident,
            &self.source,
        ];
        Self::NAMES
            .iter()
            .zip(vals)
            .filter_map(|(n, v)| v.as_deref().map(|v| (*n, v)))
            .collect()
    }

    /// True when no attribute was received.
    pub fn is_empty(&self) -> bool {
        self.pairs().is_empty()
    }
}

/// Who handed us the message, and on which socket.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The connecting peer (normally Postfix on 127.0.0.1); `None` on a unix socket.
    pub peer: Option<SocketAddr>,
    /// Our local address, for `Received:` and for picking a policy bank by port.
    pub local: Option<SocketAddr>,
    /// The unix socket the session came in on (policy banks by socket).
    pub socket_path: Option<std::path::PathBuf>,
    /// The HELO/EHLO/LHLO argument of the connecting peer.
    pub helo: String,
    /// True after EHLO or LHLO (rather than HELO).
    pub esmtp: bool,
    /// The original client, from XFORWARD.
    pub xforward: XForward,
}

/// One recipient with its RCPT parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The address between the angle brackets, as sent (source route removed).
    pub address: String,
    /// RCPT parameters in the order received (NOTIFY, ORCPT, ...).
    pub params: Vec<Param>,
}

impl Recipient {
    /// True when the client asked for no DSN at all for this recipient (`NOTIFY=NEVER`).
    pub fn notify_never(&self) -> bool {
        self.param("NOTIFY")
            .is_some_and(|v| v.eq_ignore_ascii_case("NEVER"))
    }

    /// True when a failure DSN may be sent for this recipient (RFC 3461: NOTIFY absent means
    /// FAILURE,DELAY by default).
    pub fn notify_failure(&self) -> bool {
        match self.param("NOTIFY") {
            None => true,
            Some(v) => v.split(',').any(|w| w.eq_ignore_ascii_case("FAILURE")),
        }
    }

    /// The raw value of parameter `k`.
    pub fn param(&self, k: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.is(k))
            .and_then(|p| p.value.as_deref())
    }
}

/// The envelope of one message.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// Reverse path; empty for the null sender `<>`.
    pub mail_from: String,
    /// MAIL parameters in the order received (SIZE, BODY, SMTPUTF8, RET, ENVID, AUTH).
    pub mail_params: Vec<Param>,
    /// Accepted recipients, in order.
    pub recipients: Vec<Recipient>,
    /// The session the message came in.
    pub client: ClientInfo,
    /// SMTP or LMTP inbound.
    pub protocol: Protocol,
    /// When DATA ended.
    pub received_at: SystemTime,
}

impl Envelope {
    /// The raw value of MAIL parameter `k`.
    pub fn mail_param(&self, k: &str) -> Option<&str> {
        self.mail_params
            .iter()
            .find(|p| p.is(k))
            .and_then(|p| p.value.as_deref())
    }

    /// True when the MAIL command carried the bare keyword `k` (SMTPUTF8).
    pub fn has_mail_flag(&self, k: &str) -> bool {
        self.mail_params.iter().any(|p| p.is(k))
    }
}
