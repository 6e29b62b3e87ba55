//! Verifying a message's DKIM signatures, with the `Authentication-Results` field that
//! reports them (RFC 8601), as amavisd-new writes it.

use super::resolver::KeyRecords;
use super::{DkimConfig, DkimError};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::{AuthenticatedMessage, AuthenticationResults, DkimResult, MessageAuthenticator};
use std::time::Duration;

/// One signature, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureResult {
    /// `pass`, `fail`, `neutral`, `temperror`, `permerror` or `none`.
    pub result: &'static str,
    /// `d=`, empty for a signature too broken to parse.
    pub domain: String,
    /// `s=`.
    pub selector: String,
    /// Why it did not pass; empty when it did.
    pub reason: String,
}

/// A message's signatures, verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    /// Each signature looked at, in header order.
    pub signatures: Vec<SignatureResult>,
    /// The `Authentication-Results:` field to add, CRLF-terminated.
    pub header: String,
}

impl Verification {
    /// True when some signature of `domain` passed.
    pub fn passed_for(&self, domain: &str) -> bool {
        self.signatures
            .iter()
            .any(|s| s.result == "pass" && s.domain.eq_ignore_ascii_case(domain))
    }
}

fn reason(r: &DkimResult) -> String {
    match r {
        DkimResult::Neutral(e)
        | DkimResult::Fail(e)
        | DkimResult::PermError(e)
        | DkimResult::TempError(e) => e.to_string(),
        DkimResult::Pass | DkimResult::None => String::new(),
    }
}

fn word(r: &DkimResult) -> &'static str {
    match r {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

/// Verifies messages: key records from `[dkim.dns]`, a cache, then the system's resolver.
pub struct Verifier {
    dns: MessageAuthenticator,
    records: KeyRecords,
    timeout: Duration,
    max_signatures: usize,
    /// What `Authentication-Results` starts with: our authserv-id and a comment.
    id_comment: String,
}

impl Verifier {
    /// A verifier for `cfg`; `None` when verification is off. `authserv_id` is the resolved
    /// one (`dkim.authserv_id`, else `myhostname`).
    pub fn new(cfg: &DkimConfig, authserv_id: &str) -> Result<Option<Verifier>, DkimError> {
        if !cfg.verify {
            return Ok(None);
        }
        Self::build(cfg, authserv_id).map(Some)
    }

    /// A verifier for `cfg` whether verification is on or not (`amavisd testkeys`).
    pub fn build(cfg: &DkimConfig, authserv_id: &str) -> Result<Verifier, DkimError> {
        let dns = MessageAuthenticator::new_system_conf()
            .map_err(|e| DkimError::Resolver(e.to_string()))?;
        Ok(Verifier {
            dns,
            records: KeyRecords::new(&cfg.dns).map_err(DkimError::Resolver)?,
            timeout: Duration::from_secs(cfg.verify_timeout),
            max_signatures: cfg.max_signatures,
            id_comment: format!("{authserv_id} (amavisd-rs)"),
        })
    }

    /// The signatures of `message` (the whole message as received), verified. Never fails:
    /// an unparsable message or a DNS timeout is a result like any other.
    pub async fn verify(&self, message: &[u8]) -> Verification {
        let Some(mut msg) = AuthenticatedMessage::parse(message) else {
            return self.none();
        };
        // Parse errors of the signatures beyond the cap are dropped with them.
        msg.dkim_headers.truncate(self.max_signatures);
        if msg.dkim_headers.is_empty() && !msg.has_dkim_errors {
            return self.none();
        }
        let params = mail_auth::Parameters::new(&msg).with_txt_cache(&self.records);
        let outputs = match tokio::time::timeout(self.timeout, self.dns.verify_dkim(params)).await {
            Ok(o) => o,
            Err(_) => {
                // The lookups took too long: every signature is a temporary error.
                let signatures: Vec<SignatureResult> = msg
                    .dkim_headers
                    .iter()
                    .map(|h| SignatureResult {
                        result: "temperror",
                        domain: h.header.d.clone(),
                        selector: h.header.s.clone(),
                        reason: "DNS timeout".into(),
                    })
                    .collect();
                let mut header = format!("Authentication-Results: {}", self.id_comment);
                for s in &signatures {
                    header.push_str(&format!(
                        ";\r\n\tdkim=temperror (dns timeout) header.d={} header.s={}",
                        s.domain, s.selector
                    ));
                }
                header.push_str("\r\n");
                return Verification { signatures, header };
            }
        };
        let from = msg.from.first().map(String::as_str).unwrap_or("");
        let header = AuthenticationResults::new(&self.id_comment)
            .with_dkim_results(&outputs, from)
            .to_header();
        let signatures = outputs
            .iter()
            .map(|o| SignatureResult {
                result: word(o.result()),
                domain: o.signature().map(|s| s.d.clone()).unwrap_or_default(),
                selector: o.signature().map(|s| s.s.clone()).unwrap_or_default(),
                reason: reason(o.result()),
            })
            .collect();
        Verification { signatures, header }
    }

    /// amavisd-new's field for a message without signatures.
    fn none(&self) -> Verification {
        Verification {
            signatures: Vec::new(),
            header: format!(
                "Authentication-Results: {};\r\n\tdkim=none\r\n",
                self.id_comment
            ),
        }
    }
}
