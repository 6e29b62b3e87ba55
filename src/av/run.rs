//! Running the configured scanners over a decoded message.
//!
//! What is scanned: every leaf part, and every container we could not open (the scanner may
//! know the format: arj, chm, OLE ...), each once however often it occurs (by SHA-256), empty
//! parts skipped. Opened containers are not sent: their content already is, decoded.
//!
//! Which scanners: the primaries in order; the first that scans every object without failing
//! gives the result. Backups run only when every primary failed. When all fail, the error is
//! returned: the message is not clean, it is unscanned (451 or UNCHECKED, by policy).

use super::{AvError, Clamd, CommandScanner, ScanVerdict, Scanner};
use crate::decode::Decoded;
use std::collections::HashSet;

/// Any of the adapters, so that lists can mix them.
pub enum AnyScanner {
    Clamd(Clamd),
    Command(CommandScanner),
}

impl AnyScanner {
    fn name(&self) -> &str {
        match self {
            AnyScanner::Clamd(s) => s.name(),
            AnyScanner::Command(s) => s.name(),
        }
    }

    /// Whether the scanner can scan, and what it is: clamd's version and signature date, or
    /// the command's program as found on the PATH.
    pub async fn probe(&self) -> Result<String, AvError> {
        match self {
            AnyScanner::Clamd(s) => {
                let at = match s.target() {
                    super::ClamdTarget::Unix(p) => p.display().to_string(),
                    super::ClamdTarget::Tcp(a) => a.to_string(),
                };
                s.version().await.map(|v| format!("{at}: {v}"))
            }
            AnyScanner::Command(s) => s.probe(),
        }
    }

    /// The scanner's name.
    pub fn label(&self) -> &str {
        self.name()
    }

    /// The largest object the scanner accepts, if it has a limit.
    fn max_object(&self) -> Option<u64> {
        match self {
            AnyScanner::Clamd(s) => Some(s.stream_max_length()),
            AnyScanner::Command(_) => None,
        }
    }

    async fn scan(&self, data: &[u8]) -> Result<ScanVerdict, AvError> {
        match self {
            AnyScanner::Clamd(s) => s.scan(data).await,
            AnyScanner::Command(s) => s.scan(data).await,
        }
    }
}

/// How scanning runs.
#[derive(Debug, Clone, Copy)]
pub struct ScanOptions {
    /// Stop at the first infected object (amavisd-new's `$first_infected_stops_scan`).
    pub first_infected_stops_scan: bool,
}

/// The result of scanning one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvReport {
    /// The scanner whose result this is.
    pub scanner: String,
    /// Infected parts (ids) with the virus names found in them.
    pub infected: Vec<(String, Vec<String>)>,
    /// Objects sent to the scanner (after removing duplicates).
    pub objects: usize,
    /// Scanners that failed before this one, with why.
    pub failed: Vec<String>,
    /// Parts the scanner refused as too large (clamd's StreamMaxLength): not scanned, so
    /// the message is UNCHECKED (over limits) and its destiny decides, rather than a failure
    /// that would defer the message until it expires.
    pub too_large: Vec<String>,
}

/// Indices of the parts to scan.
fn objects(decoded: &Decoded) -> Vec<usize> {
    let mut seen = HashSet::new();
    decoded
        .parts
        .iter()
        .enumerate()
        .filter(|(_, p)| (!p.opened || p.undecipherable.is_some()) && p.size > 0)
        .filter(|(_, p)| seen.insert(p.digest.clone()))
        .map(|(i, _)| i)
        .collect()
}

/// Scans the parts of `decoded` with the first scanner that does not fail.
pub async fn scan_parts(
    decoded: &Decoded,
    primary: &[AnyScanner],
    backup: &[AnyScanner],
    opts: &ScanOptions,
) -> Result<AvReport, AvError> {
    let todo = objects(decoded);
    let mut failed = Vec::new();
    let mut last_err = None;
    for scanner in primary.iter().chain(backup) {
        match run_one(scanner, decoded, &todo, opts).await {
            Ok((infected, too_large)) => {
                return Ok(AvReport {
                    scanner: scanner.name().to_string(),
                    infected,
                    objects: todo.len(),
                    failed,
                    too_large,
                });
            }
            Err(e) => {
                failed.push(e.to_string());
                last_err = Some(e);
            }
        }
    }
    Err(last_err.unwrap_or(AvError::Protocol {
        scanner: "none".into(),
        answer: "no virus scanner is configured".into(),
    }))
}

/// Infected parts with their names, and parts too large for the scanner.
type Found = (Vec<(String, Vec<String>)>, Vec<String>);

async fn run_one(
    scanner: &AnyScanner,
    decoded: &Decoded,
    todo: &[usize],
    opts: &ScanOptions,
) -> Result<Found, AvError> {
    let mut infected = Vec::new();
    let mut too_large = Vec::new();
    for &i in todo {
        let part = &decoded.parts[i];
        if scanner.max_object().is_some_and(|max| part.size > max) {
            // Refused at every try: UNCHECKED, not a failure (see AvError::is_temporary).
            too_large.push(part.id.clone());
            continue;
        }
        // A part in a file is large: its copy waits for room in the process's budget.
        let _budget = match &part.data {
            crate::decode::PartData::File(_) => Some(crate::message::budget::hold(part.size).await),
            crate::decode::PartData::Memory(_) => None,
        };
        let bytes = part.data.to_vec().map_err(|source| AvError::Io {
            scanner: scanner.name().to_string(),
            source,
        })?;
        match scanner.scan(&bytes).await {
            Ok(ScanVerdict::Infected(names)) => {
                infected.push((part.id.clone(), names));
                if opts.first_infected_stops_scan {
                    break;
                }
            }
            Ok(ScanVerdict::Clean) => {}
            Err(e) if !e.is_temporary() => too_large.push(part.id.clone()),
            Err(e) => return Err(e),
        }
    }
    Ok((infected, too_large))
}
