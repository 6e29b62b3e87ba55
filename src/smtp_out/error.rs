//! The outbound stage's one error type. Every variant is temporary: the next hop may come back,
//! so the message is answered 4xx and Postfix keeps it.

/// Why a delivery attempt failed as a whole (per-recipient refusals are not errors).
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Could not connect.
    #[error("cannot connect to {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: std::io::Error,
    },
    /// No reply (or no progress) in time.
    #[error("timed out {stage}")]
    Timeout { stage: &'static str },
    /// The connection failed or was closed.
    #[error("connection lost {stage}: {source}")]
    Io {
        stage: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The next hop answered something that is not an SMTP reply, or refused the session.
    #[error("{stage}: {detail}")]
    Protocol { stage: &'static str, detail: String },
    /// Our own spool could not be read.
    #[error("cannot read the spooled message: {0}")]
    Spool(std::io::Error),
}

impl ForwardError {
    /// Every variant is temporary (see the module comment): 4xx, Postfix keeps the mail.
    /// Refusals of single recipients are replies, not errors: a 5xx there is permanent and
    /// reported in a DSN by the reply contract.
    pub fn is_temporary(&self) -> bool {
        match self {
            ForwardError::Connect { .. }
            | ForwardError::Timeout { .. }
            | ForwardError::Io { .. }
            | ForwardError::Protocol { .. }
            | ForwardError::Spool(_) => true,
        }
    }

    /// The enhanced status code that best describes the failure (RFC 3463).
    pub fn status(&self) -> &'static str {
        match self {
            ForwardError::Connect { .. } => "4.4.1",
            ForwardError::Timeout { .. } => "4.4.2",
            ForwardError::Io { .. } => "4.4.2",
            ForwardError::Protocol { .. } => "4.5.0",
            ForwardError::Spool(_) => "4.3.0",
        }
    }
}
