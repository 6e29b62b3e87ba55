//! One milter connection: packets read with a timeout, the envelope and the message
//! collected (the message streamed to a spool, as on the SMTP path), and at end of message
//! the screener's answer sent as milter actions.
//!
//! Whatever goes wrong on our side after the MTA has sent the message is a tempfail (4xx):
//! nothing unchecked is accepted. A packet we cannot parse ends the connection (the MTA
//! then applies its `milter_default_action`, which should be `tempfail`).

use super::Screener;
use super::protocol::{self, Command, ProtocolError, Response, action, proto};
use crate::message::header_edit::FieldChange;
use crate::message::screen::{Answer, ScreenOptions, Screened};
use crate::message::{ClientInfo, Envelope, Param, Protocol, Recipient, Reply, SpoolWriter};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What a session needs besides its stream.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub idle_timeout: Duration,
    pub policy_bank: String,
    pub authenticated_bank: String,
    pub hold_blocked: bool,
    /// Spool settings and caps, as on the SMTP path (`[limits]`).
    pub tempdir: PathBuf,
    pub memory_spool_limit: usize,
    pub header_size_limit: usize,
    pub message_size_limit: u64,
}

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("milter protocol: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("no packet from the MTA in {0:?}")]
    Timeout(Duration),
    #[error("connection closed inside a packet")]
    Truncated,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// The message being received.
#[derive(Default)]
struct Message {
    mail_from: Option<(String, Vec<Param>)>,
    recipients: Vec<Recipient>,
    spool: Option<SpoolWriter>,
    header_done: bool,
    /// Set when the message was refused while it came in (too large): its later packets are
    /// read and dropped.
    refused: bool,
}

struct Session<'a, S: Screener> {
    cfg: &'a SessionConfig,
    screener: &'a S,
    client: ClientInfo,
    actions: u32,
    /// The protocol flags negotiated (the steps left out, the commands not answered).
    protocol: u32,
    lead_space: bool,
    macros: BTreeMap<String, String>,
    msg: Message,
    /// A refusal made while no reply was allowed (a header over the limit), for the next
    /// command that is answered.
    held: Option<Vec<Response>>,
}

/// A stream that can acknowledge what it has read at once.
///
/// The MTA sends some packets that get no reply (macros, and commands it negotiated no
/// reply for) and then, at once, the next one. Postfix's socket waits with that next small
/// packet until the first is acknowledged (Nagle), and ours delays its acknowledgement for
/// up to 40 ms, hoping to send it with a reply that never comes: 40 ms a message, measured.
/// So every read is acknowledged at once (TCP_QUICKACK, which Linux clears again by itself).
pub trait AckNow {
    fn ack_now(&self) {}
}

impl AckNow for tokio::net::TcpStream {
    fn ack_now(&self) {
        #[cfg(target_os = "linux")]
        let _ = self.set_quickack(true);
    }
}

impl AckNow for tokio::net::UnixStream {}

/// Serves one MTA connection until it quits, closes or misbehaves.
pub async fn serve<S: Screener, T: AsyncRead + AsyncWrite + Unpin + AckNow>(
    mut stream: T,
    client: ClientInfo,
    screener: &S,
    cfg: &SessionConfig,
) -> Result<(), SessionError> {
    let mut s = Session {
        cfg,
        screener,
        client,
        actions: 0,
        protocol: 0,
        lead_space: false,
        macros: BTreeMap::new(),
        msg: Message::default(),
        held: None,
    };
    let mut buf = Vec::with_capacity(8192);
    loop {
        let (command, data, used) = loop {
            if let Some((c, d, n)) = protocol::cut(&buf)? {
                break (c, d.to_vec(), n);
            }
            let mut chunk = [0u8; 16384];
            let n = tokio::time::timeout(cfg.idle_timeout, stream.read(&mut chunk))
                .await
                .map_err(|_| SessionError::Timeout(cfg.idle_timeout))??;
            if n == 0 {
                return if buf.is_empty() {
                    Ok(())
                } else {
                    Err(SessionError::Truncated)
                };
            }
            buf.extend_from_slice(&chunk[..n]);
            stream.ack_now();
        };
        buf.drain(..used);
        let command = protocol::decode(command, &data)?;
        if command == Command::Quit {
            return Ok(());
        }
        let silent = command.no_reply_flag().is_some_and(|f| s.protocol & f != 0);
        let replies = s.handle(command).await;
        let replies = s.answer(silent, replies);
        let mut out = Vec::new();
        for r in &replies {
            out.extend_from_slice(&r.encode());
        }
        if !out.is_empty() {
            tokio::time::timeout(cfg.idle_timeout, stream.write_all(&out))
                .await
                .map_err(|_| SessionError::Timeout(cfg.idle_timeout))??;
        }
    }
}

impl<S: Screener> Session<'_, S> {
    /// Our answers to one command (none for macros, abort and the like).
    /// What goes on the wire for `replies`: nothing for a command the MTA does not wait on
    /// (a refusal among them is held for the next answered command, which gets it instead).
    fn answer(&mut self, silent: bool, replies: Vec<Response>) -> Vec<Response> {
        let refusal = replies.iter().any(|r| !matches!(r, Response::Continue));
        if silent {
            if refusal && self.held.is_none() {
                self.held = Some(replies);
            }
            return Vec::new();
        }
        match self.held.take() {
            Some(held) if !replies.is_empty() => held,
            Some(held) => {
                self.held = Some(held);
                replies
            }
            None => replies,
        }
    }

    async fn handle(&mut self, command: Command) -> Vec<Response> {
        match command {
            Command::OptNeg {
                version,
                actions,
                protocol,
            } => match protocol::negotiate(version, actions, protocol) {
                Some(r) => {
                    if let Response::OptNeg { actions, protocol } = r {
                        self.actions = actions;
                        self.protocol = protocol;
                        self.lead_space = protocol & proto::HDR_LEADSPC != 0;
                    }
                    vec![r]
                }
                // A version we cannot serve: the MTA falls back to its default action.
                None => vec![Response::Tempfail],
            },
            Command::Macros { pairs, .. } => {
                self.macros.extend(pairs);
                Vec::new()
            }
            Command::Connect {
                hostname,
                addr,
                port,
            } => {
                let x = &mut self.client.xforward;
                x.name = Some(hostname);
                x.addr = addr.map(|a| a.to_string());
                x.port = (port != 0).then(|| port.to_string());
                vec![Response::Continue]
            }
            Command::Helo(h) => {
                self.client.helo = h.clone();
                self.client.xforward.helo = Some(h);
                vec![Response::Continue]
            }
            Command::Mail(args) => {
                self.msg = Message::default();
                self.msg.mail_from = Some(address_and_params(&args));
                vec![Response::Continue]
            }
            Command::Rcpt(args) => {
                let (address, params) = address_and_params(&args);
                self.msg.recipients.push(Recipient { address, params });
                vec![Response::Continue]
            }
            Command::Data | Command::Unknown(_) => vec![Response::Continue],
            Command::Header { name, value } => self.header(&name, &value).await,
            Command::EndOfHeaders => self.end_of_headers().await,
            Command::Body(chunk) => self.body(&chunk).await,
            Command::EndOfMessage => self.end_of_message().await,
            Command::Abort => {
                self.msg = Message::default();
                self.held = None;
                Vec::new()
            }
            Command::QuitNewConnection => {
                self.msg = Message::default();
                self.held = None;
                self.macros.clear();
                self.client = ClientInfo {
                    peer: self.client.peer,
                    local: self.client.local,
                    socket_path: self.client.socket_path.take(),
                    ..ClientInfo::default()
                };
                Vec::new()
            }
            Command::Quit => Vec::new(),
        }
    }

    fn spool(&mut self) -> &mut SpoolWriter {
        let cfg = self.cfg;
        self.msg.spool.get_or_insert_with(|| {
            SpoolWriter::new(&cfg.tempdir, cfg.memory_spool_limit, cfg.header_size_limit)
        })
    }

    /// Writes message bytes, refusing the message once it is over a limit (552, permanent:
    /// the same message would meet it at every try) or the spool fails (451).
    async fn write(&mut self, data: &[u8]) -> Vec<Response> {
        if self.msg.refused {
            return vec![Response::Continue];
        }
        let limit = self.cfg.message_size_limit;
        let spool = self.spool();
        if spool.len() + data.len() as u64 > limit {
            self.msg.refused = true;
            return vec![reply(&Reply::new(
                552,
                "5.3.4",
                format!("Message size exceeds fixed limit of {limit} bytes"),
            ))];
        }
        match spool.write(data).await {
            Ok(()) => vec![Response::Continue],
            Err(e) => {
                self.msg.refused = true;
                let r = if e.is_temporary() {
                    tracing::error!("milter: spool: {e}");
                    Reply::new(
                        451,
                        "4.3.0",
                        "Error in processing: cannot spool the message",
                    )
                } else {
                    Reply::new(552, "5.3.4", format!("{e}"))
                };
                vec![reply(&r)]
            }
        }
    }

    /// One header field, rebuilt as it stood in the message: `name:value` CRLF, the space
    /// after the colon given back when the MTA took it off, bare line ends made CRLF.
    async fn header(&mut self, name: &[u8], value: &[u8]) -> Vec<Response> {
        let mut field = Vec::with_capacity(name.len() + value.len() + 4);
        field.extend_from_slice(name);
        field.push(b':');
        if !self.lead_space {
            field.push(b' ');
        }
        let mut last = 0u8;
        for &b in value {
            if b == b'\n' && last != b'\r' {
                field.push(b'\r');
            }
            field.push(b);
            last = b;
        }
        field.extend_from_slice(b"\r\n");
        self.write(&field).await
    }

    async fn end_of_headers(&mut self) -> Vec<Response> {
        self.msg.header_done = true;
        self.write(b"\r\n").await
    }

    async fn body(&mut self, chunk: &[u8]) -> Vec<Response> {
        if !self.msg.header_done {
            let r = self.end_of_headers().await;
            if self.msg.refused {
                return r;
            }
        }
        self.write(chunk).await
    }

    /// The verdict, as milter actions; the message state is reset for the next one.
    async fn end_of_message(&mut self) -> Vec<Response> {
        let msg = std::mem::take(&mut self.msg);
        if msg.refused {
            // Already answered; an MTA that goes on anyway is told again.
            return vec![Response::Tempfail];
        }
        let Some((mail_from, mail_params)) = msg.mail_from else {
            return vec![reply(&Reply::new(
                451,
                "4.5.0",
                "Error: no MAIL FROM received",
            ))];
        };
        let spool = match msg.spool {
            Some(w) => w.finish().await,
            None => SpoolWriter::new(&self.cfg.tempdir, 0, 0).finish().await,
        };
        let spool = match spool {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("milter: spool: {e}");
                return vec![reply(&Reply::new(
                    451,
                    "4.3.0",
                    "Error in processing: spool",
                ))];
            }
        };
        let env = Envelope {
            mail_from,
            mail_params,
            recipients: msg.recipients,
            client: self.client.clone(),
            protocol: Protocol::Smtp,
            received_at: SystemTime::now(),
        };
        let opts = self.options();
        let screened = self.screener.screen(env, spool, &opts).await;
        self.actions(screened)
    }

    /// The banks this listener, the daemon name and authentication ask for; what the MTA
    /// exchanged as header values.
    fn options(&self) -> ScreenOptions {
        let mut banks = Vec::new();
        if !self.cfg.policy_bank.is_empty() {
            banks.push(self.cfg.policy_bank.clone());
        }
        let authenticated = self
            .macros
            .get("auth_authen")
            .is_some_and(|a| !a.is_empty());
        let optional = [
            self.macros.get("daemon_name").cloned(),
            authenticated.then(|| self.cfg.authenticated_bank.clone()),
        ];
        for b in optional.into_iter().flatten() {
            if !b.is_empty() && self.screener.has_policy_bank(&b) && !banks.contains(&b) {
                banks.push(b);
            }
        }
        ScreenOptions {
            banks,
            lead_space: self.lead_space,
            hold_blocked: self.cfg.hold_blocked,
            queue_id: self.macros.get("i").filter(|i| !i.is_empty()).cloned(),
        }
    }

    /// The answer as the actions the MTA allowed at negotiation, the final one last.
    fn actions(&self, s: Screened) -> Vec<Response> {
        let mut out = Vec::new();
        if matches!(s.answer, Answer::Accept) {
            out.extend(self.edits(&s));
        }
        let last = match s.answer {
            Answer::Accept => Response::Accept,
            Answer::Discard => Response::Discard,
            Answer::Reject(r) | Answer::Tempfail(r) => reply(&r),
        };
        out.push(last);
        out
    }

    fn edits(&self, s: &Screened) -> Vec<Response> {
        let mut out = Vec::new();
        let may = |a: u32| self.actions & a != 0;
        for c in &s.changes {
            let r = match c.clone() {
                FieldChange::Insert { index, name, value } if may(action::ADDHDRS) => {
                    Response::InsertHeader { index, name, value }
                }
                FieldChange::Append { name, value } if may(action::ADDHDRS) => {
                    Response::AddHeader { name, value }
                }
                FieldChange::Replace { index, name, value } if may(action::CHGHDRS) => {
                    Response::ChangeHeader { index, name, value }
                }
                c => {
                    tracing::warn!("({}) milter: the MTA does not allow {c:?}", s.am_id);
                    continue;
                }
            };
            out.push(r);
        }
        if may(action::DELRCPT) {
            out.extend(s.remove.iter().cloned().map(Response::DeleteRecipient));
        } else if !s.remove.is_empty() {
            tracing::warn!(
                "({}) milter: the MTA does not allow removing recipients",
                s.am_id
            );
        }
        if let Some(why) = &s.hold {
            out.push(Response::Quarantine(why.clone()));
        }
        out
    }
}

fn reply(r: &Reply) -> Response {
    Response::ReplyCode(r.one_line())
}

/// The address of `<addr>` (brackets and a source route removed) and the ESMTP parameters.
fn address_and_params(args: &[String]) -> (String, Vec<Param>) {
    let first = args.first().map(String::as_str).unwrap_or_default().trim();
    let inner = first
        .strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(first);
    let inner = match inner.split_once(':') {
        Some((route, rest)) if route.starts_with('@') => rest,
        _ => inner,
    };
    let params = args.iter().skip(1).map(|p| Param::parse(p)).collect();
    (inner.to_string(), params)
}
