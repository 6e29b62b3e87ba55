//! The accounting of a chaos run, per Message-ID: what the client was told, what the next
//! hop received, what the SQL log and the quarantine folder hold, and from those the one
//! place each message ended up. A message answered 2xx that is neither delivered, nor
//! quarantined, nor discarded by policy is **lost**.

use super::client::Fate;
use super::mail::{ChaosMessage, Kind};
use crate::sink::Received;
use amavisd::sql::dialect::{Dialect, bin_column};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// One `msgs` row of the run (joined with its `msgrcpt` row, if any).
#[derive(Debug, Clone)]
pub struct SqlRow {
    pub message_id: String,
    pub mail_id: String,
    /// NULL: the attempt was interrupted (the process was killed before its end).
    pub content: Option<String>,
    pub quar_type: String,
    pub quar_loc: String,
    /// The recipient's destiny letter (P pass, D discard, B bounce, R reject, T tempfail).
    pub ds: Option<String>,
}

/// The run's rows: those whose Message-ID starts with `prefix`.
pub async fn sql_rows(url: &str, prefix: &str) -> Result<Vec<SqlRow>, String> {
    sqlx::any::install_default_drivers();
    let d = Dialect::of(url).ok_or_else(|| format!("unknown database URL {url}"))?;
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let sql = d.sql(&format!(
        "SELECT m.message_id, m.mail_id, {}, {}, m.quar_loc, {} FROM msgs m \
         LEFT JOIN msgrcpt r ON r.partition_tag = m.partition_tag AND r.mail_id = m.mail_id \
         WHERE m.message_id LIKE ?",
        d.text("m.content"),
        d.text("m.quar_type"),
        d.text("r.ds")
    ));
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(format!("<{prefix}%"))
        .fetch_all(&pool)
        .await
        .map_err(|e| format!("reading msgs: {e}"))?;
    pool.close().await;
    let text = |r: &sqlx::any::AnyRow, i| r.try_get::<Option<String>, _>(i).ok().flatten();
    Ok(rows
        .iter()
        .map(|r| SqlRow {
            message_id: text(r, 0).unwrap_or_default(),
            mail_id: String::from_utf8_lossy(&bin_column(r, 1)).into_owned(),
            content: text(r, 2).filter(|c| !c.trim().is_empty()),
            quar_type: text(r, 3).unwrap_or_default().trim().to_string(),
            quar_loc: String::from_utf8_lossy(&bin_column(r, 4)).into_owned(),
            ds: text(r, 5),
        })
        .collect())
}

/// The Message-ID (without brackets) of a message the next hop received.
fn message_id(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    text.lines()
        .take_while(|l| !l.is_empty())
        .find(|l| l.len() > 11 && l[..11].eq_ignore_ascii_case("message-id:"))
        .map(|l| l[11..].trim().trim_matches(['<', '>']).to_string())
}

/// Regular files under `dir` (one level of subfolders), by path relative to it; hidden files
/// (temporary, being written) apart.
pub fn files_in(dir: &Path) -> (Vec<String>, Vec<String>) {
    let (mut files, mut hidden) = (Vec::new(), Vec::new());
    let mut walk = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, rel)) = walk.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            match e.file_type() {
                Ok(t) if t.is_dir() && rel.is_empty() => walk.push((e.path(), path)),
                Ok(t) if t.is_file() && name.starts_with('.') => hidden.push(path),
                Ok(t) if t.is_file() => files.push(path),
                _ => {}
            }
        }
    }
    (files, hidden)
}

/// Where the messages ended up, and what is wrong.
#[derive(Debug, Default)]
pub struct Tally {
    pub messages: usize,
    pub attempts: u64,
    pub accepted: usize,
    pub deferred_4xx: u64,
    pub cut_by_kill: u64,
    pub cut_other: u64,
    pub client_timeouts: u64,
    pub bounced: usize,
    pub bounced_next_hop: usize,
    pub delivered: usize,
    pub quarantined: usize,
    pub discarded: usize,
    pub duplicates_allowed: usize,
    pub other_at_next_hop: usize,
    pub interrupted_rows: usize,
    /// Problems, each a list of Message-IDs or paths (empty in a good run).
    pub problems: BTreeMap<&'static str, Vec<String>>,
}

impl Tally {
    fn problem(&mut self, what: &'static str, item: String) {
        self.problems.entry(what).or_default().push(item);
    }

    /// Messages lost: answered 2xx and found nowhere.
    pub fn lost(&self) -> usize {
        self.problems.get(LOST).map_or(0, Vec::len)
    }

    /// Whether the run found nothing wrong.
    pub fn clean(&self) -> bool {
        self.problems.values().all(Vec::is_empty)
    }
}

const LOST: &str = "lost (2xx, then found nowhere)";

/// Texts the sink gives when it refuses for good: a 5xx carrying one is a rightful bounce.
const NEXT_HOP_REFUSALS: [&str; 4] = [
    "sink says no",
    "User unknown",
    "sink data refused",
    "for good",
];

/// What the run saw, gathered after the filter has stopped.
pub struct Evidence<'a> {
    pub messages: &'a [ChaosMessage],
    pub fates: &'a [Fate],
    pub received: &'a [Received],
    pub rows: &'a [SqlRow],
    /// Each node's quarantine folder and tempdir.
    pub quarantine_dirs: &'a [PathBuf],
    pub tempdirs: &'a [PathBuf],
    /// Message-IDs whose next hop may have taken a copy without the filter hearing its 250.
    pub unsure_after_dot: &'a HashSet<String>,
}

/// Accounts for every message and checks that the SQL log, the quarantine folder and
/// tempdir agree with each other.
pub fn tally(ev: &Evidence<'_>) -> Tally {
    let mut t = Tally {
        messages: ev.messages.len(),
        ..Tally::default()
    };
    let mut at_next_hop: HashMap<String, usize> = HashMap::new();
    for r in ev.received {
        match message_id(&r.data) {
            Some(id) if ev.messages.iter().any(|m| m.id == id) => {
                *at_next_hop.entry(id).or_default() += 1
            }
            _ => t.other_at_next_hop += 1,
        }
    }
    let mut rows_of: HashMap<String, Vec<&SqlRow>> = HashMap::new();
    for r in ev.rows {
        let id = r.message_id.trim_matches(['<', '>']).to_string();
        rows_of.entry(id).or_default().push(r);
        t.interrupted_rows += usize::from(r.content.is_none() && r.quar_loc.is_empty());
    }
    let (mut files, mut hidden) = (Vec::new(), Vec::new());
    for d in ev.quarantine_dirs {
        let (f, h) = files_in(d);
        files.extend(f);
        hidden.extend(h);
    }
    for (m, fate) in ev.messages.iter().zip(ev.fates) {
        let rows = rows_of.get(&m.id).map(Vec::as_slice).unwrap_or(&[]);
        let delivered = at_next_hop.get(&m.id).copied().unwrap_or(0);
        let unsure = ev.unsure_after_dot.contains(&m.id);
        account_one(&mut t, m, fate, (delivered, unsure), rows, &files);
    }
    check_files(&mut t, ev.rows, &files, &hidden, ev.tempdirs);
    t
}

fn account_one(
    t: &mut Tally,
    m: &ChaosMessage,
    fate: &Fate,
    (delivered, unsure_after_dot): (usize, bool),
    rows: &[&SqlRow],
    files: &[String],
) {
    t.attempts += u64::from(fate.tries);
    t.deferred_4xx += u64::from(fate.deferred_4xx);
    t.cut_by_kill += u64::from(fate.cut_by_kill);
    t.cut_other += u64::from(fate.cut_other);
    t.client_timeouts += u64::from(fate.timeouts);
    let quarantined: HashSet<&str> = rows
        .iter()
        .filter(|r| match r.quar_type.as_str() {
            "F" => files.contains(&r.quar_loc),
            "Q" => !r.quar_loc.is_empty(),
            _ => false,
        })
        .map(|r| r.mail_id.as_str())
        .collect();
    let discarded = rows
        .iter()
        .any(|r| r.content.is_some() && matches!(r.ds.as_deref(), Some("D" | "B")));
    if delivered > 0 && m.kind != Kind::Clean {
        t.problem("virus or banned delivered", m.id.clone());
    }
    if fate.bounced() {
        t.bounced += 1;
        let reply = fate.done.clone().unwrap_or_default();
        if NEXT_HOP_REFUSALS.iter().any(|s| reply.contains(s)) {
            t.bounced_next_hop += 1;
        } else {
            t.problem(
                "5xx without a permanent cause",
                format!("{}: {reply}", m.id),
            );
        }
        if delivered > 0 {
            // The next hop took a copy whose 250 never reached the filter, and a later try
            // was refused: the sender's bounce is wrong, and SMTP cannot tell. Allowed only
            // with such a lost reply on record.
            if fate.cut_by_kill > 0 || unsure_after_dot {
                t.duplicates_allowed += 1;
            } else {
                t.problem("bounced, yet delivered", m.id.clone());
            }
        }
        return;
    }
    if !fate.accepted() {
        let why = fate.last_error.as_deref().unwrap_or("never tried");
        t.problem("never answered 2xx or 5xx", format!("{}: {why}", m.id));
        return;
    }
    t.accepted += 1;
    if delivered > 0 {
        t.delivered += 1;
    } else if !quarantined.is_empty() {
        t.quarantined += 1;
    } else if discarded {
        t.discarded += 1;
    } else {
        t.problem(LOST, m.id.clone());
    }
    let copies = delivered + quarantined.len();
    if copies > 1 {
        if fate.cut_by_kill > 0 || fate.timeouts > 0 || unsure_after_dot {
            t.duplicates_allowed += 1;
        } else {
            t.problem("duplicate without a kill or a lost reply", m.id.clone());
        }
    }
}

fn check_files(
    t: &mut Tally,
    rows: &[SqlRow],
    files: &[String],
    hidden: &[String],
    tmp: &[PathBuf],
) {
    let recorded: HashSet<&str> = rows
        .iter()
        .filter(|r| r.quar_type == "F")
        .map(|r| r.quar_loc.as_str())
        .collect();
    for f in files {
        if !recorded.contains(f.as_str()) {
            t.problem("quarantine file without its SQL row", f.clone());
        }
    }
    for r in rows
        .iter()
        .filter(|r| r.quar_type == "F" && !r.quar_loc.is_empty())
    {
        if !files.contains(&r.quar_loc) {
            t.problem("SQL row without its quarantine file", r.quar_loc.clone());
        }
    }
    for h in hidden {
        t.problem("temporary file left in the quarantine", h.clone());
    }
    for d in tmp {
        let (left, hidden_tmp) = files_in(d);
        for f in left.into_iter().chain(hidden_tmp) {
            t.problem("temporary file left in tempdir", f);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::chaos::mail::messages;

    fn received(id: &str) -> Received {
        Received {
            data: format!("Message-ID: <{id}>\r\nSubject: x\r\n\r\n").into_bytes(),
            ..Received::default()
        }
    }

    fn accepted() -> Fate {
        Fate {
            done: Some("250 2.0.0 Ok".into()),
            tries: 1,
            ..Fate::default()
        }
    }

    #[test]
    fn finds_the_lost_the_duplicated_and_the_delivered_virus() {
        let dir = tempfile::tempdir().unwrap();
        let m = messages("t", 8, &[]);
        let mut fates = vec![accepted(); 8];
        fates[3].cut_by_kill = 1;
        // 0, 1: delivered; 2: lost; 3: twice, after a kill (allowed); 4: twice, no reason;
        // 5: bounced by the next hop; 6: never answered; 7 is the virus: delivered.
        let got: Vec<Received> = [0, 1, 3, 3, 4, 4, 7]
            .iter()
            .map(|i| received(&m[*i].id))
            .collect();
        fates[5].done = Some("554 5.7.1 from MTA: 554 5.7.1 sink says no".into());
        fates[6].done = None;
        let unsure = HashSet::new();
        let t = tally(&Evidence {
            messages: &m,
            fates: &fates,
            received: &got,
            rows: &[],
            quarantine_dirs: &[dir.path().to_path_buf()],
            tempdirs: &[dir.path().to_path_buf()],
            unsure_after_dot: &unsure,
        });
        assert_eq!(t.lost(), 1, "{t:?}");
        assert_eq!(t.problems[LOST], vec![m[2].id.clone()]);
        assert_eq!(t.duplicates_allowed, 1);
        assert_eq!(
            t.problems["duplicate without a kill or a lost reply"],
            vec![m[4].id.clone()]
        );
        assert_eq!(t.bounced_next_hop, 1);
        assert_eq!(t.problems["never answered 2xx or 5xx"].len(), 1);
        assert_eq!(
            t.problems["virus or banned delivered"],
            vec![m[7].id.clone()]
        );
        assert!(!t.clean());
    }

    #[test]
    fn quarantine_files_and_rows_must_match() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("virus-abc"), b"x").unwrap();
        std::fs::write(dir.path().join(".amavis-quarantine-1-x"), b"x").unwrap();
        let m = messages("q", 1, &[]);
        let row = |loc: &str| SqlRow {
            message_id: format!("<{}>", m[0].id),
            mail_id: loc.into(),
            content: Some("V".into()),
            quar_type: "F".into(),
            quar_loc: loc.into(),
            ds: Some("D".into()),
        };
        let rows = vec![row("virus-abc"), row("virus-gone")];
        let unsure = HashSet::new();
        let t = tally(&Evidence {
            messages: &m,
            fates: &[accepted()],
            received: &[],
            rows: &rows,
            quarantine_dirs: &[dir.path().to_path_buf()],
            tempdirs: &[dir.path().join("none")],
            unsure_after_dot: &unsure,
        });
        assert_eq!(t.quarantined, 1);
        assert_eq!(t.lost(), 0);
        assert_eq!(
            t.problems["SQL row without its quarantine file"],
            vec!["virus-gone"]
        );
        assert_eq!(t.problems["temporary file left in the quarantine"].len(), 1);
    }
}
