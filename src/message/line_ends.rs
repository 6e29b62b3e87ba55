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

/// [`to_crlf`] over a stream that arrives in chunks (a CR at the end of one chunk and the
/// LF at the start of the next stay one line end).
#[derive(Debug, Default)]
pub struct ToCrlf {
    last_cr: bool,
}

impl ToCrlf {
    /// The next chunk with its bare LFs made CRLF.
    pub fn convert(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len() + chunk.len() / 40);
        for &b in chunk {
            if b == b'\n' && !self.last_cr {
                out.push(b'\r');
            }
            out.push(b);
            self.last_cr = b == b'\r';
        }
        out
    }
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
    fn chunked_conversion_matches_the_whole() {
        let raw = b"a\nb\r\nc\r\n\nd\re\n";
        for cut in 0..raw.len() {
            let mut c = ToCrlf::default();
            let mut out = c.convert(&raw[..cut]);
            out.extend(c.convert(&raw[cut..]));
            assert_eq!(out, to_crlf(raw), "cut at {cut}");
        }
    }

    #[test]
    fn both_ways() {
        assert_eq!(to_lf(b"a\r\nb\rc\r\n"), b"a\nb\rc\n");
        assert_eq!(to_crlf(b"\na\nb\r\nc"), b"\r\na\r\nb\r\nc");
        assert_eq!(to_crlf(&to_lf(b"x\r\ny\r\n")), b"x\r\ny\r\n");
    }
}
