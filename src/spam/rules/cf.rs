//! SpamAssassin's configuration files, read as SpamAssassin reads them: the site's `*.pre`
//! files (which plugins load), then the rule files in name order, then the site's `*.cf`
//! (`local.cf`). Lines are `directive arguments`; `#` starts a comment (`\#` is a literal);
//! `if`/`ifplugin`/`else`/`endif` blocks nest; `include` reads another file.
//!
//! This turns them into rule definitions (`header`, `body`, `rawbody`, `full`, `uri`,
//! `mimeheader`, `meta`) with their `score`, `describe`, `tflags` and `priority`, plus the
//! options we record but do not act on. Nothing here is a parse error that stops loading:
//! a line that cannot be understood is reported with its file, line and reason.

use crate::spam::rules::condition::{self, Environment};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The SpamAssassin version whose rule files we read (`if (version >= ...)`).
pub const SA_VERSION: f64 = 4.000001;

/// Directives kept for the network rules and the trust path.
const NET_DIRECTIVES: &[&str] = &[
    "trusted_networks",
    "clear_trusted_networks",
    "internal_networks",
    "clear_internal_networks",
    "msa_networks",
    "clear_msa_networks",
    "uridnsbl",
    "uridnssub",
    "urirhsbl",
    "urirhssub",
    "urinsrhsbl",
    "urinsrhssub",
    "urifullnsrhsbl",
    "urifullnsrhssub",
    "uridnsbl_skip_domain",
    "clear_uridnsbl_skip_domain",
    "uridnsbl_max_domains",
    "askdns",
    "skip_rbl_checks",
    "skip_uribl_checks",
    "rbl_headers",
];

/// A rule's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Header,
    Body,
    Rawbody,
    Full,
    Uri,
    Mimeheader,
    Meta,
}

impl Kind {
    fn of(directive: &str) -> Option<Kind> {
        Some(match directive {
            "header" => Kind::Header,
            "body" => Kind::Body,
            "rawbody" => Kind::Rawbody,
            "full" => Kind::Full,
            "uri" => Kind::Uri,
            "mimeheader" => Kind::Mimeheader,
            "meta" => Kind::Meta,
            _ => return None,
        })
    }
}

/// Where a line came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

/// One rule as defined.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDef {
    pub name: String,
    pub kind: Kind,
    /// The definition as written after the name (`Subject =~ /foo/i`, `eval:check_x()`).
    pub definition: String,
    pub origin: Origin,
    /// One score, or four (the score set by Bayes and network use); `None` until a `score`
    /// line names the rule.
    pub score: Option<Vec<f64>>,
    pub describe: Option<String>,
    pub tflags: Vec<String>,
    pub priority: i32,
}

/// A line that was not understood.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub origin: Origin,
    pub reason: String,
}

/// Everything the files define.
#[derive(Debug, Default)]
pub struct Config {
    pub rules: BTreeMap<String, RuleDef>,
    /// `required_score` (SpamAssassin's default 5).
    pub required_score: f64,
    /// Plugins loaded by `loadplugin`.
    pub plugins: BTreeSet<String>,
    /// Directives recorded but not acted on, with how often they appear.
    pub ignored: BTreeMap<String, usize>,
    /// Word lists the eval functions read (`freemail_domains`, `util_rb_tld` ...), every
    /// word of every line, lower case.
    pub lists: BTreeMap<String, BTreeSet<String>>,
    /// `originating_ip_headers`, in order (`clear_originating_ip_headers` empties it).
    pub originating_ip_headers: Vec<String>,
    /// The network directives (trust: `trusted_networks` and kin; URI blocklists:
    /// `urirhssub` and kin; `askdns`), in file order, as written: `spam::net` and
    /// `view::trust` read them.
    pub net_lines: Vec<(Origin, String, String)>,
    /// ReplaceTags definitions (applied when loading ends).
    pub replace: crate::spam::rules::replace_tags::Tags,
    pub problems: Vec<Problem>,
    /// Scores and the like given before their rule was defined, applied at the end.
    pending: Vec<(Origin, String, String)>,
}

struct Env<'a>(&'a BTreeSet<String>);

impl Environment for Env<'_> {
    fn plugin(&self, name: &str) -> bool {
        self.0.contains(name)
    }
    fn can(&self, name: &str) -> bool {
        // Every configuration feature the shipped files test exists in the version we read;
        // a plugin's capability exists when the plugin is loaded.
        if name.starts_with("Mail::SpamAssassin::Conf::feature_") {
            return true;
        }
        match name.rsplit_once("::") {
            Some((plugin, _)) => self.0.contains(plugin),
            None => false,
        }
    }
    fn version(&self) -> f64 {
        SA_VERSION
    }
}

/// The line without its comment; `\#` stays a literal `#`.
fn strip_comment(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&'#') {
            out.push('#');
            chars.next();
        } else if c == '#' {
            break;
        } else {
            out.push(c);
        }
    }
    out.trim().to_string()
}

/// Files of `dir` ending in `ext`, in name order (as SpamAssassin reads them).
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext) && p.is_file())
        .collect();
    v.sort();
    v
}

impl Config {
    /// Reads `rules_dir` (`/usr/share/spamassassin`) and `site_dir` (`/etc/spamassassin`:
    /// its `*.pre` first, its `*.cf` last).
    pub fn load(rules_dir: &Path, site_dir: Option<&Path>) -> Config {
        let mut c = Config {
            required_score: 5.0,
            ..Config::default()
        };
        if let Some(site) = site_dir {
            for f in files(site, "pre") {
                c.read_file(&f, 0);
            }
        }
        for f in files(rules_dir, "cf") {
            c.read_file(&f, 0);
        }
        c.read_text(
            Path::new("(built-in: OLEVBMacro rules)"),
            crate::spam::eval::attachments::RULES,
            0,
        );
        if let Some(site) = site_dir {
            for f in files(site, "cf") {
                c.read_file(&f, 0);
            }
        }
        c.apply_pending();
        c.apply_replace_tags();
        c
    }

    /// Rewrites the rules `replace_rules` names (when the ReplaceTags plugin is loaded).
    fn apply_replace_tags(&mut self) {
        if !self
            .plugins
            .contains("Mail::SpamAssassin::Plugin::ReplaceTags")
        {
            return;
        }
        for name in self.replace.rules.clone() {
            if let Some(r) = self.rules.get_mut(&name) {
                r.definition = self.replace.apply(&r.definition);
            }
        }
    }

    /// Reads one file (and what it includes).
    pub fn read_file(&mut self, path: &Path, depth: usize) {
        let text = match std::fs::read(path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                self.problems.push(Problem {
                    origin: Origin {
                        file: path.to_path_buf(),
                        line: 0,
                    },
                    reason: format!("cannot read: {e}"),
                });
                return;
            }
        };
        self.read_text(path, &text, depth);
    }

    /// Reads configuration text; `path` names it in problems and anchors `include`.
    pub fn read_text(&mut self, path: &Path, text: &str, depth: usize) {
        // Each open block: (is this block's branch active, was the block's parent active).
        let mut stack: Vec<(bool, bool)> = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let origin = Origin {
                file: path.to_path_buf(),
                line: n + 1,
            };
            let line = strip_comment(raw);
            if line.is_empty() {
                continue;
            }
            let (directive, rest) = match line.split_once(char::is_whitespace) {
                Some((d, r)) => (d.to_ascii_lowercase(), r.trim().to_string()),
                None => (line.to_ascii_lowercase(), String::new()),
            };
            let active = stack.last().is_none_or(|s| s.0);
            match directive.as_str() {
                "if" | "ifplugin" => {
                    let value = if !active {
                        false
                    } else if directive == "ifplugin" {
                        // Case-blind: 4.0.1's 25_dmarc.cf asks for `Plugin::Dmarc` while
                        // init.pre loads `Plugin::DMARC`, which left SpamAssassin without
                        // its DMARC rules (fixed in its later rule updates).
                        self.plugins.iter().any(|p| p.eq_ignore_ascii_case(&rest))
                    } else {
                        match condition::eval(&rest, &Env(&self.plugins)) {
                            Ok(v) => v,
                            Err(e) => {
                                self.problem(&origin, format!("if {rest}: {e}"));
                                false
                            }
                        }
                    };
                    stack.push((value, active));
                    continue;
                }
                "else" => {
                    match stack.last_mut() {
                        Some(top) => top.0 = top.1 && !top.0,
                        None => self.problem(&origin, "else without if".into()),
                    }
                    continue;
                }
                "endif" => {
                    if stack.pop().is_none() {
                        self.problem(&origin, "endif without if".into());
                    }
                    continue;
                }
                _ => {}
            }
            if !active {
                continue;
            }
            self.directive(&origin, &directive, &rest, depth);
        }
        if !stack.is_empty() {
            self.problem(
                &Origin {
                    file: path.to_path_buf(),
                    line: text.lines().count(),
                },
                format!("{} if block(s) not closed", stack.len()),
            );
        }
    }

    fn problem(&mut self, origin: &Origin, reason: String) {
        self.problems.push(Problem {
            origin: origin.clone(),
            reason,
        });
    }

    fn directive(&mut self, origin: &Origin, directive: &str, rest: &str, depth: usize) {
        if let Some(kind) = Kind::of(directive) {
            let (name, def) = match rest.split_once(char::is_whitespace) {
                Some((n, d)) => (n.to_string(), d.trim().to_string()),
                None => {
                    self.problem(origin, format!("{directive} {rest}: no definition"));
                    return;
                }
            };
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                self.problem(origin, format!("{directive}: bad rule name {name:?}"));
                return;
            }
            let old = self.rules.remove(&name);
            self.rules.insert(
                name.clone(),
                RuleDef {
                    name,
                    kind,
                    definition: def,
                    origin: origin.clone(),
                    // A redefinition keeps what was said about the rule before.
                    score: old.as_ref().and_then(|o| o.score.clone()),
                    describe: old.as_ref().and_then(|o| o.describe.clone()),
                    tflags: old.as_ref().map(|o| o.tflags.clone()).unwrap_or_default(),
                    priority: old.as_ref().map_or(0, |o| o.priority),
                },
            );
            return;
        }
        match directive {
            "score" | "describe" | "tflags" | "priority" => {
                self.pending
                    .push((origin.clone(), directive.to_string(), rest.to_string()));
            }
            "required_score" | "required_hits" => match rest.trim().parse::<f64>() {
                Ok(v) => self.required_score = v,
                Err(_) => self.problem(origin, format!("{directive} {rest}: not a number")),
            },
            "loadplugin" => {
                if let Some(name) = rest.split_whitespace().next() {
                    self.plugins.insert(name.to_string());
                }
            }
            "include" => {
                if depth > 20 {
                    self.problem(origin, "include nested too deep".into());
                    return;
                }
                let base = origin.file.parent().unwrap_or(Path::new("."));
                let target = base.join(rest.trim());
                self.read_file(&target, depth + 1);
            }
            "freemail_domains"
            | "freemail_whitelist"
            | "freemail_welcomelist"
            | "util_rb_tld"
            | "util_rb_2tld"
            | "util_rb_3tld" => {
                let list = self.lists.entry(directive.to_string()).or_default();
                list.extend(rest.split_whitespace().map(str::to_ascii_lowercase));
            }
            "originating_ip_headers" => self
                .originating_ip_headers
                .extend(rest.split_whitespace().map(str::to_string)),
            "clear_originating_ip_headers" => self.originating_ip_headers.clear(),
            d if NET_DIRECTIVES.contains(&d) => {
                // `askdns NAME ...` defines rule NAME, as a header rule would.
                if d == "askdns"
                    && let Some(name) = rest.split_whitespace().next()
                {
                    let def = format!("header {name} eval:check_askdns('{name}')");
                    self.read_text(&origin.file, &def, depth);
                    if let Some(r) = self.rules.get_mut(name) {
                        r.origin = origin.clone();
                    }
                }
                self.net_lines
                    .push((origin.clone(), d.to_string(), rest.to_string()));
            }
            other if self.replace.directive(other, rest) => {}
            other if super::cf_lists::read(&mut self.lists, other, rest) => {}
            other => {
                *self.ignored.entry(other.to_string()).or_default() += 1;
            }
        }
    }

    /// Applies `score`, `describe`, `tflags` and `priority` lines, in file order, to the
    /// rules they name (they may come before the rule's definition, as in 50_scores.cf).
    fn apply_pending(&mut self) {
        for (origin, directive, rest) in std::mem::take(&mut self.pending) {
            let (name, value) = match rest.split_once(char::is_whitespace) {
                Some((n, v)) => (n.to_string(), v.trim().to_string()),
                None => (rest.clone(), String::new()),
            };
            let Some(rule) = self.rules.get_mut(&name) else {
                // SpamAssassin ignores scores for rules that do not exist (here: rules in
                // blocks of plugins that are not loaded).
                continue;
            };
            match directive.as_str() {
                "score" => {
                    let v: Result<Vec<f64>, _> =
                        value.split_whitespace().map(str::parse::<f64>).collect();
                    match v {
                        Ok(v) if v.len() == 1 || v.len() == 4 => rule.score = Some(v),
                        _ => self.problems.push(Problem {
                            origin,
                            reason: format!("score {name}: one or four numbers, got {value:?}"),
                        }),
                    }
                }
                "describe" => rule.describe = Some(value),
                "tflags" => rule.tflags = value.split_whitespace().map(str::to_string).collect(),
                _ => match value.parse::<i32>() {
                    Ok(p) => rule.priority = p,
                    Err(_) => self.problems.push(Problem {
                        origin,
                        reason: format!("priority {name}: not a number: {value:?}"),
                    }),
                },
            }
        }
    }

    /// The score a rule counts with: score set 0 (no Bayes, no network tests), or
    /// SpamAssassin's default when no `score` line names it (1.0, or -1.0 with `tflags nice`;
    /// 0.01 for `T_` rules; 0 for `__` sub-rules).
    pub fn score_of(&self, rule: &RuleDef) -> f64 {
        self.score_in(rule, 0)
    }

    /// The score in score set `set` (0: no Bayes, no network; 2: Bayes, no network); a rule
    /// with one score has it in every set.
    pub fn score_in(&self, rule: &RuleDef, set: usize) -> f64 {
        match &rule.score {
            Some(v) => v.get(set).or(v.first()).copied().unwrap_or(0.0),
            None if rule.name.starts_with("__") => 0.0,
            None if rule.name.starts_with("T_") => 0.01,
            None if rule.tflags.iter().any(|t| t == "nice") => -1.0,
            None => 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        let mut c = Config {
            required_score: 5.0,
            ..Config::default()
        };
        c.read_text(Path::new("t.cf"), text, 0);
        c.apply_pending();
        c.apply_replace_tags();
        c
    }

    #[test]
    fn rules_scores_and_blocks() {
        let c = parse(
            "loadplugin Mail::SpamAssassin::Plugin::DKIM\n\
             score SUBJ_X 1.5 # scores may come first\n\
             header SUBJ_X Subject =~ /\\#free/i\n\
             describe SUBJ_X Free stuff\n\
             tflags SUBJ_X nice noautolearn\n\
             ifplugin Mail::SpamAssassin::Plugin::DKIM\n\
             header DKIM_X eval:check_dkim_signed()\n\
             else\n\
             header NO_DKIM X-None =~ /x/\n\
             endif\n\
             ifplugin Mail::SpamAssassin::Plugin::Nope\n\
             body NOPE /x/\n\
             if (version >= 3.004)\n  body NESTED /y/\nendif\n\
             endif\n\
             if !plugin(Mail::SpamAssassin::Plugin::Nope)\n\
             meta META_X SUBJ_X && !DKIM_X\n\
             score META_X 0 1.2 0 2.5\n\
             endif\n\
             required_score 6.0\n\
             bayes_ignore_header X-Foo\n",
        );
        let r = &c.rules["SUBJ_X"];
        assert_eq!(r.kind, Kind::Header);
        assert_eq!(r.definition, "Subject =~ /#free/i");
        assert_eq!(r.score, Some(vec![1.5]));
        assert_eq!(r.describe.as_deref(), Some("Free stuff"));
        assert_eq!(r.tflags, ["nice", "noautolearn"]);
        assert!(c.rules.contains_key("DKIM_X"));
        assert!(!c.rules.contains_key("NO_DKIM"));
        assert!(!c.rules.contains_key("NOPE") && !c.rules.contains_key("NESTED"));
        assert_eq!(c.rules["META_X"].score, Some(vec![0.0, 1.2, 0.0, 2.5]));
        assert_eq!(c.required_score, 6.0);
        assert_eq!(c.ignored["bayes_ignore_header"], 1);
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(c.score_of(&c.rules["DKIM_X"]), 1.0);
    }

    #[test]
    fn problems_name_file_and_line() {
        let c = parse("header\nendif\nscore X one\nif (system('x'))\nendif\nbody A\n");
        let lines: Vec<usize> = c.problems.iter().map(|p| p.origin.line).collect();
        assert_eq!(lines, [1, 2, 4, 6], "{:?}", c.problems);
    }
}
