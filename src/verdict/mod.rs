//! The verdict: check results and policy in, what happens to the message out. Pure functions,
//! table-tested below.
//!
//! Order of badness, as amavisd-new: virus > banned > unchecked > bad header > clean (spam,
//! spammy and oversized join when their checks exist). The worst category whose destiny is
//! not "pass" blocks the message; categories that pass add their `X-Amavis-Alert` field.
//! A failed virus scan is not a category: by default it makes the whole message wait (451),
//! and where policy says so it counts as UNCHECKED.

use crate::message::{Category, CheckResults, Destiny, Reply, VirusScan};
use crate::policy_bank::{Policy, ScanFailure};

/// What happens to a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The worst category found, and its minor.
    pub category: Category,
    pub minor: u8,
    /// The destiny of that category.
    pub destiny: Destiny,
    /// What it is about, for replies and the log (`Eicar-Test-Signature`, `invoice.pdf.exe`);
    /// empty for clean mail.
    pub detail: String,
    /// The reply when the message is not passed (discard, bounce, reject, tempfail).
    pub reply: Option<Reply>,
    /// Header fields to add when the message is passed, `(name, body)`.
    pub headers: Vec<(String, String)>,
    /// When bouncing: no DSN may go to the sender (null sender, or a virus known to fake it).
    pub suppress_dsn: bool,
}

/// One category that applies, with its minor and detail.
struct Finding {
    category: Category,
    minor: u8,
    detail: String,
}

fn findings(r: &CheckResults, p: &Policy) -> Vec<Finding> {
    let mut f = Vec::new();
    let names = r.virus_names();
    if !names.is_empty() {
        f.push(Finding {
            category: Category::Virus,
            minor: 0,
            detail: names.join(", "),
        });
    }
    let banned = r.banned_under(&p.banned_rules);
    if !banned.is_empty() && !p.bypass_banned_checks {
        let mut vals: Vec<&str> = Vec::new();
        for h in banned {
            if !vals.contains(&h.value()) {
                vals.push(h.value());
            }
        }
        f.push(Finding {
            category: Category::Banned,
            minor: 0,
            detail: vals.join(","),
        });
    }
    if let Some(u) = r.unchecked.iter().min_by_key(|u| u.minor) {
        f.push(Finding {
            category: Category::Unchecked,
            minor: u.minor,
            detail: u.reason.clone(),
        });
    }
    if let VirusScan::Failed { reason } = &r.virus
        && p.virus_scan_failure == ScanFailure::Unchecked
    {
        f.push(Finding {
            category: Category::Unchecked,
            minor: 0,
            detail: format!("virus scan failed: {reason}"),
        });
    }
    if let Some(b) = r.bad_header.first().filter(|_| !p.bypass_header_checks) {
        f.push(Finding {
            category: Category::BadHeader,
            minor: b.minor,
            detail: b.detail.clone(),
        });
    }
    f.sort_by_key(|x| std::cmp::Reverse(x.category));
    f
}

fn destiny_of(c: Category, p: &Policy) -> Destiny {
    match c {
        Category::Virus => p.final_virus_destiny,
        Category::Banned => p.final_banned_destiny,
        Category::Unchecked => p.final_unchecked_destiny,
        Category::BadHeader => p.final_bad_header_destiny,
        _ => Destiny::Pass,
    }
}

/// amavisd-new's `%smtp_reason_by_ccat` and status codes.
fn reason(c: Category, detail: &str) -> (&'static str, String) {
    match c {
        Category::Virus => ("5.7.0", format!("INFECTED: {detail}")),
        Category::Banned => ("5.7.0", format!("BANNED: {detail}")),
        Category::Unchecked => ("5.7.0", "UNCHECKED".into()),
        Category::Spam | Category::Spammy => ("5.7.0", "SPAM".into()),
        Category::BadHeader => ("5.6.0", "BAD HEADER SECTION".into()),
        Category::Oversized => (
            "5.3.4",
            "Message size exceeds recipient's size limit".into(),
        ),
        Category::Mta | Category::Clean => ("5.7.0", "CLEAN".into()),
    }
}

fn alert(c: Category, detail: &str) -> Option<String> {
    match c {
        Category::Virus => Some(format!("INFECTED, message contains virus: {detail}")),
        Category::Banned => Some(format!("BANNED, message contains {detail}")),
        Category::BadHeader => Some(format!("BAD HEADER SECTION, {detail}")),
        _ => None,
    }
}

/// Header text from check findings: one line, no controls, bounded.
fn header_safe(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() > 200 {
        clean.chars().take(200).collect::<String>() + "..."
    } else {
        clean
    }
}

/// The reply to the MTA when a scan could not be completed and policy makes it wait.
pub fn scan_failed_reply(am_id: &str, reason: &str) -> Reply {
    Reply::new(
        451,
        "4.5.0",
        format!("Error in processing, id={am_id}, virus_scan FAILED: {reason}"),
    )
}

/// Decides for a message. `None` means the virus scan failed and policy makes the message
/// wait: answer [`scan_failed_reply`].
pub fn decide(r: &CheckResults, p: &Policy, am_id: &str, sender: &str) -> Option<Verdict> {
    if matches!(r.virus, VirusScan::Failed { .. }) && p.virus_scan_failure == ScanFailure::Tempfail
    {
        return None;
    }
    let found = findings(r, p);
    let mut headers = Vec::new();
    for f in &found {
        let destiny = destiny_of(f.category, p);
        if destiny != Destiny::Pass {
            let (status, why) = reason(f.category, &f.detail);
            let why = header_safe(&why);
            let reply = match destiny {
                Destiny::Reject => {
                    let code = if f.category == Category::Oversized {
                        552
                    } else {
                        554
                    };
                    Reply::new(code, status, format!("Reject, id={am_id} - {why}"))
                }
                Destiny::Tempfail => Reply::new(
                    450,
                    &format!("4{}", &status[1..]),
                    format!("Temporary failure, id={am_id} - {why}"),
                ),
                Destiny::Discard | Destiny::Bounce | Destiny::Pass => {
                    Reply::new(250, "2.7.0", format!("Ok, discarded, id={am_id} - {why}"))
                }
            };
            return Some(Verdict {
                category: f.category,
                minor: f.minor,
                destiny,
                detail: f.detail.clone(),
                reply: Some(reply),
                headers: Vec::new(),
                suppress_dsn: sender.is_empty()
                    || (f.category == Category::Virus && r.virus_fakes_sender),
            });
        }
        if let Some(a) = alert(f.category, &f.detail) {
            headers.push(("X-Amavis-Alert".to_string(), header_safe(&a)));
        }
    }
    let (category, minor, detail) = found
        .first()
        .map_or((Category::Clean, 0, String::new()), |f| {
            (f.category, f.minor, f.detail.clone())
        });
    Some(Verdict {
        category,
        minor,
        destiny: Destiny::Pass,
        detail,
        reply: None,
        headers,
        suppress_dsn: sender.is_empty(),
    })
}

#[cfg(test)]
mod tests;
