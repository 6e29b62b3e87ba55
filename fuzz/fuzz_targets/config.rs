//! The config parser: see `amavisd_rs_fuzz::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| amavisd_rs_fuzz::config(data));
