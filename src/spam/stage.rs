//! The spam stage's front door, as `av::Engine` is the virus stage's: [`Engine`] loads the
//! rules and opens the Bayes store of one configuration, scans messages ([`Scan`]) and
//! autolearns; [`Trainer`] is everything that teaches the Bayes store (reports, releases, the
//! purge, `amavisd-learn`). Nothing outside `spam/` needs to know how Bayes keys, tokenizes or
//! stores a message.

use super::SpamConfig;
use super::bayes::store::{self as bayes_store, BayesError};
use super::bayes::{self, weights};
use super::engine::Rules;
use super::learner::Learner;
use super::scan::{Options, Outcome};
use super::trainer::{Learnable, Trainer};
use super::view::MessageView;
use std::sync::Arc;
use tokio::sync::Semaphore;

pub use super::bayes::sources::{files as message_files, messages as messages_in};
pub use super::bayes::{Class, Learned};

/// Autolearns running at once at most; beyond, messages are not learned (`autolearn=no`).
const AUTOLEARN_QUEUE: usize = 8;

/// A configuration the spam stage cannot be built from: `(key, reason)`.
pub type SetupError = (String, String);

/// The rules and Bayes store of one configuration.
pub struct Engine {
    /// `None` when the engine is off or the rule files are missing.
    rules: Option<Arc<Rules>>,
    cfg: SpamConfig,
    trainer: Option<Trainer>,
    /// The resolver of the network rules; `None` with `[dns] enabled = false`.
    dns: Option<crate::dns::Resolver>,
    /// Autolearn thresholds (spam at, ham below), when autolearning is on.
    autolearn: Option<(f64, f64)>,
    /// Autolearning waiting for the store: bounded, so a slow store sheds learning, never
    /// mail.
    learning: Arc<Semaphore>,
}

impl Engine {
    /// Loads the rules and opens the Bayes store `cfg` names.
    pub fn new(cfg: &SpamConfig, dns: &crate::dns::DnsConfig) -> Result<Engine, SetupError> {
        let rules = if cfg.enabled && !cfg.rules_dir.is_dir() {
            // As amavisd-new without Mail::SpamAssassin ("SpamAssassin code NOT loaded"):
            // the filter runs, without spam scores, and says so loudly.
            tracing::error!(
                "spam checks OFF: no rule files at {} (apt-get install spamassassin, or set spam.rules_dir)",
                cfg.rules_dir.display()
            );
            None
        } else if cfg.enabled {
            Some(Arc::new(load_rules(cfg, dns.enabled)?))
        } else {
            None
        };
        let trainer = if cfg.enabled && !cfg.bayes_store.is_empty() {
            let t = Trainer::new(&cfg.bayes_store, cfg.bayes_min_learned)
                .map_err(|e| ("spam.bayes_store".to_string(), e.to_string()))?;
            Some(t.with_learner(Learner::of(cfg)))
        } else {
            None
        };
        // Autolearning needs a store to learn into.
        let autolearn = (trainer.is_some() && cfg.bayes_auto_learn).then_some((
            cfg.bayes_auto_learn_threshold_spam,
            cfg.bayes_auto_learn_threshold_nonspam,
        ));
        let dns = match (&rules, dns.enabled) {
            (Some(_), true) => Some(
                crate::dns::Resolver::new(dns)
                    .map_err(|e| ("dns.servers".to_string(), e.to_string()))?,
            ),
            _ => None,
        };
        Ok(Engine {
            rules,
            dns,
            autolearn,
            cfg: cfg.clone(),
            trainer,
            learning: Arc::new(Semaphore::new(AUTOLEARN_QUEUE)),
        })
    }

    /// Which prefilter answers (`amavisd status`), or that the engine is off.
    pub fn prefilter(&self) -> String {
        match &self.rules {
            Some(r) => r.plan.prefilter.describe(),
            None => "off (no spam rules)".into(),
        }
    }

    /// Waits up to `limit` for the rules' one-pass prefilter to settle; then how many rules
    /// it holds (0: the literal prefilter answers for good), `None` while it still
    /// compiles. Immediate when the engine is off, when the stage was read from its cache,
    /// or in a build without Hyperscan.
    pub fn wait_prefilter(&self, limit: std::time::Duration) -> Option<usize> {
        let Some(r) = &self.rules else {
            return Some(0);
        };
        r.plan.prefilter.wait_one_pass(limit);
        r.plan
            .prefilter
            .one_pass_settled()
            .then(|| r.plan.prefilter.one_pass_rules())
    }

    /// The Bayes store's trainer, when there is a store.
    pub fn trainer(&self) -> Option<&Trainer> {
        self.trainer.as_ref()
    }

    /// A scan of a message of `size` bytes, with the site's Bayes store and `users`' own;
    /// `None` when the engine is off or the message is larger than `spam.max_size` (not
    /// scanned, as amavisd-new). `stop_at` is the highest level any recipient acts on.
    pub fn scan_for(&self, size: u64, stop_at: Option<f64>, users: &[String]) -> Option<Scan> {
        let rules = self.rules.as_ref()?;
        if size > self.cfg.max_size as u64 {
            return None;
        }
        // Autolearning weighs complete scans only, as SpamAssassin's are.
        let early_stop = self.cfg.early_stop && self.autolearn.is_none();
        Some(Scan {
            rules: Arc::clone(rules),
            opts: Options {
                stop_at: if early_stop { stop_at } else { None },
                ..Options::default()
            },
            bayes: self.trainer.clone(),
            users: users.to_vec(),
            dns: self.dns.clone(),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// A scan as spamd makes one: the whole message, every rule (no early stop, no size
    /// cut-off), the site's Bayes store; `None` when the engine is off.
    pub fn scan_whole(&self) -> Option<Scan> {
        Some(Scan {
            rules: Arc::clone(self.rules.as_ref()?),
            opts: Options::default(),
            bayes: self.trainer.clone(),
            users: Vec::new(),
            dns: self.dns.clone(),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// Learns the scanned message into the site's store in the background when autolearning
    /// says so; gives SpamAssassin's `autolearn=` word for X-Spam-Status.
    pub fn autolearn(&self, scanned: &Scanned) -> String {
        let Some(trainer) = &self.trainer else {
            return "disabled".into();
        };
        let (Some((spam_at, ham_below)), Some(o)) = (self.autolearn, scanned.outcomes.first())
        else {
            return "disabled".into();
        };
        let (Some(class), Some(msg)) = (
            bayes::autolearn::decide(o, spam_at, ham_below),
            scanned.learnable.clone().map(|m| m.with_hits(&o.hits)),
        ) else {
            return "no".into();
        };
        let Ok(permit) = Arc::clone(&self.learning).try_acquire_owned() else {
            tracing::warn!(
                "autolearn skipped: {AUTOLEARN_QUEUE} already waiting for the Bayes store"
            );
            return "no".into();
        };
        let trainer = trainer.clone();
        tokio::spawn(async move {
            if let Err(e) = trainer.learn("", class, &msg).await {
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

fn load_rules(cfg: &SpamConfig, network: bool) -> Result<Rules, SetupError> {
    let site = (!cfg.site_dir.as_os_str().is_empty()).then_some(cfg.site_dir.as_path());
    let cache =
        (!cfg.prefilter_cache.as_os_str().is_empty()).then_some(cfg.prefilter_cache.as_path());
    let opts = super::engine::LoadOptions {
        bayes: !cfg.bayes_store.is_empty(),
        network,
        prefilter_cache: cache,
        extract: cfg.extract_limits(),
    };
    let rules = Rules::load_opts(&cfg.rules_dir, site, opts)
        .map_err(|e| ("spam.rules_dir".to_string(), e.to_string()))?;
    // Compiling the rules (PCRE2 among them) left freed pages in the C heap.
    crate::spam::rules::return_freed_memory();
    tracing::info!(
        "spam: rules from {}: {}",
        cfg.rules_dir.display(),
        rules.short_summary()
    );
    tracing::debug!("spam: {}", rules.summary());
    Ok(rules)
}

/// One message's spam scan, owning what it needs, to run on the blocking pool.
pub struct Scan {
    rules: Arc<Rules>,
    opts: Options,
    bayes: Option<Trainer>,
    users: Vec<String>,
    dns: Option<crate::dns::Resolver>,
    runtime: tokio::runtime::Handle,
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct Scanned {
    /// The site's result first, then one per user of [`Engine::scan_for`], in order.
    pub outcomes: Vec<Outcome>,
    /// The message as Bayes learns it, when there is a store.
    learnable: Option<Learnable>,
    /// The lookups' summary for the log line (`Answers::summary`); empty without any.
    pub dns: String,
    /// Some lookup timed out.
    pub dns_incomplete: bool,
}

impl Scan {
    /// Scans a message (`raw`, parsed once as `parsed`) on the calling (scanning) thread:
    /// the network rules' queries go out as soon as it is parsed, then the local rules
    /// run. [`Halfway::finish`] waits for the answers (without holding a scanning thread)
    /// and completes the scan. A Bayes store that cannot answer is an error (the message
    /// waits); DNS never is.
    pub fn run(
        self,
        raw: &[u8],
        parsed: &crate::decode::Parsed<'_>,
        sender: &str,
    ) -> Result<Halfway, BayesError> {
        let failed = std::cell::RefCell::new(None);
        let learnable = std::cell::RefCell::new(None);
        let learner_base = std::cell::RefCell::new(None);
        let probabilities = |view: &MessageView| {
            let Some(trainer) = self.bayes.as_ref() else {
                return vec![None];
            };
            let msg = Learnable::of_view(view, raw, trainer.learner.is_some());
            let users: Vec<&str> = self.users.iter().map(String::as_str).collect();
            let p = self.runtime.block_on(bayes_store::probabilities(
                trainer.store.as_ref(),
                "",
                &users,
                &msg.tokens,
                trainer.min_learned,
            ));
            // The learner answers where Bayes does (the same store, trained alongside):
            // here the margins of the features known before the rules run.
            if let (Some(l), Ok(p)) = (&trainer.learner, &p)
                && p.iter().any(Option::is_some)
            {
                let m = self.runtime.block_on(weights::margins(
                    trainer.store.as_ref(),
                    &l.params,
                    "",
                    &users,
                    &msg.features,
                ));
                match m {
                    Ok(m) => {
                        let each = m.into_iter().zip(p).map(|(m, p)| p.map(|_| m)).collect();
                        *learner_base.borrow_mut() = Some(each);
                    }
                    Err(e) => *failed.borrow_mut() = Some(e),
                }
            }
            *learnable.borrow_mut() = Some(msg);
            p.unwrap_or_else(|e| {
                *failed.borrow_mut() = Some(e);
                vec![None]
            })
        };
        let mut net = None;
        let mut start_net = |needs: super::net::Needs| {
            if let Some(dns) = &self.dns {
                // Those that wait for the DKIM results go out in `Halfway::finish`.
                let queries = needs
                    .iter()
                    .flat_map(|(_, q)| q.iter().filter(|q| !super::net::is_late(q)).cloned())
                    .collect();
                net = Some((needs, dns.start(&self.runtime, queries)));
            }
        };
        let locals =
            self.rules
                .scan_parsed(parsed, sender, self.opts, &probabilities, &mut start_net);
        if let Some(e) = failed.into_inner() {
            return Err(e);
        }
        Ok(Halfway {
            rules: self.rules,
            locals,
            net,
            dns: self.dns,
            learnable: learnable.into_inner(),
            learner: self.bayes.zip(learner_base.into_inner()),
            users: self.users,
        })
    }
}

/// Where the message's DKIM/SPF/DMARC verification, running beside the checks, puts its
/// result; the sender dropped without one means there is none.
pub type AuthWatch = tokio::sync::watch::Receiver<Option<Arc<crate::dkim::Verification>>>;

/// A scan whose local rules have run, its lookups perhaps still out.
pub struct Halfway {
    rules: Arc<Rules>,
    locals: Vec<super::scan::Local>,
    net: Option<(super::net::Needs, crate::dns::Pending)>,
    dns: Option<crate::dns::Resolver>,
    learnable: Option<Learnable>,
    /// With the learner on and Bayes answering: its store, and per outcome (site first,
    /// then each user) the margin of the features known before the rules ran, `None`
    /// where Bayes did not answer.
    learner: Option<(Trainer, Vec<Option<f32>>)>,
    users: Vec<String>,
}

impl Halfway {
    /// Waits for the lookups (at most the `[dns] budget`) and the authentication results
    /// (`auth`, bounded by `[dkim] verify_timeout`), counts the network rules, runs the
    /// metas, and adds the learner's rule. A store that cannot answer the learner is an
    /// error, as in [`Scan::run`].
    pub async fn finish(self, auth: Option<AuthWatch>) -> Result<Scanned, BayesError> {
        let (counts, dns) = match self.net {
            Some((needs, pending)) => {
                let verified = async {
                    let mut rx = auth?;
                    // An error: the verification ended without a result.
                    let v = rx.wait_for(Option::is_some).await.ok()?;
                    v.clone()
                };
                let deadline = pending.deadline();
                let (answers, verified) = tokio::join!(pending.wait(), verified);
                let late = super::net::fill_late(&needs, verified.as_deref());
                let early: super::net::Needs = needs
                    .into_iter()
                    .filter(|(i, _)| !late.iter().any(|(j, _)| j == i))
                    .collect();
                let mut counts = self.rules.net_counts(&early, &answers, verified.as_deref());
                if let (Some(dns), false) = (&self.dns, late.is_empty()) {
                    // askdns over the signing domains: a second, small round of queries,
                    // within what is left of the message's budget.
                    let queries = late.iter().flat_map(|(_, q)| q.iter().cloned()).collect();
                    let runtime = tokio::runtime::Handle::current();
                    let second = dns.start_by(&runtime, queries, deadline).wait().await;
                    counts.extend(self.rules.net_counts(&late, &second, verified.as_deref()));
                }
                (counts, Some(answers))
            }
            None => (Vec::new(), None),
        };
        let mut outcomes = self.rules.finish(self.locals, &counts);
        if let Some((trainer, base)) = &self.learner {
            add_learner_rules(trainer, &self.users, base, &mut outcomes).await?;
        }
        Ok(Scanned {
            outcomes,
            learnable: self.learnable,
            dns: dns
                .as_ref()
                .map(crate::dns::Answers::summary)
                .unwrap_or_default(),
            dns_incomplete: dns.is_some_and(|a| a.incomplete()),
        })
    }
}

/// Adds the LEARNER_xx rule to each outcome the learner answers for: `base` the margins
/// before the rules ran, then the weights of the rules each outcome hit.
async fn add_learner_rules(
    trainer: &Trainer,
    users: &[String],
    base: &[Option<f32>],
    outcomes: &mut [Outcome],
) -> Result<(), BayesError> {
    let Some(learner) = trainer.learner() else {
        return Ok(());
    };
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    let margins: Vec<f32> = base.iter().map(|m| m.unwrap_or(0.0)).collect();
    let p = learner
        .probabilities(trainer.store.as_ref(), &users, &margins, outcomes)
        .await?;
    for ((o, p), b) in outcomes.iter_mut().zip(p).zip(base) {
        if b.is_some() {
            learner.apply(o, p);
        }
    }
    Ok(())
}

/// The user name of a recipient's own Bayes store: the address in lower case without its
/// address extension.
pub fn bayes_user(address: &str, delimiter: &str) -> String {
    bayes::user_of(address, delimiter)
}

/// Now, in the store's time unit (for [`SpamConfig::purge`]).
pub fn now() -> i64 {
    bayes_store::now()
}
