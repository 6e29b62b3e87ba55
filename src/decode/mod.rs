//! Decoding: a message becomes a flat list of [`Part`]s, each with its container path
//! (`p003`, level `1/2`), declared name and MIME type, detected short types, size, digest,
//! encrypted and undecipherable flags, and its bytes. The checks (banned names, AV, spam) read
//! this list and nothing else.
//!
//! # Limits
//! Every limit is a field of [`Limits`] (MAXLEVELS, MAXFILES, the expansion quota, bytes per
//! part, compression ratio, a time budget). Going over one stops that branch and adds an
//! [`Unchecked`] reason (minor 2); an encrypted part adds minor 1. No input may panic, hang or
//! use memory beyond the limits: sizes declared inside archives are never trusted (parts are
//! read through `take`), and names from archives are data, never paths we write to.
//!
//! # Security
//! This is the code an attacker aims at first. Formats are opened by pure-Rust crates where
//! they exist; the hand-written ones (cpio, ar, uuencode, the strict boundary scan) read
//! fixed-size records and check every length before use.

mod archive;
mod bad_header;
mod boundary;
mod ctx;
mod data_uri;
mod detect;
mod held;
mod limits;
mod mime;
mod names;
mod part;
mod salvage;
mod transfer;
mod uuencode;

pub use archive::Kind;
pub use bad_header::{
    check as check_header, check_with as check_header_with, section as header_section,
};
pub use detect::detect_bytes;
pub use limits::Limits;
pub use part::{Part, PartData};

use std::path::Path;

/// One signature for each format the decoder opens, in a fixed order. The archive fuzz target
/// picks one by the first input byte and puts it in front of the rest, and
/// `tests/decode_fuzz_regressions.rs` replays saved inputs the same way.
pub const FUZZ_SIGNATURES: [&[u8]; 13] = [
    b"PK\x03\x04",           // zip
    b"\x1f\x8b\x08",         // gzip
    b"BZh9",                 // bzip2
    b"\xfd7zXZ\x00",         // xz
    b"070701",               // cpio newc
    b"!<arch>\n",            // ar
    b"7z\xbc\xaf\x27\x1c",   // 7z
    b"MSCF\x00\x00\x00\x00", // cab
    b"begin 644 x\r\n",      // uuencode in text
    b"Rar!\x1a\x07\x01\x00", // rar 5
    b"Rar!\x1a\x07\x00",     // rar 4
    b"\x78\x9f\x3e\x22",     // tnef
    b"\x5d\x00\x00",         // lzma (alone): properties byte, dictionary size
];

pub use crate::message::{BadHeader, Unchecked};

/// The decoded message.
#[derive(Debug)]
pub struct Decoded {
    /// Every part, containers before their content, in the order found.
    pub parts: Vec<Part>,
    /// Reasons some content was not looked at (empty: everything was).
    pub unchecked: Vec<Unchecked>,
    /// Header and MIME findings.
    pub bad_header: Vec<BadHeader>,
}

impl Decoded {
    /// Parts that were not opened (what AV scanners and content rules look at).
    pub fn leaves(&self) -> impl Iterator<Item = &Part> {
        self.parts.iter().filter(|p| !p.opened)
    }

    /// The containers of part `i`, nearest first.
    pub fn ancestors(&self, i: usize) -> impl Iterator<Item = &Part> {
        let mut next = self.parts.get(i).and_then(|p| p.parent);
        std::iter::from_fn(move || {
            let p = &self.parts[next?];
            next = p.parent;
            Some(p)
        })
    }
}

/// What the envelope says about a message that changes how it is read.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecodeOptions {
    /// The message came with `MAIL FROM:<...> SMTPUTF8` (RFC 6531): UTF-8 in its header
    /// fields is legal (RFC 6532).
    pub smtputf8: bool,
}

/// Decodes a whole message sent without SMTPUTF8.
pub fn decode_message(raw: &[u8], limits: &Limits, tempdir: &Path) -> Decoded {
    decode_message_with(raw, DecodeOptions::default(), limits, tempdir)
}

/// Decodes a whole message.
pub fn decode_message_with(
    raw: &[u8],
    opts: DecodeOptions,
    limits: &Limits,
    tempdir: &Path,
) -> Decoded {
    decode_parsed(&parse(raw), opts, limits, tempdir)
}

/// A message's MIME structure, parsed once for every check that reads it: the decoder and
/// the spam engine's view take the same parse, so no stage parses the message again.
pub struct Parsed<'a> {
    /// The message without an mbox `From ` line, as parsed.
    pub raw: &'a [u8],
    /// mail-parser's parse; `Err` when the parser crashed (caught: the decoder then checks
    /// the whole message as one part, and the spam view sees no MIME structure).
    message: Result<Option<mail_parser::Message<'a>>, String>,
}

impl<'a> Parsed<'a> {
    /// The parsed message, when the parser made one.
    pub fn message(&self) -> Option<&mail_parser::Message<'a>> {
        self.message.as_ref().ok().and_then(Option::as_ref)
    }
}

/// Parses `raw` (a whole message; an mbox `From ` line is skipped).
pub fn parse(raw: &[u8]) -> Parsed<'_> {
    let raw = mime::skip_mbox_line(raw);
    let message = crate::catch_panic::catch(|| mail_parser::MessageParser::new().parse(raw))
        .map_err(|what| format!("decoder crashed: {what}"));
    Parsed { raw, message }
}

/// Decodes a message already parsed.
pub fn decode_parsed(
    parsed: &Parsed<'_>,
    opts: DecodeOptions,
    limits: &Limits,
    tempdir: &Path,
) -> Decoded {
    let raw = parsed.raw;
    let mut ctx = ctx::Ctx::new(limits, tempdir, raw.len() as u64);
    for b in bad_header::check_with(bad_header::section(raw), opts.smtputf8) {
        ctx.bad_header(b.minor, b.detail);
    }
    let walked = match &parsed.message {
        Err(e) => Err(e.clone()),
        Ok(msg) => guarded(|| {
            mime::walk_parsed(&mut ctx, raw, msg.as_ref(), None);
            Ok(())
        }),
    };
    if let Err(e) = walked {
        // The parser gave up half-way: check the whole message as one part as well.
        ctx.bad_header(1, format!("MIME error: {e}"));
        ctx.add_top(None, &mut &raw[..]);
    }
    expand(&mut ctx);
    finish(ctx)
}

/// Decodes one attachment-like object (a file), as if it were a part of a message: used for
/// files handed over without a message around them, and by the format tests.
pub fn decode_file(name: &str, bytes: &[u8], limits: &Limits, tempdir: &Path) -> Decoded {
    let mut ctx = ctx::Ctx::new(limits, tempdir, bytes.len() as u64);
    ctx.add_top(Some(name.to_string()), &mut &bytes[..]);
    expand(&mut ctx);
    finish(ctx)
}

/// Opens every container, breadth-first, as deep as the limits allow. Iterative: a tree a
/// thousand levels deep costs no stack.
fn expand(ctx: &mut ctx::Ctx<'_>) {
    let mut i = 0;
    while i < ctx.parts.len() {
        if ctx.out_of_time() {
            break;
        }
        let p = &ctx.parts[i];
        if !p.opened
            && let Some(kind) = archive::kind_of(&p.types, p.mime_type.as_deref(), &p.data)
        {
            if let Kind::Unsupported(_) = kind {
                let why = archive::open(kind, ctx, i, &PartData::Memory(held::Bytes::default()));
                ctx.parts[i].undecipherable = why.err();
            } else if ctx.room_for(Some(i)) {
                let data = ctx.take_data(i);
                let before = ctx.parts.len();
                let result = guarded(|| archive::open(kind, ctx, i, &data));
                ctx.put_data(i, data);
                ctx.parts[i].opened = ctx.parts.len() > before && kind != Kind::Embedded;
                if let Err(e) = result {
                    ctx.parts[i].undecipherable = Some(e);
                }
            }
        }
        i += 1;
    }
}

/// Runs a format reader, turning a panic inside it (third-party decoders do panic on hostile
/// input: the fuzzer found one in `cab`) into an error for that part alone. Parts added before
/// the panic stay; a part is pushed only once fully read, so the list stays consistent.
fn guarded(f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    crate::catch_panic::catch(f).unwrap_or_else(|what| Err(format!("decoder crashed: {what}")))
}

fn finish(ctx: ctx::Ctx<'_>) -> Decoded {
    Decoded {
        parts: ctx.parts,
        unchecked: ctx.unchecked,
        bad_header: ctx.bad_header,
    }
}
