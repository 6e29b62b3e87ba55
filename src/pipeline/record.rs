//! The SQL log's view of a finished message: the `msgs` completion and one `msgrcpt` row per
//! recipient, from the verdicts and what became of each copy.

use super::contract::RcptOutcome;
use crate::message::{Category, CheckResults, Destiny, Envelope};
use crate::sql_log::{MsgEnd, RcptRow};
use crate::verdict::{SenderList, Verdict};

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

/// One row per recipient. `outcomes` may be empty when the message was answered before any
/// copy went anywhere (the whole message waits).
pub fn rows(
    env: &Envelope,
    verdicts: &[Verdict],
    local: &[bool],
    lists: &[SenderList],
    outcomes: &[RcptOutcome],
    results: &CheckResults,
) -> Vec<RcptRow> {
    env.recipients
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let v = &verdicts[i];
            let o = outcomes.get(i);
            let resp = match o {
                Some(RcptOutcome::Forwarded(r)) | Some(RcptOutcome::Blocked { reply: r, .. }) => {
                    r.one_line()
                }
                None => v.reply.as_ref().map(|r| r.one_line()).unwrap_or_default(),
            };
            RcptRow {
                address: r.address.clone(),
                is_local: local.get(i).copied().unwrap_or(false),
                content: v.category.sql_letter(),
                ds: ds(v, o),
                bspam_level: results.spam.as_ref().map(|s| s.score),
                smtp_resp: resp,
                blacklisted: lists.get(i) == Some(&SenderList::Black),
                whitelisted: lists.get(i) == Some(&SenderList::White),
            }
        })
        .collect()
}

/// The `msgs` completion: the worst category, the spam level, whether a DSN went out.
pub fn msg_end(verdicts: &[Verdict], results: &CheckResults, dsn_sent: char) -> MsgEnd {
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
