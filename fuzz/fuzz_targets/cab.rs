//! The cab reader (`decode::FUZZ_SIGNATURES[7]` before the input).
#![no_main]

libfuzzer_sys::fuzz_target!(init: amavisd_rs_fuzz::init(), |data: &[u8]| amavisd_rs_fuzz::format(7, data));
