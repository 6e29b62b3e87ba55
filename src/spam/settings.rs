//! The `[spam]` table: where SpamAssassin's rule files are, how large a message the engine
//! reads, whether a scan may stop early, and the optional spamd-protocol listener.

use serde::Deserialize;
use std::path::PathBuf;

/// Spam engine settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpamConfig {
    /// Run the embedded engine. Off: no spam scores, as with amavisd-new's
    /// `@bypass_spam_checks_maps = (1)` for everyone.
    pub enabled: bool,
    /// SpamAssassin's rule files (`*.cf`): Debian's `spamassassin` package installs them in
    /// /usr/share/spamassassin; sa-update writes `/var/lib/spamassassin/<version>/`.
    pub rules_dir: PathBuf,
    /// The site's `*.pre` (which plugins load) and `*.cf` (local.cf); empty for none.
    pub site_dir: PathBuf,
    /// Where the compiled one-pass prefilter (Hyperscan databases) is kept, so that a start
    /// or reload with unchanged rules is at full speed at once instead of after ~30 s of
    /// compiling; empty: compiled at every start.
    pub prefilter_cache: PathBuf,
    /// Messages larger than this many bytes are not scanned (amavisd-new's
    /// `$sa_mail_body_size_limit`, 400 KiB by default there; spam is small, scanning huge
    /// mail costs time for nothing).
    pub max_size: usize,
    /// Stop a scan once the score cannot drop below the highest kill level of the message's
    /// recipients whatever the remaining rules do. The X-Spam-Status tests list is then
    /// shorter; off gives every hit. Autolearning (a Bayes store with `bayes_auto_learn`)
    /// needs whole scans and turns it off.
    pub early_stop: bool,
    /// A spamd (SPAMC/1.5) listener for spamc clients, `127.0.0.1:783` style; empty for none.
    pub spamd_listen: String,
    /// The Bayes store `amavisd-learn` trains (`sqlite:var/bayes.sqlite`, `postgres://...`);
    /// empty for no Bayes. With a store the rules score with SpamAssassin's score set 2
    /// (Bayes, no network) and the BAYES_xx rules read it; a store that cannot answer makes
    /// mail wait (451), as any check that could not run.
    pub bayes_store: String,
    /// Learned spam and learned ham, each, before Bayes answers (SpamAssassin's
    /// `bayes_min_spam_num` / `bayes_min_ham_num`).
    pub bayes_min_learned: u64,
    /// Purging: a token not learned for this many days goes (dspam's `PurgeUnused`, 90);
    /// 0 keeps tokens however old.
    pub bayes_token_max_age_days: u64,
    /// Purging: a token seen in one message only (a hapax, most of a store and the least
    /// telling) goes after this many days (dspam's `PurgeHapaxes`, 30); 0 keeps them.
    pub bayes_hapax_max_age_days: u64,
    /// Purging: at most this many tokens per user, the least recently learned going first
    /// (SpamAssassin's `bayes_expiry_max_db_size`, 150,000); 0: no bound.
    pub bayes_max_tokens: u64,
    /// Purging: the record that a message was learned (which makes learning it again change
    /// nothing) goes after this many days, so the store stays bounded however much is
    /// learned; 0 keeps the records.
    pub bayes_seen_max_age_days: u64,
    /// Seconds between automatic purges by the filter (SpamAssassin's expiry period, 12
    /// hours); 0: only `amavisd-learn --purge`.
    pub bayes_purge_interval: u64,
    /// Learn from the filter's own verdicts (SpamAssassin's `bayes_auto_learn`): mail scoring
    /// at least `bayes_auto_learn_threshold_spam` without Bayes (with at least 3 points each
    /// from header and body rules) as spam, below `bayes_auto_learn_threshold_nonspam` as ham.
    pub bayes_auto_learn: bool,
    pub bayes_auto_learn_threshold_spam: f64,
    pub bayes_auto_learn_threshold_nonspam: f64,
    /// Report addresses (dspam's `spam-USER@` / `notspam-USER@`): a user sends or forwards
    /// missed spam to the first and false positives to the second; the reported message (an
    /// attached message/rfc822 part, else the whole mail) retrains the sender's own store and
    /// the report is not delivered. Empty: no report address.
    pub bayes_report_spam_to: String,
    pub bayes_report_ham_to: String,
    /// Retrain on the release tool's requests: `report` (amavisd-report) learns the message
    /// as spam, releasing mail quarantined as spam learns it as ham (a false positive); into
    /// the site's store and each original recipient's own.
    pub bayes_learn_on_release: bool,
    /// A second statistical engine beside Bayes (`logistic`: online logistic regression over
    /// the Bayes tokens and the rules' hits), kept in the Bayes store and trained
    /// wherever Bayes is (`amavisd-learn --learner`, autolearn, reports, releases). Its
    /// probability hits one of the LEARNER_xx rules as the Bayes probability hits a BAYES_xx
    /// rule. Off by default: its weights take about half as much room again as the Bayes
    /// tokens, and it costs about 2 ms of CPU a message in the slot benchmark.
    pub learner: bool,
    /// The scores of LEARNER_00 (probability under 1 %), LEARNER_80 (80 to 95 %),
    /// LEARNER_95 (95 to 99 %) and LEARNER_99 (over 99 %); a score of 0 leaves its rule out.
    /// Chosen by cross-validation on the development corpus (`examples/bayes_cv.rs`).
    pub learner_scores: [f64; 4],
    /// Purging: a learner feature whose weight is still zero goes when not trained for this
    /// many days (most features are seen in one message and never weigh anything); 0 keeps
    /// them. Features not trained for `bayes_token_max_age_days` go whatever they weigh.
    pub learner_idle_days: u64,
    /// Purging: at most this many learner features per user, the least recently trained
    /// going first; 0: no bound.
    pub learner_max_features: u64,
    /// Read attachments for the rules, as SpamAssassin's ExtractText and OLEVBMacro plugins
    /// do but without external programs: the text and links of Office documents (Word,
    /// Excel, PowerPoint, OpenDocument) and PDFs reach the body and URI rules, and Office
    /// macros the OLEMACRO rules. Also one level into attached zips.
    pub extract: bool,
    /// Read QR codes in attached PNG, JPEG and GIF images; their links reach the URI rules.
    pub extract_qr: bool,
    /// Attachments (and zip members) larger than this are not read (10 MiB).
    pub extract_max_part_size: usize,
    /// Bytes inflated from one document's compressed streams, all together (32 MiB): a
    /// deflate bomb stops here.
    pub extract_max_inflated: usize,
    /// Text kept from one document (256 KiB).
    pub extract_max_text: usize,
    /// Documents read per message (10, SpamAssassin's `extracttext_maxparts`).
    pub extract_max_parts: usize,
    /// Images searched for QR codes per message (5).
    pub extract_max_images: usize,
    /// Pixels decoded from one image (16,000,000: a phone photo; one byte each in memory).
    pub extract_max_pixels: u64,
    /// Milliseconds spent reading one message's attachments (2000); what is left unread
    /// then goes unread, the message is still scanned.
    pub extract_time_budget_ms: u64,
}

impl Default for SpamConfig {
    fn default() -> Self {
        SpamConfig {
            enabled: true,
            rules_dir: PathBuf::from("/usr/share/spamassassin"),
            site_dir: PathBuf::from("/etc/spamassassin"),
            prefilter_cache: PathBuf::from("var/prefilter"),
            max_size: 409_600,
            early_stop: true,
            spamd_listen: String::new(),
            bayes_store: String::new(),
            bayes_min_learned: 200,
            bayes_token_max_age_days: 90,
            bayes_hapax_max_age_days: 30,
            bayes_max_tokens: 150_000,
            bayes_seen_max_age_days: 365,
            bayes_purge_interval: 43_200,
            bayes_auto_learn: true,
            bayes_auto_learn_threshold_spam: 12.0,
            bayes_auto_learn_threshold_nonspam: 0.1,
            bayes_report_spam_to: String::new(),
            bayes_report_ham_to: String::new(),
            bayes_learn_on_release: true,
            learner: false,
            learner_scores: [-1.0, 1.5, 1.5, 1.5],
            learner_idle_days: 14,
            learner_max_features: 1_000_000,
            extract: true,
            extract_qr: true,
            extract_max_part_size: 10 << 20,
            extract_max_inflated: 32 << 20,
            extract_max_text: 256 << 10,
            extract_max_parts: 10,
            extract_max_images: 5,
            extract_max_pixels: 16_000_000,
            extract_time_budget_ms: 2000,
        }
    }
}

/// Seconds in a day.
const DAY: u64 = 86_400;

impl SpamConfig {
    /// What a purge at time `now` removes, from these settings.
    pub fn purge(&self, now: i64) -> crate::spam::bayes::store::Purge {
        crate::spam::bayes::store::Purge {
            now,
            max_age: self.bayes_token_max_age_days.saturating_mul(DAY),
            hapax_max_age: self.bayes_hapax_max_age_days.saturating_mul(DAY),
            max_tokens: self.bayes_max_tokens,
            seen_max_age: self.bayes_seen_max_age_days.saturating_mul(DAY),
        }
    }

    /// How attachments are read for the rules; `None` when they are not.
    pub fn extract_limits(&self) -> Option<crate::extract::Limits> {
        self.extract.then_some(crate::extract::Limits {
            max_input: self.extract_max_part_size,
            max_inflated: self.extract_max_inflated,
            max_text: self.extract_max_text,
            max_parts: self.extract_max_parts,
            max_images: if self.extract_qr {
                self.extract_max_images
            } else {
                0
            },
            max_pixels: self.extract_max_pixels,
            time_budget: std::time::Duration::from_millis(self.extract_time_budget_ms),
        })
    }

    /// What a purge at time `now` removes from the learner's weights.
    pub fn weight_purge(&self, now: i64) -> crate::spam::bayes::weights::WeightPurge {
        crate::spam::bayes::weights::WeightPurge {
            now,
            max_age: self.bayes_token_max_age_days.saturating_mul(DAY),
            idle_max_age: self.learner_idle_days.saturating_mul(DAY),
            l1: crate::spam::logistic::Params::default().l1,
            max_rows: self.learner_max_features,
        }
    }
}
