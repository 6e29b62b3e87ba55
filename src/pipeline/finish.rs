//! Step: amavisd-new's log line for a message whose copies went where their verdicts said,
//! and the answer the client gets.

use super::deliver::Delivered;
use super::job::Job;
use crate::message::{Category, Destiny, Outcome};
use crate::verdict::Verdict;

/// The log line's category text and destinies: the worst category over the recipients
/// (`INFECTED (Eicar-Test-Signature)`, `CLEAN`) and amavisd-new's `{...}` words
/// (`Relayed`, `Discarded`), to which the caller adds `Inbound`/`Outbound`.
pub(super) fn status_text(verdicts: &[Verdict]) -> (String, Vec<&'static str>) {
    let worst = verdicts.iter().max_by_key(|v| (v.category, v.minor));
    let text = match worst {
        Some(v) => {
            let name = v.category.log_name(v.minor);
            match v.category {
                Category::Virus | Category::Banned => format!("{name} ({})", v.detail),
                _ => name,
            }
        }
        None => "CLEAN".into(),
    };
    let mut words: Vec<&'static str> = Vec::new();
    for v in verdicts {
        let w = v.destiny.log_word();
        if !words.contains(&w) {
            words.push(w);
        }
    }
    (text, words)
}

/// Writes the log line of a message whose copies went where their verdicts said; gives the
/// client's answer. The next hop's answer can turn "Relayed" into "TempFailed" or "Rejected".
pub(super) fn finish(job: &Job, delivered: Delivered) -> Outcome {
    let (status, words) = status_text(&job.verdicts);
    let word = if job.verdicts.iter().any(|v| v.destiny == Destiny::Pass) {
        "Passed"
    } else {
        "Blocked"
    };
    let action = delivered.decision.action;
    let words: Vec<&str> = words
        .into_iter()
        .map(|w| {
            if w == "Relayed" && action != "Relayed" {
                action
            } else {
                w
            }
        })
        .collect();
    let outcome = delivered.decision.outcome;
    job.log(
        &format!("{word} {status}"),
        &job.braces(&words),
        &outcome.message,
        delivered.queued_as.as_deref(),
    );
    outcome
}
