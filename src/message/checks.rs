//! What the checks found, as plain data: the decoder's findings, banned parts, the virus scan
//! and what the virus names imply. The verdict reads this and nothing else from the checks,
//! and the log and the SQL record name what is here: checks never hand the verdict anything
//! but a [`CheckResults`].

use std::collections::BTreeMap;

/// Why some content was not checked: amavisd-new's CC_UNCHECKED minors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unchecked {
    /// 1: encrypted; 2: over limits.
    pub minor: u8,
    pub reason: String,
}

/// A bad header section finding: amavisd-new's CC_BADH minors (1 MIME error, 2 8-bit, 3
/// control characters, 4 empty field, 5 long line, 6 syntax, 7 missing field, 8 duplicate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadHeader {
    pub minor: u8,
    pub detail: String,
}

/// A banned part, and the rule that banned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BannedHit {
    /// The part's id and level (`p003`, `1/2`).
    pub part: String,
    pub level: String,
    /// The key that matched (`N=invoice.pdf.exe`, `T=.exe-ms`, `M=application/hta`, `A=U`)
    /// and the node it belongs to (the part itself or a container).
    pub key: String,
    /// The rule's pattern as written.
    pub rule: String,
    /// The rule's reason.
    pub why: String,
}

impl BannedHit {
    /// The matched value alone (`invoice.pdf.exe`, `.exe-ms`), as amavisd-new names a banned
    /// part in its replies and log (`BANNED: invoice.pdf.exe`).
    pub fn value(&self) -> &str {
        let v = self.key.split_once('=').map_or(&*self.key, |(_, v)| v);
        v.split(" (container ").next().unwrap_or(v)
    }
}

/// One infected part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirusHit {
    /// The part's id (`p002`).
    pub part: String,
    /// The names the scanner gave it, less those that only mean spam.
    pub names: Vec<String>,
}

/// The virus scan's outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum VirusScan {
    /// No scanner is configured, or policy bypasses virus checks.
    NotScanned,
    /// Every object was scanned; `hits` is empty when the message is clean.
    Done {
        /// The scanner that gave the result.
        scanner: String,
        /// Objects sent (after removing duplicates).
        objects: usize,
        hits: Vec<VirusHit>,
        /// Scanners that failed before this one, with why.
        failed: Vec<String>,
    },
    /// Every scanner failed: the message is not clean, it is unscanned.
    Failed { reason: String },
}

/// The spam check's result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpamResult {
    /// The total score.
    pub score: f64,
    /// Each test that hit, with its score (`BAYES_99`, `AV:Sanesecurity.Foo`).
    pub tests: Vec<(String, f64)>,
    /// The Bayes auto-learning outcome for `X-Spam-Status` (`ham`, `spam`, `no`, `disabled`).
    pub autolearn: String,
    /// The network checks' lookups: `12/12 in 3 ms`, and which timed out; empty when none
    /// were made.
    pub dns: String,
    /// Some lookup did not answer within the budget: the network rules may have missed.
    pub dns_incomplete: bool,
}

/// Everything the checks found in one message.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResults {
    /// Parts the decoder produced (containers and leaves).
    pub parts: usize,
    /// Content not looked at, and why.
    pub unchecked: Vec<Unchecked>,
    /// Header and MIME findings.
    pub bad_header: Vec<BadHeader>,
    /// Banned parts under each rule set that was applied, by set name (recipients may use
    /// different sets). A set with no hits maps to an empty list.
    pub banned: BTreeMap<String, Vec<BannedHit>>,
    /// The virus scan.
    pub virus: VirusScan,
    /// Scanner names that mean spam or phishing, with the score each adds to the spam check
    /// (amavisd-new's `@virus_name_to_spam_score_maps`; tests named `AV.<name>`).
    pub virus_spam: Vec<(String, f64)>,
    /// A found virus is known to forge its sender: no bounce may go to it.
    pub virus_fakes_sender: bool,
    /// The spam check, when it ran.
    pub spam: Option<SpamResult>,
    /// The spam check as recipients with their own Bayes store see it, by Bayes user name
    /// (their store over the site's may fire other BAYES_ rules).
    pub spam_per_user: BTreeMap<String, SpamResult>,
    /// The message is list or bulk mail (List-Id, List-Post, Precedence bulk/list/junk):
    /// no bounce goes back to it.
    pub bulk: bool,
    /// DMARC failed and the author domain's policy is `p=reject` (no trusted ARC sealer let
    /// it through): policy `dmarc_reject_score` may act on it.
    pub dmarc_reject: bool,
}

impl CheckResults {
    /// Every virus name found, in part order, without repeats.
    pub fn virus_names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        if let VirusScan::Done { hits, .. } = &self.virus {
            for n in hits.iter().flat_map(|h| &h.names) {
                if !out.contains(&n.as_str()) {
                    out.push(n);
                }
            }
        }
        out
    }

    /// Banned hits under rule set `set` (none when the set was not applied).
    pub fn banned_under(&self, set: &str) -> &[BannedHit] {
        self.banned.get(set).map_or(&[], Vec::as_slice)
    }
}
