//! The AV stage as the pipeline sees it: the configured scanners and name maps, built once
//! per configuration (clamd sessions live as long as it), turning a decoded message into the
//! plain [`VirusScan`] result.

use super::virus_names::{NameRule, classify, fakes_sender};
use super::{AnyScanner, ScanOptions, scan_parts};
use crate::decode::Decoded;
use crate::message::{VirusHit, VirusScan};

/// Scanners, options and the virus-name maps.
pub struct Engine {
    pub primary: Vec<AnyScanner>,
    pub backup: Vec<AnyScanner>,
    pub opts: ScanOptions,
    pub spam_rules: Vec<NameRule<Option<f64>>>,
    pub fake_rules: Vec<NameRule<bool>>,
}

/// What the stage hands on.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineResult {
    pub scan: VirusScan,
    /// Names that mean spam, with their scores.
    pub spam: Vec<(String, f64)>,
    /// A found virus forges its sender.
    pub fakes_sender: bool,
    /// Parts the scanner refused as too large.
    pub too_large: Vec<String>,
}

impl Engine {
    /// True when no scanner is configured (virus checks are off).
    pub fn is_empty(&self) -> bool {
        self.primary.is_empty() && self.backup.is_empty()
    }

    /// Scans `decoded`; names that mean spam are moved out of the hits.
    pub async fn scan(&self, decoded: &Decoded) -> EngineResult {
        if self.is_empty() {
            return EngineResult {
                scan: VirusScan::NotScanned,
                spam: Vec::new(),
                fakes_sender: false,
                too_large: Vec::new(),
            };
        }
        let report = match scan_parts(decoded, &self.primary, &self.backup, &self.opts).await {
            Ok(r) => r,
            Err(e) => {
                return EngineResult {
                    scan: VirusScan::Failed {
                        reason: e.to_string(),
                    },
                    spam: Vec::new(),
                    fakes_sender: false,
                    too_large: Vec::new(),
                };
            }
        };
        let mut hits = Vec::new();
        let mut spam = Vec::new();
        for (part, names) in report.infected {
            let (viruses, s) = classify(&names, &self.spam_rules);
            spam.extend(s);
            if !viruses.is_empty() {
                hits.push(VirusHit {
                    part,
                    names: viruses,
                });
            }
        }
        let all: Vec<String> = hits.iter().flat_map(|h| h.names.clone()).collect();
        EngineResult {
            fakes_sender: fakes_sender(&all, &self.fake_rules),
            too_large: report.too_large,
            scan: VirusScan::Done {
                scanner: report.scanner,
                objects: report.objects,
                hits,
                failed: report.failed,
            },
            spam,
        }
    }
}
