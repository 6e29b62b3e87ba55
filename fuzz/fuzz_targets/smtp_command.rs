//! The SMTP command parser: see `amavisd_rs_fuzz::smtp_command`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| amavisd_rs_fuzz::smtp_command(data));
