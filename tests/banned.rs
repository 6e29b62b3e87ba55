//! Banned names and types under amavisd-new's shipped defaults (and a few site rule sets):
//! a table of names, contents and containers with the expected verdict, the disguised cases
//! and the allowed-container exceptions included.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod decode_common;
use decode_common::*;

use amavisd::banned::{Action, RuleSet, RuleSpec, check};
use amavisd::decode::Decoded;

const TEXT: &[u8] = b"just some text\r\n";

fn exe() -> Vec<u8> {
    payload()
}

/// A PE image with the DLL flag set.
fn dll() -> Vec<u8> {
    let mut b = vec![0u8; 512];
    b[..2].copy_from_slice(b"MZ");
    b[0x3c] = 0x80;
    b[0x80..0x84].copy_from_slice(b"PE\0\0");
    b[0x80 + 22..0x80 + 24].copy_from_slice(&0x2102u16.to_le_bytes());
    b
}

fn elf() -> Vec<u8> {
    let mut b = b"\x7fELF\x02\x01\x01\0".to_vec();
    b.resize(256, 0);
    b
}

fn attachment(name: &str, ctype: &str, data: &[u8]) -> Decoded {
    message(&mail_with_attachment(
        &format!("filename=\"{name}\""),
        data,
        ctype,
    ))
}

#[test]
fn default_rules_table() {
    let rules = RuleSet::defaults();
    let p = exe();
    let html = format!(
        "<html><a href=\"data:application/octet-stream;base64,{}\">x</a></html>",
        base64_lines(&p).replace("\r\n", "")
    );
    let uu_mail = format!(
        "From: a@example.org\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: uu\r\n\r\n{}",
        uuencode("tool.exe", TEXT)
    );
    let inner = mail_with_attachment("filename=\"x.scr\"", TEXT, "application/octet-stream");
    let forwarded = format!(
        "From: c@example.org\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n\
         Content-Type: message/rfc822\r\n\r\n{}",
        String::from_utf8_lossy(&inner)
    );
    let mut enc_exe = zip(&[("secret.exe", TEXT)]);
    let mut enc_txt = zip(&[("secret.txt", TEXT)]);
    for z in [&mut enc_exe, &mut enc_txt] {
        let l = z.windows(4).position(|w| w == b"PK\x03\x04").unwrap();
        z[l + 6] |= 1;
        let c = z.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        z[c + 8] |= 1;
    }
    // (case, decoded, banned?, the key label that should decide: N, T, M or "")
    let cases: Vec<(&str, Decoded, bool, &str)> = vec![
        (
            "plain pdf",
            file("report.pdf", b"%PDF-1.4\n%..."),
            false,
            "",
        ),
        ("plain text", file("readme.txt", TEXT), false, ""),
        (
            "name with spaces",
            file("Invoice 2024.pdf", b"%PDF-1.4\n"),
            false,
            "",
        ),
        ("double extension", file("invoice.pdf.exe", TEXT), true, "N"),
        (
            "double extension scr",
            file("photo.jpg.scr", TEXT),
            true,
            "N",
        ),
        (
            "double extension, space",
            file("invoice.pdf   .exe", TEXT),
            true,
            "N",
        ),
        (
            "double extension, trailing dot",
            file("invoice.pdf.exe.", TEXT),
            true,
            "N",
        ),
        ("upper case", file("SETUP.EXE", TEXT), true, "N"),
        ("exe renamed .txt", file("readme.txt", &p), true, "T"),
        ("exe with no name", file("", &p), true, "T"),
        ("dll renamed .bin", file("data.bin", &dll()), true, "T"),
        ("linux binary", file("tool", &elf()), false, ""),
        ("dangerous .exe", file("setup.exe", TEXT), true, "N"),
        ("dangerous .com", file("x.com", TEXT), true, "N"),
        ("dangerous .scr", file("x.scr", TEXT), true, "N"),
        ("dangerous .pif", file("x.pif", TEXT), true, "N"),
        ("dangerous .bat", file("x.bat", TEXT), true, "N"),
        ("dangerous .cmd", file("x.cmd", TEXT), true, "N"),
        ("dangerous .vbs", file("x.vbs", TEXT), true, "N"),
        ("dangerous .js", file("x.js", TEXT), true, "N"),
        ("dangerous .jse", file("x.jse", TEXT), true, "N"),
        ("dangerous .wsf", file("x.wsf", TEXT), true, "N"),
        ("dangerous .hta", file("x.hta", TEXT), true, "N"),
        ("dangerous .lnk", file("x.lnk", TEXT), true, "N"),
        ("dangerous .msi", file("x.msi", TEXT), true, "N"),
        ("dangerous .cpl", file("x.cpl", TEXT), true, "N"),
        ("dangerous .ps1", file("x.ps1", TEXT), true, "N"),
        (
            "harmless double extension",
            file("hello.js.txt", TEXT),
            false,
            "",
        ),
        (
            "CLSID name",
            file("{3050F4D8-98B5-11CF-BB82-00AA00BDCE0B}", TEXT),
            true,
            "N",
        ),
        (
            "CLSID extension",
            file("report.{3050F4D8-98B5-11CF-BB82-00AA00BDCE0B}", TEXT),
            true,
            "N",
        ),
        (
            "exe name in zip",
            file("a.zip", &zip(&[("a.exe", TEXT)])),
            true,
            "N",
        ),
        (
            "exe content in zip",
            file("a.zip", &zip(&[("a.txt", &p)])),
            true,
            "T",
        ),
        (
            "scr in tar: allowed",
            file("a.tar", &tar(&[("a.scr", TEXT)])),
            false,
            "",
        ),
        (
            "exe content in tar: still banned",
            file("a.tar", &tar(&[("a.txt", &p)])),
            true,
            "T",
        ),
        (
            "scr in tar.gz: allowed",
            file("a.tgz", &gz(&tar(&[("a.scr", TEXT)]))),
            false,
            "",
        ),
        (
            "scr in tar in zip: allowed",
            file("a.zip", &zip(&[("b.tar", &tar(&[("a.scr", TEXT)]))])),
            false,
            "",
        ),
        (
            "scr in zip in tar: allowed",
            file("a.tar", &tar(&[("b.zip", &zip(&[("a.scr", TEXT)]))])),
            false,
            "",
        ),
        (
            "exe name in cpio: allowed",
            file("a.cpio", &cpio_newc(&[("x.exe", TEXT)])),
            false,
            "",
        ),
        (
            "exe name in ar: banned",
            file("a.a", &ar(&[("x.exe", TEXT)])),
            true,
            "N",
        ),
        (
            "scr in cab",
            file("a.cab", &cab(&[("x.scr", TEXT)])),
            true,
            "N",
        ),
        (
            "exe name in rar",
            file("a.rar", &rar5_stored(&[("x.exe", TEXT)])),
            true,
            "N",
        ),
        ("exe name in gz", file("x.exe.gz", &gz(TEXT)), true, "N"),
        (
            "normal docx",
            file(
                "letter.docx",
                &zip(&[
                    ("[Content_Types].xml", b"<Types/>"),
                    ("word/document.xml", b"<w:document/>"),
                ]),
            ),
            false,
            "",
        ),
        (
            "clean tar.gz",
            file("src.tar.gz", &gz(&tar(&[("main.c", b"int main(){}\n")]))),
            false,
            "",
        ),
        (
            "MIME type x-msdownload",
            attachment("file.dat", "application/x-msdownload", TEXT),
            true,
            "M",
        ),
        (
            "MIME type hta",
            attachment("page.dat", "application/hta", TEXT),
            true,
            "M",
        ),
        (
            "MIME attachment pdf",
            attachment("report.pdf", "application/pdf", b"%PDF-1.4\n"),
            false,
            "",
        ),
        (
            "MIME attachment exe name",
            attachment("setup.exe", "application/octet-stream", TEXT),
            true,
            "N",
        ),
        (
            "attached message with scr",
            message(forwarded.as_bytes()),
            true,
            "N",
        ),
        ("uuencoded exe name", message(uu_mail.as_bytes()), true, "N"),
        (
            "exe in an HTML data: URI",
            file("page.html", html.as_bytes()),
            true,
            "T",
        ),
        (
            "encrypted entry, exe name",
            file("s.zip", &enc_exe),
            true,
            "N",
        ),
        (
            "encrypted entry, txt name",
            file("s.zip", &enc_txt),
            false,
            "",
        ),
        (
            "undecipherable zip: passes the defaults",
            file("a.zip", b"PK\x03\x04 damaged beyond reading"),
            false,
            "",
        ),
    ];
    assert!(cases.len() >= 40);
    let mut wrong = Vec::new();
    for (case, d, banned, label) in &cases {
        let hits = check(d, &rules);
        let ok = hits.is_empty() != *banned
            && (label.is_empty() || hits.iter().any(|h| h.key.starts_with(&format!("{label}="))));
        if !ok {
            wrong.push(format!(
                "{case}: expected banned={banned} by {label:?}, got {hits:?} (parts: {:?})",
                d.parts
                    .iter()
                    .map(|p| (p.name.clone(), p.types.clone()))
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn spec(regex: &str, action: Action) -> RuleSpec {
    RuleSpec {
        regex: Some(regex.into()),
        glob: None,
        action,
        why: String::new(),
    }
}

#[test]
fn site_rule_sets() {
    let p = exe();
    // A site that lets anything through inside zip files: the allow rule comes first.
    let zip_ok = RuleSet::compile(
        "ZIPOK",
        &[
            spec(r"^\.zip$", Action::Allow),
            spec(r"^\.(exe-ms|dll)$", Action::Ban),
        ],
    )
    .unwrap();
    assert!(check(&file("a.zip", &zip(&[("a.exe", &p)])), &zip_ok).is_empty());
    assert_eq!(check(&file("a.exe", &p), &zip_ok).len(), 1);
    // Undecipherable containers banned, amavisd-new's commented-out first rule.
    let strict = RuleSet::compile("STRICT", &[spec("^UNDECIPHERABLE$", Action::Ban)]).unwrap();
    let damaged = file("a.zip", b"PK\x03\x04 damaged beyond reading");
    assert!(damaged.parts[0].undecipherable.is_some());
    let hits = check(&damaged, &strict);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].key, "A=UNDECIPHERABLE");
    // A glob rule for macro documents.
    let glob = RuleSpec {
        regex: None,
        glob: Some("*.docm".into()),
        action: Action::Ban,
        why: "macros".into(),
    };
    let macros = RuleSet::compile("MACROS", &[glob]).unwrap();
    let hits = check(&file("Budget.DOCM", TEXT), &macros);
    assert_eq!(
        (hits[0].rule.as_str(), hits[0].why.as_str()),
        ("*.docm", "macros")
    );
    // No rules: nothing is banned.
    assert!(check(&file("a.exe", &p), &RuleSet::compile("NONE", &[]).unwrap()).is_empty());
    // A hit names the part, its level and the container whose key decided.
    let hits = check(
        &file("evil.scr.zip", &zip(&[("readme.txt", TEXT)])),
        &RuleSet::defaults(),
    );
    assert_eq!(hits.len(), 0, "a .scr.zip is a zip, its name ends in .zip");
    let hits = check(
        &file(
            "a.zip",
            &zip(&[("inner.pdf.exe", &zip(&[("x.txt", TEXT)]))]),
        ),
        &RuleSet::defaults(),
    );
    assert_eq!(hits[0].level, "1/1/1");
    assert!(hits[0].key.contains("(container p002)"), "{:?}", hits);
}
