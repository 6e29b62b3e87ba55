//! One fixture per format and per nesting combination, built at test time: the payload must
//! come out byte-exact, at the expected level, with its name and type.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod decode_common;
use decode_common::*;

use amavisd::decode::Decoded;

/// The part holding the payload: its (level, name, types).
fn payload_at(d: &Decoded) -> (String, Option<String>, Vec<String>) {
    let p = payload();
    let part = d
        .parts
        .iter()
        .find(|x| x.size == p.len() as u64 && x.data.to_vec().unwrap() == p)
        .unwrap_or_else(|| panic!("payload not found in {:#?}", d.parts));
    (part.level.clone(), part.name.clone(), part.types.clone())
}

#[test]
fn each_format_alone() {
    let p = payload();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("a.zip", zip(&[("x.exe", &p)]), "zip"),
        ("x.exe.gz", gz(&p), "gz"),
        ("x.exe.bz2", bz2(&p), "bz2"),
        ("x.exe.xz", xz(&p), "xz"),
        ("x.exe.lzma", lzma(&p), "lzma"),
        ("a.tar", tar(&[("dir/x.exe", &p)]), "tar"),
        ("a.cpio", cpio_newc(&[("x.exe", &p)]), "cpio"),
        ("a.a", ar(&[("x.exe", &p)]), "ar"),
        ("a.cab", cab(&[("x.exe", &p)]), "cab"),
    ];
    for (name, bytes, short) in cases {
        let d = file(name, &bytes);
        assert_eq!(d.parts[0].short_type(), short, "{name}");
        let (level, pname, types) = payload_at(&d);
        assert_eq!(level, "1/1", "{name}");
        let want = if name.ends_with(".tar") {
            "dir/x.exe"
        } else {
            "x.exe"
        };
        assert_eq!(pname.as_deref(), Some(want), "{name}");
        assert_eq!(types, ["exe-ms", "exe"], "{name}");
        assert!(d.unchecked.is_empty(), "{name}: {:?}", d.unchecked);
        assert!(
            d.parts[0].opened && d.parts[0].undecipherable.is_none(),
            "{name}"
        );
    }
}

#[test]
fn nesting_combinations() {
    let p = payload();
    // tar.gz holding a zip holding a bz2.
    let inner = zip(&[("x.exe.bz2", &bz2(&p))]);
    let tgz = gz(&tar(&[("inner.zip", &inner)]));
    let d = file("outer.tgz", &tgz);
    assert_eq!(payload_at(&d).0, "1/1/1/1/1");
    let names: Vec<_> = d
        .parts
        .iter()
        .map(|x| x.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        ["outer.tgz", "outer.tar", "inner.zip", "x.exe.bz2", "x.exe"]
    );
    // zip in a cpio in an ar (a .deb-like shape), xz in a cab.
    let d = file(
        "pkg.a",
        &ar(&[(
            "data.cpio",
            &cpio_newc(&[("a.zip", &zip(&[("x.exe", &p)]))]),
        )]),
    );
    assert_eq!(payload_at(&d).0, "1/1/1/1");
    let d = file("a.cab", &cab(&[("x.exe.xz", &xz(&p))]));
    assert_eq!(payload_at(&d).0, "1/1/1");
}

#[test]
fn mime_attachment_names_and_nested_messages() {
    let p = payload();
    // RFC 2231 (charset, language, percent-encoding) and RFC 2047 names.
    let m = mail_with_attachment(
        "filename*=utf-8''r%C3%A9sum%C3%A9.exe",
        &p,
        "application/octet-stream",
    );
    let d = message(&m);
    let (level, name, _) = payload_at(&d);
    assert_eq!(name.as_deref(), Some("résumé.exe"));
    assert_eq!(level, "1/2");
    assert_eq!(d.parts[0].mime_type.as_deref(), Some("multipart/mixed"));
    let m = mail_with_attachment(
        "filename=\"=?UTF-8?B?w6ljb2xlLmV4ZQ==?=\"",
        &p,
        "application/octet-stream",
    );
    assert_eq!(payload_at(&message(&m)).1.as_deref(), Some("école.exe"));

    // The same message attached to another (message/rfc822), with a zip inside.
    let inner = mail_with_attachment(
        "filename=\"a.zip\"",
        &zip(&[("x.exe", &p)]),
        "application/zip",
    );
    let outer = format!(
        "From: c@example.org\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: fwd\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"OUT\"\r\n\r\n\
         --OUT\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
         --OUT\r\nContent-Type: message/rfc822\r\n\r\n{}\r\n--OUT--\r\n",
        String::from_utf8_lossy(&inner)
    );
    let d = message(outer.as_bytes());
    let (level, name, _) = payload_at(&d);
    assert_eq!(name.as_deref(), Some("x.exe"));
    // multipart(1) / message(2) / its multipart(1) / zip(2) / x.exe(1)
    assert_eq!(level, "1/2/1/2/1");
    assert!(d.unchecked.is_empty(), "{:?}", d.unchecked);
}

#[test]
fn uuencode_in_text_and_quoted_printable() {
    let p = payload();
    let body = format!("Here it is:\r\n\r\n{}\r\nbye\r\n", uuencode("x.exe", &p));
    let m = format!(
        "From: a@example.org\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: uu\r\n\r\n{body}"
    );
    let d = message(m.as_bytes());
    let (level, name, _) = payload_at(&d);
    assert_eq!((level.as_str(), name.as_deref()), ("1/1", Some("x.exe")));
    let qp = "From: a@example.org\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: qp\r\n\
              Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
              caf=E9 =3D soft=\r\nbreak\r\n";
    let d = message(qp.as_bytes());
    // Transfer-decoded only: the ISO-8859-1 byte stays as sent.
    assert_eq!(
        d.parts[0].data.to_vec().unwrap(),
        b"caf\xe9 = softbreak\r\n"
    );
}

#[test]
fn encrypted_zip_entry_is_unchecked_minor_1() {
    let p = payload();
    let mut z = zip(&[("secret.exe", &p)]);
    // Set the "encrypted" flag in the local and central headers.
    let local = z.windows(4).position(|w| w == b"PK\x03\x04").unwrap();
    z[local + 6] |= 1;
    let central = z.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    z[central + 8] |= 1;
    let d = file("s.zip", &z);
    assert!(
        d.unchecked.iter().any(|u| u.minor == 1),
        "{:?}",
        d.unchecked
    );
    let entry = &d.parts[1];
    assert!(entry.encrypted);
    assert_eq!(entry.name.as_deref(), Some("secret.exe"));
    assert!(entry.undecipherable.is_some());
}

#[test]
fn damaged_archives_are_undecipherable_not_clean() {
    let p = payload();
    let mut z = zip(&[("x.exe", &p)]);
    z.truncate(z.len() / 2);
    let d = file("broken.zip", &z);
    assert_eq!(d.parts[0].short_type(), "zip");
    assert!(d.parts[0].undecipherable.is_some());
    let mut g = gz(&p);
    g.truncate(g.len() - 20);
    let d = file("broken.gz", &g);
    assert_eq!(d.parts[0].short_type(), "gz");
    // A cut gzip gives what it could, and says it was cut.
    assert!(
        d.parts[0].undecipherable.is_some() || d.parts.len() == 2,
        "{:?}",
        d.parts
    );
}

#[test]
fn strict_boundary_disagreement_is_flagged_and_both_views_checked() {
    let p = payload();
    // The boundary string appears in the middle of a line, which mail-parser 0.11 takes as a
    // delimiter: a strict reader sees one part holding everything.
    let b64 = base64_lines(&p);
    let m = format!(
        "From: a@example.org\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: evade\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nhello x--B\r\n\
         Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"x.exe\"\r\n\r\n{b64}--B--\r\n"
    );
    let d = message(m.as_bytes());
    // mail-parser 0.11 splits at the mid-line boundary: the text, then x.exe.
    let kids: Vec<_> = d.parts.iter().filter(|x| x.parent == Some(0)).collect();
    assert_eq!(kids.len(), 3, "{:#?}", d.parts);
    assert_eq!(kids[1].name.as_deref(), Some("x.exe"));
    assert_eq!(kids[1].data.to_vec().unwrap(), p);
    // The strict view: one text part holding all of it, checked as well.
    assert_eq!(kids[2].short_type(), "txt");
    assert!(kids[2].size > 2000);
    assert!(
        d.bad_header
            .iter()
            .any(|b| b.minor == 1 && b.detail.contains("2 parts by the parser, 1 by a strict")),
        "{:?}",
        d.bad_header
    );
}

#[test]
fn bad_header_minors_reach_the_result() {
    let m = b"From: a@example.org\r\nSubject: \xe4\r\nSubject: again\r\n\r\nbody\r\n";
    let d = message(m);
    let mut minors: Vec<u8> = d.bad_header.iter().map(|b| b.minor).collect();
    minors.sort();
    assert_eq!(minors, [2, 7, 8], "{:?}", d.bad_header);
}

#[cfg(feature = "rar")]
#[test]
fn rar4_and_rar5() {
    let p = payload();
    for (label, bytes) in [
        (
            "rar5",
            rar5_stored(&[("x.exe", &p), ("note.txt", b"hello")]),
        ),
        (
            "rar4",
            rar4_stored(&[("x.exe", &p), ("note.txt", b"hello")]),
        ),
    ] {
        let d = file("a.rar", &bytes);
        assert_eq!(d.parts[0].short_type(), "rar", "{label}");
        assert!(
            d.parts[0].undecipherable.is_none(),
            "{label}: {:?}",
            d.parts[0].undecipherable
        );
        let (level, name, _) = payload_at(&d);
        assert_eq!(
            (level.as_str(), name.as_deref()),
            ("1/1", Some("x.exe")),
            "{label}"
        );
        assert_eq!(d.parts[2].data.to_vec().unwrap(), b"hello", "{label}");
    }
    // Nested: a rar inside a zip inside a message.
    let m = mail_with_attachment(
        "filename=\"a.zip\"",
        &zip(&[("in.rar", &rar5_stored(&[("x.exe", &p)]))]),
        "application/zip",
    );
    assert_eq!(payload_at(&message(&m)).0, "1/2/1/1");
}

#[test]
fn entry_with_bad_crc_is_kept_and_flagged() {
    // A wrong CRC makes the zip reader fail only after the data was read; 7-Zip still
    // extracts such an entry, so its content must still be checked.
    let p = payload();
    let mut z = zip(&[("x.exe", &p)]);
    let local = z.windows(4).position(|w| w == b"PK\x03\x04").unwrap();
    z[local + 14] ^= 0xff;
    let central = z.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    z[central + 16] ^= 0xff;
    let d = file("badcrc.zip", &z);
    let (_, name, _) = payload_at(&d);
    assert_eq!(name.as_deref(), Some("x.exe"));
    let entry = d
        .parts
        .iter()
        .find(|x| x.name.as_deref() == Some("x.exe"))
        .unwrap();
    assert!(entry.undecipherable.is_some(), "{:?}", entry.undecipherable);
}
