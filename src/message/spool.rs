//! The message body as received: in memory up to a limit, then in a temporary file, so memory per
//! session is bounded whatever the message size (Postfix's queue-file habit, amavisd-new's
//! "mail under 100 KiB stays in memory").
//!
//! The header section is also captured (up to `header_size_limit`), because every later stage
//! reads it and it must never need the whole message in memory.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::fs::File;
use tokio::io::{AsyncRead, AsyncWriteExt, BufWriter, ReadBuf};

/// Why a message could not be spooled.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The header section is larger than `header_size_limit`.
    #[error("header section exceeds {limit} bytes")]
    HeaderTooBig { limit: usize },
    /// The temporary file could not be created or written.
    #[error("spool file in {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl SpoolError {
    /// A header section over the limit is the same at every try: permanent (552 5.3.4, as
    /// for a message over the size limit). A spool file we cannot write (a full disk) is
    /// temporary (451).
    pub fn is_temporary(&self) -> bool {
        match self {
            SpoolError::HeaderTooBig { .. } => false,
            SpoolError::Io { .. } => true,
        }
    }
}

enum HeaderScan {
    /// Still inside the header section; bytes so far.
    Open(Vec<u8>),
    /// Found the blank line; the header section without it.
    Closed(Vec<u8>),
}

/// Receives the unstuffed DATA bytes of one message.
pub struct SpoolWriter {
    dir: PathBuf,
    mem_limit: usize,
    header_limit: usize,
    mem: Vec<u8>,
    file: Option<(tempfile::TempPath, BufWriter<File>)>,
    len: u64,
    header: HeaderScan,
}

impl SpoolWriter {
    /// A writer that keeps up to `mem_limit` bytes in memory, then moves to a file in `dir`, and
    /// refuses a header section above `header_limit`.
    pub fn new(dir: &Path, mem_limit: usize, header_limit: usize) -> SpoolWriter {
        SpoolWriter {
            dir: dir.to_path_buf(),
            mem_limit,
            header_limit,
            mem: Vec::new(),
            file: None,
            len: 0,
            header: HeaderScan::Open(Vec::new()),
        }
    }

    /// Reserves memory for a message announced as `size` bytes (MAIL SIZE=), up to the memory
    /// limit, so a small message is not copied again and again as it grows.
    pub fn size_hint(&mut self, size: u64) {
        let want = (size as usize).min(self.mem_limit);
        if self.file.is_none() && self.mem.capacity() < want {
            self.mem.reserve(want - self.mem.len());
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn io_err(&self, source: io::Error) -> SpoolError {
        SpoolError::Io {
            dir: self.dir.clone(),
            source,
        }
    }

    fn scan_header(&mut self, data: &[u8]) -> Result<(), SpoolError> {
        let HeaderScan::Open(buf) = &mut self.header else {
            return Ok(());
        };
        let start = buf.len().saturating_sub(3);
        buf.extend_from_slice(data);
        // A message that starts with CRLF has an empty header section.
        if buf.starts_with(b"\r\n") {
            self.header = HeaderScan::Closed(Vec::new());
            return Ok(());
        }
        if let Some(pos) = memchr::memmem::find(&buf[start..], b"\r\n\r\n") {
            let end = start + pos + 2;
            if end > self.header_limit {
                return Err(SpoolError::HeaderTooBig {
                    limit: self.header_limit,
                });
            }
            buf.truncate(end);
            let hdr = std::mem::take(buf);
            self.header = HeaderScan::Closed(hdr);
        } else if buf.len() > self.header_limit {
            return Err(SpoolError::HeaderTooBig {
                limit: self.header_limit,
            });
        }
        Ok(())
    }

    /// Appends bytes of the message.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), SpoolError> {
        if data.is_empty() {
            return Ok(());
        }
        self.scan_header(data)?;
        self.len += data.len() as u64;
        if self.file.is_none() && self.mem.len() + data.len() > self.mem_limit {
            let tmp = tempfile::Builder::new()
                .prefix(&crate::message::temp::prefix("spool"))
                .tempfile_in(&self.dir)
                .map_err(|e| self.io_err(e))?;
            let (std_file, path) = tmp.into_parts();
            let mut w = BufWriter::with_capacity(64 * 1024, File::from_std(std_file));
            w.write_all(&self.mem).await.map_err(|e| self.io_err(e))?;
            self.mem = Vec::new();
            self.file = Some((path, w));
        }
        match &mut self.file {
            Some((_, w)) => {
                let r = w.write_all(data).await;
                r.map_err(|e| self.io_err(e))
            }
            None => {
                self.mem.extend_from_slice(data);
                Ok(())
            }
        }
    }

    /// Ends the message.
    pub async fn finish(mut self) -> Result<Spool, SpoolError> {
        let header = match std::mem::replace(&mut self.header, HeaderScan::Closed(Vec::new())) {
            HeaderScan::Closed(h) => h,
            // No blank line: the whole (short) message is header.
            HeaderScan::Open(h) => h,
        };
        let storage = match self.file.take() {
            Some((path, mut w)) => {
                if let Err(e) = w.flush().await {
                    return Err(self.io_err(e));
                }
                Storage::File(path)
            }
            None => Storage::Memory(std::mem::take(&mut self.mem)),
        };
        Ok(Spool {
            header,
            storage,
            len: self.len,
        })
    }
}

enum Storage {
    Memory(Vec<u8>),
    File(tempfile::TempPath),
}

/// A complete message, read-only. The temporary file, if any, is removed when this is dropped.
pub struct Spool {
    header: Vec<u8>,
    storage: Storage,
    len: u64,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("len", &self.len)
            .field("on_disk", &matches!(self.storage, Storage::File(_)))
            .finish()
    }
}

impl Spool {
    /// A message held in memory (DSNs, tests).
    pub fn from_bytes(bytes: Vec<u8>) -> Spool {
        let header = match memchr::memmem::find(&bytes, b"\r\n\r\n") {
            _ if bytes.starts_with(b"\r\n") => Vec::new(),
            Some(p) => bytes[..p + 2].to_vec(),
            None => bytes.clone(),
        };
        Spool {
            header,
            len: bytes.len() as u64,
            storage: Storage::Memory(bytes),
        }
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when the message lives in a temporary file.
    pub fn on_disk(&self) -> bool {
        matches!(self.storage, Storage::File(_))
    }

    /// The header section, each field CRLF-terminated, without the blank line.
    pub fn header_section(&self) -> &[u8] {
        &self.header
    }

    /// The first occurrence of header field `name` (case-insensitive), unfolded and trimmed.
    pub fn header_field(&self, name: &str) -> Option<String> {
        header_field(&self.header, name)
    }

    /// The whole message, when it is held in memory.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.storage {
            Storage::Memory(v) => Some(v),
            Storage::File(_) => None,
        }
    }

    /// The whole message, read from its file when it is on disk. Blocking: call it from
    /// blocking code (the decoder runs on tokio's blocking pool).
    pub fn to_bytes_blocking(&self) -> io::Result<std::borrow::Cow<'_, [u8]>> {
        Ok(match &self.storage {
            Storage::Memory(v) => std::borrow::Cow::Borrowed(v.as_slice()),
            Storage::File(p) => std::borrow::Cow::Owned(std::fs::read(p)?),
        })
    }

    /// A reader over the whole message from its first byte.
    pub async fn reader(&self) -> io::Result<SpoolReader<'_>> {
        self.reader_at(0).await
    }

    /// A reader from byte `offset` on (past the header section, when it is rewritten).
    pub async fn reader_at(&self, offset: u64) -> io::Result<SpoolReader<'_>> {
        Ok(match &self.storage {
            Storage::Memory(v) => {
                let at = usize::try_from(offset).unwrap_or(usize::MAX).min(v.len());
                SpoolReader::Memory(&v[at..])
            }
            Storage::File(p) => {
                use tokio::io::AsyncSeekExt;
                let mut f = File::open(p).await?;
                f.seek(io::SeekFrom::Start(offset.min(self.len))).await?;
                SpoolReader::File(f)
            }
        })
    }
}

/// Reads a [`Spool`] from the start.
pub enum SpoolReader<'a> {
    Memory(&'a [u8]),
    File(File),
}

impl AsyncRead for SpoolReader<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SpoolReader::Memory(s) => Pin::new(s).poll_read(cx, buf),
            SpoolReader::File(f) => Pin::new(f).poll_read(cx, buf),
        }
    }
}

/// The first occurrence of header field `name` (case-insensitive) in header section `h`,
/// unfolded and trimmed.
pub fn header_field(h: &[u8], name: &str) -> Option<String> {
    let mut i = 0;
    while i < h.len() {
        let end = memchr::memchr(b'\n', &h[i..]).map_or(h.len(), |p| i + p + 1);
        let line = &h[i..end];
        if let Some(colon) = memchr::memchr(b':', line)
            && line[..colon]
                .trim_ascii()
                .eq_ignore_ascii_case(name.as_bytes())
        {
            let mut value = line[colon + 1..].to_vec();
            let mut j = end;
            while j < h.len() && (h[j] == b' ' || h[j] == b'\t') {
                let e = memchr::memchr(b'\n', &h[j..]).map_or(h.len(), |p| j + p + 1);
                value.extend_from_slice(&h[j..e]);
                j = e;
            }
            let v = String::from_utf8_lossy(&value);
            return Some(v.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        i = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn spool(chunks: &[&[u8]], mem: usize) -> Result<Spool, SpoolError> {
        let dir = std::env::temp_dir();
        let mut w = SpoolWriter::new(&dir, mem, 1000);
        for c in chunks {
            w.write(c).await?;
        }
        w.finish().await
    }

    async fn read_all(s: &Spool) -> Vec<u8> {
        let mut v = Vec::new();
        s.reader().await.unwrap().read_to_end(&mut v).await.unwrap();
        v
    }

    #[tokio::test]
    async fn memory_then_file() {
        let s = spool(&[b"Subject: a\r\n", b"\r\nbody\r\n"], 1 << 20)
            .await
            .unwrap();
        assert!(!s.on_disk());
        assert_eq!(s.header_section(), b"Subject: a\r\n");
        let big = vec![b'x'; 5000];
        let s = spool(&[b"Subject: b\r", b"\n\r", b"\n", &big], 100)
            .await
            .unwrap();
        assert!(s.on_disk());
        assert_eq!(s.header_section(), b"Subject: b\r\n");
        let all = read_all(&s).await;
        assert_eq!(all.len(), 5000 + 14);
        assert_eq!(&all[..14], b"Subject: b\r\n\r\n");
    }

    #[tokio::test]
    async fn header_limit() {
        let long = vec![b'a'; 2000];
        let e = spool(&[b"X: ", &long], 1 << 20).await.unwrap_err();
        assert!(matches!(e, SpoolError::HeaderTooBig { limit: 1000 }));
        // The limit holds when the whole header arrives in one chunk too.
        let mut many = Vec::new();
        for i in 0..100 {
            many.extend_from_slice(format!("X-H{i}: 0123456789\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\nbody\r\n");
        assert!(matches!(
            spool(&[&many], 1 << 20).await,
            Err(SpoolError::HeaderTooBig { .. })
        ));
        // A big body after a small header is fine.
        assert!(spool(&[b"X: y\r\n\r\n", &long], 1 << 20).await.is_ok());
    }

    #[test]
    fn header_field_unfolds() {
        let s = Spool::from_bytes(
            b"Subject: a\r\nMessage-ID:\r\n <x@y>\r\nTo: z\r\n\r\nMessage-ID: <no>\r\n".to_vec(),
        );
        assert_eq!(s.header_field("message-id").as_deref(), Some("<x@y>"));
        assert_eq!(s.header_field("cc"), None);
    }
}
