//! Forged `Authentication-Results`: a field with our authserv-id that arrives from outside
//! claims results we never gave (RFC 8601 5), so it goes before our own is added.

use crate::message::header_edit::{fields, name_is};

/// The authserv-id a field's value starts with (past white space and comments).
fn authserv_id(value: &[u8]) -> &[u8] {
    let mut v = value;
    loop {
        v = v.trim_ascii_start();
        if v.first() != Some(&b'(') {
            break;
        }
        // A comment, perhaps nested.
        let mut depth = 0usize;
        let mut end = v.len();
        for (i, &b) in v.iter().enumerate() {
            match b {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        v = &v[end..];
    }
    let stop = v
        .iter()
        .position(|&b| b == b';' || b == b'(' || b.is_ascii_whitespace())
        .unwrap_or(v.len());
    &v[..stop]
}

/// True when `field` (a whole header field) is an `Authentication-Results` with `our_id`.
pub fn is_forged(field: &[u8], our_id: &str) -> bool {
    if !name_is(field, "Authentication-Results") {
        return false;
    }
    let Some(colon) = memchr::memchr(b':', field) else {
        return false;
    };
    authserv_id(&field[colon + 1..]).eq_ignore_ascii_case(our_id.as_bytes())
}

/// True when the header section holds a field [`is_forged`] says yes to.
pub fn has_forged(section: &[u8], our_id: &str) -> bool {
    fields(section).into_iter().any(|f| is_forged(f, our_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_id_is_found_past_comments() {
        let id = "mx.example.com";
        assert!(is_forged(
            b"Authentication-Results: mx.example.com; dkim=pass\r\n",
            id
        ));
        assert!(is_forged(
            b"authentication-results:  (x (y)) MX.Example.COM (amavisd-rs);\r\n\tdkim=pass\r\n",
            id
        ));
        assert!(is_forged(
            b"Authentication-Results:\r\n mx.example.com 1; none\r\n",
            id
        ));
        assert!(!is_forged(
            b"Authentication-Results: mx.example.com.evil; none\r\n",
            id
        ));
        assert!(!is_forged(
            b"Authentication-Results: other.org; dkim=pass\r\n",
            id
        ));
        assert!(!is_forged(
            b"X-Authentication-Results: mx.example.com; none\r\n",
            id
        ));
    }

    #[test]
    fn a_section_with_a_forged_field_is_seen() {
        let h = b"From: a@x\r\nAuthentication-Results: mx.example.com;\r\n dkim=pass\r\n";
        assert!(has_forged(h, "mx.example.com"));
        assert!(!has_forged(h, "other.example.com"));
    }
}
