//! The tar reader.
#![no_main]

libfuzzer_sys::fuzz_target!(init: amavisd_rs_fuzz::init(), |data: &[u8]| amavisd_rs_fuzz::tar(data));
