//! Scans one message file with the embedded engine and prints what the rules saw and hit:
//! the relays (SpamAssassin's X-Spam-Relays-* pseudo-headers), URIs, rendered body, and the
//! report. A debugging aid beside `sa_compat`.
//!
//! ```text
//! cargo run --release --example spam_check -- FILE [-v]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amavisd::spam::engine::Rules;
use amavisd::spam::report::report_text;
use amavisd::spam::scan::{self, Options};
use amavisd::spam::view::MessageView;
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.iter().find(|a| !a.starts_with('-')) else {
        eprintln!("usage: spam_check FILE [-v]");
        std::process::exit(2);
    };
    let raw = std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let rules = Rules::load(
        Path::new("/usr/share/spamassassin"),
        Some(Path::new("/etc/spamassassin")),
    )
    .unwrap_or_else(|e| panic!("rules: {e}"));
    let view = MessageView::build(&raw, "", &rules.view);
    for name in ["X-Spam-Relays-Trusted", "X-Spam-Relays-Untrusted"] {
        println!("{name}: {}", view.header(name).unwrap_or_default());
    }
    if args.iter().any(|a| a == "-v") {
        println!("URIs: {:?}", view.uris);
        for h in &view.html {
            println!(
                "HTML part: tests {:?}, length {}, image area {}, max size {}, open {:?}",
                h.tests, h.source_len, h.image_area, h.max_size, h.inside
            );
        }
        for p in &view.body {
            println!("body| {p}");
        }
    }
    let o = scan::scan(&rules.plan, &view, &rules.lists, Options::default());
    if args.iter().any(|a| a == "-v") {
        println!("subtests: {}", o.subtests.join(","));
    }
    print!("{}", report_text(&o));
}
