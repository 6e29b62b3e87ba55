//! One reinjection transaction, and the cache of idle connections to the next hop.

use super::client::Client;
use super::config::{ForwardLimits, ForwardMethod};
use super::dot_stuff::DotStuffer;
use super::error::ForwardError;
use crate::message::{Param, Recipient, Reply, Spool, XForward, xtext};
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

/// One message to send. The bytes on the wire are `prefix`, then the spool from `skip` on,
/// then `suffix`.
pub struct OutMessage<'a> {
    pub mail_from: &'a str,
    /// MAIL parameters as received; each is passed on when the next hop offers its extension.
    pub mail_params: &'a [Param],
    pub recipients: &'a [Recipient],
    /// The original client; sent when the next hop offers XFORWARD.
    pub xforward: &'a XForward,
    pub prefix: &'a [u8],
    pub spool: &'a Spool,
    /// Bytes at the start of the spool not sent (the original header section, when `prefix`
    /// carries a rewritten one).
    pub skip: u64,
    pub suffix: &'a [u8],
    /// A 4xx for any recipient (or for MAIL) aborts the transaction before DATA, so nobody
    /// gets a copy; used when the inbound side is SMTP and can only answer once per message.
    pub all_or_nothing: bool,
}

/// The result of a transaction that ran to its end: the final reply for each recipient, in
/// order (a refused RCPT, or the reply after the data).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub replies: Vec<Reply>,
    /// The next hop's queue id, from `250 ... queued as X`.
    pub queued_as: Option<String>,
}

/// Sends messages to one next hop, reusing idle connections.
pub struct Forwarder {
    method: ForwardMethod,
    helo: String,
    limits: ForwardLimits,
    idle: Mutex<Vec<Client>>,
}

impl Forwarder {
    /// Sends a message of our own (a DSN, a notice) from the null sender to one address:
    /// `prefix`, then `spool` (the original or its header section, if any), then `suffix`.
    pub async fn send_notification(
        &self,
        to: &str,
        prefix: &[u8],
        spool: &Spool,
        suffix: &[u8],
    ) -> Result<Delivery, ForwardError> {
        let rcpt = [Recipient {
            address: to.to_string(),
            params: Vec::new(),
        }];
        let none = XForward::default();
        self.deliver(&OutMessage {
            mail_from: "",
            mail_params: &[],
            recipients: &rcpt,
            xforward: &none,
            prefix,
            spool,
            skip: 0,
            suffix,
            all_or_nothing: true,
        })
        .await
    }

    /// A forwarder to `method`, greeting with `helo`.
    pub fn new(method: ForwardMethod, helo: String, limits: ForwardLimits) -> Forwarder {
        Forwarder {
            method,
            helo,
            limits,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The target, as `smtp:[addr]:port`.
    pub fn method(&self) -> &ForwardMethod {
        &self.method
    }

    fn take_idle(&self) -> Option<Client> {
        self.idle.lock().ok().and_then(|mut v| v.pop())
    }

    async fn connect(&self) -> Result<Client, ForwardError> {
        Client::connect(
            &self.method,
            &self.helo,
            Duration::from_secs(self.limits.connect_timeout),
            Duration::from_secs(self.limits.command_timeout),
        )
        .await
    }

    async fn checkin(&self, c: Client) {
        if c.has_unread() {
            return;
        }
        let spare = match self.idle.lock() {
            Ok(mut v) if v.len() < self.limits.max_idle_connections => {
                v.push(c);
                None
            }
            _ => Some(c),
        };
        if let Some(c) = spare {
            c.quit().await;
        }
    }

    /// Runs one transaction. `Err` means nothing can be said per recipient (connection lost,
    /// timeout): the caller must treat every recipient as not delivered.
    ///
    /// A cached connection may have been closed by the next hop meanwhile (Postfix's
    /// `smtpd_timeout`). It starts with RSET; when that RSET fails, no byte of the transaction
    /// has been accepted yet, so the transaction is simply run again on a fresh connection.
    pub async fn deliver(&self, msg: &OutMessage<'_>) -> Result<Delivery, ForwardError> {
        while let Some(mut c) = self.take_idle() {
            match transaction(&mut c, msg, &self.limits, true).await {
                Ok((d, reusable)) => {
                    if reusable {
                        self.checkin(c).await;
                    }
                    return Ok(d);
                }
                Err(TxError::Stale) => continue,
                Err(TxError::Failed(e)) => return Err(e),
            }
        }
        let mut c = self.connect().await?;
        match transaction(&mut c, msg, &self.limits, false).await {
            Ok((d, reusable)) => {
                if reusable {
                    self.checkin(c).await;
                }
                Ok(d)
            }
            Err(TxError::Stale) => Err(ForwardError::Protocol {
                stage: "RSET",
                detail: "fresh connection refused RSET".into(),
            }),
            Err(TxError::Failed(e)) => Err(e),
        }
    }
}

/// How a transaction failed: on a stale cached connection before anything was committed (run
/// it again elsewhere), or for real.
enum TxError {
    Stale,
    Failed(ForwardError),
}

impl From<ForwardError> for TxError {
    fn from(e: ForwardError) -> Self {
        TxError::Failed(e)
    }
}

fn xforward_commands(x: &XForward, offered: &[String]) -> Vec<String> {
    // Postfix keeps each XFORWARD line short; so do we.
    let mut out = Vec::new();
    let mut line = String::from("XFORWARD");
    for (name, value) in x.pairs() {
        if !offered.iter().any(|o| o == name) {
            continue;
        }
        let attr = format!(" {name}={}", xtext::encode(value));
        if line.len() + attr.len() > 500 && line.len() > 8 {
            out.push(std::mem::replace(&mut line, String::from("XFORWARD")) + "\r\n");
        }
        line.push_str(&attr);
    }
    if line.len() > 8 {
        out.push(line + "\r\n");
    }
    out
}

fn mail_command(msg: &OutMessage<'_>, caps: &super::Capabilities, size: u64) -> String {
    let mut cmd = format!("MAIL FROM:<{}>", msg.mail_from);
    if caps.size {
        // The size of what we send, which includes the header fields we added.
        cmd.push_str(&format!(" SIZE={size}"));
    }
    for p in msg.mail_params {
        let pass = match p.keyword.to_ascii_uppercase().as_str() {
            "BODY" => caps.eightbitmime,
            "SMTPUTF8" => caps.smtputf8,
            "RET" | "ENVID" => caps.dsn,
            "AUTH" => caps.auth,
            _ => false,
        };
        if pass {
            cmd.push(' ');
            cmd.push_str(&p.wire());
        }
    }
    cmd.push_str("\r\n");
    cmd
}

fn rcpt_command(r: &Recipient, caps: &super::Capabilities) -> String {
    let mut cmd = format!("RCPT TO:<{}>", r.address);
    if caps.dsn {
        for p in r.params.iter().filter(|p| p.is("NOTIFY") || p.is("ORCPT")) {
            cmd.push(' ');
            cmd.push_str(&p.wire());
        }
    }
    cmd.push_str("\r\n");
    cmd
}

fn queued_as(r: &Reply) -> Option<String> {
    let i = r.text.find("queued as ")?;
    let id = r.text[i + 10..].split_whitespace().next()?;
    Some(id.trim_end_matches([',', '.', ';', ')']).to_string())
}

/// The commands of one transaction, before any is sent.
struct Commands {
    xforward: Vec<String>,
    mail: String,
    rcpts: Vec<String>,
    /// DATA joins the pipelined group.
    pipeline_data: bool,
}

/// The next hop's replies to the envelope (and to DATA when it was pipelined).
struct EnvelopeReplies {
    mail: Reply,
    rcpts: Vec<Reply>,
    data: Option<Reply>,
}

fn commands(msg: &OutMessage<'_>, caps: &super::Capabilities) -> Commands {
    let size = msg.prefix.len() as u64
        + msg.spool.len().saturating_sub(msg.skip)
        + msg.suffix.len() as u64;
    Commands {
        xforward: if msg.xforward.is_empty() {
            Vec::new()
        } else {
            xforward_commands(msg.xforward, &caps.xforward)
        },
        mail: mail_command(msg, caps, size),
        rcpts: msg
            .recipients
            .iter()
            .map(|r| rcpt_command(r, caps))
            .collect(),
        // DATA may join the pipelined group when no all-or-nothing decision has to be taken
        // between the RCPT replies and DATA: one recipient, or an LMTP client upstream.
        pipeline_data: caps.pipelining && (msg.recipients.len() == 1 || !msg.all_or_nothing),
    }
}

/// Runs the transaction; returns the delivery and whether the connection may be reused.
async fn transaction(
    c: &mut Client,
    msg: &OutMessage<'_>,
    limits: &ForwardLimits,
    reused: bool,
) -> Result<(Delivery, bool), TxError> {
    let cmds = commands(msg, &c.caps);
    let env = if c.caps.pipelining {
        envelope_pipelined(c, &cmds, reused).await?
    } else {
        envelope_one_by_one(c, &cmds, reused).await?
    };
    let mail_reply = answer(env.mail, "MAIL");
    if !mail_reply.is_positive() {
        // Every recipient shares the sender's fate.
        let replies = vec![mail_reply; msg.recipients.len()];
        return Ok(without_data(c, replies, &env.data).await);
    }
    let mut replies: Vec<Reply> = env.rcpts.into_iter().map(|r| answer(r, "RCPT")).collect();
    let accepted: Vec<usize> = (0..replies.len())
        .filter(|&i| replies[i].is_positive())
        .collect();
    let any_temp = replies.iter().any(Reply::is_temporary);
    if accepted.is_empty() || (msg.all_or_nothing && any_temp) {
        // Recipients held back share the deferral that held them, so the one reply an SMTP
        // client gets names the real cause.
        if let Some(held) = replies.iter().find(|r| r.is_temporary()).cloned() {
            for i in &accepted {
                replies[*i] = held.clone();
            }
        }
        return Ok(without_data(c, replies, &env.data).await);
    }
    let r = match env.data {
        Some(r) => r,
        None => c.command("DATA\r\n", "after DATA").await?,
    };
    if r.code != 354 {
        let r = answer(r, "DATA");
        for i in &accepted {
            replies[*i] = r.clone();
        }
        return Ok(without_data(c, replies, &None).await);
    }
    send_body(c, msg).await?;
    let queued_as = final_replies(c, limits, &accepted, &mut replies).await?;
    Ok((Delivery { replies, queued_as }, true))
}

/// The envelope in one pipelined write (RSET first on a reused connection), then its
/// replies in order.
async fn envelope_pipelined(
    c: &mut Client,
    cmds: &Commands,
    reused: bool,
) -> Result<EnvelopeReplies, TxError> {
    let mut batch = String::new();
    if reused {
        batch.push_str("RSET\r\n");
    }
    cmds.xforward.iter().for_each(|l| batch.push_str(l));
    batch.push_str(&cmds.mail);
    cmds.rcpts.iter().for_each(|l| batch.push_str(l));
    if cmds.pipeline_data {
        batch.push_str("DATA\r\n");
    }
    if let Err(e) = c.write(batch.as_bytes(), "sending MAIL/RCPT").await {
        return Err(if reused { TxError::Stale } else { e.into() });
    }
    if reused {
        match c.read_reply("after RSET").await {
            Ok(r) if r.code == 250 => {}
            _ => return Err(TxError::Stale),
        }
    }
    for _ in &cmds.xforward {
        let r = c.read_reply("after XFORWARD").await?;
        if !r.is_positive() {
            tracing::warn!("next hop refused XFORWARD: {r}");
        }
    }
    let mail = c.read_reply("after MAIL").await?;
    let mut rcpts = Vec::with_capacity(cmds.rcpts.len());
    for _ in &cmds.rcpts {
        rcpts.push(c.read_reply("after RCPT").await?);
    }
    let data = if cmds.pipeline_data {
        Some(c.read_reply("after DATA").await?)
    } else {
        None
    };
    Ok(EnvelopeReplies { mail, rcpts, data })
}

/// The envelope one command at a time, for a next hop without PIPELINING; no RCPT after a
/// refused MAIL.
async fn envelope_one_by_one(
    c: &mut Client,
    cmds: &Commands,
    reused: bool,
) -> Result<EnvelopeReplies, TxError> {
    if reused {
        match c.command("RSET\r\n", "after RSET").await {
            Ok(r) if r.code == 250 => {}
            _ => return Err(TxError::Stale),
        }
    }
    for l in &cmds.xforward {
        let r = c.command(l, "after XFORWARD").await?;
        if !r.is_positive() {
            tracing::warn!("next hop refused XFORWARD: {r}");
        }
    }
    let mail = c.command(&cmds.mail, "after MAIL").await?;
    let mut rcpts = Vec::with_capacity(cmds.rcpts.len());
    if mail.is_positive() {
        for l in &cmds.rcpts {
            rcpts.push(c.command(l, "after RCPT").await?);
        }
    }
    Ok(EnvelopeReplies {
        mail,
        rcpts,
        data: None,
    })
}

/// The replies after the final dot (one per accepted recipient from an LMTP next hop, one
/// for all from SMTP), within `data_done_timeout`, written into `replies`; the queue id the
/// next hop named.
async fn final_replies(
    c: &mut Client,
    limits: &ForwardLimits,
    accepted: &[usize],
    replies: &mut [Reply],
) -> Result<Option<String>, TxError> {
    let deadline = Instant::now() + Duration::from_secs(limits.data_done_timeout);
    let mut queued = None;
    let finals = if c.lmtp { accepted.len() } else { 1 };
    let mut got = Vec::with_capacity(finals);
    for _ in 0..finals {
        let r = c.read_reply_by(deadline, "after end of data").await?;
        if queued.is_none() && r.is_positive() {
            queued = queued_as(&r);
        }
        got.push(r);
    }
    for (k, i) in accepted.iter().enumerate() {
        let r = if c.lmtp { &got[k] } else { &got[0] };
        replies[*i] = answer(r.clone(), "end of data");
    }
    Ok(queued)
}

/// A reply taken as the answer for a recipient: 2xx, 4xx or 5xx as sent; anything else (a 3xx
/// where none belongs) is a protocol error, answered 451 so that the mail is kept.
fn answer(r: Reply, to: &str) -> Reply {
    if r.is_positive() || r.code >= 400 {
        r
    } else {
        Reply::new(451, "4.5.0", format!("unexpected reply to {to}: {r}"))
    }
}

/// Ends a transaction that sends no message: RSET, unless a pipelined DATA was answered 354
/// anyway, which can only be abandoned by closing the connection.
async fn without_data(
    c: &mut Client,
    replies: Vec<Reply>,
    data_reply: &Option<Reply>,
) -> (Delivery, bool) {
    let data_open = data_reply.as_ref().is_some_and(|r| r.code == 354);
    let reusable = !data_open && reset(c).await;
    let delivery = Delivery {
        replies,
        queued_as: None,
    };
    (delivery, reusable)
}

async fn reset(c: &mut Client) -> bool {
    matches!(c.command("RSET\r\n", "after RSET").await, Ok(r) if r.code == 250)
}

async fn send_body(c: &mut Client, msg: &OutMessage<'_>) -> Result<(), ForwardError> {
    const CHUNK: usize = 64 * 1024;
    let mut stuffer = DotStuffer::default();
    let size = msg.prefix.len() + msg.spool.len() as usize + msg.suffix.len();
    let mut out = Vec::with_capacity(size.min(CHUNK) + 1024);
    stuffer.push(msg.prefix, &mut out);
    if let Some(all) = msg.spool.as_bytes() {
        let bytes = &all[usize::try_from(msg.skip)
            .unwrap_or(usize::MAX)
            .min(all.len())..];
        for piece in bytes.chunks(CHUNK) {
            stuffer.push(piece, &mut out);
            if out.len() >= CHUNK {
                c.write(&out, "sending message").await?;
                out.clear();
            }
        }
    } else {
        let mut reader = msg
            .spool
            .reader_at(msg.skip)
            .await
            .map_err(ForwardError::Spool)?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = reader.read(&mut buf).await.map_err(ForwardError::Spool)?;
            if n == 0 {
                break;
            }
            stuffer.push(&buf[..n], &mut out);
            if out.len() >= CHUNK {
                c.write(&out, "sending message").await?;
                out.clear();
            }
        }
    }
    stuffer.push(msg.suffix, &mut out);
    out.extend_from_slice(stuffer.terminator());
    c.write(&out, "sending message").await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp_out::Capabilities;

    #[test]
    fn xforward_lines_only_offered_attrs() {
        let x = XForward {
            name: Some("mx.example.org".into()),
            addr: Some("192.0.2.7".into()),
            helo: Some("bad helo".into()),
            ident: Some("ABC".into()),
            ..XForward::default()
        };
        let offered: Vec<String> = ["NAME", "ADDR", "HELO"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            xforward_commands(&x, &offered),
            ["XFORWARD NAME=mx.example.org ADDR=192.0.2.7 HELO=bad+20helo\r\n"]
        );
        assert!(xforward_commands(&x, &[]).is_empty());
    }

    #[test]
    fn params_follow_capabilities() {
        let params: Vec<Param> = [
            "SIZE=5",
            "BODY=8BITMIME",
            "SMTPUTF8",
            "RET=HDRS",
            "ENVID=a+2Bb",
            "AUTH=<>",
        ]
        .iter()
        .map(|w| Param::parse(w))
        .collect();
        let spool = Spool::from_bytes(Vec::new());
        let x = XForward::default();
        let msg = OutMessage {
            mail_from: "s@x",
            mail_params: &params,
            recipients: &[],
            xforward: &x,
            prefix: b"",
            spool: &spool,
            skip: 0,
            suffix: b"",
            all_or_nothing: true,
        };
        let all = Capabilities {
            size: true,
            eightbitmime: true,
            smtputf8: true,
            dsn: true,
            ..Capabilities::default()
        };
        assert_eq!(
            mail_command(&msg, &all, 42),
            "MAIL FROM:<s@x> SIZE=42 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=a+2Bb\r\n"
        );
        assert_eq!(
            mail_command(&msg, &Capabilities::default(), 42),
            "MAIL FROM:<s@x>\r\n"
        );
        let r = Recipient {
            address: "u@x".into(),
            params: vec![Param {
                keyword: "NOTIFY".into(),
                value: Some("NEVER".into()),
            }],
        };
        assert_eq!(rcpt_command(&r, &all), "RCPT TO:<u@x> NOTIFY=NEVER\r\n");
        assert_eq!(
            rcpt_command(&r, &Capabilities::default()),
            "RCPT TO:<u@x>\r\n"
        );
    }

    #[test]
    fn queued_as_parsed() {
        let r = Reply::new(250, "2.0.0", "Ok: queued as 4Xyz1ABC");
        assert_eq!(queued_as(&r).as_deref(), Some("4Xyz1ABC"));
        assert_eq!(queued_as(&Reply::new(250, "2.0.0", "Ok")), None);
    }
}
