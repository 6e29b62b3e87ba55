//! The attachment readers: PDF, Office zip, compound file, QR image (first byte chooses).
#![no_main]

libfuzzer_sys::fuzz_target!(init: amavisd_rs_fuzz::init(), |data: &[u8]| amavisd_rs_fuzz::extract(data));
