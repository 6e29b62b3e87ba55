//! Step: the checks on one message: decode, banned rules, virus scan, spam, in that order
//! (and DKIM verification beside them), gathered into the plain [`CheckResults`].
//!
//! Decoding and the banned rules are CPU work on possibly large data, so they run on tokio's
//! blocking pool and never stall the sessions sharing a worker thread. The virus scan is I/O
//! (clamd, a program) and runs on the message's own task.

use super::job::{Checked, Job, Tempfail, read_whole};
use super::state::State;
use crate::av;
use crate::banned::{self, RuleSet};
use crate::config::{Config, ConfigError};
use crate::decode::{self, Decoded};
use crate::message::{CheckResults, SpamResult, Spool, Unchecked, VirusScan};
use crate::policy_bank::Policy;
use crate::spam::SpamConfig;
use crate::spam::bayes::shared::SharedStore;
use crate::spam::bayes::store::{self as bayes_store, BayesError};
use crate::spam::bayes::{self, Class};
use crate::spam::engine::Rules;
use crate::spam::scan::Options;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Runs the checks the recipients' policies ask for, and fills `job.checked`. A check that
/// could not run makes the message wait.
pub(super) async fn check(st: &State, job: &mut Job) -> Result<(), Tempfail> {
    let mut req = CheckRequest::for_policies(job.rcpts.iter().map(|r| r.settings.policy.as_ref()));
    req.sender = job.env.mail_from.clone();
    req.banks = job.bank.banks.clone();
    req.smtputf8 = job.env.has_mail_flag("SMTPUTF8");
    for u in job.rcpts.iter().filter_map(|r| r.bayes_user.as_ref()) {
        if !req.bayes_users.contains(u) {
            req.bayes_users.push(u.clone());
        }
    }
    req.no_autolearn = job.rcpts.iter().any(|r| r.report.is_some());
    crate::stats::sessions::stage("checks");
    let began = Instant::now();
    let (checked, dkim) = tokio::join!(
        st.checks.run(Arc::clone(&job.spool), &req),
        verify_dkim(st.verifier.as_ref(), &job.spool)
    );
    crate::stats::stage("checks", began.elapsed());
    let (results, _decoded) = checked.map_err(|e| {
        Tempfail::processing(&job.am_id, &e.to_string()).because(format!("checks failed: {e}"))
    })?;
    if let VirusScan::Failed { reason } = &results.virus {
        crate::stats::scanner_error();
        tracing::warn!("({}) virus scan failed: {reason}", job.am_id);
    }
    job.checked = Some(Checked { results, dkim });
    Ok(())
}

/// The message's DKIM signatures verified, when verification is on.
async fn verify_dkim(
    verifier: Option<&crate::dkim::Verifier>,
    spool: &Arc<Spool>,
) -> Option<crate::dkim::Verification> {
    let verifier = verifier?;
    let whole = read_whole(spool).await?;
    Some(verifier.verify(&whole).await)
}

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

impl CheckError {
    /// Every variant is temporary: the spool's disk, a Bayes store that does not answer, and
    /// a failure of our own code (a panic in a check, caught) may all be gone at the next
    /// try, and Postfix keeps the mail meanwhile (451; a bug is then fixed and the mail
    /// still delivered). What a message meets at every try (decoder limits, a part too large
    /// for the scanner) is not an error here: it is an UNCHECKED result.
    pub fn is_temporary(&self) -> bool {
        match self {
            CheckError::Spool(_) | CheckError::Decode(_) | CheckError::Bayes(_) => true,
        }
    }
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
    /// The message's policy banks, in load order: the last one with its own `av` table
    /// picks the virus scanners.
    pub banks: Vec<String>,
    /// The envelope carried SMTPUTF8: UTF-8 in header fields is legal.
    pub smtputf8: bool,
    /// Recipients with their own Bayes store (`bayes_per_user`), by user name, each once.
    pub bayes_users: Vec<String>,
    /// Do not autolearn this message (a report: what it carries is learned on its own, the
    /// wrapper must not be).
    pub no_autolearn: bool,
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

/// The message's Bayes probability from the site's store, then from each of `users`' stores
/// over the site's; `None` until the store holds `min` of each class. Runs on the blocking
/// pool, so it may wait for the store.
fn bayes_probabilities(
    runtime: &tokio::runtime::Handle,
    store: &SharedStore,
    min: u64,
    users: &[String],
    tokens: &[u64],
) -> Result<Vec<Option<f64>>, BayesError> {
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    runtime.block_on(bayes_store::probabilities(store, "", &users, tokens, min))
}

/// The Bayes store and what the filter does with it.
struct BayesSetup {
    store: Arc<SharedStore>,
    min_learned: u64,
    /// Autolearn thresholds (spam at, ham below), when autolearning is on.
    autolearn: Option<(f64, f64)>,
    /// Autolearning waiting for the store: bounded, so a slow store sheds learning, never
    /// mail.
    learning: Arc<tokio::sync::Semaphore>,
}

/// Autolearns running at once at most; beyond, messages are not learned (`autolearn=no`).
const AUTOLEARN_QUEUE: usize = 8;

/// The engine's hits plus a scanner's spam names, which amavisd-new adds as tests
/// `AV:<name>`; `None` when neither ran or found anything.
fn spam_result(
    engine: Option<&crate::spam::scan::Outcome>,
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
        r.tests = o.hits.iter().map(|h| (h.name.clone(), h.score)).collect();
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

/// The scanners of the policy banks that have their own `av` table; the error is `(key
/// path, reason)`.
fn bank_scanners(cfg: &Config) -> Result<BTreeMap<String, av::Engine>, (String, String)> {
    cfg.bank_scanners()?
        .into_iter()
        .map(|(name, av)| {
            av.build(&cfg.tempdir)
                .map(|e| (name.clone(), e))
                .map_err(|(k, r)| (format!("policy_bank.{name}.av.{k}"), r))
        })
        .collect()
}

/// What the checks need, built once per configuration.
pub struct Checks {
    limits: decode::Limits,
    tempdir: PathBuf,
    rule_sets: BTreeMap<String, Arc<RuleSet>>,
    av: av::Engine,
    /// The scanners of policy banks that have their own `av` table, by bank name.
    bank_av: BTreeMap<String, av::Engine>,
    /// The spam rules and settings; `None` when the engine is off.
    spam: Option<(Arc<Rules>, SpamConfig)>,
    /// The Bayes store (`spam.bayes_store`), when there is one.
    bayes: Option<BayesSetup>,
}

impl Checks {
    /// Compiles the rule sets and builds the scanners of `cfg`.
    pub fn new(cfg: &Config) -> Result<Checks, ConfigError> {
        let bad = |key: String, reason: String| ConfigError::Key {
            file: cfg.source.clone(),
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
            bank_av: bank_scanners(cfg).map_err(|(k, r)| bad(k, r))?,
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
                    "spam: rules from {}: {}",
                    cfg.spam.rules_dir.display(),
                    rules.short_summary()
                );
                tracing::debug!("spam: {}", rules.summary());
                Some((Arc::new(rules), cfg.spam.clone()))
            } else {
                None
            },
            bayes: if cfg.spam.enabled && !cfg.spam.bayes_store.is_empty() {
                Some(BayesSetup {
                    store: Arc::new(
                        SharedStore::new(&cfg.spam.bayes_store)
                            .map_err(|e| bad("spam.bayes_store".into(), e.to_string()))?,
                    ),
                    min_learned: cfg.spam.bayes_min_learned,
                    autolearn: cfg.spam.bayes_auto_learn.then_some((
                        cfg.spam.bayes_auto_learn_threshold_spam,
                        cfg.spam.bayes_auto_learn_threshold_nonspam,
                    )),
                    learning: Arc::new(tokio::sync::Semaphore::new(AUTOLEARN_QUEUE)),
                })
            } else {
                None
            },
        })
    }

    /// The spam rules in force, for the spamd listener.
    pub fn spam_rules(&self) -> Option<Arc<Rules>> {
        self.spam.as_ref().map(|(r, _)| Arc::clone(r))
    }

    /// The Bayes store, when there is one (reports and the purge task use it).
    pub fn bayes_store(&self) -> Option<Arc<SharedStore>> {
        self.bayes.as_ref().map(|b| Arc::clone(&b.store))
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
                    // Autolearning weighs complete scans only, as SpamAssassin's are.
                    stop_at: if cfg.early_stop
                        && self.bayes.as_ref().is_none_or(|b| b.autolearn.is_none())
                    {
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
        let decode_opts = decode::DecodeOptions {
            smtputf8: req.smtputf8,
        };
        let bayes = self
            .bayes
            .as_ref()
            .map(|b| (Arc::clone(&b.store), b.min_learned));
        let users = req.bayes_users.clone();
        let runtime = tokio::runtime::Handle::current();
        let (decoded, banned, outcomes, learnable) = tokio::task::spawn_blocking(move || {
            let raw = spool.to_bytes_blocking().map_err(CheckError::Spool)?;
            let decoded = decode::decode_message_with(&raw, decode_opts, &limits, &tempdir);
            let banned: BTreeMap<String, _> = sets
                .iter()
                .map(|(n, set)| (n.clone(), banned::check(&decoded, set)))
                .collect();
            let failed = std::cell::RefCell::new(None);
            let learnable = std::cell::RefCell::new(None);
            let probabilities = |view: &crate::spam::view::MessageView| {
                let Some((store, min)) = bayes.as_ref() else {
                    return vec![None];
                };
                let tokens = bayes::tokens::hashed(view);
                let p = bayes_probabilities(&runtime, store, *min, &users, &tokens);
                *learnable.borrow_mut() = Some((bayes::message_key(view, &raw), tokens));
                p.unwrap_or_else(|e| {
                    *failed.borrow_mut() = Some(e.to_string());
                    vec![None]
                })
            };
            let outcomes = spam
                .map(|(rules, opts)| rules.check_each_bayes(&raw, &sender, opts, &probabilities))
                .unwrap_or_default();
            if let Some(e) = failed.into_inner() {
                return Err(CheckError::Bayes(e));
            }
            Ok::<_, CheckError>((decoded, banned, outcomes, learnable.into_inner()))
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
            self.av_for(&req.banks).scan(&decoded).await
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
        let mut spam = spam_result(outcomes.first(), &scanned.spam);
        if let Some(s) = spam.as_mut().filter(|_| !outcomes.is_empty()) {
            s.autolearn = if req.no_autolearn {
                "no".into()
            } else {
                self.autolearn(outcomes.first(), learnable)
            };
        }
        let spam_per_user = req
            .bayes_users
            .iter()
            .zip(outcomes.iter().skip(1))
            .filter_map(|(u, o)| {
                let mut r = spam_result(Some(o), &scanned.spam)?;
                // Autolearning is the site's: the user's copy says what it did.
                r.autolearn = spam
                    .as_ref()
                    .map(|s| s.autolearn.clone())
                    .unwrap_or_default();
                Some((u.clone(), r))
            })
            .collect();
        let results = CheckResults {
            parts: decoded.parts.len(),
            unchecked,
            bad_header: decoded.bad_header.clone(),
            banned,
            virus: scanned.scan,
            spam,
            spam_per_user,
            virus_spam: scanned.spam,
            virus_fakes_sender: scanned.fakes_sender,
            bulk,
        };
        Ok((results, decoded))
    }

    /// The virus scanners for a message with `banks` loaded: those of the last bank with its
    /// own `av` table, else `[av]`'s.
    fn av_for(&self, banks: &[String]) -> &av::Engine {
        banks
            .iter()
            .rev()
            .find_map(|b| self.bank_av.get(b))
            .unwrap_or(&self.av)
    }

    /// Learns the message into the site's store in the background when autolearning says
    /// so; gives SpamAssassin's `autolearn=` word for X-Spam-Status.
    fn autolearn(
        &self,
        outcome: Option<&crate::spam::scan::Outcome>,
        learnable: Option<(bayes::MessageKey, Vec<u64>)>,
    ) -> String {
        let Some(b) = &self.bayes else {
            return "disabled".into();
        };
        let (Some((spam_at, ham_below)), Some(o)) = (b.autolearn, outcome) else {
            return "disabled".into();
        };
        let (Some(class), Some((key, tokens))) =
            (bayes::autolearn::decide(o, spam_at, ham_below), learnable)
        else {
            return "no".into();
        };
        let Ok(permit) = Arc::clone(&b.learning).try_acquire_owned() else {
            tracing::warn!(
                "autolearn skipped: {AUTOLEARN_QUEUE} already waiting for the Bayes store"
            );
            return "no".into();
        };
        let store = Arc::clone(&b.store);
        tokio::spawn(async move {
            use crate::spam::bayes::store::TokenStore;
            if let Err(e) = store.learn("", &key, class, &tokens).await {
                tracing::warn!("autolearn failed: {e}");
            }
            drop(permit);
        });
        match class {
            Class::Spam => "spam",
            Class::Ham => "ham",
        }
        .into()
    }
}
