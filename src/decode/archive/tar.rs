//! tar (ustar, GNU, pax). Entries are read, never unpacked to disk; a header declaring a huge
//! size only makes the read stop at the end of the real data or at the part limit.

use super::super::ctx::Ctx;
use super::super::part::ReadSeek;

pub fn open(ctx: &mut Ctx<'_>, idx: usize, reader: &mut dyn ReadSeek) -> Result<(), String> {
    let mut archive = ::tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| format!("tar: {e}"))?;
    for entry in entries {
        if !ctx.room_for(Some(idx)) {
            break;
        }
        let mut entry = entry.map_err(|e| format!("tar: {e}"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        ctx.add_entry(idx, Some(name), &mut entry);
    }
    Ok(())
}
