//! One message on its way through the pipeline: what each step reads and what it adds, and
//! the one way a step makes the whole message wait ([`Tempfail`]).

use super::analyzers::CheckScope;
use super::log_line::LogLine;
use crate::dkim::Verification;
use crate::message::{CheckResults, Envelope, MailIds, Reply, Spool};
use crate::policy_bank::{MessagePolicy, RecipientPolicy};
use crate::spam::Class;
use crate::verdict::Verdict;
use std::sync::Arc;
use std::time::Instant;

/// The message's state. Steps fill it in order: recipients, checks, verdicts.
pub(super) struct Job {
    pub started: Instant,
    /// amavisd-new's log id (`12345-01`).
    pub am_id: String,
    pub ids: MailIds,
    pub env: Envelope,
    pub spool: Arc<Spool>,
    /// The message's policy banks and their merged settings.
    pub bank: MessagePolicy,
    /// The bank path as logged (`MYNETS/ORIGINATING`).
    pub path: String,
    /// Each recipient's settings, in envelope order; empty until resolved.
    pub rcpts: Vec<Rcpt>,
    /// What the checks found; `None` until they ran.
    pub checked: Option<Checked>,
    /// One verdict per recipient, final; empty until decided.
    pub verdicts: Vec<Verdict>,
    /// Which analyzers run (the SMTP/LMTP path: all the policies ask for).
    pub scope: CheckScope,
}

/// One recipient's settings and the roles its address plays.
pub(super) struct Rcpt {
    pub settings: RecipientPolicy,
    /// The recipient's own Bayes store (`bayes_per_user`), by user name.
    pub bayes_user: Option<String>,
    /// The class this address reports (a Bayes report address), if it is one.
    pub report: Option<Class>,
}

/// What the checks found about the message.
pub struct Checked {
    pub results: CheckResults,
    /// The DKIM signatures verified, when verification is on.
    pub dkim: Option<Verification>,
    /// The spam engine's own result for the site, when it scanned.
    pub spam: Option<crate::spam::scan::Outcome>,
}

/// The whole message waits: the client hears `reply` (4xx) for every recipient. `reason`,
/// when set, is what went wrong, for the log; a verdict that waits (a scanner down) was
/// logged where it was found.
#[derive(Debug, Clone)]
pub struct Tempfail {
    pub reply: Reply,
    pub reason: Option<String>,
}

impl Tempfail {
    /// `451 4.3.0 Error in processing, id=AM_ID, WHAT`.
    pub fn processing(am_id: &str, what: &str) -> Tempfail {
        Tempfail::reply(Reply::new(
            451,
            "4.3.0",
            format!("Error in processing, id={am_id}, {what}"),
        ))
    }

    /// With what went wrong, for the log.
    pub fn because(self, reason: impl ToString) -> Tempfail {
        Tempfail {
            reason: Some(reason.to_string()),
            ..self
        }
    }

    /// The reply a verdict or the reply contract gave, already logged.
    pub fn reply(reply: Reply) -> Tempfail {
        Tempfail {
            reply,
            reason: None,
        }
    }
}

impl Job {
    /// A job for a received message; fails (the message waits) only when no mail_id can be
    /// drawn from the system's random source.
    pub fn new(env: Envelope, spool: Arc<Spool>, bank: MessagePolicy) -> Result<Job, Tempfail> {
        let am_id = super::next_am_id();
        let ids = crate::message::generate_mail_id().map_err(|e| Tempfail {
            reply: Reply::new(451, "4.3.0", "Error: internal error, try again later"),
            reason: Some(format!("({am_id}) cannot draw a mail_id: {e}")),
        })?;
        Ok(Job {
            started: Instant::now(),
            path: bank.path(),
            am_id,
            ids,
            env,
            spool,
            bank,
            rcpts: Vec::new(),
            checked: None,
            verdicts: Vec::new(),
            scope: CheckScope::Full,
        })
    }

    /// The check results, once the checks ran.
    pub fn results(&self) -> Option<&CheckResults> {
        self.checked.as_ref().map(|c| &c.results)
    }

    /// amavisd-new's direction word for the log: mail from our own users is outbound.
    pub fn direction(&self) -> &'static str {
        if self.bank.policy.originating {
            "Outbound"
        } else {
            "Inbound"
        }
    }

    /// `words` each with the direction, as the braces of the log line show them.
    pub fn braces(&self, words: &[&str]) -> String {
        let dir = self.direction();
        words
            .iter()
            .map(|w| format!("{w}{dir}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Writes amavisd-new's one log line for the message.
    pub fn log(&self, status: &str, action: &str, reply: &Reply, queued_as: Option<&str>) {
        LogLine {
            am_id: &self.am_id,
            status,
            action,
            banks: &self.path,
            env: &self.env,
            message_id: self.spool.header_field("Message-ID"),
            mail_id: &self.ids.mail_id,
            size: self.spool.len(),
            hits: self
                .results()
                .and_then(|r| r.spam.as_ref())
                .map(|s| s.score),
            dns: self
                .results()
                .and_then(|r| r.spam.as_ref())
                .map(|s| s.dns.as_str()),
            auth: self
                .checked
                .as_ref()
                .and_then(|c| c.dkim.as_ref())
                .map(crate::dkim::Verification::log_fields)
                .unwrap_or_default(),
            queued_as,
            reply,
            elapsed: self.started.elapsed(),
        }
        .emit();
    }
}

/// A whole message in memory, with its share of the memory budget
/// ([`crate::message::budget`]) while it is a copy of a spooled file.
pub(super) struct Whole<'a> {
    bytes: std::borrow::Cow<'a, [u8]>,
    _budget: Option<crate::message::budget::Held>,
}

impl std::ops::Deref for Whole<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// The whole message: borrowed when it is in memory; read off the blocking pool when it is
/// on disk, once its size fits in the budget of such copies. `None` when the file cannot
/// be read (the checks report that and the mail waits).
pub(super) async fn read_whole(spool: &Arc<Spool>) -> Option<Whole<'_>> {
    if let Some(b) = spool.as_bytes() {
        return Some(Whole {
            bytes: std::borrow::Cow::Borrowed(b),
            _budget: None,
        });
    }
    let budget = crate::message::budget::hold(spool.len()).await;
    let s = Arc::clone(spool);
    let bytes = tokio::task::spawn_blocking(move || s.to_bytes_blocking().map(|c| c.into_owned()))
        .await
        .ok()?
        .ok()?;
    Some(Whole {
        bytes: std::borrow::Cow::Owned(bytes),
        _budget: Some(budget),
    })
}
