//! The ampdp parser: see `amavisd_rs_fuzz::ampdp`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| amavisd_rs_fuzz::ampdp(data));
