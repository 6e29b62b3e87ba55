//! The tnef reader (`decode::FUZZ_SIGNATURES[11]` before the input).
#![no_main]

libfuzzer_sys::fuzz_target!(init: amavisd_rs_fuzz::init(), |data: &[u8]| amavisd_rs_fuzz::format(11, data));
