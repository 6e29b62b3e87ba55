//! Signing keys: read from PEM files, with the public half in the form DNS publishes it, and
//! picked for a message by its author's domain.

use super::{DkimError, KeyConfig};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use std::path::PathBuf;

/// RFC 8301 3.2: signers use keys of at least 1024 bits; smaller ones verify nowhere.
const MIN_RSA_BITS: usize = 1024;

/// One key, loaded.
pub struct SigningKey {
    /// The signing domain, lower case.
    pub domain: String,
    /// The selector.
    pub selector: String,
    /// Where it was read from.
    pub file: PathBuf,
    /// `k=` of its key record: `rsa` or `ed25519`.
    pub kind: &'static str,
    /// Key size in bits.
    pub bits: usize,
    /// `p=` of its key record, decoded: SubjectPublicKeyInfo for RSA (as openssl and
    /// amavisd-new publish it), the raw 32 bytes for Ed25519 (RFC 8463).
    pub public: Vec<u8>,
    pub(super) key: DkimKey,
}

impl SigningKey {
    /// Reads and checks the key of `cfg`.
    pub fn load(cfg: &KeyConfig) -> Result<SigningKey, DkimError> {
        let domain = check_name("domain", &cfg.domain)?.to_ascii_lowercase();
        let selector = check_name("selector", &cfg.selector)?.to_string();
        let file = cfg.key_file.clone();
        let pem = std::fs::read(&file).map_err(|source| DkimError::KeyFile {
            file: file.clone(),
            source,
        })?;
        let bad = |reason: String| DkimError::KeyFormat {
            file: file.clone(),
            reason,
        };
        let der = PrivateKeyDer::from_pem_slice(&pem)
            .map_err(|e| bad(format!("no PEM private key: {e}")))?;
        let rsa = match &der {
            PrivateKeyDer::Pkcs1(d) => Some(
                aws_lc_rs::rsa::KeyPair::from_der(d.secret_pkcs1_der())
                    .map_err(|e| bad(format!("not an RSA key: {e}")))?,
            ),
            PrivateKeyDer::Pkcs8(d) => {
                aws_lc_rs::rsa::KeyPair::from_pkcs8(d.secret_pkcs8_der()).ok()
            }
            _ => return Err(bad("an EC key: DKIM signs with RSA or Ed25519".into())),
        };
        if let Some(pair) = rsa {
            let bits = pair.public_modulus_len() * 8;
            if bits < MIN_RSA_BITS {
                return Err(bad(format!(
                    "{bits}-bit RSA key: at least {MIN_RSA_BITS} bits (RFC 8301)"
                )));
            }
            let public = pair
                .public_key()
                .as_der()
                .map_err(|_| bad("cannot encode the public key".into()))?
                .as_ref()
                .to_vec();
            let key = RsaKey::<Sha256>::from_key_der(der.clone_key())
                .map_err(|e| bad(format!("RSA key refused: {e}")))?;
            return Ok(SigningKey {
                domain,
                selector,
                file,
                kind: "rsa",
                bits,
                public,
                key: key.into(),
            });
        }
        let PrivateKeyDer::Pkcs8(d) = &der else {
            return Err(bad("neither RSA nor Ed25519".into()));
        };
        let key = Ed25519Key::from_pkcs8_der(d.secret_pkcs8_der())
            .map_err(|_| bad("a PKCS#8 key that is neither RSA nor Ed25519".into()))?;
        Ok(SigningKey {
            domain,
            selector,
            file,
            kind: "ed25519",
            bits: 256,
            public: key.public_key(),
            key: key.into(),
        })
    }

    /// Where the key record lives: `selector._domainkey.domain`.
    pub fn record_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The TXT text of its key record.
    pub fn record(&self) -> String {
        use base64::Engine;
        let p = base64::engine::general_purpose::STANDARD.encode(&self.public);
        match self.kind {
            "rsa" => format!("v=DKIM1; p={p}"),
            k => format!("v=DKIM1; k={k}; p={p}"),
        }
    }
}

/// A domain or selector: dot-separated labels of letters, digits, `-` and `_`.
fn check_name<'a>(what: &'static str, value: &'a str) -> Result<&'a str, DkimError> {
    let err = |reason| DkimError::Name {
        what,
        value: value.to_string(),
        reason,
    };
    if value.is_empty() || value.len() > 253 {
        return Err(err("must be 1 to 253 characters"));
    }
    for label in value.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(err("every label must be 1 to 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(err("letters, digits, '-', '_' and '.' only"));
        }
    }
    Ok(value)
}

/// Every configured key, in configuration order.
#[derive(Default)]
pub struct Keys {
    list: Vec<SigningKey>,
}

impl Keys {
    /// Loads every key of `cfg`.
    pub fn load(cfg: &[KeyConfig]) -> Result<Keys, DkimError> {
        Ok(Keys {
            list: cfg.iter().map(SigningKey::load).collect::<Result<_, _>>()?,
        })
    }

    /// The keys, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &SigningKey> {
        self.list.iter()
    }

    pub(super) fn into_vec(self) -> Vec<SigningKey> {
        self.list
    }
}

/// The index of the key that signs for `domain`: its own domain's first key, else the first
/// key of the nearest parent domain (mail from `sub.example.com` signed `d=example.com`
/// still aligns with DMARC's relaxed mode).
pub(super) fn pick<'a>(
    domains: impl Iterator<Item = &'a str> + Clone,
    domain: &str,
) -> Option<usize> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let mut d = domain.as_str();
    loop {
        if let Some(i) = domains.clone().position(|k| k == d) {
            return Some(i);
        }
        d = d.split_once('.')?.1;
        // A top-level domain alone never signs.
        if !d.contains('.') {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_domain_signs() {
        let ds = ["example.com", "sub.example.com", "example.org"];
        let p = |d: &str| pick(ds.iter().copied(), d);
        assert_eq!(p("example.com"), Some(0));
        assert_eq!(p("Sub.Example.com."), Some(1));
        assert_eq!(p("deep.sub.example.com"), Some(1));
        assert_eq!(p("other.example.com"), Some(0));
        assert_eq!(p("example.net"), None);
        assert_eq!(p("com"), None);
        assert_eq!(pick(["com"].iter().copied(), "example.com"), None);
    }

    #[test]
    fn names_are_dns_labels() {
        assert!(check_name("domain", "example.com").is_ok());
        assert!(check_name("selector", "dkim_2026-1").is_ok());
        assert!(check_name("domain", "").is_err());
        assert!(check_name("domain", "a..b").is_err());
        assert!(check_name("domain", "exa mple.com").is_err());
    }
}
