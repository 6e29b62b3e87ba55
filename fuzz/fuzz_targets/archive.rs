//! Every archive reader on arbitrary bytes. The first byte picks a format from
//! `decode::FUZZ_SIGNATURES` and its signature is put in front, so that each reader sees
//! mostly well-formed-looking input. A first byte past the table also tries the tar path.
#![no_main]

use amavisd::decode::{FUZZ_SIGNATURES, Limits, decode_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: {
    // libfuzzer-sys aborts on any panic, even one the decoder catches on purpose (a crashing
    // third-party reader makes its part undecipherable). Uncaught panics still abort.
    let _ = std::panic::take_hook();
}, |data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let limits = Limits {
        max_expansion_quota: 16 << 20,
        min_expansion_quota: 16 << 20,
        max_part_size: 8 << 20,
        time_budget_ms: 2000,
        ..Default::default()
    };
    let tmp = std::env::temp_dir();
    let n = FUZZ_SIGNATURES.len();
    if (sel as usize) < n {
        let mut bytes = FUZZ_SIGNATURES[sel as usize].to_vec();
        bytes.extend_from_slice(rest);
        let _ = decode_file("f.bin", &bytes, &limits, &tmp);
    } else if rest.len() > 262 {
        let mut t = rest.to_vec();
        t[257..262].copy_from_slice(b"ustar");
        let _ = decode_file("f.tar", &t, &limits, &tmp);
    }
});
