//! The learner's weights in Redis, beside the user's token counts: the hash
//! `bayes:{USER}:w` from the feature's 8 bytes to 16 (`z` and `n` as little-endian f32, then
//! the time it was last trained as a little-endian i64).

use super::redis_store::{RedisStore, field, key};
use super::store::{BayesError, now};
use super::weights::{WeightPurge, WeightStore, with_states};
use crate::spam::logistic::State;
use std::collections::HashMap;

/// A hash field and its value, as HSCAN gives them.
type Pair = (Vec<u8>, Vec<u8>);

/// Fields deleted per HDEL: bounds how long one command holds Redis.
const DELETE_BATCH: usize = 1000;

fn encode((z, n): State, atime: i64) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..4].copy_from_slice(&z.to_le_bytes());
    v[4..8].copy_from_slice(&n.to_le_bytes());
    v[8..].copy_from_slice(&atime.to_le_bytes());
    v
}

/// A value's state and time; `None` for one of another shape (written by something else:
/// treated as absent rather than trusted).
fn decode(v: &[u8]) -> Option<(State, i64)> {
    let z = f32::from_le_bytes(v.get(..4)?.try_into().ok()?);
    let n = f32::from_le_bytes(v.get(4..8)?.try_into().ok()?);
    let at = i64::from_le_bytes(v.get(8..16)?.try_into().ok()?);
    (v.len() == 16).then_some(((z, n), at))
}

impl RedisStore {
    /// Every feature of `user` with its state and time.
    async fn all_weights(&self, user: &str) -> Result<Vec<(Vec<u8>, State, i64)>, BayesError> {
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut out = Vec::new();
        loop {
            let (next, page): (u64, Vec<Pair>) = redis::cmd("HSCAN")
                .arg(key(user, "w"))
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            out.extend(
                page.into_iter()
                    .filter_map(|(f, v)| decode(&v).map(|(s, at)| (f, s, at))),
            );
            if next == 0 {
                return Ok(out);
            }
            cursor = next;
        }
    }

    async fn delete_weights(&self, user: &str, fields: &[Vec<u8>]) -> Result<u64, BayesError> {
        let mut removed = 0;
        for batch in fields.chunks(DELETE_BATCH) {
            let mut conn = self.conn.clone();
            let n: u64 = redis::cmd("HDEL")
                .arg(key(user, "w"))
                .arg(batch)
                .query_async(&mut conn)
                .await?;
            removed += n;
        }
        Ok(removed)
    }
}

impl WeightStore for RedisStore {
    async fn weights(
        &self,
        user: &str,
        features: &[u64],
    ) -> Result<HashMap<u64, State>, BayesError> {
        if features.is_empty() {
            return Ok(HashMap::new());
        }
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(key(user, "w"));
        for f in features {
            cmd.arg(&field(*f)[..]);
        }
        let mut conn = self.conn.clone();
        let values: Vec<Option<Vec<u8>>> = cmd.query_async(&mut conn).await?;
        Ok(features
            .iter()
            .zip(values)
            .filter_map(|(f, v)| Some((*f, decode(&v?)?.0)))
            .collect())
    }

    async fn train<F>(&self, user: &str, features: &[u64], step: F) -> Result<(), BayesError>
    where
        F: FnOnce(&[(u64, State)]) -> Vec<(u64, State)> + Send,
    {
        let mut features = features.to_vec();
        features.sort_unstable();
        features.dedup();
        let found = self.weights(user, &features).await?;
        let new = step(&with_states(&features, &found));
        if new.is_empty() {
            return Ok(());
        }
        let at = now();
        let mut cmd = redis::cmd("HSET");
        cmd.arg(key(user, "w"));
        for (f, s) in &new {
            cmd.arg(&field(*f)[..]).arg(&encode(*s, at)[..]);
        }
        let mut conn = self.conn.clone();
        let _: u64 = cmd.query_async(&mut conn).await?;
        Ok(())
    }

    async fn weight_count(&self, user: &str) -> Result<u64, BayesError> {
        let mut conn = self.conn.clone();
        let n: u64 = redis::cmd("HLEN")
            .arg(key(user, "w"))
            .query_async(&mut conn)
            .await?;
        Ok(n)
    }

    async fn purge_weights(&self, user: &str, purge: &WeightPurge) -> Result<u64, BayesError> {
        let (due, mut kept): (Vec<_>, Vec<_>) = self
            .all_weights(user)
            .await?
            .into_iter()
            .partition(|(_, s, at)| purge.due(*s, *at));
        let mut fields: Vec<Vec<u8>> = due.into_iter().map(|(f, _, _)| f).collect();
        if purge.max_rows > 0 && kept.len() as u64 > purge.max_rows {
            let excess = kept.len() - purge.max_rows as usize;
            kept.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
            fields.extend(kept.into_iter().take(excess).map(|(f, _, _)| f));
        }
        self.delete_weights(user, &fields).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_odd_ones_are_ignored() {
        let v = encode((-1.5, 2.25), 1_700_000_000);
        assert_eq!(decode(&v), Some(((-1.5, 2.25), 1_700_000_000)));
        assert_eq!(decode(b"12"), None);
        assert_eq!(decode(&[0u8; 17]), None);
    }
}
