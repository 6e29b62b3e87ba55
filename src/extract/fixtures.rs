//! Small documents built in memory for tests (this crate's and the integration tests'): a
//! compound file with a VBA project, an Office zip, a PDF. Not used by the filter.

use std::io::{self, Cursor, Write};
use std::path::Path;

/// A VBA compressed container a test can write: full chunks stored raw, the rest as literal
/// tokens (MS-OVBA 2.4.1).
pub fn compress_literal(data: &[u8]) -> Vec<u8> {
    let mut out = vec![1u8];
    for chunk in data.chunks(4096) {
        if chunk.len() == 4096 {
            out.extend_from_slice(&0x3fffu16.to_le_bytes());
            out.extend_from_slice(chunk);
            continue;
        }
        let mut body = Vec::new();
        for group in chunk.chunks(8) {
            body.push(0);
            body.extend_from_slice(group);
        }
        // At most 3,640 bytes here, so the size fits the header's 12 bits.
        let header = 0xb000u16 | ((body.len() + 2 - 3) as u16 & 0x0fff);
        out.extend_from_slice(&header.to_le_bytes());
        out.extend_from_slice(&body);
    }
    out
}

/// A compound file with `streams` (absolute path, bytes).
pub fn compound(streams: &[(&str, &[u8])]) -> io::Result<Vec<u8>> {
    let mut cf = cfb::CompoundFile::create(Cursor::new(Vec::new()))?;
    for (path, data) in streams {
        let p = Path::new(path);
        if let Some(parent) = p.parent() {
            cf.create_storage_all(parent)?;
        }
        cf.create_stream(p)?.write_all(data)?;
    }
    cf.flush()?;
    Ok(cf.into_inner().into_inner())
}

/// A Word 97 file whose VBA project has one module, `ThisDocument`, with `source`.
pub fn word_with_macro(source: &str) -> io::Result<Vec<u8>> {
    let mut dir = Vec::new();
    for (id, body) in [
        (0x19u16, &b"ThisDocument"[..]),
        (0x1a, b"ThisDocument"),
        (0x31, &4u32.to_le_bytes()),
    ] {
        dir.extend_from_slice(&id.to_le_bytes());
        dir.extend_from_slice(&(body.len() as u32).to_le_bytes());
        dir.extend_from_slice(body);
    }
    let mut module = vec![0, 0, 0, 0];
    module.extend(compress_literal(source.as_bytes()));
    compound(&[
        ("/WordDocument", &[0u8; 32]),
        ("/Macros/VBA/dir", &compress_literal(&dir)),
        ("/Macros/VBA/ThisDocument", &module),
        ("/Macros/VBA/_VBA_PROJECT", &[0xcc, 0x61]),
    ])
}

/// A zip of `members` (name, bytes), deflated.
pub fn zip_of(members: &[(&str, &[u8])]) -> io::Result<Vec<u8>> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in members {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file(*name, opts).map_err(io::Error::other)?;
        w.write_all(data)?;
    }
    Ok(w.finish().map_err(io::Error::other)?.into_inner())
}

/// A macro-enabled Word document (`.docm`): `text` as its body, `source` in its VBA project.
pub fn docm(text: &str, source: &str) -> io::Result<Vec<u8>> {
    let document = format!(
        "<w:document><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>"
    );
    zip_of(&[
        ("[Content_Types].xml", b"<Types/>"),
        ("word/document.xml", document.as_bytes()),
        ("word/vbaProject.bin", &word_with_macro(source)?),
    ])
}

/// A one-page PDF whose page content is `content` (deflated), with a link annotation to
/// `link`.
pub fn pdf_with(content: &[u8], link: &str) -> io::Result<Vec<u8>> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(content)?;
    let z = z.finish()?;
    let mut pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n".to_vec();
    pdf.extend_from_slice(b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n");
    pdf.extend_from_slice(b"3 0 obj << /Type /Page /Parent 2 0 R /Contents 4 0 R /Annots [5 0 R] /Resources << /Font << /F1 6 0 R >> >> >> endobj\n");
    pdf.extend_from_slice(
        format!(
            "4 0 obj << /Length {} /Filter /FlateDecode >>\nstream\n",
            z.len()
        )
        .as_bytes(),
    );
    pdf.extend_from_slice(&z);
    pdf.extend_from_slice(b"\nendstream\nendobj\n");
    pdf.extend_from_slice(
        format!(
            "5 0 obj << /Type /Annot /Subtype /Link /A << /S /URI /URI ({link}) >> >> endobj\n"
        )
        .as_bytes(),
    );
    pdf.extend_from_slice(b"6 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n");
    Ok(pdf)
}

/// A Word 97 document whose text is `pieces` in order, each stored one byte a character
/// (`true`: characters up to U+00FF, taken as Windows-1252 bytes) or as UTF-16, with a
/// formatting record before the piece table as Word writes one.
pub fn word_document(pieces: &[(&str, bool)]) -> io::Result<Vec<u8>> {
    // FibBase, then 14 16-bit words, 22 32-bit words and 93 offset/length pairs: the
    // piece table's pair is the 34th (MS-DOC 2.5.1).
    let mut doc = vec![0u8; 1024];
    doc[0..2].copy_from_slice(&0xa5ecu16.to_le_bytes());
    doc[0x0a..0x0c].copy_from_slice(&0x0200u16.to_le_bytes());
    doc[32..34].copy_from_slice(&14u16.to_le_bytes());
    doc[62..64].copy_from_slice(&22u16.to_le_bytes());
    doc[152..154].copy_from_slice(&93u16.to_le_bytes());
    let (mut cps, mut pcds) = (vec![0u32], Vec::new());
    for (text, compressed) in pieces {
        let at = doc.len() as u32;
        let (fc, chars) = if *compressed {
            doc.extend(text.chars().map(|c| c as u32 as u8));
            ((at * 2) | 0x4000_0000, text.chars().count())
        } else {
            let units: Vec<u16> = text.encode_utf16().collect();
            doc.extend(units.iter().flat_map(|u| u.to_le_bytes()));
            (at, units.len())
        };
        cps.push(cps[cps.len() - 1] + chars as u32);
        pcds.extend_from_slice(&[0, 0]);
        pcds.extend_from_slice(&fc.to_le_bytes());
        pcds.extend_from_slice(&[0, 0]);
    }
    let mut plc: Vec<u8> = cps.iter().flat_map(|c| c.to_le_bytes()).collect();
    plc.extend(pcds);
    let mut table = vec![1u8, 2, 0, 0xaa, 0xbb, 2];
    table.extend_from_slice(&(plc.len() as u32).to_le_bytes());
    table.extend(plc);
    let clx = 154 + 33 * 8;
    doc[clx..clx + 4].copy_from_slice(&0u32.to_le_bytes());
    doc[clx + 4..clx + 8].copy_from_slice(&(table.len() as u32).to_le_bytes());
    compound(&[("/WordDocument", &doc), ("/1Table", &table)])
}
