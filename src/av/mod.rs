//! Virus scanners. One [`Scanner`] trait; adapters for clamd and command-line scanners, the
//! driver that runs them over a message's parts, and the [`Engine`] the pipeline calls. A
//! scanner that fails or times out is an error the verdict maps to 451 or UNCHECKED by
//! policy, never a clean result.

mod clamd;
mod command;
mod config;
mod engine;
mod error;
mod run;
pub mod virus_names;

pub use clamd::{Clamd, ClamdTarget, DEFAULT_STREAM_MAX_LENGTH};
pub use command::CommandScanner;
pub use config::{AvConfig, Kind as ScannerKind, ScannerConfig};
pub use engine::{Engine, EngineResult};
pub use error::AvError;
pub use run::{AnyScanner, AvReport, ScanOptions, scan_parts};

use std::future::Future;

/// What a scanner found in one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanVerdict {
    Clean,
    /// Virus names, as the scanner reported them.
    Infected(Vec<String>),
}

/// A virus scanner that looks at bytes.
pub trait Scanner: Send + Sync {
    /// The scanner's name for logs (`ClamAV-clamd`).
    fn name(&self) -> &str;

    /// Scans one object.
    fn scan(&self, data: &[u8]) -> impl Future<Output = Result<ScanVerdict, AvError>> + Send;
}
