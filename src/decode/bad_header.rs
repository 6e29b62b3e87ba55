//! Bad header section checks, with amavisd-new's minor codes (CC_BADH,n): 1 MIME error (found
//! while decoding), 2 8-bit bytes, 3 control characters, 4 empty field, 5 line over 998 bytes,
//! 6 syntax, 7 missing required field, 8 repeated field that must be unique.
//!
//! 8-bit bytes in a field (minor 2) follow RFC 6532: valid UTF-8 is legal in a message sent
//! with `MAIL FROM:<...> SMTPUTF8`, and stays a bad header without it; bytes that are not
//! UTF-8, and UTF-8 that encodes C1 controls (U+0080..U+009F, which RFC 5198 forbids), are bad
//! either way. amavisd-new has the same tests, but its `utf8` test (UTF-8 without SMTPUTF8) is
//! off by default; we keep it on, because a message that claims no SMTPUTF8 and carries raw
//! UTF-8 is what RFC 6532 §3.7 says must not be sent.

use super::BadHeader;

/// RFC 5322 §3.6: fields that may appear at most once.
const UNIQUE: [&str; 11] = [
    "date",
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "bcc",
    "message-id",
    "in-reply-to",
    "references",
    "subject",
];

/// RFC 5322 §3.6: fields that must appear.
const REQUIRED: [&str; 2] = ["from", "date"];

/// The header section of a message: up to the first empty line.
pub fn section(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"\r\n") || raw.starts_with(b"\n") {
        return &raw[..0];
    }
    let crlf = memchr::memmem::find(raw, b"\r\n\r\n").map(|i| i + 2);
    let lf = memchr::memmem::find(raw, b"\n\n").map(|i| i + 1);
    match (crlf, lf) {
        (Some(a), Some(b)) => &raw[..a.min(b)],
        (Some(a), None) | (None, Some(a)) => &raw[..a],
        (None, None) => raw,
    }
}

/// Checks a header section of a message sent without SMTPUTF8; returns each finding once per
/// minor, with the first example.
pub fn check(header: &[u8]) -> Vec<BadHeader> {
    check_with(header, false)
}

/// Checks a header section; `smtputf8` when the envelope carried SMTPUTF8 (RFC 6531), which
/// makes valid UTF-8 in field bodies legal.
pub fn check_with(header: &[u8], smtputf8: bool) -> Vec<BadHeader> {
    let mut found: Vec<BadHeader> = Vec::new();
    let mut add = |minor: u8, detail: String| {
        if !found.iter().any(|b| b.minor == minor) {
            found.push(BadHeader { minor, detail });
        }
    };
    let mut names: Vec<String> = Vec::new();
    let mut current: Option<(String, Vec<u8>)> = None;
    let finish = |cur: Option<(String, Vec<u8>)>, add: &mut dyn FnMut(u8, String)| {
        if let Some((name, body)) = cur
            && body.iter().all(|b| b.is_ascii_whitespace())
        {
            add(4, format!("Empty header field: {name}"));
        }
    };
    for raw_line in header.split_inclusive(|&b| b == b'\n') {
        let line = raw_line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(raw_line);
        if line.is_empty() {
            continue;
        }
        if line.len() > 998 {
            add(
                5,
                format!("Header line longer than 998 characters: {}", short(line)),
            );
        }
        if let Some(why) = eight_bit(line, smtputf8) {
            add(2, format!("{why}: {}", short(line)));
        }
        if line.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            add(3, format!("Control characters in header: {}", short(line)));
        }
        if line[0] == b' ' || line[0] == b'\t' {
            match &mut current {
                Some((_, body)) => body.extend_from_slice(line),
                None => add(
                    6,
                    format!("Header starts with a continuation line: {}", short(line)),
                ),
            }
            continue;
        }
        finish(current.take(), &mut add);
        let Some(colon) = memchr::memchr(b':', line) else {
            add(6, format!("Header line is not a field: {}", short(line)));
            continue;
        };
        let name = &line[..colon];
        let name_ok = !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b));
        if !name_ok {
            add(6, format!("Bad header field name: {}", short(line)));
            continue;
        }
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        if UNIQUE.contains(&name.as_str()) && names.contains(&name) {
            add(8, format!("Duplicate header field: {name}"));
        }
        names.push(name.clone());
        current = Some((name, line[colon + 1..].to_vec()));
    }
    finish(current.take(), &mut add);
    for r in REQUIRED {
        if !names.iter().any(|n| n == r) {
            add(7, format!("Missing required header field: {r}"));
        }
    }
    found
}

/// What is wrong with the 8-bit bytes of a header line, if anything.
fn eight_bit(line: &[u8], smtputf8: bool) -> Option<&'static str> {
    if line.is_ascii() {
        return None;
    }
    let Ok(text) = std::str::from_utf8(line) else {
        return Some("Non-encoded non-ASCII data (and not UTF-8)");
    };
    if text.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)) {
        return Some("UTF-8 string contains C1 Controls");
    }
    if smtputf8 {
        // RFC 6532: UTF-8 in field bodies; a field name stays ASCII (the syntax check).
        return None;
    }
    Some("Non-encoded 8-bit data (UTF-8 without SMTPUTF8)")
}

fn short(line: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(&line[..line.len().min(60)])
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minors(h: &[u8]) -> Vec<u8> {
        let mut m: Vec<u8> = check(h).iter().map(|b| b.minor).collect();
        m.sort();
        m
    }

    #[test]
    fn each_minor() {
        let ok = b"From: a@b\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: x\r\n";
        assert!(minors(ok).is_empty(), "{:?}", check(ok));
        assert_eq!(minors(b"From: a@b\r\nDate: d\r\nSubject: \xe4\r\n"), [2]);
        assert_eq!(minors(b"From: a@b\r\nDate: d\r\nSubject: a\x01b\r\n"), [3]);
        assert_eq!(minors(b"From: a@b\r\nDate: d\r\nSubject:   \r\n"), [4]);
        let long = [
            b"From: a@b\r\nDate: d\r\nSubject: ".as_slice(),
            &[b'x'; 1000],
            b"\r\n",
        ]
        .concat();
        assert_eq!(minors(&long), [5]);
        assert_eq!(minors(b"From: a@b\r\nDate: d\r\nno colon here\r\n"), [6]);
        assert_eq!(minors(b" folded first\r\nFrom: a@b\r\nDate: d\r\n"), [6]);
        assert_eq!(minors(b"From: a@b\r\nSubject: x\r\n"), [7]);
        assert_eq!(
            minors(b"From: a@b\r\nDate: d\r\nSubject: x\r\nSubject: y\r\n"),
            [8]
        );
        // Folded fields are fine; Received: may repeat.
        assert!(minors(b"From: a@b\r\nDate: d\r\nReceived: x\r\n y\r\nReceived: z\r\n").is_empty());
    }

    #[test]
    fn utf8_is_legal_only_under_smtputf8() {
        let utf8 = "From: J\u{f6}rg <j\u{f6}rg@b\u{fc}cher.example>\r\nTo: \u{5c71}\u{7530}@example.jp\r\n\
                    Date: d\r\nSubject: Gr\u{fc}\u{df}e \u{1f600}\r\n";
        let m = |h: &[u8], eai: bool| -> Vec<u8> {
            check_with(h, eai).iter().map(|b| b.minor).collect()
        };
        assert!(
            m(utf8.as_bytes(), true).is_empty(),
            "{:?}",
            check_with(utf8.as_bytes(), true)
        );
        assert_eq!(m(utf8.as_bytes(), false), [2]);
        // Not UTF-8 (Latin-1, a lone continuation byte, a truncated sequence, an overlong
        // encoding): bad with or without SMTPUTF8.
        for bad in [&b"\xe4"[..], b"\x80", b"\xe2\x82", b"\xc0\xaf"] {
            let h = [
                b"From: a@b\r\nDate: d\r\nSubject: x".as_slice(),
                bad,
                b"\r\n",
            ]
            .concat();
            assert_eq!(m(&h, true), [2], "{bad:?}");
            assert!(check_with(&h, true)[0].detail.contains("not UTF-8"));
        }
        // C1 controls encoded as UTF-8.
        let c1 = "From: a@b\r\nDate: d\r\nSubject: x\u{85}y\r\n";
        assert_eq!(m(c1.as_bytes(), true), [2]);
        // A non-ASCII field name is a syntax error even under SMTPUTF8.
        let name = "From: a@b\r\nDate: d\r\nB\u{e4}d: x\r\n";
        assert_eq!(m(name.as_bytes(), true), [6]);
    }

    #[test]
    fn header_section() {
        assert_eq!(section(b"A: b\r\n\r\nbody"), b"A: b\r\n");
        assert_eq!(section(b"\r\nbody"), b"");
        assert_eq!(section(b"A: b\n\nbody"), b"A: b\n");
    }
}
