//! After a kill: rows of the SQL log that a previous process of this host began and never
//! completed (see `sql::interrupted`). Those whose message was quarantined are pointed at
//! their copy, so that it can be found and released; the rest are counted and left, as
//! amavisd-new leaves them (its maintenance deletes rows with `content` NULL after an hour).

use super::Pipeline;
use crate::message::Category;
use crate::quarantine::Method;
use std::collections::HashSet;

/// What a repair found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Repaired {
    /// Rows begun and never completed.
    pub interrupted: usize,
    /// Of those, rows now pointing at their quarantined copy.
    pub quarantined: usize,
}

impl Pipeline {
    /// Repairs the rows this host began up to second `started` (this process's start),
    /// its own messages in flight left out. `None` without an SQL log.
    pub async fn repair_interrupted(&self, started: i64) -> Option<Result<Repaired, String>> {
        let st = self.state.load_full();
        let store = st.store.as_deref()?;
        let run = async {
            let rows = store.interrupted(&st.cfg.myhostname, started).await?;
            let ids: Vec<String> = rows
                .into_iter()
                .filter(|r| !super::log_line::is_own_am_id(&r.am_id))
                .map(|r| r.mail_id)
                .collect();
            let mut done = Repaired {
                interrupted: ids.len(),
                quarantined: 0,
            };
            if ids.is_empty() {
                return Ok(done);
            }
            let set: HashSet<String> = ids.iter().cloned().collect();
            let qcfg = st.cfg.quarantine.clone();
            let files =
                tokio::task::spawn_blocking(move || crate::quarantine::find_copies(&qcfg, &set))
                    .await
                    .unwrap_or_default();
            for id in &ids {
                let copy = match files.get(id) {
                    Some((t, rel)) => Some((*t, rel.clone())),
                    None if store.in_sql_quarantine(id).await? => Some(('Q', id.clone())),
                    None => None,
                };
                if let Some((quar_type, loc)) = copy {
                    let content = category_of(&st.cfg.policy, id, &loc).map(Category::sql_letter);
                    store
                        .record_quarantine(id, content, quar_type, &loc)
                        .await?;
                    done.quarantined += 1;
                }
                store.mark_interrupted(id).await?;
            }
            Ok::<_, crate::sql::SqlError>(done)
        };
        Some(run.await.map_err(|e| e.to_string()))
    }
}

/// The category whose quarantine method (in `[policy]`) names this copy: the file name the
/// method gives for `mail_id`, or SQL for `quar_loc` = mail_id. `None` when no method of
/// `[policy]` does (a bank or a per-recipient setting chose it).
fn category_of(policy: &crate::policy_bank::Policy, mail_id: &str, loc: &str) -> Option<Category> {
    let name = loc.rsplit('/').next().unwrap_or(loc);
    [
        Category::Virus,
        Category::Banned,
        Category::Spam,
        Category::BadHeader,
        Category::Unchecked,
        Category::Oversized,
    ]
    .into_iter()
    .find(|&c| match Method::parse(policy.quarantine_method(c)) {
        Ok(Method::Local(pattern)) => pattern.replace("%m", mail_id) == name,
        Ok(Method::Sql) => loc == mail_id,
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_category_comes_from_the_method_that_names_the_file() {
        let policy = crate::policy_bank::Policy::default();
        let id = "Abc123xyz-_9";
        assert_eq!(
            category_of(&policy, id, "virus-Abc123xyz-_9"),
            Some(Category::Virus)
        );
        assert_eq!(
            category_of(&policy, id, "A/spam-Abc123xyz-_9.gz"),
            Some(Category::Spam)
        );
        assert_eq!(category_of(&policy, id, "custom-Abc123xyz-_9"), None);
    }
}
