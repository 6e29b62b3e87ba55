//! Single-stream compressors: gzip, bzip2, xz, lzma (the "alone" format). The one child is named after the container
//! without its suffix (`report.pdf.gz` -> `report.pdf`). A stream that never ends is cut by
//! the part size, ratio and quota limits like any other.

use super::super::ctx::{Ctx, NewPart};
use super::super::part::ReadSeek;
use super::Kind;
use std::io::Read;

pub fn open(
    kind: Kind,
    ctx: &mut Ctx<'_>,
    idx: usize,
    reader: &mut dyn ReadSeek,
) -> Result<(), String> {
    let compressed = ctx.parts[idx].size;
    let (suffixes, mut decoder): (&[&str], Box<dyn Read + '_>) = match kind {
        Kind::Gzip => (
            &[".gz", ".tgz", ".z"],
            Box::new(flate2::read::MultiGzDecoder::new(reader)),
        ),
        Kind::Bzip2 => (
            &[".bz2", ".tbz", ".tbz2"],
            Box::new(bzip2::read::MultiBzDecoder::new(reader)),
        ),
        Kind::Xz => (
            &[".xz", ".txz"],
            // 64 MiB of dictionary at most: more is a memory bomb, not a mail attachment.
            Box::new(lzma_rust2::XzReader::new_mem_limit(reader, true, 64 * 1024)),
        ),
        Kind::Lzma => (
            &[".lzma", ".tlz"],
            Box::new(
                lzma_rust2::LzmaReader::new_mem_limit(reader, 64 * 1024, None)
                    .map_err(|e| format!("lzma: {e}"))?,
            ),
        ),
        _ => return Err("not a compressed stream".into()),
    };
    let name = ctx.parts[idx].name.as_deref().map(|n| {
        let lower = n.to_ascii_lowercase();
        let cut = suffixes
            .iter()
            .find(|s| lower.ends_with(*s))
            .map_or(0, |s| s.len());
        let stem = &n[..n.len() - cut];
        if [".tgz", ".tbz", ".txz", ".tlz"]
            .iter()
            .any(|s| lower.ends_with(s))
        {
            format!("{stem}.tar")
        } else {
            stem.to_string()
        }
    });
    let before = ctx.parts.len();
    ctx.add(NewPart {
        parent: Some(idx),
        name,
        mime_type: None,
        compressed_size: Some(compressed),
        encrypted: false,
        src: &mut decoder,
    });
    if ctx.parts.len() == before && ctx.parts[idx].undecipherable.is_some() {
        return Err(ctx.parts[idx].undecipherable.clone().unwrap_or_default());
    }
    Ok(())
}
