//! TNEF (winmail.dat): Outlook's wrapper around attachments. The stream is a run of attributes
//! (level, id, length, data, checksum); each attachment starts with `attAttachRendData`, is
//! named by `attAttachTitle` and carries its bytes in `attAttachData`. Hand-written: the only
//! crate (`tnef` 0.1, 2019) is unmaintained, and the record format is small. The long file
//! name inside the MAPI properties (`attAttachment`) is not read: the 8.3 title is used.

use super::super::ctx::Ctx;
use super::super::part::ReadSeek;
use std::io::{self, Read};

const SIGNATURE: u32 = 0x223E_9F78;
const ATT_ATTACH_REND_DATA: u32 = 0x0006_9002;
const ATT_ATTACH_TITLE: u32 = 0x0001_8010;
const ATT_ATTACH_DATA: u32 = 0x0006_800F;

fn u32_le(r: &mut dyn Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

pub fn open(ctx: &mut Ctx<'_>, idx: usize, reader: &mut dyn ReadSeek) -> Result<(), String> {
    let err = |e: io::Error| format!("tnef: {e}");
    if u32_le(reader).map_err(err)? != SIGNATURE {
        return Err("tnef: bad signature".into());
    }
    let mut key = [0u8; 2];
    reader.read_exact(&mut key).map_err(err)?;
    let mut title: Option<String> = None;
    // The part of the current attachment, to name it when its title comes after its data.
    let mut current: Option<usize> = None;
    loop {
        let mut level = [0u8; 1];
        match reader.read_exact(&mut level) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(err(e)),
        }
        // Writers leave stray bytes (a newline) after the last attribute: a tail too short
        // for an attribute header ends the stream.
        let (id, len) = match (u32_le(reader), u32_le(reader)) {
            (Ok(id), Ok(len)) => (id, u64::from(len)),
            (Err(e), _) | (_, Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            (Err(e), _) | (_, Err(e)) => return Err(err(e)),
        };
        let mut data = (&mut *reader).take(len);
        match id {
            ATT_ATTACH_REND_DATA => {
                title = None;
                current = None;
            }
            ATT_ATTACH_TITLE => {
                let mut t = Vec::new();
                (&mut data).take(4096).read_to_end(&mut t).map_err(err)?;
                let end = t.iter().position(|&b| b == 0).unwrap_or(t.len());
                let name = String::from_utf8_lossy(&t[..end]).into_owned();
                if let Some(p) = current
                    && ctx.parts[p].name.is_none()
                {
                    ctx.parts[p].name = Some(name.clone());
                }
                title = Some(name);
            }
            ATT_ATTACH_DATA => {
                if !ctx.room_for(Some(idx)) {
                    break;
                }
                current = ctx.add_entry(idx, title.clone(), &mut data);
            }
            _ => {}
        }
        // Skip what was not read (a limit, or an attribute we ignore), then the checksum.
        io::copy(&mut data, &mut io::sink()).map_err(err)?;
        if data.limit() > 0 {
            return Err("tnef: truncated attribute".into());
        }
        let mut checksum = [0u8; 2];
        reader.read_exact(&mut checksum).map_err(err)?;
    }
    Ok(())
}
