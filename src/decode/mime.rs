//! The MIME tree of one message (or of an attached message), through mail-parser for the
//! structure, headers and RFC 2047/2231 names. Leaf bodies are transfer-decoded here from the
//! raw bytes, not taken from mail-parser, which converts text parts to UTF-8: the checks must
//! see the bytes the recipient's client will decode.

use super::boundary;
use super::ctx::{Ctx, NewPart};
use super::transfer;
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

/// Adds the parts of the message `raw` under `parent`. An mbox `From ` line is skipped.
pub fn walk(ctx: &mut Ctx<'_>, raw: &[u8], parent: Option<usize>) {
    let raw = skip_mbox_line(raw);
    match MessageParser::new().parse(raw) {
        Some(msg) if !msg.parts.is_empty() => walk_part(ctx, &msg, 0, parent),
        _ => {
            // Not MIME at all: the whole thing is one part, so it is still checked.
            ctx.bad_header(1, "MIME error: no header section could be parsed");
            let mut src = raw;
            ctx.add(NewPart {
                parent,
                name: None,
                mime_type: None,
                compressed_size: None,
                encrypted: false,
                src: &mut src,
            });
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

fn walk_part(ctx: &mut Ctx<'_>, msg: &Message<'_>, id: usize, parent: Option<usize>) {
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
    let body = raw
        .get(part.offset_body as usize..end.min(raw.len()))
        .unwrap_or(&[]);
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
                walk_part(ctx, msg, child as usize, Some(idx));
            }
            if let Some(b) = boundary {
                cross_check(ctx, body, b.as_bytes(), children.len(), idx);
            }
        }
        _ => {
            let cte = part.content_transfer_encoding();
            let (bytes, damaged) = transfer::decode(cte, body);
            if damaged {
                ctx.bad_header(
                    1,
                    format!("MIME error: damaged {} encoding", cte.unwrap_or("")),
                );
            }
            if part.is_encoding_problem {
                ctx.bad_header(1, "MIME error: a part could not be decoded");
            }
            let mut src = bytes.as_slice();
            ctx.add(NewPart {
                parent,
                name,
                mime_type,
                compressed_size: None,
                encrypted: false,
                src: &mut src,
            });
        }
    }
}

/// Compares mail-parser's view of a multipart with the strict scan; where they disagree, flags
/// a MIME error and checks the strict view's parts too.
fn cross_check(ctx: &mut Ctx<'_>, body: &[u8], boundary: &[u8], parser_count: usize, idx: usize) {
    let Some(strict) = boundary::split(body, boundary) else {
        if parser_count > 0 {
            ctx.bad_header(1, "MIME error: boundary found only inside a line");
        }
        return;
    };
    if strict.len() == parser_count {
        return;
    }
    ctx.bad_header(
        1,
        format!(
            "MIME error: {} parts by the parser, {} by a strict boundary scan",
            parser_count,
            strict.len()
        ),
    );
    for r in strict {
        if let Some(sub) = body.get(r) {
            walk(ctx, sub, Some(idx));
        }
    }
}
