//! 7z, through sevenz-rust2 (pure Rust). An encrypted archive cannot be listed without the
//! password: it is reported as encrypted.

use super::super::ctx::Ctx;
use super::super::part::ReadSeek;
use sevenz_rust2::{ArchiveReader, Password};

pub fn open(ctx: &mut Ctx<'_>, idx: usize, reader: &mut dyn ReadSeek) -> Result<(), String> {
    let mut archive = match ArchiveReader::new(reader, Password::empty()) {
        Ok(a) => a,
        Err(e) => {
            let msg = e.to_string();
            if msg.to_ascii_lowercase().contains("password") {
                ctx.parts[idx].encrypted = true;
                ctx.encrypted("encrypted 7z archive");
            }
            return Err(format!("7z: {msg}"));
        }
    };
    let result = archive.for_each_entries(|entry, data| {
        if entry.is_directory || !entry.has_stream {
            return Ok(true);
        }
        if !ctx.room_for(Some(idx)) {
            return Ok(false);
        }
        ctx.add_entry(idx, Some(entry.name.clone()), data);
        Ok(true)
    });
    result.map_err(|e| {
        let msg = e.to_string();
        if msg.to_ascii_lowercase().contains("password") {
            ctx.parts[idx].encrypted = true;
            ctx.encrypted("encrypted 7z archive");
        }
        format!("7z: {msg}")
    })
}
