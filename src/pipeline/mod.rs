//! What happens to one received message: the checks (decode, banned rules, virus scan), the
//! verdict, then either reinjection with the trace and alert headers under the reply contract,
//! or the blocking reply (discard, bounce, reject, tempfail); our own DSNs where the contract
//! or a bounce says so; and amavisd-new's one log line.
//!
//! Nothing is answered 250 unless the next hop took the message or policy discards it; a
//! check that fails (spool unreadable, decoder task lost, every virus scanner down) makes the
//! message wait with a 4xx.

mod checks;
mod contract;
mod log_line;
mod record;
mod report;
mod trace_headers;

pub use checks::{CheckError, CheckRequest, Checks};
pub use contract::{Decision, RcptOutcome, combine, decide, failed};
pub use log_line::{LogLine, next_am_id};
pub use trace_headers::trace_headers;

use crate::config::{Config, ConfigError};
use crate::message::VirusScan;
use crate::message::{
    Category, Destiny, Envelope, Outcome, Protocol, Recipient, Reply, Spool, generate_mail_id,
};
use crate::policy_bank::{Policies, Policy};
use crate::smtp_in::MessageHandler;
use crate::smtp_out::{DsnInput, FailedRecipient, Forwarder, OutMessage, build_dsn};
use crate::verdict::{self, MessageInput, RecipientInput, Verdict};
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::Instant;

/// Everything that a reload replaces at once.
struct State {
    cfg: Arc<Config>,
    checks: Checks,
    policies: Policies,
    templates: crate::config::Templates,
    store: Option<Arc<crate::sql_log::Store>>,
    forwarder: Forwarder,
    notifier: Forwarder,
    /// DKIM verification, when on.
    verifier: Option<crate::dkim::Verifier>,
    /// DKIM signing of originating mail, when on and keyed.
    signer: Option<crate::dkim::Signer>,
}

/// The message handler behind every listener.
pub struct Pipeline {
    state: ArcSwap<State>,
}

impl Pipeline {
    /// A pipeline for `cfg`; fails only when a scanner or rule set cannot be built.
    pub fn new(cfg: Arc<Config>) -> Result<Pipeline, ConfigError> {
        Ok(Pipeline {
            state: ArcSwap::from_pointee(Self::state(cfg)?),
        })
    }

    fn state(cfg: Arc<Config>) -> Result<State, ConfigError> {
        if cfg.av.primary.is_empty() && cfg.av.backup.is_empty() {
            tracing::warn!("no virus scanner configured: mail is not scanned for viruses");
        }
        let store = crate::sql_log::Store::new(&cfg.sql)
            .map_err(|e| ConfigError::Key {
                file: "(configuration)".into(),
                key: "sql.url".into(),
                reason: e.to_string(),
            })?
            .map(Arc::new);
        let dkim_error = |key: &str, e: crate::dkim::DkimError| ConfigError::Key {
            file: "(configuration)".into(),
            key: key.into(),
            reason: e.to_string(),
        };
        let verifier = crate::dkim::Verifier::new(&cfg.dkim, cfg.authserv_id())
            .map_err(|e| dkim_error("dkim.verify", e))?;
        let signer = crate::dkim::Signer::new(&cfg.dkim).map_err(|e| dkim_error("dkim.keys", e))?;
        Ok(State {
            verifier,
            signer,
            store,
            templates: cfg.notify.templates()?,
            checks: Checks::new(&cfg)?,
            policies: cfg.policies().map_err(|(key, reason)| ConfigError::Key {
                file: "(configuration)".into(),
                key,
                reason,
            })?,
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

    /// The spam rules and Bayes store now in force (the spamd listener scans and learns
    /// with them).
    pub fn spamd_engines(&self) -> crate::spam::spamd::Engines {
        let st = self.state.load();
        crate::spam::spamd::Engines {
            rules: st.checks.spam_rules(),
            bayes: st
                .checks
                .bayes_store()
                .map(|b| (b, st.cfg.spam.bayes_min_learned)),
            recipient_delimiter: st.cfg.policy.recipient_delimiter.clone(),
        }
    }

    /// Purges every user's Bayes tokens as `[spam]` says (the server runs it every
    /// `spam.bayes_purge_interval`); gives (users, tokens removed), or `None` without a store.
    pub async fn purge_bayes(&self) -> Option<Result<(u64, u64), String>> {
        let st = self.state.load_full();
        let store = st.checks.bayes_store()?;
        let purge = st.cfg.spam.purge(crate::spam::bayes::store::now());
        Some(
            crate::spam::bayes::store::purge_all(store.as_ref(), &purge)
                .await
                .map_err(|e| e.to_string()),
        )
    }

    /// Seconds between automatic Bayes purges now configured (0: none).
    pub fn bayes_purge_interval(&self) -> u64 {
        let st = self.state.load();
        if st.checks.bayes_store().is_some() {
            st.cfg.spam.bayes_purge_interval
        } else {
            0
        }
    }

    /// Takes a new configuration for messages that start from now on; messages in flight finish
    /// with the old one. On error the old configuration stays.
    pub fn reload(&self, cfg: Arc<Config>) -> Result<(), ConfigError> {
        self.state.store(Arc::new(Self::state(cfg)?));
        Ok(())
    }

    async fn process(&self, env: Envelope, spool: Spool) -> Outcome {
        let started = Instant::now();
        let st = self.state.load_full();
        let am_id = next_am_id();
        let nrcpt = env.recipients.len();
        let ids = match generate_mail_id() {
            Ok(ids) => ids,
            Err(e) => {
                tracing::error!("({am_id}) cannot draw a mail_id: {e}");
                let r = Reply::new(451, "4.3.0", "Error: internal error, try again later");
                return Outcome::uniform(r, nrcpt);
            }
        };
        let spool = Arc::new(spool);
        // Policy: the banks for this message, then each recipient's settings.
        let mp = st.policies.for_message(&env.client, &env.mail_from);
        let path = mp.path();
        // Set once the checks have scored the message.
        let hits: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
        let log = |status: &str, action: &str, reply: &Reply, queued_as: Option<&str>| {
            LogLine {
                am_id: &am_id,
                status,
                action,
                banks: &path,
                env: &env,
                message_id: spool.header_field("Message-ID"),
                mail_id: &ids.mail_id,
                size: spool.len(),
                hits: hits.get().copied(),
                queued_as,
                reply,
                elapsed: started.elapsed(),
            }
            .emit();
        };

        // Each recipient's settings: the static tables, then SQL in front of them.
        let mut policies: Vec<Arc<Policy>> = Vec::with_capacity(nrcpt);
        let mut local: Vec<bool> = Vec::with_capacity(nrcpt);
        let mut lists: Vec<verdict::SenderList> = Vec::with_capacity(nrcpt);
        for r in &env.recipients {
            let p = st.policies.for_recipient(&mp, &r.address);
            let is_local = st.policies.is_local(&p, &r.address);
            let Some(store) = st.store.as_ref().filter(|_| st.cfg.sql.lookups) else {
                policies.push(p);
                local.push(is_local);
                lists.push(verdict::SenderList::None);
                continue;
            };
            let found = store
                .lookup_recipient(&r.address, &p.recipient_delimiter, is_local, &env.mail_from)
                .await
                .map_err(|e| e.to_string())
                .and_then(|f| {
                    st.policies
                        .for_recipient_with(&mp, &r.address, &f.settings)
                        .map(|p| (p, f))
                        .map_err(|(k, why)| format!("{k}: {why}"))
                });
            match found {
                Ok((p, f)) => {
                    policies.push(p);
                    local.push(is_local || f.known);
                    lists.push(
                        f.wb.as_deref()
                            .map(verdict::SenderList::parse)
                            .unwrap_or_default(),
                    );
                }
                Err(e) => {
                    // amavisd-new defers mail whose recipient settings cannot be read.
                    crate::stats::sql_error();
                    tracing::error!("({am_id}) SQL lookup for <{}>: {e}", r.address);
                    let reply = Reply::new(
                        451,
                        "4.3.0",
                        format!("Error in processing, id={am_id}, SQL lookup: try again later"),
                    );
                    log("Blocked UNCHECKED", "TempFailedInbound", &reply, None);
                    return Outcome::uniform(reply, nrcpt);
                }
            }
        }
        if let Some(store) = &st.store {
            let now = env
                .received_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let start = crate::sql_log::MsgStart {
                mail_id: &ids.mail_id,
                secret_id: &ids.secret_id,
                am_id: &am_id,
                time: now,
                sender: &env.mail_from,
                policy: &path,
                client_addr: env.client.xforward.addr.as_deref().unwrap_or(""),
                size: spool.len(),
                originating: mp.policy.originating,
                message_id: &spool.header_field("Message-ID").unwrap_or_default(),
                from_addr: &spool.header_field("From").unwrap_or_default(),
                subject: &spool.header_field("Subject").unwrap_or_default(),
                host: &st.cfg.myhostname,
            };
            if let Err(e) = store.log_start(&start).await {
                // A site that logs to SQL relies on every message being there: wait.
                crate::stats::sql_error();
                tracing::error!("({am_id}) {e}");
                let r = Reply::new(
                    451,
                    "4.3.0",
                    format!("Error in processing, id={am_id}, SQL log: try again later"),
                );
                log("Blocked UNCHECKED", "TempFailedInbound", &r, None);
                return Outcome::uniform(r, nrcpt);
            }
        }
        crate::stats::stage("policy", started.elapsed());
        let mut req = CheckRequest::for_policies(policies.iter().map(|p| p.as_ref()));
        req.sender = env.mail_from.clone();
        req.banks = mp.banks.clone();
        req.smtputf8 = env.has_mail_flag("SMTPUTF8");
        // Recipients with their own Bayes store over the site's.
        let bayes_users: Vec<Option<String>> = env
            .recipients
            .iter()
            .zip(&policies)
            .map(|(r, p)| {
                (p.bayes_per_user && !p.bypass_spam_checks)
                    .then(|| crate::spam::bayes::user_of(&r.address, &p.recipient_delimiter))
            })
            .collect();
        for u in bayes_users.iter().flatten() {
            if !req.bayes_users.contains(u) {
                req.bayes_users.push(u.clone());
            }
        }
        // Recipients that are report addresses, and what they report.
        let reports: Vec<Option<crate::spam::bayes::Class>> = env
            .recipients
            .iter()
            .map(|r| report::class_of(&r.address, &st.cfg.spam))
            .collect();
        req.no_autolearn = reports.iter().any(Option::is_some);
        crate::stats::sessions::stage("checks");
        let checks_began = Instant::now();
        let (checked, dkim) = tokio::join!(
            st.checks.run(Arc::clone(&spool), &req),
            verify_dkim(st.verifier.as_ref(), &spool)
        );
        crate::stats::stage("checks", checks_began.elapsed());
        let results = match checked {
            Ok((results, _decoded)) => results,
            Err(e) => {
                tracing::error!("({am_id}) checks failed: {e}");
                let r = Reply::new(
                    451,
                    "4.3.0",
                    format!("Error in processing, id={am_id}, {e}"),
                );
                log("Blocked UNCHECKED", "TempFailedInbound", &r, None);
                return Outcome::uniform(r, nrcpt);
            }
        };
        if let Some(s) = &results.spam {
            let _ = hits.set(s.score);
        }
        if let VirusScan::Failed { reason } = &results.virus {
            crate::stats::scanner_error();
            tracing::warn!("({am_id}) virus scan failed: {reason}");
        }
        let input = MessageInput {
            results: &results,
            am_id: &am_id,
            sender: &env.mail_from,
            size: spool.len(),
        };
        let mut verdicts: Vec<Verdict> = env
            .recipients
            .iter()
            .zip(&policies)
            .enumerate()
            .map(|(i, (r, p))| {
                verdict::decide(
                    &input,
                    &RecipientInput {
                        address: &r.address,
                        policy: p,
                        local: local[i],
                        list: lists[i],
                        bayes_user: bayes_users[i].as_deref(),
                    },
                )
            })
            .collect();
        let (status, words) = status_text(&verdicts);
        let dir = if mp.policy.originating {
            "Outbound"
        } else {
            "Inbound"
        };
        let braces = |words: &[&str]| {
            words
                .iter()
                .map(|w| format!("{w}{dir}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let sql_end = async |verdicts: &[Verdict],
                             outcomes: &[RcptOutcome],
                             dsn_sent: char,
                             stored: Option<&crate::quarantine::Stored>| {
            if let Some(store) = &st.store {
                let rows = record::rows(&env, verdicts, &local, &lists, outcomes, &results);
                let mut end = record::msg_end(verdicts, &results, dsn_sent);
                if let Some(q) = stored {
                    end.quar_type = q.quar_type;
                    end.quar_loc = q.quar_loc.clone();
                }
                // The message's fate is settled: a failure here can only be logged.
                let began = Instant::now();
                if let Err(e) = store.log_end(&ids.mail_id, &end, &rows).await {
                    crate::stats::sql_error();
                    tracing::error!("({am_id}) cannot complete the SQL log: {e}");
                }
                crate::stats::stage("sql_log", began.elapsed());
            }
        };
        // The whole message waits: logged, and the same 4xx for every recipient.
        let wait = async |r: Reply, verdicts: &[Verdict]| {
            let all = vec![
                RcptOutcome::Blocked {
                    reply: r.clone(),
                    dsn: false,
                };
                nrcpt
            ];
            sql_end(verdicts, &all, 'N', None).await;
            log(
                &format!("Blocked {status}"),
                &braces(&["TempFailed"]),
                &r,
                None,
            );
            Outcome::uniform(r, nrcpt)
        };

        // Copies to a report address retrain the reporting user's store and go no further.
        for (i, class) in reports.iter().enumerate() {
            let Some(class) = *class else {
                continue;
            };
            let reply = match st.checks.bayes_store() {
                Some(store) if mp.policy.originating && !env.mail_from.is_empty() => {
                    let user =
                        crate::spam::bayes::user_of(&env.mail_from, &mp.policy.recipient_delimiter);
                    match report::learn(&store, &user, class, Arc::clone(&spool)).await {
                        Ok(n) => {
                            tracing::info!(
                                "({am_id}) report from <{user}>: {n} message(s) learned as {class:?}"
                            );
                            Reply::new(
                                250,
                                "2.7.0",
                                format!("Ok, {n} reported message(s) learned, id={am_id}"),
                            )
                        }
                        Err(e) => {
                            tracing::error!("({am_id}) report from <{user}> not learned: {e}");
                            let r = Reply::new(
                                451,
                                "4.3.0",
                                format!(
                                    "Error in processing, id={am_id}, Bayes store: try again later"
                                ),
                            );
                            return wait(r, &verdicts).await;
                        }
                    }
                }
                // Reports train the sender's own store: from our users, with a sender.
                _ => Reply::new(554, "5.7.1", "Reports are taken from local users only"),
            };
            verdicts[i] = report::verdict(&verdicts[i], reply);
        }

        // SMTP has one reply: a recipient that must wait makes the whole message wait, before
        // anything is delivered.
        if env.protocol == Protocol::Smtp
            && let Some(r) = verdicts
                .iter()
                .find(|v| v.destiny == Destiny::Tempfail)
                .and_then(|v| v.reply.clone())
        {
            return wait(r, &verdicts).await;
        }

        for v in &verdicts {
            crate::stats::recipient(v.category.metric_name(), v.destiny.metric_name());
        }
        // Blocked copies are kept before anyone hears 250: a copy that cannot be stored makes
        // the message wait.
        crate::stats::sessions::stage("quarantine");
        let quarantine_began = Instant::now();
        let stored = match self
            .quarantine(
                &st,
                &env,
                &spool,
                &results,
                &verdicts,
                &policies,
                &ids.mail_id,
            )
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("({am_id}) {e}");
                let r = Reply::new(
                    451,
                    "4.3.0",
                    format!("Error in processing, id={am_id}, quarantine failed"),
                );
                return wait(r, &verdicts).await;
            }
        };
        crate::stats::stage("quarantine", quarantine_began.elapsed());
        if stored.is_some() {
            for (i, v) in verdicts.iter_mut().enumerate() {
                if v.destiny == Destiny::Pass && local[i] {
                    v.headers
                        .insert(0, ("X-Quarantine-ID".into(), format!("<{}>", ids.mail_id)));
                }
            }
        }

        // Passed copies, grouped by what must change in them: one transaction per group.
        let mut outcomes: Vec<Option<RcptOutcome>> = vec![None; nrcpt];
        let mut groups: Vec<(GroupKey, Vec<usize>)> = Vec::new();
        for (i, v) in verdicts.iter().enumerate() {
            if v.destiny != Destiny::Pass {
                outcomes[i] = Some(RcptOutcome::Blocked {
                    reply: v.reply.clone().unwrap_or_else(|| {
                        Reply::new(451, "4.3.0", format!("Error in processing, id={am_id}"))
                    }),
                    dsn: v.destiny == Destiny::Reject && !v.suppress_dsn,
                });
                continue;
            }
            let key = GroupKey {
                headers: v.headers.clone(),
                strip_spam: v.strip_spam_headers,
                subject_tag: v.subject_tag.clone(),
            };
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        let via = st.forwarder.method().to_string();
        crate::stats::sessions::stage("forward");
        let forward_began = Instant::now();
        let mut queued_as = None;
        let mut next_hop: Vec<Option<Reply>> = vec![None; nrcpt];
        // Authentication-Results of our authserv-id that came with the message are forged.
        let authserv_id = st.cfg.authserv_id();
        let forged = dkim.is_some() && crate::dkim::has_forged(spool.header_section(), authserv_id);
        let signer = st.signer.as_ref().filter(|_| mp.policy.originating);
        // Only mail we sign needs its author.
        let author = signer
            .and_then(|_| spool.header_field("From"))
            .map(|f| crate::dkim::author_address(&f).to_string())
            .unwrap_or_default();
        // The whole message, read once when some copy is signed.
        let mut whole: Option<std::borrow::Cow<'_, [u8]>> = None;
        for (key, members) in &groups {
            let mut prefix = trace_headers(&st.cfg, &env, &ids.mail_id);
            if let Some(v) = &dkim {
                prefix.extend_from_slice(v.header.as_bytes());
            }
            for (name, body) in &key.headers {
                prefix.extend_from_slice(format!("{name}: {body}\r\n").as_bytes());
            }
            let rewrite = key.strip_spam || !key.subject_tag.is_empty() || forged;
            let skip = if rewrite {
                prefix.extend_from_slice(&crate::message::header_edit::rewrite_header(
                    spool.header_section(),
                    key.strip_spam,
                    &key.subject_tag,
                    |f| forged && crate::dkim::is_forged(f, authserv_id),
                ));
                spool.header_section().len() as u64
            } else {
                0
            };
            if let Some(signer) = signer
                && signer.domain_for(&author, &env.mail_from).is_some()
            {
                if whole.is_none() {
                    whole = read_whole(&spool).await;
                }
                match whole.as_deref().map(|w| {
                    let rest = w.get(skip as usize..).unwrap_or_default();
                    signer.sign(&author, &env.mail_from, &[&prefix, rest])
                }) {
                    Some(Ok(Some(sig))) => {
                        let mut signed = sig.into_bytes();
                        signed.extend_from_slice(&prefix);
                        prefix = signed;
                    }
                    Some(Ok(None)) => {}
                    Some(Err(e)) => tracing::error!("({am_id}) DKIM: {e}; sent unsigned"),
                    None => tracing::error!("({am_id}) DKIM: spool unreadable; sent unsigned"),
                }
            }
            let rcpts: Vec<Recipient> = members
                .iter()
                .map(|&i| Recipient {
                    address: verdicts[i].address.clone(),
                    params: env.recipients[i].params.clone(),
                })
                .collect();
            let out = OutMessage {
                mail_from: &env.mail_from,
                mail_params: &env.mail_params,
                recipients: &rcpts,
                xforward: &env.client.xforward,
                prefix: &prefix,
                spool: &spool,
                skip,
                suffix: b"",
                all_or_nothing: env.protocol == Protocol::Smtp,
            };
            match st.forwarder.deliver(&out).await {
                Ok(d) => {
                    crate::stats::bytes_out(spool.len());
                    queued_as = queued_as.or(d.queued_as);
                    for (&i, r) in members.iter().zip(d.replies) {
                        next_hop[i] = Some(r.clone());
                        outcomes[i] = Some(RcptOutcome::Forwarded(r));
                    }
                }
                Err(e) => {
                    tracing::warn!("({am_id}) forwarding to {via} failed: {e}");
                    let r = Reply::new(
                        451,
                        e.status(),
                        format!("Error: cannot forward to {via}, id={am_id}: {e}"),
                    );
                    for &i in members {
                        outcomes[i] = Some(RcptOutcome::Blocked {
                            reply: r.clone(),
                            dsn: false,
                        });
                    }
                }
            }
        }
        crate::stats::stage("forward", forward_began.elapsed());
        let outcomes: Vec<RcptOutcome> = outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or(RcptOutcome::Blocked {
                    reply: Reply::new(451, "4.3.0", "Error in processing"),
                    dsn: false,
                })
            })
            .collect();
        let decision = combine(
            env.protocol,
            &via,
            &env.mail_from,
            &env.recipients,
            &outcomes,
        );

        // Our DSN: recipients the next hop refused for good, our rejects when the client is
        // told 250, and bounces.
        let mut report: Vec<(usize, Reply)> = decision
            .dsn_for
            .iter()
            .map(|&i| (i, outcomes[i].reply_text()))
            .collect();
        for (i, v) in verdicts.iter().enumerate() {
            if v.destiny == Destiny::Bounce
                && !v.suppress_dsn
                && env.recipients[i].notify_failure()
                && let Some(r) = &v.dsn_reply
            {
                report.push((i, r.clone()));
            }
        }
        let suppressed = verdicts
            .iter()
            .any(|v| v.destiny == Destiny::Bounce && v.suppress_dsn);
        let mut dsn_sent = if suppressed { 'q' } else { 'N' };
        if !report.is_empty() {
            // The original goes back whole only when every reported copy was refused by the
            // next hop; content we blocked never goes back.
            let may_return = report.iter().all(|(i, _)| next_hop[*i].is_some());
            let delivered = outcomes
                .iter()
                .any(|o| matches!(o, RcptOutcome::Forwarded(r) if r.is_positive()));
            let report: Vec<(usize, Reply, bool)> = report
                .into_iter()
                .map(|(i, r)| (i, r, next_hop[i].is_some()))
                .collect();
            let sent = self
                .send_dsn(
                    &st,
                    &env,
                    &spool,
                    &report,
                    &ids.mail_id,
                    &am_id,
                    may_return,
                    delivered,
                )
                .await;
            if sent {
                dsn_sent = 'Y';
            }
            if !sent
                && !delivered
                && report
                    .iter()
                    .any(|(i, _, _)| verdicts[*i].destiny == Destiny::Bounce)
            {
                // Nothing was delivered and the sender must learn of the bounce: keep the
                // message queued and try again later.
                let r = Reply::new(
                    451,
                    "4.3.0",
                    format!("Error in processing, id={am_id}, cannot send the bounce"),
                );
                return wait(r, &verdicts).await;
            }
        }
        let facts = NoticeInput {
            env: &env,
            spool: &spool,
            results: &results,
            verdicts: &verdicts,
            policies: &policies,
            mail_id: &ids.mail_id,
            am_id: &am_id,
            banks: &path,
            quarantine: stored.as_ref().map(|q| q.quar_loc.as_str()),
        };
        Self::send_notices(&st, &facts);
        sql_end(&verdicts, &outcomes, dsn_sent, stored.as_ref()).await;
        let word = if verdicts.iter().any(|v| v.destiny == Destiny::Pass) {
            "Passed"
        } else {
            "Blocked"
        };
        // The next hop's answer can turn "Relayed" into "TempFailed" or "Rejected".
        let words: Vec<&str> = words
            .into_iter()
            .map(|w| {
                if w == "Relayed" && decision.action != "Relayed" {
                    decision.action
                } else {
                    w
                }
            })
            .collect();
        log(
            &format!("{word} {status}"),
            &braces(&words),
            &decision.outcome.message,
            queued_as.as_deref(),
        );
        decision.outcome
    }

    /// Keeps a blocked message where the policy of its first blocked copy says (the
    /// method of the category that blocked it), once per message, as amavisd-new does for
    /// one quarantine location. Spam at or above the quarantine cut-off is not kept.
    #[allow(clippy::too_many_arguments)]
    async fn quarantine(
        &self,
        st: &State,
        env: &Envelope,
        spool: &Spool,
        results: &crate::message::CheckResults,
        verdicts: &[Verdict],
        policies: &[Arc<Policy>],
        mail_id: &str,
    ) -> Result<Option<crate::quarantine::Stored>, crate::quarantine::QuarantineError> {
        let score = results.spam.as_ref().map(|s| s.score);
        let method = verdicts.iter().zip(policies).find_map(|(v, p)| {
            if matches!(v.destiny, Destiny::Pass | Destiny::Tempfail) {
                return None;
            }
            let cutoff = matches!(v.blocked_by, Category::Spam | Category::Spammy)
                && p.spam_quarantine_cutoff_level
                    .is_some_and(|c| score.is_some_and(|s| s >= c));
            let m = p.quarantine_method(v.blocked_by);
            (!cutoff && !m.is_empty()).then(|| m.to_string())
        });
        let Some(method) = method else {
            return Ok(None);
        };
        let method = crate::quarantine::Method::parse(&method)
            .map_err(crate::quarantine::QuarantineError::Method)?;
        let rcpts: Vec<&str> = env.recipients.iter().map(|r| r.address.as_str()).collect();
        let blocked: Vec<&str> = env
            .recipients
            .iter()
            .zip(verdicts)
            .filter(|(_, v)| v.destiny != Destiny::Pass)
            .map(|(r, _)| r.address.as_str())
            .collect();
        let head = crate::quarantine::envelope_header(&env.mail_from, &rcpts, &blocked, mail_id);
        crate::quarantine::store(
            &method,
            &st.cfg.quarantine,
            st.store.as_deref(),
            mail_id,
            head,
            spool,
        )
        .await
    }

    /// Admin notices (one per admin address, naming the recipients concerned) and recipient
    /// warnings for blocked copies. They go out in the background: the message's fate is
    /// settled and a notice that cannot be sent is only logged.
    fn send_notices(st: &Arc<State>, n: &NoticeInput) {
        let NoticeInput {
            env,
            spool,
            results,
            verdicts,
            policies,
            mail_id,
            am_id,
            banks,
            quarantine,
        } = *n;
        let blocked: Vec<usize> = (0..verdicts.len())
            .filter(|&i| verdicts[i].destiny != Destiny::Pass)
            .collect();
        if blocked.is_empty() {
            return;
        }
        let mut notices: Vec<(String, Vec<u8>)> = Vec::new();
        let facts = |which: &[usize]| {
            let worst = which
                .iter()
                .map(|&i| &verdicts[i])
                .max_by_key(|v| v.blocked_by);
            crate::smtp_out::NoticeFacts {
                sender: format!("<{}>", env.mail_from),
                recipients: which
                    .iter()
                    .map(|&i| env.recipients[i].address.clone())
                    .collect(),
                viruses: results
                    .virus_names()
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                banned: which
                    .iter()
                    .flat_map(|&i| {
                        results
                            .banned_under(&policies[i].banned_rules)
                            .iter()
                            .map(|h| h.value().to_string())
                    })
                    .fold(Vec::new(), |mut acc, v| {
                        if !acc.contains(&v) {
                            acc.push(v);
                        }
                        acc
                    }),
                bad_header: results
                    .bad_header
                    .iter()
                    .map(|b| b.detail.clone())
                    .collect(),
                spam_score: results
                    .spam
                    .as_ref()
                    .map(|s| verdict::spam_number(s.score))
                    .unwrap_or_default(),
                category: worst
                    .map(|v| v.blocked_by.log_name(v.minor))
                    .unwrap_or_default(),
                am_id: am_id.to_string(),
                mail_id: mail_id.to_string(),
                message_id: spool.header_field("Message-ID").unwrap_or_default(),
                subject: spool.header_field("Subject").unwrap_or_default(),
                quarantine: quarantine.map(str::to_string).into_iter().collect(),
                size: spool.len(),
                banks: banks.to_string(),
                client: env.client.xforward.addr.clone().unwrap_or_default(),
            }
        };
        let site = crate::smtp_out::NoticeSite {
            myhostname: st.cfg.myhostname.clone(),
            mydomain: st.cfg.mydomain.clone(),
        };
        let mut admins: Vec<(String, Vec<usize>)> = Vec::new();
        for &i in &blocked {
            for a in verdicts[i]
                .admin
                .split([',', ' '])
                .filter(|a| !a.is_empty())
            {
                match admins.iter_mut().find(|(x, _)| x == a) {
                    Some((_, v)) => v.push(i),
                    None => admins.push((a.to_string(), vec![i])),
                }
            }
        }
        for (admin, which) in admins {
            let body =
                crate::smtp_out::build_notice(&st.templates.admin, &facts(&which), &site, &admin);
            notices.push((admin, body));
        }
        for &i in &blocked {
            if verdicts[i].warn_recipient {
                let to = env.recipients[i].address.clone();
                let body = crate::smtp_out::build_notice(
                    &st.templates.recipient,
                    &facts(&[i]),
                    &site,
                    &to,
                );
                notices.push((to, body));
            }
        }
        if notices.is_empty() {
            return;
        }
        let st = Arc::clone(st);
        let am_id = am_id.to_string();
        tokio::spawn(async move {
            for (to, body) in notices {
                let spool = Spool::from_bytes(body);
                match st.notifier.send_notification(&to, b"", &spool, b"").await {
                    Ok(d) if d.replies.iter().all(Reply::is_positive) => {
                        tracing::info!("({am_id}) notice sent to <{to}>")
                    }
                    Ok(d) => tracing::error!(
                        "({am_id}) notice to <{to}> refused: {}",
                        d.replies.first().map(Reply::one_line).unwrap_or_default()
                    ),
                    Err(e) => tracing::error!("({am_id}) notice to <{to}> not sent: {e}"),
                }
            }
        });
    }

    /// Tells the sender about recipients that did not get the message: those the next hop
    /// refused for good (as amavisd-new does when it has answered its SMTP client 250), or all
    /// of them for a bounced message. `may_return` lets the DSN carry the whole original when
    /// the sender asked (RET=FULL); a blocked message's content never goes back. True when
    /// the next hop took the DSN.
    #[allow(clippy::too_many_arguments)]
    async fn send_dsn(
        &self,
        st: &State,
        env: &Envelope,
        spool: &Spool,
        report: &[(usize, Reply, bool)],
        mail_id: &str,
        am_id: &str,
        may_return: bool,
        partly_delivered: bool,
    ) -> bool {
        let failed: Vec<FailedRecipient> = report
            .iter()
            .filter_map(|(i, reply, remote)| {
                let r = env.recipients.get(*i)?;
                Some(FailedRecipient {
                    address: r.address.clone(),
                    orcpt: r.param("ORCPT").map(str::to_string),
                    reply: reply.clone(),
                    remote: *remote,
                })
            })
            .collect();
        let remote = match &st.forwarder.method().target {
            crate::config::ForwardTarget::Inet(a) => a.ip().to_string(),
            crate::config::ForwardTarget::Unix(p) => p.display().to_string(),
        };
        let (head, full, tail) = build_dsn(&DsnInput {
            envelope: env,
            failed: &failed,
            reporting_mta: &st.cfg.myhostname,
            mydomain: &st.cfg.mydomain,
            mail_id,
            remote_mta: &remote,
            partly_delivered,
        });
        let headers_only;
        let original = if full && may_return {
            spool
        } else {
            headers_only = Spool::from_bytes(spool.header_section().to_vec());
            &headers_only
        };
        match st
            .notifier
            .send_notification(&env.mail_from, &head, original, &tail)
            .await
        {
            Ok(d) if d.replies.iter().all(Reply::is_positive) => {
                tracing::info!(
                    "({am_id}) DSN sent to <{}> for {} recipient(s)",
                    env.mail_from,
                    failed.len()
                );
                true
            }
            Ok(d) => {
                tracing::error!(
                    "({am_id}) DSN to <{}> refused: {}",
                    env.mail_from,
                    d.replies.first().map(Reply::one_line).unwrap_or_default()
                );
                false
            }
            Err(e) => {
                tracing::error!("({am_id}) DSN to <{}> not sent: {e}", env.mail_from);
                false
            }
        }
    }
}

/// What the notices of one message are about.
#[derive(Clone, Copy)]
struct NoticeInput<'a> {
    env: &'a Envelope,
    spool: &'a Spool,
    results: &'a crate::message::CheckResults,
    verdicts: &'a [Verdict],
    policies: &'a [Arc<Policy>],
    mail_id: &'a str,
    am_id: &'a str,
    banks: &'a str,
    quarantine: Option<&'a str>,
}

/// What must change in a passed copy; recipients with equal keys share a transaction.
#[derive(Debug, Clone, PartialEq)]
struct GroupKey {
    headers: Vec<(String, String)>,
    strip_spam: bool,
    subject_tag: String,
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

/// The whole message: borrowed when it is in memory, read off the blocking pool when it is
/// on disk. `None` when the file cannot be read (the checks report that and the mail waits).
async fn read_whole(spool: &Arc<Spool>) -> Option<std::borrow::Cow<'_, [u8]>> {
    if let Some(b) = spool.as_bytes() {
        return Some(std::borrow::Cow::Borrowed(b));
    }
    let s = Arc::clone(spool);
    tokio::task::spawn_blocking(move || s.to_bytes_blocking().map(|c| c.into_owned()))
        .await
        .ok()?
        .ok()
        .map(std::borrow::Cow::Owned)
}

/// The log line's category text and destinies: the worst category over the recipients
/// (`INFECTED (Eicar-Test-Signature)`, `CLEAN`) and amavisd-new's `{...}` words
/// (`Relayed`, `Discarded`), to which the caller adds `Inbound`/`Outbound`.
fn status_text(verdicts: &[Verdict]) -> (String, Vec<&'static str>) {
    let worst = verdicts.iter().max_by_key(|v| (v.category, v.minor));
    let text = match worst {
        Some(v) => {
            let name = v.category.log_name(v.minor);
            match v.category {
                Category::Virus | Category::Banned => format!("{name} ({})", v.detail),
                _ => name,
            }
        }
        None => "CLEAN".into(),
    };
    let mut words: Vec<&'static str> = Vec::new();
    for v in verdicts {
        let w = v.destiny.log_word();
        if !words.contains(&w) {
            words.push(w);
        }
    }
    (text, words)
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
                return a;
            }
            let bayes = st.checks.bayes_store();
            let ctx = crate::release::ReleaseContext {
                bayes: bayes
                    .as_deref()
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

impl MessageHandler for Pipeline {
    async fn handle(&self, envelope: Envelope, spool: Spool) -> Outcome {
        let began = Instant::now();
        let outcome = self.process(envelope, spool).await;
        crate::stats::stage("total", began.elapsed());
        outcome
    }
}
