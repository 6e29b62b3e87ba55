//! Training the Bayes store from a front end (spamd's TELL, rspamd's `/learnspam` and
//! `/learnham`): the site's store, or a user's own when the front end names an address.

use super::Pipeline;
use crate::spam::{BayesError, Class, LearnError, Learnable, Learned};

impl Pipeline {
    /// Learns `message` as `class`, or forgets it (`None`), in the store of `user` (an
    /// address; its extension removed as `recipient_delimiter` says) or, without one that
    /// is an address, the site's.
    pub async fn learn(
        &self,
        user: Option<&str>,
        class: Option<Class>,
        message: Vec<u8>,
    ) -> Result<Learned, LearnError> {
        let (trainer, delimiter) = self.spam_trainer();
        let trainer = trainer.ok_or(LearnError::NoStore)?;
        let user = user
            .filter(|u| u.contains('@'))
            .map(|u| crate::spam::bayes_user(u, &delimiter))
            .unwrap_or_default();
        let msg = tokio::task::spawn_blocking(move || Learnable::of(&message))
            .await
            .map_err(|e| {
                LearnError::Failed(format!(
                    "internal error: {}",
                    crate::catch_panic::join_error_text(e)
                ))
            })?;
        let failed = |e: BayesError| LearnError::Failed(e.to_string());
        match class {
            Some(c) => trainer.learn(&user, c, &msg).await.map_err(failed),
            None => trainer.forget(&user, &msg).await.map_err(failed),
        }
    }
}
