//! Step: the verdict for each recipient's copy, final when this step returns. Copies to a
//! Bayes report address are learned first: what the report's sender hears is an input of
//! the verdict, not a patch on it.

use super::job::{Job, Tempfail};
use super::state::State;
use crate::message::Reply;
use crate::verdict::{self, MessageInput, RecipientInput};
use std::sync::Arc;

/// Fills `job.verdicts`. A report that cannot be learned makes the message wait (the
/// verdicts are still made, with the reports answered so far: the log and the SQL record
/// give the message's category).
pub(super) async fn decide(st: &State, job: &mut Job) -> Result<(), Tempfail> {
    let mut answers: Vec<Option<Reply>> = vec![None; job.rcpts.len()];
    let mut failed = None;
    for (i, answer) in answers.iter_mut().enumerate() {
        match learn_report(st, job, i).await {
            Ok(a) => *answer = a,
            Err(t) => {
                failed = Some(t);
                break;
            }
        }
    }
    job.verdicts = verdicts(job, &answers);
    failed.map_or(Ok(()), Err)
}

/// Each recipient's verdict, with the answer to its report if it is a report address.
fn verdicts(job: &Job, answers: &[Option<Reply>]) -> Vec<verdict::Verdict> {
    let Some(results) = job.results() else {
        return Vec::new();
    };
    let input = message_input(job, results);
    (0..job.rcpts.len())
        .filter_map(|i| {
            Some(verdict::decide(
                &input,
                &recipient_input(job, i, answers.get(i)?.as_ref())?,
            ))
        })
        .collect()
}

fn message_input<'a>(job: &'a Job, results: &'a crate::message::CheckResults) -> MessageInput<'a> {
    MessageInput {
        results,
        am_id: &job.am_id,
        sender: &job.env.mail_from,
        size: job.spool.len(),
    }
}

fn recipient_input<'a>(
    job: &'a Job,
    i: usize,
    report: Option<&'a Reply>,
) -> Option<RecipientInput<'a>> {
    let (r, rc) = (job.env.recipients.get(i)?, job.rcpts.get(i)?);
    Some(RecipientInput {
        address: &r.address,
        policy: &rc.settings.policy,
        local: rc.settings.local,
        list: rc.settings.list,
        bayes_user: rc.bayes_user.as_deref(),
        report,
    })
}

/// The spam result as recipient `i` saw it when its verdict was made.
pub(super) fn spam_seen(job: &Job, i: usize) -> Option<crate::message::SpamResult> {
    let results = job.results()?;
    verdict::spam_seen(
        &message_input(job, results),
        &recipient_input(job, i, None)?,
    )
}

/// When recipient `i` is a report address: learns what the report carries into the
/// reporting user's store, and gives the answer (250 when learned; reports are taken from
/// our own users, with a sender, only).
async fn learn_report(st: &State, job: &Job, i: usize) -> Result<Option<Reply>, Tempfail> {
    let Some(class) = job.rcpts.get(i).and_then(|r| r.report) else {
        return Ok(None);
    };
    let am_id = &job.am_id;
    let policy = &job.bank.policy;
    let trainer = match st.checks.spam().trainer() {
        Some(t) if policy.originating && !job.env.mail_from.is_empty() => t,
        _ => {
            let r = Reply::new(554, "5.7.1", "Reports are taken from local users only");
            return Ok(Some(r));
        }
    };
    let user = crate::spam::bayes_user(&job.env.mail_from, &policy.recipient_delimiter);
    match trainer
        .learn_reported(&user, class, Arc::clone(&job.spool))
        .await
    {
        Ok(n) => {
            tracing::info!("({am_id}) report from <{user}>: {n} message(s) learned as {class:?}");
            Ok(Some(Reply::new(
                250,
                "2.7.0",
                format!("Ok, {n} reported message(s) learned, id={am_id}"),
            )))
        }
        Err(e) => Err(Tempfail::processing(am_id, "Bayes store: try again later")
            .because(format!("report from <{user}> not learned: {e}"))),
    }
}
