//! An SMTP reply: code, enhanced status code, text.

use std::fmt;

/// One SMTP/LMTP reply. `status` is the RFC 3463 enhanced code (`2.0.0`), empty when the peer
/// sent none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub status: String,
    pub text: String,
}

impl Reply {
    /// A reply with an enhanced status code.
    pub fn new(code: u16, status: &str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: status.to_string(),
            text: text.into(),
        }
    }

    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 4xx: try again later.
    pub fn is_temporary(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx: will never succeed.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The reply as it goes on the wire: one line per line of `text`, `NNN-` on all but the
    /// last, each with the enhanced code, CRLF-terminated. CR and LF inside `text` only ever
    /// split lines, so peer text cannot inject a reply of its own.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.text.len() + 16);
        let lines: Vec<&str> = self
            .text
            .split(['\r', '\n'])
            .filter(|l| !l.is_empty())
            .collect();
        let lines = if lines.is_empty() { vec![""] } else { lines };
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            out.extend_from_slice(self.code.to_string().as_bytes());
            out.push(sep as u8);
            if !self.status.is_empty() {
                out.extend_from_slice(self.status.as_bytes());
                out.push(b' ');
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// `code status text` on one line, for logs and for quoting a downstream reply.
    pub fn one_line(&self) -> String {
        let text = self.text.replace(['\r', '\n'], " ");
        if self.status.is_empty() {
            format!("{} {}", self.code, text)
        } else {
            format!("{} {} {}", self.code, self.status, text)
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.one_line())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_multiline() {
        let r = Reply::new(250, "", "mx\nPIPELINING\nSIZE 10");
        assert_eq!(r.to_wire(), b"250-mx\r\n250-PIPELINING\r\n250 SIZE 10\r\n");
        let r = Reply::new(451, "4.3.0", "x\r\n250 2.0.0 forged");
        assert_eq!(
            r.to_wire(),
            b"451-4.3.0 x\r\n451 4.3.0 250 2.0.0 forged\r\n"
        );
    }
}
