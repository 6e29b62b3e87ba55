//! Byte-level framing of one inbound connection: command lines with a length cap and timeouts,
//! the DATA stream through our [`DataReceiver`] (dot-unstuffing from the first byte; only
//! CRLF.CRLF ends DATA, so a bare-LF "end" cannot smuggle a second message), and buffered
//! replies.
//!
//! Replies are buffered and flushed only when the connection is about to wait for input, which is
//! what makes PIPELINING work: a pipelined group of commands is answered in one write.

use super::data::DataReceiver;
use crate::message::Reply;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{Instant, timeout_at};

/// Why no line (or no more DATA) could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The client closed the connection.
    Eof,
    /// The line was longer than the limit; it was read to its end and thrown away.
    TooLong,
    /// The client was silent too long.
    Timeout,
    /// The server is shutting down and the client was between commands.
    Shutdown,
    /// The socket failed.
    Io(io::Error),
}

/// Timeouts for reading, from the configured limits.
#[derive(Debug, Clone, Copy)]
pub struct ReadTimeouts {
    pub idle: Duration,
    pub command: Duration,
    pub data: Duration,
}

/// One inbound connection's byte stream.
pub struct Connection<S> {
    stream: S,
    buf: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
    discarding: bool,
}

const READ_CHUNK: usize = 64 * 1024;

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Wraps a stream.
    pub fn new(stream: S) -> Self {
        Connection {
            stream,
            buf: Vec::with_capacity(4096),
            pos: 0,
            out: Vec::with_capacity(1024),
            discarding: false,
        }
    }

    /// Queues a reply; it is sent at the next flush.
    pub fn reply(&mut self, r: &Reply) {
        self.out.extend_from_slice(&r.to_wire());
    }

    /// Sends the queued replies.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
            self.stream.flush().await?;
        }
        Ok(())
    }

    /// True when the client has sent bytes not yet consumed (pipelined commands).
    pub fn has_pending_input(&self) -> bool {
        self.pos < self.buf.len()
    }

    fn compact(&mut self) {
        if self.pos > 0 && (self.pos == self.buf.len() || self.pos > self.buf.capacity() / 2) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    async fn fill(&mut self, deadline: Instant) -> Result<(), ReadError> {
        self.compact();
        self.buf.reserve(READ_CHUNK);
        match timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
            Err(_) => Err(ReadError::Timeout),
            Ok(Err(e)) => Err(ReadError::Io(e)),
            Ok(Ok(0)) => Err(ReadError::Eof),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Reads one command line (CR LF or bare LF removed). Waits `idle` for the first byte and
    /// `command` for the whole line; gives up between commands when `shutdown` turns true.
    pub async fn read_line(
        &mut self,
        limit: usize,
        t: &ReadTimeouts,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Vec<u8>, ReadError> {
        let mut line_deadline: Option<Instant> = None;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.pos..]) {
                let start = self.pos;
                self.pos += i + 1;
                if std::mem::take(&mut self.discarding) || i + 1 > limit {
                    return Err(ReadError::TooLong);
                }
                let mut line = &self.buf[start..start + i];
                if let [rest @ .., b'\r'] = line {
                    line = rest;
                }
                return Ok(line.to_vec());
            }
            if self.buf.len() - self.pos > limit {
                // Keep reading to the end of the line, but keep none of it.
                self.discarding = true;
                self.pos = self.buf.len();
            }
            self.flush().await.map_err(ReadError::Io)?;
            let waiting_idle = self.pos == self.buf.len() && !self.discarding;
            let deadline = if waiting_idle && line_deadline.is_none() {
                Instant::now() + t.idle
            } else {
                *line_deadline.get_or_insert_with(|| Instant::now() + t.command)
            };
            if waiting_idle {
                if *shutdown.borrow() {
                    return Err(ReadError::Shutdown);
                }
                tokio::select! {
                    r = self.fill(deadline) => r?,
                    _ = shutdown.changed() => return Err(ReadError::Shutdown),
                }
                line_deadline.get_or_insert_with(|| Instant::now() + t.command);
            } else {
                self.fill(deadline).await?;
            }
        }
    }

    /// Reads the next piece of DATA: unstuffed bytes are appended to `out`. Returns `true` once
    /// CRLF.CRLF was seen; pipelined bytes after it stay buffered for `read_line`.
    pub async fn read_data(
        &mut self,
        receiver: &mut DataReceiver,
        out: &mut Vec<u8>,
        data_timeout: Duration,
    ) -> Result<bool, ReadError> {
        if self.pos == self.buf.len() {
            self.fill(Instant::now() + data_timeout).await?;
        }
        let (used, done) = receiver.ingest(&self.buf[self.pos..], out);
        self.pos += used;
        Ok(done)
    }

    /// Writes the queued replies and closes the write side.
    pub async fn close(&mut self) {
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
    }
}
