//! The text and links of a PDF, read the way a spam filter must read one: tolerantly and
//! within limits.
//!
//! Written here rather than with `lopdf`/`pdf-extract`: those build the whole object graph
//! (recursing without a depth bound on nested arrays), inflate streams without a cap and
//! refuse files with a broken cross-reference table, which spam often has. This is one
//! linear scan, as rspamd reads PDFs: every `stream` found by its keyword (the `/Length` is
//! not trusted), Flate streams inflated within the part's budget, text taken from the text
//! operators of content streams, links from `/URI` entries wherever they are (object streams
//! included). Fonts' `/ToUnicode` maps are applied where the content names the font.

mod cmap;
mod content;

use super::{Extracted, Limits};
use std::collections::HashMap;
use std::io::Read;

/// How far back from `stream` the start of its object is looked for.
const DICT_LOOKBACK: usize = 16 * 1024;
/// Streams read from one file, at most (a real document has hundreds to a few thousand).
const MAX_STREAMS: usize = 20_000;
/// Bytes of a link string read, at most.
const MAX_URI: usize = 8 * 1024;

/// Whether `bytes` is a PDF: its header within the first KiB (readers skip junk before it).
pub fn is_pdf(bytes: &[u8]) -> bool {
    memchr::memmem::find(&bytes[..bytes.len().min(1024)], b"%PDF-").is_some()
}

/// One stream: its dictionary's text and its raw data.
struct Stream<'a> {
    /// The object number, when the stream's `N G obj` header was found.
    number: Option<u32>,
    dict: &'a [u8],
    data: &'a [u8],
}

/// Every stream of the file, in file order.
fn streams(bytes: &[u8]) -> Vec<Stream<'_>> {
    let mut found = Vec::new();
    // Nothing before the end of the previous stream is looked at again: every byte is read a
    // bounded number of times, however many `stream` words a hostile file holds.
    let mut floor = 0;
    let mut from = 0;
    while let Some(at) = memchr::memmem::find(&bytes[from..], b"stream").map(|p| p + from) {
        from = at + 6;
        if found.len() >= MAX_STREAMS {
            break;
        }
        let before = trim_end(&bytes[floor..at]);
        if !before.ends_with(b">>") {
            continue; // `endstream`, or the word in a string.
        }
        let mut start = at + 6;
        if bytes.get(start) == Some(&b'\r') {
            start += 1;
        }
        if bytes.get(start) == Some(&b'\n') {
            start += 1;
        }
        let end =
            memchr::memmem::find(&bytes[start..], b"endstream").map_or(bytes.len(), |e| e + start);
        let look_from = at.saturating_sub(DICT_LOOKBACK).max(floor);
        let lookback = &bytes[look_from..at];
        let obj = memchr::memmem::rfind(lookback, b"obj").map(|o| look_from + o);
        let dict_start = obj.map_or(look_from, |o| o + 3);
        found.push(Stream {
            number: obj.and_then(|o| object_number(&bytes[look_from..o])),
            dict: &bytes[dict_start..at],
            data: &bytes[start..end],
        });
        from = end;
        floor = end;
    }
    found
}

/// The object number of `N G obj`, given the bytes up to `obj`.
fn object_number(before: &[u8]) -> Option<u32> {
    // `N G ` is a few bytes; looking no further bounds the cost of a long word before `obj`.
    let before = &before[before.len().saturating_sub(64)..];
    let mut words = trim_end(before)
        .rsplit(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    let _generation = words.next()?;
    std::str::from_utf8(words.next()?).ok()?.parse().ok()
}

fn trim_end(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    &b[..n]
}

/// Whether a dictionary has the name `/name` (not as the prefix of a longer name).
fn has_name(dict: &[u8], name: &[u8]) -> bool {
    memchr::memmem::find_iter(dict, name).any(|at| {
        dict.get(at + name.len())
            .is_none_or(|c| !c.is_ascii_alphanumeric())
    })
}

/// A stream's data decoded, within `budget` bytes out; `None` for filters we do not read
/// (images, fonts, LZW ...).
fn decode(s: &Stream<'_>, budget: &mut usize, truncated: &mut bool) -> Option<Vec<u8>> {
    let flate = has_name(s.dict, b"/FlateDecode") || has_name(s.dict, b"/Fl");
    let other = [
        &b"/DCTDecode"[..],
        b"/JPXDecode",
        b"/LZWDecode",
        b"/CCITTFaxDecode",
        b"/JBIG2Decode",
        b"/RunLengthDecode",
        b"/ASCII85Decode",
        b"/ASCIIHexDecode",
        b"/Crypt",
    ];
    if other.iter().any(|f| has_name(s.dict, f)) || has_name(s.dict, b"/Image") {
        return None;
    }
    if !flate {
        return Some(s.data.to_vec());
    }
    let mut out = Vec::new();
    let mut z = flate2::read::ZlibDecoder::new(s.data).take(*budget as u64 + 1);
    let mut buf = [0u8; 16 * 1024];
    // A damaged stream keeps what inflated before the damage.
    while let Ok(n) = z.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    if out.len() > *budget {
        out.truncate(*budget);
        *truncated = true;
    }
    *budget -= out.len();
    Some(out)
}

/// The text and links of a PDF.
pub fn extract(bytes: &[u8], limits: &Limits) -> Extracted {
    let mut out = Extracted {
        kind: "pdf",
        ..Extracted::default()
    };
    collect_uris(bytes, &mut out.uris);
    let deadline = std::time::Instant::now() + limits.time_budget;
    let mut budget = limits.max_inflated;
    let mut decoded: Vec<(Option<u32>, &[u8], Vec<u8>)> = Vec::new();
    for s in streams(bytes) {
        if budget == 0 || std::time::Instant::now() > deadline {
            out.truncated = true;
            break;
        }
        if has_name(s.dict, b"/XRef") || has_name(s.dict, b"/Metadata") {
            continue;
        }
        if let Some(d) = decode(&s, &mut budget, &mut out.truncated) {
            decoded.push((s.number, s.dict, d));
        }
    }
    // Object streams hold the small objects of newer files: links and font dictionaries.
    let mut objects: Vec<u8> = bytes.to_vec();
    for (_, dict, d) in &decoded {
        if has_name(dict, b"/ObjStm") {
            collect_uris(d, &mut out.uris);
            objects.extend(numbered_objects(dict, d));
        }
    }
    let fonts = cmap::font_maps(&objects, &decoded);
    let mut text = content::Text::new(limits.max_text, &fonts);
    for (_, dict, d) in &decoded {
        if has_name(dict, b"/ObjStm") || cmap::is_cmap(d) || !content::looks_like_content(d) {
            continue;
        }
        if !text.read(d) {
            out.truncated = true;
            break;
        }
    }
    out.text = text.finish();
    out.uris.retain(|u| super::is_link(u));
    out.uris.dedup();
    out
}

/// The targets of `/URI (...)` and `/URI <...>` entries in `data`.
fn collect_uris(data: &[u8], uris: &mut Vec<String>) {
    for at in memchr::memmem::find_iter(data, b"/URI") {
        let rest = &data[at + 4..];
        let rest = &rest[rest
            .iter()
            .position(|c| !c.is_ascii_whitespace())
            .unwrap_or(rest.len())..];
        // Cut, so that many unclosed strings cost a bounded read each.
        let rest = &rest[..rest.len().min(MAX_URI)];
        let value = match rest.first() {
            Some(b'(') => content::literal_string(rest).0,
            Some(b'<') => content::hex_string(rest).0,
            _ => continue,
        };
        let s = content::pdf_text_string(&value);
        if uris.len() >= 1000 {
            break;
        }
        if !s.is_empty() {
            uris.push(s);
        }
    }
}

/// The objects of an object stream written out as `N 0 obj ... endobj`, so that they are
/// found as the file's other objects are. Its header lists `number offset` pairs; `/First`
/// is where the first object starts.
fn numbered_objects(dict: &[u8], data: &[u8]) -> Vec<u8> {
    let first = memchr::memmem::find(dict, b"/First")
        .and_then(|at| {
            let rest = dict[at + 6..].trim_ascii_start();
            let n = rest
                .iter()
                .position(|c| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            std::str::from_utf8(&rest[..n]).ok()?.parse::<usize>().ok()
        })
        .filter(|&f| f <= data.len());
    let Some(first) = first else {
        return Vec::new();
    };
    let numbers: Vec<usize> = String::from_utf8_lossy(&data[..first])
        .split_ascii_whitespace()
        .map_while(|w| w.parse().ok())
        .take(20_000)
        .collect();
    let pairs: Vec<(usize, usize)> = numbers.chunks_exact(2).map(|p| (p[0], p[1])).collect();
    let mut out = Vec::new();
    for (k, &(number, offset)) in pairs.iter().enumerate() {
        // Offsets out of order could name the whole stream again and again.
        if out.len() > 2 * data.len() + (1 << 20) {
            break;
        }
        let start = first.saturating_add(offset).min(data.len());
        let end = pairs.get(k + 1).map_or(data.len(), |&(_, o)| {
            first.saturating_add(o).min(data.len())
        });
        out.extend_from_slice(format!("\n{number} 0 obj ").as_bytes());
        out.extend_from_slice(&data[start..end.max(start)]);
        out.extend_from_slice(b" endobj\n");
    }
    out
}

/// Maps font resource names (`/F1`) to character maps: kept apart from `cmap` so that the
/// content reader takes only what it needs.
pub type FontMaps = HashMap<Vec<u8>, cmap::CMap>;

#[cfg(test)]
mod tests {
    use super::*;

    fn pdf_with(content: &[u8]) -> Vec<u8> {
        crate::extract::fixtures::pdf_with(content, "https://login.bank.example/verify").unwrap()
    }

    #[test]
    fn text_and_links() {
        let pdf = pdf_with(b"BT /F1 12 Tf 72 712 Td (Your account is) Tj ( suspended) Tj 0 -14 Td [(Cl) -20 (ick) -300 (below)] TJ ET");
        let got = extract(&pdf, &Limits::default());
        assert_eq!(got.kind, "pdf");
        assert_eq!(got.text, "Your account is suspended\nClick below\n");
        assert_eq!(got.uris, vec!["https://login.bank.example/verify"]);
        assert!(!got.truncated);
    }

    #[test]
    fn a_flate_bomb_stops_at_the_budget() {
        let mut content = b"BT (".to_vec();
        content.extend(std::iter::repeat_n(b'A', 4 << 20));
        content.extend_from_slice(b") Tj ET");
        let limits = Limits {
            max_inflated: 1 << 20,
            max_text: 1000,
            ..Limits::default()
        };
        let got = extract(&pdf_with(&content), &limits);
        assert!(got.truncated);
        assert!(got.text.len() <= 1000);
    }

    /// Shapes that would make a naive scan quadratic: each is 1-2 MB of one repeated
    /// construct, read in milliseconds when every byte is read a bounded number of times
    /// (hours otherwise, which the test run's timeout would show).
    #[test]
    fn repeated_constructs_cost_linear_time() {
        let limits = Limits::default();
        let many_streams = b"%PDF-1.4\n"
            .iter()
            .chain(b">>stream\n".repeat(200_000).iter())
            .copied()
            .collect::<Vec<u8>>();
        let _ = extract(&many_streams, &limits);
        let mut objs = b"%PDF-1.4\n1 0 obj << >>\nstream\nbegincmap 1 beginbfchar <01> <0041> endbfchar\nendstream\n".to_vec();
        objs.extend(b"1 0 obj ".repeat(200_000));
        let _ = extract(&objs, &limits);
        let mut uris = b"%PDF-1.4\n".to_vec();
        uris.extend(b"/URI (http://a".repeat(100_000));
        assert!(extract(&uris, &limits).uris.len() <= 1000);
        let ranges = format!(
            "beginbfrange {} endbfrange",
            "<0000> <FFFF> <0041> ".repeat(50_000)
        );
        assert!(cmap::CMap::parse(ranges.as_bytes()).decode(&[0, 0]) == "A");
        // An object stream whose offsets jump back and forth names a bounded amount.
        let data = format!("{} {}", "1 0 2 100000 ".repeat(5000), "x".repeat(100_000));
        let first = data.find('x').unwrap();
        let out = numbered_objects(format!("/First {first}").as_bytes(), data.as_bytes());
        assert!(out.len() <= 2 * data.len() + (2 << 20), "{}", out.len());
    }

    #[test]
    fn damaged_files_give_what_they_have() {
        let pdf = pdf_with(b"BT (Pay now) Tj ET");
        for cut in [10, 200, 400, pdf.len() - 30] {
            let _ = extract(&pdf[..cut], &Limits::default());
        }
        let no_endstream = b"%PDF-1.3\n1 0 obj << >>\nstream\nBT (Hello) Tj ET";
        assert_eq!(extract(no_endstream, &Limits::default()).text, "Hello\n");
        assert!(!is_pdf(b"hello"));
    }
}
