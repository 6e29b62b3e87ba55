//! Policy: the settings that decide what happens to checked mail. Today one set, the `[policy]`
//! table (amavisd-new's defaults, overridable there); policy banks chosen by port, client
//! address or sender, and per-recipient lookups, will override these same keys.

use crate::message::Destiny;
use serde::Deserialize;

/// What to do when every virus scanner failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanFailure {
    /// Answer 451 so the MTA keeps the mail and retries (amavisd-new's behaviour).
    Tempfail,
    /// Pass the mail on as UNCHECKED (its own destiny and headers apply).
    Unchecked,
}

/// The `[policy]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// `$final_virus_destiny`.
    pub final_virus_destiny: Destiny,
    /// `$final_banned_destiny`.
    pub final_banned_destiny: Destiny,
    /// `$final_unchecked_destiny`.
    pub final_unchecked_destiny: Destiny,
    /// `$final_bad_header_destiny`.
    pub final_bad_header_destiny: Destiny,
    /// What a failed virus scan means.
    pub virus_scan_failure: ScanFailure,
    /// `@bypass_virus_checks_maps`: do not scan for viruses.
    pub bypass_virus_checks: bool,
    /// `@bypass_banned_checks_maps`: do not apply banned rules.
    pub bypass_banned_checks: bool,
    /// `@bypass_header_checks_maps`: ignore bad header findings.
    pub bypass_header_checks: bool,
    /// The banned rule set (amavisd-new's `banned_rulenames`), a name from `[banned]`.
    pub banned_rules: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            final_virus_destiny: Destiny::Discard,
            final_banned_destiny: Destiny::Discard,
            final_unchecked_destiny: Destiny::Pass,
            final_bad_header_destiny: Destiny::Pass,
            virus_scan_failure: ScanFailure::Tempfail,
            bypass_virus_checks: false,
            bypass_banned_checks: false,
            bypass_header_checks: false,
            banned_rules: "DEFAULT".into(),
        }
    }
}
