//! Step: each recipient's settings (banks, static tables, SQL; see
//! [`Policies::resolve_recipients`](crate::policy_bank::Policies::resolve_recipients)), and
//! the roles its address plays: its own Bayes store, a report address.

use super::job::{Job, Rcpt, Tempfail};
use super::report;
use super::state::State;

/// Fills `job.rcpts`; a recipient whose SQL settings cannot be read makes the message wait,
/// as amavisd-new does.
pub(super) async fn resolve(st: &State, job: &mut Job) -> Result<(), Tempfail> {
    let found = st
        .policies
        .resolve_recipients(
            &job.bank,
            &job.env.recipients,
            &job.env.mail_from,
            st.sql_lookups(),
        )
        .await
        .map_err(|e| {
            crate::stats::sql_error();
            Tempfail::processing(&job.am_id, "SQL lookup: try again later").because(e)
        })?;
    job.rcpts = found
        .into_iter()
        .zip(&job.env.recipients)
        .map(|(settings, r)| {
            let p = &settings.policy;
            Rcpt {
                bayes_user: (p.bayes_per_user && !p.bypass_spam_checks)
                    .then(|| crate::spam::bayes_user(&r.address, &p.recipient_delimiter)),
                report: report::class_of(&r.address, &st.cfg.spam),
                settings,
            }
        })
        .collect();
    Ok(())
}
