//! One connection to the next hop: connect, greeting, EHLO/LHLO and its capabilities, writing
//! commands and reading replies with deadlines.

use super::config::{ForwardMethod, ForwardTarget};
use super::error::ForwardError;
use crate::message::Reply;
use smtp_proto::response::parser::ResponseReceiver;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::{Instant, timeout_at};

/// What the next hop offered in its EHLO/LHLO reply. Parsed here because smtp-proto's
/// `EhloResponse` keeps a bitmask and drops XFORWARD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub pipelining: bool,
    pub size: bool,
    pub eightbitmime: bool,
    pub smtputf8: bool,
    pub dsn: bool,
    pub auth: bool,
    /// XFORWARD attribute names offered (upper case); empty when XFORWARD is not offered.
    pub xforward: Vec<String>,
}

impl Capabilities {
    /// Reads the keyword lines of a 250 EHLO/LHLO reply (the first line is the greeting).
    pub fn parse(text: &str) -> Capabilities {
        let mut c = Capabilities::default();
        for line in text.lines().skip(1) {
            let mut words = line.split_whitespace();
            let Some(kw) = words.next() else { continue };
            match kw.to_ascii_uppercase().as_str() {
                "PIPELINING" => c.pipelining = true,
                "SIZE" => c.size = true,
                "8BITMIME" => c.eightbitmime = true,
                "SMTPUTF8" => c.smtputf8 = true,
                "DSN" => c.dsn = true,
                "AUTH" => c.auth = true,
                "XFORWARD" => c.xforward = words.map(|w| w.to_ascii_uppercase()).collect(),
                _ => {}
            }
        }
        c
    }
}

enum OutStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// A connection to the next hop, after a successful EHLO/LHLO.
pub struct Client {
    stream: OutStream,
    buf: Vec<u8>,
    pos: usize,
    receiver: ResponseReceiver,
    pub caps: Capabilities,
    pub lmtp: bool,
    pub command_timeout: Duration,
}

impl Client {
    /// Connects, reads the greeting and says EHLO (or LHLO for LMTP); falls back to HELO when
    /// an SMTP next hop refuses EHLO.
    pub async fn connect(
        method: &ForwardMethod,
        helo: &str,
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> Result<Client, ForwardError> {
        let deadline = Instant::now() + connect_timeout;
        let target = method.to_string();
        let stream = match &method.target {
            ForwardTarget::Inet(a) => timeout_at(deadline, TcpStream::connect(a))
                .await
                .map_err(|_| ForwardError::Timeout {
                    stage: "connecting",
                })?
                .map(|s| {
                    let _ = s.set_nodelay(true);
                    OutStream::Tcp(s)
                }),
            ForwardTarget::Unix(p) => timeout_at(deadline, UnixStream::connect(p))
                .await
                .map_err(|_| ForwardError::Timeout {
                    stage: "connecting",
                })?
                .map(OutStream::Unix),
        }
        .map_err(|source| ForwardError::Connect { target, source })?;
        let mut c = Client {
            stream,
            buf: Vec::with_capacity(4096),
            pos: 0,
            receiver: ResponseReceiver::default(),
            caps: Capabilities::default(),
            lmtp: method.lmtp,
            command_timeout,
        };
        let greeting = c
            .read_reply_by(deadline, "waiting for the greeting")
            .await?;
        if greeting.code != 220 {
            return Err(ForwardError::Protocol {
                stage: "greeting",
                detail: greeting.one_line(),
            });
        }
        let verb = if c.lmtp { "LHLO" } else { "EHLO" };
        let r = c
            .command(&format!("{verb} {helo}\r\n"), "after EHLO")
            .await?;
        if r.code == 250 {
            c.caps = Capabilities::parse(&r.text);
        } else if !c.lmtp {
            let r = c.command(&format!("HELO {helo}\r\n"), "after HELO").await?;
            if r.code != 250 {
                return Err(ForwardError::Protocol {
                    stage: "HELO",
                    detail: r.one_line(),
                });
            }
        } else {
            return Err(ForwardError::Protocol {
                stage: "LHLO",
                detail: r.one_line(),
            });
        }
        Ok(c)
    }

    /// Writes bytes, within the command timeout.
    pub async fn write(&mut self, bytes: &[u8], stage: &'static str) -> Result<(), ForwardError> {
        let deadline = Instant::now() + self.command_timeout;
        let fut = async {
            match &mut self.stream {
                OutStream::Tcp(s) => s.write_all(bytes).await,
                OutStream::Unix(s) => s.write_all(bytes).await,
            }
        };
        match timeout_at(deadline, fut).await {
            Err(_) => Err(ForwardError::Timeout { stage }),
            Ok(Err(source)) => Err(ForwardError::Io { stage, source }),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Sends one command and reads its reply.
    pub async fn command(
        &mut self,
        line: &str,
        stage: &'static str,
    ) -> Result<Reply, ForwardError> {
        self.write(line.as_bytes(), stage).await?;
        self.read_reply(stage).await
    }

    /// Reads one reply within the command timeout.
    pub async fn read_reply(&mut self, stage: &'static str) -> Result<Reply, ForwardError> {
        let deadline = Instant::now() + self.command_timeout;
        self.read_reply_by(deadline, stage).await
    }

    /// Reads one reply before `deadline`.
    pub async fn read_reply_by(
        &mut self,
        deadline: Instant,
        stage: &'static str,
    ) -> Result<Reply, ForwardError> {
        loop {
            if self.pos < self.buf.len() {
                let slice = &self.buf[self.pos..];
                let mut iter = slice.iter();
                let parsed = self.receiver.parse(&mut iter);
                self.pos += slice.len() - iter.as_slice().len();
                match parsed {
                    Ok(r) => {
                        self.receiver.reset();
                        let status = if r.esc[0] == 0 {
                            String::new()
                        } else {
                            format!("{}.{}.{}", r.esc[0], r.esc[1], r.esc[2])
                        };
                        return Ok(Reply {
                            code: r.code,
                            status,
                            text: r.message,
                        });
                    }
                    Err(smtp_proto::Error::NeedsMoreData { .. }) => {}
                    Err(e) => {
                        return Err(ForwardError::Protocol {
                            stage,
                            detail: format!("unparsable reply: {e:?}"),
                        });
                    }
                }
            }
            if self.pos == self.buf.len() {
                self.buf.clear();
                self.pos = 0;
            }
            self.buf.reserve(4096);
            let read = async {
                match &mut self.stream {
                    OutStream::Tcp(s) => s.read_buf(&mut self.buf).await,
                    OutStream::Unix(s) => s.read_buf(&mut self.buf).await,
                }
            };
            match timeout_at(deadline, read).await {
                Err(_) => return Err(ForwardError::Timeout { stage }),
                Ok(Err(source)) => return Err(ForwardError::Io { stage, source }),
                Ok(Ok(0)) => {
                    return Err(ForwardError::Io {
                        stage,
                        source: std::io::ErrorKind::UnexpectedEof.into(),
                    });
                }
                Ok(Ok(_)) => {}
            }
        }
    }

    /// True when the peer has sent bytes we have not read (a reply nobody asked for): such a
    /// connection is out of step and must not be reused.
    pub fn has_unread(&self) -> bool {
        self.pos < self.buf.len()
    }

    /// Says QUIT without waiting long for the answer.
    pub async fn quit(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = self.write(b"QUIT\r\n", "QUIT").await;
            let _ = self.read_reply("QUIT").await;
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities() {
        let c = Capabilities::parse(
            "mx.example\nPIPELINING\nSIZE 10240000\nETRN\n8BITMIME\nDSN\nSMTPUTF8\nXFORWARD NAME ADDR PROTO HELO",
        );
        assert!(c.pipelining && c.size && c.eightbitmime && c.dsn && c.smtputf8 && !c.auth);
        assert_eq!(c.xforward, ["NAME", "ADDR", "PROTO", "HELO"]);
        assert_eq!(Capabilities::parse("mx"), Capabilities::default());
    }
}
