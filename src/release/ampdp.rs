//! AM.PDP framing, sans I/O: a request or response is a run of `name=value` lines (CRLF or
//! LF; `name: value` is accepted too) closed by an empty line; `%XX` escapes any byte.
//! Names are sent with everything but `[0-9A-Za-z_-]` escaped, values with `%`, space and
//! non-printables escaped (amavisd-new's `proto_encode`).

/// Longest line we accept; a longer one ends the session (a misbehaving client).
pub const MAX_LINE: usize = 16 * 1024;
/// Most attributes in one request.
pub const MAX_ATTRS: usize = 1000;

/// Decodes `%XX` escapes; bytes that are not valid UTF-8 become U+FFFD.
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes a value: `%`, space, controls and non-ASCII as `%XX`.
pub fn encode_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// One request's attributes, in order (names may repeat: `recipient`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attrs(pub Vec<(String, String)>);

impl Attrs {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Adds an attribute.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((name.to_string(), value.into()));
    }

    /// The wire form of a response: each line CRLF-terminated, then the empty line.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = String::new();
        for (n, v) in &self.0 {
            out.push_str(n);
            out.push('=');
            out.push_str(&encode_value(v));
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out.into_bytes()
    }
}

/// Parses one line into `(name, value)`; `None` for a line that is neither form.
pub fn parse_line(line: &str) -> Option<(String, String)> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (n, v) = match (line.find('='), line.find(':')) {
        (Some(e), Some(c)) if c < e => (&line[..c], line[c + 1..].trim_start()),
        (Some(e), _) => (&line[..e], &line[e + 1..]),
        (None, Some(c)) => (&line[..c], line[c + 1..].trim_start()),
        (None, None) => return None,
    };
    Some((decode(n), decode(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec() {
        assert_eq!(decode("a%20b%25c%zz"), "a b%c%zz");
        assert_eq!(encode_value("250 2.0.0 Ok%"), "250%202.0.0%20Ok%25");
        assert_eq!(decode(&encode_value("Grüße \r\n")), "Grüße \r\n");
        assert_eq!(
            parse_line("mail_id=abc%2Bd\r\n"),
            Some(("mail_id".into(), "abc+d".into()))
        );
        assert_eq!(
            parse_line("recipient: <a@b>"),
            Some(("recipient".into(), "<a@b>".into()))
        );
        assert_eq!(parse_line("garbage"), None);
        let mut a = Attrs::default();
        a.push("setreply", "250 2.0.0 Ok");
        assert_eq!(a.to_wire(), b"setreply=250%202.0.0%20Ok\r\n\r\n");
    }
}
