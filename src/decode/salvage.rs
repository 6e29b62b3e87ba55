//! What a damaged MIME structure leaves unexplained is still checked.
//!
//! A multipart without a usable boundary, a part under conflicting or unknown headers, a
//! nested message whose header section is broken, content after a closing delimiter: a
//! parser that follows the rules sees text there, while a forgiving mail client may still
//! find an attachment and show it. An attacker needs only one such client. So the bytes are
//! checked as they are (the caller adds them as a part), and here we look for what a
//! forgiving reader would find, and add each as a part beside them:
//!
//! 1. the delimiter lines the multipart should have declared ([`boundary::infer`]): each
//!    body part is then read as a MIME entity, with its own name and encoding;
//! 2. without delimiters, blocks of `Content-*` header fields followed by a body;
//! 3. runs of base64 lines and quoted-printable text, decoded.
//!
//! (uuencoded blocks and `data:` URIs in the raw text are found by the text expander, as in
//! any text part.) Every part added goes through the decoder's limits; the recursion through
//! nested damage is capped by [`MAX_DEPTH`].

use super::boundary;
use super::ctx::Ctx;
use super::mime;
use super::transfer;

/// How deep damage inside damage is followed. Salvaged parts are siblings of the damaged
/// part, so MAXLEVELS does not bound this recursion; real mail never needs more than a few.
pub const MAX_DEPTH: usize = 8;

/// Adds under `parent` what a forgiving reader would find in `body`.
pub fn salvage(ctx: &mut Ctx<'_>, body: &[u8], parent: Option<usize>) {
    if ctx.salvage_depth >= MAX_DEPTH {
        ctx.bad_header(1, "MIME error: damage nested too deep to follow");
        return;
    }
    ctx.salvage_depth += 1;
    let found = by_delimiters(ctx, body, parent) || by_header_blocks(ctx, body, parent);
    if !found {
        decoded_runs(ctx, body, parent);
    }
    ctx.salvage_depth -= 1;
}

/// Step 1: the inferred delimiter lines. True when there were some.
fn by_delimiters(ctx: &mut Ctx<'_>, body: &[u8], parent: Option<usize>) -> bool {
    let Some(b) = boundary::infer(body) else {
        return false;
    };
    let Some(split) = boundary::split(body, &b) else {
        return false;
    };
    for r in split.parts {
        if let Some(entity) = body.get(r) {
            mime::walk_entity(ctx, entity, parent);
        }
    }
    // What hides around the delimiters is looked at too.
    for r in [Some(split.preamble), split.epilogue].into_iter().flatten() {
        if let Some(rest) = body.get(r).filter(|t| worth_a_look(t)) {
            salvage(ctx, rest, parent);
        }
    }
    true
}

/// Step 2: `Content-*` header blocks, each with the text after it up to the next one.
fn by_header_blocks(ctx: &mut Ctx<'_>, body: &[u8], parent: Option<usize>) -> bool {
    let starts = header_block_starts(body);
    for (n, &s) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(body.len());
        mime::walk_entity(ctx, &body[s..end], parent);
    }
    if let Some(&first) = starts.first()
        && worth_a_look(&body[..first])
    {
        decoded_runs(ctx, &body[..first], parent);
    }
    !starts.is_empty()
}

/// Where blocks of header fields that name MIME content begin: a line `Content-...:` at the
/// start of the body or after an empty line, with the block ended by an empty line.
fn header_block_starts(body: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut after_blank = true;
    let mut at = 0;
    while at < body.len() {
        let end = memchr::memchr(b'\n', &body[at..]).map_or(body.len(), |i| at + i);
        let line = &body[at..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if after_blank && starts_mime_field(line) {
            starts.push(at);
        }
        after_blank = line.is_empty();
        at = end + 1;
    }
    starts
}

fn starts_mime_field(line: &[u8]) -> bool {
    line.len() > 8 && line[..8].eq_ignore_ascii_case(b"content-") && boundary::is_field(line)
}

/// True when `text` may hold something: a delimiter-like line, a MIME field or an encoded run.
pub fn worth_a_look(text: &[u8]) -> bool {
    !header_block_starts(text).is_empty()
        || boundary::infer(text).is_some()
        || !base64_runs(text).is_empty()
}

/// Step 3: base64 runs, and quoted-printable text, decoded into parts.
fn decoded_runs(ctx: &mut Ctx<'_>, text: &[u8], parent: Option<usize>) {
    for run in base64_runs(text) {
        let (bytes, _) = transfer::base64(&text[run]);
        if !bytes.is_empty() {
            ctx.add_bytes(parent, &bytes);
        }
    }
    if looks_quoted_printable(text) {
        let (bytes, _) = transfer::quoted_printable(text);
        if !bytes.is_empty() && bytes != text {
            ctx.add_bytes(parent, &bytes);
        }
    }
}

/// A line that can be part of a base64 body: the alphabet only (padding at the end).
fn base64_line(line: &[u8]) -> bool {
    let data = line
        .strip_suffix(b"==")
        .or_else(|| line.strip_suffix(b"="))
        .unwrap_or(line);
    !data.is_empty()
        && data
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// A run of base64 lines being read.
struct Run {
    start: usize,
    end: usize,
    /// The first line's length: encoders write every line but the last as long.
    width: usize,
    chars: usize,
    /// More lines may follow (no short or padded line yet).
    open: bool,
}

/// Byte ranges of base64 runs in `text`: consecutive base64 lines, all but the last of one
/// length as encoders write them, holding at least 16 characters and something that is not
/// a letter (a word alone is not base64).
pub fn base64_runs(text: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut close = |cur: &mut Option<Run>| {
        if let Some(r) = cur.take()
            && r.chars >= 16
            && text[r.start..r.end]
                .iter()
                .any(|b| !b.is_ascii_alphabetic() && !b.is_ascii_whitespace())
        {
            runs.push(r.start..r.end);
        }
    };
    let mut cur: Option<Run> = None;
    let mut at = 0;
    while at < text.len() {
        let end = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |i| at + i);
        let raw = &text[at..end];
        let line = raw.strip_suffix(b"\r").unwrap_or(raw).trim_ascii_end();
        if !base64_line(line) {
            close(&mut cur);
        } else if let Some(r) = cur.as_mut().filter(|r| r.open && line.len() <= r.width) {
            r.end = end;
            r.chars += line.len();
            r.open = line.len() == r.width && !line.ends_with(b"=");
        } else {
            close(&mut cur);
            cur = Some(Run {
                start: at,
                end,
                width: line.len(),
                chars: line.len(),
                open: !line.ends_with(b"="),
            });
        }
        at = end + 1;
    }
    close(&mut cur);
    runs
}

/// Quoted-printable soft line breaks or escapes of bytes that plain text would carry as
/// they are.
fn looks_quoted_printable(text: &[u8]) -> bool {
    let soft = memchr::memmem::find(text, b"=\r\n").is_some()
        || memchr::memmem::find(text, b"=\n").is_some();
    let escapes = text
        .windows(3)
        .filter(|w| w[0] == b'=' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
        .count();
    soft || escapes >= 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_runs_as_encoders_write_them() {
        let text = b"Hello there\r\nWDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNU\r\nLUZJTEUhJEgrSCo=\r\nbye\r\n";
        let runs = base64_runs(text);
        assert_eq!(runs.len(), 1);
        let (bytes, _) = transfer::base64(&text[runs[0].clone()]);
        assert!(bytes.starts_with(b"X5O!P%@AP"));
        assert!(bytes.ends_with(b"$H+H*"));
        // Words are not base64, however long.
        assert!(base64_runs(b"Supercalifragilisticexpialidocious\r\n").is_empty());
        // Two runs separated by text.
        let two =
            b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\ntext here\r\nMDEyMzQ1Njc4OWFiY2RlZg==\r\n";
        assert_eq!(base64_runs(two).len(), 2);
    }

    #[test]
    fn quoted_printable_is_recognised() {
        assert!(looks_quoted_printable(b"a long line=\r\ncontinued"));
        assert!(looks_quoted_printable(b"=41=42=43"));
        assert!(!looks_quoted_printable(b"x = 1 and y=2"));
    }
}
