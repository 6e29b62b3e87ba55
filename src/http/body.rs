//! Request bodies: read within the listener's timeout and the message size limit, zstd
//! frames decoded, bare LFs made CRLF (rspamc sends files as they are on disk; the pipeline
//! keeps messages as they travel over SMTP), spooled as on the SMTP path.

use super::Settings;
use super::protocol::{ProtoError, ScanRequest};
use crate::message::line_ends::ToCrlf;
use crate::message::{Spool, SpoolWriter};
use http_body_util::BodyExt;
use hyper::body::Bytes;
use hyper::body::{Body, Incoming};
use std::io::Read;

/// Writes to the spool at most this much at once (a decoded body is cut into pieces).
const CHUNK: usize = 64 << 10;

/// Largest zstd window a frame may ask for (window log 23, what zstd's level 19 uses): the
/// decoder allocates the window, and a frame may declare one far larger than its content.
/// libzstd's own default limit is 128 MiB; rspamc compresses at level 1 (window log 19).
pub const MAX_WINDOW: u64 = 8 << 20;

/// The message in a spool, as the pipeline takes it.
pub(super) async fn spooled(
    s: &Settings,
    r: &ScanRequest,
    body: Incoming,
) -> Result<Spool, ProtoError> {
    let mut w = Writer {
        spool: SpoolWriter::new(&s.tempdir, s.memory_spool_limit, s.header_size_limit),
        crlf: ToCrlf::default(),
        limit: s.message_size_limit,
    };
    if r.compressed {
        for piece in whole(s, r, body).await?.chunks(CHUNK) {
            w.write(piece).await?;
        }
    } else {
        let mut body = Frames::new(s, body)?;
        while let Some(data) = body.next().await? {
            w.write(&data).await?;
        }
    }
    w.spool.finish().await.map_err(spool_error)
}

/// The whole body in memory, decoded (`Compression: zstd`), for learning.
pub(super) async fn whole(
    s: &Settings,
    r: &ScanRequest,
    body: Incoming,
) -> Result<Vec<u8>, ProtoError> {
    let mut raw = Vec::new();
    let mut body = Frames::new(s, body)?;
    while let Some(data) = body.next().await? {
        raw.extend_from_slice(&data);
    }
    if !r.compressed {
        return Ok(raw);
    }
    let limit = s.message_size_limit;
    tokio::task::spawn_blocking(move || decompress(&raw, limit))
        .await
        .map_err(|e| ProtoError {
            status: 500,
            text: format!("internal error: {}", crate::catch_panic::join_error_text(e)),
        })?
}

/// One zstd frame decoded, at most `limit` bytes of it (a small frame may claim to be
/// huge: the decoder is stopped at the limit, never asked for all of it).
fn decompress(raw: &[u8], limit: u64) -> Result<Vec<u8>, ProtoError> {
    let bad = |e: String| ProtoError::bad(format!("Decompression error: {e}"));
    let decoder = ruzstd::decoding::StreamingDecoder::new_with_max_window_size(raw, MAX_WINDOW)
        .map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    decoder
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| bad(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(out)
}

/// The spool and what it may take.
struct Writer {
    spool: SpoolWriter,
    crlf: ToCrlf,
    limit: u64,
}

impl Writer {
    async fn write(&mut self, data: &[u8]) -> Result<(), ProtoError> {
        let data = self.crlf.convert(data);
        if self.spool.len() + data.len() as u64 > self.limit {
            return Err(too_large(self.limit));
        }
        self.spool.write(&data).await.map_err(spool_error)
    }
}

/// A body's data frames, within the listener's timeout and the size limit.
struct Frames {
    body: Incoming,
    deadline: tokio::time::Instant,
    timeout: std::time::Duration,
    limit: u64,
    seen: u64,
}

impl Frames {
    /// Refuses at once a body whose announced length is over the limit.
    fn new(s: &Settings, body: Incoming) -> Result<Frames, ProtoError> {
        if body.size_hint().lower() > s.message_size_limit {
            return Err(too_large(s.message_size_limit));
        }
        Ok(Frames {
            body,
            deadline: tokio::time::Instant::now() + s.timeout,
            timeout: s.timeout,
            limit: s.message_size_limit,
            seen: 0,
        })
    }

    /// The next piece of data; `None` at the end.
    async fn next(&mut self) -> Result<Option<Bytes>, ProtoError> {
        loop {
            let frame = tokio::time::timeout_at(self.deadline, self.body.frame())
                .await
                .map_err(|_| ProtoError {
                    status: 408,
                    text: format!("the body did not arrive within {:?}", self.timeout),
                })?;
            let Some(frame) = frame else {
                return Ok(None);
            };
            let frame = frame.map_err(|e| ProtoError::bad(format!("reading the body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                self.seen += data.len() as u64;
                if self.seen > self.limit {
                    return Err(too_large(self.limit));
                }
                return Ok(Some(data));
            }
        }
    }
}

fn too_large(limit: u64) -> ProtoError {
    ProtoError {
        status: 413,
        text: format!("Message size exceeds fixed limit of {limit} bytes"),
    }
}

/// A header section over the limit is the client's (413, the same at every try); a spool
/// we cannot write is ours (503: temporary).
fn spool_error(e: crate::message::SpoolError) -> ProtoError {
    ProtoError {
        status: if e.is_temporary() { 503 } else { 413 },
        text: e.to_string(),
    }
}
