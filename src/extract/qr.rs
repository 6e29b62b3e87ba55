//! QR codes in images: the links they carry (the "quishing" that hides a phishing link from
//! every text rule). PNG, JPEG and GIF are decoded to grey within a pixel limit, large images
//! are shrunk before the search (a QR code in a photo or screenshot keeps modules of several
//! pixels), and `rqrr` finds and decodes the codes.

use super::Limits;
use std::io::Cursor;
use std::num::NonZeroU64;

/// Longest side searched; larger images are shrunk to it (the search's cost grows with the
/// pixels, and a readable code survives the shrinking).
const SEARCH_SIDE: usize = 1200;
/// Codes decoded from one image, at most.
const MAX_CODES: usize = 8;

/// A grey image, one byte a pixel.
struct Grey {
    w: usize,
    h: usize,
    pixels: Vec<u8>,
}

/// The text of every QR code in the image `bytes` (PNG, JPEG or GIF, by signature).
pub fn decode(bytes: &[u8], limits: &Limits) -> Vec<String> {
    if bytes.len() > limits.max_input {
        return Vec::new();
    }
    crate::catch_panic::catch(|| {
        let grey = if bytes.starts_with(b"\x89PNG") {
            png_grey(bytes, limits.max_pixels)
        } else if bytes.starts_with(&[0xff, 0xd8]) {
            jpeg_grey(bytes, limits.max_pixels)
        } else if bytes.starts_with(b"GIF8") {
            gif_grey(bytes, limits.max_pixels)
        } else {
            None
        };
        grey.map(|g| codes(&shrink(g))).unwrap_or_default()
    })
    .unwrap_or_default()
}

/// Whether `bytes` is an image [`decode`] reads.
pub fn is_image(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x89PNG") || bytes.starts_with(&[0xff, 0xd8]) || bytes.starts_with(b"GIF8")
}

fn codes(g: &Grey) -> Vec<String> {
    let mut img =
        rqrr::PreparedImage::prepare_from_greyscale(g.w, g.h, |x, y| g.pixels[y * g.w + x]);
    img.detect_grids()
        .into_iter()
        .take(MAX_CODES)
        .filter_map(|grid| grid.decode().ok().map(|(_, text)| text))
        .collect()
}

fn within(w: usize, h: usize, max_pixels: u64) -> bool {
    w > 0 && h > 0 && (w as u64).saturating_mul(h as u64) <= max_pixels
}

/// Luma of 8-bit samples with `channels` per pixel (grey, grey+alpha, RGB, RGBA); a
/// transparent pixel counts as white, as a mail client shows it on a white page.
fn luma(samples: &[u8], channels: usize) -> Vec<u8> {
    samples
        .chunks_exact(channels.max(1))
        .map(|p| {
            let (v, alpha) = match channels {
                1 => (u32::from(p[0]), 255),
                2 => (u32::from(p[0]), u32::from(p[1])),
                3 => (rgb(p), 255),
                _ => (rgb(p), u32::from(p[3])),
            };
            ((v * alpha + 255 * (255 - alpha)) / 255) as u8
        })
        .collect()
}

fn rgb(p: &[u8]) -> u32 {
    (299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2])) / 1000
}

fn png_grey(bytes: &[u8], max_pixels: u64) -> Option<Grey> {
    let limits = png::Limits {
        bytes: usize::try_from(max_pixels.saturating_mul(8)).unwrap_or(usize::MAX),
    };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), limits);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().ok()?;
    let (w, h) = reader.info().size();
    let (w, h) = (w as usize, h as usize);
    if !within(w, h, max_pixels) {
        return None;
    }
    let mut buf = vec![0; reader.output_buffer_size()?];
    let info = reader.next_frame(&mut buf).ok()?;
    let channels = info.color_type.samples();
    let pixels = luma(&buf[..info.buffer_size()], channels);
    (pixels.len() == w * h).then_some(Grey { w, h, pixels })
}

fn jpeg_grey(bytes: &[u8], max_pixels: u64) -> Option<Grey> {
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let side = usize::try_from(max_pixels)
        .unwrap_or(usize::MAX)
        .min(1 << 16);
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::Luma)
        .set_max_width(side)
        .set_max_height(side);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(bytes, options);
    decoder.decode_headers().ok()?;
    let (w, h) = decoder.dimensions()?;
    if !within(w, h, max_pixels) {
        return None;
    }
    let pixels = decoder.decode().ok()?;
    (pixels.len() == w * h).then_some(Grey { w, h, pixels })
}

fn gif_grey(bytes: &[u8], max_pixels: u64) -> Option<Grey> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    options.set_memory_limit(gif::MemoryLimit::Bytes(NonZeroU64::new(
        max_pixels.saturating_mul(4).max(1),
    )?));
    let mut decoder = options.read_info(Cursor::new(bytes)).ok()?;
    let (w, h) = (usize::from(decoder.width()), usize::from(decoder.height()));
    if !within(w, h, max_pixels) {
        return None;
    }
    // The first frame, placed on a white screen of the image's size.
    let frame = decoder.read_next_frame().ok()??;
    let mut pixels = vec![255u8; w * h];
    let frame_grey = luma(&frame.buffer, 4);
    let (fw, fh) = (usize::from(frame.width), usize::from(frame.height));
    let (left, top) = (usize::from(frame.left), usize::from(frame.top));
    for y in 0..fh.min(h.saturating_sub(top)) {
        for x in 0..fw.min(w.saturating_sub(left)) {
            pixels[(top + y) * w + left + x] = frame_grey[y * fw + x];
        }
    }
    Some(Grey { w, h, pixels })
}

/// The image shrunk by a whole factor (averaging each block) until its longer side is at
/// most [`SEARCH_SIDE`].
fn shrink(g: Grey) -> Grey {
    let k = g.w.max(g.h).div_ceil(SEARCH_SIDE);
    if k <= 1 {
        return g;
    }
    let (w, h) = (g.w / k, g.h / k);
    let mut pixels = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let mut sum = 0u32;
            for dy in 0..k {
                let row = (y * k + dy) * g.w;
                sum += g.pixels[row + x * k..row + x * k + k]
                    .iter()
                    .map(|&p| u32::from(p))
                    .sum::<u32>();
            }
            pixels.push((sum / (k * k) as u32) as u8);
        }
    }
    Grey { w, h, pixels }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_or_oversized_images_give_nothing() {
        // Reading real codes is tested in tests/extract.rs (the encoder is a dev-dependency).
        assert!(decode(b"\x89PNG\r\n\x1a\nbroken", &Limits::default()).is_empty());
        assert!(decode(&[0xff, 0xd8, 0xff, 0xe0, 0, 0], &Limits::default()).is_empty());
        assert!(decode(b"GIF89a\x01", &Limits::default()).is_empty());
        let grey = Grey {
            w: 2400,
            h: 1200,
            pixels: vec![7; 2400 * 1200],
        };
        let small = shrink(grey);
        assert_eq!((small.w, small.h, small.pixels[0]), (1200, 600, 7));
    }
}
