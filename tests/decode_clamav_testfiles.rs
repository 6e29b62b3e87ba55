//! The external reference for the decoder: ClamAV's test payload `clam.exe` packed ~45 ways
//! (Debian `clamav-testfiles`). Every file in a format we decode must yield the exact bytes of
//! `clam.exe`; every other one must be reported with its detected type (undecipherable where
//! it is a container), never passed as if it were plain clean data. The test fails, never
//! skips, when the package is missing: `.ci/run` installs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amavisd::decode::{Limits, decode_file};
use std::path::Path;

const DIR: &str = "/usr/share/clamav-testfiles";

enum Expect {
    /// Decoded: some part is byte-for-byte `clam.exe`.
    Payload,
    /// Nested past MAXLEVELS on purpose: stopped, and the message is UNCHECKED (minor 2).
    OverLimits,
    /// Not decoded: the top part has this detected type, and is marked undecipherable when
    /// the flag is true (a container we know but do not open).
    Unsupported(&'static str, bool),
}

fn expected(name: &str) -> Option<Expect> {
    use Expect::*;
    Some(match name {
        "clam.7z"
        | "clam.bin-be.cpio"
        | "clam.bin-le.cpio"
        | "clam.newc.cpio"
        | "clam.odc.cpio"
        | "clam.bz2.zip"
        | "clam.d64.zip"
        | "clam.zip"
        | "clam.cab"
        | "clam.exe"
        | "clam.exe.bz2"
        | "clam.tar.gz"
        | "clam.mail"
        | "clam.exe.mbox.base64"
        | "clam.exe.mbox.uu"
        | "clam.exe.html"
        | "clam.tnef" => Payload,
        "clam_cache_emax.tgz" => OverLimits,
        // Executables packed or wrapped (UPX & co., NSIS, AutoIt, InstallShield): we do not
        // unpack executables; they are exe-ms to banned rules and go whole to the AV scanner.
        "clam-aspack.exe" | "clam-fsg.exe" | "clam-mew.exe" | "clam-nsis.exe"
        | "clam-pespin.exe" | "clam-petite.exe" | "clam-upack.exe" | "clam-upx.exe"
        | "clam-wwpack.exe" | "clam-yc.exe" | "clam.ea05.exe" | "clam.ea06.exe"
        | "clam_IScab_ext.exe" | "clam_IScab_int.exe" | "clam_ISmsi_ext.exe"
        | "clam_ISmsi_int.exe" => Unsupported("exe-ms", false),
        "clam.arj" => Unsupported("arj", true),
        "clam.chm" => Unsupported("chm", true),
        "clam.exe.binhex" => Unsupported("hqx", true),
        "clam.exe.szdd" => Unsupported("szdd", true),
        // zip with the old "implode" method, which the zip crate does not implement.
        "clam.impl.zip" => Unsupported("zip", true),
        // Documents whose embedded objects we do not extract (OLE streams, RTF objects, PDF
        // streams) and a Symbian installer: passed whole to the AV scanner.
        "clam.ole.doc" | "clam.ppt" => Unsupported("doc", false),
        "clam.exe.rtf" => Unsupported("rtf", false),
        "clam.pdf" => Unsupported("pdf", false),
        "clam.sis" => Unsupported("dat", false),
        _ => return None,
    })
}

#[test]
fn every_testfile_yields_the_payload_or_is_reported() {
    assert!(
        Path::new(DIR).is_dir(),
        "{DIR} is missing: apt-get install clamav-testfiles (the .ci/run script does)"
    );
    let payload = std::fs::read(Path::new(DIR).join("clam.exe")).expect("clam.exe");
    let limits = Limits::default();
    let tmp = tempfile::tempdir().unwrap();
    let mut names: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut failures = Vec::new();
    for name in &names {
        let bytes = std::fs::read(Path::new(DIR).join(name)).unwrap();
        let d = decode_file(name, &bytes, &limits, tmp.path());
        let found = d
            .parts
            .iter()
            .any(|p| p.size == payload.len() as u64 && p.data.to_vec().unwrap() == payload);
        let top = &d.parts[0];
        let ok = match expected(name) {
            None => {
                failures.push(format!(
                    "{name}: new file, not classified (types {:?})",
                    top.types
                ));
                continue;
            }
            Some(Expect::Payload) => found && d.unchecked.is_empty(),
            Some(Expect::OverLimits) => !found && d.unchecked.iter().any(|u| u.minor == 2),
            Some(Expect::Unsupported(t, undecipherable)) => {
                !found && top.short_type() == t && top.undecipherable.is_some() == undecipherable
            }
        };
        if !ok {
            failures.push(format!(
                "{name}: payload found={found}, top types {:?}, undecipherable {:?}, unchecked {:?}",
                top.types, top.undecipherable, d.unchecked
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
