//! Line ends between the wire (CRLF, RFC 5321) and storage (LF, as amavisd-new keeps its
//! quarantine and as mbox and corpus files come).

/// Every bare LF made CRLF; existing CRLFs stay.
pub fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// Every CRLF made LF; a bare CR stays.
pub fn to_lf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\r' && raw.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ways() {
        assert_eq!(to_lf(b"a\r\nb\rc\r\n"), b"a\nb\rc\n");
        assert_eq!(to_crlf(b"\na\nb\r\nc"), b"\r\na\r\nb\r\nc");
        assert_eq!(to_crlf(&to_lf(b"x\r\ny\r\n")), b"x\r\ny\r\n");
    }
}
