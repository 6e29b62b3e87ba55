//! Opening containers: which format a part is, and the reader for each. Every format adds its
//! entries through `Ctx::add`, which applies the limits; names from archives are data only.

mod ar;
mod cab;
mod cpio;
#[cfg(feature = "rar")]
mod rar;
mod sevenz;
mod stream;
mod tar;
mod tnef;
mod zip;

use super::ctx::Ctx;
use super::part::PartData;

/// How a part is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An RFC 5322 message or an mbox.
    Mail,
    /// A text or HTML part that may hold uuencoded blocks or base64 `data:` URIs.
    Embedded,
    Zip,
    Gzip,
    Bzip2,
    Xz,
    Lzma,
    Tar,
    Cpio,
    Ar,
    SevenZip,
    Cab,
    Tnef,
    Rar,
    /// A container format we know but do not open: the part is marked undecipherable.
    Unsupported(&'static str),
}

/// The kind of container a part is, from its detected types and declared MIME type.
pub fn kind_of(types: &[String], mime_type: Option<&str>, data: &PartData) -> Option<Kind> {
    if mime_type == Some("message/rfc822") {
        return Some(Kind::Mail);
    }
    let first = types.first().map(String::as_str)?;
    Some(match first {
        "mail" => Kind::Mail,
        "zip" | "docx" | "xlsx" | "pptx" | "jar" | "apk" | "odf" => Kind::Zip,
        "gz" => Kind::Gzip,
        "bz2" => Kind::Bzip2,
        "xz" => Kind::Xz,
        "tar" => Kind::Tar,
        "cpio" => Kind::Cpio,
        "ar" | "deb" => Kind::Ar,
        "7z" => Kind::SevenZip,
        "cab" => Kind::Cab,
        #[cfg(feature = "rar")]
        "rar" => Kind::Rar,
        #[cfg(not(feature = "rar"))]
        "rar" => Kind::Unsupported("rar (built without the rar feature)"),
        "tnef" => Kind::Tnef,
        "arj" => Kind::Unsupported("arj"),
        "lzma" => Kind::Lzma,
        "lz" => Kind::Unsupported("lzip"),
        "zst" => Kind::Unsupported("zstd"),
        "chm" => Kind::Unsupported("chm"),
        "hqx" => Kind::Unsupported("binhex"),
        "szdd" => Kind::Unsupported("szdd"),
        "txt" | "html" | "asc" => {
            let worth_a_look = match data {
                PartData::Memory(v) => {
                    memchr::memmem::find(v, b"begin ").is_some()
                        || memchr::memmem::find(v, b";base64,").is_some()
                }
                PartData::File(_) => true,
            };
            if worth_a_look {
                Kind::Embedded
            } else {
                return None;
            }
        }
        _ => return None,
    })
}

/// Opens part `idx` (whose bytes are `data`, taken out of the part meanwhile) as `kind`.
pub fn open(kind: Kind, ctx: &mut Ctx<'_>, idx: usize, data: &PartData) -> Result<(), String> {
    let mut reader = data
        .reader()
        .map_err(|e| format!("cannot read part: {e}"))?;
    match kind {
        Kind::Mail | Kind::Embedded => {
            let bytes = match data.as_slice() {
                Some(b) => std::borrow::Cow::Borrowed(b),
                None => std::borrow::Cow::Owned(data.to_vec().map_err(|e| e.to_string())?),
            };
            if kind == Kind::Mail {
                super::mime::walk(ctx, &bytes, Some(idx));
                return Ok(());
            }
            let max = ctx.limits.max_files;
            for block in super::uuencode::blocks(&bytes, max) {
                ctx.add_entry(idx, Some(block.name), &mut block.data.as_slice());
            }
            for uri in super::data_uri::find(&bytes, max) {
                let mut src = uri.data.as_slice();
                ctx.add(super::ctx::NewPart {
                    parent: Some(idx),
                    name: None,
                    mime_type: Some(uri.media_type),
                    compressed_size: None,
                    encrypted: false,
                    src: &mut src,
                });
            }
            Ok(())
        }
        Kind::Zip => zip::open(ctx, idx, &mut reader),
        Kind::Gzip | Kind::Bzip2 | Kind::Xz | Kind::Lzma => {
            stream::open(kind, ctx, idx, &mut reader)
        }
        Kind::Tar => tar::open(ctx, idx, &mut reader),
        Kind::Cpio => cpio::open(ctx, idx, &mut reader),
        Kind::Ar => ar::open(ctx, idx, &mut reader),
        Kind::SevenZip => sevenz::open(ctx, idx, &mut reader),
        Kind::Cab => cab::open(ctx, idx, &mut reader),
        Kind::Tnef => tnef::open(ctx, idx, &mut reader),
        #[cfg(feature = "rar")]
        Kind::Rar => rar::open(ctx, idx, data),
        #[cfg(not(feature = "rar"))]
        Kind::Rar => Err("rar: built without the rar feature".into()),
        Kind::Unsupported(what) => Err(format!("{what}: this container format is not decoded")),
    }
}
