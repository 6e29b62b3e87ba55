//! The front-end check API: the steps that answer "what is the verdict for this message and
//! these recipients?" ([`Pipeline::check`](super::Pipeline::check)), which the SMTP/LMTP path
//! runs too, with the SQL record of the message's start between them.

use super::job::{Checked, Job, Tempfail};
use super::state::State;
use super::{checks, decide, recipients, record};
use crate::dkim::Verification;
use crate::message::CheckResults;
use crate::policy_bank::RecipientPolicy;
use crate::verdict::Verdict;

/// Resolves the recipients' settings, runs the checks and decides; with `record`, the
/// message's `msgs` row is written before the checks.
pub(super) async fn assess(st: &State, job: &mut Job, record: bool) -> Result<(), Tempfail> {
    recipients::resolve(st, job).await?;
    if record {
        record::log_start(st, job).await?;
    }
    crate::stats::stage("policy", job.started.elapsed());
    checks::check(st, job).await?;
    decide::decide(st, job).await
}

/// What the checks and the verdict say about one message.
#[derive(Debug)]
pub struct Assessment {
    /// amavisd-new's log id and the message's mail_id, as the SMTP path would log them.
    pub am_id: String,
    pub mail_id: String,
    /// The policy bank path (`MYNETS/ORIGINATING`), empty for none.
    pub banks: String,
    /// Everything the checks found: spam symbols and scores, virus names, banned parts with
    /// the rule that matched, bad-header minors, what could not be checked.
    pub results: CheckResults,
    /// The DKIM signatures verified, when verification is on.
    pub dkim: Option<Verification>,
    /// The spam engine's own result for the site (every hit with its description, the
    /// required score), when it scanned: what spamd and similar protocols answer with.
    pub spam: Option<crate::spam::scan::Outcome>,
    /// One entry per recipient, in envelope order.
    pub recipients: Vec<Assessed>,
}

/// One recipient's settings and the verdict for its copy.
#[derive(Debug)]
pub struct Assessed {
    pub address: String,
    pub settings: RecipientPolicy,
    pub verdict: Verdict,
}

impl Assessment {
    /// From a job whose verdicts are made; `None` if its checks did not run.
    pub(super) fn of(job: Job) -> Option<Assessment> {
        let Checked {
            results,
            dkim,
            spam,
        } = job.checked?;
        let recipients = job
            .env
            .recipients
            .into_iter()
            .zip(job.rcpts)
            .zip(job.verdicts)
            .map(|((r, rc), verdict)| Assessed {
                address: r.address,
                settings: rc.settings,
                verdict,
            })
            .collect();
        Some(Assessment {
            am_id: job.am_id,
            mail_id: job.ids.mail_id,
            banks: job.path,
            results,
            dkim,
            spam,
            recipients,
        })
    }
}
