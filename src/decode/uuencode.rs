//! uuencoded blocks inside text bodies (`begin 644 name` ... `end`), which mail clients still
//! decode and show as attachments.

/// One block: its declared name and decoded bytes.
pub struct Block {
    pub name: String,
    pub data: Vec<u8>,
}

/// Finds and decodes every block in `text` (at most `max_blocks`).
pub fn blocks(text: &[u8], max_blocks: usize) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = text
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    while out.len() < max_blocks {
        let Some(line) = lines.next() else { break };
        let Some(rest) = line.strip_prefix(b"begin ") else {
            continue;
        };
        let mut words = rest.splitn(2, |&b| b == b' ');
        let mode = words.next().unwrap_or(b"");
        let name = words.next().unwrap_or(b"");
        if mode.is_empty() || !mode.iter().all(|b| (b'0'..=b'7').contains(b)) || name.is_empty() {
            continue;
        }
        let mut data = Vec::new();
        // A "`" or empty line carries no bytes; decode_line handles both.
        for l in lines.by_ref() {
            if l == b"end" {
                break;
            }
            decode_line(l, &mut data);
        }
        out.push(Block {
            name: String::from_utf8_lossy(name).trim().to_string(),
            data,
        });
    }
    out
}

fn decode_line(l: &[u8], out: &mut Vec<u8>) {
    let Some(&first) = l.first() else { return };
    let n = usize::from(first.wrapping_sub(b' ') & 0x3f);
    let v = |c: u8| u32::from(c.wrapping_sub(b' ') & 0x3f);
    let mut produced = 0;
    for chunk in l[1..].chunks(4) {
        if produced >= n {
            break;
        }
        let c = |i: usize| chunk.get(i).copied().map_or(0, v);
        let w = (c(0) << 18) | (c(1) << 12) | (c(2) << 6) | c(3);
        for shift in [16, 8, 0] {
            if produced < n {
                out.push((w >> shift) as u8);
                produced += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_block() {
        // "Cat" uuencoded.
        let text = b"hello\r\nbegin 644 cat.txt\r\n#0V%T\r\n`\r\nend\r\nbye\r\n";
        let b = blocks(text, 10);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].name, "cat.txt");
        assert_eq!(b[0].data, b"Cat");
        assert!(blocks(b"begin with words\r\n", 10).is_empty());
    }
}
