//! Microsoft cabinet (MSZIP, LZX; Quantum is not supported by the crate and reported).

use super::super::ctx::Ctx;
use super::super::part::ReadSeek;

pub fn open(ctx: &mut Ctx<'_>, idx: usize, reader: &mut dyn ReadSeek) -> Result<(), String> {
    let mut cabinet = ::cab::Cabinet::new(reader).map_err(|e| format!("cab: {e}"))?;
    let names: Vec<String> = cabinet
        .folder_entries()
        .flat_map(|f| {
            f.file_entries()
                .map(|e| e.name().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut failed = None;
    for name in names {
        if !ctx.room_for(Some(idx)) {
            break;
        }
        match cabinet.read_file(&name) {
            Ok(mut r) => {
                ctx.add_entry(idx, Some(name), &mut r);
            }
            Err(e) => {
                failed.get_or_insert(format!("cab entry {name:?}: {e}"));
            }
        }
    }
    failed.map_or(Ok(()), Err)
}
