//! The shared token stores' one trait, [`TokenStore`], with what every backend shares: its
//! error, the purge bounds, and the probability and purge built on the trait. The backends
//! are SQL (`sql_store`: SQLite, the embedded default, or PostgreSQL) and Redis
//! (`redis_store`); `shared::SharedStore` picks one from the store's URL. Filter nodes that
//! share one store classify alike and learn into the same counts.

use super::{Class, Learned, MessageKey, classify};
use std::future::Future;

/// Why a store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum BayesError {
    #[error("bayes store {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("bayes store: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("bayes store: sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("bayes store: redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The messages to learn could not be prepared: the spool was unreadable, or the task
    /// was lost (a panic, caught).
    #[error("bayes: {0}")]
    Task(String),
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
    /// Records of which messages were learned go after this many seconds (a message learned
    /// again later counts again); 0 keeps them.
    pub seen_max_age: u64,
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
    /// Removes `user`'s tokens (and old learned-message records) as `purge` says; gives how
    /// many tokens went.
    fn purge(
        &self,
        user: &str,
        purge: &Purge,
    ) -> impl Future<Output = Result<u64, BayesError>> + Send;
}

/// The spam probability of a message's `tokens`: from the `site_user` store (the filter's
/// is `""`) when `user` is empty, else from `user`'s own store over the site's. See
/// [`probabilities`].
pub async fn probability<S: TokenStore>(
    store: &S,
    site_user: &str,
    user: &str,
    tokens: &[u64],
    min_learned: u64,
) -> Result<Option<f64>, BayesError> {
    let users: &[&str] = if user.is_empty() { &[] } else { &[user] };
    let all = probabilities(store, site_user, users, tokens, min_learned).await?;
    Ok(all.last().copied().flatten())
}

/// The spam probabilities of a message's `tokens`: first from the `site_user` store alone,
/// then for each of `users` from that user's own store over the site's
/// ([`classify::token_probability_over`]: each token the user learned moves the site's
/// estimate of it). The site's counts are read once for all. Each is `None` until the site's
/// store (or the user's) holds `min_learned` of each class, or when no token is telling.
pub async fn probabilities<S: TokenStore>(
    store: &S,
    site_user: &str,
    users: &[&str],
    tokens: &[u64],
    min_learned: u64,
) -> Result<Vec<Option<f64>>, BayesError> {
    let site = store.totals(site_user).await?;
    let site_ok = super::trained(site, min_learned);
    // Read when an answer first needs them.
    let mut site_counts: Option<Vec<(u32, u32)>> = None;
    let mut out = Vec::with_capacity(users.len() + 1);
    for user in std::iter::once("").chain(users.iter().copied()) {
        let own = if user.is_empty() {
            (0, 0)
        } else {
            store.totals(user).await?
        };
        if !site_ok && !super::trained(own, min_learned) {
            out.push(None);
            continue;
        }
        if site_counts.is_none() {
            site_counts = Some(if site_ok {
                store.counts(site_user, tokens).await?
            } else {
                vec![(0, 0); tokens.len()]
            });
        }
        let Some(sc) = site_counts.as_deref() else {
            out.push(None);
            continue;
        };
        if own == (0, 0) {
            out.push(super::from_counts(site, sc.iter().copied()));
            continue;
        }
        let own_counts = store.counts(user, tokens).await?;
        let probs = sc
            .iter()
            .zip(own_counts)
            .filter_map(|(&(gs, gh), (us, uh))| {
                let at_site = classify::token_probability(gs, gh, site.0, site.1);
                classify::token_probability_over(at_site, us, uh, own.0, own.1)
            });
        out.push(classify::combine(probs));
    }
    Ok(out)
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
