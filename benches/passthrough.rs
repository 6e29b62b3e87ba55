//! `cargo bench`: the whole mail path, straight to a sink and through amavisd-rs, at three
//! concurrencies and two message sizes (a smaller run of `amavisd-load compare`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amavisd_testing::load::{LoadOptions, compare, comparison_table};
use std::time::Duration;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    };
    let base = LoadOptions {
        target: ([127, 0, 0, 1], 0).into(),
        lmtp: false,
        sessions: 1,
        count: 3000,
        max_time: Duration::from_secs(20),
        recipients: 1,
    };
    // The filter's defaults without a virus scanner: decoding and banned rules run, clamd does
    // not (`cargo bench --bench av` measures that).
    let mut cfg = amavisd::config::Config::default();
    cfg.av.primary.clear();
    match rt.block_on(compare(&[1024, 102_400], &[1, 8, 64], &base, None, cfg)) {
        Ok(rows) => print!("{}", comparison_table(&rows)),
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    }
}
