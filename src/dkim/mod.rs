//! Mail authentication on `mail-auth`: verifying the DKIM signatures of incoming mail, with
//! SPF for the client Postfix received it from, DMARC over both and ARC chains (one
//! `Authentication-Results` field, with forged ones of our authserv-id removed; the results
//! also feed the spam rules); signing the mail of our own users per author domain; and the
//! key tools behind `amavisd genrsa|showkeys|testkeys`.
//!
//! A check like the others: the pipeline hands it the message and gets plain data back
//! ([`Verification`]); signing takes the final bytes of each outgoing copy.
//!
//! # Limits
//! At most `dkim.max_signatures` signatures of a message are verified (the rest are
//! dropped), all of them within `dkim.verify_timeout` (a timeout is `dkim=temperror`, not a
//! wait); the key cache holds at most 10,000 records learned from DNS, each until its TTL.
//! RSA signing keys under 1024 bits are refused at load.
//!
//! # Security
//! Everything verified comes from the sender: a signature that cannot be parsed, a key that
//! does not answer, or a body that does not hash is a result, never an error that holds mail.
//! `Authentication-Results` fields of our own authserv-id that arrive with the message are
//! forged and removed before ours is added. Private keys are read once at load.

mod auth_results;
mod keys;
mod keytools;
mod policy;
mod resolver;
mod settings;
mod sign;
mod verify;

pub use auth_results::{has_forged, is_forged};
pub use keys::{Keys, SigningKey};
pub use keytools::{generate_rsa, show_keys, test_keys};
pub use policy::{ArcCheck, DmarcCheck, SpfCheck, SpfClient};
pub use resolver::parse_record;
pub use settings::{DkimConfig, KeyConfig, SIGN_HEADERS};
pub use sign::{Signer, author_address};
pub use verify::{SignatureResult, Verification, Verifier};

use std::path::PathBuf;

/// What can go wrong with keys, signing and key records.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    /// A key file could not be read or written.
    #[error("{file}: {source}")]
    KeyFile {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A key file holds no key we can sign with.
    #[error("{file}: {reason}")]
    KeyFormat { file: PathBuf, reason: String },
    /// A domain or selector that cannot be a DNS label sequence.
    #[error("{what} {value:?}: {reason}")]
    Name {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    /// The signing itself failed (no signed field present, a crypto library error).
    #[error("signing for {domain} failed: {reason}")]
    Sign { domain: String, reason: String },
    /// The resolver could not be set up (no usable /etc/resolv.conf).
    #[error("DNS resolver: {0}")]
    Resolver(String),
    /// Key generation failed.
    #[error("key generation: {0}")]
    Generate(String),
}
