//! Every archive reader at once: the first input byte picks the format (a signature from
//! `decode::FUZZ_SIGNATURES`, or the tar path past the table).
#![no_main]

libfuzzer_sys::fuzz_target!(init: amavisd_rs_fuzz::init(), |data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    if (sel as usize) < amavisd::decode::FUZZ_SIGNATURES.len() {
        amavisd_rs_fuzz::format(sel as usize, rest);
    } else {
        amavisd_rs_fuzz::tar(rest);
    }
});
