//! Report addresses (dspam's `spam-USER@` / `notspam-USER@`): a local user sends or forwards
//! missed spam to `spam.bayes_report_spam_to` and false positives to
//! `spam.bayes_report_ham_to`. The reported messages retrain the user's own Bayes store, and
//! the report itself is not delivered.

use crate::message::Spool;
use crate::spam::SpamConfig;
use crate::spam::bayes::shared::SharedStore;
use crate::spam::bayes::store::TokenStore;
use crate::spam::bayes::{self, Class, Learned, sources};
use std::sync::Arc;

/// The class a recipient address reports, if it is a report address.
pub fn class_of(address: &str, cfg: &SpamConfig) -> Option<Class> {
    let is = |to: &str| !to.is_empty() && address.eq_ignore_ascii_case(to);
    if is(&cfg.bayes_report_spam_to) {
        Some(Class::Spam)
    } else if is(&cfg.bayes_report_ham_to) {
        Some(Class::Ham)
    } else {
        None
    }
}

/// Learns the messages a report carries into `user`'s store; gives how many changed it.
pub async fn learn(
    store: &SharedStore,
    user: &str,
    class: Class,
    spool: Arc<Spool>,
) -> Result<usize, String> {
    let learnables = tokio::task::spawn_blocking(move || {
        let raw = spool.to_bytes_blocking().map_err(|e| e.to_string())?;
        Ok::<_, String>(
            sources::reported(&raw)
                .iter()
                .map(|m| bayes::learnable(m))
                .collect::<Vec<_>>(),
        )
    })
    .await
    .map_err(crate::catch_panic::join_error_text)??;
    let mut changed = 0;
    for (key, tokens) in &learnables {
        match store.learn(user, key, class, tokens).await {
            Ok(Learned::New | Learned::Flipped) => changed += 1,
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(changed)
}
