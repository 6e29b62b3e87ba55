//! Step: blocked copies are kept before anyone hears 250. A copy that cannot be stored makes
//! the message wait.

use super::job::{Job, Tempfail};
use super::state::State;
use crate::message::{Category, Destiny};
use crate::quarantine::{self, Method, QuarantineError, Stored};
use std::time::Instant;

/// Keeps the message where the policy of its first blocked copy says; `None` when no copy
/// is kept.
pub(super) async fn quarantine(st: &State, job: &Job) -> Result<Option<Stored>, Tempfail> {
    crate::stats::sessions::stage("quarantine");
    let began = Instant::now();
    let stored = keep(st, job)
        .await
        .map_err(|e| Tempfail::processing(&job.am_id, "quarantine failed").because(e))?;
    crate::stats::stage("quarantine", began.elapsed());
    Ok(stored)
}

/// The method of the category that blocked the first blocked copy, once per message, as
/// amavisd-new does for one quarantine location. Spam at or above the quarantine cut-off is
/// not kept.
fn method(job: &Job) -> Option<String> {
    let score = job.results()?.spam.as_ref().map(|s| s.score);
    job.verdicts.iter().zip(&job.rcpts).find_map(|(v, rc)| {
        if matches!(v.destiny, Destiny::Pass | Destiny::Tempfail) {
            return None;
        }
        let p = &rc.settings.policy;
        let cutoff = matches!(v.blocked_by, Category::Spam | Category::Spammy)
            && p.spam_quarantine_cutoff_level
                .is_some_and(|c| score.is_some_and(|s| s >= c));
        let m = p.quarantine_method(v.blocked_by);
        (!cutoff && !m.is_empty()).then(|| m.to_string())
    })
}

async fn keep(st: &State, job: &Job) -> Result<Option<Stored>, QuarantineError> {
    let Some(method) = method(job) else {
        return Ok(None);
    };
    let method = Method::parse(&method).map_err(QuarantineError::Method)?;
    let env = &job.env;
    let rcpts: Vec<&str> = env.recipients.iter().map(|r| r.address.as_str()).collect();
    let blocked: Vec<&str> = env
        .recipients
        .iter()
        .zip(&job.verdicts)
        .filter(|(_, v)| v.destiny != Destiny::Pass)
        .map(|(r, _)| r.address.as_str())
        .collect();
    let mail_id = &job.ids.mail_id;
    let head = quarantine::envelope_header(&env.mail_from, &rcpts, &blocked, mail_id);
    quarantine::store(
        &method,
        &st.cfg.quarantine,
        st.store.as_deref(),
        mail_id,
        head,
        &job.spool,
    )
    .await
}
