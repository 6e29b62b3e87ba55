//! The milter packet parser: see `amavisd_rs_fuzz::milter`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| amavisd_rs_fuzz::milter(data));
