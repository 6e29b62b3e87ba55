//! Configuration: one TOML file (`etc/amavisd.toml`), read into [`Config`].
//!
//! Every key has a default written beside it in `etc/amavisd.toml`, and the reason for each limit
//! sits next to the field below. Unknown keys are refused (`deny_unknown_fields`), and every error
//! names the file, the key path and the reason, so an administrator never has to guess which line
//! of the file is wrong. Semantic checks (a limit of zero, a malformed `forward_method`) happen in
//! [`Config::validate`] after serde has accepted the shapes.

mod error;
mod validate;

pub use validate::ValidConfig;

pub use crate::smtp_in::config::{Limits, ListenProtocol, Listener};
pub use crate::smtp_out::config::{ForwardLimits, ForwardMethod, ForwardTarget};
pub use error::ConfigError;

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The key of a policy bank's own `[av]` settings: the scanners, not a policy key.
pub const BANK_AV_KEY: &str = "av";

/// Header fields added to passed mail.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Headers {
    /// Add our own `Received:` trace field (amavisd-new does, when it forwards the mail itself).
    pub add_received: bool,
    /// Name of the scanned-by field; amavisd-new's `$X_HEADER_TAG`. Empty: no such field.
    pub x_header_tag: String,
    /// Its body; amavisd-new's `$X_HEADER_LINE`. `%d` is replaced by `mydomain`.
    pub x_header_line: String,
}

impl Default for Headers {
    fn default() -> Self {
        Self {
            add_received: true,
            x_header_tag: "X-Virus-Scanned".into(),
            x_header_line: "amavisd-rs at %d".into(),
        }
    }
}

/// Notices to admins and recipients.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Notify {
    /// A folder with `notify_admin.txt` and `notify_recipient.txt`; empty: the built-in
    /// templates (the ones in `etc/templates/`).
    pub templates_dir: PathBuf,
}

/// The notice templates in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Templates {
    pub admin: String,
    pub recipient: String,
}

impl Notify {
    /// Reads the templates; the error names the file.
    pub fn templates(&self) -> Result<Templates, ConfigError> {
        if self.templates_dir.as_os_str().is_empty() {
            return Ok(Templates {
                admin: include_str!("../../etc/templates/notify_admin.txt").into(),
                recipient: include_str!("../../etc/templates/notify_recipient.txt").into(),
            });
        }
        let read = |name: &str| {
            let file = self.templates_dir.join(name);
            std::fs::read_to_string(&file).map_err(|source| ConfigError::Read { file, source })
        };
        Ok(Templates {
            admin: read("notify_admin.txt")?,
            recipient: read("notify_recipient.txt")?,
        })
    }
}

/// Logging.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// A `tracing` filter such as `info` or `amavisd=debug`; `RUST_LOG` overrides it.
    pub level: String,
    /// Where `amavisd start` sends the daemon's log; `foreground` logs to stderr.
    pub file: PathBuf,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            level: "info".into(),
            file: PathBuf::from("var/amavisd.log"),
        }
    }
}

/// The whole configuration as read: the file's values over the defaults. The filter runs
/// only on a [`ValidConfig`], which [`Config::validate`] makes of it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Our host name in greetings, EHLO and `Received:`; empty means the system's host name.
    pub myhostname: String,
    /// The site's domain, for `X-Virus-Scanned` and DSNs; empty means `myhostname` less its
    /// first label.
    pub mydomain: String,
    /// Listening sockets. Default: `127.0.0.1:10024`, protocol auto.
    pub listen: Vec<Listener>,
    /// Milter listeners (before-queue filtering); none by default.
    pub milter: Vec<crate::milter::MilterListener>,
    /// rspamd's HTTP protocol; off by default.
    pub http: crate::http::HttpConfig,
    /// Where passed mail goes: `smtp:[127.0.0.1]:10025`, `lmtp:[host]:port` or `lmtp:unix:/path`.
    pub forward_method: String,
    /// Where DSNs we generate go; empty means `forward_method`.
    pub notify_method: String,
    /// Folder for messages spooled to disk and other temporary files (amavisd-new's `$TEMPBASE`).
    pub tempdir: PathBuf,
    /// The daemon writes its process id here; `stop`, `reload` and `status` read it.
    pub pid_file: PathBuf,
    /// Messages decoded and scanned (banned rules, spam) at once; 0: one per CPU core.
    /// The threads share the rules' regex caches and each keeps some scratch space, so this,
    /// not the number of sessions, bounds the memory scanning takes; more sessions wait.
    pub scan_threads: usize,
    /// Run as this user once the sockets are bound (amavisd-new's `$daemon_user`); empty:
    /// as whoever started us.
    pub user: String,
    /// ... and this group (`$daemon_group`); empty: the user's primary group.
    pub group: String,
    /// Inbound limits.
    pub limits: Limits,
    /// Outbound (reinjection) limits and connection cache.
    pub forward: ForwardLimits,
    /// Decoder limits (MIME depth, archives, quotas).
    pub decode: crate::decode::Limits,
    /// Banned file rules.
    pub banned: crate::banned::BannedConfig,
    /// Virus scanners.
    pub av: crate::av::AvConfig,
    /// The embedded spam engine.
    pub spam: crate::spam::SpamConfig,
    /// The Prometheus endpoint.
    pub metrics: crate::stats::MetricsConfig,
    /// DKIM verification, signing and keys.
    pub dkim: crate::dkim::DkimConfig,
    /// The resolver of the network checks (DNS blocklists).
    pub dns: crate::dns::DnsConfig,
    /// What happens to checked mail (destinies, lovers, bypasses, spam levels, tags ...).
    pub policy: crate::policy_bank::Policy,
    /// Policy banks: tables of `[policy]` keys that override them.
    pub policy_bank: BTreeMap<String, toml::Table>,
    /// Which banks load for a message, by port, socket, client network or sender.
    pub policy_bank_select: Vec<crate::policy_bank::BankSelect>,
    /// The networks of our own users (`@mynetworks`): their mail loads the MYNETS bank.
    pub mynetworks: Vec<String>,
    /// Per-recipient settings by lookup key (`user@dom`, `user@`, `dom`, `.dom`, `.`).
    pub recipients: BTreeMap<String, toml::Table>,
    /// Per-recipient settings by regular expression, after `recipients`.
    pub recipient_regex: Vec<crate::policy_bank::RecipientRegex>,
    /// Added header fields.
    pub headers: Headers,
    /// Notices.
    pub notify: Notify,
    /// The SQL log (amavisd-new's tables).
    pub sql: crate::sql::SqlConfig,
    /// Where file quarantine methods write.
    pub quarantine: crate::quarantine::QuarantineConfig,
    /// The release (AM.PDP) listener.
    pub release: crate::release::ReleaseConfig,
    /// Logging.
    pub log: Log,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            myhostname: String::new(),
            mydomain: String::new(),
            listen: vec![Listener {
                inet: Some("127.0.0.1:10024".into()),
                unix: None,
                protocol: ListenProtocol::Auto,
            }],
            milter: Vec::new(),
            http: crate::http::HttpConfig::default(),
            forward_method: "smtp:[127.0.0.1]:10025".into(),
            notify_method: String::new(),
            tempdir: PathBuf::from("var/tmp"),
            pid_file: PathBuf::from("var/amavisd.pid"),
            scan_threads: 0,
            user: String::new(),
            group: String::new(),
            limits: Limits::default(),
            forward: ForwardLimits::default(),
            decode: crate::decode::Limits::default(),
            banned: crate::banned::BannedConfig::default(),
            av: crate::av::AvConfig::default(),
            spam: crate::spam::SpamConfig::default(),
            metrics: crate::stats::MetricsConfig::default(),
            dkim: crate::dkim::DkimConfig::default(),
            dns: crate::dns::DnsConfig::default(),
            policy: crate::policy_bank::Policy::default(),
            policy_bank: BTreeMap::new(),
            policy_bank_select: Vec::new(),
            mynetworks: [
                "127.0.0.0/8",
                "[::1]",
                "[FE80::]/10",
                "[FEC0::]/10",
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
            ]
            .map(String::from)
            .to_vec(),
            recipients: BTreeMap::new(),
            recipient_regex: Vec::new(),
            headers: Headers::default(),
            notify: Notify::default(),
            sql: crate::sql::SqlConfig::default(),
            quarantine: crate::quarantine::QuarantineConfig::default(),
            release: crate::release::ReleaseConfig::default(),
            log: Log::default(),
        }
    }
}

impl Config {
    /// Our authserv-id in `Authentication-Results`: `dkim.authserv_id`, else `myhostname`.
    pub fn authserv_id(&self) -> &str {
        if self.dkim.authserv_id.is_empty() {
            &self.myhostname
        } else {
            &self.dkim.authserv_id
        }
    }

    /// What new SMTP/LMTP sessions start with (each listener sets its own protocol).
    pub fn session_settings(&self) -> crate::smtp_in::SessionSettings {
        crate::smtp_in::SessionSettings {
            hostname: self.myhostname.clone(),
            protocol: ListenProtocol::Auto,
            limits: self.limits.clone(),
            tempdir: self.tempdir.clone(),
        }
    }

    /// Reads and validates `path`. Every error names the file and, where there is one, the key.
    pub fn load(path: &Path) -> Result<ValidConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            file: path.to_path_buf(),
            source: e,
        })?;
        Self::from_toml(path, &text)
    }

    /// Parses and validates TOML text; `file` is only used to name the source in errors.
    pub fn from_toml(file: &Path, text: &str) -> Result<ValidConfig, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| ConfigError::Syntax {
            file: file.to_path_buf(),
            reason: e.to_string(),
        })?;
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let reason = e.into_inner().message().trim().to_string();
            ConfigError::Key {
                file: file.to_path_buf(),
                key,
                reason,
            }
        })?;
        cfg.validate(file)
    }

    /// The policy banks and per-recipient tables, compiled (validated at load). A bank's
    /// `av` table is not a policy key: [`Config::bank_scanners`] reads it.
    pub fn policies(&self) -> Result<crate::policy_bank::Policies, (String, String)> {
        let banks: BTreeMap<String, toml::Table> = self
            .policy_bank
            .iter()
            .map(|(n, t)| {
                let mut t = t.clone();
                t.remove(BANK_AV_KEY);
                (n.clone(), t)
            })
            .collect();
        crate::policy_bank::Policies::new(
            &self.policy,
            &banks,
            &self.policy_bank_select,
            &self.mynetworks,
            &self.recipients,
            &self.recipient_regex,
            &self.mydomain,
        )
    }

    /// The `[av]` of each policy bank that has its own `av` table (amavisd-new's
    /// `$policy_bank{NAME}{av_scanners}`, `av_scanners_backup` ...), over `[av]`.
    pub fn bank_scanners(&self) -> Result<BTreeMap<String, crate::av::AvConfig>, (String, String)> {
        self.policy_bank
            .iter()
            .filter_map(|(name, bank)| Some((name, bank.get(BANK_AV_KEY)?)))
            .map(|(name, av)| {
                let at = format!("policy_bank.{name}.{BANK_AV_KEY}");
                Ok((name.clone(), self.av.overlaid(&at, av)?))
            })
            .collect()
    }

    /// The parsed `forward_method` (validated at load).
    pub fn forward_target(&self) -> ForwardMethod {
        ForwardMethod::parse(&self.forward_method).unwrap_or_else(|_| ForwardMethod::default())
    }

    /// The parsed `notify_method`, falling back to `forward_method`.
    pub fn notify_target(&self) -> ForwardMethod {
        if self.notify_method.is_empty() {
            self.forward_target()
        } else {
            ForwardMethod::parse(&self.notify_method).unwrap_or_else(|_| self.forward_target())
        }
    }
}

fn is_field_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// The system's host name, or `localhost` when it cannot be read.
pub fn system_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length and gethostname NUL-terminates within it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(s) if !s.is_empty() => s.to_string(),
        _ => "localhost".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<ValidConfig, ConfigError> {
        Config::from_toml(Path::new("test.toml"), text)
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = load("myhostname = \"mx.example.com\"").unwrap();
        assert_eq!(c.mydomain, "example.com");
        assert_eq!(c.forward_method, "smtp:[127.0.0.1]:10025");
        assert_eq!(c.limits, Limits::default());
    }

    #[test]
    fn unknown_key_names_file_and_path() {
        let e = load("[limits]\nmax_conections = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("test.toml"), "{e}");
        assert!(e.contains("limits.max_conections"), "{e}");
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn wrong_type_names_key() {
        let e = load("[limits]\nmax_connections = \"many\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("limits.max_connections"), "{e}");
    }

    #[test]
    fn zero_limit_refused() {
        let e = load("[limits]\nmax_connections = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("limits.max_connections"), "{e}");
    }

    #[test]
    fn bad_forward_method_refused() {
        let e = load("forward_method = \"pipe:flags=q\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("forward_method"), "{e}");
    }

    #[test]
    fn listener_needs_one_address() {
        let e = load("[[listen]]\nprotocol = \"lmtp\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen[0]"), "{e}");
        let e = load("[[listen]]\ninet = \"localhost\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen[0].inet"), "{e}");
    }

    #[test]
    fn banned_rules_validated() {
        let ok = "[policy]\nbanned_rules = \"SITE\"\n[[banned.rule_sets.SITE]]\nglob = \"*.docm\"\nwhy = \"macros\"\n";
        let c = load(ok).unwrap();
        assert_eq!(c.banned.rule_sets["SITE"].len(), 1);
        let e = load("[[banned.rule_sets.SITE]]\nregex = \"(\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("banned.rule_sets.SITE[0]") && e.contains("bad regex"),
            "{e}"
        );
        let e = load("[policy]\nbanned_rules = \"NOPE\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("policy.banned_rules"), "{e}");
        let e = load("[[banned.rule_sets.X]]\nregex = \"a\"\naction = \"maybe\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("banned.rule_sets.X"), "{e}");
    }

    #[test]
    fn av_scanners_validated() {
        let ok = "[[av.backup]]\nname = \"clamscan\"\ntype = \"command\"\nprogram = \"clamscan\"\n\
                  args = [\"--no-summary\", \"{}\"]\nclean_codes = [0]\ninfected_codes = [1]\n\
                  name_regex = '^.*?: (.+) FOUND$'\ntimeout = 120\n";
        let c = load(ok).unwrap();
        assert_eq!(c.av.backup.len(), 1);
        let e = load("[[av.primary]]\nname = \"c\"\ntype = \"clamd\"\ntimeout = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("av.primary[0]") && e.contains("socket"), "{e}");
        let e = load("[[av.primary]]\nname = \"x\"\ntype = \"command\"\nprogram = \"p\"\nargs = [\"a\"]\ntimeout = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("av.primary[0]") && e.contains("{}"), "{e}");
        let e = load("[[av.primary]]\nname = \"x\"\ntype = \"sophos\"\ntimeout = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("av.primary"), "{e}");
    }

    #[test]
    fn policy_banks_and_recipient_tables_validated() {
        let ok = "mynetworks = [\"10.0.0.0/8\"]\n\
                  [policy_bank.MYNETS]\nbypass_spam_checks = true\n\
                  [policy_bank.SUB]\noriginating = true\n\
                  [[policy_bank_select]]\nport = 10026\nbank = \"SUB\"\n\
                  [recipients.\"postmaster@\"]\nbanned_files_lover = true\n\
                  [[recipient_regex]]\nregex = '^abuse@'\nvirus_lover = true\n";
        let c = load(ok).unwrap();
        assert_eq!(c.policy_bank.len(), 2);
        let e = |t: &str| load(t).unwrap_err().to_string();
        let x = e("[policy_bank.X]\nspam_kil_level = 3.0\n");
        assert!(x.contains("policy_bank.X.spam_kil_level"), "{x}");
        let x = e("[policy_bank.X]\nfinal_virus_destiny = \"explode\"\n");
        assert!(x.contains("policy_bank.X.final_virus_destiny"), "{x}");
        let x = e("[[policy_bank_select]]\nport = 1\nbank = \"NOPE\"\n");
        assert!(x.contains("policy_bank_select[0].bank"), "{x}");
        let x = e(
            "[policy_bank.A]\n[[policy_bank_select]]\nport = 1\nsender = [\"a@b\"]\nbank = \"A\"\n",
        );
        assert!(
            x.contains("policy_bank_select[0]") && x.contains("exactly one"),
            "{x}"
        );
        let x = e(
            "[policy_bank.A]\n[[policy_bank_select]]\nclient = [\"10.0.0.0/99\"]\nbank = \"A\"\n",
        );
        assert!(x.contains("policy_bank_select[0].client"), "{x}");
        let x = e("mynetworks = [\"nonsense\"]\n");
        assert!(x.contains("mynetworks"), "{x}");
        // A bank's own scanners: checked like [av], errors named under the bank.
        let ok = load(
            "[policy_bank.PARTNER]\nvirus_scan_failure = \"unchecked\"\n\
             [[policy_bank.PARTNER.av.primary]]\nname = \"partner-clamd\"\ntype = \"clamd\"\n\
             tcp = \"127.0.0.1:3310\"\ntimeout = 9\n",
        )
        .unwrap();
        let banks = ok.bank_scanners().unwrap();
        assert_eq!(banks["PARTNER"].primary[0].name, "partner-clamd");
        assert_eq!(
            banks["PARTNER"].virus_name_spam_scores,
            ok.av.virus_name_spam_scores
        );
        let x = e("[[policy_bank.P.av.primary]]\nname = \"x\"\ntype = \"clamd\"\ntimeout = 5\n");
        assert!(
            x.contains("policy_bank.P.av.primary[0]") && x.contains("socket"),
            "{x}"
        );
        let x = e("[policy_bank.P.av]\nprimry = []\n");
        assert!(
            x.contains("policy_bank.P.av") && x.contains("primry"),
            "{x}"
        );
        let x = e("[recipients.\"a@b\"]\nspam_lover = \"yes\"\n");
        assert!(x.contains("recipients.\"a@b\".spam_lover"), "{x}");
        let x = e("[[recipient_regex]]\nregex = '('\n");
        assert!(x.contains("recipient_regex[0].regex"), "{x}");
        let x = e("[recipients.\"a@b\"]\nbanned_rules = \"NOPE\"\n");
        assert!(x.contains("recipients.\"a@b\".banned_rules"), "{x}");
    }

    #[test]
    fn release_socket_is_not_a_mail_socket() {
        let e = load("[[listen]]\nunix = \"var/a.sock\"\n[release]\nunix = \"var/a.sock\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("release.unix") && e.contains("listen[0].unix"),
            "{e}"
        );
        let e = load("[release]\ninet = \"0.0.0.0:9998\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("release.inet"), "{e}");
    }

    #[test]
    fn syntax_error_names_file() {
        let e = load("limits = [").unwrap_err().to_string();
        assert!(e.contains("test.toml"), "{e}");
    }

    #[test]
    fn shipped_config_loads_and_equals_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/amavisd.toml");
        let shipped = Config::load(&path).unwrap();
        let defaults = Config::default().validate(&path).unwrap();
        assert_eq!(
            shipped, defaults,
            "etc/amavisd.toml must document the defaults"
        );
    }
}
