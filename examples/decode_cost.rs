//! `cargo run --release --example decode_cost [parse|load]`: decodes the corpus development set
//! once (or, with `parse`, only parses each message's MIME structure, the part that the
//! decoder and the spam view now share; with `load`, only reads the corpus), for instruction counts under
//! `valgrind --tool=callgrind` (timings on a shared machine vary by a third from run to run;
//! instruction counts do not). The wall time is printed too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../benches/common/mod.rs"]
mod common;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    // `load`: only read the corpus, the baseline the other two are measured against.
    let (parse_only, load_only) = (mode == "parse", mode == "load");
    let limits = amavisd::decode::Limits::default();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = common::corpus().expect("the corpus (scripts/fetch-corpus.sh)");
    let msgs = common::corpus_messages(&root);
    let began = std::time::Instant::now();
    let mut parts = 0;
    for m in msgs.iter().filter(|_| !load_only) {
        parts += if parse_only {
            amavisd::decode::parse(m)
                .message()
                .map_or(0, |p| p.parts.len())
        } else {
            amavisd::decode::decode_message(m, &limits, tmp.path())
                .parts
                .len()
        };
    }
    let ms = began.elapsed().as_secs_f64() * 1000.0 / msgs.len() as f64;
    println!(
        "{} messages, {parts} parts, {ms:.3} ms a message",
        msgs.len()
    );
}
