//! Before the queue: the steps of a message that an MTA holds open while we decide (the
//! milter), answered as one reply to the SMTP client instead of delivered by us.
//!
//! The checks, the verdicts, the SQL log and the quarantine are those of the SMTP path; what
//! differs is the end. A milter answers once per message, so the recipients' verdicts become
//! one answer by a fixed rule (amavisd-milter's and rspamd's practice, the strictest that
//! loses nothing):
//!
//! 1. A copy that must wait (tempfail) makes the whole message wait: the MTA says 4xx.
//! 2. Every copy blocked: reject (5xx, our reply) when any copy's destiny is reject or bounce
//!    — the client is still connected, so the refusal in the dialogue is the bounce, without
//!    backscatter — else (all discarded) discard.
//! 3. Some copies pass: the message is accepted for those; the blocked recipients are removed
//!    from the envelope, and get the DSN the SMTP path would send them (a bounce's, a reject's).
//!    Their copies are quarantined as policy says.
//!
//! The passed copy carries the header changes of one recipient: the first local recipient
//! that passes (local recipients get the spam fields and subject tag), else the first that
//! passes. An MTA applies one set of changes to one message; a site that needs different
//! fields per recipient keeps the after-queue slot for that mail.

use super::contract::{RcptOutcome, combine};
use super::deliver::{Delivered, GroupKey, Signing, Trace};
use super::job::{Job, Tempfail};
use super::state::State;
use super::{assess, dsn, finish, notices, record, store};
use crate::message::header_edit::FieldChange;
use crate::message::screen::{Answer, ScreenOptions, Screened};
use crate::message::{Destiny, Protocol, Reply};
use std::sync::Arc;

/// The steps before the queue; an `Err` makes the whole message wait (`Pipeline::wait`).
pub(super) async fn steps(
    st: &Arc<State>,
    job: &mut Job,
    opts: &ScreenOptions,
) -> Result<Screened, Tempfail> {
    assessed(st, job, true).await?;
    for v in &job.verdicts {
        crate::stats::recipient(v.category.metric_name(), v.destiny.metric_name());
    }
    let stored = store::quarantine(st, job).await?;
    let (answer, outcomes) = answer(job);
    let passed: Vec<usize> = (0..job.verdicts.len())
        .filter(|&i| job.verdicts[i].destiny == Destiny::Pass)
        .collect();
    let changes = copy_changes(st, job, &passed, stored.is_some(), opts.lead_space).await;
    let hold = (opts.hold_blocked && passed.is_empty() && stored.is_some()).then(|| {
        let (status, _) = finish::status_text(&job.verdicts);
        format!("amavisd-rs id={}: {status}", job.am_id)
    });
    let answer = if hold.is_some() {
        Answer::Accept
    } else {
        answer
    };
    let decision = combine(
        Protocol::Smtp,
        "milter",
        &job.env.mail_from,
        &job.env.recipients,
        &outcomes,
    );
    let delivered = Delivered {
        outcomes,
        next_hop: vec![None; job.verdicts.len()],
        queued_as: None,
        decision,
    };
    // Refused in the dialogue, the client's MTA tells the sender; held, the MTA's admin
    // decides. Only a message accepted for some gets our DSN for the others.
    let dsn_sent = if passed.is_empty() {
        'N'
    } else {
        dsn::notify_sender(st, job, &delivered).await?
    };
    notices::send(st, job, stored.as_ref().map(|q| q.quar_loc.as_str()));
    record::log_end(st, job, &delivered.outcomes, dsn_sent, stored.as_ref()).await;
    log(job, &answer, hold.is_some(), opts.queue_id.as_deref());
    let remove = if passed.is_empty() {
        Vec::new()
    } else {
        blocked(job)
    };
    Ok(Screened {
        am_id: job.am_id.clone(),
        answer,
        remove,
        changes,
        hold,
    })
}

/// The checks and verdicts (with the message's `msgs` row first when `record`); a copy
/// that must wait makes the whole message wait, as one answer must.
pub(super) async fn assessed(st: &State, job: &mut Job, record: bool) -> Result<(), Tempfail> {
    assess::assess(st, job, record).await?;
    super::deliver::any_waits(job)
}

/// The header changes of the passed copy (the module's rule picks whose); none when no copy
/// passes.
pub(super) async fn copy_changes(
    st: &State,
    job: &Job,
    passed: &[usize],
    quarantined: bool,
    lead_space: bool,
) -> Vec<FieldChange> {
    let Some(&first) = passed
        .iter()
        .find(|&&i| job.rcpts[i].settings.local)
        .or(passed.first())
    else {
        return Vec::new();
    };
    let key = GroupKey::of(job, first, quarantined);
    let mut signing = Signing::new(st, job);
    let copy = signing.copy(st, job, &key, Trace::ScannedByOnly).await;
    crate::message::header_edit::changes(
        job.spool.header_section(),
        &copy.top,
        copy.header.as_deref(),
        lead_space,
    )
}

/// The envelope addresses of the blocked copies, as the MTA knows them.
pub(super) fn blocked(job: &Job) -> Vec<String> {
    job.env
        .recipients
        .iter()
        .zip(&job.verdicts)
        .filter(|(_, v)| v.destiny != Destiny::Pass)
        .map(|(r, _)| format!("<{}>", r.address))
        .collect()
}

/// The one answer (the module's rule, after tempfails) and each copy's outcome for the log.
pub(super) fn answer(job: &Job) -> (Answer, Vec<RcptOutcome>) {
    let accepted = Reply::new(
        250,
        "2.0.0",
        format!("Ok, id={}, accepted by the MTA", job.am_id),
    );
    let any_pass = job.verdicts.iter().any(|v| v.destiny == Destiny::Pass);
    let refusal = job.verdicts.iter().find_map(|v| match v.destiny {
        Destiny::Reject => v.reply.clone(),
        Destiny::Bounce => v
            .dsn_reply
            .as_ref()
            .map(|d| Reply::new(d.code, &d.status, d.text.replacen("Bounced,", "Reject,", 1))),
        _ => None,
    });
    let answer = match (&refusal, any_pass) {
        (_, true) => Answer::Accept,
        (Some(r), false) => Answer::Reject(r.clone()),
        (None, false) => Answer::Discard,
    };
    let outcomes = job
        .verdicts
        .iter()
        .map(|v| match (v.destiny, &answer) {
            (Destiny::Pass, _) => RcptOutcome::Forwarded(accepted.clone()),
            (_, Answer::Reject(r)) => RcptOutcome::Blocked {
                reply: r.clone(),
                dsn: false,
            },
            _ => RcptOutcome::Blocked {
                reply: v.reply.clone().unwrap_or_else(|| accepted.clone()),
                dsn: v.destiny == Destiny::Reject && !v.suppress_dsn,
            },
        })
        .collect();
    (answer, outcomes)
}

/// amavisd-new's log line, with the words of what the MTA was told.
pub(super) fn log(job: &Job, answer: &Answer, held: bool, queue_id: Option<&str>) {
    let (status, words) = finish::status_text(&job.verdicts);
    let word = if job.verdicts.iter().any(|v| v.destiny == Destiny::Pass) {
        "Passed"
    } else {
        "Blocked"
    };
    let (words, reply): (Vec<&str>, Reply) = match answer {
        _ if held => (
            vec!["Held"],
            Reply::new(250, "2.0.0", "Ok, held by the MTA"),
        ),
        Answer::Reject(r) => (vec!["Rejected"], r.clone()),
        Answer::Discard => (
            vec!["Discarded"],
            Reply::new(250, "2.7.0", "Ok, discarded by the MTA"),
        ),
        Answer::Tempfail(r) => (vec!["TempFailed"], r.clone()),
        Answer::Accept => (words, Reply::new(250, "2.0.0", "Ok, accepted by the MTA")),
    };
    job.log(
        &format!("{word} {status}"),
        &job.braces(&words),
        &reply,
        queue_id,
    );
}
