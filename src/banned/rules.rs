//! Banned-name rules as amavisd-new's `$banned_filename_re` means them, and their TOML form.
//!
//! A rule set is an ordered list. Each leaf part is judged with the keys of every node on its
//! path, from the message down to the part: the declared name, `.` + each detected short type
//! (`.exe-ms`), the declared MIME type, and `UNDECIPHERABLE` for a container that could not be
//! opened. The first rule (in list order) that matches any key of any node decides: ban, or
//! allow. So an allow rule for `.tar` lets `x.scr` inside a tar pass, but a ban rule for
//! `.exe-ms` placed before it still catches an executable in that tar.

use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;
use serde::Deserialize;

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The part is banned.
    Ban,
    /// The part passes; rules further down are not consulted for it.
    Allow,
}

/// One rule as written in the configuration: a regex or a glob, and what to do.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// A regular expression (Rust `regex` syntax; `(?i)` for case-insensitive).
    pub regex: Option<String>,
    /// A glob, matched case-insensitively against the whole key (`*.exe`).
    pub glob: Option<String>,
    /// `ban` (default) or `allow`.
    #[serde(default = "ban")]
    pub action: Action,
    /// Why the rule exists, and why a site might change it (shown in logs and notices).
    #[serde(default)]
    pub why: String,
}

fn ban() -> Action {
    Action::Ban
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The pattern as written, to name the rule in the log and the verdict.
    pub pattern: String,
    pub action: Action,
    pub why: String,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    Regex(Regex),
    /// Perl syntax the linear engine refuses (look-ahead, as in amavisd-new's shipped
    /// `(?!cid:)` rule), on fancy-regex as the spam rules use it. Keys are short names and
    /// types, so backtracking costs nothing worth fearing; the backtrack limit still bounds it.
    Perl(fancy_regex::Regex),
    Glob(GlobMatcher),
}

/// Compiles `r` on the linear engine, or on fancy-regex when only Perl syntax it lacks stands
/// in the way.
fn regex_matcher(r: &str) -> Result<Matcher, String> {
    match Regex::new(r) {
        Ok(re) => Ok(Matcher::Regex(re)),
        Err(linear) => fancy_regex::RegexBuilder::new(r)
            .backtrack_limit(100_000)
            .build()
            .map(Matcher::Perl)
            .map_err(|perl| format!("bad regex {r:?}: {linear}; as Perl syntax: {perl}")),
    }
}

impl Rule {
    /// Compiles a rule; the error says what is wrong with it.
    pub fn compile(spec: &RuleSpec) -> Result<Rule, String> {
        let (pattern, matcher) = match (&spec.regex, &spec.glob) {
            (Some(r), None) => (r.clone(), regex_matcher(r)?),
            (None, Some(g)) => {
                let glob = GlobBuilder::new(g)
                    .case_insensitive(true)
                    .literal_separator(false)
                    .build()
                    .map_err(|e| format!("bad glob {g:?}: {e}"))?;
                (g.clone(), Matcher::Glob(glob.compile_matcher()))
            }
            _ => return Err("give exactly one of `regex` or `glob`".into()),
        };
        Ok(Rule {
            pattern,
            action: spec.action,
            why: spec.why.clone(),
            matcher,
        })
    }

    /// True when the rule matches `key`.
    pub fn matches(&self, key: &str) -> bool {
        match &self.matcher {
            Matcher::Regex(r) => r.is_match(key),
            // A match that runs out of its backtrack budget counts as a match: a rule must
            // not let a name through because it was hard to judge.
            Matcher::Perl(r) => r.is_match(key).unwrap_or(true),
            Matcher::Glob(g) => g.is_match(key),
        }
    }
}

/// amavisd-new's shipped defaults, with what each is for. Sites differ: each `why` says when
/// one might drop or loosen the rule.
pub fn default_specs() -> Vec<RuleSpec> {
    let r = |regex: &str, action: Action, why: &str| RuleSpec {
        regex: Some(regex.to_string()),
        glob: None,
        action,
        why: why.to_string(),
    };
    use Action::*;
    vec![
        r(
            r"^\.(exe-ms|dll)$",
            Ban,
            "Windows executables by their content, whatever their name (an .exe renamed to \
             .txt), anywhere, archives included. Drop it only if users must exchange programs.",
        ),
        r(
            r"^\.(rpm|cpio|tar)$",
            Allow,
            "Anything inside Unix archives passes the name rules below (not the executable rule \
             above): they carry software, and Windows cannot open them by double-click.",
        ),
        r(
            r"(?i)^application/(x-msdownload|x-msdos-program|hta)$",
            Ban,
            "MIME types that tell a mail client to run the part.",
        ),
        r(
            r"(?i)\.[^./]*[A-Za-z][^./]*\.\s*(exe|vbs|pif|scr|bat|cmd|com|cpl|dll)[.\s]*$",
            Ban,
            "Double extensions (invoice.pdf.exe): the classic disguise. Rarely legitimate.",
        ),
        r(
            r"(?i)\{[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\}?",
            Ban,
            "Windows class-ID names ({3050F4D8-...}), which hide the real handler of a file.",
        ),
        r(
            r"(?i).\.(exe|com|scr|pif|bat|cmd|vbs|vbe|js|jse|wsf|wsh|hta|lnk|msi|msp|cpl|reg|scf|ps1)[.\s]*$",
            Ban,
            "Extensions Windows runs or installs. .js and .msi are the ones sites most often \
             allow again (web developers, software vendors).",
        ),
    ]
}
