//! Step: admin notices (one per admin address, naming the recipients concerned) and
//! recipient warnings for blocked copies. They go out in the background: the message's fate
//! is settled and a notice that cannot be sent is only logged.

use super::job::Job;
use super::state::State;
use crate::message::{CheckResults, Destiny, Reply, Spool};
use crate::smtp_out::{NoticeFacts, NoticeSite, build_notice};
use std::sync::Arc;

/// Builds the notices the verdicts ask for and sends them in the background.
pub(super) fn send(st: &Arc<State>, job: &Job, quarantine: Option<&str>) {
    let Some(results) = job.results() else {
        return;
    };
    let verdicts = &job.verdicts;
    let blocked: Vec<usize> = (0..verdicts.len())
        .filter(|&i| verdicts[i].destiny != Destiny::Pass)
        .collect();
    if blocked.is_empty() {
        return;
    }
    let site = NoticeSite {
        myhostname: st.cfg.myhostname.clone(),
        mydomain: st.cfg.mydomain.clone(),
    };
    let facts = |which: &[usize]| facts(job, results, which, quarantine);
    let mut notices: Vec<(String, Vec<u8>)> = Vec::new();
    for (admin, which) in admins(job, &blocked) {
        let body = build_notice(&st.templates.admin, &facts(&which), &site, &admin);
        notices.push((admin, body));
    }
    for &i in blocked.iter().filter(|&&i| verdicts[i].warn_recipient) {
        let to = job.env.recipients[i].address.clone();
        let body = build_notice(&st.templates.recipient, &facts(&[i]), &site, &to);
        notices.push((to, body));
    }
    if !notices.is_empty() {
        tokio::spawn(deliver(Arc::clone(st), job.am_id.clone(), notices));
    }
}

/// Each admin address to notify, with the blocked recipients it is told about.
fn admins(job: &Job, blocked: &[usize]) -> Vec<(String, Vec<usize>)> {
    let mut admins: Vec<(String, Vec<usize>)> = Vec::new();
    for &i in blocked {
        let list = job.verdicts[i].admin.split([',', ' ']);
        for a in list.filter(|a| !a.is_empty()) {
            match admins.iter_mut().find(|(x, _)| x == a) {
                Some((_, v)) => v.push(i),
                None => admins.push((a.to_string(), vec![i])),
            }
        }
    }
    admins
}

/// What a notice about recipients `which` says.
fn facts(job: &Job, results: &CheckResults, which: &[usize], quar: Option<&str>) -> NoticeFacts {
    let verdicts = &job.verdicts;
    let env = &job.env;
    let worst = which
        .iter()
        .map(|&i| &verdicts[i])
        .max_by_key(|v| v.blocked_by);
    let mut banned: Vec<String> = Vec::new();
    for &i in which {
        for h in results.banned_under(&job.rcpts[i].settings.policy.banned_rules) {
            let v = h.value().to_string();
            if !banned.contains(&v) {
                banned.push(v);
            }
        }
    }
    NoticeFacts {
        sender: format!("<{}>", env.mail_from),
        recipients: which
            .iter()
            .map(|&i| env.recipients[i].address.clone())
            .collect(),
        viruses: results
            .virus_names()
            .iter()
            .map(|s| s.to_string())
            .collect(),
        banned,
        bad_header: results
            .bad_header
            .iter()
            .map(|b| b.detail.clone())
            .collect(),
        spam_score: results
            .spam
            .as_ref()
            .map(|s| crate::verdict::spam_number(s.score))
            .unwrap_or_default(),
        category: worst
            .map(|v| v.blocked_by.log_name(v.minor))
            .unwrap_or_default(),
        am_id: job.am_id.clone(),
        mail_id: job.ids.mail_id.clone(),
        message_id: job.spool.header_field("Message-ID").unwrap_or_default(),
        subject: job.spool.header_field("Subject").unwrap_or_default(),
        quarantine: quar.map(str::to_string).into_iter().collect(),
        size: job.spool.len(),
        banks: job.path.clone(),
        client: env.client.xforward.addr.clone().unwrap_or_default(),
    }
}

/// Sends `notices` (recipient, message) one after the other.
async fn deliver(st: Arc<State>, am_id: String, notices: Vec<(String, Vec<u8>)>) {
    for (to, body) in notices {
        let spool = Spool::from_bytes(body);
        match st.notifier.send_notification(&to, b"", &spool, b"").await {
            Ok(d) if d.replies.iter().all(Reply::is_positive) => {
                tracing::info!("({am_id}) notice sent to <{to}>")
            }
            Ok(d) => tracing::error!(
                "({am_id}) notice to <{to}> refused: {}",
                d.replies.first().map(Reply::one_line).unwrap_or_default()
            ),
            Err(e) => tracing::error!("({am_id}) notice to <{to}> not sent: {e}"),
        }
    }
}
