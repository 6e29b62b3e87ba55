//! RFC 3461 xtext, used by ENVID, ORCPT, AUTH= and XFORWARD values.

/// Decodes xtext (`+HH` escapes). Returns `None` on a malformed escape.
pub fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Encodes as xtext: `+`, `=`, and anything outside printable ASCII become `+HH`.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if (33..=126).contains(&c) && c != b'+' && c != b'=' {
            out.push(c as char);
        } else {
            out.push_str(&format!("+{c:02X}"));
        }
    }
    out
}

/// True when `s` is well-formed xtext.
pub fn is_valid(s: &str) -> bool {
    s.bytes().all(|c| (33..=126).contains(&c) && c != b'=') && decode(s).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for s in ["plain", "a+b=c", "sp ace", "ünï"] {
            assert_eq!(decode(&encode(s)).unwrap(), s);
        }
        assert_eq!(decode("George+20@Tax").unwrap(), "George @Tax");
        assert!(decode("bad+2").is_none());
        assert!(decode("bad+ZZ").is_none());
        assert!(is_valid("abc+2Bd"));
        assert!(!is_valid("a=b"));
    }
}
