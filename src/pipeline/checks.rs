//! Runs the checks on one message: decode, banned rules, virus scan, in that order, and
//! gathers what they found into the plain [`CheckResults`].
//!
//! Decoding and the banned rules are CPU work on possibly large data, so they run on tokio's
//! blocking pool and never stall the sessions sharing a worker thread. The virus scan is I/O
//! (clamd, a program) and runs on the message's own task.

use crate::av;
use crate::banned::{self, RuleSet};
use crate::config::{Config, ConfigError};
use crate::decode::{self, Decoded};
use crate::message::{CheckResults, Spool, Unchecked, VirusScan};
use crate::policy_bank::Policy;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Why the checks could not produce a result (the message then waits: 451 4.3.0).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot read the spooled message: {0}")]
    Spool(std::io::Error),
    #[error("decoding failed: {0}")]
    Decode(String),
}

/// What the checks need, built once per configuration.
pub struct Checks {
    limits: decode::Limits,
    tempdir: PathBuf,
    rule_sets: BTreeMap<String, Arc<RuleSet>>,
    av: av::Engine,
}

impl Checks {
    /// Compiles the rule sets and builds the scanners of `cfg`.
    pub fn new(cfg: &Config) -> Result<Checks, ConfigError> {
        let bad = |key: String, reason: String| ConfigError::Key {
            file: PathBuf::from("(configuration)"),
            key,
            reason,
        };
        Ok(Checks {
            limits: cfg.decode.clone(),
            tempdir: cfg.tempdir.clone(),
            rule_sets: cfg
                .banned
                .compile()
                .map_err(|(k, r)| bad(format!("banned.{k}"), r))?
                .into_iter()
                .map(|(k, v)| (k, Arc::new(v)))
                .collect(),
            av: cfg
                .av
                .build(&cfg.tempdir)
                .map_err(|(k, r)| bad(format!("av.{k}"), r))?,
        })
    }

    /// True when a virus scanner is configured.
    pub fn scans_for_viruses(&self) -> bool {
        !self.av.is_empty()
    }

    /// Runs every check `policy` asks for on `spool`.
    pub async fn run(
        &self,
        spool: Arc<Spool>,
        policy: &Policy,
    ) -> Result<(CheckResults, Decoded), CheckError> {
        let limits = self.limits.clone();
        let tempdir = self.tempdir.clone();
        let set = self.rule_sets.get(&policy.banned_rules).cloned();
        let bypass_banned = policy.bypass_banned_checks;
        let set_name = policy.banned_rules.clone();
        let (decoded, hits) = tokio::task::spawn_blocking(move || {
            let raw = spool.to_bytes_blocking().map_err(CheckError::Spool)?;
            let decoded = decode::decode_message(&raw, &limits, &tempdir);
            let hits = match (&set, bypass_banned) {
                (Some(set), false) => Some(banned::check(&decoded, set)),
                _ => None,
            };
            Ok::<_, CheckError>((decoded, hits))
        })
        .await
        .map_err(|e| CheckError::Decode(crate::catch_panic::join_error_text(e)))??;
        let mut banned = BTreeMap::new();
        if let Some(hits) = hits {
            banned.insert(set_name, hits);
        }
        let scanned = if policy.bypass_virus_checks {
            av::EngineResult {
                scan: VirusScan::NotScanned,
                spam: Vec::new(),
                fakes_sender: false,
                too_large: Vec::new(),
            }
        } else {
            self.av.scan(&decoded).await
        };
        let mut unchecked = decoded.unchecked.clone();
        if !scanned.too_large.is_empty() {
            unchecked.push(Unchecked {
                minor: 2,
                reason: format!(
                    "too large for the virus scanner: {}",
                    scanned.too_large.join(", ")
                ),
            });
        }
        let results = CheckResults {
            parts: decoded.parts.len(),
            unchecked,
            bad_header: decoded.bad_header.clone(),
            banned,
            virus: scanned.scan,
            virus_spam: scanned.spam,
            virus_fakes_sender: scanned.fakes_sender,
        };
        Ok((results, decoded))
    }
}
