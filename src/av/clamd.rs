//! clamd over a unix socket or TCP, with the INSTREAM command: the object is sent in chunks
//! (4-byte big-endian length, then the bytes; a zero length ends it), so clamd needs no access
//! to our files. Connections are kept in an IDSESSION and reused; a session clamd has closed
//! meanwhile (its IdleTimeout) is detected on use and the scan repeated once on a fresh one,
//! which is safe because scanning has no side effect.
//!
//! clamd refuses an object larger than its StreamMaxLength: it answers `INSTREAM size limit
//! exceeded` and closes the connection while we are still writing. Such an object is never
//! sent (we know the limit, [`Clamd::with_stream_max_length`]); and when a write fails, clamd's
//! answer is read before the failure counts, so a size refusal is never taken for a scanner
//! that is down. Either way the object is "too large" (UNCHECKED), not a failure (451) that
//! the same message would meet at every retry.
//!
//! Hand-written (about what crates.md estimates): clamav-client opens a connection per
//! command, has no timeouts and returns raw bytes.

use super::{AvError, ScanVerdict, Scanner};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

/// Where clamd listens.
#[derive(Debug, Clone)]
pub enum ClamdTarget {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

struct Session {
    stream: Box<dyn Stream>,
    /// The id clamd gives the next reply in this session (1, 2, ...).
    next_id: u64,
    /// Bytes read past the last reply's NUL.
    pending: Vec<u8>,
}

/// A clamd client.
pub struct Clamd {
    name: String,
    target: ClamdTarget,
    timeout: Duration,
    chunk: usize,
    /// clamd's StreamMaxLength: larger objects are refused without being sent.
    stream_max_length: u64,
    idle: Mutex<Vec<Session>>,
    max_idle: usize,
    /// Sessions open at once. clamd accepts only MaxConnectionQueueLength pending connections
    /// (15 in Debian's clamd.conf) and serves MaxThreads (12) at a time; more concurrent
    /// connects fail with EAGAIN on its unix socket, which we measured at 32 messages at once.
    sessions: tokio::sync::Semaphore,
}

/// Default for [`Clamd::with_max_sessions`]: below Debian's MaxThreads and connection queue.
pub const DEFAULT_MAX_SESSIONS: usize = 10;

/// Default for [`Clamd::with_stream_max_length`]: clamd's own default StreamMaxLength (25M),
/// which Debian's clamd.conf keeps.
pub const DEFAULT_STREAM_MAX_LENGTH: u64 = 25 * 1024 * 1024;

/// Longest reply line we accept from clamd.
const MAX_REPLY: usize = 4096;

/// How long to wait for clamd's reason after a write to it failed.
const REPLY_AFTER_WRITE_ERROR: Duration = Duration::from_secs(2);

impl Clamd {
    /// A client for `target`; each scan must finish within `timeout`.
    pub fn new(target: ClamdTarget, timeout: Duration) -> Clamd {
        Clamd {
            name: "ClamAV-clamd".into(),
            target,
            timeout,
            // clamd's default StreamMaxLength is 25 MB; 64 KiB chunks keep writes efficient.
            chunk: 64 * 1024,
            stream_max_length: DEFAULT_STREAM_MAX_LENGTH,
            idle: Mutex::new(Vec::new()),
            max_idle: DEFAULT_MAX_SESSIONS,
            sessions: tokio::sync::Semaphore::new(DEFAULT_MAX_SESSIONS),
        }
    }

    /// The same client with at most `n` sessions open at once (at least 1).
    pub fn with_max_sessions(mut self, n: usize) -> Clamd {
        let n = n.max(1);
        self.max_idle = n;
        self.sessions = tokio::sync::Semaphore::new(n);
        self
    }

    /// The same client for a clamd whose StreamMaxLength is `bytes`.
    pub fn with_stream_max_length(mut self, bytes: u64) -> Clamd {
        self.stream_max_length = bytes.max(1);
        self
    }

    /// The largest object this clamd accepts.
    pub fn stream_max_length(&self) -> u64 {
        self.stream_max_length
    }

    /// The same client under another name (for logs and reports).
    pub fn named(mut self, name: &str) -> Clamd {
        self.name = name.to_string();
        self
    }

    fn io(&self, source: std::io::Error) -> AvError {
        AvError::Io {
            scanner: self.name.clone(),
            source,
        }
    }

    /// A connection to clamd. A full listen queue (another client busy with clamd) answers
    /// EAGAIN at once on a unix socket: wait a little and retry; the caller's timeout bounds
    /// the whole scan.
    async fn open(&self) -> Result<Box<dyn Stream>, AvError> {
        let mut pause = Duration::from_millis(5);
        loop {
            let r: std::io::Result<Box<dyn Stream>> = match &self.target {
                ClamdTarget::Unix(p) => UnixStream::connect(p).await.map(|s| Box::new(s) as _),
                ClamdTarget::Tcp(a) => TcpStream::connect(a).await.map(|s| Box::new(s) as _),
            };
            match r {
                Ok(s) => return Ok(s),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                Err(source) => {
                    return Err(AvError::Connect {
                        scanner: self.name.clone(),
                        source,
                    });
                }
            }
        }
    }

    async fn connect(&self) -> Result<Session, AvError> {
        let mut stream = self.open().await?;
        stream
            .write_all(b"zIDSESSION\0")
            .await
            .map_err(|e| self.io(e))?;
        Ok(Session {
            stream,
            next_id: 1,
            pending: Vec::new(),
        })
    }

    /// One command outside a session (`PING`, `VERSION`), its answer.
    async fn ask(&self, command: &str) -> Result<String, AvError> {
        let mut s = Session {
            stream: self.open().await?,
            next_id: 1,
            pending: Vec::new(),
        };
        s.stream
            .write_all(format!("z{command}\0").as_bytes())
            .await
            .map_err(|e| self.io(e))?;
        self.read_reply(&mut s).await
    }

    /// PING, then VERSION: clamd's engine, signature version and date
    /// (`ClamAV 1.0.7/27482/Thu Dec  5 09:22:03 2024`), for `amavisd check` and the start-up
    /// summary.
    pub async fn version(&self) -> Result<String, AvError> {
        let probe = async {
            let pong = self.ask("PING").await?;
            if pong != "PONG" {
                return Err(self.protocol(&pong));
            }
            self.ask("VERSION").await
        };
        match tokio::time::timeout(self.timeout, probe).await {
            Ok(r) => r,
            Err(_) => Err(AvError::Timeout {
                scanner: self.name.clone(),
                secs: self.timeout.as_secs(),
            }),
        }
    }

    /// Where clamd listens, for reports.
    pub fn target(&self) -> &ClamdTarget {
        &self.target
    }

    async fn exchange(&self, s: &mut Session, data: &[u8]) -> Result<ScanVerdict, AvError> {
        if let Err(e) = self.send_stream(s, data).await {
            // clamd may have refused the object and closed: its answer says why.
            let answered = tokio::time::timeout(REPLY_AFTER_WRITE_ERROR, self.read_reply(s)).await;
            return match answered {
                Ok(Ok(reply)) if reply.contains("size limit exceeded") => Err(AvError::SizeLimit {
                    scanner: self.name.clone(),
                }),
                _ => Err(e),
            };
        }
        let reply = self.read_reply(s).await?;
        let id = s.next_id;
        s.next_id += 1;
        // "<id>: stream: OK", "<id>: stream: Name FOUND", "<id>: INSTREAM size limit exceeded. ERROR"
        let body = reply
            .strip_prefix(&format!("{id}: "))
            .ok_or_else(|| self.protocol(&reply))?;
        if body.contains("size limit exceeded") {
            return Err(AvError::SizeLimit {
                scanner: self.name.clone(),
            });
        }
        let body = body
            .strip_prefix("stream: ")
            .ok_or_else(|| self.protocol(&reply))?;
        if body == "OK" {
            Ok(ScanVerdict::Clean)
        } else if let Some(name) = body.strip_suffix(" FOUND") {
            Ok(ScanVerdict::Infected(vec![name.to_string()]))
        } else {
            Err(self.protocol(&reply))
        }
    }

    /// Writes INSTREAM with `data` in chunks, and the zero-length end.
    async fn send_stream(&self, s: &mut Session, data: &[u8]) -> Result<(), AvError> {
        let mut out = Vec::with_capacity(data.len().min(self.chunk) + 16);
        out.extend_from_slice(b"zINSTREAM\0");
        for piece in data.chunks(self.chunk) {
            out.extend_from_slice(&(piece.len() as u32).to_be_bytes());
            out.extend_from_slice(piece);
            s.stream.write_all(&out).await.map_err(|e| self.io(e))?;
            out.clear();
        }
        out.extend_from_slice(&0u32.to_be_bytes());
        s.stream.write_all(&out).await.map_err(|e| self.io(e))
    }

    fn protocol(&self, answer: &str) -> AvError {
        AvError::Protocol {
            scanner: self.name.clone(),
            answer: answer.chars().take(200).collect(),
        }
    }

    /// Reads up to the NUL that ends a reply; what follows it stays for the next reply.
    async fn read_reply(&self, s: &mut Session) -> Result<String, AvError> {
        let mut buf = [0u8; 512];
        loop {
            if let Some(end) = s.pending.iter().position(|&b| b == 0) {
                let reply = String::from_utf8_lossy(&s.pending[..end]).into_owned();
                s.pending.drain(..=end);
                return Ok(reply);
            }
            if s.pending.len() >= MAX_REPLY {
                return Err(self.protocol("reply too long"));
            }
            let n = s.stream.read(&mut buf).await.map_err(|e| self.io(e))?;
            if n == 0 {
                return Err(self.io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            s.pending.extend_from_slice(&buf[..n]);
        }
    }

    async fn scan_once(&self, data: &[u8]) -> Result<ScanVerdict, AvError> {
        // Never closed, so acquiring cannot fail; the error arm keeps that an error, not a panic.
        let _permit = self
            .sessions
            .acquire()
            .await
            .map_err(|_| AvError::Protocol {
                scanner: self.name.clone(),
                answer: "client shut down".into(),
            })?;
        let cached = self.idle.lock().ok().and_then(|mut v| v.pop());
        if let Some(mut s) = cached {
            match self.exchange(&mut s, data).await {
                Ok(v) => {
                    self.checkin(s);
                    return Ok(v);
                }
                // A session clamd closed meanwhile: try once more on a fresh one.
                Err(AvError::Io { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let mut s = self.connect().await?;
        let v = self.exchange(&mut s, data).await?;
        self.checkin(s);
        Ok(v)
    }

    fn checkin(&self, s: Session) {
        if let Ok(mut v) = self.idle.lock()
            && v.len() < self.max_idle
        {
            v.push(s);
        }
    }
}

impl Scanner for Clamd {
    fn name(&self) -> &str {
        &self.name
    }

    async fn scan(&self, data: &[u8]) -> Result<ScanVerdict, AvError> {
        if data.len() as u64 > self.stream_max_length {
            return Err(AvError::SizeLimit {
                scanner: self.name.clone(),
            });
        }
        match tokio::time::timeout(self.timeout, self.scan_once(data)).await {
            Ok(r) => r,
            Err(_) => Err(AvError::Timeout {
                scanner: self.name.clone(),
                secs: self.timeout.as_secs(),
            }),
        }
    }
}
