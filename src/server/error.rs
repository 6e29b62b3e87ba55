//! The server stage's one error type.

use std::path::PathBuf;

/// Why the daemon could not start or be controlled.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Bind(std::io::Error),
    #[error("cannot create {dir}: {source}")]
    Dir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pid file {path}: {source}")]
    PidFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("amavisd is already running as pid {pid} (pid file {pid_file})")]
    AlreadyRunning { pid: i32, pid_file: PathBuf },
    #[error("amavisd is not running (no live process in pid file {0})")]
    NotRunning(PathBuf),
    #[error("cannot install signal handlers: {0}")]
    Signal(std::io::Error),
    #[error("cannot start the daemon: {0}")]
    Spawn(String),
    #[error("cannot run as the configured user: {0}")]
    Privileges(String),
    #[error("process {pid} did not stop within {secs} s")]
    StopTimeout { pid: i32, secs: u64 },
}
