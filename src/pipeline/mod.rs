//! What happens to one message, step by step. Each step is a function in its own file,
//! taking the message's `Job` (`job.rs`: envelope, spool, policies, results, verdicts) and
//! returning `Result<_, Tempfail>`:
//!
//! 1. `recipients.rs`: each recipient's settings (banks, static tables, SQL).
//! 2. `record.rs`: the SQL log's `msgs` row.
//! 3. `checks.rs`: decode, banned rules, virus scan, spam, DKIM verification.
//! 4. `decide.rs`: the verdict per recipient, final (Bayes reports answered first).
//! 5. `store.rs`: blocked copies kept (quarantine).
//! 6. `deliver.rs`: passed copies to the next hop; its answers become ours (`contract.rs`).
//! 7. `dsn.rs`: our DSN to the sender; `notices.rs`: admin and recipient notices.
//! 8. `record.rs` again and `finish.rs`: the SQL completion and amavisd-new's log line
//!    (`log_line.rs` writes it).
//!
//! Before the queue (the milter), steps 1 to 5, 7 and 8 run the same, and the verdicts
//! become one answer to the MTA instead of a delivery (`screen.rs`, [`Pipeline::screen`]).
//!
//! Steps 1, 3 and 4 are also the front-end check API ([`Pipeline::check`], `assess.rs`): the
//! verdicts for a message without logging or delivering anything.
//!
//! Nothing is answered 250 unless the next hop took the message, it is kept, or policy
//! discards it. A step that fails (SQL down, spool unreadable, every virus scanner down, a
//! copy that cannot be kept) returns a [`Tempfail`]: the whole message waits with a 4xx,
//! answered, recorded and logged in one place (`Pipeline::wait`).

mod advise;
mod analyzers;
mod assess;
mod checks;
mod contract;
mod decide;
mod deliver;
mod dsn;
mod finish;
mod job;
mod learn;
mod log_line;
mod notices;
mod recipients;
mod record;
mod repair;
pub use repair::Repaired;
mod report;
mod scan_pool;
mod screen;
mod state;
mod store;
mod trace_headers;

pub use crate::message::screen::{Advice, Answer, ScreenOptions, Screened};
pub use analyzers::{Analyzed, CheckError, CheckOptions, CheckRequest, CheckScope, Checks};
pub use assess::{Assessed, Assessment};
pub use contract::{Decision, RcptOutcome, combine, decide, failed};
pub use job::{Checked, Tempfail};
pub use log_line::{LogLine, next_am_id};
pub use trace_headers::trace_headers;

use crate::config::{ConfigError, ValidConfig};
use crate::message::{Envelope, Outcome, Spool};
use crate::smtp_in::MessageHandler;
use arc_swap::ArcSwap;
use job::Job;
use state::State;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a reload waits for its rules' one-pass prefilter before it swaps them in
/// anyway (a cold compile of the shipped rules takes ~30 s on two cores).
const RELOAD_PREFILTER_WAIT: Duration = Duration::from_secs(600);

/// The message handler behind every listener.
pub struct Pipeline {
    state: ArcSwap<State>,
}

impl Pipeline {
    /// A pipeline for `cfg`; fails only when a scanner or rule set cannot be built.
    pub fn new(cfg: Arc<ValidConfig>) -> Result<Pipeline, ConfigError> {
        let st = Arc::new(State::new(cfg)?);
        let now = st.checks.spam().wait_prefilter(Duration::ZERO);
        crate::stats::prefilter(now.unwrap_or(0));
        if now.is_none() {
            // At start mail is served at once, the literal prefilter answering until the
            // one-pass stage is compiled; the gauge follows. The watcher holds the state
            // only while it waits a second at a time: a reload that replaces it meanwhile
            // drops the old plan, which stops its compile, and sets the gauge itself.
            let watched = Arc::downgrade(&st);
            let _ = std::thread::Builder::new()
                .name("prefilter-watch".into())
                .spawn(move || {
                    while let Some(st) = watched.upgrade() {
                        if let Some(n) = st.checks.spam().wait_prefilter(Duration::from_secs(1)) {
                            crate::stats::prefilter(n);
                            return;
                        }
                    }
                });
        }
        Ok(Pipeline {
            state: ArcSwap::new(st),
        })
    }

    /// The Bayes store's trainer now in force, if there is a store, and the recipient
    /// delimiter that names per-user stores (the spamd listener's TELL learns with them).
    pub fn spam_trainer(&self) -> (Option<crate::spam::Trainer>, String) {
        let st = self.state.load();
        (
            st.checks.spam().trainer().cloned(),
            st.cfg.policy.recipient_delimiter.clone(),
        )
    }

    /// Purges every user's Bayes tokens as `[spam]` says (the server runs it every
    /// `spam.bayes_purge_interval`); gives (users, tokens removed), or `None` without a store.
    pub async fn purge_bayes(&self) -> Option<Result<(u64, u64), String>> {
        let st = self.state.load_full();
        let trainer = st.checks.spam().trainer()?;
        let now = crate::spam::now();
        let (purge, weights) = (st.cfg.spam.purge(now), st.cfg.spam.weight_purge(now));
        Some(
            trainer
                .purge(&purge, &weights)
                .await
                .map_err(|e| e.to_string()),
        )
    }

    /// Seconds between automatic Bayes purges now configured (0: none).
    pub fn bayes_purge_interval(&self) -> u64 {
        let st = self.state.load();
        if st.checks.spam().trainer().is_some() {
            st.cfg.spam.bayes_purge_interval
        } else {
            0
        }
    }

    /// Takes a new configuration for messages that start from now on; messages in flight finish
    /// with the old one. On error the old configuration stays.
    pub fn reload(&self, cfg: Arc<ValidConfig>) -> Result<(), ConfigError> {
        let st = State::new(cfg)?;
        // Changed rules compile their one-pass prefilter off to the side while the running
        // configuration serves: swapped in before it is ready, the new one would scan at
        // half speed until it is. Unchanged rules come from the prefilter's cache at once.
        let one_pass = st.checks.spam().wait_prefilter(RELOAD_PREFILTER_WAIT);
        crate::stats::prefilter(one_pass.unwrap_or(0));
        self.state.store(Arc::new(st));
        Ok(())
    }

    /// Which spam prefilter answers now (`amavisd status`).
    pub fn prefilter(&self) -> String {
        self.state.load().checks.spam().prefilter()
    }

    /// The message's way through the steps, as the module documentation lists them.
    async fn process(&self, env: Envelope, spool: Spool) -> Outcome {
        let st = self.state.load_full();
        let nrcpt = env.recipients.len();
        let bank = st.policies.for_message(&env.client, &env.mail_from);
        let mut job = match Job::new(env, Arc::new(spool), bank) {
            Ok(job) => job,
            Err(t) => {
                tracing::error!("{}", t.reason.as_deref().unwrap_or_default());
                return Outcome::uniform(t.reply, nrcpt);
            }
        };
        match Self::steps(&st, &mut job).await {
            Ok(outcome) => outcome,
            Err(t) => Self::wait(&st, &job, t).await,
        }
    }

    async fn steps(st: &Arc<State>, job: &mut Job) -> Result<Outcome, Tempfail> {
        assess::assess(st, job, true).await?;
        deliver::all_or_nothing(job)?;
        for v in &job.verdicts {
            crate::stats::recipient(v.category.metric_name(), v.destiny.metric_name());
        }
        let stored = store::quarantine(st, job).await?;
        let delivered = deliver::deliver(st, job, stored.as_ref()).await;
        let dsn_sent = dsn::notify_sender(st, job, &delivered).await?;
        notices::send(st, job, stored.as_ref().map(|q| q.quar_loc.as_str()));
        record::log_end(st, job, &delivered.outcomes, dsn_sent, stored.as_ref()).await;
        Ok(finish::finish(job, delivered))
    }

    /// The whole message waits: the same 4xx for every recipient, on record and in the log.
    async fn wait(st: &State, job: &Job, t: Tempfail) -> Outcome {
        if let Some(reason) = &t.reason {
            tracing::error!("({}) {reason}", job.am_id);
        }
        let n = job.env.recipients.len();
        if job.verdicts.is_empty() {
            job.log("Blocked UNCHECKED", "TempFailedInbound", &t.reply, None);
        } else {
            let all = vec![
                RcptOutcome::Blocked {
                    reply: t.reply.clone(),
                    dsn: false,
                };
                n
            ];
            record::log_end(st, job, &all, 'N', None).await;
            let (status, _) = finish::status_text(&job.verdicts);
            let action = job.braces(&["TempFailed"]);
            job.log(&format!("Blocked {status}"), &action, &t.reply, None);
        }
        Outcome::uniform(t.reply, n)
    }

    /// A message's job with the banks a front end names loaded first; a job that cannot be
    /// made (no log id) is logged here.
    fn job_with(
        st: &State,
        env: Envelope,
        spool: Spool,
        banks: &[String],
    ) -> Result<Job, Tempfail> {
        let bank = st
            .policies
            .for_message_with(&env.client, &env.mail_from, banks);
        Job::new(env, Arc::new(spool), bank).inspect_err(|t| {
            tracing::error!("{}", t.reason.as_deref().unwrap_or_default());
        })
    }

    /// A message an MTA holds open before its queue (the milter): checked, decided, logged
    /// and quarantined as on the SMTP path, then answered as one reply ([`screen`] module
    /// rule) with the passed copy's header changes instead of delivered. Never an error: what
    /// must wait is [`Answer::Tempfail`].
    pub async fn screen(&self, env: Envelope, spool: Spool, opts: &ScreenOptions) -> Screened {
        let began = Instant::now();
        let st = self.state.load_full();
        let mut job = match Self::job_with(&st, env, spool, &opts.banks) {
            Ok(job) => job,
            Err(t) => return Screened::waiting("", t.reply),
        };
        let screened = match screen::steps(&st, &mut job, opts).await {
            Ok(s) => s,
            Err(t) => {
                let reply = t.reply.clone();
                Self::wait(&st, &job, t).await;
                Screened::waiting(&job.am_id, reply)
            }
        };
        crate::stats::stage("total", began.elapsed());
        screened
    }

    /// A message a client only wants scanned (rspamd's HTTP protocol): checked and decided
    /// as on the SMTP path and answered by the before-queue rule, with the findings of the
    /// copy it reports; nothing is recorded, quarantined or sent ([`advise`] module). Never
    /// an error: what must wait is [`Answer::Tempfail`](crate::message::screen::Answer).
    pub async fn advise(&self, env: Envelope, spool: Spool, opts: &ScreenOptions) -> Advice {
        let st = self.state.load_full();
        let mut job = match Self::job_with(&st, env, spool, &opts.banks) {
            Ok(job) => job,
            Err(t) => return Advice::waiting("", t.reply),
        };
        match advise::steps(&st, &mut job, opts).await {
            Ok(a) => a,
            Err(t) => {
                if let Some(reason) = &t.reason {
                    tracing::error!("({}) {reason}", job.am_id);
                }
                let action = job.braces(&["TempFailed"]);
                job.log(
                    "Blocked UNCHECKED",
                    &action,
                    &t.reply,
                    opts.queue_id.as_deref(),
                );
                Advice::waiting(&job.am_id, t.reply)
            }
        }
    }

    /// What the checks and the verdict say about a message for these recipients, without
    /// logging or delivering anything: the entry point of front ends that deliver
    /// nothing themselves (milter, HTTP, the console). Copies to a Bayes report address are
    /// learned, as on the SMTP path.
    pub async fn check(&self, env: Envelope, spool: Spool) -> Result<Assessment, Tempfail> {
        self.check_with(env, Arc::new(spool), &CheckOptions::default())
            .await
    }

    /// Same, with the policy banks a front end names and the analyzers of a scope (the
    /// spamd listener asks the spam engine alone, [`CheckScope::SpamOnly`]).
    pub async fn check_with(
        &self,
        env: Envelope,
        spool: Arc<Spool>,
        opts: &CheckOptions,
    ) -> Result<Assessment, Tempfail> {
        let st = self.state.load_full();
        let bank = st
            .policies
            .for_message_with(&env.client, &env.mail_from, &opts.banks);
        let mut job = Job::new(env, spool, bank)?;
        job.scope = opts.scope;
        assess::assess(&st, &mut job, false).await?;
        let am_id = job.am_id.clone();
        // The steps above fill the checks in or fail.
        Assessment::of(job).ok_or_else(|| Tempfail::processing(&am_id, "checks did not run"))
    }
}

impl crate::release::ReleaseHandler for Pipeline {
    fn release(
        &self,
        req: crate::release::Attrs,
    ) -> impl Future<Output = crate::release::Attrs> + Send {
        let st = self.state.load_full();
        async move {
            if req.get("request") == Some("status") {
                let mut a = crate::release::Attrs::default();
                for (n, v) in crate::stats::status_attrs() {
                    a.push(n, v);
                }
                a.push("prefilter", st.checks.spam().prefilter());
                return a;
            }
            let ctx = crate::release::ReleaseContext {
                bayes: st
                    .checks
                    .spam()
                    .trainer()
                    .filter(|_| st.cfg.spam.bayes_learn_on_release),
                recipient_delimiter: &st.cfg.policy.recipient_delimiter,
                store: st.store.as_deref(),
                quarantine: &st.cfg.quarantine,
                forwarder: &st.forwarder,
                myhostname: &st.cfg.myhostname,
                require_secret: st.cfg.release.require_secret,
            };
            crate::release::handle(&ctx, &req).await
        }
    }
}

impl crate::milter::Screener for Pipeline {
    fn screen(
        &self,
        env: Envelope,
        spool: Spool,
        opts: &ScreenOptions,
    ) -> impl Future<Output = Screened> + Send {
        Pipeline::screen(self, env, spool, opts)
    }

    fn has_policy_bank(&self, name: &str) -> bool {
        self.state.load().policies.has_bank(name)
    }
}

impl crate::http::Scanner for Pipeline {
    fn advise(
        &self,
        env: Envelope,
        spool: Spool,
        opts: &ScreenOptions,
    ) -> impl Future<Output = Advice> + Send {
        Pipeline::advise(self, env, spool, opts)
    }

    fn learn(
        &self,
        user: Option<&str>,
        class: crate::spam::Class,
        message: Vec<u8>,
    ) -> impl Future<Output = Result<crate::spam::Learned, crate::spam::LearnError>> + Send {
        Pipeline::learn(self, user, Some(class), message)
    }

    fn has_policy_bank(&self, name: &str) -> bool {
        self.state.load().policies.has_bank(name)
    }
}

impl MessageHandler for Pipeline {
    async fn handle(&self, envelope: Envelope, spool: Spool) -> Outcome {
        let began = Instant::now();
        let outcome = self.process(envelope, spool).await;
        crate::stats::stage("total", began.elapsed());
        outcome
    }
}
