//! Every file name a MIME part declares, read from its raw header fields, as a forgiving
//! mail client may read them: `name=` of Content-Type and `filename=` of
//! Content-Disposition, RFC 2231 extended values (`filename*=utf-8''%65vil.exe`) and
//! continuations (`filename*0=`, `filename*1*=` ...) joined in index order even when a piece
//! is missing or they are out of order. mail-parser gives one name, and none or a piece of
//! it when the continuations are broken; banned rules must see each name a client could show.

/// The distinct names declared in a part's raw header section, in the order found.
pub fn declared(header: &[u8]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for value in fields(header) {
        // (parameter base name, index, value) of the name pieces of this field.
        let mut pieces: Vec<(String, u32, String)> = Vec::new();
        for (key, val) in params(&value) {
            let (base, rest) = key.split_once('*').unwrap_or((key.as_str(), ""));
            if base != "name" && base != "filename" {
                continue;
            }
            let extended = rest.ends_with('*') || rest.is_empty() && key.ends_with('*');
            let index = rest.trim_end_matches('*');
            let text = if extended {
                percent_decoded(&val, index.is_empty() || index == "0")
            } else {
                val
            };
            match index.parse::<u32>() {
                Ok(i) => pieces.push((base.to_string(), i, text)),
                Err(_) => push(&mut names, text),
            }
        }
        for base in ["name", "filename"] {
            let mut mine: Vec<&(String, u32, String)> =
                pieces.iter().filter(|p| p.0 == base).collect();
            if mine.is_empty() {
                continue;
            }
            let as_found: String = mine.iter().map(|p| p.2.as_str()).collect();
            mine.sort_by_key(|p| p.1);
            push(&mut names, mine.iter().map(|p| p.2.as_str()).collect());
            push(&mut names, as_found);
        }
    }
    names
}

fn push(names: &mut Vec<String>, name: String) {
    let name = name.trim().to_string();
    if !name.is_empty() && !names.contains(&name) {
        names.push(name);
    }
}

/// The unfolded values of the Content-Type and Content-Disposition fields. Other fields are
/// skipped without a copy: a message's top header section is mostly Received lines.
fn fields(header: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let mut start = 0;
    while start < header.len() {
        let end = memchr::memchr(b'\n', &header[start..]).map_or(header.len(), |i| start + i);
        let line = &header[start..end];
        start = end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if let Some(c) = current.as_mut() {
                c.push_str(&String::from_utf8_lossy(line));
            }
            continue;
        }
        out.extend(current.take());
        if !matches!(line.first(), Some(b'c' | b'C')) {
            continue;
        }
        let value = ["content-type", "content-disposition"]
            .iter()
            .find_map(|name| field_value(line, name.as_bytes()));
        current = value.map(|v| String::from_utf8_lossy(v).into_owned());
    }
    out.extend(current);
    out
}

/// The value of `line` when it is the field `name` (case-insensitive, blanks before the
/// colon allowed).
fn field_value<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let head = line.get(..name.len())?;
    if !head.eq_ignore_ascii_case(name) {
        return None;
    }
    let rest = line[name.len()..].trim_ascii_start();
    rest.strip_prefix(b":")
}

/// `key=value` parameters after the first `;`, keys lower-cased, quoted values unquoted.
fn params(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    // Skip the type or disposition itself.
    for c in chars.by_ref() {
        if c == ';' {
            break;
        }
    }
    loop {
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' || c == ';' {
                break;
            }
            key.push(c);
        }
        let key = key.trim().to_ascii_lowercase();
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next()),
                    '"' => break,
                    _ => val.push(c),
                }
            }
            for c in chars.by_ref() {
                if c == ';' {
                    break;
                }
            }
        } else {
            for c in chars.by_ref() {
                if c == ';' {
                    break;
                }
                val.push(c);
            }
        }
        if key.is_empty() && chars.peek().is_none() {
            return out;
        }
        out.push((key, val.trim().to_string()));
        if chars.peek().is_none() {
            return out;
        }
    }
}

/// An RFC 2231 extended value: `charset'language'` (on the first piece) and `%XX` escapes.
/// The bytes are read as UTF-8, or Latin-1 where they are not.
fn percent_decoded(value: &str, first: bool) -> String {
    let text = match (first, value.splitn(3, '\'').collect::<Vec<_>>().as_slice()) {
        (true, [_, _, rest]) => *rest,
        _ => value,
    };
    let b = text.as_bytes();
    let mut bytes = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|&c| hex(c)),
            b.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                bytes.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, ..) => {
                bytes.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(bytes).unwrap_or_else(|e| e.into_bytes().iter().map(|&c| c as char).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_a_client_could_show() {
        let h = b"Content-Type: application/octet-stream; name=\"report.pdf\"\r\n\
                  Content-Disposition: attachment;\r\n filename=\"evil.exe\"\r\n";
        assert_eq!(declared(h), ["report.pdf", "evil.exe"]);
        // Extended value with charset and escapes.
        let h = b"Content-Disposition: attachment; filename*=utf-8''%65vil%2Eexe\r\n";
        assert_eq!(declared(h), ["evil.exe"]);
        // Continuations, one missing, out of order, one extended.
        let h = b"Content-Disposition: attachment; filename*2=\"exe\"; filename*0=\"ev\"; filename*3*=%20\r\n";
        assert_eq!(declared(h), ["evexe", "exeev"]);
        let h = b"Content-Type: x/y; name*0=\"ev\"; name*1=\"il.e\"; name*2=\"xe\"\r\n";
        assert_eq!(declared(h), ["evil.exe"]);
        // Other fields' parameters are not names.
        assert!(
            declared(b"X-Foo: a; name=x.exe\r\nContent-Type: text/plain; charset=us-ascii\r\n")
                .is_empty()
        );
    }
}
