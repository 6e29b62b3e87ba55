//! What happens to one received message. Today the filter passes everything: it adds the trace
//! headers, reinjects, applies the reply contract, sends our own DSN where the contract says so,
//! and writes amavisd-new's one log line. The checks (decode, banned, AV, spam) and the verdict
//! slot in between reception and reinjection.

mod contract;
mod log_line;
mod trace_headers;

pub use contract::{Decision, decide, failed};
pub use log_line::{LogLine, next_am_id};
pub use trace_headers::trace_headers;

use crate::config::Config;
use crate::message::{
    Envelope, Outcome, Protocol, Recipient, Reply, Spool, XForward, generate_mail_id,
};
use crate::smtp_in::MessageHandler;
use crate::smtp_out::{DsnInput, FailedRecipient, Forwarder, OutMessage, build_dsn};
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::Instant;

/// Everything that a reload replaces at once.
struct State {
    cfg: Arc<Config>,
    forwarder: Forwarder,
    notifier: Forwarder,
}

/// The message handler behind every listener.
pub struct Pipeline {
    state: ArcSwap<State>,
}

impl Pipeline {
    /// A pipeline for `cfg`.
    pub fn new(cfg: Arc<Config>) -> Pipeline {
        Pipeline {
            state: ArcSwap::from_pointee(Self::state(cfg)),
        }
    }

    fn state(cfg: Arc<Config>) -> State {
        State {
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
        }
    }

    /// Takes a new configuration for messages that start from now on; messages in flight finish
    /// with the old one.
    pub fn reload(&self, cfg: Arc<Config>) {
        self.state.store(Arc::new(Self::state(cfg)));
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
        let prefix = trace_headers(&st.cfg, &env, &ids.mail_id);
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
            )
            .await;
        }
        LogLine {
            am_id: &am_id,
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

    /// Tells the sender about recipients the next hop refused for good, as amavisd-new does
    /// when it has answered its SMTP client 250. The original is already delivered to the
    /// others, so a failure here can only be logged: answering 4xx now would duplicate it.
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
    ) {
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
        let original = if full {
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
            }
            Ok(d) => tracing::error!(
                "({am_id}) DSN to <{}> refused: {}",
                env.mail_from,
                d.replies.first().map(Reply::one_line).unwrap_or_default()
            ),
            Err(e) => tracing::error!("({am_id}) DSN to <{}> not sent: {e}", env.mail_from),
        }
    }
}

impl MessageHandler for Pipeline {
    fn handle(&self, envelope: Envelope, spool: Spool) -> impl Future<Output = Outcome> + Send {
        self.process(envelope, spool)
    }
}
