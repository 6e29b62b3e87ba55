//! Virus scanners. One [`Scanner`] trait; adapters for clamd (here) and, later, command-line
//! scanners. A scanner that fails or times out is an error the verdict maps to 451 or
//! UNCHECKED by policy, never a clean result.

mod clamd;
mod error;

pub use clamd::{Clamd, ClamdTarget};
pub use error::AvError;

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
