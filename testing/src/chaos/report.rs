//! The table a chaos run prints.

use super::account::Tally;
use super::faults::Injected;
use super::filter::Repairs;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Everything a run found.
#[derive(Debug)]
pub struct ChaosReport {
    pub tally: Tally,
    pub injected: Injected,
    pub elapsed: Duration,
    /// Seconds each start of the filter took until it listened.
    pub starts: Vec<f64>,
    /// What the filter's starts found and repaired after kills.
    pub repairs: Repairs,
    /// What the run could not do (a fault kind not available here).
    pub notes: Vec<String>,
    /// The SQL log used (without a password).
    pub sql: String,
    /// The run's folder (removed when the report is dropped).
    pub workdir: PathBuf,
}

impl ChaosReport {
    /// Whether the run passes: nothing lost, nothing inconsistent, no fault failed to apply.
    pub fn passed(&self) -> bool {
        self.tally.clean() && self.injected.errors.is_empty()
    }

    /// Faults injected in all.
    pub fn faults(&self) -> u64 {
        self.injected.counts.values().sum()
    }
}

fn row(f: &mut fmt::Formatter<'_>, label: &str, value: impl fmt::Display) -> fmt::Result {
    writeln!(f, "| {label} | {value} |")
}

/// The table of where the messages went.
fn messages_table(f: &mut fmt::Formatter<'_>, t: &Tally) -> fmt::Result {
    writeln!(f, "\n| messages | count |\n|---|---:|")?;
    row(f, "sent (distinct Message-IDs)", t.messages)?;
    row(f, "attempts", t.attempts)?;
    row(f, "2xx (accepted)", t.accepted)?;
    row(f, "4xx (retried)", t.deferred_4xx)?;
    row(f, "connection cut by a kill (retried)", t.cut_by_kill)?;
    row(
        f,
        "connection refused or cut otherwise (retried)",
        t.cut_other,
    )?;
    row(f, "client timeouts (retried)", t.client_timeouts)?;
    row(
        f,
        "5xx (bounced: next hop refused for good)",
        t.bounced_next_hop,
    )?;
    row(f, "5xx (bounced) in all", t.bounced)?;
    row(f, "delivered at the next hop", t.delivered)?;
    row(
        f,
        "quarantined (file or SQL copy, and its row), not delivered",
        t.quarantined,
    )?;
    row(f, "discarded by policy (SQL log)", t.discarded)?;
    row(
        f,
        "duplicates (kill, or reply lost after the final dot)",
        t.duplicates_allowed,
    )?;
    row(f, "**lost**", t.lost())?;
    row(
        f,
        "other mail at the next hop (notices, DSNs)",
        t.other_at_next_hop,
    )?;
    row(
        f,
        "SQL rows never completed (a kill, or SQL down at the end; kept, as amavisd-new)",
        t.interrupted_rows,
    )?;
    Ok(())
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        writeln!(
            f,
            "chaos run: {} messages, SQL {}, {:.0} s, {} faults",
            t.messages,
            self.sql,
            self.elapsed.as_secs_f64(),
            self.faults()
        )?;
        messages_table(f, t)?;
        writeln!(f, "\n| fault | injected |\n|---|---:|")?;
        for (fault, n) in &self.injected.counts {
            row(f, &fault.name(), n)?;
        }
        if let (Some(first), Some(max)) = (
            self.starts.first(),
            self.starts.iter().copied().reduce(f64::max),
        ) {
            write!(
                f,
                "\nfilter starts: {} (first {first:.1} s to listening",
                self.starts.len()
            )?;
            let later = &self.starts[1..];
            if !later.is_empty() {
                let mean = later.iter().sum::<f64>() / later.len() as f64;
                write!(f, ", later ones {mean:.1} s on average, {max:.1} s at most")?;
            }
            writeln!(f, ")")?;
        }
        let r = &self.repairs;
        writeln!(
            f,
            "repaired at restarts: {} interrupted messages in the SQL log ({} quarantined \
             copies recorded), {} temporary files swept",
            r.interrupted, r.quarantine_recorded, r.temp_files_swept
        )?;
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        for e in &self.injected.errors {
            writeln!(f, "FAULT NOT APPLIED: {e}")?;
        }
        for (what, items) in &self.tally.problems {
            let shown: Vec<&str> = items.iter().take(5).map(String::as_str).collect();
            writeln!(f, "PROBLEM: {what}: {} ({})", items.len(), shown.join(", "))?;
        }
        writeln!(
            f,
            "{}",
            if self.passed() {
                "PASSED: nothing lost"
            } else {
                "FAILED"
            }
        )
    }
}
