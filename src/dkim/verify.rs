//! Verifying a message's DKIM signatures, with SPF and DMARC when the client is known, and
//! the `Authentication-Results` field that reports them (RFC 8601), as amavisd-new writes
//! it for DKIM.

use super::policy::{ArcCheck, DmarcCheck, SpfCheck, SpfClient};
use super::resolver::KeyRecords;
use super::{DkimConfig, DkimError};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, DmarcOutput,
    MessageAuthenticator, SpfOutput,
};
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
    /// SPF, when the client was known and outside our networks.
    pub spf: Option<SpfCheck>,
    /// DMARC, when SPF ran and the message has one author domain.
    pub dmarc: Option<DmarcCheck>,
    /// ARC, when the message carries ARC sets.
    pub arc: Option<ArcCheck>,
    /// The author (From:) domain, lower case.
    pub author_domain: String,
    /// The envelope sender's domain, lower case.
    pub envelope_domain: String,
}

impl Verification {
    /// True when some signature of `domain` passed.
    pub fn passed_for(&self, domain: &str) -> bool {
        self.signatures
            .iter()
            .any(|s| s.result == "pass" && s.domain.eq_ignore_ascii_case(domain))
    }

    /// The log line's fields: amavisd-new's `dkim_sd=selector:domain` of each valid
    /// signature and `dkim_id=@domain` of a valid author signature, then the results
    /// (`auth: dkim=pass spf=pass dmarc=pass arc=none`).
    pub fn log_fields(&self) -> String {
        let mut parts = Vec::new();
        let valid: Vec<String> = self
            .signatures
            .iter()
            .filter(|s| s.result == "pass")
            .map(|s| format!("{}:{}", s.selector, s.domain))
            .collect();
        if !valid.is_empty() {
            parts.push(format!("dkim_sd={}", valid.join(",")));
        }
        if !self.author_domain.is_empty() && self.passed_for(&self.author_domain) {
            parts.push(format!("dkim_id=@{}", self.author_domain));
        }
        let dkim = if self.signatures.is_empty() {
            "none"
        } else if self.any_passed() {
            "pass"
        } else {
            self.signatures[0].result
        };
        let mut summary = format!("auth: dkim={dkim}");
        if let Some(s) = &self.spf {
            summary.push_str(&format!(" spf={}", s.mail_from));
        }
        if let Some(d) = &self.dmarc {
            summary.push_str(&format!(" dmarc={}", d.result));
        }
        if let Some(a) = &self.arc {
            summary.push_str(&format!(" arc={}", a.result));
        }
        parts.push(summary);
        parts.join(", ")
    }

    /// True when some signature passed.
    pub fn any_passed(&self) -> bool {
        self.signatures.iter().any(|s| s.result == "pass")
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
    /// SPF and DMARC too (network checks on).
    policies: bool,
    /// Sealers whose `arc=pass` lets a DMARC failure through (mailing lists, forwarders).
    arc_trusted: Vec<String>,
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
        Self::build_with(cfg, authserv_id, &crate::dns::DnsConfig::default())
    }

    /// Same, asking the name servers of `[dns]` (the system's when it names none).
    pub fn build_with(
        cfg: &DkimConfig,
        authserv_id: &str,
        dns_cfg: &crate::dns::DnsConfig,
    ) -> Result<Verifier, DkimError> {
        let (config, opts) = crate::dns::resolver_settings(dns_cfg)
            .map_err(|e| DkimError::Resolver(e.to_string()))?;
        let dns = MessageAuthenticator::new(config, opts)
            .map_err(|e| DkimError::Resolver(e.to_string()))?;
        Ok(Verifier {
            dns,
            records: KeyRecords::new(&cfg.dns).map_err(DkimError::Resolver)?,
            timeout: Duration::from_secs(cfg.verify_timeout),
            max_signatures: cfg.max_signatures,
            policies: dns_cfg.enabled,
            arc_trusted: cfg
                .arc_trusted_sealers
                .iter()
                .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            id_comment: format!("{authserv_id} (amavisd-rs)"),
        })
    }

    /// The signatures of `message` (the whole message as received), verified; with
    /// `client`, SPF and DMARC too. Never fails: an unparsable message or a DNS timeout is
    /// a result like any other.
    pub async fn verify(&self, message: &[u8], client: Option<&SpfClient>) -> Verification {
        let Some(mut msg) = AuthenticatedMessage::parse(message) else {
            return self.none();
        };
        // Parse errors of the signatures beyond the cap are dropped with them.
        msg.dkim_headers.truncate(self.max_signatures);
        let from = msg.from.first().cloned().unwrap_or_default();
        let signed = !msg.dkim_headers.is_empty() || msg.has_dkim_errors;
        let dkim = async {
            if !signed {
                return Some(Vec::new());
            }
            let params = mail_auth::Parameters::new(&msg).with_txt_cache(&self.records);
            tokio::time::timeout(self.timeout, self.dns.verify_dkim(params))
                .await
                .ok()
        };
        // SPF and DMARC only with the network checks on (`[dns] enabled`).
        let client = client.filter(|_| self.policies);
        let (dkim, spf, arc) = tokio::join!(dkim, self.spf(client), self.arc(&msg));
        let Some(outputs) = dkim else {
            return self.timed_out(&msg);
        };
        let dmarc = match (&spf, client) {
            (Some(Some((mail_from, _))), Some(c)) => self.dmarc(&msg, &outputs, mail_from, c).await,
            _ => None,
        };
        let mut dmarc = dmarc.as_ref().map(|d| (d, DmarcCheck::of(d)));
        let overridden = match (&mut dmarc, &arc) {
            (Some((_, check)), Some(a)) => self.arc_override(check, a),
            _ => None,
        };
        if !signed && spf.is_none() && arc.is_none() {
            return self.none();
        }
        let results = Results {
            from: &from,
            dkim: signed.then_some(outputs.as_slice()),
            spf: match (&spf, client) {
                (Some(Some((m, h))), Some(c)) => Some((m, h, c)),
                _ => None,
            },
            dmarc: dmarc.as_ref().map(|(d, c)| (*d, c, overridden.as_deref())),
            arc: arc.as_ref(),
        };
        let header = self.field(&results);
        Verification {
            signatures: outputs.iter().map(signature).collect(),
            header,
            spf: match spf {
                Some(Some((m, h))) => Some(SpfCheck::of(&m, &h)),
                Some(None) => Some(SpfCheck::timed_out()),
                None => None,
            },
            dmarc: dmarc.map(|(_, c)| c),
            arc,
            author_domain: crate::message::address::split(&from).1,
            envelope_domain: client
                .map(|c| crate::message::address::split(&c.mail_from).1)
                .unwrap_or_default(),
        }
    }

    /// SPF for the envelope sender and the HELO name of `client`, within the timeout:
    /// `None` without a client, `Some(None)` when it ran out of time.
    async fn spf(&self, client: Option<&SpfClient>) -> Option<Option<(SpfOutput, SpfOutput)>> {
        let c = client?;
        let host = &self.id_comment;
        let mail_from = SpfParameters::verify_mail_from(c.ip, &c.helo, host, &c.mail_from);
        let helo = async {
            // Without a HELO name there is nothing to check: `none`.
            if c.helo.is_empty() {
                return SpfOutput::new(String::new());
            }
            let p = SpfParameters::verify_ehlo(c.ip, &c.helo, host);
            self.dns.verify_spf(p).await
        };
        let both = async { tokio::join!(self.dns.verify_spf(mail_from), helo) };
        Some(tokio::time::timeout(self.timeout, both).await.ok())
    }

    /// The message's ARC chain verified, when it has one.
    async fn arc(&self, msg: &AuthenticatedMessage<'_>) -> Option<ArcCheck> {
        if msg.ams_headers.is_empty() && !msg.has_arc_errors {
            return None;
        }
        let params = mail_auth::Parameters::new(msg).with_txt_cache(&self.records);
        let out = tokio::time::timeout(self.timeout, self.dns.verify_arc(params)).await;
        Some(match out {
            Ok(o) => ArcCheck {
                result: word(o.result()),
                sealers: o
                    .sets()
                    .iter()
                    .map(|s| s.seal.header.d.to_ascii_lowercase())
                    .collect(),
            },
            Err(_) => ArcCheck {
                result: "temperror",
                sealers: Vec::new(),
            },
        })
    }

    /// Our `Authentication-Results` field for `r`, CRLF-terminated.
    fn field(&self, r: &Results<'_, '_>) -> String {
        let mut ar = AuthenticationResults::new(&self.id_comment);
        if let Some(outputs) = r.dkim {
            ar = ar.with_dkim_results(outputs, r.from);
        }
        if let Some((mail_from, helo, c)) = r.spf {
            if !c.helo.is_empty() {
                ar = ar.with_spf_ehlo_result(helo, c.ip, &c.helo);
            }
            ar = ar.with_spf_mailfrom_result(mail_from, c.ip, &c.mail_from, &c.helo);
        }
        if let Some((d, _, None)) = r.dmarc {
            ar = ar.with_dmarc_result(d);
        }
        let mut header = ar.to_header();
        let mut extra = String::new();
        if let Some(a) = r.arc {
            extra.push_str(&format!(";\r\n\tarc={}", a.result));
            if let Some(s) = a.sealers.last() {
                extra.push_str(&format!(" header.d={s}"));
            }
        }
        if let Some((_, check, Some(note))) = r.dmarc {
            extra.push_str(&format!(
                ";\r\n\tdmarc=pass ({note}) header.from={}",
                check.domain
            ));
        }
        if !extra.is_empty() {
            header = format!("{}{extra}\r\n", header.trim_end_matches("\r\n"));
        }
        if r.dkim.is_none() {
            // amavisd-new says so when nothing is signed.
            header = header.replacen(
                &self.id_comment,
                &format!("{};\r\n\tdkim=none", self.id_comment),
                1,
            );
        }
        header
    }

    /// A DMARC failure let through because a trusted sealer's ARC chain passed (RFC 8617
    /// section 7.2): the check becomes a pass, and the note says why.
    fn arc_override(&self, check: &mut DmarcCheck, arc: &ArcCheck) -> Option<String> {
        let sealer = arc.passed_by()?;
        if check.result != "fail" || !self.arc_trusted.iter().any(|t| t == sealer) {
            return None;
        }
        check.result = "pass";
        Some(format!(
            "policy overridden: arc=pass by trusted sealer {sealer}"
        ))
    }

    /// DMARC over the DKIM and SPF results, within the lookup timeout.
    async fn dmarc(
        &self,
        msg: &AuthenticatedMessage<'_>,
        dkim: &[DkimOutput<'_>],
        spf: &SpfOutput,
        c: &SpfClient,
    ) -> Option<DmarcOutput> {
        let mail_from_domain = c
            .mail_from
            .rsplit_once('@')
            .map_or(c.helo.as_str(), |(_, d)| d);
        let params =
            mail_auth::dmarc::verify::DmarcParameters::new(msg, dkim, mail_from_domain, spf);
        tokio::time::timeout(self.timeout, self.dns.verify_dmarc(params))
            .await
            .ok()
    }

    /// The lookups took too long: every signature is a temporary error.
    fn timed_out(&self, msg: &AuthenticatedMessage<'_>) -> Verification {
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
        Verification {
            signatures,
            header,
            author_domain: crate::message::address::split(
                msg.from.first().map_or("", String::as_str),
            )
            .1,
            ..Verification::default()
        }
    }

    /// amavisd-new's field for a message without signatures.
    fn none(&self) -> Verification {
        Verification {
            signatures: Vec::new(),
            header: format!(
                "Authentication-Results: {};\r\n\tdkim=none\r\n",
                self.id_comment
            ),
            ..Verification::default()
        }
    }
}

/// What the `Authentication-Results` field reports.
struct Results<'a, 'm> {
    from: &'a str,
    /// The signatures' outputs; `None`: nothing was signed.
    dkim: Option<&'a [DkimOutput<'m>]>,
    /// Envelope sender's result, HELO name's, and the client.
    spf: Option<(&'a SpfOutput, &'a SpfOutput, &'a SpfClient)>,
    /// mail-auth's output, ours, and the ARC override's note.
    dmarc: Option<(&'a DmarcOutput, &'a DmarcCheck, Option<&'a str>)>,
    arc: Option<&'a ArcCheck>,
}

/// One verified signature as plain data.
fn signature(o: &DkimOutput<'_>) -> SignatureResult {
    SignatureResult {
        result: word(o.result()),
        domain: o.signature().map(|s| s.d.clone()).unwrap_or_default(),
        selector: o.signature().map(|s| s.s.clone()).unwrap_or_default(),
        reason: reason(o.result()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_fields_are_amavisd_news() {
        let v = Verification {
            signatures: vec![SignatureResult {
                result: "pass",
                domain: "example.com".into(),
                selector: "s1".into(),
                reason: String::new(),
            }],
            spf: Some(SpfCheck {
                mail_from: "softfail",
                helo: "none",
                domain: "example.com".into(),
            }),
            author_domain: "example.com".into(),
            ..Verification::default()
        };
        assert_eq!(
            v.log_fields(),
            "dkim_sd=s1:example.com, dkim_id=@example.com, auth: dkim=pass spf=softfail"
        );
        assert_eq!(Verification::default().log_fields(), "auth: dkim=none");
    }
}
