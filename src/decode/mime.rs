//! The MIME tree of one message (or of an attached message), through mail-parser for the
//! structure, headers and RFC 2047/2231 names. Leaf bodies are transfer-decoded here from the
//! raw bytes, not taken from mail-parser, which converts text parts to UTF-8: the checks must
//! see the bytes the recipient's client will decode.
//!
//! Where the structure is damaged (a multipart without a usable boundary, conflicting or
//! unknown headers, a broken nested header section, content after the closing delimiter),
//! the damage is a MIME error (a bad header, minor 1, as amavisd-new reports MIME::Parser's
//! errors), the bytes are checked as they are, and [`salvage`] adds what a forgiving client
//! would still find in them.

use super::boundary;
use super::ctx::{Ctx, NewPart};
use super::names;
use super::salvage::{salvage, worth_a_look};
use super::transfer;
use mail_parser::{HeaderName, Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// Adds the parts of the message `raw` under `parent`. An mbox `From ` line is skipped.
pub fn walk(ctx: &mut Ctx<'_>, raw: &[u8], parent: Option<usize>) {
    let raw = skip_mbox_line(raw);
    if parent.is_some() && broken_header_section(raw) {
        // A nested message whose header section a client may read otherwise than we do.
        ctx.bad_header(
            1,
            "MIME error: an attached message has a broken header section",
        );
        ctx.add_bytes(parent, raw);
        salvage(ctx, raw, parent);
        return;
    }
    walk_parsed(ctx, raw, MessageParser::new().parse(raw).as_ref(), parent);
}

/// Adds the parts of the message `raw`, already parsed into `msg`, under `parent`.
pub fn walk_parsed(
    ctx: &mut Ctx<'_>,
    raw: &[u8],
    msg: Option<&Message<'_>>,
    parent: Option<usize>,
) {
    match msg {
        Some(msg) if !msg.parts.is_empty() => walk_part(ctx, msg, 0, parent, None),
        _ => {
            // Not MIME at all: the whole thing is one part, so it is still checked.
            ctx.bad_header(1, "MIME error: no header section could be parsed");
            ctx.add_bytes(parent, raw);
            salvage(ctx, raw, parent);
        }
    }
}

/// Adds one body part found by a delimiter scan (its header fields, then its body). Unlike
/// a message, a body part may have no header at all: it is then plain text (RFC 2046).
pub fn walk_entity(ctx: &mut Ctx<'_>, raw: &[u8], parent: Option<usize>) {
    let headerless = raw.starts_with(b"\r\n") || raw.starts_with(b"\n");
    match MessageParser::new().parse(raw) {
        Some(msg) if !headerless && !msg.parts.is_empty() => walk_part(ctx, &msg, 0, parent, None),
        _ => {
            ctx.add_bytes(parent, raw);
            if worth_a_look(raw) {
                salvage(ctx, raw, parent);
            }
        }
    }
}

/// The message without the mbox `From ` separator line, if it starts with one.
pub fn skip_mbox_line(raw: &[u8]) -> &[u8] {
    match raw.strip_prefix(b"From ") {
        Some(_) => memchr::memchr(b'\n', raw).map_or(&raw[..0], |i| &raw[i + 1..]),
        None => raw,
    }
}

/// Adds part `id` of `msg` under `parent`; `enclosing` is the boundary of the multipart it
/// is in, whose delimiter ends it whatever mail-parser thought.
fn walk_part(
    ctx: &mut Ctx<'_>,
    msg: &Message<'_>,
    id: usize,
    parent: Option<usize>,
    enclosing: Option<&[u8]>,
) {
    let Some(part) = msg.parts.get(id) else {
        return;
    };
    let mime_type = part.content_type().map(|ct| {
        let sub = ct.subtype().unwrap_or("");
        format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase()
    });
    let name = part.attachment_name().map(str::to_string);
    let raw = msg.raw_message.as_ref();
    let end = if part.offset_end == 0 {
        raw.len()
    } else {
        part.offset_end as usize
    };
    let header = raw
        .get(part.offset_header as usize..part.offset_body as usize)
        .unwrap_or(&[]);
    let body = raw
        .get(part.offset_body as usize..end.min(raw.len()))
        .unwrap_or(&[]);
    let body = enclosing.map_or(body, |b| boundary::cut_at_delimiter(body, b));
    let conflicts = conflicts(part, raw);
    for c in &conflicts {
        ctx.bad_header(1, format!("MIME error: conflicting {c} fields"));
    }
    match &part.body {
        PartType::Multipart(children) => {
            let Some(idx) = ctx.add_node(parent, mime_type, name) else {
                return;
            };
            let boundary = part
                .content_type()
                .and_then(|ct| ct.attribute("boundary"))
                .map(str::to_string);
            for &child in children.iter() {
                let b = boundary.as_deref().map(str::as_bytes);
                walk_part(ctx, msg, child as usize, Some(idx), b);
            }
            if let Some(b) = boundary {
                cross_check(ctx, body, b.as_bytes(), children.len(), idx);
            }
            if !conflicts.is_empty() {
                salvage(ctx, body, Some(idx));
            }
        }
        _ => {
            let declared = mime_type.clone();
            let Some(idx) = leaf(ctx, part, body, parent, name, mime_type) else {
                return;
            };
            ctx.parts[idx].other_names = names::declared(header)
                .into_iter()
                .filter(|n| ctx.parts[idx].name.as_deref() != Some(n.as_str()))
                .collect();
            if leaf_damaged(ctx, part, declared.as_deref()) || !conflicts.is_empty() {
                salvage(ctx, body, parent);
            }
        }
    }
}

/// Whether a leaf hides structure a client may still find: a multipart mail-parser could not
/// open (no usable boundary), or an unknown transfer encoding. Each is a MIME error.
fn leaf_damaged(ctx: &mut Ctx<'_>, part: &MessagePart<'_>, declared: Option<&str>) -> bool {
    if declared.is_some_and(|t| t.starts_with("multipart/")) {
        ctx.bad_header(1, missing_boundary(part));
        return true;
    }
    if let Some(cte) = part
        .content_transfer_encoding()
        .filter(|c| !transfer::known(c))
    {
        ctx.bad_header(
            1,
            format!(
                "MIME error: unknown Content-Transfer-Encoding {:?}",
                short(cte)
            ),
        );
        return true;
    }
    false
}

/// Adds a leaf: its body transfer-decoded (a damaged encoding is a MIME error), and, when a
/// base64 body goes on after its padding, each later piece beside it.
fn leaf(
    ctx: &mut Ctx<'_>,
    part: &MessagePart<'_>,
    body: &[u8],
    parent: Option<usize>,
    name: Option<String>,
    mime_type: Option<String>,
) -> Option<usize> {
    let cte = part.content_transfer_encoding();
    let (bytes, damaged) = transfer::decode(cte, body);
    if damaged {
        ctx.bad_header(
            1,
            format!("MIME error: damaged {} encoding", short(cte.unwrap_or(""))),
        );
    }
    if part.is_encoding_problem && !is_header_block(body) {
        ctx.bad_header(1, "MIME error: a part could not be decoded");
    }
    let mut src = bytes.as_slice();
    let idx = ctx.add(NewPart {
        parent,
        name,
        mime_type,
        compressed_size: None,
        encrypted: false,
        src: &mut src,
    });
    if cte.is_some_and(|c| c.trim().eq_ignore_ascii_case("base64"))
        && transfer::data_after_padding(body)
    {
        let segments = transfer::base64_segments(body, ctx.limits.max_files);
        if segments.len() > 1 {
            ctx.bad_header(1, "MIME error: base64 data after its padding");
        }
        for later in segments.into_iter().skip(1) {
            ctx.add_bytes(parent, &later);
        }
    }
    idx
}

/// The MIME error for a multipart mail-parser could not open.
fn missing_boundary(part: &MessagePart<'_>) -> String {
    match part.content_type().and_then(|ct| ct.attribute("boundary")) {
        None => "MIME error: multipart boundary is missing".into(),
        Some(b) => format!(
            "MIME error: multipart boundary {:?} never starts a line",
            short(b)
        ),
    }
}

/// Header fields that occur more than once in a part with different values, where mail
/// clients differ in which one they obey (mail-parser takes the last one, others the first).
fn conflicts(part: &MessagePart<'_>, raw: &[u8]) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (name, label) in [
        (HeaderName::ContentType, "Content-Type"),
        (
            HeaderName::ContentTransferEncoding,
            "Content-Transfer-Encoding",
        ),
    ] {
        let mut values = part.headers.iter().filter(|h| h.name == name).map(|h| {
            let v = raw
                .get(h.offset_start as usize..h.offset_end as usize)
                .unwrap_or(&[]);
            String::from_utf8_lossy(v)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_ascii_lowercase()
        });
        if let Some(first) = values.next()
            && values.any(|v| v != first)
        {
            out.push(label);
        }
    }
    out
}

/// True when the header section of an attached message has lines that are neither fields
/// nor continuations, or starts with a continuation: where it ends is then a guess.
fn broken_header_section(raw: &[u8]) -> bool {
    let section = super::bad_header::section(raw);
    super::bad_header::check(section)
        .iter()
        .any(|b| b.minor == 6)
}

/// True when `body` is empty or is nothing but header fields: a message that is all header
/// (a `message/rfc822` part with no body, a DSN's `text/rfc822-headers` returned part), or
/// the groups of fields of a `message/delivery-status`. RFC 5322 makes the body optional, so
/// this is legal, although mail-parser calls such a part an encoding problem.
fn is_header_block(body: &[u8]) -> bool {
    // Groups of fields may be separated by empty lines (delivery-status); a continuation
    // line must follow a field of its own group.
    let mut in_group = false;
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match line.first() {
            None => in_group = false,
            Some(b' ' | b'\t') if in_group => {}
            Some(_) => {
                let Some(colon) = memchr::memchr(b':', line) else {
                    return false;
                };
                let name = &line[..colon];
                if name.is_empty() || !name.iter().all(|&b| (33..=126).contains(&b)) {
                    return false;
                }
                in_group = true;
            }
        }
    }
    true
}

/// Compares mail-parser's view of a multipart with the strict scan; where they disagree,
/// flags a MIME error and checks the strict view's parts too. Content after the closing
/// delimiter is a MIME error and is checked as well.
fn cross_check(ctx: &mut Ctx<'_>, body: &[u8], boundary: &[u8], parser_count: usize, idx: usize) {
    let Some(strict) = boundary::split(body, boundary) else {
        if parser_count > 0 {
            ctx.bad_header(1, "MIME error: boundary found only inside a line");
            salvage(ctx, body, Some(idx));
        }
        return;
    };
    if let Some(rest) = strict.epilogue.clone().and_then(|r| body.get(r))
        && worth_a_look(rest)
    {
        ctx.bad_header(1, "MIME error: content after the closing delimiter");
        salvage(ctx, rest, Some(idx));
    }
    if let Some(pre) = body.get(strict.preamble.clone())
        && worth_a_look(pre)
    {
        salvage(ctx, pre, Some(idx));
    }
    if strict.parts.len() == parser_count {
        return;
    }
    ctx.bad_header(
        1,
        format!(
            "MIME error: {} parts by the parser, {} by a strict boundary scan",
            parser_count,
            strict.parts.len()
        ),
    );
    for r in strict.parts {
        if let Some(sub) = body.get(r) {
            walk_entity(ctx, sub, Some(idx));
        }
    }
}

/// At most 40 characters of a value from the message, for a log line.
fn short(s: &str) -> String {
    s.chars().take(40).collect()
}
