//! Steps: the SQL log of a message (amavisd-new's `msgs`, `msgrcpt` and `maddr` tables). The
//! `msgs` row is written before the checks, so a message that waits is still on record; the
//! completion and one `msgrcpt` row per recipient, from the verdicts and what became of each
//! copy, when its fate is settled.

use super::contract::RcptOutcome;
use super::job::{Job, Tempfail};
use super::state::State;
use crate::message::{Category, CheckResults, Destiny};
use crate::quarantine::Stored;
use crate::sql::{MsgEnd, MsgStart, RcptRow};
use crate::verdict::{SenderList, Verdict};
use std::time::Instant;

/// Writes the message's `msgs` row. A site that logs to SQL relies on every message being
/// there: when it cannot be written, the message waits.
pub(super) async fn log_start(st: &State, job: &Job) -> Result<(), Tempfail> {
    let Some(store) = &st.store else {
        return Ok(());
    };
    let env = &job.env;
    let time = env
        .received_at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let header = |name: &str| job.spool.header_field(name).unwrap_or_default();
    let start = MsgStart {
        mail_id: &job.ids.mail_id,
        secret_id: &job.ids.secret_id,
        am_id: &job.am_id,
        time,
        sender: &env.mail_from,
        policy: &job.path,
        client_addr: env.client.xforward.addr.as_deref().unwrap_or(""),
        size: job.spool.len(),
        originating: job.bank.policy.originating,
        message_id: &header("Message-ID"),
        from_addr: &header("From"),
        subject: &header("Subject"),
        host: &st.cfg.myhostname,
    };
    store.log_start(&start).await.map_err(|e| {
        crate::stats::sql_error();
        Tempfail::processing(&job.am_id, "SQL log: try again later").because(e)
    })
}

/// Completes the message's record: what became of each copy (`outcomes`), whether a DSN
/// went out (`dsn_sent`: Y, N, or q for suppressed) and where a copy is kept. The message's
/// fate is settled by now: a failure here can only be logged.
pub(super) async fn log_end(
    st: &State,
    job: &Job,
    outcomes: &[RcptOutcome],
    dsn_sent: char,
    stored: Option<&Stored>,
) {
    let (Some(store), Some(results)) = (&st.store, job.results()) else {
        return;
    };
    let rows = rows(job, results, outcomes);
    let mut end = msg_end(&job.verdicts, results, dsn_sent);
    if let Some(q) = stored {
        end.quar_type = q.quar_type;
        end.quar_loc = q.quar_loc.clone();
    }
    let began = Instant::now();
    if let Err(e) = store.log_end(&job.ids.mail_id, &end, &rows).await {
        crate::stats::sql_error();
        tracing::error!("({}) cannot complete the SQL log: {e}", job.am_id);
    }
    crate::stats::stage("sql_log", began.elapsed());
}

/// `msgrcpt.ds`: what happened to the copy (P passed, R rejected, B bounced, D discarded,
/// T tempfailed), the next hop's refusal included.
fn ds(v: &Verdict, o: Option<&RcptOutcome>) -> char {
    match (v.destiny, o) {
        (Destiny::Pass, Some(RcptOutcome::Forwarded(r))) if r.is_positive() => 'P',
        (Destiny::Pass, Some(RcptOutcome::Forwarded(r))) if r.is_permanent() => 'R',
        (Destiny::Pass, _) => 'T',
        (Destiny::Discard, _) => 'D',
        (Destiny::Bounce, _) => 'B',
        (Destiny::Reject, _) => 'R',
        (Destiny::Tempfail, _) => 'T',
    }
}

/// One row per recipient.
fn rows(job: &Job, results: &CheckResults, outcomes: &[RcptOutcome]) -> Vec<RcptRow> {
    job.env
        .recipients
        .iter()
        .zip(&job.verdicts)
        .zip(&job.rcpts)
        .enumerate()
        .map(|(i, ((r, v), rc))| {
            let list = rc.settings.list;
            let o = outcomes.get(i);
            let resp = match o {
                Some(RcptOutcome::Forwarded(r)) | Some(RcptOutcome::Blocked { reply: r, .. }) => {
                    r.one_line()
                }
                None => v.reply.as_ref().map(|r| r.one_line()).unwrap_or_default(),
            };
            RcptRow {
                address: r.address.clone(),
                is_local: rc.settings.local,
                content: v.category.sql_letter(),
                ds: ds(v, o),
                bspam_level: results.spam.as_ref().map(|s| s.score),
                smtp_resp: resp,
                blacklisted: list == SenderList::Black,
                whitelisted: list == SenderList::White,
            }
        })
        .collect()
}

/// The `msgs` completion: the worst category, the spam level, whether a DSN went out.
fn msg_end(verdicts: &[Verdict], results: &CheckResults, dsn_sent: char) -> MsgEnd {
    let worst = verdicts
        .iter()
        .map(|v| v.category)
        .max()
        .unwrap_or(Category::Clean);
    MsgEnd {
        content: worst.sql_letter(),
        quar_type: ' ',
        quar_loc: String::new(),
        dsn_sent,
        spam_level: results.spam.as_ref().map(|s| s.score),
    }
}
