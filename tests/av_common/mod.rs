//! Shared by the AV tests: the EICAR string and the test clamd's socket.
#![allow(dead_code)]

/// The EICAR test string, assembled at run time so that no scanner flags this source file.
pub fn eicar() -> Vec<u8> {
    let a = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$";
    let b = "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    format!("{a}{b}").into_bytes()
}

/// The socket of the clamd started by ../shared/scripts/test-services.sh (or
/// AMAVISD_CLAMD_SOCKET); fails, never skips, when it is not there.
pub fn clamd_socket() -> std::path::PathBuf {
    let sock = std::env::var("AMAVISD_CLAMD_SOCKET")
        .unwrap_or_else(|_| "/var/run/clamav/clamd.ctl".into());
    assert!(
        std::path::Path::new(&sock).exists(),
        "no clamd socket at {sock}: start it with ../shared/scripts/test-services.sh clamd (.ci/run does)"
    );
    sock.into()
}
