//! The spamd request parser and answer writer: see `amavisd_rs_fuzz::spamd`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| amavisd_rs_fuzz::spamd(data));
