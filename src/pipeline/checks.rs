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
use crate::message::{CheckResults, SpamResult, Spool, Unchecked, VirusScan};
use crate::policy_bank::Policy;
use crate::spam::SpamConfig;
use crate::spam::bayes::sql_store::SqlStore;
use crate::spam::engine::Rules;
use crate::spam::scan::Options;
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
    /// The Bayes store did not answer: the message waits (451) rather than pass with a
    /// score that lacks its Bayes part, as with any check that could not run.
    #[error("{0}")]
    Bayes(String),
}

/// Which checks the recipients' policies ask for.
#[derive(Debug, Clone, Default)]
pub struct CheckRequest {
    /// Banned rule sets to apply (those of recipients that do not bypass banned checks).
    pub banned_sets: Vec<String>,
    /// Scan for viruses (some recipient does not bypass virus checks).
    pub viruses: bool,
    /// Score for spam (some recipient does not bypass spam checks).
    pub spam: bool,
    /// The highest spam level any recipient acts on (kill, DSN and quarantine cut-offs):
    /// beyond it more rules change nothing, so the scan may stop there.
    pub spam_stop_at: Option<f64>,
    /// The envelope sender (SpamAssassin's `EnvelopeFrom`).
    pub sender: String,
}

impl CheckRequest {
    /// What the recipients with `policies` need: a check runs when one of them wants it.
    pub fn for_policies<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> CheckRequest {
        let mut req = CheckRequest::default();
        for p in policies {
            if !p.bypass_banned_checks && !req.banned_sets.contains(&p.banned_rules) {
                req.banned_sets.push(p.banned_rules.clone());
            }
            req.viruses |= !p.bypass_virus_checks;
            if !p.bypass_spam_checks {
                req.spam = true;
                let top = [
                    Some(p.spam_kill_level),
                    Some(p.spam_dsn_cutoff_level),
                    p.spam_quarantine_cutoff_level,
                    p.spam_tag3_level,
                ]
                .into_iter()
                .flatten()
                .fold(f64::MIN, f64::max);
                req.spam_stop_at = Some(req.spam_stop_at.map_or(top, |t: f64| t.max(top)));
            }
        }
        req
    }
}

/// The message's Bayes probability from the site's store; `None` until the store holds
/// `min` of each class. Runs on the blocking pool, so it may wait for the store.
fn bayes_probability(
    runtime: &tokio::runtime::Handle,
    store: &SqlStore,
    min: u64,
    view: &crate::spam::view::MessageView,
) -> Result<Option<f64>, crate::spam::bayes::sql_store::BayesError> {
    use crate::spam::bayes;
    let hashes = bayes::tokens::hashed(view);
    runtime.block_on(async {
        let totals = store.totals("").await?;
        if !bayes::trained(totals, min) {
            return Ok(None);
        }
        let counts = store.counts("", &hashes).await?;
        Ok(bayes::from_counts(totals, counts))
    })
}

/// The engine's hits plus a scanner's spam names, which amavisd-new adds as tests
/// `AV:<name>`; `None` when neither ran or found anything.
fn spam_result(
    engine: Option<crate::spam::scan::Outcome>,
    av: &[(String, f64)],
) -> Option<SpamResult> {
    if engine.is_none() && av.is_empty() {
        return None;
    }
    let mut r = SpamResult {
        score: 0.0,
        tests: Vec::new(),
        autolearn: String::new(),
    };
    if let Some(o) = engine {
        r.score = o.score;
        r.tests = o.hits.into_iter().map(|h| (h.name, h.score)).collect();
        r.autolearn = "no".into();
    }
    for (n, s) in av {
        r.score += s;
        r.tests.push((format!("AV:{n}"), *s));
    }
    Some(r)
}

/// True for list and bulk mail, to which amavisd-new sends no bounce.
fn is_bulk(spool: &Spool) -> bool {
    spool.header_field("List-Id").is_some()
        || spool.header_field("List-Post").is_some()
        || spool.header_field("Precedence").is_some_and(|p| {
            let p = p.to_ascii_lowercase();
            p == "bulk" || p == "list" || p == "junk"
        })
}

/// What the checks need, built once per configuration.
pub struct Checks {
    limits: decode::Limits,
    tempdir: PathBuf,
    rule_sets: BTreeMap<String, Arc<RuleSet>>,
    av: av::Engine,
    /// The spam rules and settings; `None` when the engine is off.
    spam: Option<(Arc<Rules>, SpamConfig)>,
    /// The Bayes store (`spam.bayes_store`), when there is one.
    bayes: Option<Arc<SqlStore>>,
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
            spam: if cfg.spam.enabled && !cfg.spam.rules_dir.is_dir() {
                // As amavisd-new without Mail::SpamAssassin ("SpamAssassin code NOT
                // loaded"): the filter runs, without spam scores, and says so loudly.
                tracing::error!(
                    "spam checks OFF: no rule files at {} (apt-get install spamassassin, or set spam.rules_dir)",
                    cfg.spam.rules_dir.display()
                );
                None
            } else if cfg.spam.enabled {
                let site = (!cfg.spam.site_dir.as_os_str().is_empty())
                    .then_some(cfg.spam.site_dir.as_path());
                let rules =
                    Rules::load_with(&cfg.spam.rules_dir, site, !cfg.spam.bayes_store.is_empty())
                        .map_err(|e| bad("spam.rules_dir".into(), e.to_string()))?;
                tracing::info!(
                    "spam rules from {}: {}",
                    cfg.spam.rules_dir.display(),
                    rules.summary()
                );
                Some((Arc::new(rules), cfg.spam.clone()))
            } else {
                None
            },
            bayes: if cfg.spam.enabled && !cfg.spam.bayes_store.is_empty() {
                Some(Arc::new(SqlStore::new(&cfg.spam.bayes_store).map_err(
                    |e| bad("spam.bayes_store".into(), e.to_string()),
                )?))
            } else {
                None
            },
        })
    }

    /// The spam rules in force, for the spamd listener.
    pub fn spam_rules(&self) -> Option<Arc<Rules>> {
        self.spam.as_ref().map(|(r, _)| Arc::clone(r))
    }

    /// True when a virus scanner is configured.
    pub fn scans_for_viruses(&self) -> bool {
        !self.av.is_empty()
    }

    /// Runs the checks `req` asks for on `spool`.
    pub async fn run(
        &self,
        spool: Arc<Spool>,
        req: &CheckRequest,
    ) -> Result<(CheckResults, Decoded), CheckError> {
        let limits = self.limits.clone();
        let tempdir = self.tempdir.clone();
        let sets: Vec<(String, Arc<RuleSet>)> = req
            .banned_sets
            .iter()
            .filter_map(|n| self.rule_sets.get(n).map(|s| (n.clone(), Arc::clone(s))))
            .collect();
        let bulk = is_bulk(&spool);
        let spam = match &self.spam {
            Some((rules, cfg)) if req.spam && spool.len() as usize <= cfg.max_size => Some((
                Arc::clone(rules),
                Options {
                    stop_at: if cfg.early_stop {
                        req.spam_stop_at
                    } else {
                        None
                    },
                    ..Options::default()
                },
            )),
            _ => None,
        };
        let sender = req.sender.clone();
        let bayes = self
            .bayes
            .clone()
            .zip(self.spam.as_ref().map(|(_, c)| c.bayes_min_learned));
        let runtime = tokio::runtime::Handle::current();
        let (decoded, banned, spam) = tokio::task::spawn_blocking(move || {
            let raw = spool.to_bytes_blocking().map_err(CheckError::Spool)?;
            let decoded = decode::decode_message(&raw, &limits, &tempdir);
            let banned: BTreeMap<String, _> = sets
                .iter()
                .map(|(n, set)| (n.clone(), banned::check(&decoded, set)))
                .collect();
            let failed = std::cell::RefCell::new(None);
            let probability = |view: &crate::spam::view::MessageView| {
                let (store, min) = bayes.as_ref()?;
                bayes_probability(&runtime, store, *min, view).unwrap_or_else(|e| {
                    *failed.borrow_mut() = Some(e.to_string());
                    None
                })
            };
            let spam =
                spam.map(|(rules, opts)| rules.check_with(&raw, &sender, opts, Some(&probability)));
            if let Some(e) = failed.into_inner() {
                return Err(CheckError::Bayes(e));
            }
            Ok::<_, CheckError>((decoded, banned, spam))
        })
        .await
        .map_err(|e| CheckError::Decode(crate::catch_panic::join_error_text(e)))??;
        let scanned = if !req.viruses {
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
            spam: spam_result(spam, &scanned.spam),
            virus_spam: scanned.spam,
            virus_fakes_sender: scanned.fakes_sender,
            bulk,
        };
        Ok((results, decoded))
    }
}
