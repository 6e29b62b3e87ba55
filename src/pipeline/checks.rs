//! Step: the checks the recipients' policies ask for ([`Checks`](super::Checks) runs the
//! analyzers), with DKIM verification beside them.

use super::analyzers::{CheckRequest, CheckScope};
use super::job::{Checked, Job, Tempfail, read_whole};
use super::state::State;
use crate::message::{Spool, VirusScan};
use std::sync::Arc;
use std::time::Instant;

/// Runs the checks the recipients' policies ask for (or those of the job's scope), and fills
/// `job.checked`. A check that could not run makes the message wait.
pub(super) async fn check(st: &State, job: &mut Job) -> Result<(), Tempfail> {
    let (req, verifier) = match job.scope {
        CheckScope::Full => (request(job), st.verifier.as_ref()),
        CheckScope::SpamOnly => (CheckRequest::spam_only(&job.env.mail_from), None),
    };
    crate::stats::sessions::stage("checks");
    let began = Instant::now();
    // The spam rules that read DKIM, SPF and DMARC (DKIM_VALID, SPF_FAIL, DMARC_REJECT) wait
    // for the verification, which runs beside the other checks.
    let (tx, rx) = tokio::sync::watch::channel(None);
    let mut req = req;
    if verifier.is_some() {
        req.auth = Some(rx);
    }
    let client = spf_client(job);
    let spool = Arc::clone(&job.spool);
    let verify = async move {
        let v = verify_dkim(verifier, &spool, client.as_ref()).await;
        // Dropping `tx` without a value tells the spam rules there is none.
        if let Some(v) = &v {
            let _ = tx.send(Some(Arc::new(v.clone())));
        }
        v
    };
    let (checked, dkim) = tokio::join!(st.checks.run(Arc::clone(&job.spool), &req), verify);
    crate::stats::stage("checks", began.elapsed());
    let mut analyzed = checked.map_err(|e| {
        Tempfail::processing(&job.am_id, &e.to_string()).because(format!("checks failed: {e}"))
    })?;
    analyzed.results.dmarc_reject = dkim
        .as_ref()
        .and_then(|v| v.dmarc.as_ref())
        .is_some_and(|d| d.result == "fail" && d.policy == "reject");
    if let VirusScan::Failed { reason } = &analyzed.results.virus {
        crate::stats::scanner_error();
        tracing::warn!("({}) virus scan failed: {reason}", job.am_id);
    }
    job.checked = Some(Checked {
        results: analyzed.results,
        dkim,
        spam: analyzed.spam,
    });
    Ok(())
}

/// What the recipients' policies ask the analyzers for.
fn request(job: &Job) -> CheckRequest {
    let mut req = CheckRequest::for_policies(job.rcpts.iter().map(|r| r.settings.policy.as_ref()));
    req.sender = job.env.mail_from.clone();
    req.banks = job.bank.banks.clone();
    req.smtputf8 = job.env.has_mail_flag("SMTPUTF8");
    for u in job.rcpts.iter().filter_map(|r| r.bayes_user.as_ref()) {
        if !req.bayes_users.contains(u) {
            req.bayes_users.push(u.clone());
        }
    }
    req.no_autolearn = job.rcpts.iter().any(|r| r.report.is_some());
    req
}

/// The message's DKIM signatures verified, with SPF and DMARC for `client`, when
/// verification is on.
async fn verify_dkim(
    verifier: Option<&crate::dkim::Verifier>,
    spool: &Arc<Spool>,
    client: Option<&crate::dkim::SpfClient>,
) -> Option<crate::dkim::Verification> {
    let verifier = verifier?;
    let whole = read_whole(spool).await?;
    Some(verifier.verify(&whole, client).await)
}

/// The client SPF checks: the one Postfix received the message from (XFORWARD), unless it
/// is one of ours (a private address, or `mynetworks`: the MYNETS bank), as SpamAssassin
/// checks only relays outside its trust. Without XFORWARD there is none.
fn spf_client(job: &Job) -> Option<crate::dkim::SpfClient> {
    let x = &job.env.client.xforward;
    let ip: std::net::IpAddr = x
        .addr
        .as_deref()?
        .trim_start_matches("IPv6:")
        .parse()
        .ok()?;
    if crate::dns::is_private(&ip) || job.bank.banks.iter().any(|b| b == "MYNETS") {
        return None;
    }
    Some(crate::dkim::SpfClient {
        ip,
        helo: x.helo.clone().unwrap_or_default(),
        mail_from: job.env.mail_from.clone(),
    })
}
