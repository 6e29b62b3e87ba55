//! The amavisd-new settings `convert-config` carries over one for one, and how a Perl value
//! becomes a TOML value of each kind.

use super::super::perl_conf::Value;
use toml::Value as T;

/// What kind of value a setting takes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    Float,
    /// A level that may be `undef` (no level: off).
    Level,
    /// `$sa_tag_level_deflt`, whose `undef` means "at any score" (-999 here).
    TagLevel,
    Bool,
    Destiny,
    /// `$virus_scanners_failure_is_fatal`: true waits (451), false passes UNCHECKED.
    ScanFailure,
}

/// amavisd-new's global scalars that are not per policy, and where they go.
pub const GLOBAL: &[(&str, &str, Kind)] = &[
    ("myhostname", "myhostname", Kind::Str),
    ("enable_dkim_verification", "dkim.verify", Kind::Bool),
    ("enable_dkim_signing", "dkim.sign", Kind::Bool),
    ("myauthservid", "dkim.authserv_id", Kind::Str),
    ("mydomain", "mydomain", Kind::Str),
    ("forward_method", "forward_method", Kind::Str),
    ("notify_method", "notify_method", Kind::Str),
    ("TEMPBASE", "tempdir", Kind::Str),
    ("pid_file", "pid_file", Kind::Str),
    ("daemon_user", "user", Kind::Str),
    ("daemon_group", "group", Kind::Str),
    ("QUARANTINEDIR", "quarantine.directory", Kind::Str),
    (
        "quarantine_subdir_levels",
        "quarantine.subdir_levels",
        Kind::Int,
    ),
    ("sa_mail_body_size_limit", "spam.max_size", Kind::Int),
    ("MAXLEVELS", "decode.max_levels", Kind::Int),
    ("MAXFILES", "decode.max_files", Kind::Int),
    (
        "MIN_EXPANSION_QUOTA",
        "decode.min_expansion_quota",
        Kind::Int,
    ),
    (
        "MAX_EXPANSION_QUOTA",
        "decode.max_expansion_quota",
        Kind::Int,
    ),
    (
        "MIN_EXPANSION_FACTOR",
        "decode.min_expansion_factor",
        Kind::Int,
    ),
    (
        "MAX_EXPANSION_FACTOR",
        "decode.max_expansion_factor",
        Kind::Int,
    ),
    ("X_HEADER_TAG", "headers.x_header_tag", Kind::Str),
    ("smtpd_recipient_limit", "limits.recipient_limit", Kind::Int),
    ("X_HEADER_LINE", "headers.x_header_line", Kind::Str),
];

/// Per-policy settings: global scalars in amavisd-new, keys of `$policy_bank{...}` hashes.
pub const POLICY: &[(&str, &str, Kind)] = &[
    ("sa_tag_level_deflt", "spam_tag_level", Kind::TagLevel),
    ("sa_tag2_level_deflt", "spam_tag2_level", Kind::Float),
    ("sa_tag3_level_deflt", "spam_tag3_level", Kind::Level),
    ("sa_kill_level_deflt", "spam_kill_level", Kind::Float),
    ("sa_dsn_cutoff_level", "spam_dsn_cutoff_level", Kind::Float),
    (
        "sa_quarantine_cutoff_level",
        "spam_quarantine_cutoff_level",
        Kind::Level,
    ),
    ("final_virus_destiny", "final_virus_destiny", Kind::Destiny),
    (
        "final_banned_destiny",
        "final_banned_destiny",
        Kind::Destiny,
    ),
    (
        "final_unchecked_destiny",
        "final_unchecked_destiny",
        Kind::Destiny,
    ),
    ("final_spam_destiny", "final_spam_destiny", Kind::Destiny),
    (
        "final_bad_header_destiny",
        "final_bad_header_destiny",
        Kind::Destiny,
    ),
    (
        "virus_quarantine_method",
        "virus_quarantine_method",
        Kind::Str,
    ),
    (
        "banned_quarantine_method",
        "banned_quarantine_method",
        Kind::Str,
    ),
    // amavisd-new's own name for it.
    (
        "banned_files_quarantine_method",
        "banned_quarantine_method",
        Kind::Str,
    ),
    (
        "virus_scanners_failure_is_fatal",
        "virus_scan_failure",
        Kind::ScanFailure,
    ),
    (
        "spam_quarantine_method",
        "spam_quarantine_method",
        Kind::Str,
    ),
    (
        "bad_header_quarantine_method",
        "bad_header_quarantine_method",
        Kind::Str,
    ),
    (
        "unchecked_quarantine_method",
        "unchecked_quarantine_method",
        Kind::Str,
    ),
    ("virus_admin", "virus_admin", Kind::Str),
    ("banned_admin", "banned_admin", Kind::Str),
    ("spam_admin", "spam_admin", Kind::Str),
    ("bad_header_admin", "bad_header_admin", Kind::Str),
    ("sa_spam_subject_tag1", "spam_subject_tag", Kind::Str),
    ("sa_spam_subject_tag", "spam_subject_tag2", Kind::Str),
    ("sa_spam_subject_tag3", "spam_subject_tag3", Kind::Str),
    (
        "undecipherable_subject_tag",
        "subject_tag_unchecked",
        Kind::Str,
    ),
    ("recipient_delimiter", "recipient_delimiter", Kind::Str),
    ("soft_bounce", "soft_bounce", Kind::Bool),
    ("originating", "originating", Kind::Bool),
    ("addr_extension_virus", "addr_extension_virus", Kind::Str),
    ("addr_extension_banned", "addr_extension_banned", Kind::Str),
    ("addr_extension_spam", "addr_extension_spam", Kind::Str),
    (
        "addr_extension_bad_header",
        "addr_extension_bad_header",
        Kind::Str,
    ),
    ("warnvirusrecip", "warn_virus_recip", Kind::Bool),
    ("warnbannedrecip", "warn_banned_recip", Kind::Bool),
    ("warnbadhrecip", "warn_bad_header_recip", Kind::Bool),
];

/// Per-policy `*_maps` whose usual form is one constant (`(1)`, `['admin@x']`, `[6.9]`).
pub const POLICY_MAPS: &[(&str, &str, Kind)] = &[
    (
        "bypass_virus_checks_maps",
        "bypass_virus_checks",
        Kind::Bool,
    ),
    ("bypass_spam_checks_maps", "bypass_spam_checks", Kind::Bool),
    (
        "bypass_banned_checks_maps",
        "bypass_banned_checks",
        Kind::Bool,
    ),
    (
        "bypass_header_checks_maps",
        "bypass_header_checks",
        Kind::Bool,
    ),
    ("virus_lovers_maps", "virus_lover", Kind::Bool),
    ("spam_lovers_maps", "spam_lover", Kind::Bool),
    ("banned_files_lovers_maps", "banned_files_lover", Kind::Bool),
    ("bad_header_lovers_maps", "bad_header_lover", Kind::Bool),
    ("unchecked_lovers_maps", "unchecked_lover", Kind::Bool),
    ("virus_admin_maps", "virus_admin", Kind::Str),
    ("spam_admin_maps", "spam_admin", Kind::Str),
    ("banned_admin_maps", "banned_admin", Kind::Str),
    ("bad_header_admin_maps", "bad_header_admin", Kind::Str),
    ("spam_tag_level_maps", "spam_tag_level", Kind::TagLevel),
    ("spam_tag2_level_maps", "spam_tag2_level", Kind::Float),
    ("spam_tag3_level_maps", "spam_tag3_level", Kind::Level),
    ("spam_kill_level_maps", "spam_kill_level", Kind::Float),
    (
        "spam_dsn_cutoff_level_maps",
        "spam_dsn_cutoff_level",
        Kind::Float,
    ),
    ("spam_subject_tag2_maps", "spam_subject_tag2", Kind::Str),
    ("message_size_limit_maps", "message_size_limit", Kind::Int),
];

/// A Perl scalar as a TOML value of `kind`; `None` when it is not one (or `undef` for a
/// level, which means "no level": the key is left out).
pub fn scalar(v: &Value, kind: Kind) -> Option<T> {
    let num = |v: &Value| match v {
        Value::Num(n) => Some(*n),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    };
    match kind {
        Kind::Str => match v {
            Value::Str(s) => Some(T::String(s.clone())),
            Value::Num(n) => Some(T::String(n.to_string())),
            Value::Undef => Some(T::String(String::new())),
            _ => None,
        },
        Kind::Int => num(v)
            .filter(|n| n.fract() == 0.0)
            .map(|n| T::Integer(n as i64)),
        Kind::Float | Kind::Level => num(v).map(T::Float),
        Kind::TagLevel => match v {
            Value::Undef => Some(T::Float(-999.0)),
            other => num(other).map(T::Float),
        },
        Kind::Bool => match v {
            Value::Undef => Some(T::Boolean(false)),
            other => num(other).map(|n| T::Boolean(n != 0.0)),
        },
        Kind::ScanFailure => match v {
            Value::Undef => Some(T::String("unchecked".into())),
            other => num(other)
                .map(|n| T::String(if n != 0.0 { "tempfail" } else { "unchecked" }.into())),
        },
        Kind::Destiny => match v {
            Value::Bare(b) => match b.as_str() {
                "D_PASS" => Some("pass"),
                "D_DISCARD" => Some("discard"),
                "D_BOUNCE" => Some("bounce"),
                "D_REJECT" => Some("reject"),
                "D_TEMPFAIL" => Some("tempfail"),
                _ => None,
            }
            .map(|d| T::String(d.into())),
            _ => None,
        },
    }
}

/// Strings of a list, and of lists within it (amavisd-new's ACL list refs).
pub fn strings(v: &Value, out: &mut Vec<String>) -> bool {
    match v {
        Value::Str(s) => out.push(s.clone()),
        Value::List(items) => {
            for i in items {
                if !strings(i, out) {
                    return false;
                }
            }
        }
        _ => return false,
    }
    true
}
