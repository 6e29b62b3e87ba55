//! The VBA source in a compound file's VBA storage: MS-OVBA's run-length compression undone,
//! and the `dir` stream read for each module's stream name and where its source starts.
//!
//! Written here: no maintained crate reads VBA projects without also writing them, and both
//! formats are small (MS-OVBA 2.4.1 and 2.3.4.2). Every length is checked against what is
//! there; a damaged project gives the source that could be read.

/// Decompresses a CompressedContainer (MS-OVBA 2.4.1.1.1) from `data`, stopping at `max`
/// bytes out. A damaged chunk ends the output there.
pub fn decompress(data: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    if data.first() != Some(&1) {
        return out;
    }
    let mut at = 1;
    while at + 2 <= data.len() && out.len() < max {
        let header = u16::from_le_bytes([data[at], data[at + 1]]);
        let size = usize::from(header & 0x0fff) + 3;
        let end = (at + size).min(data.len());
        let chunk = &data[at + 2..end];
        at = end;
        if header & 0x8000 == 0 {
            // A raw chunk: 4096 bytes as they are.
            out.extend_from_slice(&chunk[..chunk.len().min(4096)]);
        } else if !decompress_chunk(chunk, &mut out, max) {
            break;
        }
    }
    out.truncate(max);
    out
}

/// One compressed chunk's tokens appended to `out`; false when the chunk is damaged.
fn decompress_chunk(chunk: &[u8], out: &mut Vec<u8>, max: usize) -> bool {
    let start = out.len();
    let mut i = 0;
    while i < chunk.len() {
        let flags = chunk[i];
        i += 1;
        for bit in 0..8 {
            if i >= chunk.len() || out.len() >= max {
                return true;
            }
            if flags & (1 << bit) == 0 {
                out.push(chunk[i]);
                i += 1;
                continue;
            }
            let Some(&[lo, hi]) = chunk.get(i..i + 2) else {
                return false;
            };
            i += 2;
            let token = u16::from_le_bytes([lo, hi]);
            let done = out.len() - start;
            let mut bits = 4;
            while (1usize << bits) < done && bits < 12 {
                bits += 1;
            }
            let length = usize::from(token & (0xffff >> bits)) + 3;
            let offset = usize::from(token >> (16 - bits)) + 1;
            if offset > done {
                return false;
            }
            for _ in 0..length {
                out.push(out[out.len() - offset]);
            }
        }
    }
    true
}

/// The modules of a decompressed `dir` stream: each one's stream name and the offset of its
/// compressed source in that stream.
pub fn modules(dir: &[u8]) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    let mut name: Option<String> = None;
    let mut at = 0;
    while at + 6 <= dir.len() {
        let id = u16::from_le_bytes([dir[at], dir[at + 1]]);
        let size = u32::from_le_bytes([dir[at + 2], dir[at + 3], dir[at + 4], dir[at + 5]]);
        // PROJECTVERSION says 4 bytes and has 6 (MS-OVBA 2.3.4.2.1.11).
        let size = if id == 0x0009 { 6 } else { size as usize };
        let Some(body) = dir.get(at + 6..at + 6 + size) else {
            break;
        };
        at += 6 + size;
        match id {
            0x001a => name = Some(String::from_utf8_lossy(body).into_owned()),
            0x0031 if body.len() == 4 => {
                if let Some(n) = name.take() {
                    let offset = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
                    found.push((n, offset as usize));
                }
            }
            _ => {}
        }
    }
    found
}

/// Where compressed source seems to start in a module stream whose `dir` entry could not be
/// read: just before its first `Attribute` line, as every saved module begins with one.
pub fn guess_source_start(stream: &[u8]) -> Option<usize> {
    memchr::memmem::find(stream, b"\x00Attribut")
        .and_then(|at| at.checked_sub(3))
        .filter(|&at| stream[at] == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::fixtures::compress_literal;

    #[test]
    fn literal_chunks_round_trip() {
        let src: Vec<u8> = (0..10_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        assert!(decompress(&compress_literal(&src), usize::MAX) == src);
        assert_eq!(decompress(&compress_literal(&src), 100).len(), 100);
    }

    #[test]
    fn copy_tokens() {
        // MS-OVBA 3.2.1's example: "#aaabcdefaaaaghijaaaaaklaaamnopqaaaaaaaaaaaarstuvwxyzaaa"
        let compressed = [
            0x01, 0x2f, 0xb0, 0x00, 0x23, 0x61, 0x61, 0x61, 0x62, 0x63, 0x64, 0x65, 0x82, 0x66,
            0x00, 0x70, 0x61, 0x67, 0x68, 0x69, 0x6a, 0x01, 0x38, 0x08, 0x61, 0x6b, 0x6c, 0x00,
            0x30, 0x6d, 0x6e, 0x6f, 0x70, 0x06, 0x71, 0x02, 0x70, 0x04, 0x10, 0x72, 0x73, 0x74,
            0x75, 0x76, 0x10, 0x77, 0x78, 0x79, 0x7a, 0x00, 0x3c,
        ];
        assert_eq!(
            decompress(&compressed, usize::MAX),
            b"#aaabcdefaaaaghijaaaaaklaaamnopqaaaaaaaaaaaarstuvwxyzaaa"
        );
    }

    #[test]
    fn damaged_input_never_panics() {
        for data in [
            &[1u8, 0xff, 0xbf, 0x01, 0x00][..],
            &[1, 0x05, 0xb0, 0xff, 0xff, 0xff],
            &[1],
        ] {
            let _ = decompress(data, 1 << 20);
        }
        assert!(modules(&[0x1a, 0, 0xff, 0xff, 0xff, 0xff]).is_empty());
    }

    #[test]
    fn dir_records() {
        let mut dir = Vec::new();
        let rec = |dir: &mut Vec<u8>, id: u16, body: &[u8]| {
            dir.extend_from_slice(&id.to_le_bytes());
            dir.extend_from_slice(&(body.len() as u32).to_le_bytes());
            dir.extend_from_slice(body);
        };
        dir.extend_from_slice(&[0x09, 0, 4, 0, 0, 0, 1, 2, 3, 4, 5, 6]);
        rec(&mut dir, 0x19, b"Module1");
        rec(&mut dir, 0x1a, b"Module1");
        rec(&mut dir, 0x31, &7u32.to_le_bytes());
        assert_eq!(modules(&dir), vec![("Module1".to_string(), 7)]);
    }
}
