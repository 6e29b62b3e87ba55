//! What the rules would read from attachments: the text, links and macros `amavisd::extract`
//! finds in each file given (PDF, Office, OpenDocument), or the QR codes in an image, and
//! how long it took. `cargo run --release --example extract_file -- FILE...`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use amavisd::extract::{self, Limits};
use std::time::Instant;

fn main() {
    let limits = Limits::default();
    for path in std::env::args().skip(1) {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        let t = Instant::now();
        if extract::qr::is_image(&bytes) {
            let codes = extract::qr::decode(&bytes, &limits);
            println!("{path}: image, {:.2} ms, QR codes: {codes:?}", ms(t));
            continue;
        }
        match extract::extract(&bytes, &limits) {
            None => println!("{path}: not a document we read"),
            Some(x) => {
                println!(
                    "{path}: {}, {:.2} ms, {} bytes of text, truncated: {}\n  links: {:?}\n  macros: {:?}",
                    x.kind,
                    ms(t),
                    x.text.len(),
                    x.truncated,
                    x.uris,
                    x.macros
                );
                let head: String = x.text.chars().take(600).collect();
                println!("  text: {head:?}");
            }
        }
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
