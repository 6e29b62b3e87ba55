//! rspamd's HTTP protocol, a whole connection: see `amavisd_rs_fuzz::http`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| amavisd_rs_fuzz::http(data));
