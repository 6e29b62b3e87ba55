//! Everything the pipeline builds from one configuration, and replaces at once on reload.

use super::analyzers::Checks;
use crate::config::{ConfigError, Templates, ValidConfig};
use crate::dkim::{DkimError, Signer, Verifier};
use crate::policy_bank::Policies;
use crate::smtp_out::Forwarder;
use crate::sql::Store;
use std::sync::Arc;

/// Everything that a reload replaces at once.
pub(super) struct State {
    pub cfg: Arc<ValidConfig>,
    pub checks: Checks,
    pub policies: Policies,
    pub templates: Templates,
    pub store: Option<Arc<Store>>,
    pub forwarder: Forwarder,
    pub notifier: Forwarder,
    /// DKIM verification, when on.
    pub verifier: Option<Verifier>,
    /// DKIM signing of originating mail, when on and keyed.
    pub signer: Option<Signer>,
}

impl State {
    /// Builds the scanners, rule sets, stores and keys of `cfg`.
    pub fn new(cfg: Arc<ValidConfig>) -> Result<State, ConfigError> {
        if cfg.av.primary.is_empty() && cfg.av.backup.is_empty() {
            tracing::warn!("no virus scanner configured: mail is not scanned for viruses");
        }
        let store = Store::new(&cfg.sql)
            .map_err(|e| bad(&cfg, "sql.url", e.to_string()))?
            .map(Arc::new);
        let dkim_error = |key: &str, e: DkimError| bad(&cfg, key, e.to_string());
        // Verification runs for the Authentication-Results field (`dkim.verify`) and for the
        // spam rules over DKIM, SPF and DMARC (network checks on).
        let verifier = if cfg.dkim.verify || (cfg.dns.enabled && cfg.spam.enabled) {
            Some(
                Verifier::build_with(&cfg.dkim, cfg.authserv_id(), &cfg.dns)
                    .map_err(|e| dkim_error("dkim.verify", e))?,
            )
        } else {
            None
        };
        let signer = Signer::new(&cfg.dkim).map_err(|e| dkim_error("dkim.keys", e))?;
        Ok(State {
            verifier,
            signer,
            store,
            templates: cfg.notify.templates()?,
            checks: Checks::new(&cfg)?,
            policies: cfg
                .policies()
                .map_err(|(key, reason)| bad(&cfg, &key, reason))?,
            forwarder: Forwarder::new(
                cfg.forward_target(),
                cfg.myhostname.clone(),
                cfg.forward.clone(),
            ),
            notifier: Forwarder::new(
                cfg.notify_target(),
                cfg.myhostname.clone(),
                cfg.forward.clone(),
            ),
            cfg,
        })
    }

    /// The SQL store when per-recipient lookups are on.
    pub fn sql_lookups(&self) -> Option<&Store> {
        self.store.as_deref().filter(|_| self.cfg.sql.lookups)
    }
}

/// A key of a configuration that loaded but cannot be built.
fn bad(cfg: &ValidConfig, key: &str, reason: String) -> ConfigError {
    ConfigError::Key {
        file: cfg.source().to_path_buf(),
        key: key.into(),
        reason,
    }
}
