//! The detected type of a part, in amavisd-new's short names (`$map_full_type_to_short_type`):
//! what banned rules match as `T=`. Detection uses `file-format` on the first bytes, plus the
//! few checks amavisd-new relies on that it does not make (a PE file that is a DLL; text).

use super::part::PartData;
use file_format::FileFormat;
use std::io::{Read, Seek, SeekFrom};

/// Bytes looked at; enough for every signature file-format knows, and for the PE header.
const HEAD: usize = 64 * 1024;

/// The short types of `data`, most specific first, e.g. `["dll", "exe-ms", "exe"]`.
pub fn detect(data: &PartData) -> Vec<String> {
    let head = match data {
        PartData::Memory(v) => v[..v.len().min(HEAD)].to_vec(),
        PartData::File(_) => {
            let mut v = Vec::with_capacity(HEAD);
            if let Ok(r) = data.reader() {
                let _ = r.take(HEAD as u64).read_to_end(&mut v);
            }
            v
        }
    };
    detect_bytes(&head)
}

/// amavisd-new has no type for Office macros (file(1) does not tell); ours is `macro`, put
/// before the document's own types, so that a banned rule `^\.macro$` refuses documents
/// that carry macros (VBA, Excel 4.0 sheets, OpenDocument Basic) whatever their name or the
/// archive they are in. Documents beyond the extractor's size limit are not looked into.
pub fn with_macro_type(data: &PartData, mut types: Vec<String>) -> Vec<String> {
    use crate::extract::{Limits, ole, ooxml};
    let kind = types.first().map(String::as_str).unwrap_or("");
    let office_zip = matches!(kind, "docx" | "xlsx" | "pptx" | "odf" | "zip");
    if kind != "doc" && !office_zip {
        return types;
    }
    let limits = Limits::default();
    // Read in place: a part spooled to a file is not copied into memory for this.
    let Ok(mut reader) = data.reader() else {
        return types;
    };
    let size = reader
        .seek(SeekFrom::End(0))
        .and_then(|n| reader.rewind().map(|_| n));
    if size.map_or(true, |n| n > limits.max_input as u64) {
        return types;
    }
    let macros = crate::catch_panic::catch(|| {
        if kind == "doc" {
            Some(ole::macros_of_reader(reader, &limits))
        } else {
            ooxml::macros(reader, &limits)
        }
    });
    if macros.ok().flatten().is_some_and(|m| m.any()) {
        types.insert(0, "macro".into());
    }
    types
}

/// The short types of a buffer (its first bytes).
pub fn detect_bytes(head: &[u8]) -> Vec<String> {
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    if head.is_empty() {
        return v(&["empty"]);
    }
    if head.starts_with(b"MZ") {
        return if is_pe_dll(head) {
            v(&["dll", "exe-ms", "exe"])
        } else {
            v(&["exe-ms", "exe"])
        };
    }
    // file-format parses deep into some formats (a zip's end records) and has panicked on
    // hostile input (an offset overflowing, found by the tar fuzz target). A panic here must
    // not fail the whole message (451 at every retry): the signature checks below still
    // name what they can, and the part is scanned as it is.
    let ff = crate::catch_panic::catch(|| FileFormat::from_bytes(head))
        .unwrap_or(FileFormat::ArbitraryBinaryData);
    use FileFormat as F;
    let short: &[&str] = match ff {
        F::ExecutableAndLinkableFormat => &["exe-unix", "exe"],
        F::Zip => &["zip"],
        F::OfficeOpenXmlDocument => &["docx", "zip"],
        F::OfficeOpenXmlSpreadsheet => &["xlsx", "zip"],
        F::OfficeOpenXmlPresentation => &["pptx", "zip"],
        F::JavaArchive => &["jar", "zip"],
        F::AndroidPackage => &["apk", "zip"],
        F::OpendocumentText | F::OpendocumentSpreadsheet | F::OpendocumentPresentation => {
            &["odf", "zip"]
        }
        F::RoshalArchive => &["rar"],
        F::SevenZip => &["7z"],
        F::Gzip => &["gz"],
        F::Bzip2 => &["bz2"],
        F::Xz => &["xz"],
        F::LempelZivMarkovChainAlgorithm => &["lzma"],
        F::Lzip => &["lz"],
        F::Zstandard => &["zst"],
        F::TapeArchive => &["tar"],
        F::Cpio => &["cpio"],
        F::DebianPackage => &["deb", "ar"],
        F::UnixArchiver => &["ar"],
        F::Cabinet => &["cab"],
        F::ArchivedByRobertJung => &["arj"],
        F::CompoundFileBinary
        | F::MicrosoftWordDocument
        | F::MicrosoftExcelSpreadsheet
        | F::MicrosoftPowerpointPresentation
        | F::MicrosoftSoftwareInstaller => &["doc"],
        F::MicrosoftCompiledHtmlHelp => &["chm"],
        F::PortableDocumentFormat => &["pdf"],
        F::RichTextFormat => &["rtf"],
        F::HypertextMarkupLanguage => &["html"],
        F::JointPhotographicExpertsGroup => &["jpg", "image"],
        F::PortableNetworkGraphics => &["png", "image"],
        F::GraphicsInterchangeFormat => &["gif", "image"],
        F::WindowsBitmap => &["bmp", "image"],
        F::TagImageFileFormat => &["tif", "image"],
        // file-format reads deeper into a zip than its signature; a truncated or damaged zip
        // must still be called zip, so that it is tried and, failing, marked undecipherable.
        _ if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") => &["zip"],
        _ if looks_like_lzma_alone(head) => &["lzma"],
        _ => return text_or_data(head),
    };
    v(short)
}

fn text_or_data(head: &[u8]) -> Vec<String> {
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    if head.starts_with(b"(This file must be converted with BinHex") {
        return v(&["hqx"]);
    }
    // TNEF (winmail.dat): file-format has no signature for it.
    if head.starts_with(&[0x78, 0x9f, 0x3e, 0x22]) {
        return v(&["tnef"]);
    }
    if head.starts_with(b"SZDD") {
        return v(&["szdd"]);
    }
    let printable = head
        .iter()
        .filter(|&&b| b >= 0x20 || matches!(b, b'\t' | b'\r' | b'\n' | 0x0c | 0x1b))
        .count();
    if printable * 100 < head.len() * 95 {
        return v(&["dat"]);
    }
    if looks_like_mail(head) {
        return v(&["mail", "txt"]);
    }
    let lower: Vec<u8> = head.iter().take(4096).map(u8::to_ascii_lowercase).collect();
    let has = |n: &[u8]| memchr::memmem::find(&lower, n).is_some();
    if has(b"<html") || has(b"<!doctype html") || has(b"<body") {
        return v(&["html", "txt"]);
    }
    if head.starts_with(b"-----BEGIN PGP") {
        return v(&["asc", "txt"]);
    }
    v(&["txt"])
}

/// An RFC 5322 message or an mbox: a `From ` line, or header fields from the first line on.
fn looks_like_mail(head: &[u8]) -> bool {
    let body = head.strip_prefix(b"From ").map_or(head, |_| {
        memchr::memchr(b'\n', head).map_or(&head[..0], |i| &head[i + 1..])
    });
    let mut fields = 0;
    for line in body.split(|&b| b == b'\n').take(30) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            return false;
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| b.is_ascii_graphic()) {
            return false;
        }
        let known = [
            &b"from"[..],
            b"to",
            b"subject",
            b"date",
            b"received",
            b"return-path",
            b"message-id",
            b"mime-version",
            b"content-type",
            b"delivered-to",
        ];
        if known.iter().any(|k| name.eq_ignore_ascii_case(k)) {
            fields += 1;
        }
    }
    fields >= 2
}

/// The .lzma ("alone") header has no magic: a properties byte (0x5D for nearly every
/// encoder), a power-of-two dictionary of 4 KiB to 1.5 GiB, and a size that is unknown
/// (all ones) or below 2^48, as xz-utils' own detection checks.
fn looks_like_lzma_alone(b: &[u8]) -> bool {
    if b.len() < 13 || b[0] != 0x5d {
        return false;
    }
    let dict = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
    let size = u64::from_le_bytes([b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12]]);
    dict.is_power_of_two()
        && (4096..=(3 << 29)).contains(&dict)
        && (size == u64::MAX || size < 1 << 48)
}

/// A PE image whose COFF characteristics carry IMAGE_FILE_DLL.
fn is_pe_dll(b: &[u8]) -> bool {
    let Some(off) = b.get(0x3c..0x40) else {
        return false;
    };
    let pe = u32::from_le_bytes([off[0], off[1], off[2], off[3]]) as usize;
    match (b.get(pe..pe + 4), b.get(pe + 22..pe + 24)) {
        (Some(sig), Some(ch)) if sig == b"PE\0\0" => {
            u16::from_le_bytes([ch[0], ch[1]]) & 0x2000 != 0
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_types() {
        assert_eq!(detect_bytes(b"PK\x03\x04rest")[0], "zip");
        assert_eq!(detect_bytes(b"\x1f\x8b\x08\0\0\0\0\0")[0], "gz");
        assert_eq!(detect_bytes(b"BZh91AY&SY")[0], "bz2");
        assert_eq!(detect_bytes(b"%PDF-1.4\n")[0], "pdf");
        assert_eq!(detect_bytes(b"MZ\x90\0")[..2], ["exe-ms", "exe"]);
        assert_eq!(detect_bytes(b"\x7fELF\x02\x01\x01")[0], "exe-unix");
        assert_eq!(detect_bytes(b"hello world\r\n")[0], "txt");
        assert_eq!(detect_bytes(b"<html><body>x</body></html>")[0], "html");
        assert_eq!(
            detect_bytes(b"From: a@b\r\nSubject: x\r\n\r\nbody")[0],
            "mail"
        );
        assert_eq!(detect_bytes(b"\0\x01\x02\x03\xff\xfe\x00\x00")[0], "dat");
        assert_eq!(detect_bytes(b"")[0], "empty");
    }
}
