//! Signing outgoing copies: the key of the author's domain (else the envelope sender's), over
//! the copy's final bytes, so the fields we add or rewrite are signed as sent.

use super::keys::{self, Keys};
use super::{DkimConfig, DkimError};
use mail_auth::common::crypto::DkimKey;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};

/// `"header/body"` (or one word for both) as mail-auth's pair.
pub(super) fn canonicalization(s: &str) -> Result<(Canonicalization, Canonicalization), String> {
    let one = |w: &str| match w.trim().to_ascii_lowercase().as_str() {
        "relaxed" => Ok(Canonicalization::Relaxed),
        "simple" => Ok(Canonicalization::Simple),
        _ => Err(format!("{s:?}: use relaxed or simple, as header/body")),
    };
    match s.split_once('/') {
        Some((h, b)) => Ok((one(h)?, one(b)?)),
        // RFC 6376 3.5: a lone word is the header's; the body's is then simple.
        None => Ok((one(s)?, Canonicalization::Simple)),
    }
}

/// The signing keys, each ready to sign.
pub struct Signer {
    domains: Vec<String>,
    signers: Vec<DkimSigner<DkimKey, Done>>,
}

impl Signer {
    /// Signers for every key of `cfg`; `None` when signing is off or there is no key.
    pub fn new(cfg: &DkimConfig) -> Result<Option<Signer>, DkimError> {
        if !cfg.sign || cfg.keys.is_empty() {
            return Ok(None);
        }
        let (ch, cb) =
            canonicalization(&cfg.canonicalization).map_err(|reason| DkimError::Sign {
                domain: String::new(),
                reason,
            })?;
        let mut domains = Vec::new();
        let mut signers = Vec::new();
        for k in Keys::load(&cfg.keys)?.into_vec() {
            domains.push(k.domain.clone());
            signers.push(
                DkimSigner::from_key(k.key)
                    .domain(k.domain)
                    .selector(k.selector)
                    .headers(cfg.sign_headers.iter().cloned())
                    .header_canonicalization(ch)
                    .body_canonicalization(cb)
                    .expiration(cfg.signature_ttl),
            );
        }
        Ok(Some(Signer { domains, signers }))
    }

    /// The signing domain for a message from `author` (the From: field's address) and
    /// `sender` (the envelope's), if any key signs for either.
    pub fn domain_for(&self, author: &str, sender: &str) -> Option<&str> {
        self.index(author, sender).map(|i| self.domains[i].as_str())
    }

    fn index(&self, author: &str, sender: &str) -> Option<usize> {
        [author, sender]
            .into_iter()
            .filter_map(|a| a.rsplit_once('@').map(|(_, d)| d))
            .filter(|d| !d.is_empty())
            .find_map(|d| keys::pick(self.domains.iter().map(String::as_str), d))
    }

    /// A `DKIM-Signature:` field (CRLF-terminated) for the message made of `chunks`, or
    /// `None` when no key signs for its author or sender.
    pub fn sign(
        &self,
        author: &str,
        sender: &str,
        chunks: &[&[u8]],
    ) -> Result<Option<String>, DkimError> {
        let Some(i) = self.index(author, sender) else {
            return Ok(None);
        };
        let sig = self.signers[i]
            .sign_chained(chunks.iter().copied())
            .map_err(|e| DkimError::Sign {
                domain: self.domains[i].clone(),
                reason: e.to_string(),
            })?;
        Ok(Some(sig.to_header()))
    }
}

/// The address in a From: field's (unfolded) value: the first `<...>`, else the bare text.
pub fn author_address(from: &str) -> &str {
    let inner = match (from.find('<'), from.find('>')) {
        (Some(a), Some(b)) if a < b => &from[a + 1..b],
        _ => from.split(',').next().unwrap_or(from),
    };
    inner.trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalization_words() {
        use Canonicalization::*;
        assert_eq!(canonicalization("relaxed/simple"), Ok((Relaxed, Simple)));
        assert_eq!(canonicalization("Simple/Relaxed"), Ok((Simple, Relaxed)));
        assert_eq!(canonicalization("relaxed"), Ok((Relaxed, Simple)));
        assert!(canonicalization("loose/simple").is_err());
    }

    #[test]
    fn the_author_address() {
        assert_eq!(author_address("Joe <joe@example.com>"), "joe@example.com");
        assert_eq!(author_address("joe@example.com"), "joe@example.com");
        assert_eq!(author_address("a@x.org, b@y.org"), "a@x.org");
        assert_eq!(author_address("\"A <b>\" broken"), "b");
    }
}
