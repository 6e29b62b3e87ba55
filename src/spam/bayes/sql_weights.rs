//! The learner's weights in SQL (SQLite or PostgreSQL), in the Bayes store's database:
//! table `learner_weight`, a row per user and feature with its FTRL state and the time it
//! was last trained. Lookups on SQLite are done in place by the scanning thread
//! (`sqlite_reader`), as the token lookups are.

use super::sql_store::{LOOKUP_BATCH, SqlStore, unique};
use super::store::{BayesError, now};
use super::weights::{WeightPurge, WeightStore, with_states};
use crate::spam::logistic::State;
use crate::sql::Dialect;
use sqlx::{AssertSqlSafe, Row};
use std::collections::HashMap;

/// The table. DOUBLE PRECISION rather than REAL: SQLite keeps every real as a double, and
/// one column type on both databases reads back through sqlx's `Any` driver alike.
pub(super) const WEIGHT_TABLE: &str = "CREATE TABLE IF NOT EXISTS learner_weight \
     (username VARCHAR(200) NOT NULL, feature BIGINT NOT NULL, z DOUBLE PRECISION NOT NULL, \
     n DOUBLE PRECISION NOT NULL, atime BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (username, feature))";

/// Features written per statement (five parameters each: far below SQLite's 32,766 and
/// PostgreSQL's 65,535).
const WRITE_BATCH: usize = 500;

impl SqlStore {
    /// The states of those of `features` `user` holds, read on `conn` (a transaction's,
    /// when training).
    async fn server_weights(
        &self,
        conn: &mut sqlx::AnyConnection,
        user: &str,
        features: &[u64],
    ) -> Result<HashMap<u64, State>, BayesError> {
        let mut found = HashMap::new();
        for batch in features.chunks(LOOKUP_BATCH) {
            let marks = vec!["?"; batch.len()].join(",");
            let sql = self.dialect.sql(&format!(
                "SELECT feature, z, n FROM learner_weight WHERE username = ? AND feature IN ({marks})"
            ));
            // Unnamed on PostgreSQL, for the reason `server_counts` gives.
            let mut q = sqlx::query(AssertSqlSafe(sql))
                .persistent(self.dialect != Dialect::Postgres)
                .bind(user);
            for f in batch {
                q = q.bind(*f as i64);
            }
            for r in q.fetch_all(&mut *conn).await? {
                let f: i64 = r.try_get(0)?;
                let z: f64 = r.try_get(1)?;
                let n: f64 = r.try_get(2)?;
                found.insert(f as u64, (z as f32, n as f32));
            }
        }
        Ok(found)
    }
}

impl WeightStore for SqlStore {
    async fn weights(
        &self,
        user: &str,
        features: &[u64],
    ) -> Result<HashMap<u64, State>, BayesError> {
        self.ready().await?;
        match &self.reader {
            Some(r) => Ok(r.weights(user, features)?),
            None => {
                let mut conn = self.pool.acquire().await?;
                self.server_weights(&mut conn, user, features).await
            }
        }
    }

    async fn train<F>(&self, user: &str, features: &[u64], step: F) -> Result<(), BayesError>
    where
        F: FnOnce(&[(u64, State)]) -> Vec<(u64, State)> + Send,
    {
        self.ready().await?;
        let features = unique(features);
        let mut tx = self.begin().await?;
        let found = self.server_weights(&mut tx, user, &features).await?;
        let new = step(&with_states(&features, &found));
        let at = now();
        for batch in new.chunks(WRITE_BATCH) {
            let rows = vec!["(?, ?, ?, ?, ?)"; batch.len()].join(", ");
            let sql = self.dialect.sql(&format!(
                "INSERT INTO learner_weight (username, feature, z, n, atime) VALUES {rows} \
                 ON CONFLICT (username, feature) DO UPDATE SET z = excluded.z, n = excluded.n, \
                 atime = excluded.atime"
            ));
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for &(f, (z, n)) in batch {
                q = q
                    .bind(user)
                    .bind(f as i64)
                    .bind(f64::from(z))
                    .bind(f64::from(n))
                    .bind(at);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn weight_count(&self, user: &str) -> Result<u64, BayesError> {
        self.rows_of("learner_weight", user).await
    }

    async fn purge_weights(&self, user: &str, purge: &WeightPurge) -> Result<u64, BayesError> {
        self.ready().await?;
        let d = self.dialect;
        let mut removed = 0;
        if let Some(before) = purge.cutoff(purge.max_age) {
            removed += sqlx::query(AssertSqlSafe(
                d.sql("DELETE FROM learner_weight WHERE username = ? AND atime < ?"),
            ))
            .bind(user)
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        if let Some(before) = purge.cutoff(purge.idle_max_age) {
            removed += sqlx::query(AssertSqlSafe(d.sql(
                "DELETE FROM learner_weight WHERE username = ? AND atime < ? AND z <= ? AND z >= ?",
            )))
            .bind(user)
            .bind(before)
            .bind(f64::from(purge.l1))
            .bind(-f64::from(purge.l1))
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        removed += self
            .keep_newest("learner_weight", "feature", user, purge.max_rows)
            .await?;
        Ok(removed)
    }
}
