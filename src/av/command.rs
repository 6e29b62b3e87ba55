//! A command-line scanner (amavisd-new's `@av_scanners` entries with a program path): the
//! object is written to a temporary file, the program run on it with `{}` in its arguments
//! replaced by the path, and its exit code and output read. `clamscan` is the example:
//!
//! ```toml
//! program = "clamscan"
//! args = ["--no-summary", "{}"]
//! clean_codes = [0]
//! infected_codes = [1]
//! name_regex = '^.*?: (.+) FOUND$'
//! ```

use super::{AvError, ScanVerdict, Scanner};
use regex::Regex;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// A scanner run as a program per object.
pub struct CommandScanner {
    pub name: String,
    pub program: PathBuf,
    /// Arguments; `{}` stands for the object's file.
    pub args: Vec<String>,
    /// Exit codes that mean clean, and infected; anything else is a failure.
    pub clean_codes: Vec<i32>,
    pub infected_codes: Vec<i32>,
    /// Extracts a virus name from each output line (first capture group).
    pub name_regex: Regex,
    pub timeout: Duration,
    pub tempdir: PathBuf,
}

impl CommandScanner {
    /// The program as the scan will run it: a path, or found on the PATH; an error when it
    /// is not there or not executable.
    pub fn probe(&self) -> Result<String, AvError> {
        use std::os::unix::fs::PermissionsExt;
        let executable = |p: &std::path::Path| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        };
        let found = if self.program.components().count() > 1 {
            Some(self.program.clone()).filter(|p| executable(p))
        } else {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|d| d.join(&self.program))
                    .find(|p| executable(p))
            })
        };
        found
            .map(|p| format!("program {}", p.display()))
            .ok_or_else(|| AvError::Connect {
                scanner: self.name.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "{} is not an executable program here",
                        self.program.display()
                    ),
                ),
            })
    }

    fn fail(&self, why: String) -> AvError {
        AvError::Protocol {
            scanner: self.name.clone(),
            answer: why,
        }
    }
}

impl Scanner for CommandScanner {
    fn name(&self) -> &str {
        &self.name
    }

    async fn scan(&self, data: &[u8]) -> Result<ScanVerdict, AvError> {
        let io = |source| AvError::Io {
            scanner: self.name.clone(),
            source,
        };
        let mut file = tempfile::Builder::new()
            .prefix(&crate::message::temp::prefix("scan"))
            .tempfile_in(&self.tempdir)
            .map_err(io)?;
        file.write_all(data).map_err(io)?;
        file.flush().map_err(io)?;
        let path = file.path().to_string_lossy().into_owned();
        let args: Vec<String> = self.args.iter().map(|a| a.replace("{}", &path)).collect();
        let child = tokio::process::Command::new(&self.program)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = match tokio::time::timeout(self.timeout, child).await {
            Err(_) => {
                return Err(AvError::Timeout {
                    scanner: self.name.clone(),
                    secs: self.timeout.as_secs(),
                });
            }
            Ok(Err(source)) => {
                return Err(AvError::Connect {
                    scanner: self.name.clone(),
                    source,
                });
            }
            Ok(Ok(o)) => o,
        };
        let code = out.status.code().unwrap_or(-1);
        if self.clean_codes.contains(&code) {
            return Ok(ScanVerdict::Clean);
        }
        if self.infected_codes.contains(&code) {
            let text = String::from_utf8_lossy(&out.stdout);
            let names: Vec<String> = text
                .lines()
                .filter_map(|l| self.name_regex.captures(l))
                .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
                .collect();
            let names = if names.is_empty() {
                vec!["unknown (no name in the scanner's output)".to_string()]
            } else {
                names
            };
            return Ok(ScanVerdict::Infected(names));
        }
        let err = String::from_utf8_lossy(&out.stderr);
        Err(self.fail(format!(
            "exit code {code}: {}",
            err.trim().chars().take(200).collect::<String>()
        )))
    }
}
