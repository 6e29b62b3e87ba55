//! The policy settings: amavisd-new's "dynamic config vars" that decide what happens to
//! checked mail, with amavisd-new's defaults. `[policy]` sets them site-wide; policy banks and
//! per-recipient entries override any of them by the same names.

use crate::message::Destiny;
use serde::{Deserialize, Serialize};

/// What to do when every virus scanner failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanFailure {
    /// Answer 451 so the MTA keeps the mail and retries (amavisd-new's behaviour).
    Tempfail,
    /// Pass the mail on as UNCHECKED (its own destiny and headers apply).
    Unchecked,
}

/// One resolved set of settings (a bank path, then a recipient's overrides).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// `$final_virus_destiny`.
    pub final_virus_destiny: Destiny,
    /// `$final_banned_destiny`.
    pub final_banned_destiny: Destiny,
    /// `$final_unchecked_destiny`.
    pub final_unchecked_destiny: Destiny,
    /// `$final_spam_destiny` (score at or above the kill level).
    pub final_spam_destiny: Destiny,
    /// `$final_bad_header_destiny`.
    pub final_bad_header_destiny: Destiny,
    /// `$final_oversized_destiny` (larger than `message_size_limit`).
    pub final_oversized_destiny: Destiny,
    /// What a failed virus scan means.
    pub virus_scan_failure: ScanFailure,
    /// `@virus_lovers_maps`: gets infected mail (with an alert field).
    pub virus_lover: bool,
    /// `@banned_files_lovers_maps`.
    pub banned_files_lover: bool,
    /// `@unchecked_lovers_maps`.
    pub unchecked_lover: bool,
    /// `@spam_lovers_maps`.
    pub spam_lover: bool,
    /// `@bad_header_lovers_maps`.
    pub bad_header_lover: bool,
    /// `@bypass_virus_checks_maps`: not scanned for this recipient (a virus found because of
    /// other recipients is delivered to it as to a lover).
    pub bypass_virus_checks: bool,
    /// `@bypass_banned_checks_maps`.
    pub bypass_banned_checks: bool,
    /// `@bypass_spam_checks_maps`.
    pub bypass_spam_checks: bool,
    /// `@bypass_header_checks_maps`.
    pub bypass_header_checks: bool,
    /// The banned rule set (`banned_rulenames`), a name from `[banned]`.
    pub banned_rules: String,
    /// `$sa_tag_level_deflt`: spam headers from this score on (none: always).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spam_tag_level: Option<f64>,
    /// `$sa_tag2_level_deflt`: spammy (X-Spam-Flag: YES, subject tag) from this score on.
    pub spam_tag2_level: f64,
    /// `$sa_tag3_level_deflt`: a second subject tag from this score on (none: off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spam_tag3_level: Option<f64>,
    /// `$sa_kill_level_deflt`: spam (final_spam_destiny) from this score on.
    pub spam_kill_level: f64,
    /// Points added to the spam score of mail that fails DMARC under its author domain's
    /// `p=reject` (test `DMARC_REJECT_POLICY`): 0 leaves it to the rules' DMARC_REJECT
    /// score, as SpamAssassin does; at or above `spam_kill_level` such mail meets
    /// `final_spam_destiny` (a site that enforces DMARC sets 20 and D_REJECT or quarantine).
    pub dmarc_reject_score: f64,
    /// `$sa_dsn_cutoff_level`: no bounce to the sender from this score on.
    pub spam_dsn_cutoff_level: f64,
    /// `$sa_quarantine_cutoff_level`: not quarantined from this score on (none: off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spam_quarantine_cutoff_level: Option<f64>,
    /// Bayes with this recipient's own token store over the site's (dspam's merged groups;
    /// SpamAssassin's per-user Bayes): the recipient's reports (`spam.bayes_report_*_to`,
    /// release `report`) train it. Off: the site's store alone.
    pub bayes_per_user: bool,
    /// `message_size_limit`: larger messages are OVERSIZED for this recipient; 0 is none.
    pub message_size_limit: u64,
    /// `$soft_bounce`: rejects and bounces become 4xx (for testing a new setup).
    pub soft_bounce: bool,
    /// `originating`: the mail comes from our own users (set by the MYNETS bank).
    pub originating: bool,
    /// `@local_domains_maps`: domains whose recipients are local ("example.com" that domain,
    /// ".example.com" it and its subdomains, "!x" excludes, "%d" is mydomain).
    pub local_domains: Vec<String>,
    /// `$recipient_delimiter` between the user and the address extension.
    pub recipient_delimiter: String,
    /// `$addr_extension_virus`: passed infected mail goes to `user+EXT@` (empty: off).
    pub addr_extension_virus: String,
    /// `$addr_extension_banned`.
    pub addr_extension_banned: String,
    /// `$addr_extension_spam` (at tag2 and above).
    pub addr_extension_spam: String,
    /// `$addr_extension_bad_header`.
    pub addr_extension_bad_header: String,
    /// Subject prefixes by category (`%subject_tag_maps_by_ccat`); empty: none. `_SCORE_`,
    /// `_REQD_` and `_YESNO_` expand.
    pub subject_tag_virus: String,
    pub subject_tag_banned: String,
    pub subject_tag_unchecked: String,
    pub subject_tag_bad_header: String,
    /// `$sa_spam_subject_tag1`: at tag level.
    pub spam_subject_tag: String,
    /// `$sa_spam_subject_tag`: at tag2 level.
    pub spam_subject_tag2: String,
    /// At tag3 level.
    pub spam_subject_tag3: String,
    /// `$virus_admin` (and banned, spam, bad header): who gets a notice; empty: nobody.
    pub virus_admin: String,
    pub banned_admin: String,
    pub spam_admin: String,
    pub bad_header_admin: String,
    /// Where blocked mail of a category is kept (`$virus_quarantine_method` ...):
    /// `local:NAME` (a file in quarantine.directory; %m is the mail_id, .gz compresses),
    /// `sql:` (the SQL quarantine table), or empty (not kept).
    pub virus_quarantine_method: String,
    pub banned_quarantine_method: String,
    pub spam_quarantine_method: String,
    pub bad_header_quarantine_method: String,
    pub unchecked_quarantine_method: String,
    pub oversized_quarantine_method: String,
    /// `$warnvirusrecip`, `$warnbannedrecip`, `$warnbadhrecip`: tell a recipient whose copy
    /// was blocked.
    pub warn_virus_recip: bool,
    pub warn_banned_recip: bool,
    pub warn_bad_header_recip: bool,
}

impl Policy {
    /// The quarantine method for blocked mail of category `c`.
    pub fn quarantine_method(&self, c: crate::message::Category) -> &str {
        use crate::message::Category as C;
        match c {
            C::Virus => &self.virus_quarantine_method,
            C::Banned => &self.banned_quarantine_method,
            C::Spam | C::Spammy => &self.spam_quarantine_method,
            C::BadHeader => &self.bad_header_quarantine_method,
            C::Unchecked => &self.unchecked_quarantine_method,
            C::Oversized => &self.oversized_quarantine_method,
            C::Mta | C::Clean => "",
        }
    }

    /// Checks what serde cannot: the quarantine methods' syntax. The error is `(key, reason)`.
    pub fn check(&self) -> Result<(), (String, String)> {
        for (k, v) in [
            ("virus_quarantine_method", &self.virus_quarantine_method),
            ("banned_quarantine_method", &self.banned_quarantine_method),
            ("spam_quarantine_method", &self.spam_quarantine_method),
            (
                "bad_header_quarantine_method",
                &self.bad_header_quarantine_method,
            ),
            (
                "unchecked_quarantine_method",
                &self.unchecked_quarantine_method,
            ),
            (
                "oversized_quarantine_method",
                &self.oversized_quarantine_method,
            ),
        ] {
            crate::quarantine::Method::parse(v).map_err(|e| (k.to_string(), e))?;
        }
        Ok(())
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            final_virus_destiny: Destiny::Discard,
            final_banned_destiny: Destiny::Discard,
            final_unchecked_destiny: Destiny::Pass,
            final_spam_destiny: Destiny::Pass,
            final_bad_header_destiny: Destiny::Pass,
            final_oversized_destiny: Destiny::Bounce,
            virus_scan_failure: ScanFailure::Tempfail,
            virus_lover: false,
            banned_files_lover: false,
            unchecked_lover: false,
            spam_lover: false,
            bad_header_lover: false,
            bypass_virus_checks: false,
            bypass_banned_checks: false,
            bypass_spam_checks: false,
            bypass_header_checks: false,
            banned_rules: "DEFAULT".into(),
            spam_tag_level: Some(2.0),
            spam_tag2_level: 6.2,
            spam_tag3_level: None,
            spam_kill_level: 6.9,
            dmarc_reject_score: 0.0,
            spam_dsn_cutoff_level: 10.0,
            spam_quarantine_cutoff_level: None,
            bayes_per_user: false,
            message_size_limit: 0,
            soft_bounce: false,
            originating: false,
            local_domains: vec![".%d".into()],
            recipient_delimiter: "+".into(),
            addr_extension_virus: String::new(),
            addr_extension_banned: String::new(),
            addr_extension_spam: String::new(),
            addr_extension_bad_header: String::new(),
            subject_tag_virus: "***INFECTED*** ".into(),
            subject_tag_banned: String::new(),
            subject_tag_unchecked: "***UNCHECKED*** ".into(),
            subject_tag_bad_header: String::new(),
            spam_subject_tag: String::new(),
            spam_subject_tag2: "***Spam*** ".into(),
            spam_subject_tag3: String::new(),
            virus_admin: String::new(),
            banned_admin: String::new(),
            spam_admin: String::new(),
            bad_header_admin: String::new(),
            virus_quarantine_method: "local:virus-%m".into(),
            banned_quarantine_method: "local:banned-%m".into(),
            spam_quarantine_method: "local:spam-%m.gz".into(),
            bad_header_quarantine_method: "local:badh-%m".into(),
            unchecked_quarantine_method: String::new(),
            oversized_quarantine_method: String::new(),
            warn_virus_recip: false,
            warn_banned_recip: false,
            warn_bad_header_recip: false,
        }
    }
}
