//! The shared token stores behind one trait: SQL ([`SqlStore`]: SQLite, the embedded
//! default, or PostgreSQL) and Redis ([`RedisStore`]). Filter nodes that share one store
//! classify alike and learn into the same counts. [`SharedStore`] picks the backend from the
//! store's URL.

use super::redis_store::RedisStore;
use super::sql_store::SqlStore;
use super::{Class, Learned, MessageKey};
use std::future::Future;

/// Why a store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum BayesError {
    #[error("bayes store {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("bayes store: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("bayes store: redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// What a purge removes from one user's tokens (dspam's purge, SpamAssassin's expiry). A
/// token's age is the time since it was last learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purge {
    /// The time the ages are measured from (seconds since the epoch).
    pub now: i64,
    /// Tokens not learned for this many seconds go; 0 keeps them.
    pub max_age: u64,
    /// Tokens seen in one message only (hapaxes) and not learned for this many seconds go;
    /// 0 keeps them.
    pub hapax_max_age: u64,
    /// At most this many tokens stay, the least recently learned going first; 0: no bound.
    pub max_tokens: u64,
}

/// The time now, in seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A shared token store. Every user's counts are apart from every other user's; the site's
/// store is the user `""`. Each learn or forget is atomic: a message counts wholly or not at
/// all, and learning it again is recognised.
pub trait TokenStore: Send + Sync {
    /// Messages learned for `user`: (spam, ham).
    fn totals(&self, user: &str) -> impl Future<Output = Result<(u64, u64), BayesError>> + Send;
    /// (spam, ham) counts of each token for `user`, in order; (0, 0) for unknown ones.
    fn counts(
        &self,
        user: &str,
        tokens: &[u64],
    ) -> impl Future<Output = Result<Vec<(u32, u32)>, BayesError>> + Send;
    /// Learns a message as `class`: once; moved over when learned as the other class.
    fn learn(
        &self,
        user: &str,
        key: &MessageKey,
        class: Class,
        tokens: &[u64],
    ) -> impl Future<Output = Result<Learned, BayesError>> + Send;
    /// Takes a learned message back out.
    fn forget(
        &self,
        user: &str,
        key: &MessageKey,
        tokens: &[u64],
    ) -> impl Future<Output = Result<Learned, BayesError>> + Send;
    /// Distinct tokens held for `user` (the store's size).
    fn token_count(&self, user: &str) -> impl Future<Output = Result<u64, BayesError>> + Send;
    /// Every user with counts, the site's `""` included.
    fn users(&self) -> impl Future<Output = Result<Vec<String>, BayesError>> + Send;
    /// Removes `user`'s tokens as `purge` says; gives how many went.
    fn purge(
        &self,
        user: &str,
        purge: &Purge,
    ) -> impl Future<Output = Result<u64, BayesError>> + Send;
}

/// The store a URL names: `sqlite:FILE`, `postgres://...` or `redis://...`.
pub enum SharedStore {
    Sql(SqlStore),
    Redis(RedisStore),
}

impl SharedStore {
    /// The store for `url`, connecting on first use (the filter builds it at start-up and on
    /// reload; a store down at start only costs the messages scanned meanwhile). Call within
    /// a tokio runtime.
    pub fn new(url: &str) -> Result<SharedStore, BayesError> {
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            RedisStore::new(url).map(SharedStore::Redis)
        } else {
            SqlStore::new(url).map(SharedStore::Sql)
        }
    }

    /// Connects to `url` now (the command-line tools, which should fail at once).
    pub async fn open(url: &str) -> Result<SharedStore, BayesError> {
        let s = Self::new(url)?;
        s.totals("").await?;
        Ok(s)
    }
}

/// Calls the same method on whichever backend.
macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            SharedStore::Sql($s) => $e,
            SharedStore::Redis($s) => $e,
        }
    };
}

impl TokenStore for SharedStore {
    async fn totals(&self, user: &str) -> Result<(u64, u64), BayesError> {
        each!(self, s => s.totals(user).await)
    }
    async fn counts(&self, user: &str, tokens: &[u64]) -> Result<Vec<(u32, u32)>, BayesError> {
        each!(self, s => s.counts(user, tokens).await)
    }
    async fn learn(
        &self,
        user: &str,
        key: &MessageKey,
        class: Class,
        tokens: &[u64],
    ) -> Result<Learned, BayesError> {
        each!(self, s => s.learn(user, key, class, tokens).await)
    }
    async fn forget(
        &self,
        user: &str,
        key: &MessageKey,
        tokens: &[u64],
    ) -> Result<Learned, BayesError> {
        each!(self, s => s.forget(user, key, tokens).await)
    }
    async fn token_count(&self, user: &str) -> Result<u64, BayesError> {
        each!(self, s => s.token_count(user).await)
    }
    async fn users(&self) -> Result<Vec<String>, BayesError> {
        each!(self, s => s.users().await)
    }
    async fn purge(&self, user: &str, purge: &Purge) -> Result<u64, BayesError> {
        each!(self, s => s.purge(user, purge).await)
    }
}

/// The spam probability of a message's `tokens` over the stores of `users` taken together
/// (dspam's merged groups: a user's store over the site's `""`, counts and totals added);
/// `None` until the sum holds `min_learned` of each class, or when no token is telling.
pub async fn probability<S: TokenStore>(
    store: &S,
    users: &[&str],
    tokens: &[u64],
    min_learned: u64,
) -> Result<Option<f64>, BayesError> {
    let mut totals = (0, 0);
    let mut holding = Vec::with_capacity(users.len());
    for u in users {
        let (s, h) = store.totals(u).await?;
        totals = (totals.0 + s, totals.1 + h);
        if s + h > 0 {
            holding.push(*u);
        }
    }
    if !super::trained(totals, min_learned) {
        return Ok(None);
    }
    let mut counts = vec![(0u32, 0u32); tokens.len()];
    for u in holding {
        for (sum, (s, h)) in counts.iter_mut().zip(store.counts(u, tokens).await?) {
            *sum = (sum.0.saturating_add(s), sum.1.saturating_add(h));
        }
    }
    Ok(super::from_counts(totals, counts))
}

/// Purges every user's tokens; gives (users, tokens removed).
pub async fn purge_all<S: TokenStore>(store: &S, purge: &Purge) -> Result<(u64, u64), BayesError> {
    let users = store.users().await?;
    let mut removed = 0;
    for u in &users {
        removed += store.purge(u, purge).await?;
    }
    Ok((users.len() as u64, removed))
}
