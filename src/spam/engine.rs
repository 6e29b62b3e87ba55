//! A loaded rule set. It is read and compiled whole; a rule file with a problem (a line that
//! cannot be read, a regex that does not compile) is refused with its file, line and reason,
//! so a reload keeps the rules already running (the pipeline swaps its whole state at once).

use super::net::{Needs, NetDefs};
use super::scan::{self, Local, Options, Outcome};
use super::view::{MessageView, ViewSettings};
use crate::dns::Answers;
use crate::spam::rules::cf::Config;
use crate::spam::rules::plan::{Inactive, Plan};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why rules could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SpamError {
    #[error("{file}:{line}: {reason}")]
    Rule {
        file: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{0}: no rules found (is SpamAssassin's rule set installed?)")]
    NoRules(PathBuf),
    /// A network directive (`trusted_networks`, `urirhssub` ...) that cannot be read.
    #[error("{0}")]
    Net(String),
}

/// Gives a parsed message's Bayes probability.
pub type BayesOf<'a> = dyn Fn(&MessageView) -> Option<f64> + 'a;

/// One compiled rule set with what its eval functions read.
pub struct Rules {
    pub plan: Plan,
    pub lists: super::eval::Lists,
    /// Directives read but not acted on, with counts.
    pub ignored: BTreeMap<String, usize>,
    /// How messages are read: `originating_ip_headers`, `trusted_networks` ...
    pub view: ViewSettings,
    /// The network directives (URI blocklists, `askdns`, skip lists).
    pub net: NetDefs,
}

/// How a rule set is compiled.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions<'a> {
    /// Bayes on: score sets 2/3 and the BAYES_xx rules.
    pub bayes: bool,
    /// Network rules on: score sets 1/3 and the DNS blocklist rules.
    pub network: bool,
    /// Where the prefilter keeps its compiled databases; `None`: compiled at every load.
    pub prefilter_cache: Option<&'a Path>,
    /// Attachments read for the rules (Office, PDF, QR codes), within these limits.
    pub extract: Option<crate::extract::Limits>,
}

impl Rules {
    /// Reads and compiles the rule files; any problem is an error.
    pub fn load(rules_dir: &Path, site_dir: Option<&Path>) -> Result<Rules, SpamError> {
        Self::load_with(rules_dir, site_dir, false, None)
    }

    /// Same, with Bayes on (`bayes`: score set 2 and the BAYES_xx rules; the caller gives
    /// each message's probability in [`Options::bayes`]) or off, and the prefilter's
    /// compiled databases kept in `prefilter_cache` (a directory; `None`: compiled at
    /// every load).
    pub fn load_with(
        rules_dir: &Path,
        site_dir: Option<&Path>,
        bayes: bool,
        prefilter_cache: Option<&Path>,
    ) -> Result<Rules, SpamError> {
        let opts = LoadOptions {
            bayes,
            network: false,
            prefilter_cache,
            extract: None,
        };
        Self::load_opts(rules_dir, site_dir, opts)
    }

    /// Same, with every choice of [`LoadOptions`].
    pub fn load_opts(
        rules_dir: &Path,
        site_dir: Option<&Path>,
        opts: LoadOptions<'_>,
    ) -> Result<Rules, SpamError> {
        let cfg = Config::load(rules_dir, site_dir);
        if let Some(p) = cfg.problems.first() {
            return Err(SpamError::Rule {
                file: p.origin.file.clone(),
                line: p.origin.line,
                reason: p.reason.clone(),
            });
        }
        if cfg.rules.is_empty() {
            return Err(SpamError::NoRules(rules_dir.to_path_buf()));
        }
        let net = NetDefs::read(&cfg);
        if let Some(p) = net.problems.first() {
            return Err(SpamError::Net(p.clone()));
        }
        let plan = Plan::compile_with(
            &cfg,
            opts.bayes,
            opts.network.then_some(&net),
            opts.prefilter_cache,
        );
        for (name, why) in &plan.inactive {
            if let Inactive::Broken(reason) = why
                && let Some(r) = cfg.rules.get(name)
            {
                return Err(SpamError::Rule {
                    file: r.origin.file.clone(),
                    line: r.origin.line,
                    reason: format!("rule {name}: {reason}"),
                });
            }
        }
        Ok(Rules {
            plan,
            view: ViewSettings {
                originating: cfg.originating_ip_headers.clone(),
                trust: net.trust.clone(),
                extract: opts.extract,
            },
            net,
            lists: super::eval::Lists::new(cfg.lists),
            ignored: cfg.ignored,
        })
    }

    /// One line for the start-up log: active rules by kind, inactive ones by reason, and
    /// the eval functions we do not have.
    /// Active rules by kind: `716 header, 591 body, ...`.
    fn active_kinds(&self) -> String {
        self.plan
            .active_by_kind()
            .iter()
            .map(|(k, n)| format!("{n} {}", format!("{k:?}").to_ascii_lowercase()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// One line for the start-up log and `amavisd check`: active rules by kind and why the
    /// others are not (the eval functions missing are in [`Rules::summary`], at debug level).
    pub fn short_summary(&self) -> String {
        let inactive = self.plan.inactive.len();
        format!(
            "{} rules active ({}; {} network); {inactive} inactive (network tests when off or not implemented, Bayes without a store, eval functions not implemented)",
            self.plan.rules.len(),
            self.active_kinds(),
            self.plan
                .rules
                .iter()
                .filter(|r| matches!(r.test, crate::spam::rules::plan::Test::Net(_)))
                .count(),
        )
    }

    /// Everything about the loaded rules, the eval functions that are missing included.
    pub fn summary(&self) -> String {
        let mut net = 0;
        let mut bayes = 0;
        let mut noeval = 0;
        for why in self.plan.inactive.values() {
            match why {
                Inactive::Network => net += 1,
                Inactive::Bayes => bayes += 1,
                Inactive::NoEval(_) => noeval += 1,
                Inactive::Broken(_) => {}
            }
        }
        let missing: Vec<String> = self
            .plan
            .missing_evals()
            .iter()
            .map(|(f, n)| format!("{f}({n})"))
            .collect();
        format!(
            "{} rules active ({}; {} rules behind the prefilter, {}); inactive: {net} network, {bayes} Bayes, {noeval} with eval functions not implemented: {}",
            self.plan.rules.len(),
            self.active_kinds(),
            self.plan.prefilter.filtered_rules(),
            match self.plan.prefilter.one_pass_rules() {
                _ if !cfg!(hyperscan) => "literals only: built without libhs".to_string(),
                0 => "literals until the one-pass Hyperscan stage is compiled".to_string(),
                n => format!("{n} of them in one-pass Hyperscan databases"),
            },
            if missing.is_empty() {
                "none".into()
            } else {
                missing.join(" ")
            }
        )
    }

    /// Scans one message.
    pub fn check(&self, raw: &[u8], envelope_from: &str, opts: Options) -> Outcome {
        self.check_with(raw, envelope_from, opts, None)
    }

    /// Scans one message, its Bayes probability given by `bayes` from the parsed message
    /// (when set, it takes the place of [`Options::bayes`]).
    pub fn check_with(
        &self,
        raw: &[u8],
        envelope_from: &str,
        mut opts: Options,
        bayes: Option<&BayesOf<'_>>,
    ) -> Outcome {
        let view = MessageView::build(raw, envelope_from, &self.view);
        if let Some(f) = bayes {
            opts.bayes = f(&view);
        }
        scan::scan(&self.plan, &view, &self.lists, opts)
    }

    /// Scans one message once for each Bayes probability `bayes` gives from the parsed
    /// message (the site's, then each per-user store's), parsing it once. A probability
    /// that fires the same BAYES_ rules as an earlier one reuses that outcome.
    pub fn check_each_bayes(
        &self,
        raw: &[u8],
        envelope_from: &str,
        opts: Options,
        bayes: &dyn Fn(&MessageView) -> Vec<Option<f64>>,
    ) -> Vec<Outcome> {
        let parsed = crate::decode::parse(raw);
        self.check_each_bayes_parsed(&parsed, envelope_from, opts, bayes)
    }

    /// Same, for a message the decoder has parsed already.
    pub fn check_each_bayes_parsed(
        &self,
        parsed: &crate::decode::Parsed<'_>,
        envelope_from: &str,
        opts: Options,
        bayes: &dyn Fn(&MessageView) -> Vec<Option<f64>>,
    ) -> Vec<Outcome> {
        let locals = self.scan_parsed(parsed, envelope_from, opts, bayes, &mut |_| {});
        self.finish(locals, &[])
    }

    /// The rules that need only the message, once for each Bayes probability; `start_net`
    /// is handed the network rules' queries as soon as the message is parsed, so that
    /// they are on their way while the rest runs. [`Rules::finish`] completes the scans.
    pub fn scan_parsed(
        &self,
        parsed: &crate::decode::Parsed<'_>,
        envelope_from: &str,
        opts: Options,
        bayes: &dyn Fn(&MessageView) -> Vec<Option<f64>>,
        start_net: &mut dyn FnMut(Needs),
    ) -> Vec<Local> {
        let view = MessageView::build_parsed(parsed, envelope_from, &self.view);
        let net_rules = self
            .plan
            .rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match &r.test {
                crate::spam::rules::plan::Test::Net(t) => Some((i, t)),
                _ => None,
            });
        let needs = super::net::needs(
            net_rules,
            &view,
            &self.lists,
            &self.net,
            &self.view.originating,
        );
        if !needs.is_empty() {
            start_net(needs);
        }
        let mut out: Vec<Local> = Vec::new();
        // Which BAYES_ rules fired for each scan (by its index in `out`).
        let mut scanned: Vec<(Vec<bool>, usize)> = Vec::new();
        for p in bayes(&view) {
            let fires = self.plan.bayes_rules_at(p);
            if let Some(&(_, i)) = scanned.iter().find(|(f, _)| *f == fires) {
                let same = out[i].clone();
                out.push(same);
                continue;
            }
            scanned.push((fires, out.len()));
            let opts = Options { bayes: p, ..opts };
            out.push(scan::scan_local(&self.plan, &view, &self.lists, opts));
        }
        out
    }

    /// The network rules' counts from their queries' answers.
    pub fn net_counts(
        &self,
        needs: &Needs,
        answers: &Answers,
        auth: Option<&crate::dkim::Verification>,
    ) -> Vec<(usize, u32)> {
        needs
            .iter()
            .filter_map(|(i, qs)| match &self.plan.rules.get(*i)?.test {
                crate::spam::rules::plan::Test::Net(t) => {
                    Some((*i, super::net::count(t, qs, answers, auth)))
                }
                _ => None,
            })
            .collect()
    }

    /// Completes scans with the network rules' counts: metas, score, hits.
    pub fn finish(&self, locals: Vec<Local>, net: &[(usize, u32)]) -> Vec<Outcome> {
        locals
            .into_iter()
            .map(|l| scan::finish(&self.plan, l, net))
            .collect()
    }
}
