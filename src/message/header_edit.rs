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

/// One change to a header section, in the form a milter asks an MTA to make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldChange {
    /// Insert a field at position `index` (0: before every other field).
    Insert {
        index: u32,
        name: String,
        value: Vec<u8>,
    },
    /// Replace the `index`-th (from 1) field called `name`; an empty value removes it.
    Replace {
        index: u32,
        name: String,
        value: Vec<u8>,
    },
    /// Add a field after the last one.
    Append { name: String, value: Vec<u8> },
}

/// A field's name and its value: what follows the colon, the one space after it kept only
/// with `lead_space`, the final line end removed and inner ones kept.
fn split_field(field: &[u8], lead_space: bool) -> (String, Vec<u8>) {
    let colon = memchr::memchr(b':', field).unwrap_or(field.len());
    let name = String::from_utf8_lossy(field[..colon].trim_ascii()).into_owned();
    let mut value = field.get(colon + 1..).unwrap_or_default();
    if !lead_space {
        value = value.strip_prefix(b" ").unwrap_or(value);
    }
    let value = value.strip_suffix(b"\n").unwrap_or(value);
    let value = value.strip_suffix(b"\r").unwrap_or(value);
    (name, value.to_vec())
}

/// The changes that turn `original` into `top` followed by `rewritten` (or by `original`
/// itself when `None`), for an MTA that applies them in order: fields replaced or removed
/// last-first (so earlier occurrence numbers stay right), then `top` inserted, then fields
/// the rewrite added at the end. `rewritten` must come from [`rewrite_header`] on `original`:
/// fields kept in order, some dropped or changed in place, one perhaps added at the end.
pub fn changes(
    original: &[u8],
    top: &[u8],
    rewritten: Option<&[u8]>,
    lead_space: bool,
) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut appended = Vec::new();
    if let Some(rewritten) = rewritten {
        let new = fields(rewritten);
        let mut j = 0;
        let mut seen: Vec<(String, u32)> = Vec::new();
        let mut in_place = Vec::new();
        for f in fields(original) {
            let (name, _) = split_field(f, lead_space);
            let index = match seen.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                Some((_, k)) => {
                    *k += 1;
                    *k
                }
                None => {
                    seen.push((name.clone(), 1));
                    1
                }
            };
            match new.get(j) {
                Some(n) if *n == f => j += 1,
                Some(n) if name_is(n, &name) => {
                    let (_, value) = split_field(n, lead_space);
                    in_place.push(FieldChange::Replace { index, name, value });
                    j += 1;
                }
                _ => in_place.push(FieldChange::Replace {
                    index,
                    name,
                    value: Vec::new(),
                }),
            }
        }
        out.extend(in_place.into_iter().rev());
        for n in new.get(j..).unwrap_or_default() {
            let (name, value) = split_field(n, lead_space);
            appended.push(FieldChange::Append { name, value });
        }
    }
    for (index, f) in fields(top).into_iter().enumerate() {
        let (name, value) = split_field(f, lead_space);
        out.push(FieldChange::Insert {
            index: index as u32,
            name,
            value,
        });
    }
    out.extend(appended);
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

    #[test]
    fn changes_turn_the_original_into_the_copy() {
        let top = b"X-Virus-Scanned: amavisd-rs\r\nX-Spam-Flag: YES\r\n";
        let new = rewrite_header(H, true, "***Spam*** ", |f| name_is(f, "X-Spamd-Bar"));
        let c = changes(H, top, Some(&new), false);
        let r = |index, name: &str, value: &[u8]| FieldChange::Replace {
            index,
            name: name.into(),
            value: value.to_vec(),
        };
        assert_eq!(
            c,
            vec![
                r(1, "X-Spamd-Bar", b""),
                r(1, "X-Spam-Status", b""),
                r(1, "Subject", b"***Spam*** hello\r\n there"),
                r(1, "X-Spam-Flag", b""),
                FieldChange::Insert {
                    index: 0,
                    name: "X-Virus-Scanned".into(),
                    value: b"amavisd-rs".to_vec()
                },
                FieldChange::Insert {
                    index: 1,
                    name: "X-Spam-Flag".into(),
                    value: b"YES".to_vec()
                },
            ]
        );
        // The same name twice: the later one goes first, so the earlier keeps its number.
        let two = b"X-Spam-Flag: a\r\nTo: b\r\nX-Spam-Flag: c\r\n";
        let c = changes(
            two,
            b"",
            Some(&rewrite_header(two, true, "", |_| false)),
            true,
        );
        assert_eq!(c, vec![r(2, "X-Spam-Flag", b""), r(1, "X-Spam-Flag", b"")]);
        // A subject the original lacked is appended; nothing rewritten means inserts only.
        let c = changes(
            b"From: a\r\n",
            b"",
            Some(b"From: a\r\nSubject: [S]\r\n"),
            true,
        );
        assert_eq!(
            c,
            vec![FieldChange::Append {
                name: "Subject".into(),
                value: b" [S]".to_vec()
            }]
        );
        assert!(changes(H, b"", None, false).is_empty());
    }
}
