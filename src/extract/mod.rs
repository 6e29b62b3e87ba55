//! Content the rules would not see otherwise: the text and links inside Office documents,
//! RTF and PDFs, the macros and embedded objects inside Office documents, and the links in
//! QR codes in images (SpamAssassin's ExtractText and OLEVBMacro plugins, without running
//! external programs).
//!
//! Everything here is sans I/O and bounded: it reads bytes already in memory, never more
//! than [`Limits`] allows (bytes looked at, bytes inflated, text kept, pixels decoded), and a
//! damaged or hostile file gives what could be read, never an error that fails the message.
//! Nothing here depends on another stage: the decoder asks it about macros (for banned
//! types) and the spam view asks it for text and links.

#[doc(hidden)]
pub mod fixtures;
pub mod ole;
pub mod ooxml;
pub mod pdf;
pub mod qr;
pub mod rtf;
mod xml_text;

/// Hard limits on extraction, per part. Each has a default chosen so that a normal document
/// is read whole and a hostile one costs at most a few milliseconds and megabytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Parts larger than this are not looked into (default 10 MiB: attachments beyond it are
    /// rarely spam, and reading them costs more than it tells).
    pub max_input: usize,
    /// Bytes inflated from one part's compressed streams or members, all together (default
    /// 32 MiB; a deflate bomb stops here).
    pub max_inflated: usize,
    /// Characters of text kept from one part (default 256 KiB: the body rules look at the
    /// first screens of text; SpamAssassin's own body is cut at 50 KB).
    pub max_text: usize,
    /// Parts of one message looked into (default 10, as SpamAssassin's `extracttext_maxparts`).
    pub max_parts: usize,
    /// Images of one message searched for QR codes (default 5).
    pub max_images: usize,
    /// Pixels of one image decoded (default 16 megapixels: a phone photo; the decoded grey
    /// image is held in memory, one byte a pixel).
    pub max_pixels: u64,
    /// Time spent reading one message's attachments (default 2 s): no attachment is started
    /// after it, and a PDF stops between streams (the other readers are bounded by their
    /// sizes alone).
    pub time_budget: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input: 10 << 20,
            max_inflated: 32 << 20,
            max_text: 256 << 10,
            max_parts: 10,
            max_images: 5,
            max_pixels: 16_000_000,
            time_budget: std::time::Duration::from_secs(2),
        }
    }
}

/// What one part gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    /// The kind of document read (`pdf`, `docx`, `odf`, `doc`, `rtf`, `qr`).
    pub kind: &'static str,
    /// Its text, paragraphs separated by line breaks.
    pub text: String,
    /// Links found in it (hyperlinks, external targets, QR payloads that are links).
    pub uris: Vec<String>,
    /// Its macros, for an Office document.
    pub macros: Option<ole::Macros>,
    /// A limit cut the reading short.
    pub truncated: bool,
}

/// Reads `bytes` as whatever it is (by its signature, not its declared type), or `None`
/// for a kind we do not extract. Images are not read here: see [`qr::decode`].
pub fn extract(bytes: &[u8], limits: &Limits) -> Option<Extracted> {
    if bytes.len() > limits.max_input {
        return None;
    }
    let what = crate::catch_panic::catch(|| {
        if pdf::is_pdf(bytes) {
            Some(pdf::extract(bytes, limits))
        } else if bytes.starts_with(b"PK\x03\x04") {
            ooxml::extract(bytes, limits)
        } else if bytes.starts_with(&ole::SIGNATURE) {
            Some(ole::extract(bytes, limits))
        } else if rtf::is_rtf(bytes) {
            Some(rtf::extract(bytes, limits))
        } else {
            None
        }
    });
    // A reader that panics on hostile input gives nothing: the part still goes to the
    // scanners and the banned rules as it is.
    what.ok().flatten()
}

/// Adds `s` to `out` while `out` stays within `max` bytes; false once full.
fn push_capped(out: &mut String, s: &str, max: usize) -> bool {
    if out.len() >= max {
        return false;
    }
    let room = max - out.len();
    if s.len() <= room {
        out.push_str(s);
        true
    } else {
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        out.push_str(&s[..end]);
        false
    }
}

/// Adds the words of a field code that are links (`HYPERLINK "http://..."`,
/// `INCLUDEPICTURE "http://..."`) to `out`, which holds at most [`MAX_FIELD_LINKS`].
fn field_links(code: &str, out: &mut Vec<String>) {
    for word in code.split([' ', '"']) {
        if is_link(word) && out.len() < MAX_FIELD_LINKS {
            out.push(word.to_string());
        }
    }
}

/// Links kept from one document's field codes (a document of a million fields is a way to
/// fill memory, not a real document).
const MAX_FIELD_LINKS: usize = 1000;

/// Whether a link found in a document is worth giving to the URI rules.
fn is_link(s: &str) -> bool {
    let l = s.trim().to_ascii_lowercase();
    ["http://", "https://", "ftp://", "mailto:", "www."]
        .iter()
        .any(|p| l.starts_with(p))
}
