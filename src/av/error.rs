//! The AV stage's one error type. Every variant means "not scanned", never "clean".
//! [`AvError::is_temporary`] says which: a scanner that is down, hangs or answers nonsense may
//! answer at the next try, so the message waits (451, unless a policy says UNCHECKED); an
//! object larger than the scanner accepts is refused at every try, so it is UNCHECKED at
//! once and its destiny decides, never a deferral that repeats until the message expires.

/// Why an object could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum AvError {
    #[error("{scanner}: cannot connect: {source}")]
    Connect {
        scanner: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{scanner}: no answer within {secs} s")]
    Timeout { scanner: String, secs: u64 },
    #[error("{scanner}: connection failed: {source}")]
    Io {
        scanner: String,
        #[source]
        source: std::io::Error,
    },
    /// clamd's StreamMaxLength was reached: the object is larger than clamd accepts.
    #[error("{scanner}: object larger than the scanner accepts (INSTREAM size limit exceeded)")]
    SizeLimit { scanner: String },
    #[error("{scanner}: unexpected answer {answer:?}")]
    Protocol { scanner: String, answer: String },
}

impl AvError {
    /// True when the same object may scan at a later try (the message waits); false when it
    /// never will (the object is UNCHECKED).
    pub fn is_temporary(&self) -> bool {
        !matches!(self, AvError::SizeLimit { .. })
    }
}
