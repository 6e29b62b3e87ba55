//! Changes to an original header section: incoming `X-Spam-*` fields removed (nobody forges
//! our verdict: the pipeline for local recipients' copies, the spamd listener for PROCESS and
//! HEADERS), other fields a caller names removed (forged `Authentication-Results`), and a
//! subject tag.

/// The header fields of `section` (each with its continuation lines, CRLF-terminated).
pub fn fields(section: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < section.len() {
        let end = memchr::memchr(b'\n', &section[i..]).map_or(section.len(), |p| i + p + 1);
        let next_is_continuation = section.get(end).is_some_and(|&b| b == b' ' || b == b'\t');
        if !next_is_continuation {
            out.push(&section[start..end]);
            start = end;
        }
        i = end;
    }
    out
}

/// True when `field` (a whole field, as [`fields`] gives it) is named `name`.
pub fn name_is(field: &[u8], name: &str) -> bool {
    memchr::memchr(b':', field).is_some_and(|c| {
        field[..c]
            .trim_ascii()
            .eq_ignore_ascii_case(name.as_bytes())
    })
}

fn is_spam_field(field: &[u8]) -> bool {
    memchr::memchr(b':', field).is_some_and(|c| {
        let n = field[..c].trim_ascii();
        n.len() > 7 && n[..7].eq_ignore_ascii_case(b"X-Spam-")
    })
}

/// A subject tag as header text: ASCII as is, anything else as one RFC 2047 encoded word.
fn encoded_tag(tag: &str) -> String {
    if tag.is_ascii() {
        return tag.to_string();
    }
    use base64::Engine;
    let word = base64::engine::general_purpose::STANDARD.encode(tag.trim_end());
    let space = if tag.ends_with(' ') { " " } else { "" };
    format!("=?UTF-8?B?{word}?={space}")
}

/// The header section with the changes applied: `X-Spam-*` fields dropped with
/// `strip_spam`, and those `drop` says yes to. `section` is the original, without the blank
/// line; so is the result.
pub fn rewrite_header(
    section: &[u8],
    strip_spam: bool,
    subject_tag: &str,
    drop: impl Fn(&[u8]) -> bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(section.len() + subject_tag.len() + 16);
    let mut tagged = subject_tag.is_empty();
    for f in fields(section) {
        if (strip_spam && is_spam_field(f)) || drop(f) {
            continue;
        }
        if !tagged && name_is(f, "Subject") {
            let colon = memchr::memchr(b':', f).unwrap_or(0);
            let rest = &f[colon + 1..];
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            out.extend_from_slice(&f[..=colon]);
            out.push(b' ');
            out.extend_from_slice(encoded_tag(subject_tag).as_bytes());
            out.extend_from_slice(rest);
            tagged = true;
            continue;
        }
        out.extend_from_slice(f);
    }
    if !tagged {
        out.extend_from_slice(
            format!("Subject: {}\r\n", encoded_tag(subject_tag).trim_end()).as_bytes(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &[u8] = b"From: a@x\r\nX-Spam-Flag: NO\r\nSubject: hello\r\n there\r\nX-Spam-Status: No,\r\n\tscore=-5\r\nX-Spamd-Bar: keep\r\nTo: b@y\r\n";

    #[test]
    fn strips_spam_fields_and_tags_the_subject() {
        let out = rewrite_header(H, true, "***Spam*** ", |_| false);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "From: a@x\r\nSubject: ***Spam*** hello\r\n there\r\nX-Spamd-Bar: keep\r\nTo: b@y\r\n"
        );
        assert_eq!(rewrite_header(H, false, "", |_| false), H);
    }

    #[test]
    fn fields_the_caller_names_are_dropped() {
        let out = rewrite_header(H, false, "", |f| name_is(f, "X-Spamd-Bar"));
        assert!(!String::from_utf8_lossy(&out).contains("Spamd-Bar"));
        assert!(String::from_utf8_lossy(&out).contains("X-Spam-Flag"));
    }

    #[test]
    fn missing_subject_is_added_and_non_ascii_tags_encoded() {
        let out = rewrite_header(b"From: a@x\r\n", false, "***Spam*** ", |_| false);
        assert_eq!(out, b"From: a@x\r\nSubject: ***Spam***\r\n");
        let out = rewrite_header(b"Subject: hi\r\n", false, "[Pourriel] ", |_| false);
        assert_eq!(out, b"Subject: [Pourriel] hi\r\n");
        let out = rewrite_header(b"Subject: hi\r\n", false, "[Müll] ", |_| false);
        assert_eq!(out, b"Subject: =?UTF-8?B?W03DvGxsXQ==?= hi\r\n");
    }
}
