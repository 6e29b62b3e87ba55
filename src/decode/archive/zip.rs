//! zip (and the formats built on it: docx, jar, odf ...), zip64 included. The entry count and
//! sizes in the central directory are not trusted: each entry is read through the limits, and
//! MAXFILES stops an archive of a hundred thousand entries.

use super::super::ctx::{Ctx, NewPart};
use super::super::part::ReadSeek;

pub fn open(ctx: &mut Ctx<'_>, idx: usize, reader: &mut dyn ReadSeek) -> Result<(), String> {
    let mut archive = ::zip::ZipArchive::new(reader).map_err(|e| format!("zip: {e}"))?;
    let mut failed = None;
    for i in 0..archive.len() {
        if !ctx.room_for(Some(idx)) {
            break;
        }
        let (name, encrypted, compressed, is_dir) = match archive.by_index_raw(i) {
            Ok(f) => (
                f.name().map(|n| n.to_string()).unwrap_or_default(),
                f.encrypted(),
                f.compressed_size(),
                f.is_dir(),
            ),
            Err(e) => {
                failed.get_or_insert(format!("zip entry {i}: {e}"));
                continue;
            }
        };
        if is_dir {
            continue;
        }
        if encrypted {
            ctx.add_encrypted(idx, name, "encrypted zip entry");
            continue;
        }
        match archive.by_index(i) {
            Ok(mut f) => {
                ctx.add(NewPart {
                    parent: Some(idx),
                    name: Some(name),
                    mime_type: None,
                    compressed_size: Some(compressed),
                    encrypted: false,
                    src: &mut f,
                });
            }
            Err(e) => {
                failed.get_or_insert(format!("zip entry {name:?}: {e}"));
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
