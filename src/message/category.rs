//! Content categories and destinies, with amavisd-new's numbers and names, so that the log,
//! the SQL record (`msgrcpt.content`) and the policy settings read the same as there.

use serde::{Deserialize, Serialize};

/// A content category (amavisd-new's CC_*), in increasing order of badness: the category of a
/// message is the worst that applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    Clean = 1,
    Mta = 2,
    Oversized = 3,
    BadHeader = 4,
    Spammy = 5,
    Spam = 6,
    Unchecked = 7,
    Banned = 8,
    Virus = 9,
}

impl Category {
    /// amavisd-new's CC_* number.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The one-letter code of `msgs.content` / `msgrcpt.content` (V B U S Y H O C).
    pub fn sql_letter(self) -> char {
        match self {
            Category::Virus => 'V',
            Category::Banned => 'B',
            Category::Unchecked => 'U',
            Category::Spam => 'S',
            Category::Spammy => 'Y',
            Category::BadHeader => 'H',
            Category::Oversized => 'O',
            Category::Mta => 'M',
            Category::Clean => 'C',
        }
    }

    /// The label value in metrics (`clean`, `bad_header`, `virus`).
    pub fn metric_name(self) -> &'static str {
        match self {
            Category::Virus => "virus",
            Category::Banned => "banned",
            Category::Unchecked => "unchecked",
            Category::Spam => "spam",
            Category::Spammy => "spammy",
            Category::BadHeader => "bad_header",
            Category::Oversized => "oversized",
            Category::Mta => "mta_blocked",
            Category::Clean => "clean",
        }
    }

    /// The name in the log line (`INFECTED`, `BAD-HEADER-7`, `UNCHECKED-ENCRYPTED`).
    pub fn log_name(self, minor: u8) -> String {
        match (self, minor) {
            (Category::Virus, _) => "INFECTED".into(),
            (Category::Banned, _) => "BANNED".into(),
            (Category::Unchecked, 1) => "UNCHECKED-ENCRYPTED".into(),
            (Category::Unchecked, 2) => "UNCHECKED-OVERLIMIT".into(),
            (Category::Unchecked, _) => "UNCHECKED".into(),
            (Category::Spam, _) => "SPAM".into(),
            (Category::Spammy, _) => "SPAMMY".into(),
            (Category::BadHeader, m) => format!("BAD-HEADER-{m}"),
            (Category::Oversized, _) => "OVERSIZED".into(),
            (Category::Mta, _) => "MTA-BLOCKED".into(),
            (Category::Clean, _) => "CLEAN".into(),
        }
    }
}

/// What happens to a recipient's copy (amavisd-new's D_* destinies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Destiny {
    /// Delivered (possibly with added header fields).
    Pass,
    /// Not delivered; the MTA is told 250, nobody is told anything.
    Discard,
    /// Not delivered; the MTA is told 250 and we send the sender a DSN, unless suppressed.
    Bounce,
    /// Not delivered; the MTA is told 5xx and bounces itself.
    Reject,
    /// The MTA is told 4xx and keeps the message.
    Tempfail,
}

impl Destiny {
    /// The label value in metrics (`pass`, `discard` ..., as in the configuration).
    pub fn metric_name(self) -> &'static str {
        match self {
            Destiny::Pass => "pass",
            Destiny::Discard => "discard",
            Destiny::Bounce => "bounce",
            Destiny::Reject => "reject",
            Destiny::Tempfail => "tempfail",
        }
    }

    /// The word in the log line's `{...}` (`Discarded`, `Relayed`).
    pub fn log_word(self) -> &'static str {
        match self {
            Destiny::Pass => "Relayed",
            Destiny::Discard => "Discarded",
            Destiny::Bounce => "Bounced",
            Destiny::Reject => "Rejected",
            Destiny::Tempfail => "TempFailed",
        }
    }
}
