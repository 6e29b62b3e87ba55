//! Each recipient's settings for one message: the message's banks, the static per-recipient
//! tables, then amavisd-new's SQL tables (`users`, `policy`, `wblist`) in front of them, as
//! amavisd-new reads them. A lookup that fails makes the message wait: amavisd-new defers mail
//! whose recipient settings it cannot read rather than apply the wrong ones.

use super::{MessagePolicy, Policies, Policy};
use crate::message::Recipient;
use crate::sql::Store;
use std::sync::Arc;

/// The recipient's white/blacklist entry for the sender (amavisd-new's `wblist`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum SenderList {
    #[default]
    None,
    /// Whitelisted: the spam score is at most 0, never spam.
    White,
    /// Blacklisted: the spam score is at least 64, always spam.
    Black,
    /// A score to add (amavisd-new's "soft" lists).
    Score(f64),
}

impl SenderList {
    /// From `wblist.wb`: `W`, `B` (or `Y`/`N`), or a number.
    pub fn parse(wb: &str) -> SenderList {
        match wb.trim() {
            "W" | "w" | "Y" | "y" => SenderList::White,
            "B" | "b" | "N" | "n" => SenderList::Black,
            other => other
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map_or(SenderList::None, SenderList::Score),
        }
    }
}

/// What one recipient's copy is checked and decided under.
#[derive(Debug, Clone)]
pub struct RecipientPolicy {
    pub policy: Arc<Policy>,
    /// In the policy's local domains, or known to the SQL `users` table.
    pub local: bool,
    /// The sender on this recipient's white/blacklist.
    pub list: SenderList,
}

/// A recipient's SQL settings could not be read or are not valid settings: the message
/// waits (always temporary: the database, or a row an admin fixes, may be right next time).
#[derive(Debug, thiserror::Error)]
#[error("SQL lookup for <{address}>: {reason}")]
pub struct LookupError {
    pub address: String,
    pub reason: String,
}

impl Policies {
    /// The settings of each of `recipients` (in order) for a message from `sender` under
    /// `msg`; with `sql`, amavisd-new's SQL lookups in front of the static tables.
    pub async fn resolve_recipients(
        &self,
        msg: &MessagePolicy,
        recipients: &[Recipient],
        sender: &str,
        sql: Option<&Store>,
    ) -> Result<Vec<RecipientPolicy>, LookupError> {
        let mut out = Vec::new();
        for address in recipients.iter().map(|r| r.address.as_str()) {
            let policy = self.for_recipient(msg, address);
            let local = self.is_local(&policy, address);
            let Some(store) = sql else {
                out.push(RecipientPolicy {
                    policy,
                    local,
                    list: SenderList::None,
                });
                continue;
            };
            let fail = |reason: String| LookupError {
                address: address.to_string(),
                reason,
            };
            let found = store
                .lookup_recipient(address, &policy.recipient_delimiter, local, sender)
                .await
                .map_err(|e| fail(e.to_string()))?;
            let policy = self
                .for_recipient_with(msg, address, &found.settings)
                .map_err(|(k, why)| fail(format!("{k}: {why}")))?;
            out.push(RecipientPolicy {
                policy,
                local: local || found.known,
                list: found
                    .wb
                    .as_deref()
                    .map(SenderList::parse)
                    .unwrap_or_default(),
            });
        }
        Ok(out)
    }
}
