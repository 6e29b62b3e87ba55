//! SPF (the envelope sender and the HELO name of the client that reached us) and DMARC (the
//! author domain's policy over the DKIM and SPF results), on `mail-auth`, as plain results
//! the spam rules (SpamAssassin's SPF_*, DMARC_*) and `Authentication-Results` read.

use mail_auth::dmarc::Policy;
use mail_auth::{DmarcOutput, DmarcResult, SpfOutput, SpfResult};
use std::net::IpAddr;

/// Who handed us the message: what SPF checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfClient {
    pub ip: IpAddr,
    /// The HELO/EHLO name it gave; empty when unknown.
    pub helo: String,
    /// The envelope sender; empty for the null sender.
    pub mail_from: String,
}

/// SPF's answers for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfCheck {
    /// For the envelope sender's domain (the HELO name's for the null sender):
    /// `pass`, `fail`, `softfail`, `neutral`, `none`, `temperror`, `permerror`.
    pub mail_from: &'static str,
    /// For the HELO name.
    pub helo: &'static str,
    /// The domain checked for `mail_from`.
    pub domain: String,
}

/// DMARC's answer for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcCheck {
    /// `pass`, `fail`, `none` (no policy, or not applicable), `temperror`, `permerror`.
    pub result: &'static str,
    /// The author domain's policy: `reject`, `quarantine`, `none`; empty when it has no
    /// DMARC record.
    pub policy: &'static str,
    /// The author (From:) domain.
    pub domain: String,
}

/// ARC's answer for one message (RFC 8617).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArcCheck {
    /// `pass`, `fail`, `none`, `neutral`, `temperror`, `permerror`.
    pub result: &'static str,
    /// The sealers (`ARC-Seal` d=), oldest first.
    pub sealers: Vec<String>,
}

impl ArcCheck {
    /// The newest sealer, when the chain verified: whose word a receiver may take.
    pub fn passed_by(&self) -> Option<&str> {
        (self.result == "pass").then(|| self.sealers.last().map(String::as_str))?
    }
}

/// SPF's word for a result, as RFC 7208 and `Authentication-Results` write it.
pub fn spf_word(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

impl SpfCheck {
    pub fn of(mail_from: &SpfOutput, helo: &SpfOutput) -> SpfCheck {
        SpfCheck {
            mail_from: spf_word(mail_from.result()),
            helo: spf_word(helo.result()),
            domain: mail_from.domain().to_string(),
        }
    }

    /// Both lookups ran out of time.
    pub fn timed_out() -> SpfCheck {
        SpfCheck {
            mail_from: "temperror",
            helo: "temperror",
            domain: String::new(),
        }
    }
}

impl DmarcCheck {
    pub fn of(out: &DmarcOutput) -> DmarcCheck {
        let has_record = !matches!(out.policy(), Policy::Unspecified) && !out.domain().is_empty();
        let result = match out.result() {
            DmarcResult::Pass => "pass",
            DmarcResult::Fail(_) => "fail",
            DmarcResult::TempError(_) => "temperror",
            DmarcResult::PermError(_) => "permerror",
            DmarcResult::None => "none",
        };
        DmarcCheck {
            result,
            policy: match out.policy() {
                _ if !has_record || result == "none" => "",
                Policy::Reject => "reject",
                Policy::Quarantine => "quarantine",
                Policy::None | Policy::Unspecified => "none",
            },
            domain: out.domain().to_string(),
        }
    }
}
