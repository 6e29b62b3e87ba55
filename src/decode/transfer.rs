//! Content-Transfer-Encoding, decoded leniently as mail clients do: broken base64 or
//! quoted-printable must still yield what a recipient's client would show, or an attacker could
//! hide a payload behind one bad character. (The `base64` crate is strict by design, and
//! mail-parser's decoders give up on the first error, hence these few lines.)

/// Decodes `body` according to the Content-Transfer-Encoding value `cte`. Returns the bytes and
/// whether the encoding was damaged (a MIME error for the bad-header check).
pub fn decode(cte: Option<&str>, body: &[u8]) -> (Vec<u8>, bool) {
    match cte.map(|c| c.trim().to_ascii_lowercase()).as_deref() {
        Some("base64") => base64(body),
        Some("quoted-printable") => quoted_printable(body),
        _ => (body.to_vec(), false),
    }
}

/// Transfer encodings we decode or pass on as they are (uuencode is found in the text by the
/// text expander). Anything else is an RFC 2045 violation, read as the raw bytes it is.
pub fn known(cte: &str) -> bool {
    matches!(
        cte.trim().to_ascii_lowercase().as_str(),
        "7bit"
            | "8bit"
            | "binary"
            | "base64"
            | "quoted-printable"
            | "x-uuencode"
            | "uuencode"
            | "x-uue"
    )
}

/// True when base64 data follows a `=` in `body` (padding in the middle): a quick scan, so
/// that well-formed bodies are not decoded twice.
pub fn data_after_padding(body: &[u8]) -> bool {
    // One pass: after a `=`, the next byte that is neither `=` nor blank decides.
    let mut padded = false;
    for &c in body {
        match c {
            b'=' => padded = true,
            b'\r' | b'\n' | b' ' | b'\t' => {}
            c if padded => {
                if c.is_ascii_alphanumeric() || c == b'+' || c == b'/' {
                    return true;
                }
                padded = false;
            }
            _ => {}
        }
    }
    false
}

/// Base64 that goes on after its padding, cut into its pieces, each decoded: a client that
/// does not stop at the first `=` shows the later ones. One piece for well-formed base64; at
/// most `max` pieces (the last one holds the rest), so `QQ==QQ==...` cannot fill memory.
pub fn base64_segments(body: &[u8], max: usize) -> Vec<Vec<u8>> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut padded = false;
    for (i, &c) in body.iter().enumerate() {
        if c == b'=' {
            padded = true;
        } else if padded
            && (c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
            && pieces.len() + 1 < max
        {
            pieces.push(base64(&body[start..i]).0);
            start = i;
            padded = false;
        }
    }
    pieces.push(base64(&body[start..]).0);
    pieces.retain(|p| !p.is_empty());
    pieces
}

/// Base64, skipping anything outside the alphabet, stopping at padding.
pub fn base64(body: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(body.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut damaged = false;
    for &c in body {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            b'\r' | b'\n' | b' ' | b'\t' => continue,
            _ => {
                damaged = true;
                continue;
            }
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    (out, damaged)
}

/// Quoted-printable; a malformed `=` sequence is kept as it is.
pub fn quoted_printable(body: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(body.len());
    let mut damaged = false;
    let mut i = 0;
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    while i < body.len() {
        let c = body[i];
        if c == b'=' {
            match (body.get(i + 1), body.get(i + 2)) {
                (Some(b'\r'), Some(b'\n')) => i += 3,
                (Some(b'\n'), _) => i += 2,
                (Some(&a), Some(&b)) if hex(a).is_some() && hex(b).is_some() => {
                    out.push(hex(a).unwrap_or(0) * 16 + hex(b).unwrap_or(0));
                    i += 3;
                }
                (None, _) => i += 1,
                _ => {
                    damaged = true;
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    (out, damaged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient() {
        assert_eq!(base64(b"aGVs\r\nbG8=").0, b"hello");
        let (v, bad) = base64(b"aGV*sbG8=");
        assert_eq!(v, b"hello");
        assert!(bad);
        assert_eq!(quoted_printable(b"a=3Db=\r\nc").0, b"a=bc");
        let (v, bad) = quoted_printable(b"a=ZZb");
        assert_eq!(v, b"a=ZZb");
        assert!(bad);
    }

    #[test]
    fn base64_after_its_padding() {
        assert_eq!(base64_segments(b"aGVsbG8=\r\n", 10), [b"hello".to_vec()]);
        assert_eq!(
            base64_segments(b"QUJD=\r\nREVG\r\n", 10),
            [b"ABC".to_vec(), b"DEF".to_vec()]
        );
        assert_eq!(base64_segments(&b"QQ==".repeat(1000), 3).len(), 3);
        assert_eq!(
            base64(b"QUJD=\r\nREVG").0,
            b"ABC",
            "the first piece is the part"
        );
    }
}
