//! The AV stage's one error type. Every variant means "not scanned": temporary by default
//! (451), or UNCHECKED where a policy says so; never "clean".

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
