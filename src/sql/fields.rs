//! Values from the message made safe for the SQL columns, as amavisd-new makes them
//! (`save_info_final`): the Subject and From fields RFC 2047-decoded, Message-ID and the
//! other identifiers in 7-bit printable ASCII, domains in their IDNA (punycode) form, and
//! everything cut to the column's 255 characters.
//!
//! This is what keeps a message from being deferred for ever: a value the database refuses
//! (a NUL byte in PostgreSQL text, non-ASCII in a latin1 column of an existing amavisd-new
//! schema on MariaDB, an over-long value in strict mode) would fail at every retry.

/// Cuts `s` to at most `n` bytes, at a character boundary.
pub fn cut(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// 7-bit printable only, anything else as `?` (amavisd-new's `s/[^\040-\176]/?/g`), cut to
/// `n`: for Message-ID, quarantine locations, host names, policy names, SMTP replies.
pub fn ascii(s: &str, n: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect();
    cut(&clean, n)
}

/// A header field's text as a person reads it: encoded words decoded, control characters
/// (NUL included) made spaces, cut to `n` bytes.
pub fn decoded(raw: &str, n: usize) -> String {
    let text = if raw.contains("=?") {
        let line = format!("{raw}\r\n");
        match mail_parser::parsers::MessageStream::new(line.as_bytes()).parse_unstructured() {
            mail_parser::HeaderValue::Text(t) => t.into_owned(),
            _ => raw.to_string(),
        }
    } else {
        raw.to_string()
    };
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cut(clean.trim(), n)
}

/// `addr` with its domain in IDNA ASCII form (`jörg@bücher.example` ->
/// `jörg@xn--bcher-kva.example`), as amavisd-new stores `maddr.email`; a domain that is not a
/// valid IDN is kept, lower-cased.
pub fn address(addr: &str) -> String {
    match addr.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain_ascii(domain)),
        None => addr.to_string(),
    }
}

/// A domain in IDNA ASCII form, lower-cased; non-ASCII that is not a valid IDN as `?`.
pub fn domain_ascii(domain: &str) -> String {
    if domain.is_ascii() {
        return domain.to_ascii_lowercase();
    }
    idna::domain_to_ascii(domain).unwrap_or_else(|_| ascii(&domain.to_lowercase(), 255))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_the_database_takes() {
        assert_eq!(ascii("<a\u{e9}b\0c@x>", 255), "<a?b?c@x>");
        assert_eq!(
            decoded("=?utf-8?q?Gr=C3=BC=C3=9Fe?= aus K\u{f6}ln", 255),
            "Gr\u{fc}\u{df}e aus K\u{f6}ln"
        );
        assert_eq!(decoded("nul\0and\u{7}bell", 255), "nul and bell");
        assert_eq!(decoded("=?iso-8859-1?b?4ORl?=", 255), "\u{e0}\u{e4}e");
        let long = "\u{1f600}".repeat(100);
        let d = decoded(&long, 255);
        assert!(d.len() <= 255 && d.chars().all(|c| c == '\u{1f600}'));
        assert_eq!(
            address("j\u{f6}rg@B\u{fc}cher.example"),
            "j\u{f6}rg@xn--bcher-kva.example"
        );
        assert_eq!(address("a@Example.COM"), "a@example.com");
    }
}
