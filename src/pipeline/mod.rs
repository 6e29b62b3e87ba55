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
mod trace_headers;

pub use checks::{CheckError, Checks};
pub use contract::{Decision, decide, failed};
pub use log_line::{LogLine, next_am_id};
pub use trace_headers::trace_headers;

use crate::config::{Config, ConfigError};
use crate::message::{
    Category, Destiny, Envelope, Outcome, Protocol, Recipient, Reply, Spool, XForward,
    generate_mail_id,
};
use crate::smtp_in::MessageHandler;
use crate::smtp_out::{DsnInput, FailedRecipient, Forwarder, OutMessage, build_dsn};
use crate::verdict::{self, Verdict};
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::Instant;

/// Everything that a reload replaces at once.
struct State {
    cfg: Arc<Config>,
    checks: Checks,
    forwarder: Forwarder,
    notifier: Forwarder,
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
        Ok(State {
            checks: Checks::new(&cfg)?,
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
        let blocked = |reply: Reply, status: &str, action: &str, spool: &Spool| {
            LogLine {
                am_id: &am_id,
                status,
                action,
                env: &env,
                message_id: spool.header_field("Message-ID"),
                mail_id: &ids.mail_id,
                size: spool.len(),
                queued_as: None,
                reply: &reply,
                elapsed: started.elapsed(),
            }
            .emit();
            Outcome::uniform(reply, nrcpt)
        };
        let results = match st.checks.run(Arc::clone(&spool), &st.cfg.policy).await {
            Ok((results, _decoded)) => results,
            Err(e) => {
                tracing::error!("({am_id}) checks failed: {e}");
                let r = Reply::new(
                    451,
                    "4.3.0",
                    format!("Error in processing, id={am_id}, {e}"),
                );
                return blocked(r, "Blocked UNCHECKED", "TempFailed", &spool);
            }
        };
        let Some(verdict) = verdict::decide(&results, &st.cfg.policy, &am_id, &env.mail_from)
        else {
            let why = match &results.virus {
                crate::message::VirusScan::Failed { reason } => reason.as_str(),
                _ => "",
            };
            tracing::warn!("({am_id}) virus scan failed: {why}");
            let r = verdict::scan_failed_reply(&am_id, "all virus scanners failed");
            return blocked(r, "Blocked UNCHECKED", "TempFailed", &spool);
        };
        let status = status_text(&verdict);
        if let Some(reply) = verdict.reply.clone() {
            let mut reply = reply;
            let mut action = verdict.destiny.log_word();
            if verdict.destiny == Destiny::Bounce && !verdict.suppress_dsn {
                let failed = vec![reply_for_bounce(&verdict); nrcpt];
                let all: Vec<usize> = (0..nrcpt).collect();
                let sent = self
                    .send_dsn(
                        &st,
                        &env,
                        &spool,
                        &failed,
                        &all,
                        &ids.mail_id,
                        &am_id,
                        false,
                    )
                    .await;
                if !sent {
                    // The sender must learn the message was not delivered: keep it queued.
                    reply = Reply::new(
                        451,
                        "4.3.0",
                        format!("Error in processing, id={am_id}, cannot send the bounce"),
                    );
                    action = "TempFailed";
                }
            }
            return blocked(reply, &format!("Blocked {status}"), action, &spool);
        }
        let mut prefix = trace_headers(&st.cfg, &env, &ids.mail_id);
        for (name, body) in &verdict.headers {
            prefix.extend_from_slice(format!("{name}: {body}\r\n").as_bytes());
        }
        let via = st.forwarder.method().to_string();
        let out = OutMessage {
            mail_from: &env.mail_from,
            mail_params: &env.mail_params,
            recipients: &env.recipients,
            xforward: &env.client.xforward,
            prefix: &prefix,
            spool: &spool,
            suffix: b"",
            all_or_nothing: env.protocol == Protocol::Smtp,
        };
        let mut replies = Vec::new();
        let (decision, queued_as) = match st.forwarder.deliver(&out).await {
            Ok(d) => {
                replies = d.replies;
                (
                    decide(
                        env.protocol,
                        &via,
                        &env.mail_from,
                        &env.recipients,
                        &replies,
                    ),
                    d.queued_as,
                )
            }
            Err(e) => {
                tracing::warn!("({am_id}) forwarding to {via} failed: {e}");
                let r = Reply::new(
                    451,
                    e.status(),
                    format!("Error: cannot forward to {via}, id={am_id}: {e}"),
                );
                (failed(nrcpt, r), None)
            }
        };
        if !decision.dsn_for.is_empty() {
            self.send_dsn(
                &st,
                &env,
                &spool,
                &replies,
                &decision.dsn_for,
                &ids.mail_id,
                &am_id,
                true,
            )
            .await;
        }
        LogLine {
            am_id: &am_id,
            status: &format!("Passed {status}"),
            action: decision.action,
            env: &env,
            message_id: spool.header_field("Message-ID"),
            mail_id: &ids.mail_id,
            size: spool.len(),
            queued_as: queued_as.as_deref(),
            reply: &decision.outcome.message,
            elapsed: started.elapsed(),
        }
        .emit();
        decision.outcome
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
        replies: &[Reply],
        which: &[usize],
        mail_id: &str,
        am_id: &str,
        may_return: bool,
    ) -> bool {
        let failed: Vec<FailedRecipient> = which
            .iter()
            .filter_map(|&i| {
                let r = env.recipients.get(i)?;
                Some(FailedRecipient {
                    address: r.address.clone(),
                    orcpt: r.param("ORCPT").map(str::to_string),
                    reply: replies.get(i)?.clone(),
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
        });
        let headers_only;
        let original = if full && may_return {
            spool
        } else {
            headers_only = Spool::from_bytes(spool.header_section().to_vec());
            &headers_only
        };
        let to = [Recipient {
            address: env.mail_from.clone(),
            params: Vec::new(),
        }];
        let none = XForward::default();
        let dsn = OutMessage {
            mail_from: "",
            mail_params: &[],
            recipients: &to,
            xforward: &none,
            prefix: &head,
            spool: original,
            suffix: &tail,
            all_or_nothing: true,
        };
        match st.notifier.deliver(&dsn).await {
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

/// The log line's category text: `CLEAN`, `INFECTED (Eicar-Test-Signature)`, `BANNED (a.exe)`.
fn status_text(v: &Verdict) -> String {
    let name = v.category.log_name(v.minor);
    match v.category {
        Category::Virus | Category::Banned => format!("{name} ({})", v.detail),
        _ => name,
    }
}

/// The per-recipient reply a bounce reports (the DSN's Diagnostic-Code), as a reject would.
fn reply_for_bounce(v: &Verdict) -> Reply {
    let text = v
        .reply
        .as_ref()
        .map(|r| r.text.replacen("Ok, discarded", "Bounced", 1))
        .unwrap_or_default();
    let status = if v.category == Category::BadHeader {
        "5.6.0"
    } else {
        "5.7.0"
    };
    Reply::new(554, status, text)
}

impl MessageHandler for Pipeline {
    fn handle(&self, envelope: Envelope, spool: Spool) -> impl Future<Output = Outcome> + Send {
        self.process(envelope, spool)
    }
}
