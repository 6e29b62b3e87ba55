//! RAR 4 and 5, through the UnRAR library (the `rar` feature, on by default). UnRAR reads from
//! a path, so a part held in memory is written to a temporary file first; and it reads a whole
//! entry into memory, so an entry declaring more than `max_part_size` is not read at all (over
//! limits) rather than read and cut.

use super::super::ctx::Ctx;
use super::super::part::PartData;
use std::io::Write;

pub fn open(ctx: &mut Ctx<'_>, idx: usize, data: &PartData) -> Result<(), String> {
    let spilled;
    let path = match data {
        PartData::File(f) => f.path().to_path_buf(),
        PartData::Memory(v) => {
            let mut f = tempfile::Builder::new()
                .prefix(&crate::message::temp::prefix("rar"))
                .suffix(".rar")
                .tempfile_in(ctx.dir)
                .map_err(|e| format!("rar: temporary file: {e}"))?;
            f.write_all(v)
                .map_err(|e| format!("rar: temporary file: {e}"))?;
            spilled = f;
            spilled.path().to_path_buf()
        }
    };
    let mut archive = unrar::Archive::new(&path)
        .open_for_processing()
        .map_err(|e| format!("rar: {e}"))?;
    loop {
        let Some(header) = archive.read_header().map_err(|e| format!("rar: {e}"))? else {
            break;
        };
        let entry = header.entry();
        let name = entry.filename.to_string_lossy().into_owned();
        if entry.is_encrypted() {
            ctx.add_encrypted(idx, name, "encrypted rar entry");
            archive = header.skip().map_err(|e| format!("rar: {e}"))?;
            continue;
        }
        if !entry.is_file() {
            archive = header.skip().map_err(|e| format!("rar: {e}"))?;
            continue;
        }
        if !ctx.room_for(Some(idx)) {
            break;
        }
        if entry.unpacked_size > ctx.limits.max_part_size {
            ctx.over_limits(format!(
                "part larger than max_part_size ({})",
                ctx.limits.max_part_size
            ));
            archive = header.skip().map_err(|e| format!("rar: {e}"))?;
            continue;
        }
        let (bytes, next) = header
            .read()
            .map_err(|e| format!("rar entry {name:?}: {e}"))?;
        let mut src = bytes.as_slice();
        ctx.add_entry(idx, Some(name), &mut src);
        archive = next;
    }
    Ok(())
}
