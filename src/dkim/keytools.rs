//! The key tools: `amavisd genrsa FILE [BITS]` writes a new private key, `showkeys` prints the
//! DNS records to publish, `testkeys` signs a test message with each key and verifies it
//! against what DNS (or `[dkim.dns]`) publishes, as amavisd-new's commands of those names do.

use super::{DkimConfig, DkimError, Keys, Signer, Verifier};
use aws_lc_rs::encoding::AsDer;
use std::io::Write;
use std::path::Path;

/// Writes a new RSA private key of `bits` bits to `path` (PKCS#8 PEM, mode 0600). An
/// existing file is never overwritten: it may be a key already published.
pub fn generate_rsa(path: &Path, bits: usize) -> Result<(), DkimError> {
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    let size = match bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        _ => {
            return Err(DkimError::Generate(format!(
                "{bits} bits: use 2048, 3072 or 4096"
            )));
        }
    };
    let pair = KeyPair::generate(size).map_err(|e| DkimError::Generate(e.to_string()))?;
    let der = pair
        .as_der()
        .map_err(|e| DkimError::Generate(e.to_string()))?;
    let pem = pem("PRIVATE KEY", der.as_ref());
    let io = |source| DkimError::KeyFile {
        file: path.to_path_buf(),
        source,
    };
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(pem.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

/// `der` as PEM with `label`, 64 characters a line (RFC 7468).
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// True when `only` is empty or names `domain`.
fn wanted(only: &[String], domain: &str) -> bool {
    only.is_empty() || only.iter().any(|d| d.eq_ignore_ascii_case(domain))
}

/// The DNS records of the keys (of `only`'s domains, or all), in zone-file form.
pub fn show_keys(keys: &Keys, only: &[String]) -> String {
    let mut out = String::new();
    for (i, k) in keys.iter().enumerate() {
        if !wanted(only, &k.domain) {
            continue;
        }
        out.push_str(&format!(
            "; key#{} {} bits, s={}, d={}, {}\n",
            i + 1,
            k.bits,
            k.selector,
            k.domain,
            k.file.display()
        ));
        out.push_str(&format!("{}.\t3600 TXT (\n", k.record_name()));
        // Character strings of at most 255 bytes (RFC 1035 3.3.14); shorter reads better.
        let record = k.record();
        let (head, p) = record.split_at(record.find("p=").map_or(0, |i| i + 2));
        out.push_str(&format!("  \"{head}\""));
        for chunk in p.as_bytes().chunks(64) {
            out.push_str(&format!("\n  \"{}\"", String::from_utf8_lossy(chunk)));
        }
        out.push_str(")\n\n");
    }
    out
}

/// Signs a test message with each key (of `only`'s domains, or all) and verifies it with
/// what is published; one line per key, and whether it passed.
pub async fn test_keys(
    cfg: &DkimConfig,
    authserv_id: &str,
    only: &[String],
) -> Result<Vec<(String, bool)>, DkimError> {
    let verifier = Verifier::build(cfg, authserv_id)?;
    let keys = Keys::load(&cfg.keys)?;
    let mut out = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        if !wanted(only, &k.domain) {
            continue;
        }
        let one = DkimConfig {
            sign: true,
            keys: vec![cfg.keys[i].clone()],
            ..cfg.clone()
        };
        let Some(signer) = Signer::new(&one)? else {
            continue;
        };
        let author = format!("postmaster@{}", k.domain);
        let message = format!(
            "From: <{author}>\r\nTo: <{author}>\r\nSubject: testkeys\r\nDate: {}\r\n\r\nTesting key {}.\r\n",
            crate::message::date::rfc2822(std::time::SystemTime::now()),
            k.record_name()
        );
        let signature = signer
            .sign(&author, "", &[message.as_bytes()])?
            .unwrap_or_default();
        let signed = format!("{signature}{message}");
        let v = verifier.verify(signed.as_bytes(), None).await;
        let (word, why) = v
            .signatures
            .iter()
            .find(|s| s.domain.eq_ignore_ascii_case(&k.domain) && s.selector == k.selector)
            .map_or(("none", "no signature found".to_string()), |s| {
                (s.result, s.reason.clone())
            });
        let mut line = format!(
            "TESTING#{} {}: {} => {word}",
            i + 1,
            k.domain,
            k.record_name()
        );
        if !why.is_empty() {
            line.push_str(&format!(" ({why})"));
        }
        out.push((line, word == "pass"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_lines_are_64_characters() {
        let p = pem("PRIVATE KEY", &[0u8; 100]);
        let lines: Vec<&str> = p.lines().collect();
        assert_eq!(lines[0], "-----BEGIN PRIVATE KEY-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last(), Some(&"-----END PRIVATE KEY-----"));
    }

    #[test]
    fn odd_sizes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = generate_rsa(&dir.path().join("k.pem"), 1000).unwrap_err();
        assert!(e.to_string().contains("2048"));
    }
}
