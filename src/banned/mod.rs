//! Banned files: names, MIME types and detected types that a site refuses, with amavisd-new's
//! semantics (see [`rules`]). Reads the decoder's parts; returns which part is banned and by
//! which rule, for the verdict and the log.

pub mod rules;

pub use rules::{Action, Rule, RuleSpec, default_specs};

use crate::decode::{Decoded, Part};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The `[banned]` table: named, ordered rule sets. The policy picks a set by name
/// (`policy.banned_rules`, amavisd-new's `%banned_rules` / `banned_rulenames`); `DEFAULT` is
/// the built-in set unless the file defines one of that name.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BannedConfig {
    /// Rule sets by name, each an ordered list of `{ regex | glob, action, why }`.
    pub rule_sets: BTreeMap<String, Vec<RuleSpec>>,
}

impl BannedConfig {
    /// Compiles every set; the error is `(key path, reason)`.
    pub fn compile(&self) -> Result<BTreeMap<String, RuleSet>, (String, String)> {
        let mut sets = BTreeMap::new();
        sets.insert("DEFAULT".to_string(), RuleSet::defaults());
        for (name, specs) in &self.rule_sets {
            for (i, spec) in specs.iter().enumerate() {
                Rule::compile(spec).map_err(|e| (format!("rule_sets.{name}[{i}]"), e))?;
            }
            let set =
                RuleSet::compile(name, specs).map_err(|e| (format!("rule_sets.{name}"), e))?;
            sets.insert(name.clone(), set);
        }
        Ok(sets)
    }
}

pub use crate::message::BannedHit;

/// A compiled, ordered rule set.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub name: String,
    pub rules: Vec<Rule>,
}

impl RuleSet {
    /// Compiles `specs`; errors name the rule's position.
    pub fn compile(name: &str, specs: &[RuleSpec]) -> Result<RuleSet, String> {
        let rules = specs
            .iter()
            .enumerate()
            .map(|(i, s)| Rule::compile(s).map_err(|e| format!("rule {}: {e}", i + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RuleSet {
            name: name.to_string(),
            rules,
        })
    }

    /// amavisd-new's shipped defaults.
    pub fn defaults() -> RuleSet {
        // The defaults are constants tested below; compiling them cannot fail.
        Self::compile("DEFAULT", &default_specs()).unwrap_or(RuleSet {
            name: "DEFAULT".into(),
            rules: Vec::new(),
        })
    }
}

/// The keys of one node: `(label, value)` with amavisd-new's labels N, T, M, A.
fn keys(p: &Part) -> Vec<(&'static str, String)> {
    let mut k = Vec::new();
    for n in p.name.iter().chain(&p.other_names) {
        k.push(("N", n.clone()));
    }
    for t in &p.types {
        k.push(("T", format!(".{t}")));
    }
    if let Some(m) = &p.mime_type {
        k.push(("M", m.clone()));
    }
    if p.undecipherable.is_some() {
        k.push(("A", "UNDECIPHERABLE".into()));
    }
    k
}

/// Every banned leaf of `decoded` under `rules`, in part order.
pub fn check(decoded: &Decoded, rules: &RuleSet) -> Vec<BannedHit> {
    let mut hits = Vec::new();
    for (i, part) in decoded.parts.iter().enumerate() {
        if part.opened {
            continue;
        }
        // The path from the message down to this part.
        let mut path: Vec<&Part> = decoded.ancestors(i).collect();
        path.reverse();
        path.push(part);
        let node_keys: Vec<(&Part, Vec<(&'static str, String)>)> =
            path.iter().map(|p| (*p, keys(p))).collect();
        'rules: for rule in &rules.rules {
            for (node, ks) in &node_keys {
                for (label, value) in ks {
                    if rule.matches(value) {
                        if rule.action == Action::Ban {
                            let whose = if std::ptr::eq(*node, part) {
                                String::new()
                            } else {
                                format!(" (container {})", node.id)
                            };
                            hits.push(BannedHit {
                                part: part.id.clone(),
                                level: part.level.clone(),
                                key: format!("{label}={value}{whose}"),
                                rule: rule.pattern.clone(),
                                why: rule.why.clone(),
                            });
                        }
                        break 'rules;
                    }
                }
            }
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perl_look_ahead_as_amavisd_new_ships_it() {
        let spec = RuleSpec {
            regex: Some(
                r"(?i)^(?!cid:).*\.[^./]*[A-Za-z][^./]*\.\s*(exe|vbs|pif|scr)[.\s]*$".into(),
            ),
            glob: None,
            action: Action::Ban,
            why: String::new(),
        };
        let rule = Rule::compile(&spec).expect("look-ahead compiles");
        assert!(rule.matches("invoice.pdf.exe"));
        assert!(!rule.matches("cid:part1.pdf.exe"));
        assert!(!rule.matches("report.pdf"));
    }

    #[test]
    fn defaults_compile() {
        assert_eq!(RuleSet::defaults().rules.len(), default_specs().len());
    }

    #[test]
    fn glob_and_errors() {
        let spec = RuleSpec {
            regex: None,
            glob: Some("*.DOCM".into()),
            action: Action::Ban,
            why: String::new(),
        };
        let r = Rule::compile(&spec).unwrap();
        assert!(r.matches("report.docm") && !r.matches("report.docx"));
        let both = RuleSpec {
            regex: Some("x".into()),
            ..spec.clone()
        };
        assert!(Rule::compile(&both).is_err());
        let bad = RuleSpec {
            regex: Some("(".into()),
            glob: None,
            ..spec
        };
        assert!(
            RuleSet::compile("X", &[bad])
                .unwrap_err()
                .starts_with("rule 1: bad regex")
        );
    }
}
