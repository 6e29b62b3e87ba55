//! The store a URL names, whichever backend that is.

use super::redis_store::RedisStore;
use super::sql_store::SqlStore;
use super::store::{BayesError, Purge, TokenStore};
use super::weights::{WeightPurge, WeightStore};
use super::{Class, Learned, MessageKey};
use crate::spam::logistic::State;
use std::collections::HashMap;

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

impl WeightStore for SharedStore {
    async fn weights(
        &self,
        user: &str,
        features: &[u64],
    ) -> Result<HashMap<u64, State>, BayesError> {
        each!(self, s => s.weights(user, features).await)
    }
    async fn train<F>(&self, user: &str, features: &[u64], step: F) -> Result<(), BayesError>
    where
        F: FnOnce(&[(u64, State)]) -> Vec<(u64, State)> + Send,
    {
        each!(self, s => s.train(user, features, step).await)
    }
    async fn weight_count(&self, user: &str) -> Result<u64, BayesError> {
        each!(self, s => s.weight_count(user).await)
    }
    async fn purge_weights(&self, user: &str, purge: &WeightPurge) -> Result<u64, BayesError> {
        each!(self, s => s.purge_weights(user, purge).await)
    }
}
