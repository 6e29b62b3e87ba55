//! SpamAssassin's Received parser as ported: see `amavisd_rs_fuzz::received`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| amavisd_rs_fuzz::received(data));
