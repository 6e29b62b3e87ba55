//! The learner's weights ([`crate::spam::logistic`]) kept in the Bayes store's database,
//! beside the token counts and under the same user names: one place to configure, back up
//! and purge. A row per feature and user: its FTRL state `(z, n)` and when it was last
//! trained. The math stays in `logistic`; a store reads and writes states.

use super::store::BayesError;
use crate::spam::logistic::{Params, State};
use std::collections::HashMap;
use std::future::Future;

/// What a purge removes from one user's weights. A feature's age is the time since it was
/// last trained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightPurge {
    /// The time the ages are measured from (seconds since the epoch).
    pub now: i64,
    /// Features not trained for this many seconds go; 0 keeps them.
    pub max_age: u64,
    /// Features whose weight is still zero (their evidence `|z|` within `l1`) and not
    /// trained for this many seconds go: most features are seen in one message and never
    /// weigh anything. 0 keeps them.
    pub idle_max_age: u64,
    /// The learner's L1 strength, which says which weights are zero.
    pub l1: f32,
    /// At most this many features stay, the least recently trained going first; 0: no
    /// bound.
    pub max_rows: u64,
}

impl WeightPurge {
    /// The time before which a feature of this age is due; `None` when `age` is 0 (kept).
    pub fn cutoff(&self, age: u64) -> Option<i64> {
        (age > 0).then(|| self.now.saturating_sub(age.min(i64::MAX as u64) as i64))
    }

    /// Whether a feature in `state`, last trained at `atime`, goes by age.
    pub fn due(&self, state: State, atime: i64) -> bool {
        let old = self.cutoff(self.max_age).is_some_and(|c| atime < c);
        let idle = self.cutoff(self.idle_max_age).is_some_and(|c| atime < c);
        old || (idle && state.0.abs() <= self.l1)
    }
}

/// The learner's weights in a shared store. Every user's are apart from every other
/// user's; the site's are the user `""`.
pub trait WeightStore: Send + Sync {
    /// The states `user` holds for those of `features` it has.
    fn weights(
        &self,
        user: &str,
        features: &[u64],
    ) -> impl Future<Output = Result<HashMap<u64, State>, BayesError>> + Send;
    /// Trains `user`'s weights of `features`: `step` gets their current states, `(0, 0)`
    /// for new ones, in the order of `features`, and gives the new states, which are
    /// written with the time now. On SQL the read and the write are one transaction; on
    /// Redis two nodes training the same feature at once may lose one step (online
    /// gradient descent shrugs that off, as asynchronous SGD does by design).
    fn train<F>(
        &self,
        user: &str,
        features: &[u64],
        step: F,
    ) -> impl Future<Output = Result<(), BayesError>> + Send
    where
        F: FnOnce(&[(u64, State)]) -> Vec<(u64, State)> + Send;
    /// Features with a state for `user`.
    fn weight_count(&self, user: &str) -> impl Future<Output = Result<u64, BayesError>> + Send;
    /// Removes `user`'s features as `purge` says; gives how many went.
    fn purge_weights(
        &self,
        user: &str,
        purge: &WeightPurge,
    ) -> impl Future<Output = Result<u64, BayesError>> + Send;
}

/// `features` with their states in `found`, `(0, 0)` for those it lacks, in order.
pub fn with_states(features: &[u64], found: &HashMap<u64, State>) -> Vec<(u64, State)> {
    features
        .iter()
        .map(|f| (*f, found.get(f).copied().unwrap_or_default()))
        .collect()
}

/// The learner's margins for a message with `features`: first the site's model alone (the
/// user `site`: the filter's is `""`), then for each of `users` the site's and the user's
/// together. The margins add: a user's
/// weights learn how the user's mail differs from what the site's say
/// ([`learn`] trains them so), and a user who trained nothing gets the site's answer.
pub async fn margins<S: WeightStore>(
    store: &S,
    params: &Params,
    site: &str,
    users: &[&str],
    features: &[u64],
) -> Result<Vec<f32>, BayesError> {
    let site = params.margin(store.weights(site, features).await?.into_values());
    let mut out = Vec::with_capacity(users.len() + 1);
    out.push(site);
    for user in users {
        let own = params.margin(store.weights(user, features).await?.into_values());
        out.push(site + own);
    }
    Ok(out)
}

/// One training step of `user`'s weights (the site's when it is `site`) on a message of
/// known class:
/// the gradient is that of the margin the message had for this user (the site's weights
/// included), so a user's weights move only as far as the site's were wrong for them.
pub async fn learn<S: WeightStore>(
    store: &S,
    params: &Params,
    site: &str,
    user: &str,
    features: &[u64],
    spam: bool,
) -> Result<(), BayesError> {
    let site = if user == site {
        0.0
    } else {
        params.margin(store.weights(site, features).await?.into_values())
    };
    store
        .train(user, features, |current| {
            let margin = site + params.margin(current.iter().map(|(_, s)| *s));
            params.step(margin, current, spam)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_features_go_and_idle_ones_only_while_weightless() {
        let p = WeightPurge {
            now: 1000,
            max_age: 500,
            idle_max_age: 100,
            l1: 0.1,
            max_rows: 0,
        };
        assert!(p.due((5.0, 1.0), 400), "older than max_age");
        assert!(!p.due((5.0, 1.0), 800), "weighs something");
        assert!(p.due((0.05, 1.0), 800), "idle and weightless");
        assert!(!p.due((0.05, 1.0), 950), "recently trained");
        let keep = WeightPurge {
            max_age: 0,
            idle_max_age: 0,
            ..p
        };
        assert!(!keep.due((0.0, 0.0), i64::MIN));
    }
}
