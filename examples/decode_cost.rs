//! `cargo run --release --example decode_cost`: decodes the corpus development set once, for
//! instruction counts under `valgrind --tool=callgrind` (timings on a shared machine vary by
//! a third from run to run; instruction counts do not).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../benches/common/mod.rs"]
mod common;

fn main() {
    let limits = amavisd::decode::Limits::default();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = common::corpus().expect("the corpus (scripts/fetch-corpus.sh)");
    let msgs = common::corpus_messages(&root);
    let mut parts = 0;
    for m in &msgs {
        parts += amavisd::decode::decode_message(m, &limits, tmp.path())
            .parts
            .len();
    }
    println!("{} messages, {parts} parts", msgs.len());
}
