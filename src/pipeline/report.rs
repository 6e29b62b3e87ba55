//! Report addresses (dspam's `spam-USER@` / `notspam-USER@`): a local user sends or forwards
//! missed spam to `spam.bayes_report_spam_to` and false positives to
//! `spam.bayes_report_ham_to`. The reported messages retrain the user's own Bayes store, and
//! the report itself is not delivered.

use crate::spam::{Class, SpamConfig};

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
