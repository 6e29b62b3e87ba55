//! Bad header section checks, with amavisd-new's minor codes (CC_BADH,n): 1 MIME error (found
//! while decoding), 2 8-bit bytes, 3 control characters, 4 empty field, 5 line over 998 bytes,
//! 6 syntax, 7 missing required field, 8 repeated field that must be unique.

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

/// Checks a header section; returns each finding once per minor, with the first example.
pub fn check(header: &[u8]) -> Vec<BadHeader> {
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
        if line.iter().any(|&b| b >= 0x80) {
            add(
                2,
                format!("Non-encoded 8-bit data in header: {}", short(line)),
            );
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
    fn header_section() {
        assert_eq!(section(b"A: b\r\n\r\nbody"), b"A: b\r\n");
        assert_eq!(section(b"\r\nbody"), b"");
        assert_eq!(section(b"A: b\n\nbody"), b"A: b\n");
    }
}
