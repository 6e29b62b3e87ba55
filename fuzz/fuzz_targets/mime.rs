//! The MIME decoder and the bad-header checks on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: {
    // See archive.rs: panics the decoder catches on purpose must not abort the run.
    let _ = std::panic::take_hook();
}, |data: &[u8]| {
    let limits = amavisd::decode::Limits {
        max_expansion_quota: 16 << 20,
        min_expansion_quota: 16 << 20,
        time_budget_ms: 2000,
        ..Default::default()
    };
    let tmp = std::env::temp_dir();
    let _ = amavisd::decode::decode_message(data, &limits, &tmp);
});
