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
    /// /usr/share/spamassassin; sa-update writes /var/lib/spamassassin/<version>/.
    pub rules_dir: PathBuf,
    /// The site's `*.pre` (which plugins load) and `*.cf` (local.cf); empty for none.
    pub site_dir: PathBuf,
    /// Messages larger than this many bytes are not scanned (amavisd-new's
    /// `$sa_mail_body_size_limit`, 400 KiB by default there; spam is small, scanning huge
    /// mail costs time for nothing).
    pub max_size: usize,
    /// Stop a scan once the score cannot drop below the highest kill level of the message's
    /// recipients whatever the remaining rules do. The X-Spam-Status tests list is then
    /// shorter; off gives every hit.
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
}

impl Default for SpamConfig {
    fn default() -> Self {
        SpamConfig {
            enabled: true,
            rules_dir: PathBuf::from("/usr/share/spamassassin"),
            site_dir: PathBuf::from("/etc/spamassassin"),
            max_size: 409_600,
            early_stop: true,
            spamd_listen: String::new(),
            bayes_store: String::new(),
            bayes_min_learned: 200,
        }
    }
}
