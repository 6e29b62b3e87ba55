//! base64 `data:` URIs in HTML and text (`<a href="data:application/octet-stream;base64,...">`),
//! which a browser turns into a downloaded file: "HTML smuggling" hides executables this way.

use super::transfer;

/// One embedded object: its declared media type and decoded bytes.
pub struct DataUri {
    pub media_type: String,
    pub data: Vec<u8>,
}

/// Finds and decodes base64 `data:` URIs in `text` (at most `max`).
pub fn find(text: &[u8], max: usize) -> Vec<DataUri> {
    let lower: Vec<u8> = text.iter().map(u8::to_ascii_lowercase).collect();
    let mut out = Vec::new();
    let mut from = 0;
    while out.len() < max {
        let Some(at) = memchr::memmem::find(&lower[from..], b"data:").map(|i| from + i) else {
            break;
        };
        from = at + 5;
        let Some(comma) = memchr::memchr(b',', &lower[from..(from + 200).min(lower.len())]) else {
            continue;
        };
        let header = &lower[from..from + comma];
        if !header.ends_with(b";base64") || header.iter().any(|b| b" \t\r\n\"'<>".contains(b)) {
            continue;
        }
        let start = from + comma + 1;
        let len = text[start..]
            .iter()
            .position(|b| b"\"')<>&".contains(b))
            .unwrap_or(text.len() - start);
        let (data, _) = transfer::base64(&text[start..start + len]);
        let media_type = String::from_utf8_lossy(&header[..header.len() - 7]).into_owned();
        out.push(DataUri { media_type, data });
        from = start + len;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_base64_uris() {
        let html = b"<a href=\"data:application/octet-stream;base64,aGVsbG8=\">x</a> data:text/plain,notbase64";
        let found = super::find(html, 10);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].media_type, "application/octet-stream");
        assert_eq!(found[0].data, b"hello");
    }
}
