//! What a killed predecessor left behind, found at start: temporary files in `tempdir` and
//! half-written quarantine files (see `message::temp`). Reported in the log; never a
//! reason not to start.

use crate::config::ValidConfig;
use crate::message::temp::{self, Swept};
use std::path::Path;

/// Sweeps `tempdir` and the quarantine folder (with its one level of subfolders).
pub fn sweep(cfg: &ValidConfig) {
    report(&cfg.tempdir, temp::sweep(&cfg.tempdir));
    let quarantine = &cfg.quarantine.directory;
    if !quarantine.is_dir() {
        return;
    }
    report(quarantine, temp::sweep_hidden(quarantine));
    let Ok(entries) = std::fs::read_dir(quarantine) else {
        return;
    };
    for sub in entries.flatten() {
        if sub.file_type().is_ok_and(|t| t.is_dir()) {
            report(&sub.path(), temp::sweep_hidden(&sub.path()));
        }
    }
}

fn report(dir: &Path, result: std::io::Result<Swept>) {
    match result {
        Ok(s) if s.files > 0 => tracing::warn!(
            "removed {} temporary files ({} bytes) left in {} by processes that are gone",
            s.files,
            s.bytes,
            dir.display()
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(
            "cannot look for leftover temporary files in {}: {e}",
            dir.display()
        ),
    }
}

/// Repairs the SQL log rows a previous process of this host left half-written (see
/// `pipeline::repair`), and says what it found. Runs beside serving: `started` is this
/// start's second, and this process's own messages in flight are told apart by their log id.
pub async fn repair_sql(pipeline: std::sync::Arc<crate::pipeline::Pipeline>, started: i64) {
    match pipeline.repair_interrupted(started).await {
        None => {}
        Some(Ok(r)) if r.interrupted == 0 => {}
        Some(Ok(r)) => tracing::warn!(
            "SQL log: {} messages of this host were interrupted before their end (their \
             senders retry them; the msgs rows stay with content NULL, as in amavisd-new); \
             {} had a quarantined copy, now recorded so that it can be released",
            r.interrupted,
            r.quarantined
        ),
        Some(Err(e)) => tracing::warn!("SQL log: cannot look for interrupted messages: {e}"),
    }
}
