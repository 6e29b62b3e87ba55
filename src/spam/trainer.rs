//! Everything that teaches the statistical engines: [`Trainer`] learns messages into the
//! Bayes store (and, with `spam.learner`, the learner's weights beside it) for the site and
//! per user, from reports, releases, autolearn and `amavisd-learn`, and purges the store;
//! [`Learnable`] is a message as they learn it.

use super::bayes::shared::SharedStore;
use super::bayes::store::{self as bayes_store, BayesError, Purge, TokenStore};
use super::bayes::weights::{self, WeightPurge, WeightStore};
use super::bayes::{self, Class, Learned, MessageKey, sources};
use super::learner::Learner;
use super::logistic::features;
use super::view::MessageView;
use crate::message::Spool;
use std::sync::Arc;

/// A message as the engines learn it: its key, its hashed tokens (Bayes) and its learner
/// features.
#[derive(Debug, Clone)]
pub struct Learnable {
    pub(super) key: MessageKey,
    pub(super) tokens: Vec<u64>,
    /// The learner's features: tokens, bias, and the rules' hits when the
    /// message was scanned ([`Learnable::with_hits`]); a message learned from a file was
    /// not, and teaches the weights of its text only.
    pub(super) features: Vec<u64>,
}

impl Learnable {
    /// `raw` parsed as the rules parse it. CPU work: call it off the async threads for
    /// large messages.
    pub fn of(raw: &[u8]) -> Learnable {
        let view = MessageView::new(raw, "");
        Learnable::of_view(&view, raw, true)
    }

    /// A parsed message; its learner features made only when `learner` (they cost about as
    /// much as the tokens).
    pub(super) fn of_view(view: &MessageView, raw: &[u8], learner: bool) -> Learnable {
        let tokens = bayes::tokens::hashed(view);
        let features = if learner {
            features::base(view, &tokens)
        } else {
            Vec::new()
        };
        Learnable {
            key: bayes::message_key(view, raw),
            tokens,
            features,
        }
    }

    /// The same with the learner features of the rules a scan hit added.
    pub(super) fn with_hits(mut self, hits: &[super::scan::Hit]) -> Learnable {
        if !self.features.is_empty() {
            features::extend(&mut self.features, super::learner::hit_features(hits));
        }
        self
    }
}

/// Teaches the Bayes store: the site's (user `""`) and per-user stores.
#[derive(Clone)]
pub struct Trainer {
    pub(super) store: Arc<SharedStore>,
    pub(super) min_learned: u64,
    /// The learner, when `spam.learner` is on: trained beside Bayes.
    pub(super) learner: Option<Learner>,
}

impl Trainer {
    /// The store at `url` (`sqlite:`, `postgres:`, `mysql:`, `redis:`); a store classifies
    /// once it holds `min_learned` messages of each class.
    pub fn new(url: &str, min_learned: u64) -> Result<Trainer, BayesError> {
        Ok(Trainer {
            store: Arc::new(SharedStore::new(url)?),
            min_learned,
            learner: None,
        })
    }

    /// The store at `url`, connected (and its tables made) now: for tools that want to know
    /// at once whether it answers.
    pub async fn open(url: &str, min_learned: u64) -> Result<Trainer, BayesError> {
        Ok(Trainer {
            store: Arc::new(SharedStore::open(url).await?),
            min_learned,
            learner: None,
        })
    }

    /// The same trainer teaching `learner` too.
    pub fn with_learner(mut self, learner: Option<Learner>) -> Trainer {
        self.learner = learner;
        self
    }

    /// The learner it teaches, if any.
    pub fn learner(&self) -> Option<&Learner> {
        self.learner.as_ref()
    }

    /// Learns `msg` as `class` into `user`'s store; with the learner on, a message Bayes
    /// counted (new, or moved to the other class) is a training step of `user`'s weights
    /// too. Bayes decides: learning a message twice changes neither. A step that fails after
    /// Bayes counted the message is only logged: that one step is lost, not the message.
    pub async fn learn(
        &self,
        user: &str,
        class: Class,
        msg: &Learnable,
    ) -> Result<Learned, BayesError> {
        let learned = self.store.learn(user, &msg.key, class, &msg.tokens).await?;
        if let (Some(l), Learned::New | Learned::Flipped) = (&self.learner, learned)
            && !msg.features.is_empty()
        {
            let spam = class == Class::Spam;
            if let Err(e) = weights::learn(
                self.store.as_ref(),
                &l.params,
                "",
                user,
                &msg.features,
                spam,
            )
            .await
            {
                tracing::warn!("learner: training {user:?} failed: {e}");
            }
        }
        Ok(learned)
    }

    /// Forgets `msg` from `user`'s store, whichever class it was learned as. The learner's
    /// weights keep what they learned from it: an online step cannot be taken back exactly,
    /// and the next messages correct it.
    pub async fn forget(&self, user: &str, msg: &Learnable) -> Result<Learned, BayesError> {
        self.store.forget(user, &msg.key, &msg.tokens).await
    }

    /// The spam and ham messages `user`'s store has learned.
    pub async fn totals(&self, user: &str) -> Result<(u64, u64), BayesError> {
        self.store.totals(user).await
    }

    /// Learns the messages a report carries (dspam's `spam-USER@`: forwarded or attached)
    /// as `class` into `user`'s store; gives how many changed it.
    pub async fn learn_reported(
        &self,
        user: &str,
        class: Class,
        report: Arc<Spool>,
    ) -> Result<usize, BayesError> {
        // Read and parsed off the async threads, without copying a report held in memory.
        let learnables = tokio::task::spawn_blocking(move || {
            let raw = report
                .to_bytes_blocking()
                .map_err(|e| BayesError::Task(format!("the spooled report cannot be read: {e}")))?;
            Ok::<_, BayesError>(
                sources::reported(&raw)
                    .iter()
                    .map(|m| Learnable::of(m))
                    .collect::<Vec<_>>(),
            )
        })
        .await
        .map_err(|e| BayesError::Task(crate::catch_panic::join_error_text(e)))??;
        let mut changed = 0;
        for msg in &learnables {
            if matches!(
                self.learn(user, class, msg).await?,
                Learned::New | Learned::Flipped
            ) {
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// Purges every user's tokens as `purge` says, and with the learner on their weights
    /// as `weights` says; gives (users, tokens and features removed).
    pub async fn purge(
        &self,
        purge: &Purge,
        weights: &WeightPurge,
    ) -> Result<(u64, u64), BayesError> {
        let (users, mut removed) = bayes_store::purge_all(self.store.as_ref(), purge).await?;
        if self.learner.is_some() {
            for u in self.store.users().await? {
                removed += self.store.purge_weights(&u, weights).await?;
            }
        }
        Ok((users, removed))
    }

    /// Features the learner holds for `user`.
    pub async fn weight_count(&self, user: &str) -> Result<u64, BayesError> {
        self.store.weight_count(user).await
    }

    /// Purges `user`'s tokens (and with the learner on, weights); gives how many went.
    pub async fn purge_user(
        &self,
        user: &str,
        purge: &Purge,
        weights: &WeightPurge,
    ) -> Result<u64, BayesError> {
        let mut removed = self.store.purge(user, purge).await?;
        if self.learner.is_some() {
            removed += self.store.purge_weights(user, weights).await?;
        }
        Ok(removed)
    }
}
