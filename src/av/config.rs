//! The `[av]` table: which scanners, in which order, and how each is reached.

use super::virus_names::{
    FakeSenderSpec, SpamScoreSpec, default_fake_sender_specs, default_spam_score_specs,
    fake_sender_rules, spam_score_rules,
};
use super::{AnyScanner, Clamd, ClamdTarget, CommandScanner, Engine, ScanOptions};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Scanner lists and options.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AvConfig {
    /// Stop at the first infected part (amavisd-new's `$first_infected_stops_scan`).
    pub first_infected_stops_scan: bool,
    /// Tried in order; the first that does not fail gives the result (`@av_scanners`).
    pub primary: Vec<ScannerConfig>,
    /// Tried only when every primary failed (`@av_scanners_backup`).
    pub backup: Vec<ScannerConfig>,
    /// Names that mean spam, not a virus (`@virus_name_to_spam_score_maps`).
    pub virus_name_spam_scores: Vec<SpamScoreSpec>,
    /// Names of viruses that forge the sender (`@viruses_that_fake_sender_maps`).
    pub viruses_that_fake_sender: Vec<FakeSenderSpec>,
}

impl Default for AvConfig {
    fn default() -> Self {
        AvConfig {
            first_infected_stops_scan: true,
            primary: vec![ScannerConfig {
                name: "ClamAV-clamd".into(),
                kind: Kind::Clamd,
                socket: Some(PathBuf::from("/var/run/clamav/clamd.ctl")),
                tcp: None,
                program: None,
                args: Vec::new(),
                clean_codes: Vec::new(),
                infected_codes: Vec::new(),
                name_regex: None,
                timeout: 60,
                max_sessions: default_max_sessions(),
                stream_max_length: default_stream_max_length(),
            }],
            backup: Vec::new(),
            virus_name_spam_scores: default_spam_score_specs(),
            viruses_that_fake_sender: default_fake_sender_specs(),
        }
    }
}

/// A scanner's kind.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Clamd,
    Command,
}

/// One scanner. `clamd` needs `socket` or `tcp`; `command` needs `program`, `args` (with `{}`
/// for the file), `clean_codes`, `infected_codes` and `name_regex`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScannerConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub socket: Option<PathBuf>,
    pub tcp: Option<SocketAddr>,
    pub program: Option<PathBuf>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub clean_codes: Vec<i32>,
    #[serde(default)]
    pub infected_codes: Vec<i32>,
    pub name_regex: Option<String>,
    /// Seconds one object may take.
    pub timeout: u64,
    /// clamd: sessions open at once (default `clamd::DEFAULT_MAX_SESSIONS`).
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// clamd: its StreamMaxLength in bytes. A larger object is not sent (clamd would refuse
    /// it half-way); it makes the message UNCHECKED instead.
    #[serde(default = "default_stream_max_length")]
    pub stream_max_length: u64,
}

fn default_max_sessions() -> usize {
    super::clamd::DEFAULT_MAX_SESSIONS
}

fn default_stream_max_length() -> u64 {
    super::clamd::DEFAULT_STREAM_MAX_LENGTH
}

impl ScannerConfig {
    fn build(&self, tempdir: &Path) -> Result<AnyScanner, String> {
        if self.timeout == 0 {
            return Err("timeout must be greater than 0".into());
        }
        if self.max_sessions == 0 {
            return Err("max_sessions must be greater than 0".into());
        }
        if self.stream_max_length == 0 {
            return Err("stream_max_length must be greater than 0".into());
        }
        let timeout = Duration::from_secs(self.timeout);
        match self.kind {
            Kind::Clamd => {
                let target = match (&self.socket, self.tcp) {
                    (Some(p), None) => ClamdTarget::Unix(p.clone()),
                    (None, Some(a)) => ClamdTarget::Tcp(a),
                    _ => {
                        return Err("a clamd scanner needs exactly one of `socket` or `tcp`".into());
                    }
                };
                Ok(AnyScanner::Clamd(
                    Clamd::new(target, timeout)
                        .named(&self.name)
                        .with_max_sessions(self.max_sessions)
                        .with_stream_max_length(self.stream_max_length),
                ))
            }
            Kind::Command => {
                let program = self
                    .program
                    .clone()
                    .ok_or("a command scanner needs `program`")?;
                if !self.args.iter().any(|a| a.contains("{}")) {
                    return Err("`args` must contain {} where the file goes".into());
                }
                if self.infected_codes.is_empty() || self.clean_codes.is_empty() {
                    return Err("give `clean_codes` and `infected_codes`".into());
                }
                let re = self
                    .name_regex
                    .as_deref()
                    .ok_or("a command scanner needs `name_regex`")?;
                let name_regex =
                    regex::Regex::new(re).map_err(|e| format!("bad name_regex: {e}"))?;
                Ok(AnyScanner::Command(CommandScanner {
                    name: self.name.clone(),
                    program,
                    args: self.args.clone(),
                    clean_codes: self.clean_codes.clone(),
                    infected_codes: self.infected_codes.clone(),
                    name_regex,
                    timeout,
                    tempdir: tempdir.to_path_buf(),
                }))
            }
        }
    }
}

impl AvConfig {
    /// This `[av]` with `overrides` (a policy bank's `av` table, at key path `at`) over it:
    /// its keys replace these (a list as a whole), as amavisd-new's
    /// `$policy_bank{NAME}{av_scanners}` replaces `@av_scanners`. The error is `(key path,
    /// reason)`.
    pub fn overlaid(
        &self,
        at: &str,
        overrides: &toml::Value,
    ) -> Result<AvConfig, (String, String)> {
        let toml::Value::Table(overrides) = overrides else {
            return Err((at.to_string(), "must be a table of [av] keys".into()));
        };
        let mut merged =
            toml::Table::try_from(self).map_err(|e| ("av".to_string(), e.to_string()))?;
        for (k, v) in overrides {
            merged.insert(k.clone(), v.clone());
        }
        serde_path_to_error::deserialize(toml::Value::Table(merged))
            .map_err(|e| (format!("{at}.{}", e.path()), e.into_inner().to_string()))
    }

    /// Builds the AV stage: scanner lists and name maps; the error is `(key path, reason)`.
    pub fn build(&self, tempdir: &Path) -> Result<Engine, (String, String)> {
        let list = |which: &str, v: &[ScannerConfig]| {
            v.iter()
                .enumerate()
                .map(|(i, s)| s.build(tempdir).map_err(|e| (format!("{which}[{i}]"), e)))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Engine {
            primary: list("primary", &self.primary)?,
            backup: list("backup", &self.backup)?,
            opts: ScanOptions {
                first_infected_stops_scan: self.first_infected_stops_scan,
            },
            spam_rules: spam_score_rules(&self.virus_name_spam_scores)
                .map_err(|(i, e)| (format!("virus_name_spam_scores[{i}]"), e))?,
            fake_rules: fake_sender_rules(&self.viruses_that_fake_sender)
                .map_err(|(i, e)| (format!("viruses_that_fake_sender[{i}]"), e))?,
        })
    }
}
