//! Step: the checks the recipients' policies ask for ([`Checks`](super::Checks) runs the
//! analyzers), with DKIM verification beside them.

use super::analyzers::{CheckRequest, CheckScope};
use super::job::{Checked, Job, Tempfail, read_whole};
use super::state::State;
use crate::message::{Spool, VirusScan};
use std::sync::Arc;
use std::time::Instant;

/// Runs the checks the recipients' policies ask for (or those of the job's scope), and fills
/// `job.checked`. A check that could not run makes the message wait.
pub(super) async fn check(st: &State, job: &mut Job) -> Result<(), Tempfail> {
    let (req, verifier) = match job.scope {
        CheckScope::Full => (request(job), st.verifier.as_ref()),
        CheckScope::SpamOnly => (CheckRequest::spam_only(&job.env.mail_from), None),
    };
    crate::stats::sessions::stage("checks");
    let began = Instant::now();
    let (checked, dkim) = tokio::join!(
        st.checks.run(Arc::clone(&job.spool), &req),
        verify_dkim(verifier, &job.spool)
    );
    crate::stats::stage("checks", began.elapsed());
    let analyzed = checked.map_err(|e| {
        Tempfail::processing(&job.am_id, &e.to_string()).because(format!("checks failed: {e}"))
    })?;
    if let VirusScan::Failed { reason } = &analyzed.results.virus {
        crate::stats::scanner_error();
        tracing::warn!("({}) virus scan failed: {reason}", job.am_id);
    }
    job.checked = Some(Checked {
        results: analyzed.results,
        dkim,
        spam: analyzed.spam,
    });
    Ok(())
}

/// What the recipients' policies ask the analyzers for.
fn request(job: &Job) -> CheckRequest {
    let mut req = CheckRequest::for_policies(job.rcpts.iter().map(|r| r.settings.policy.as_ref()));
    req.sender = job.env.mail_from.clone();
    req.banks = job.bank.banks.clone();
    req.smtputf8 = job.env.has_mail_flag("SMTPUTF8");
    for u in job.rcpts.iter().filter_map(|r| r.bayes_user.as_ref()) {
        if !req.bayes_users.contains(u) {
            req.bayes_users.push(u.clone());
        }
    }
    req.no_autolearn = job.rcpts.iter().any(|r| r.report.is_some());
    req
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
