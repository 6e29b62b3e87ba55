//! Bayes: a classifier trained on a site's (and a user's) own ham and spam, as SpamAssassin's
//! Bayes plugin and dspam train theirs. [`tokens`] says what is counted, [`classify`] how
//! counts become a probability; a [`Store`] keeps the counts and which messages were learned,
//! so that learning a message again changes nothing and learning it as the other class moves
//! its tokens over.

pub mod autolearn;
pub mod classify;
pub mod redis_store;
mod redis_weights;
pub mod shared;
pub mod sources;
pub mod sql_store;
mod sql_weights;
mod sqlite_reader;
pub mod store;
pub mod tokens;
pub mod weights;

use std::collections::HashMap;

/// Which class a message was learned as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Spam,
    Ham,
}

/// What learning a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// Counted for the first time.
    New,
    /// Already learned as this class: nothing changed.
    Unchanged,
    /// Had been learned as the other class: moved over.
    Flipped,
    /// Forgotten (or was not learned: see [`forget`]).
    Forgotten,
    NotLearned,
}

/// Why a message could not be learned.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// No Bayes store is configured (`spam.bayes_store`): the same at every try.
    #[error("no Bayes store (spam.bayes_store)")]
    NoStore,
    /// The store did not answer, or reading the message failed (a bug, caught): it may
    /// answer next time.
    #[error("{0}")]
    Failed(String),
}

impl LearnError {
    pub fn is_temporary(&self) -> bool {
        matches!(self, LearnError::Failed(_))
    }
}

/// A message's identity for learning: a hash of its Message-ID when it has one, else of
/// the whole message, so that the same message learned twice is recognised.
pub type MessageKey = [u8; 32];

/// Token counts and learned messages in memory ([`MemoryStore`]), for one user. The shared
/// stores (SQLite, PostgreSQL, Redis) have the same operations per user, asynchronous:
/// [`store::TokenStore`].
pub trait Store {
    /// Messages learned: (spam, ham).
    fn totals(&self) -> (u64, u64);
    /// (spam, ham) counts of each token, in order; (0, 0) for an unknown one.
    fn counts(&self, tokens: &[u64]) -> Vec<(u32, u32)>;
    /// The class a message was learned as.
    fn learned_as(&self, key: &MessageKey) -> Option<Class>;
    /// Adds (`delta` 1) or removes (-1) one message of `class` with its tokens, and records
    /// or clears its key.
    fn apply(&mut self, key: &MessageKey, class: Class, tokens: &[u64], delta: i32);
}

/// Learns a message's tokens as `class`: once only, moved over if learned as the other class.
pub fn learn(store: &mut dyn Store, key: &MessageKey, class: Class, tokens: &[u64]) -> Learned {
    match store.learned_as(key) {
        Some(c) if c == class => Learned::Unchanged,
        Some(other) => {
            store.apply(key, other, tokens, -1);
            store.apply(key, class, tokens, 1);
            Learned::Flipped
        }
        None => {
            store.apply(key, class, tokens, 1);
            Learned::New
        }
    }
}

/// Takes a learned message back out.
pub fn forget(store: &mut dyn Store, key: &MessageKey, tokens: &[u64]) -> Learned {
    match store.learned_as(key) {
        Some(c) => {
            store.apply(key, c, tokens, -1);
            Learned::Forgotten
        }
        None => Learned::NotLearned,
    }
}

/// The message's spam probability, or `None` until at least `min_learned` spam and as many
/// ham were learned (SpamAssassin's `bayes_min_spam_num`/`bayes_min_ham_num`, 200 each) or
/// when no token is telling.
pub fn probability(store: &dyn Store, tokens: &[u64], min_learned: u64) -> Option<f64> {
    let totals = store.totals();
    if !trained(totals, min_learned) {
        return None;
    }
    from_counts(totals, store.counts(tokens))
}

/// Whether a store with these (spam, ham) totals may answer.
pub fn trained((nspam, nham): (u64, u64), min_learned: u64) -> bool {
    nspam >= min_learned.max(1) && nham >= min_learned.max(1)
}

/// The probability from a store's totals and the counts of a message's tokens.
pub fn from_counts(
    (nspam, nham): (u64, u64),
    counts: impl IntoIterator<Item = (u32, u32)>,
) -> Option<f64> {
    let probs = counts
        .into_iter()
        .filter_map(|(s, h)| classify::token_probability(s, h, nspam, nham));
    classify::combine(probs)
}

/// The key of a message: SHA-256 of its Message-ID, else of the whole message.
pub fn message_key(view: &crate::spam::view::MessageView, raw: &[u8]) -> MessageKey {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    match view
        .header("Message-ID:raw")
        .filter(|m| !m.trim().is_empty())
    {
        Some(id) => h.update(id.trim().as_bytes()),
        None => h.update(raw),
    }
    h.finalize().into()
}

/// What learning a message needs: its key and its hashed tokens (the message parsed as
/// the rules parse it).
pub fn learnable(raw: &[u8]) -> (MessageKey, Vec<u64>) {
    let view = crate::spam::view::MessageView::new(raw, "");
    (message_key(&view, raw), tokens::hashed(&view))
}

/// The user name of a recipient's own Bayes store: the address in lower case without its
/// address extension, as SpamAssassin's per-user Bayes under amavisd-new keys it.
pub fn user_of(address: &str, delimiter: &str) -> String {
    let ext = crate::message::address::extension(address, delimiter);
    let plain = match (delimiter.chars().next(), ext) {
        (Some(d), Some(ext)) => address.replacen(&format!("{d}{ext}"), "", 1),
        _ => address.to_string(),
    };
    plain.to_lowercase()
}

/// Counts in memory: tests, the cross-validation harness, and a store's reference
/// behaviour.
#[derive(Debug, Default)]
pub struct MemoryStore {
    spam: u64,
    ham: u64,
    tokens: HashMap<u64, (u32, u32)>,
    learned: HashMap<MessageKey, Class>,
}

impl MemoryStore {
    /// Distinct tokens held.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

impl Store for MemoryStore {
    fn totals(&self) -> (u64, u64) {
        (self.spam, self.ham)
    }

    fn counts(&self, tokens: &[u64]) -> Vec<(u32, u32)> {
        tokens
            .iter()
            .map(|t| self.tokens.get(t).copied().unwrap_or((0, 0)))
            .collect()
    }

    fn learned_as(&self, key: &MessageKey) -> Option<Class> {
        self.learned.get(key).copied()
    }

    fn apply(&mut self, key: &MessageKey, class: Class, tokens: &[u64], delta: i32) {
        let total = match class {
            Class::Spam => &mut self.spam,
            Class::Ham => &mut self.ham,
        };
        *total = total.saturating_add_signed(i64::from(delta));
        for t in tokens {
            let e = self.tokens.entry(*t).or_default();
            let n = match class {
                Class::Spam => &mut e.0,
                Class::Ham => &mut e.1,
            };
            *n = n.saturating_add_signed(delta);
            if *e == (0, 0) {
                self.tokens.remove(t);
            }
        }
        if delta > 0 {
            self.learned.insert(*key, class);
        } else {
            self.learned.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learning_is_idempotent_and_flips() {
        let mut s = MemoryStore::default();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(learn(&mut s, &a, Class::Spam, &[10, 11]), Learned::New);
        assert_eq!(
            learn(&mut s, &a, Class::Spam, &[10, 11]),
            Learned::Unchanged
        );
        assert_eq!(s.totals(), (1, 0));
        assert_eq!(s.counts(&[10, 12]), vec![(1, 0), (0, 0)]);
        assert_eq!(learn(&mut s, &a, Class::Ham, &[10, 11]), Learned::Flipped);
        assert_eq!(s.totals(), (0, 1));
        assert_eq!(s.counts(&[10]), vec![(0, 1)]);
        assert_eq!(learn(&mut s, &b, Class::Spam, &[10]), Learned::New);
        assert_eq!(forget(&mut s, &a, &[10, 11]), Learned::Forgotten);
        assert_eq!(forget(&mut s, &a, &[10, 11]), Learned::NotLearned);
        assert_eq!(s.totals(), (1, 0));
        assert_eq!(s.counts(&[10, 11]), vec![(1, 0), (0, 0)]);
        assert_eq!(s.len(), 1, "tokens at zero are dropped");
    }

    #[test]
    fn silent_until_trained_enough() {
        let mut s = MemoryStore::default();
        for i in 0..5u8 {
            learn(&mut s, &[i; 32], Class::Spam, &[1, 2, 3]);
            learn(&mut s, &[100 + i; 32], Class::Ham, &[4, 5, 6]);
        }
        assert_eq!(probability(&s, &[1, 2, 3], 200), None);
        let spam = probability(&s, &[1, 2, 3], 5).unwrap();
        let ham = probability(&s, &[4, 5, 6], 5).unwrap();
        assert!(spam > 0.9 && ham < 0.1, "{spam} {ham}");
    }
}
