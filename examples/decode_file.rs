//! `cargo run --example decode_file -- FILE...`: prints the decoded tree of each file (a
//! message when it looks like one, else an attachment), for exploring formats by hand.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

fn main() {
    let limits = amavisd::decode::Limits::default();
    let tmp = std::env::temp_dir();
    for path in std::env::args().skip(1) {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        let name = std::path::Path::new(&path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let d = amavisd::decode::decode_file(&name, &bytes, &limits, &tmp);
        println!("== {path}");
        for p in &d.parts {
            println!(
                "  {} L={} {:?} {:?} T={:?} size={} sha256={}.. {}{}",
                p.id,
                p.level,
                p.name.as_deref().unwrap_or(""),
                p.mime_type.as_deref().unwrap_or(""),
                p.types,
                p.size,
                &p.digest[..12],
                if p.encrypted { "ENCRYPTED " } else { "" },
                p.undecipherable
                    .as_deref()
                    .map(|u| format!("UNDECIPHERABLE: {u}"))
                    .unwrap_or_default()
            );
        }
        for u in &d.unchecked {
            println!("  UNCHECKED,{} {}", u.minor, u.reason);
        }
        for b in &d.bad_header {
            println!("  BADH,{} {}", b.minor, b.detail);
        }
    }
}
