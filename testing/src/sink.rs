//! A small SMTP/LMTP receiver with scripted answers: the next hop in tests (answers 250, 4xx or
//! 5xx per recipient, hangs, or drops) and the sink of the load tool.
//!
//! Per-recipient answers come from the recipient's local part, so one sink serves every case:
//!
//! | local part starts with | answer |
//! |---|---|
//! | `rcpt-temp` | `450 4.2.0` to RCPT |
//! | `rcpt-perm` | `550 5.1.1` to RCPT |
//! | `data-temp` | after DATA: `452 4.2.2` (LMTP: for that recipient; SMTP: for the message) |
//! | `data-perm` | after DATA: `552 5.2.2` (likewise) |
//!
//! and the whole session follows a [`SinkMode`].

use amavisd::message::Reply;
use amavisd::smtp_in::{Connection, DataReceiver, ReadError, ReadTimeouts};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How the sink behaves for a whole session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkMode {
    /// Normal: per-recipient rules only.
    Accept,
    /// `451 4.3.0` to MAIL.
    TempFail,
    /// `554 5.7.1` to MAIL.
    Reject,
    /// Accepts the connection and never greets.
    HangGreeting,
    /// Reads the message, then never answers.
    HangAfterData,
    /// Closes the connection right after the 354, mid-transfer.
    DropInData,
    /// Reads the whole message, then closes without answering.
    DropAfterData,
    /// Answers the message, then closes the connection, as a next hop whose idle timeout
    /// expired would: a cached connection to it is dead at the next use.
    CloseAfterMessage,
    /// Greets with `421 4.3.2` and closes (a server shutting down).
    Greet421,
    /// `451 4.3.0` to every RCPT.
    RcptTempFail,
    /// `550 5.1.1` to every RCPT.
    RcptReject,
    /// Reads the message, then `451 4.3.0` (for each recipient over LMTP).
    DataTempFail,
    /// Reads the message, then `554 5.6.0` (for each recipient over LMTP).
    DataReject,
}

impl std::str::FromStr for SinkMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "accept" => SinkMode::Accept,
            "tempfail" => SinkMode::TempFail,
            "reject" => SinkMode::Reject,
            "hang-greeting" => SinkMode::HangGreeting,
            "hang-after-data" => SinkMode::HangAfterData,
            "drop-in-data" => SinkMode::DropInData,
            "drop-after-data" => SinkMode::DropAfterData,
            "close-after-message" => SinkMode::CloseAfterMessage,
            "greet-421" => SinkMode::Greet421,
            "rcpt-tempfail" => SinkMode::RcptTempFail,
            "rcpt-reject" => SinkMode::RcptReject,
            "data-tempfail" => SinkMode::DataTempFail,
            "data-reject" => SinkMode::DataReject,
            _ => return Err(format!("unknown sink mode {s:?}")),
        })
    }
}

/// One message as the sink saw it.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// The EHLO/LHLO/HELO line.
    pub helo: String,
    /// XFORWARD lines, as sent.
    pub xforward: Vec<String>,
    /// The MAIL line, as sent.
    pub mail: String,
    /// The RCPT lines that were accepted, as sent.
    pub rcpts: Vec<String>,
    /// The message, unstuffed.
    pub data: Vec<u8>,
    /// How many sessions the sink had accepted when this message came (to see reuse).
    pub session: u64,
}

/// Shared sink state: its mode, what it received, and counters.
pub struct Sink {
    pub mode: Mutex<SinkMode>,
    /// Keep received messages (tests); the load tool leaves this off.
    pub record: bool,
    pub received: Mutex<Vec<Received>>,
    pub messages: AtomicU64,
    pub sessions: AtomicU64,
    /// Extra EHLO keywords are advertised unless this is set.
    pub plain: std::sync::atomic::AtomicBool,
    /// Keep only the header section of recorded messages (long runs that count Message-IDs).
    pub headers_only: std::sync::atomic::AtomicBool,
    /// Told once, right after the next 250 to a message has been sent (the chaos run kills
    /// the filter there: the next hop has the message, the client has no answer yet).
    accepted_hook: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl Sink {
    /// A sink in `mode`.
    pub fn new(mode: SinkMode, record: bool) -> Arc<Sink> {
        Arc::new(Sink {
            mode: Mutex::new(mode),
            record,
            received: Mutex::new(Vec::new()),
            messages: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
            plain: std::sync::atomic::AtomicBool::new(false),
            headers_only: std::sync::atomic::AtomicBool::new(false),
            accepted_hook: Mutex::new(None),
        })
    }

    /// Resolves right after the sink has sent its next 250 to a message.
    pub fn next_accepted(&self) -> tokio::sync::oneshot::Receiver<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Ok(mut g) = self.accepted_hook.lock() {
            *g = Some(tx);
        }
        rx
    }

    fn tell_accepted(&self) {
        if let Some(tx) = self.accepted_hook.lock().ok().and_then(|mut g| g.take()) {
            let _ = tx.send(());
        }
    }

    /// Changes the mode for sessions and commands from now on.
    pub fn set_mode(&self, m: SinkMode) {
        if let Ok(mut g) = self.mode.lock() {
            *g = m;
        }
    }

    fn mode(&self) -> SinkMode {
        self.mode.lock().map(|g| *g).unwrap_or(SinkMode::Accept)
    }

    /// What was received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// Serves on `listener` for ever (spawn it; abort the task to stop).
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let sink = Arc::clone(&self);
            tokio::spawn(async move { sink.session(stream).await });
        }
    }

    /// Binds 127.0.0.1:0, serves in the background, returns the port.
    pub async fn spawn(self: &Arc<Self>) -> std::io::Result<(u16, tokio::task::JoinHandle<()>)> {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let port = l.local_addr()?.port();
        let me = Arc::clone(self);
        Ok((port, tokio::spawn(me.serve(l))))
    }

    async fn session<S: AsyncRead + AsyncWrite + Unpin>(&self, stream: S) {
        let session_no = self.sessions.fetch_add(1, Ordering::Relaxed) + 1;
        let mut conn = Connection::new(stream);
        match self.mode() {
            SinkMode::HangGreeting => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            SinkMode::Greet421 => {
                conn.reply(&Reply::new(421, "4.3.2", "sink shutting down"));
                conn.close().await;
                return;
            }
            _ => {}
        }
        let (_tx, mut shutdown) = watch::channel(false);
        let t = ReadTimeouts {
            idle: Duration::from_secs(600),
            command: Duration::from_secs(600),
            data: Duration::from_secs(600),
        };
        conn.reply(&Reply::new(220, "", "sink ESMTP"));
        let mut lmtp = false;
        let mut cur = Received::default();
        let mut in_mail = false;
        // Per-recipient "after data" rule for each accepted recipient.
        let mut after: Vec<Option<Reply>> = Vec::new();
        loop {
            let line = match conn.read_line(8192, &t, &mut shutdown).await {
                Ok(l) => String::from_utf8_lossy(&l).into_owned(),
                Err(ReadError::TooLong) => {
                    conn.reply(&Reply::new(500, "5.5.2", "too long"));
                    continue;
                }
                Err(_) => return,
            };
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" | "LHLO" => {
                    lmtp = verb == "LHLO";
                    cur.helo = line.clone();
                    let caps = if self.plain.load(Ordering::Relaxed) {
                        "sink".to_string()
                    } else {
                        "sink\nPIPELINING\nSIZE 1000000000\n8BITMIME\nSMTPUTF8\nDSN\nENHANCEDSTATUSCODES\n\
                         XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE"
                            .to_string()
                    };
                    conn.reply(&Reply::new(250, "", caps));
                }
                "HELO" => {
                    cur.helo = line.clone();
                    conn.reply(&Reply::new(250, "", "sink"));
                }
                "XFORWARD" => {
                    cur.xforward.push(line.clone());
                    conn.reply(&Reply::new(250, "2.0.0", "Ok"));
                }
                "MAIL" => match self.mode() {
                    SinkMode::TempFail => conn.reply(&Reply::new(451, "4.3.0", "sink says later")),
                    SinkMode::Reject => conn.reply(&Reply::new(554, "5.7.1", "sink says no")),
                    _ => {
                        in_mail = true;
                        cur.mail = line.clone();
                        conn.reply(&Reply::new(250, "2.1.0", "Ok"));
                    }
                },
                "RCPT" => {
                    if !in_mail {
                        conn.reply(&Reply::new(503, "5.5.1", "need MAIL"));
                        continue;
                    }
                    let local = line
                        .split_once('<')
                        .map(|(_, a)| a.trim_start_matches('@'))
                        .unwrap_or("");
                    let mode = self.mode();
                    if local.starts_with("rcpt-temp") || mode == SinkMode::RcptTempFail {
                        conn.reply(&Reply::new(450, "4.2.0", "Mailbox busy"));
                    } else if local.starts_with("rcpt-perm") || mode == SinkMode::RcptReject {
                        conn.reply(&Reply::new(550, "5.1.1", "User unknown"));
                    } else {
                        after.push(if local.starts_with("data-temp") {
                            Some(Reply::new(452, "4.2.2", "Mailbox full"))
                        } else if local.starts_with("data-perm") {
                            Some(Reply::new(552, "5.2.2", "Mailbox full for good"))
                        } else {
                            None
                        });
                        cur.rcpts.push(line.clone());
                        conn.reply(&Reply::new(250, "2.1.5", "Ok"));
                    }
                }
                "DATA" => {
                    if cur.rcpts.is_empty() {
                        conn.reply(&Reply::new(554, "5.5.1", "no valid recipients"));
                        continue;
                    }
                    conn.reply(&Reply::new(354, "", "go ahead"));
                    if conn.flush().await.is_err() {
                        return;
                    }
                    let mode = self.mode();
                    if mode == SinkMode::DropInData {
                        conn.close().await;
                        return;
                    }
                    let mut recv = DataReceiver::new();
                    let mut data = Vec::new();
                    loop {
                        match conn.read_data(&mut recv, &mut data, t.data).await {
                            Ok(true) => break,
                            Ok(false) => {
                                if !self.record {
                                    data.clear();
                                }
                            }
                            Err(_) => return,
                        }
                    }
                    match mode {
                        SinkMode::HangAfterData => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                        SinkMode::DropAfterData => {
                            conn.close().await;
                            return;
                        }
                        SinkMode::DataTempFail | SinkMode::DataReject => {
                            let r = if mode == SinkMode::DataTempFail {
                                Reply::new(451, "4.3.0", "sink data later")
                            } else {
                                Reply::new(554, "5.6.0", "sink data refused")
                            };
                            for _ in 0..if lmtp { after.len() } else { 1 } {
                                conn.reply(&r);
                            }
                            cur.rcpts.clear();
                            after.clear();
                            in_mail = false;
                            continue;
                        }
                        _ => {}
                    }
                    // Kept before the answer goes out: a test that has heard the filter's
                    // 250 (sent after ours) finds the message here, never a moment later.
                    if self.record {
                        if self.headers_only.load(Ordering::Relaxed) {
                            data.truncate(amavisd::decode::header_section(&data).len());
                        }
                        cur.data = data;
                        cur.session = session_no;
                        if let Ok(mut g) = self.received.lock() {
                            g.push(std::mem::take(&mut cur));
                        }
                    }
                    let n = self.messages.fetch_add(1, Ordering::Relaxed) + 1;
                    let ok = Reply::new(250, "2.0.0", format!("Ok: queued as SINK{n}"));
                    if lmtp {
                        for a in &after {
                            conn.reply(a.as_ref().unwrap_or(&ok));
                        }
                    } else {
                        let worst = after
                            .iter()
                            .flatten()
                            .max_by_key(|r| r.code)
                            .cloned()
                            .unwrap_or(ok);
                        conn.reply(&worst);
                    }
                    if conn.flush().await.is_ok() {
                        self.tell_accepted();
                    }
                    if mode == SinkMode::CloseAfterMessage {
                        conn.close().await;
                        return;
                    }
                    cur = Received {
                        helo: cur.helo.clone(),
                        ..Received::default()
                    };
                    after.clear();
                    in_mail = false;
                }
                "RSET" => {
                    cur = Received {
                        helo: cur.helo.clone(),
                        ..Received::default()
                    };
                    after.clear();
                    in_mail = false;
                    conn.reply(&Reply::new(250, "2.0.0", "Ok"));
                }
                "QUIT" => {
                    conn.reply(&Reply::new(221, "2.0.0", "Bye"));
                    conn.close().await;
                    return;
                }
                "NOOP" => conn.reply(&Reply::new(250, "2.0.0", "Ok")),
                _ => conn.reply(&Reply::new(502, "5.5.2", "not recognized")),
            }
        }
    }
}
