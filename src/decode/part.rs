//! One node of the decoded tree, and reading its bytes within limits.

use sha2::{Digest, Sha256};
use std::io::{self, Read, Seek, Write};
use std::path::Path;

/// Where a part's decoded bytes are.
pub enum PartData {
    /// Counted against [`super::held::MEMORY_PARTS_TOTAL`].
    Memory(super::held::Bytes),
    /// A temporary file, removed when the part is dropped.
    File(tempfile::NamedTempFile),
}

impl std::fmt::Debug for PartData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PartData::Memory(v) => write!(f, "Memory({} bytes)", v.len()),
            PartData::File(t) => write!(f, "File({})", t.path().display()),
        }
    }
}

/// Something to read a part from, from its first byte.
pub trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

impl PartData {
    /// A fresh reader over the bytes.
    pub fn reader(&self) -> io::Result<Box<dyn ReadSeek + '_>> {
        Ok(match self {
            PartData::Memory(v) => Box::new(io::Cursor::new(&v[..])),
            PartData::File(t) => Box::new(t.reopen()?),
        })
    }

    /// The bytes, when they are in memory.
    pub fn as_slice(&self) -> Option<&[u8]> {
        match self {
            PartData::Memory(v) => Some(v),
            PartData::File(_) => None,
        }
    }

    /// Reads all bytes (tests, and small parts).
    pub fn to_vec(&self) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        self.reader()?.read_to_end(&mut v)?;
        Ok(v)
    }
}

/// One part: a leaf, or a container that was opened (its children follow it in the list).
#[derive(Debug)]
pub struct Part {
    /// amavisd-new's part id, `p001`, `p002`, ... in the order parts were found.
    pub id: String,
    /// amavisd-new's level path, `1/2/1`: the child index at each level from the top.
    pub level: String,
    /// Index of the container this part came out of.
    pub parent: Option<usize>,
    /// Nesting depth; the message itself is 0.
    pub depth: usize,
    /// The declared file name (MIME filename/name, RFC 2231 and 2047 decoded; or the name
    /// inside an archive). Data only: never used as a path.
    pub name: Option<String>,
    /// Other names the part declares where a client may read them otherwise (a Content-Type
    /// `name=` beside a different Content-Disposition `filename=`, broken RFC 2231
    /// continuations joined differently). Banned rules check them all.
    pub other_names: Vec<String>,
    /// The declared MIME type, lower case (`application/zip`), for MIME parts.
    pub mime_type: Option<String>,
    /// The detected type in amavisd-new's short names, most specific first
    /// (`["exe-ms", "exe"]`, `["zip"]`, `["txt"]`).
    pub types: Vec<String>,
    /// Decoded size in bytes (what was read, if the part was cut at a limit).
    pub size: u64,
    /// SHA-256 of the decoded bytes, hex.
    pub digest: String,
    /// The part (or the archive it belongs to) is encrypted.
    pub encrypted: bool,
    /// A container that could not be opened: a format we do not decode, or a damaged one.
    /// amavisd-new's `UNDECIPHERABLE` (`A=U` in banned rules).
    pub undecipherable: Option<String>,
    /// True when the part was opened and its content follows as children.
    pub opened: bool,
    /// The bytes.
    pub data: PartData,
}

impl Part {
    /// The most specific detected short type.
    pub fn short_type(&self) -> &str {
        self.types.first().map(String::as_str).unwrap_or("")
    }
}

/// What reading a part produced.
pub struct ReadPart {
    pub data: PartData,
    pub size: u64,
    pub digest: String,
    /// The source had more than `cap` bytes; the part holds the first `cap`.
    pub truncated: bool,
    /// The source failed after these bytes (a bad checksum, a cut stream): what was read is
    /// kept, since other extractors hand it to the user anyway.
    pub error: Option<io::Error>,
}

/// Reads `src` to its end or to `cap` bytes, whichever comes first, computing the digest, in
/// memory up to `mem_limit` (and while all messages' parts in memory stay within
/// [`super::held::MEMORY_PARTS_TOTAL`]) and in a temporary file under `dir` beyond. The declared size of
/// the source is never trusted: only what is read counts. `Err` only when our own temporary
/// file fails; a failing source ends the part with `error` set.
pub fn read_capped(
    src: &mut dyn Read,
    cap: u64,
    mem_limit: u64,
    dir: &Path,
) -> io::Result<ReadPart> {
    let mut hasher = Sha256::new();
    let mut mem: Vec<u8> = Vec::new();
    let mut file: Option<tempfile::NamedTempFile> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let mut size: u64 = 0;
    let mut limited = src.take(cap.saturating_add(1));
    loop {
        let n = match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let mut part = finish(mem, file, size, hasher, false)?;
                part.error = Some(e);
                return Ok(part);
            }
        };
        let room = (cap - size.min(cap)) as usize;
        let chunk = &buf[..n.min(room)];
        if chunk.is_empty() {
            return finish(mem, file, size, hasher, true);
        }
        hasher.update(chunk);
        size += chunk.len() as u64;
        match &mut file {
            Some(f) => f.write_all(chunk)?,
            // Within both limits the guard has reserved the chunk and fails: next arm.
            None if (mem.len() + chunk.len()) as u64 > mem_limit
                || !super::held::reserve(chunk.len() as u64) =>
            {
                super::held::release(mem.len() as u64);
                let mut f = tempfile::Builder::new()
                    .prefix(&crate::message::temp::prefix("part"))
                    .tempfile_in(dir)?;
                f.write_all(&mem)?;
                f.write_all(chunk)?;
                mem = Vec::new();
                file = Some(f);
            }
            None => mem.extend_from_slice(chunk),
        }
        if n > chunk.len() {
            return finish(mem, file, size, hasher, true);
        }
    }
    finish(mem, file, size, hasher, false)
}

fn finish(
    mem: Vec<u8>,
    file: Option<tempfile::NamedTempFile>,
    size: u64,
    hasher: Sha256,
    truncated: bool,
) -> io::Result<ReadPart> {
    let data = match file {
        Some(mut f) => {
            f.flush()?;
            PartData::File(f)
        }
        None => {
            let n = mem.len() as u64;
            PartData::Memory(super::held::Bytes::counted(mem, n))
        }
    };
    let digest = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(ReadPart {
        data,
        size,
        digest,
        truncated,
        error: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_spills() {
        let dir = std::env::temp_dir();
        let src = vec![7u8; 300_000];
        let r = read_capped(&mut src.as_slice(), 1_000_000, 100_000, &dir).unwrap();
        assert!(!r.truncated);
        assert_eq!(r.size, 300_000);
        assert!(matches!(r.data, PartData::File(_)));
        assert_eq!(r.data.to_vec().unwrap(), src);
        let r = read_capped(&mut src.as_slice(), 1000, 100_000, &dir).unwrap();
        assert!(r.truncated);
        assert_eq!(r.size, 1000);
        let r = read_capped(&mut src.as_slice(), 300_000, 1 << 20, &dir).unwrap();
        assert!(!r.truncated, "exactly at the cap is not over it");
        // An endless source ends at the cap.
        let mut endless = io::repeat(0);
        let r = read_capped(&mut endless, 5_000_000, 1 << 20, &dir).unwrap();
        assert!(r.truncated && r.size == 5_000_000);
    }

    #[test]
    fn parts_go_to_files_while_all_messages_hold_the_total() {
        use super::super::held;
        let dir = tempfile::tempdir().unwrap();
        let src = vec![7u8; 1000];
        // Other tests decode meanwhile and give bytes back: take the rest again until a
        // read finds none.
        let mut taken = 0u64;
        let mut spilled = false;
        for _ in 0..100 {
            for step in [1 << 20, 1 << 10, 1] {
                while held::reserve(step) {
                    taken += step;
                }
            }
            let r = read_capped(&mut src.as_slice(), 1 << 20, 1 << 20, dir.path()).unwrap();
            if let PartData::File(_) = r.data {
                assert_eq!(r.data.to_vec().unwrap(), src);
                spilled = true;
                break;
            }
        }
        held::release(taken);
        assert!(spilled, "a part stayed in memory with the total held");
        let r = read_capped(&mut src.as_slice(), 1 << 20, 1 << 20, dir.path()).unwrap();
        assert!(
            matches!(r.data, PartData::Memory(_)),
            "room again once given back"
        );
    }
}
