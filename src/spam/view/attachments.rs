//! What the rules see of attachments besides their MIME facts: the text and links of Office
//! documents and PDFs (added to the body and URI lists, as SpamAssassin's ExtractText adds
//! a tool's output to the part's rendered text), the links in QR codes in images, and the
//! facts OLEVBMacro's eval functions ask about. Reading is done by [`crate::extract`],
//! within the limits the `[spam]` table sets.

use super::uri::UriList;
use crate::extract::{self, Limits, ole::Macros};
use std::io::{Cursor, Read};

/// The file name endings of Office documents (a document with macros called anything else
/// was renamed to get past a filter: OLEMACRO_RENAME).
const OFFICE_NAMES: [&str; 24] = [
    ".doc", ".docx", ".docm", ".dot", ".dotm", ".xls", ".xlsx", ".xlsm", ".xlsb", ".xlt", ".xltm",
    ".xla", ".xlam", ".ppt", ".pptx", ".pptm", ".pps", ".ppsm", ".pot", ".potm", ".odt", ".ods",
    ".odp", ".rtf",
];

/// Levels of attached messages looked into for attachments (a forwarded message inside a
/// forwarded message ...); the parts and time limits bound the work as well.
const MAX_NESTED: usize = 3;

/// Members of an attached zip looked into, at most (SpamAssassin's `olemacro_num_zip`).
const MAX_ZIP_MEMBERS: usize = 8;

/// Facts about a message's attachments, for the eval functions.
#[derive(Debug, Clone, Default)]
pub struct Attachments {
    /// The macros and external targets of its Office documents, together.
    pub macros: Macros,
    /// An Office document with macros under a name that does not say Office.
    pub renamed: bool,
    /// An attached zip has an encrypted member.
    pub zip_password: bool,
    /// A CSV attachment that starts a program through DDE (`=cmd|' /c ...'!A0`).
    pub csv_dde: bool,
    /// Kinds of documents read (`pdf`, `ooxml`, `odf`, `doc`, `rtf`), and `qr` per code read.
    pub read: Vec<&'static str>,
    /// Attachments were left unread when the time budget ran out.
    pub out_of_time: bool,
}

/// Reads attachments one by one, within the message's limits.
pub struct Reader {
    limits: Option<Limits>,
    /// When reading stops: the message's time budget after the first attachment.
    deadline: Option<std::time::Instant>,
    parts: usize,
    images: usize,
    pub facts: Attachments,
    /// Text read, one entry per document, for the body rules.
    pub texts: Vec<String>,
}

impl Reader {
    /// A reader; `None` reads nothing (extraction off).
    pub fn new(limits: Option<Limits>) -> Self {
        Reader {
            limits,
            deadline: None,
            parts: 0,
            images: 0,
            facts: Attachments::default(),
            texts: Vec::new(),
        }
    }

    /// Reads one leaf part's decoded bytes; `name` is its declared file name.
    pub fn add(&mut self, bytes: &[u8], name: Option<&str>, uris: &mut UriList) {
        let Some(mut limits) = self.limits else {
            return;
        };
        let now = std::time::Instant::now();
        let deadline = *self.deadline.get_or_insert(now + limits.time_budget);
        let Some(left) = deadline.checked_duration_since(now) else {
            self.facts.out_of_time = true;
            return;
        };
        limits.time_budget = left;
        let lower_name = name.map(str::to_ascii_lowercase).unwrap_or_default();
        if lower_name.ends_with(".csv") {
            self.facts.csv_dde |= starts_program(bytes);
        }
        if extract::qr::is_image(bytes) {
            if self.images < limits.max_images {
                self.images += 1;
                for code in extract::qr::decode(bytes, &limits) {
                    self.facts.read.push("qr");
                    uris.push(&code);
                }
            }
            return;
        }
        if self.parts >= limits.max_parts {
            return;
        }
        if let Some(doc) = extract::extract(bytes, &limits) {
            self.parts += 1;
            self.facts.renamed |= name.is_some() && renamed(&doc, &lower_name);
            self.take(doc, uris, &limits);
        } else if bytes.starts_with(b"PK\x03\x04") {
            self.parts += 1;
            self.add_zip(bytes, uris, &limits);
        }
    }

    /// Reads one MIME part: a binary part or a named text part as an attachment, an attached
    /// message (a forwarded `.eml`) for its own attachments, [`MAX_NESTED`] levels down.
    pub fn add_part(&mut self, part: &mail_parser::MessagePart<'_>, uris: &mut UriList) {
        self.add_part_at(part, uris, 0);
    }

    fn add_part_at(
        &mut self,
        part: &mail_parser::MessagePart<'_>,
        uris: &mut UriList,
        depth: usize,
    ) {
        use mail_parser::{MimeHeaders, PartType};
        match &part.body {
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                self.add(b, part.attachment_name(), uris);
            }
            PartType::Text(t) if part.attachment_name().is_some() => {
                self.add(t.as_bytes(), part.attachment_name(), uris);
            }
            PartType::Message(m) if depth < MAX_NESTED => {
                for inner in &m.parts {
                    self.add_part_at(inner, uris, depth + 1);
                }
            }
            _ => {}
        }
    }

    fn take(&mut self, doc: extract::Extracted, uris: &mut UriList, limits: &Limits) {
        self.facts.read.push(doc.kind);
        if let Some(m) = &doc.macros {
            self.facts.macros.merge(m);
        }
        for u in &doc.uris {
            uris.push(u);
        }
        if !doc.text.trim().is_empty() {
            uris.add_text(&doc.text);
            let room = limits.max_text.saturating_mul(limits.max_parts);
            if self.texts.iter().map(String::len).sum::<usize>() < room {
                self.texts.push(doc.text);
            }
        }
    }

    /// The Office documents and PDFs inside an attached zip, one level down, and whether any
    /// member is encrypted.
    fn add_zip(&mut self, bytes: &[u8], uris: &mut UriList, limits: &Limits) {
        let Ok(mut archive) = zip::ZipArchive::new(Cursor::new(bytes)) else {
            return;
        };
        let mut budget = limits.max_inflated as u64;
        let mut read = 0;
        for i in 0..archive.len().min(1000) {
            let Ok(entry) = archive.by_index_raw(i) else {
                continue;
            };
            if entry.encrypted() {
                self.facts.zip_password = true;
                continue;
            }
            drop(entry);
            if read >= MAX_ZIP_MEMBERS || budget == 0 {
                continue;
            }
            let Ok(mut entry) = archive.by_index(i) else {
                continue;
            };
            let mut data = Vec::new();
            let cap = budget.min(limits.max_input as u64);
            if (&mut entry).take(cap + 1).read_to_end(&mut data).is_err() || data.len() as u64 > cap
            {
                budget = budget.saturating_sub(data.len() as u64);
                continue;
            }
            budget -= data.len() as u64;
            let name = entry
                .name()
                .map(|n| n.to_ascii_lowercase())
                .unwrap_or_default();
            if let Some(doc) = extract::extract(&data, limits) {
                read += 1;
                self.facts.renamed |= renamed(&doc, &name);
                self.take(doc, uris, limits);
            } else if name.ends_with(".csv") {
                self.facts.csv_dde |= starts_program(&data);
            }
        }
    }
}

/// A document with macros under a name (lower case) that does not say Office.
fn renamed(doc: &extract::Extracted, lower_name: &str) -> bool {
    let macros = doc.macros.as_ref().is_some_and(Macros::any);
    macros && !OFFICE_NAMES.iter().any(|e| lower_name.ends_with(e))
}

/// A CSV whose cells start a program through DDE when Excel opens it: `=cmd|'/c ...'!A0`,
/// `=MSEXCEL|'\..\..\Windows\System32\cmd.exe ...'`.
fn starts_program(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1 << 20)];
    let lower = String::from_utf8_lossy(head).to_ascii_lowercase();
    lower.contains("cmd|") || (lower.contains("msexcel|") && lower.contains("cmd.exe"))
}
