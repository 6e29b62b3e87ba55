//! The analyzers, in the order a message meets them: decode, banned rules, virus scan, spam,
//! built once per configuration ([`Checks`]) and run on one message into the plain
//! [`CheckResults`].
//!
//! Decoding, the banned rules and the spam rules are CPU work on possibly large data, so
//! they run on the scanning threads ([`super::scan_pool`]) and never stall the sessions
//! sharing a worker thread. The virus scan is I/O
//! (clamd, a program) and runs on the message's own task.

use super::scan_pool::ScanPool;
use crate::av;
use crate::banned::{self, RuleSet};
use crate::config::{Config, ConfigError, ValidConfig};
use crate::decode::{self, Decoded};
use crate::message::{BannedHit, CheckResults, SpamResult, Spool, Unchecked, VirusScan};
use crate::policy_bank::Policy;
use crate::spam::Scanned;
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
    /// The scanning thread panicked (a bug met by this message) or the pool is gone.
    #[error("{0}")]
    Pool(#[from] super::scan_pool::PoolError),
}

impl CheckError {
    /// Every variant is temporary: the spool's disk, a Bayes store that does not answer, and
    /// a failure of our own code (a panic in a check, caught) may all be gone at the next
    /// try, and Postfix keeps the mail meanwhile (451; a bug is then fixed and the mail
    /// still delivered). What a message meets at every try (decoder limits, a part too large
    /// for the scanner) is not an error here: it is an UNCHECKED result.
    pub fn is_temporary(&self) -> bool {
        match self {
            CheckError::Spool(_)
            | CheckError::Decode(_)
            | CheckError::Bayes(_)
            | CheckError::Pool(_) => true,
        }
    }
}

/// Which analyzers a check runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CheckScope {
    /// Every check the recipients' policies ask for: what the SMTP/LMTP path runs.
    #[default]
    Full,
    /// The spam engine alone, as spamd answers: the whole message scanned by every rule (no
    /// early stop, no `spam.max_size` cut-off) with the site's Bayes store, nothing learned;
    /// no decoding, banned rules or virus scan, whatever the policies say.
    SpamOnly,
}

/// How a front end asks the check API ([`Pipeline::check_with`](super::Pipeline::check_with)).
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Which analyzers run.
    pub scope: CheckScope,
    /// Policy banks the front end names, loaded before those the envelope selects (by
    /// socket, client address and sender).
    pub banks: Vec<String>,
}

impl CheckOptions {
    /// The spam engine alone ([`CheckScope::SpamOnly`]), no banks named: what spamd asks.
    pub fn spam_only() -> CheckOptions {
        CheckOptions {
            scope: CheckScope::SpamOnly,
            banks: Vec::new(),
        }
    }
}

/// Which checks the recipients' policies ask for.
#[derive(Debug, Clone, Default)]
pub struct CheckRequest {
    /// Which analyzers run at all.
    pub scope: CheckScope,
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
    /// Where the DKIM/SPF/DMARC verification running beside the checks will appear (the
    /// spam rules that read it wait for it); `None` when it does not run.
    pub auth: Option<crate::spam::AuthWatch>,
}

impl CheckRequest {
    /// The spam engine alone ([`CheckScope::SpamOnly`]) for a message from `sender`.
    pub fn spam_only(sender: &str) -> CheckRequest {
        CheckRequest {
            scope: CheckScope::SpamOnly,
            spam: true,
            sender: sender.to_string(),
            no_autolearn: true,
            ..CheckRequest::default()
        }
    }

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
        dns: String::new(),
        dns_incomplete: false,
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

/// What the analyzers found about one message.
#[derive(Debug)]
pub struct Analyzed {
    pub results: CheckResults,
    pub decoded: Decoded,
    /// The spam engine's own result for the site (every hit with its description, the
    /// required score), when it scanned.
    pub spam: Option<crate::spam::scan::Outcome>,
}

/// Scanning threads for `configured` (`scan_threads`; 0: one per CPU core).
fn scan_threads(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    }
}

/// What the checks need, built once per configuration.
pub struct Checks {
    limits: decode::Limits,
    tempdir: PathBuf,
    rule_sets: BTreeMap<String, Arc<RuleSet>>,
    av: av::Engine,
    /// The scanners of policy banks that have their own `av` table, by bank name.
    bank_av: BTreeMap<String, av::Engine>,
    /// The spam stage: rules, Bayes store, autolearning.
    spam: crate::spam::Engine,
    /// The threads that run the CPU checks (`scan_threads`): at most this many messages
    /// are decoded and scanned at once, whatever the number of sessions.
    scanning: ScanPool,
}

impl Checks {
    /// Compiles the rule sets and builds the scanners of `cfg`.
    pub fn new(cfg: &ValidConfig) -> Result<Checks, ConfigError> {
        let bad = |key: String, reason: String| ConfigError::Key {
            file: cfg.source().to_path_buf(),
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
            spam: crate::spam::Engine::new(&cfg.spam, &cfg.dns).map_err(|(k, r)| bad(k, r))?,
            scanning: ScanPool::new(scan_threads(cfg.scan_threads)).map_err(|e| {
                bad(
                    "scan_threads".into(),
                    format!("cannot start the scanning threads: {e}"),
                )
            })?,
        })
    }

    /// The spam stage (the spamd listener, reports, releases and the purge use it too).
    pub fn spam(&self) -> &crate::spam::Engine {
        &self.spam
    }

    /// True when a virus scanner is configured.
    pub fn scans_for_viruses(&self) -> bool {
        !self.av.is_empty()
    }

    /// Runs the checks `req` asks for on `spool`.
    pub async fn run(&self, spool: Arc<Spool>, req: &CheckRequest) -> Result<Analyzed, CheckError> {
        let bulk = is_bulk(&spool);
        let (decoded, banned, spammed) = self.cpu_checks(spool, req).await?;
        let scanned = if req.viruses {
            self.av_for(&req.banks).scan(&decoded).await
        } else {
            av::EngineResult {
                scan: VirusScan::NotScanned,
                spam: Vec::new(),
                fakes_sender: false,
                too_large: Vec::new(),
            }
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
        let (spam, spam_per_user) = self.spam_results(req, &spammed, &scanned.spam);
        let spam_outcome = spammed.outcomes.into_iter().next();
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
            // Set by the pipeline once DKIM/SPF/DMARC are verified.
            dmarc_reject: false,
        };
        Ok(Analyzed {
            results,
            decoded,
            spam: spam_outcome,
        })
    }

    /// Decoding, the banned rules and the spam scan: CPU work on possibly large data, on
    /// the blocking pool, over one parse of the message.
    async fn cpu_checks(
        &self,
        spool: Arc<Spool>,
        req: &CheckRequest,
    ) -> Result<(Decoded, BTreeMap<String, Vec<BannedHit>>, Scanned), CheckError> {
        let limits = self.limits.clone();
        let tempdir = self.tempdir.clone();
        let sets: Vec<(String, Arc<RuleSet>)> = req
            .banned_sets
            .iter()
            .filter_map(|n| self.rule_sets.get(n).map(|s| (n.clone(), Arc::clone(s))))
            .collect();
        let spam_only = req.scope == CheckScope::SpamOnly;
        let spam_scan = match req.scope {
            _ if !req.spam => None,
            CheckScope::Full => self
                .spam
                .scan_for(spool.len(), req.spam_stop_at, &req.bayes_users),
            CheckScope::SpamOnly => self.spam.scan_whole(),
        };
        let sender = req.sender.clone();
        let decode_opts = decode::DecodeOptions {
            smtputf8: req.smtputf8,
        };
        // The same `scan_threads` threads scan every message (see `scan_pool` for why).
        let (decoded, banned, spammed) = self
            .scanning
            .run(move || {
                let raw = spool.to_bytes_blocking().map_err(CheckError::Spool)?;
                // Parsed once: the decoder and the spam view read the same MIME structure.
                let parsed = decode::parse(&raw);
                let decoded = if spam_only {
                    Decoded {
                        parts: Vec::new(),
                        unchecked: Vec::new(),
                        bad_header: Vec::new(),
                    }
                } else {
                    decode::decode_parsed(&parsed, decode_opts, &limits, &tempdir)
                };
                let banned = sets
                    .iter()
                    .map(|(n, set)| (n.clone(), banned::check(&decoded, set)))
                    .collect();
                let spammed = match spam_scan {
                    Some(scan) => Some(
                        scan.run(&raw, &parsed, &sender)
                            .map_err(|e| CheckError::Bayes(e.to_string()))?,
                    ),
                    None => None,
                };
                Ok::<_, CheckError>((decoded, banned, spammed))
            })
            .await??;
        // The network rules' answers are awaited here, off the scanning threads.
        let spammed = match spammed {
            Some(halfway) => halfway
                .finish(req.auth.clone())
                .await
                .map_err(|e| CheckError::Bayes(e.to_string()))?,
            None => Scanned::default(),
        };
        Ok((decoded, banned, spammed))
    }

    /// The site's spam result and each per-user store's, with the scanner's spam names
    /// added, and the autolearn word.
    fn spam_results(
        &self,
        req: &CheckRequest,
        spammed: &Scanned,
        av_spam: &[(String, f64)],
    ) -> (Option<SpamResult>, BTreeMap<String, SpamResult>) {
        let outcomes = &spammed.outcomes;
        let mut spam = spam_result(outcomes.first(), av_spam);
        if let Some(s) = spam.as_mut().filter(|_| !outcomes.is_empty()) {
            s.dns = spammed.dns.clone();
            s.dns_incomplete = spammed.dns_incomplete;
            s.autolearn = if req.no_autolearn {
                "no".into()
            } else {
                self.spam.autolearn(spammed)
            };
        }
        let per_user = req
            .bayes_users
            .iter()
            .zip(outcomes.iter().skip(1))
            .filter_map(|(u, o)| {
                let mut r = spam_result(Some(o), av_spam)?;
                // Autolearning is the site's: the user's copy says what it did.
                r.autolearn = spam
                    .as_ref()
                    .map(|s| s.autolearn.clone())
                    .unwrap_or_default();
                Some((u.clone(), r))
            })
            .collect();
        (spam, per_user)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_threads_default_to_the_cores() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(scan_threads(0), cores);
        assert_eq!(scan_threads(3), 3);
    }
}
