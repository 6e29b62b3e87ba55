//! The `[dkim]` table: verification, signing and the keys (amavisd-new's
//! `$enable_dkim_verification`, `$enable_dkim_signing`, `dkim_key(...)`,
//! `%signed_header_fields`, `$myauthservid`).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// DKIM settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DkimConfig {
    /// Verify the signatures of every message and add `Authentication-Results`.
    pub verify: bool,
    /// Our authserv-id in `Authentication-Results`; incoming fields with it are removed as
    /// forged. Empty: `myhostname`.
    pub authserv_id: String,
    /// Seconds for the key lookups of one message; past it the signatures still unresolved
    /// are `temperror` and the message goes on (a slow DNS must not hold mail).
    pub verify_timeout: u64,
    /// Signatures verified per message; later ones are not looked at (each costs a DNS
    /// lookup, and a message can carry hundreds).
    pub max_signatures: usize,
    /// Sign mail from our own users (policy `originating`) whose author domain has a key.
    pub sign: bool,
    /// Header fields signed (every instance present; those absent are signed as absent, so
    /// nobody can add them later).
    pub sign_headers: Vec<String>,
    /// `header/body` canonicalization of our signatures.
    pub canonicalization: String,
    /// Seconds a signature stays valid (`x=`); 0: no expiry.
    pub signature_ttl: u64,
    /// Signing keys, one per domain and selector.
    pub keys: Vec<KeyConfig>,
    /// Sealers (ARC-Seal `d=`, mailing lists and forwarders the site trusts) whose passing
    /// ARC chain lets a DMARC failure through: the author's signature broke on their way
    /// (a subject tag, a footer), and they say it was good when they got it.
    pub arc_trusted_sealers: Vec<String>,
    /// Key records known without DNS, by name (`selector._domainkey.domain`): the TXT text.
    /// Looked up before DNS, for keys not yet published or hosts without a resolver.
    pub dns: BTreeMap<String, String>,
}

/// One signing key (amavisd-new's `dkim_key('example.com', 'dkim', '/path/key.pem')`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// The signing domain (`d=`); it signs mail whose author is in it or below it.
    pub domain: String,
    /// The selector (`s=`): the key is published at `selector._domainkey.domain`.
    pub selector: String,
    /// The private key, PEM (PKCS#1 `RSA PRIVATE KEY` as `amavisd genrsa` and older openssl
    /// write, or PKCS#8 `PRIVATE KEY`, RSA or Ed25519).
    pub key_file: PathBuf,
}

/// amavisd-new's `%signed_header_fields`.
pub const SIGN_HEADERS: &[&str] = &[
    "From",
    "Sender",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "To",
    "Cc",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-ID",
    "Content-Description",
    "Resent-Date",
    "Resent-From",
    "Resent-Sender",
    "Resent-To",
    "Resent-Cc",
    "Resent-Message-ID",
    "List-Id",
    "List-Post",
    "List-Owner",
    "List-Subscribe",
    "List-Unsubscribe",
    "List-Help",
    "List-Archive",
];

impl Default for DkimConfig {
    fn default() -> Self {
        Self {
            verify: false,
            authserv_id: String::new(),
            verify_timeout: 10,
            max_signatures: 10,
            sign: false,
            sign_headers: SIGN_HEADERS.iter().map(|s| s.to_string()).collect(),
            // amavisd-new's default; a simple body also avoids mail-auth 0.13's relaxed-body
            // bug with trailing blank lines holding only white space.
            canonicalization: "relaxed/simple".into(),
            signature_ttl: 0,
            keys: Vec::new(),
            arc_trusted_sealers: Vec::new(),
            dns: BTreeMap::new(),
        }
    }
}

impl DkimConfig {
    /// Checks every key, reading the key files; `(key path under dkim, reason)` on error.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.verify_timeout == 0 {
            return Err(("verify_timeout".into(), "must be at least 1 second".into()));
        }
        super::sign::canonicalization(&self.canonicalization)
            .map_err(|r| ("canonicalization".to_string(), r))?;
        for (i, h) in self.sign_headers.iter().enumerate() {
            if h.is_empty() || !h.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                return Err((
                    format!("sign_headers[{i}]"),
                    format!("{h:?} is no field name"),
                ));
            }
        }
        if !self
            .sign_headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("From"))
        {
            return Err((
                "sign_headers".into(),
                "must include From (RFC 6376 5.4)".into(),
            ));
        }
        for (i, k) in self.keys.iter().enumerate() {
            super::keys::SigningKey::load(k).map_err(|e| (format!("keys[{i}]"), e.to_string()))?;
        }
        for (name, text) in &self.dns {
            super::resolver::parse_record(text).map_err(|r| (format!("dns.{name:?}"), r))?;
        }
        Ok(())
    }
}
