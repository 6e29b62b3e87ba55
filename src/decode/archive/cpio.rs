//! cpio in its four forms: new ASCII (`070701`, `070702`), old ASCII (`070707`) and old binary
//! in either byte order. Hand-written: no maintained crate reads all four (crates.md lists
//! none), and the headers are fixed-size records.

use super::super::ctx::Ctx;
use super::super::part::ReadSeek;
use std::io::{self, Read};

struct Entry {
    name: String,
    size: u64,
    regular: bool,
    /// Padding after the name and after the data, as a multiple.
    align: u64,
    header_and_name: u64,
}

pub fn open(ctx: &mut Ctx<'_>, idx: usize, reader: &mut dyn ReadSeek) -> Result<(), String> {
    let mut count = 0;
    while let Some(e) = header(reader).map_err(|e| format!("cpio: {e}"))? {
        if e.name == "TRAILER!!!" {
            break;
        }
        skip(reader, pad(e.header_and_name, e.align)).map_err(|e| format!("cpio: {e}"))?;
        let mut data = (&mut *reader).take(e.size);
        if e.regular && ctx.room_for(Some(idx)) {
            ctx.add_entry(idx, Some(e.name), &mut data);
        }
        // Whatever the part did not read (a limit), skip to the next header.
        io::copy(&mut data, &mut io::sink()).map_err(|e| format!("cpio: {e}"))?;
        skip(reader, pad(e.size, e.align)).map_err(|e| format!("cpio: {e}"))?;
        count += 1;
        if count > ctx.limits.max_files {
            break;
        }
    }
    Ok(())
}

fn pad(n: u64, align: u64) -> u64 {
    (align - n % align) % align
}

fn skip(r: &mut dyn Read, n: u64) -> io::Result<()> {
    io::copy(&mut r.take(n), &mut io::sink()).map(|_| ())
}

fn field(b: &[u8], radix: u32) -> io::Result<u64> {
    let s = std::str::from_utf8(b).map_err(|_| io::Error::other("bad header field"))?;
    u64::from_str_radix(s, radix).map_err(|_| io::Error::other("bad header field"))
}

fn read_name(r: &mut dyn Read, len: u64) -> io::Result<String> {
    if len > 4096 {
        return Err(io::Error::other("name too long"));
    }
    let mut name = vec![0u8; len as usize];
    r.read_exact(&mut name)?;
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Ok(String::from_utf8_lossy(&name[..end]).into_owned())
}

fn header(r: &mut dyn Read) -> io::Result<Option<Entry>> {
    let mut magic = [0u8; 6];
    match r.read_exact(&mut magic[..2]) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let reg = |mode: u64| mode & 0o170000 == 0o100000;
    match magic[..2] {
        [0xc7, 0x71] | [0x71, 0xc7] => {
            let le = magic[0] == 0xc7;
            let mut h = [0u8; 24];
            r.read_exact(&mut h)?;
            let w = |i: usize| {
                let b = [h[i * 2], h[i * 2 + 1]];
                u64::from(if le {
                    u16::from_le_bytes(b)
                } else {
                    u16::from_be_bytes(b)
                })
            };
            // dev ino mode uid gid nlink rdev mtime(2) namesize filesize(2)
            let (mode, namesize, size) = (w(2), w(9), (w(10) << 16) | w(11));
            let name = read_name(r, namesize)?;
            Ok(Some(Entry {
                name,
                size,
                regular: reg(mode),
                align: 2,
                header_and_name: 26 + namesize,
            }))
        }
        _ => {
            r.read_exact(&mut magic[2..])?;
            match &magic {
                b"070701" | b"070702" => {
                    let mut h = [0u8; 104];
                    r.read_exact(&mut h)?;
                    let f = |i: usize| field(&h[i * 8..i * 8 + 8], 16);
                    let (mode, size, namesize) = (f(1)?, f(6)?, f(11)?);
                    let name = read_name(r, namesize)?;
                    Ok(Some(Entry {
                        name,
                        size,
                        regular: reg(mode),
                        align: 4,
                        header_and_name: 110 + namesize,
                    }))
                }
                b"070707" => {
                    let mut h = [0u8; 70];
                    r.read_exact(&mut h)?;
                    let mode = field(&h[12..18], 8)?;
                    let namesize = field(&h[53..59], 8)?;
                    let size = field(&h[59..70], 8)?;
                    let name = read_name(r, namesize)?;
                    Ok(Some(Entry {
                        name,
                        size,
                        regular: reg(mode),
                        align: 1,
                        header_and_name: 76 + namesize,
                    }))
                }
                _ => Err(io::Error::other("not a cpio header")),
            }
        }
    }
}
