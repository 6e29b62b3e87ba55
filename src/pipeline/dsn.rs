//! Step: our own DSN to the sender, for recipients the next hop refused for good (as
//! amavisd-new does when it has answered its client 250), our rejects when the client is told
//! 250, and bounced copies.

use super::deliver::Delivered;
use super::job::{Job, Tempfail};
use super::state::State;
use crate::message::{Destiny, Reply, Spool};
use crate::smtp_out::{DsnInput, FailedRecipient, build_dsn};

/// One reported recipient: its index, the reason, and whether the next hop gave it.
type Reported = (usize, Reply, bool);

/// Sends the DSN when one is due; gives `msgs.dsn_sent` (Y sent, N none, q suppressed). A
/// bounce that cannot be told to the sender of a message nothing was delivered of makes the
/// message wait: Postfix keeps it and we try again later.
pub(super) async fn notify_sender(
    st: &State,
    job: &Job,
    delivered: &Delivered,
) -> Result<char, Tempfail> {
    let verdicts = &job.verdicts;
    let suppressed = verdicts
        .iter()
        .any(|v| v.destiny == Destiny::Bounce && v.suppress_dsn);
    let dsn_sent = if suppressed { 'q' } else { 'N' };
    let report = reported(job, delivered);
    if report.is_empty() {
        return Ok(dsn_sent);
    }
    // The original goes back whole only when every reported copy was refused by the next
    // hop; content we blocked never goes back.
    let may_return = report.iter().all(|(_, _, remote)| *remote);
    let partly = delivered
        .outcomes
        .iter()
        .any(|o| matches!(o, super::RcptOutcome::Forwarded(r) if r.is_positive()));
    if send(st, job, &report, may_return, partly).await {
        return Ok('Y');
    }
    let bounced = report
        .iter()
        .any(|(i, _, _)| verdicts[*i].destiny == Destiny::Bounce);
    if !partly && bounced {
        // Why was logged where the DSN failed.
        return Err(Tempfail::processing(&job.am_id, "cannot send the bounce"));
    }
    Ok(dsn_sent)
}

/// The recipients to report, in the order the DSN lists them.
fn reported(job: &Job, delivered: &Delivered) -> Vec<Reported> {
    let mut report: Vec<(usize, Reply)> = delivered
        .decision
        .dsn_for
        .iter()
        .map(|&i| (i, delivered.outcomes[i].reply_text()))
        .collect();
    for (i, v) in job.verdicts.iter().enumerate() {
        if v.destiny == Destiny::Bounce
            && !v.suppress_dsn
            && job.env.recipients[i].notify_failure()
            && let Some(r) = &v.dsn_reply
        {
            report.push((i, r.clone()));
        }
    }
    report
        .into_iter()
        .map(|(i, r)| (i, r, delivered.next_hop[i].is_some()))
        .collect()
}

/// Sends the DSN for `report`. `may_return` lets it carry the whole original when the
/// sender asked (RET=FULL). True when the next hop took it.
async fn send(
    st: &State,
    job: &Job,
    report: &[Reported],
    may_return: bool,
    partly_delivered: bool,
) -> bool {
    let env = &job.env;
    let am_id = &job.am_id;
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
        mail_id: &job.ids.mail_id,
        remote_mta: &remote,
        partly_delivered,
    });
    let headers_only;
    let original = if full && may_return {
        &*job.spool
    } else {
        headers_only = Spool::from_bytes(job.spool.header_section().to_vec());
        &headers_only
    };
    let to = &env.mail_from;
    match st
        .notifier
        .send_notification(to, &head, original, &tail)
        .await
    {
        Ok(d) if d.replies.iter().all(Reply::is_positive) => {
            tracing::info!(
                "({am_id}) DSN sent to <{to}> for {} recipient(s)",
                failed.len()
            );
            true
        }
        Ok(d) => {
            let r = d.replies.first().map(Reply::one_line).unwrap_or_default();
            tracing::error!("({am_id}) DSN to <{to}> refused: {r}");
            false
        }
        Err(e) => {
            tracing::error!("({am_id}) DSN to <{to}> not sent: {e}");
            false
        }
    }
}
