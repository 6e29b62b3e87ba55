//! The SMTP/LMTP session state machine, generic over the stream so tests run it in memory.

use super::MessageHandler;
use super::command::{Command, parse};
use super::config::{Limits, ListenProtocol};
use super::connection::{Connection, ReadError, ReadTimeouts};
use super::data::DataReceiver;
use crate::catch_panic::CatchUnwind;
use crate::message::printable;
use crate::message::{
    ClientInfo, Envelope, Outcome, Param, Protocol, Recipient, Reply, SpoolError, SpoolWriter,
    XForward,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

/// What a session needs from the configuration; copied at session start so a reload never
/// changes a session half-way.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub hostname: String,
    pub protocol: ListenProtocol,
    pub limits: Limits,
    pub tempdir: PathBuf,
}

impl SessionSettings {
    /// The same settings for a listener speaking `protocol`.
    pub fn speaking(&self, protocol: ListenProtocol) -> Self {
        SessionSettings {
            protocol,
            ..self.clone()
        }
    }

    fn timeouts(&self) -> ReadTimeouts {
        ReadTimeouts {
            idle: Duration::from_secs(self.limits.idle_timeout),
            command: Duration::from_secs(self.limits.command_timeout),
            data: Duration::from_secs(self.limits.data_timeout),
        }
    }
}

/// One client session.
pub struct Session<S, H> {
    conn: Connection<S>,
    set: SessionSettings,
    handler: Arc<H>,
    shutdown: watch::Receiver<bool>,
    client: ClientInfo,
    protocol: Option<Protocol>,
    mail: Option<(String, Vec<Param>)>,
    rcpts: Vec<Recipient>,
    errors: usize,
}

enum Flow {
    Continue,
    Close,
}

impl<S, H> Session<S, H>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: MessageHandler,
{
    /// A session on `stream`; `client` carries the peer and local addresses.
    pub fn new(
        stream: S,
        set: SessionSettings,
        handler: Arc<H>,
        client: ClientInfo,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Session {
            conn: Connection::new(stream),
            set,
            handler,
            shutdown,
            client,
            protocol: None,
            mail: None,
            rcpts: Vec::new(),
            errors: 0,
        }
    }

    fn reset_transaction(&mut self) {
        self.mail = None;
        self.rcpts.clear();
        self.client.xforward = XForward::default();
    }

    /// The peer as `amavisd status` names the session's client (`unix` on a unix socket).
    pub fn client_addr(&self) -> String {
        self.client
            .peer
            .map_or_else(|| "unix".to_string(), |p| p.ip().to_string())
    }

    /// Runs the session to its end: QUIT, client gone, timeout, error limit or shutdown.
    pub async fn run(mut self) {
        let banner = format!("{} ESMTP amavisd-rs service ready", self.set.hostname);
        self.conn.reply(&Reply::new(220, "", banner));
        let timeouts = self.set.timeouts();
        loop {
            let line = match self
                .conn
                .read_line(
                    self.set.limits.line_length_limit,
                    &timeouts,
                    &mut self.shutdown,
                )
                .await
            {
                Ok(l) => l,
                Err(ReadError::TooLong) => {
                    self.conn
                        .reply(&Reply::new(500, "5.5.2", "Error: line too long"));
                    if let Flow::Close = self.count_error() {
                        break;
                    }
                    continue;
                }
                Err(ReadError::Timeout) => {
                    let text = format!("{} Error: timeout exceeded", self.set.hostname);
                    self.conn.reply(&Reply::new(421, "4.4.2", text));
                    break;
                }
                Err(ReadError::Shutdown) => {
                    let text = format!(
                        "{} Service shutting down, closing channel",
                        self.set.hostname
                    );
                    self.conn.reply(&Reply::new(421, "4.3.2", text));
                    break;
                }
                Err(ReadError::Eof) | Err(ReadError::Io(_)) => return,
            };
            let flow = match parse(&line) {
                Ok(cmd) => self.command(cmd).await,
                Err(e) => {
                    self.conn.reply(&e.reply());
                    self.count_error()
                }
            };
            if let Flow::Close = flow {
                break;
            }
        }
        self.conn.close().await;
    }

    fn count_error(&mut self) -> Flow {
        self.errors += 1;
        if self.errors >= self.set.limits.error_limit {
            self.conn.reply(&Reply::new(
                421,
                "4.7.0",
                "Error: too many errors, closing channel",
            ));
            Flow::Close
        } else {
            Flow::Continue
        }
    }

    fn refuse(&mut self, r: Reply) -> Flow {
        self.conn.reply(&r);
        self.count_error()
    }

    async fn command(&mut self, cmd: Command) -> Flow {
        match cmd {
            Command::Helo(host) => self.greeting(host, Protocol::Smtp, false),
            Command::Ehlo(host) => self.greeting(host, Protocol::Smtp, true),
            Command::Lhlo(host) => self.greeting(host, Protocol::Lmtp, true),
            Command::Xforward(attrs) => self.xforward(attrs),
            Command::Mail { address, params } => self.mail(address, params),
            Command::Rcpt { address, params } => self.rcpt(address, params),
            Command::Data => self.data().await,
            Command::Rset => {
                self.reset_transaction();
                self.conn.reply(&Reply::new(250, "2.0.0", "Ok"));
                Flow::Continue
            }
            Command::Noop => {
                self.conn.reply(&Reply::new(250, "2.0.0", "Ok"));
                Flow::Continue
            }
            Command::Vrfy(_) => {
                self.conn.reply(&Reply::new(
                    252,
                    "2.0.0",
                    "Cannot VRFY user, but will accept message and attempt delivery",
                ));
                Flow::Continue
            }
            Command::Help => {
                self.conn.reply(&Reply::new(
                    214,
                    "2.0.0",
                    "Commands: EHLO HELO LHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP XFORWARD",
                ));
                Flow::Continue
            }
            Command::Quit => {
                self.conn.reply(&Reply::new(221, "2.0.0", "Bye"));
                Flow::Close
            }
            Command::NotImplemented(verb) => self.refuse(Reply::new(
                502,
                "5.5.1",
                format!("Error: {verb} not implemented"),
            )),
        }
    }

    fn greeting(&mut self, host: String, proto: Protocol, esmtp: bool) -> Flow {
        let allowed = matches!(
            (self.set.protocol, proto),
            (ListenProtocol::Auto, _)
                | (ListenProtocol::Smtp, Protocol::Smtp)
                | (ListenProtocol::Lmtp, Protocol::Lmtp)
        );
        if !allowed {
            let text = match proto {
                Protocol::Lmtp => "Error: this port speaks SMTP, use EHLO",
                Protocol::Smtp => "Error: this port speaks LMTP, use LHLO",
            };
            return self.refuse(Reply::new(500, "5.5.1", text));
        }
        self.reset_transaction();
        self.protocol = Some(proto);
        self.client.helo = host;
        self.client.esmtp = esmtp;
        let h = &self.set.hostname;
        if !esmtp {
            self.conn.reply(&Reply::new(250, "", h.clone()));
        } else {
            let text = format!(
                "{h}\nVRFY\nPIPELINING\nSIZE {}\nENHANCEDSTATUSCODES\n8BITMIME\nSMTPUTF8\nDSN\n\
                 XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE",
                self.set.limits.message_size_limit
            );
            self.conn.reply(&Reply::new(250, "", text));
        }
        Flow::Continue
    }

    fn xforward(&mut self, attrs: Vec<(String, String)>) -> Flow {
        if self.protocol.is_none() {
            return self.refuse(Reply::new(503, "5.5.1", "Error: send HELO/EHLO first"));
        }
        if self.mail.is_some() {
            return self.refuse(Reply::new(
                503,
                "5.5.1",
                "Error: MAIL transaction in progress",
            ));
        }
        for (name, value) in attrs {
            if let Some(slot) = self.client.xforward.slot(&name) {
                *slot = Some(value);
            }
        }
        self.conn.reply(&Reply::new(250, "2.0.0", "Ok"));
        Flow::Continue
    }

    fn mail(&mut self, address: String, params: Vec<Param>) -> Flow {
        if self.protocol.is_none() {
            return self.refuse(Reply::new(503, "5.5.1", "Error: send HELO/EHLO first"));
        }
        if self.mail.is_some() {
            return self.refuse(Reply::new(503, "5.5.1", "Error: nested MAIL command"));
        }
        let size = params
            .iter()
            .find(|p| p.is("SIZE"))
            .and_then(|p| p.value.as_deref())
            .map(|v| v.parse::<u64>().unwrap_or(u64::MAX));
        if size.is_some_and(|s| s > self.set.limits.message_size_limit) {
            return self.refuse(Reply::new(552, "5.3.4", "Message size exceeds fixed limit"));
        }
        let text = format!("Sender <{}> OK", printable(&address));
        self.mail = Some((address, params));
        self.conn.reply(&Reply::new(250, "2.1.0", text));
        Flow::Continue
    }

    fn rcpt(&mut self, address: String, params: Vec<Param>) -> Flow {
        if self.mail.is_none() {
            return self.refuse(Reply::new(503, "5.5.1", "Error: need MAIL command"));
        }
        if self.rcpts.len() >= self.set.limits.recipient_limit {
            // Not an error the client made: it sends the rest in another transaction.
            self.conn
                .reply(&Reply::new(452, "4.5.3", "Error: too many recipients"));
            return Flow::Continue;
        }
        let text = format!("Recipient <{}> OK", printable(&address));
        self.rcpts.push(Recipient { address, params });
        self.conn.reply(&Reply::new(250, "2.1.5", text));
        Flow::Continue
    }

    async fn data(&mut self) -> Flow {
        if self.mail.is_none() {
            return self.refuse(Reply::new(503, "5.5.1", "Error: need MAIL command"));
        }
        if self.rcpts.is_empty() {
            return self.refuse(Reply::new(503, "5.5.1", "Error: need RCPT command"));
        }
        self.conn
            .reply(&Reply::new(354, "", "End data with <CR><LF>.<CR><LF>"));
        if self.conn.flush().await.is_err() {
            return Flow::Close;
        }
        let limits = &self.set.limits;
        let max = limits.message_size_limit;
        let mut spool = SpoolWriter::new(
            &self.set.tempdir,
            limits.memory_spool_limit,
            limits.header_size_limit,
        );
        let declared = self.mail.as_ref().and_then(|(_, params)| {
            let p = params.iter().find(|p| p.is("SIZE"))?;
            p.value.as_deref()?.parse::<u64>().ok()
        });
        if let Some(size) = declared {
            spool.size_hint(size);
        }
        crate::stats::sessions::stage("receiving");
        let read = self.read_body(&mut spool, max).await;
        crate::stats::sessions::stage("idle");
        let protocol = self.protocol.unwrap_or(Protocol::Smtp);
        let nrcpt = self.rcpts.len();
        let refuse_all = |this: &mut Self, r: Reply| {
            match protocol {
                Protocol::Smtp => this.conn.reply(&r),
                Protocol::Lmtp => (0..nrcpt).for_each(|_| this.conn.reply(&r)),
            }
            this.reset_transaction();
            Flow::Continue
        };
        let spooled = match read {
            Err(ReadError::Timeout) => {
                let text = format!("{} Error: timeout exceeded", self.set.hostname);
                self.conn.reply(&Reply::new(421, "4.4.2", text));
                return Flow::Close;
            }
            // The client is gone (or the shutdown came mid-DATA): no reply can be sent.
            Err(_) => return Flow::Close,
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) => spool.finish().await.map_err(DataError::Spool),
        };
        let spool = match spooled {
            Ok(spool) => spool,
            Err(DataError::TooBig) => {
                let r = Reply::new(552, "5.3.4", "Error: message size exceeds fixed limit");
                return refuse_all(self, r);
            }
            Err(DataError::Spool(e)) if !e.is_temporary() => {
                let text = "Error: message header section exceeds fixed limit";
                return refuse_all(self, Reply::new(552, "5.3.4", text));
            }
            Err(DataError::Spool(e)) => {
                tracing::error!("cannot spool message: {e}");
                let text = "Error: cannot spool message, try again later";
                return refuse_all(self, Reply::new(451, "4.3.0", text));
            }
        };
        let (mail_from, mail_params) = self.mail.take().unwrap_or_default();
        let envelope = Envelope {
            mail_from,
            mail_params,
            recipients: std::mem::take(&mut self.rcpts),
            client: self.client.clone(),
            protocol,
            received_at: SystemTime::now(),
        };
        crate::stats::bytes_in(spool.len());
        crate::stats::sessions::message(spool.len(), envelope.client.xforward.addr.as_deref());
        let outcome = self.dispatch(envelope, spool, nrcpt).await;
        crate::stats::sessions::message(0, None);
        crate::stats::sessions::stage("idle");
        crate::stats::message(outcome.message.code);
        match protocol {
            Protocol::Smtp => self.conn.reply(&outcome.message),
            Protocol::Lmtp => outcome
                .per_recipient
                .iter()
                .for_each(|r| self.conn.reply(r)),
        }
        self.reset_transaction();
        Flow::Continue
    }

    /// Reads DATA into the spool. Past the size limit or a spool failure the rest is read and
    /// thrown away, so the session stays in step with the client.
    async fn read_body(
        &mut self,
        spool: &mut SpoolWriter,
        max: u64,
    ) -> Result<Result<(), DataError>, ReadError> {
        let mut receiver = DataReceiver::new();
        let mut chunk = Vec::with_capacity(8 * 1024);
        let timeout = Duration::from_secs(self.set.limits.data_timeout);
        let mut total: u64 = 0;
        let mut failed: Option<DataError> = None;
        loop {
            let done = self
                .conn
                .read_data(&mut receiver, &mut chunk, timeout)
                .await?;
            total += chunk.len() as u64;
            if failed.is_none() {
                if total > max {
                    failed = Some(DataError::TooBig);
                } else if let Err(e) = spool.write(&chunk).await {
                    failed = Some(DataError::Spool(e));
                }
            }
            chunk.clear();
            if done {
                return Ok(failed.map_or(Ok(()), Err));
            }
        }
    }

    /// Runs the handler, catching a panic: it answers this message 451 4.3.0 and leaves the
    /// session and every other session running. (Polled on the session's own task: a task per
    /// message cost measurable throughput in cross-thread wake-ups.)
    async fn dispatch(
        &self,
        envelope: Envelope,
        spool: crate::message::Spool,
        nrcpt: usize,
    ) -> Outcome {
        let task = CatchUnwind(Box::pin(self.handler.handle(envelope, spool)));
        let internal = || {
            Outcome::uniform(
                Reply::new(
                    451,
                    "4.3.0",
                    "Error: internal error in content filter, try again later",
                ),
                nrcpt,
            )
        };
        match task.await {
            Ok(o) if o.per_recipient.len() == nrcpt => o,
            Ok(o) => {
                tracing::error!(
                    "handler returned {} replies for {nrcpt} recipients",
                    o.per_recipient.len()
                );
                internal()
            }
            Err(what) => {
                tracing::error!("message handler panicked: {what}");
                internal()
            }
        }
    }
}

enum DataError {
    TooBig,
    Spool(SpoolError),
}
