//! Builders for decoder fixtures: each format made at test time from a payload, so that every
//! format and nesting combination has a fixture without binary files in the repository.
#![allow(dead_code)]

use amavisd::decode::{Decoded, Limits, decode_file, decode_message};
use std::io::{Cursor, Write};

/// Decodes a file with the default limits.
pub fn file(name: &str, bytes: &[u8]) -> Decoded {
    let tmp = tempfile::tempdir().unwrap();
    decode_file(name, bytes, &Limits::default(), tmp.path())
}

/// Decodes a message with the default limits.
pub fn message(raw: &[u8]) -> Decoded {
    let tmp = tempfile::tempdir().unwrap();
    decode_message(raw, &Limits::default(), tmp.path())
}

/// A recognisable payload: a small PE-looking binary (starts with MZ, so it is detected as
/// exe-ms the way real attachments would be).
pub fn payload() -> Vec<u8> {
    let mut v = b"MZ\x90\x00payload-for-amavisd-rs-decoder-tests".to_vec();
    v.extend((0..2000u32).map(|i| (i * 7 % 251) as u8));
    v
}

pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A 7z archive (LZMA2) of `entries`.
pub fn sevenz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = sevenz_rust2::ArchiveWriter::new(Cursor::new(Vec::new())).unwrap();
    for (name, data) in entries {
        w.push_archive_entry(
            sevenz_rust2::ArchiveEntry::new_file(name),
            Some(Cursor::new(data.to_vec())),
        )
        .unwrap();
    }
    w.finish().unwrap().into_inner()
}

pub fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn bz2(data: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn xz(data: &[u8]) -> Vec<u8> {
    let mut w = lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::default()).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

pub fn lzma(data: &[u8]) -> Vec<u8> {
    let opts = lzma_rust2::LzmaOptions::with_preset(1);
    let mut w =
        lzma_rust2::LzmaWriter::new_use_header(Vec::new(), &opts, Some(data.len() as u64)).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

pub fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// cpio "newc" (070701).
pub fn cpio_newc(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut add = |name: &str, data: &[u8], mode: u32| {
        let namesize = name.len() + 1;
        out.extend_from_slice(
            format!(
                "070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
                1, mode, 0, 0, 1, 0, data.len(), 0, 0, 0, 0, namesize, 0
            )
            .as_bytes(),
        );
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    };
    for (name, data) in entries {
        add(name, data, 0o100644);
    }
    add("TRAILER!!!", b"", 0);
    out
}

/// Unix ar, GNU style, with a long name through the `//` table.
pub fn ar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    let mut table = Vec::new();
    let mut names = Vec::new();
    for (name, _) in entries {
        if name.len() > 15 {
            names.push(format!("/{}", table.len()));
            table.extend_from_slice(format!("{name}/\n").as_bytes());
        } else {
            names.push(format!("{name}/"));
        }
    }
    let mut member = |name: &str, data: &[u8]| {
        out.extend_from_slice(
            format!(
                "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                0,
                0,
                0,
                644,
                data.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    };
    if !table.is_empty() {
        member("//", &table);
    }
    for (n, (_, data)) in names.iter().zip(entries) {
        member(n, data);
    }
    out
}

pub fn cab(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = cab::CabinetBuilder::new();
    {
        let folder = b.add_folder(cab::CompressionType::MsZip);
        for (name, _) in entries {
            folder.add_file(*name);
        }
    }
    let mut w = b.build(Cursor::new(Vec::new())).unwrap();
    let mut i = 0;
    while let Some(mut f) = w.next_file().unwrap() {
        f.write_all(entries[i].1).unwrap();
        i += 1;
    }
    w.finish().unwrap().into_inner()
}

/// A MIME message with one text part and one attachment (base64).
pub fn mail_with_attachment(name_header: &str, data: &[u8], ctype: &str) -> Vec<u8> {
    let mut b64 = String::new();
    let enc = base64_lines(data);
    b64.push_str(&enc);
    format!(
        "From: a@example.org\r\nTo: b@example.com\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
         Subject: test\r\nMessage-ID: <t@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"BOUNDARY\"\r\n\r\n\
         preamble\r\n--BOUNDARY\r\nContent-Type: text/plain\r\n\r\nHello.\r\n\
         --BOUNDARY\r\nContent-Type: {ctype}\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; {name_header}\r\n\r\n{b64}--BOUNDARY--\r\n"
    )
    .into_bytes()
}

pub fn base64_lines(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for (n, c) in data.chunks(3).enumerate() {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let w = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[((w >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
        if n % 19 == 18 {
            s.push_str("\r\n");
        }
    }
    s.push_str("\r\n");
    s
}

/// uuencodes `data` as a block named `name`.
pub fn uuencode(name: &str, data: &[u8]) -> String {
    let mut s = format!("begin 644 {name}\r\n");
    for line in data.chunks(45) {
        s.push((b' ' + line.len() as u8) as char);
        for c in line.chunks(3) {
            let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
            let w = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                let v = ((w >> (18 - 6 * i)) & 63) as u8;
                s.push(if v == 0 { '`' } else { (b' ' + v) as char });
            }
        }
        s.push_str("\r\n");
    }
    s.push_str("`\r\nend\r\n");
    s
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

fn vint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn rar5_block(header_data: &[u8], out: &mut Vec<u8>) {
    let mut sized = Vec::new();
    vint(header_data.len() as u64, &mut sized);
    sized.extend_from_slice(header_data);
    out.extend_from_slice(&crc32(&sized).to_le_bytes());
    out.extend_from_slice(&sized);
}

/// A RAR 5 archive of stored (uncompressed) files, built from the format's specification:
/// there is no RAR writer to make fixtures with.
pub fn rar5_stored(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"Rar!\x1a\x07\x01\x00".to_vec();
    rar5_block(&[1, 0, 0], &mut out); // main archive header: type 1, no flags
    for (name, data) in entries {
        let mut h = Vec::new();
        vint(2, &mut h); // file header
        vint(0x0002, &mut h); // a data area follows
        vint(data.len() as u64, &mut h);
        vint(0x0004, &mut h); // file flags: data CRC32 present
        vint(data.len() as u64, &mut h); // unpacked size
        vint(0x20, &mut h); // attributes
        h.extend_from_slice(&crc32(data).to_le_bytes());
        vint(0, &mut h); // compression: version 0, method 0 (store)
        vint(1, &mut h); // host OS: Unix
        vint(name.len() as u64, &mut h);
        h.extend_from_slice(name.as_bytes());
        rar5_block(&h, &mut out);
        out.extend_from_slice(data);
    }
    rar5_block(&[5, 0, 0], &mut out); // end of archive
    out
}

/// A RAR 4 (1.5-4.x format) archive of stored files, from the format's specification.
pub fn rar4_stored(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"Rar!\x1a\x07\x00".to_vec();
    let block = |body: &[u8], out: &mut Vec<u8>| {
        let crc = (crc32(body) & 0xffff) as u16;
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(body);
    };
    // Archive header: type 0x73, flags 0, size 13, reserved.
    block(&[0x73, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0], &mut out);
    for (name, data) in entries {
        let mut h = vec![0x74];
        h.extend_from_slice(&0x8000u16.to_le_bytes()); // LONG_BLOCK: packed data follows
        h.extend_from_slice(&((32 + name.len()) as u16).to_le_bytes());
        h.extend_from_slice(&(data.len() as u32).to_le_bytes()); // packed size
        h.extend_from_slice(&(data.len() as u32).to_le_bytes()); // unpacked size
        h.push(3); // host OS: Unix
        h.extend_from_slice(&crc32(data).to_le_bytes());
        h.extend_from_slice(&0x5821_0000u32.to_le_bytes()); // DOS time, 2024-01-01
        h.push(29); // version needed: 2.9
        h.push(0x30); // method: store
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&0o100644u32.to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        block(&h, &mut out);
        out.extend_from_slice(data);
    }
    block(&[0x7b, 0x00, 0x40, 7, 0], &mut out); // end of archive
    out
}

/// A zip holding `mib` MiB of zeros in one entry: 1024 gives the classic 1 GiB bomb in about
/// a megabyte.
pub fn zeros_zip(mib: usize) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    w.start_file("zeros.bin", opts).unwrap();
    let mb = vec![0u8; 1 << 20];
    for _ in 0..mib {
        w.write_all(&mb).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A message with an attachment the default banned rules refuse (`invoice.pdf.exe`).
pub fn exe_mail() -> Vec<u8> {
    mail_with_attachment(
        "filename=\"invoice.pdf.exe\"",
        b"not really",
        "application/octet-stream",
    )
}
