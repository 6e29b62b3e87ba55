//! The verdict: check results and one recipient's policy in, what happens to that recipient's
//! copy out. Pure functions, table-tested in `tests.rs`.
//!
//! Categories in amavisd-new's order of badness: virus > banned > unchecked > spam > spammy >
//! bad header > oversized > clean. A category applies unless the recipient bypasses that
//! check (then it is treated as a lover, as amavisd-new does when others made the check run)
//! or loves it; the worst category whose destiny is not "pass" blocks the copy. Passed copies
//! get `X-Amavis-Alert` fields for the bad categories they carry, and local recipients get the
//! spam header fields, a subject tag and an address extension.

mod headers;

pub use headers::{spam_headers, spam_level, spam_number};

use crate::message::{Category, CheckResults, Destiny, Reply, SpamResult, VirusScan};
pub use crate::policy_bank::SenderList;
use crate::policy_bank::{Policy, ScanFailure};
use std::borrow::Cow;

/// What one recipient's copy is about.
#[derive(Debug, Clone, Copy)]
pub struct RecipientInput<'a> {
    pub address: &'a str,
    pub policy: &'a Policy,
    /// In the policy's local domains: spam headers, subject tags and extensions are for them.
    pub local: bool,
    /// The sender on this recipient's white/blacklist.
    pub list: SenderList,
    /// The recipient's own Bayes store (`bayes_per_user`), whose spam result
    /// ([`CheckResults::spam_per_user`]) this recipient sees instead of the site's.
    pub bayes_user: Option<&'a str>,
    /// The recipient is a Bayes report address, and this is the answer to the report (250
    /// when learned, a reject for a report from outside): the copy goes no further.
    pub report: Option<&'a Reply>,
}

/// The message-wide facts.
#[derive(Debug, Clone, Copy)]
pub struct MessageInput<'a> {
    pub results: &'a CheckResults,
    pub am_id: &'a str,
    /// The envelope sender (empty for `<>`).
    pub sender: &'a str,
    pub size: u64,
}

/// What happens to one recipient's copy.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The worst category that applies, and its minor.
    pub category: Category,
    pub minor: u8,
    /// The destiny of the first blocking category, or `Pass`.
    pub destiny: Destiny,
    /// The category the destiny came from (the blocking one; `category` when passed).
    pub blocked_by: Category,
    /// What it is about (`Eicar-Test-Signature`, `invoice.pdf.exe`); empty for clean mail.
    pub detail: String,
    /// The reply when the copy is not passed.
    pub reply: Option<Reply>,
    /// For a bounce: the per-recipient reason the DSN gives.
    pub dsn_reply: Option<Reply>,
    /// When bouncing: no DSN may go to the sender (null sender, a virus that forges senders,
    /// spam above the DSN cut-off, bulk mail).
    pub suppress_dsn: bool,
    /// Fields to add to a passed copy, `(name, body)`, in amavisd-new's order.
    pub headers: Vec<(String, String)>,
    /// Remove incoming `X-Spam-*` fields first (local recipients: nobody forges our verdict).
    pub strip_spam_headers: bool,
    /// Subject prefix for a passed copy (empty: none).
    pub subject_tag: String,
    /// The address to deliver to (with an address extension where policy adds one).
    pub address: String,
    /// Admins to notify about this copy's category (empty: none).
    pub admin: String,
    /// Tell the recipient its copy was blocked.
    pub warn_recipient: bool,
}

/// One category that applies, with its minor, detail, and whether it blocks (is not loved).
struct Finding {
    category: Category,
    minor: u8,
    detail: String,
    loved: bool,
}

fn findings(m: &MessageInput, p: &Policy) -> Vec<Finding> {
    let r = m.results;
    let mut f = Vec::new();
    let names = r.virus_names();
    if !names.is_empty() {
        f.push(Finding {
            category: Category::Virus,
            minor: 0,
            detail: names.join(", "),
            loved: p.virus_lover || p.bypass_virus_checks,
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
            loved: p.banned_files_lover,
        });
    }
    if let Some(u) = r.unchecked.iter().min_by_key(|u| u.minor) {
        f.push(Finding {
            category: Category::Unchecked,
            minor: u.minor,
            detail: u.reason.clone(),
            loved: p.unchecked_lover,
        });
    } else if let VirusScan::Failed { reason } = &r.virus
        && p.virus_scan_failure == ScanFailure::Unchecked
        && !p.bypass_virus_checks
    {
        f.push(Finding {
            category: Category::Unchecked,
            minor: 0,
            detail: format!("virus scan failed: {reason}"),
            loved: p.unchecked_lover,
        });
    }
    if let Some(s) = r.spam.as_ref().filter(|_| !p.bypass_spam_checks) {
        if s.score >= p.spam_kill_level {
            f.push(Finding {
                category: Category::Spam,
                minor: 0,
                detail: spam_number(s.score),
                loved: p.spam_lover,
            });
        } else if s.score >= p.spam_tag2_level {
            let tag3 = p.spam_tag3_level.is_some_and(|t3| s.score >= t3);
            f.push(Finding {
                category: Category::Spammy,
                minor: u8::from(tag3),
                detail: spam_number(s.score),
                // Spammy mail is tagged, never blocked.
                loved: true,
            });
        }
    }
    if let Some(b) = r.bad_header.first().filter(|_| !p.bypass_header_checks) {
        f.push(Finding {
            category: Category::BadHeader,
            minor: b.minor,
            detail: b.detail.clone(),
            loved: p.bad_header_lover,
        });
    }
    if p.message_size_limit > 0 && m.size > p.message_size_limit {
        f.push(Finding {
            category: Category::Oversized,
            minor: 0,
            detail: format!("{} > {}", m.size, p.message_size_limit),
            loved: false,
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
        Category::Spam => p.final_spam_destiny,
        Category::BadHeader => p.final_bad_header_destiny,
        Category::Oversized => p.final_oversized_destiny,
        Category::Spammy | Category::Mta | Category::Clean => Destiny::Pass,
    }
}

/// amavisd-new's `%smtp_reason_by_ccat` and status codes.
fn reason(c: Category, detail: &str) -> (u16, &'static str, String) {
    match c {
        Category::Virus => (554, "5.7.0", format!("INFECTED: {detail}")),
        Category::Banned => (554, "5.7.0", format!("BANNED: {detail}")),
        Category::Unchecked => (554, "5.7.0", "UNCHECKED".into()),
        Category::Spam | Category::Spammy => (554, "5.7.0", "SPAM".into()),
        Category::BadHeader => (554, "5.6.0", "BAD HEADER SECTION".into()),
        Category::Oversized => (
            552,
            "5.3.4",
            "Message size exceeds recipient's size limit".into(),
        ),
        Category::Mta | Category::Clean => (554, "5.7.0", "CLEAN".into()),
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
pub fn header_safe(s: &str) -> String {
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

/// True when the scan failed and this recipient's policy makes the message wait.
pub fn scan_failure_waits(r: &CheckResults, p: &Policy) -> bool {
    matches!(r.virus, VirusScan::Failed { .. })
        && p.virus_scan_failure == ScanFailure::Tempfail
        && !p.bypass_virus_checks
}

fn subject_tag(c: Category, minor: u8, score: Option<f64>, p: &Policy) -> String {
    let t = match c {
        Category::Virus => &p.subject_tag_virus,
        Category::Banned => &p.subject_tag_banned,
        Category::Unchecked => &p.subject_tag_unchecked,
        Category::BadHeader => &p.subject_tag_bad_header,
        Category::Spam | Category::Spammy => {
            let tag3 = p
                .spam_tag3_level
                .is_some_and(|t3| score.is_some_and(|s| s >= t3));
            if tag3 && !p.spam_subject_tag3.is_empty() {
                &p.spam_subject_tag3
            } else {
                &p.spam_subject_tag2
            }
        }
        Category::Clean if minor == 1 => &p.spam_subject_tag,
        _ => return String::new(),
    };
    let score = score.unwrap_or(0.0);
    t.replace("_SCORE_", &spam_number(score))
        .replace("_REQD_", &spam_number(p.spam_tag2_level))
        .replace(
            "_YESNO_",
            if score >= p.spam_tag2_level {
                "Yes"
            } else {
                "No"
            },
        )
}

fn extension(c: Category, p: &Policy) -> &str {
    match c {
        Category::Virus => &p.addr_extension_virus,
        Category::Banned => &p.addr_extension_banned,
        Category::Spam | Category::Spammy => &p.addr_extension_spam,
        Category::BadHeader => &p.addr_extension_bad_header,
        _ => "",
    }
}

fn admin_of(c: Category, p: &Policy) -> &str {
    match c {
        Category::Virus => &p.virus_admin,
        Category::Banned => &p.banned_admin,
        Category::Spam => &p.spam_admin,
        Category::BadHeader => &p.bad_header_admin,
        _ => "",
    }
}

/// The spam result as this recipient sees it: white/blacklisting moves the score.
fn listed(r: &CheckResults, list: SenderList) -> Option<SpamResult> {
    let mut s = r.spam.clone();
    match list {
        SenderList::None => {}
        SenderList::White => {
            if let Some(s) = s.as_mut() {
                s.score = s.score.min(0.0);
            }
        }
        SenderList::Black => {
            let mut x = s.unwrap_or(SpamResult {
                score: 0.0,
                tests: Vec::new(),
                autolearn: String::new(),
                dns: String::new(),
                dns_incomplete: false,
            });
            x.score = x.score.max(64.0);
            s = Some(x);
        }
        SenderList::Score(n) => {
            if let Some(s) = s.as_mut() {
                s.score += n;
            }
        }
    }
    s
}

/// Decides for one recipient.
pub fn decide(m: &MessageInput, rc: &RecipientInput) -> Verdict {
    let v = decide_copy(m, rc);
    match rc.report {
        Some(reply) => reported(v, reply.clone()),
        None => v,
    }
}

/// A report recipient's copy: not delivered, answered with `reply`.
fn reported(of: Verdict, reply: Reply) -> Verdict {
    Verdict {
        destiny: if reply.is_positive() {
            Destiny::Discard
        } else {
            Destiny::Reject
        },
        // Not a blocked category: a report is never quarantined or notified.
        blocked_by: Category::Clean,
        reply: Some(reply),
        dsn_reply: None,
        headers: Vec::new(),
        subject_tag: String::new(),
        admin: String::new(),
        warn_recipient: false,
        ..of
    }
}

/// Decides for one recipient's copy by its category and policy.
fn decide_copy(m: &MessageInput, rc: &RecipientInput) -> Verdict {
    let p = rc.policy;
    let r = results_for(m, rc);
    let r = r.as_ref();
    let m = &MessageInput { results: r, ..*m };
    let score = r.spam.as_ref().map(|s| s.score);
    let mut found = findings(m, p);
    if found.is_empty()
        && let Some(s) = score.filter(|s| p.spam_tag_level.is_none_or(|t| *s >= t))
    {
        // amavisd-new's CC_CLEAN,1: clean, but at or above the tag level.
        found.push(Finding {
            category: Category::Clean,
            minor: 1,
            detail: spam_number(s),
            loved: true,
        });
    }
    let (category, minor, detail) = found
        .first()
        .map_or((Category::Clean, 0, String::new()), |f| {
            (f.category, f.minor, f.detail.clone())
        });
    let mut v = Verdict {
        category,
        minor,
        destiny: Destiny::Pass,
        blocked_by: category,
        detail,
        reply: None,
        dsn_reply: None,
        suppress_dsn: m.sender.is_empty() || r.bulk,
        headers: Vec::new(),
        strip_spam_headers: rc.local,
        subject_tag: String::new(),
        address: rc.address.to_string(),
        admin: found
            .first()
            .map(|f| admin_of(f.category, p).to_string())
            .unwrap_or_default(),
        warn_recipient: false,
    };
    if scan_failure_waits(r, p) {
        v.destiny = Destiny::Tempfail;
        v.reply = Some(scan_failed_reply(m.am_id, "all virus scanners failed"));
        return v;
    }
    // The first category that is neither passed by policy nor loved blocks the copy.
    if let Some(f) = found
        .iter()
        .find(|f| !f.loved && destiny_of(f.category, p) != Destiny::Pass)
    {
        block(&mut v, f, m, p);
        return v;
    }
    mark_passed(&mut v, &found, r, rc);
    v
}

/// The results as this recipient sees them: its own Bayes store's spam result, and its
/// white/blacklist entry for the sender, in place of the site's.
fn results_for<'a>(m: &MessageInput<'a>, rc: &RecipientInput) -> Cow<'a, CheckResults> {
    let own = rc
        .bayes_user
        .and_then(|u| m.results.spam_per_user.get(u))
        .filter(|s| Some(*s) != m.results.spam.as_ref());
    let dmarc = rc.policy.dmarc_reject_score;
    let dmarc = (m.results.dmarc_reject && dmarc != 0.0).then_some(dmarc);
    if rc.list == SenderList::None && own.is_none() && dmarc.is_none() {
        return Cow::Borrowed(m.results);
    }
    let mut c = m.results.clone();
    if let Some(s) = own {
        c.spam = Some(s.clone());
    }
    if let Some(points) = dmarc {
        let s = c.spam.get_or_insert_with(SpamResult::default);
        s.score += points;
        s.tests.push(("DMARC_REJECT_POLICY".into(), points));
    }
    c.spam = listed(&c, rc.list);
    Cow::Owned(c)
}

/// The refusal for a copy blocked for `v.blocked_by`, whatever its destiny: what a front
/// end that answers during the SMTP dialogue says for a discarded or bounced copy too.
pub fn refusal(v: &Verdict, am_id: &str) -> Reply {
    let (code, status, why) = reason(v.blocked_by, &v.detail);
    let why = header_safe(&why);
    Reply::new(code, status, format!("Reject, id={am_id} - {why}"))
}

/// The spam result as recipient `rc` sees it (its own Bayes store's, its sender list,
/// the DMARC score of its policy), as its verdict weighed it.
pub fn spam_seen(m: &MessageInput<'_>, rc: &RecipientInput<'_>) -> Option<SpamResult> {
    results_for(m, rc).spam.clone()
}

/// Blocks the copy for finding `f`: its destiny (soft_bounce turns refusals into
/// tempfails), the reply, the DSN reason of a bounce, and who is told.
fn block(v: &mut Verdict, f: &Finding, m: &MessageInput, p: &Policy) {
    let (code, status, why) = reason(f.category, &f.detail);
    let why = header_safe(&why);
    let am_id = m.am_id;
    let mut destiny = destiny_of(f.category, p);
    if p.soft_bounce && matches!(destiny, Destiny::Reject | Destiny::Bounce) {
        destiny = Destiny::Tempfail;
    }
    v.reply = Some(match destiny {
        Destiny::Reject => Reply::new(code, status, format!("Reject, id={am_id} - {why}")),
        Destiny::Tempfail => Reply::new(
            450,
            &format!("4{}", &status[1..]),
            format!("Temporary failure, id={am_id} - {why}"),
        ),
        Destiny::Discard | Destiny::Bounce | Destiny::Pass => {
            Reply::new(250, "2.7.0", format!("Ok, discarded, id={am_id} - {why}"))
        }
    });
    if destiny == Destiny::Bounce {
        v.dsn_reply = Some(Reply::new(
            code,
            status,
            format!("Bounced, id={am_id} - {why}"),
        ));
    }
    v.destiny = destiny;
    v.blocked_by = f.category;
    v.detail = f.detail.clone();
    v.admin = admin_of(f.category, p).to_string();
    let score = m.results.spam.as_ref().map(|s| s.score);
    v.suppress_dsn |= (f.category == Category::Virus && m.results.virus_fakes_sender)
        || score.is_some_and(|s| s >= p.spam_dsn_cutoff_level);
    v.warn_recipient = match f.category {
        Category::Virus => p.warn_virus_recip,
        Category::Banned => p.warn_banned_recip,
        Category::BadHeader => p.warn_bad_header_recip,
        _ => false,
    };
}

/// A passed copy: `X-Amavis-Alert` for the bad categories it carries, and for local
/// recipients the spam header fields, a subject tag and an address extension.
fn mark_passed(v: &mut Verdict, found: &[Finding], r: &CheckResults, rc: &RecipientInput) {
    let p = rc.policy;
    for f in found {
        if let Some(a) = alert(f.category, &f.detail) {
            v.headers
                .push(("X-Amavis-Alert".to_string(), header_safe(&a)));
        }
    }
    if !rc.local {
        return;
    }
    if let Some(s) = r.spam.as_ref().filter(|_| !p.bypass_spam_checks)
        && p.spam_tag_level.is_none_or(|t| s.score >= t)
    {
        v.headers.extend(spam_headers(s, p));
    }
    let score = r.spam.as_ref().map(|s| s.score);
    if let Some(t) = found
        .iter()
        .map(|f| subject_tag(f.category, f.minor, score, p))
        .find(|t| !t.is_empty())
    {
        v.subject_tag = t;
    }
    if let Some(ext) = found
        .iter()
        .map(|f| extension(f.category, p))
        .find(|e| !e.is_empty())
    {
        v.address =
            crate::message::address::with_extension(rc.address, &p.recipient_delimiter, ext);
    }
}

#[cfg(test)]
mod tests;
