//! The configuration stage's one error type.

use std::path::PathBuf;

/// Why a configuration file was refused. Each variant names the file; key errors name the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{file}: TOML syntax error: {reason}")]
    Syntax { file: PathBuf, reason: String },
    /// A key is unknown, has the wrong type, or a value we refuse.
    #[error("{file}: key `{key}`: {reason}")]
    Key {
        file: PathBuf,
        key: String,
        reason: String,
    },
}
