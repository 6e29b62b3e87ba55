//! For a front end that only scans (rspamd's HTTP protocol): the checks and verdicts of the
//! SMTP path, and the before-queue rule's one answer ([`super::screen`]), with nothing done
//! about them. The caller (an MTA, `rspamc`) acts on the answer, and we never learn whether
//! it accepted the message: so no `msgs` row, no quarantine, no DSN, no notice; only the
//! log line says what was advised.

use super::job::{Job, Tempfail};
use super::state::State;
use super::{decide, screen};
use crate::message::screen::{Advice, Findings, ScreenOptions, Screened};
use crate::message::{CheckResults, Destiny, VirusScan};
use std::sync::Arc;

/// The steps; an `Err` is the answer "try again later" (scanner down, SQL lookup failed).
pub(super) async fn steps(
    st: &Arc<State>,
    job: &mut Job,
    opts: &ScreenOptions,
) -> Result<Advice, Tempfail> {
    screen::assessed(st, job, false).await?;
    let (answer, _) = screen::answer(job);
    let passed: Vec<usize> = (0..job.verdicts.len())
        .filter(|&i| job.verdicts[i].destiny == Destiny::Pass)
        .collect();
    let (changes, remove) = if passed.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let changes = screen::copy_changes(st, job, &passed, false, opts.lead_space).await;
        (changes, screen::blocked(job))
    };
    screen::log(job, &answer, false, opts.queue_id.as_deref());
    let findings = reported(job, &passed).and_then(|i| findings(job, i));
    Ok(Advice {
        screened: Screened {
            am_id: job.am_id.clone(),
            answer,
            remove,
            changes,
            hold: None,
        },
        findings,
    })
}

/// The copy the answer's header changes are for (the before-queue rule's): the first local
/// recipient that passes, else the first that passes, else the first.
fn reported(job: &Job, passed: &[usize]) -> Option<usize> {
    passed
        .iter()
        .copied()
        .find(|&i| job.rcpts[i].settings.local)
        .or(passed.first().copied())
        .or((!job.verdicts.is_empty()).then_some(0))
}

/// What recipient `i`'s copy was judged on.
fn findings(job: &Job, i: usize) -> Option<Findings> {
    let v = job.verdicts.get(i)?;
    let policy = &job.rcpts.get(i)?.settings.policy;
    let results = job.results()?;
    let outcome = job.checked.as_ref().and_then(|c| c.spam.as_ref());
    let descriptions = outcome
        .map(|o| {
            o.hits
                .iter()
                .map(|h| (h.name.clone(), h.describe.clone()))
                .collect()
        })
        .unwrap_or_default();
    let links = outcome.map(|o| o.links.clone()).unwrap_or_default();
    let message_id = job.spool.header_field("Message-ID").map(|m| {
        m.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string()
    });
    Some(Findings {
        category: v.category,
        spam: decide::spam_seen(job, i),
        descriptions,
        kill_level: policy.spam_kill_level,
        viruses: results
            .virus_names()
            .into_iter()
            .map(String::from)
            .collect(),
        banned: banned(results),
        unchecked: unchecked(results),
        bad_header: results
            .bad_header
            .iter()
            .map(|b| b.detail.clone())
            .collect(),
        urls: links.hosts,
        emails: links.emails,
        message_id,
        refusal: (v.destiny != Destiny::Pass).then(|| crate::verdict::refusal(v, &job.am_id)),
    })
}

/// Banned parts under any rule set applied, by the value that matched, without repeats.
fn banned(r: &CheckResults) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for hit in r.banned.values().flatten() {
        if !out.iter().any(|v| v == hit.value()) {
            out.push(hit.value().to_string());
        }
    }
    out
}

/// Content not checked, and why; a virus scan that failed counts.
fn unchecked(r: &CheckResults) -> Vec<String> {
    let mut out: Vec<String> = r.unchecked.iter().map(|u| u.reason.clone()).collect();
    if let VirusScan::Failed { reason } = &r.virus {
        out.push(format!("virus scan failed: {reason}"));
    }
    out
}
