//! The rules over the message's authentication (SpamAssassin's SPF, DKIM and DMARC
//! plugins' eval functions), counted from the verification that ran beside the checks.

use crate::dkim::Verification;

/// One authentication eval function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthEval {
    /// `check_for_spf_<result>()`: the envelope sender's SPF result.
    SpfMailFrom(&'static str),
    /// `check_for_spf_helo_<result>()`: the HELO name's.
    SpfHelo(&'static str),
    /// `check_dkim_signed([domain ...])`: some signature (of one of the domains).
    DkimSigned(Vec<String>),
    /// `check_dkim_valid([domain ...])`: some signature that verified.
    DkimValid(Vec<String>),
    /// `check_dkim_valid_author_sig()`: one by the author (From:) domain.
    DkimValidAuthor,
    /// `check_dkim_valid_envelopefrom()`: one by the envelope sender's domain.
    DkimValidEnvelopeFrom,
    /// `check_arc_signed()`: the message carries ARC sets.
    ArcSigned,
    /// `check_arc_valid()`: and the chain verified.
    ArcValid,
    /// `check_dmarc_<policy>()`: `pass`, or a failure under `reject`, `quarantine`,
    /// `none`; `missing`: no DMARC record.
    Dmarc(&'static str),
}

const SPF_RESULTS: [&str; 7] = [
    "pass",
    "fail",
    "softfail",
    "neutral",
    "none",
    "permerror",
    "temperror",
];

impl AuthEval {
    /// The eval function `name(args)`, if it is one of these.
    pub fn parse(name: &str, args: &[String]) -> Option<AuthEval> {
        let domains = || args.iter().map(|a| a.trim().to_ascii_lowercase()).collect();
        if let Some(r) = name.strip_prefix("check_for_spf_helo_") {
            return SPF_RESULTS
                .iter()
                .find(|w| **w == r)
                .map(|w| AuthEval::SpfHelo(w));
        }
        if let Some(r) = name.strip_prefix("check_for_spf_") {
            return SPF_RESULTS
                .iter()
                .find(|w| **w == r)
                .map(|w| AuthEval::SpfMailFrom(w));
        }
        Some(match name {
            "check_dkim_signed" => AuthEval::DkimSigned(domains()),
            "check_dkim_valid" | "check_dkim_dependable" => AuthEval::DkimValid(domains()),
            "check_dkim_valid_author_sig" => AuthEval::DkimValidAuthor,
            "check_dkim_valid_envelopefrom" => AuthEval::DkimValidEnvelopeFrom,
            "check_arc_signed" => AuthEval::ArcSigned,
            "check_arc_valid" => AuthEval::ArcValid,
            "check_dmarc_pass" => AuthEval::Dmarc("pass"),
            "check_dmarc_reject" => AuthEval::Dmarc("reject"),
            "check_dmarc_quarantine" => AuthEval::Dmarc("quarantine"),
            "check_dmarc_none" => AuthEval::Dmarc("none"),
            "check_dmarc_missing" => AuthEval::Dmarc("missing"),
            _ => return None,
        })
    }

    /// Does it hit for `v`?
    pub fn hits(&self, v: &Verification) -> bool {
        let of = |domains: &[String], d: &str| {
            let d = d.to_ascii_lowercase();
            domains.is_empty()
                || domains
                    .iter()
                    .any(|x| d == *x || d.ends_with(&format!(".{x}")))
        };
        let valid_by = |d: &str| !d.is_empty() && v.passed_for(d);
        match self {
            AuthEval::SpfMailFrom(w) => v.spf.as_ref().is_some_and(|s| s.mail_from == *w),
            AuthEval::SpfHelo(w) => v.spf.as_ref().is_some_and(|s| s.helo == *w),
            AuthEval::DkimSigned(ds) => v.signatures.iter().any(|s| of(ds, &s.domain)),
            AuthEval::DkimValid(ds) => v
                .signatures
                .iter()
                .any(|s| s.result == "pass" && of(ds, &s.domain)),
            AuthEval::DkimValidAuthor => valid_by(&v.author_domain),
            AuthEval::DkimValidEnvelopeFrom => valid_by(&v.envelope_domain),
            AuthEval::ArcSigned => v.arc.is_some(),
            AuthEval::ArcValid => v.arc.as_ref().is_some_and(|a| a.result == "pass"),
            AuthEval::Dmarc(p) => v.dmarc.as_ref().is_some_and(|d| match *p {
                "pass" => d.result == "pass",
                "missing" => d.policy.is_empty(),
                policy => d.result == "fail" && d.policy == policy,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkim::{DmarcCheck, SignatureResult, SpfCheck};

    fn v() -> Verification {
        Verification {
            signatures: vec![
                SignatureResult {
                    result: "pass",
                    domain: "lists.example.org".into(),
                    selector: "s".into(),
                    reason: String::new(),
                },
                SignatureResult {
                    result: "fail",
                    domain: "example.com".into(),
                    selector: "s".into(),
                    reason: "bad".into(),
                },
            ],
            spf: Some(SpfCheck {
                mail_from: "softfail",
                helo: "none",
                domain: "example.com".into(),
            }),
            dmarc: Some(DmarcCheck {
                result: "fail",
                policy: "reject",
                domain: "example.com".into(),
            }),
            author_domain: "example.com".into(),
            envelope_domain: "lists.example.org".into(),
            ..Verification::default()
        }
    }

    fn hits(name: &str, args: &[&str]) -> bool {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        AuthEval::parse(name, &args).unwrap().hits(&v())
    }

    #[test]
    fn each_function_reads_its_result() {
        assert!(hits("check_for_spf_softfail", &[]) && !hits("check_for_spf_pass", &[]));
        assert!(hits("check_for_spf_helo_none", &[]) && !hits("check_for_spf_helo_fail", &[]));
        assert!(hits("check_dkim_signed", &[]) && hits("check_dkim_valid", &["example.org"]));
        assert!(!hits("check_dkim_valid", &["example.com"]));
        assert!(!hits("check_dkim_valid_author_sig", &[]));
        assert!(hits("check_dkim_valid_envelopefrom", &[]));
        assert!(hits("check_dmarc_reject", &[]) && !hits("check_dmarc_pass", &[]));
        assert!(!hits("check_dmarc_missing", &[]) && !hits("check_dmarc_quarantine", &[]));
        assert!(AuthEval::parse("check_for_spf_whatever", &[]).is_none());
        assert!(AuthEval::parse("check_dkim_adsp", &[]).is_none());
    }
}
