//! Unix ar archives (and .deb, which is one), with GNU and BSD long names. Hand-written: the
//! format is a 60-byte header per member, and crates.md names no reader for it.

use super::super::ctx::Ctx;
use super::super::part::ReadSeek;
use std::io::{self, Read};

pub fn open(ctx: &mut Ctx<'_>, idx: usize, reader: &mut dyn ReadSeek) -> Result<(), String> {
    let err = |e: io::Error| format!("ar: {e}");
    let mut magic = [0u8; 8];
    reader.read_exact(&mut magic).map_err(err)?;
    if &magic != b"!<arch>\n" {
        return Err("ar: bad magic".into());
    }
    let mut long_names: Vec<u8> = Vec::new();
    loop {
        let mut h = [0u8; 60];
        match reader.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(err(e)),
        }
        if &h[58..60] != b"`\n" {
            return Err("ar: bad member header".into());
        }
        let size: u64 = std::str::from_utf8(&h[48..58])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or("ar: bad member size")?;
        let raw_name = String::from_utf8_lossy(&h[..16]).trim_end().to_string();
        let mut data = (&mut *reader).take(size);
        let name = if raw_name == "//" {
            long_names.clear();
            (&mut data)
                .take(1 << 20)
                .read_to_end(&mut long_names)
                .map_err(err)?;
            None
        } else if raw_name == "/" || raw_name == "/SYM64/" || raw_name.starts_with("__.SYMDEF") {
            None
        } else if let Some(off) = raw_name
            .strip_prefix('/')
            .and_then(|n| n.parse::<usize>().ok())
        {
            let tail = long_names.get(off..).unwrap_or(&[]);
            let end = tail.iter().position(|&b| b == b'\n').unwrap_or(tail.len());
            Some(
                String::from_utf8_lossy(&tail[..end])
                    .trim_end_matches('/')
                    .to_string(),
            )
        } else if let Some(len) = raw_name
            .strip_prefix("#1/")
            .and_then(|n| n.parse::<u64>().ok())
        {
            let mut n = Vec::new();
            (&mut data)
                .take(len.min(4096))
                .read_to_end(&mut n)
                .map_err(err)?;
            Some(
                String::from_utf8_lossy(&n)
                    .trim_end_matches('\0')
                    .to_string(),
            )
        } else {
            Some(raw_name.trim_end_matches('/').to_string())
        };
        if let Some(name) = name {
            if !ctx.room_for(Some(idx)) {
                break;
            }
            ctx.add_entry(idx, Some(name), &mut data);
        }
        io::copy(&mut data, &mut io::sink()).map_err(err)?;
        if size % 2 == 1 {
            io::copy(&mut (&mut *reader).take(1), &mut io::sink()).map_err(err)?;
        }
    }
    Ok(())
}
