//! The one place where a configuration as read becomes one the filter may run with: derived
//! defaults filled in, then every value that would make the filter unsafe or could not work
//! refused, naming the file, the key and the reason. Each stage validates its own section
//! (`Limits::validate`, `SqlConfig::validate` ...); this file walks them in order and adds
//! the checks that span sections.

use super::{Config, ConfigError, ForwardMethod, is_field_name, system_hostname};
use std::path::{Path, PathBuf};

/// A configuration that passed validation, and the file it came from: the only kind the
/// filter's stages are built from. It reads as the [`Config`] it holds; changing a value
/// means validating again ([`ValidConfig::into_raw`], then [`Config::validate`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidConfig {
    cfg: Config,
    source: PathBuf,
}

impl ValidConfig {
    /// The file this configuration was read from, for errors found when it is built.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The configuration as read, to change and validate again.
    pub fn into_raw(self) -> Config {
        self.cfg
    }
}

impl std::ops::Deref for ValidConfig {
    type Target = Config;
    fn deref(&self) -> &Config {
        &self.cfg
    }
}

/// A refused value: `(key path, reason)`.
type Refusal = (String, String);

/// Prefixes a stage's key with its section.
fn under<K: std::fmt::Display>(section: &str) -> impl Fn((K, String)) -> Refusal + '_ {
    move |(k, r)| (format!("{section}.{k}"), r)
}

impl Config {
    /// Fills the derived defaults and refuses values that would make the filter unsafe;
    /// `file` names the source in errors.
    pub fn validate(mut self, file: &Path) -> Result<ValidConfig, ConfigError> {
        self.fill_defaults();
        let bad = |(key, reason): Refusal| ConfigError::Key {
            file: file.to_path_buf(),
            key,
            reason,
        };
        self.check_names().map_err(bad)?;
        self.check_listeners().map_err(bad)?;
        self.check_sections().map_err(bad)?;
        self.check_rule_set_names().map_err(bad)?;
        self.check_scanners().map_err(bad)?;
        self.notify.templates()?;
        self.check_sockets_and_spam().map_err(bad)?;
        self.check_log_and_headers().map_err(bad)?;
        Ok(ValidConfig {
            cfg: self,
            source: file.to_path_buf(),
        })
    }

    fn fill_defaults(&mut self) {
        if self.myhostname.is_empty() {
            self.myhostname = system_hostname();
        }
        if self.mydomain.is_empty() {
            self.mydomain = match self.myhostname.split_once('.') {
                Some((_, rest)) if rest.contains('.') || !rest.is_empty() => rest.to_string(),
                _ => self.myhostname.clone(),
            };
        }
    }

    fn check_names(&self) -> Result<(), Refusal> {
        for (name, v) in [
            ("myhostname", &self.myhostname),
            ("mydomain", &self.mydomain),
        ] {
            if v.is_empty()
                || v.bytes()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
            {
                return Err((name.into(), format!("{v:?} is not a host name")));
            }
        }
        let id = &self.dkim.authserv_id;
        if id
            .bytes()
            .any(|b| !b.is_ascii_graphic() || b"();\"".contains(&b))
        {
            return Err((
                "dkim.authserv_id".into(),
                format!("{id:?} is not a token (RFC 8601 2.5)"),
            ));
        }
        Ok(())
    }

    fn check_listeners(&self) -> Result<(), Refusal> {
        if self.listen.is_empty() {
            return Err(("listen".into(), "at least one listener is needed".into()));
        }
        for (i, l) in self.listen.iter().enumerate() {
            match (&l.inet, &l.unix) {
                (Some(a), None) if a.parse::<std::net::SocketAddr>().is_err() => {
                    return Err((
                        format!("listen[{i}].inet"),
                        format!("{a:?} is not addr:port (IPv6 as [::1]:10024)"),
                    ));
                }
                (Some(_), None) | (None, Some(_)) => {}
                _ => {
                    return Err((
                        format!("listen[{i}]"),
                        "give exactly one of `inet` or `unix`".into(),
                    ));
                }
            }
        }
        for (i, m) in self.milter.iter().enumerate() {
            m.check().map_err(|(key, why)| {
                let at = if key.is_empty() {
                    format!("milter[{i}]")
                } else {
                    format!("milter[{i}].{key}")
                };
                (at, why)
            })?;
        }
        self.http
            .check()
            .map_err(|(key, why)| (format!("http.{key}"), why))?;
        ForwardMethod::parse(&self.forward_method).map_err(|r| ("forward_method".into(), r))?;
        if !self.notify_method.is_empty() {
            ForwardMethod::parse(&self.notify_method).map_err(|r| ("notify_method".into(), r))?;
        }
        self.metrics
            .address()
            .map_err(|e| ("metrics.listen".into(), e))?;
        Ok(())
    }

    /// Each stage's own section.
    fn check_sections(&self) -> Result<(), Refusal> {
        self.dkim.validate().map_err(under("dkim"))?;
        self.dns.validate().map_err(under("dns"))?;
        self.limits.validate().map_err(under("limits"))?;
        self.forward.validate().map_err(under("forward"))?;
        self.decode.validate().map_err(under("decode"))?;
        self.sql.validate().map_err(under("sql"))?;
        self.release.validate().map_err(under("release"))?;
        if self.quarantine.subdir_levels > 1 {
            return Err((
                "quarantine.subdir_levels".into(),
                "0 or 1 (a subfolder per first character of the mail_id)".into(),
            ));
        }
        Ok(())
    }

    /// Every `banned_rules` names a rule set of `[banned]`, and the policies compile.
    fn check_rule_set_names(&self) -> Result<(), Refusal> {
        let sets = self.banned.compile().map_err(under("banned"))?;
        let missing = |n: &str| (!sets.contains_key(n)).then(|| n.to_string());
        if let Some(n) = missing(&self.policy.banned_rules) {
            return Err((
                "policy.banned_rules".into(),
                format!("no rule set named {n:?} in [banned]"),
            ));
        }
        self.policies()?;
        let tables = self
            .policy_bank
            .iter()
            .map(|(n, t)| (format!("policy_bank.{n}"), t))
            .chain(
                self.recipients
                    .iter()
                    .map(|(k, t)| (format!("recipients.\"{k}\""), t)),
            )
            .chain(
                self.recipient_regex
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (format!("recipient_regex[{i}]"), &r.settings)),
            );
        for (at, t) in tables {
            let named = t.get("banned_rules").and_then(|v| v.as_str());
            if let Some(n) = named.and_then(missing) {
                return Err((
                    format!("{at}.banned_rules"),
                    format!("no rule set named {n:?} in [banned]"),
                ));
            }
        }
        Ok(())
    }

    /// The virus scanners of `[av]` and of every policy bank with its own.
    fn check_scanners(&self) -> Result<(), Refusal> {
        self.av.build(&self.tempdir).map_err(under("av"))?;
        for (name, av) in self.bank_scanners()? {
            av.build(&self.tempdir)
                .map_err(under(&format!("policy_bank.{name}.av")))?;
        }
        Ok(())
    }

    fn check_sockets_and_spam(&self) -> Result<(), Refusal> {
        let release = &self.release.unix;
        if let Some(i) = self
            .listen
            .iter()
            .position(|l| l.unix.as_ref() == Some(release))
        {
            return Err((
                "release.unix".into(),
                format!("{release:?} is also listen[{i}].unix"),
            ));
        }
        if self.spam.bayes_store.is_empty() {
            for (key, to) in [
                ("bayes_report_spam_to", &self.spam.bayes_report_spam_to),
                ("bayes_report_ham_to", &self.spam.bayes_report_ham_to),
            ] {
                if !to.is_empty() {
                    return Err((
                        format!("spam.{key}"),
                        "a report address needs a Bayes store (spam.bayes_store)".into(),
                    ));
                }
            }
            if self.spam.learner {
                return Err((
                    "spam.learner".into(),
                    "the learner keeps its weights in the Bayes store (spam.bayes_store)".into(),
                ));
            }
        }
        if let Some(s) = self.spam.learner_scores.iter().find(|s| !s.is_finite()) {
            return Err(("spam.learner_scores".into(), format!("{s} is not a score")));
        }
        Ok(())
    }

    fn check_log_and_headers(&self) -> Result<(), Refusal> {
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err((
                "log.level".into(),
                format!(
                    "{:?} is not a log filter (error, warn, info, debug, trace)",
                    self.log.level
                ),
            ));
        }
        let tag = &self.headers.x_header_tag;
        if !tag.is_empty() && !is_field_name(tag) {
            return Err((
                "headers.x_header_tag".into(),
                format!("{tag:?} is not a header field name"),
            ));
        }
        if self
            .headers
            .x_header_line
            .bytes()
            .any(|b| b == b'\r' || b == b'\n')
        {
            return Err(("headers.x_header_line".into(), "must be one line".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every refusal names the file, the key and the reason.
    #[test]
    fn refusals_name_file_key_and_reason() {
        // (configuration text, key named, words of the reason)
        let cases = [
            (
                "myhostname = \"mx example\"",
                "myhostname",
                "not a host name",
            ),
            (
                "[dkim]\nauthserv_id = \"a;b\"",
                "dkim.authserv_id",
                "not a token",
            ),
            ("listen = []", "listen", "at least one listener"),
            (
                "[[listen]]\ninet = \"x\"",
                "listen[0].inet",
                "not addr:port",
            ),
            ("notify_method = \"x\"", "notify_method", "expected smtp"),
            (
                "[forward]\nconnect_timeout = 0",
                "forward.connect_timeout",
                "greater than 0",
            ),
            (
                "[quarantine]\nsubdir_levels = 2",
                "quarantine.subdir_levels",
                "0 or 1",
            ),
            (
                "[policy]\nbanned_rules = \"NONE\"",
                "policy.banned_rules",
                "no rule set",
            ),
            (
                "[spam]\nbayes_store = \"\"\nbayes_report_spam_to = \"spam@example.com\"",
                "spam.bayes_report_spam_to",
                "needs a Bayes store",
            ),
            (
                "[spam]\nbayes_store = \"\"\nlearner = true",
                "spam.learner",
                "Bayes store",
            ),
            ("[log]\nlevel = \"loud[\"", "log.level", "not a log filter"),
            (
                "[headers]\nx_header_tag = \"a b\"",
                "headers.x_header_tag",
                "not a header",
            ),
        ];
        for (text, key, why) in cases {
            let e = Config::from_toml(Path::new("site.toml"), text)
                .expect_err(text)
                .to_string();
            assert!(e.contains("site.toml"), "{text}: {e}");
            assert!(e.contains(key), "{text}: {e}");
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn the_file_is_kept_for_later_errors() {
        let c = Config::from_toml(Path::new("site.toml"), "").unwrap();
        assert_eq!(c.source(), Path::new("site.toml"));
    }
}
