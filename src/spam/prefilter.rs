//! A literal prefilter across the body-like rules: every match of most rules starts with one
//! of a few literals (`regex-syntax` extracts them), so one Aho-Corasick pass over each kind
//! of text finds which rules can match at all, and the others are not run. Sound by
//! construction: literals are compared without case (a superset of what the rule needs),
//! cut at line breaks (the texts are joined with them), and rules without a usable literal
//! set always run.

use super::cf::Kind;
use super::pattern::Pattern;
use aho_corasick::AhoCorasick;
use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// Literals shorter than this would pass almost every text; such rules just run.
const MIN_LITERAL: usize = 3;

/// The literals every match of `pattern` starts with, lower case; `None` when there is no
/// such finite set worth checking.
fn prefix_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    if !seq.is_finite() || seq.min_literal_len()? < MIN_LITERAL {
        return None;
    }
    // Texts are joined with line breaks: a literal is cut at its first one (what comes before
    // is still a prefix every match starts with).
    let mut out: Vec<Vec<u8>> = seq
        .literals()?
        .iter()
        .map(|l| {
            let b = l.as_bytes();
            let end = b.iter().position(|&c| c == b'\n').unwrap_or(b.len());
            b[..end].to_ascii_lowercase()
        })
        .collect();
    if out.iter().any(|l| l.len() < MIN_LITERAL) {
        return None;
    }
    out.sort();
    out.dedup();
    Some(out)
}

/// The pattern text a rule's literals are taken from: the linear-time regex itself, or the
/// loosened twin in front of a backtracking one (its matches include the rule's).
fn source(p: &Pattern) -> Option<&str> {
    p.linear_source()
}

/// One automaton per kind of text.
#[derive(Default)]
struct Table {
    automaton: Option<AhoCorasick>,
    /// For each literal, the rules (plan indexes) it stands for.
    owners: Vec<Vec<usize>>,
}

/// The prefilter of a plan.
#[derive(Default)]
pub struct Prefilter {
    tables: Vec<(Kind, Table)>,
    /// Plan indexes that have a literal set (the others always run).
    filtered: Vec<bool>,
}

impl Prefilter {
    /// Builds the automata for `rules` (plan order: `(index, kind, pattern)`).
    pub fn build<'a>(
        rules: impl Iterator<Item = (usize, Kind, &'a Pattern)>,
        len: usize,
    ) -> Prefilter {
        // Per kind: the literals, and for each the rules it stands for.
        type Literals = (Kind, Vec<Vec<u8>>, Vec<Vec<usize>>);
        let mut per_kind: Vec<Literals> = Vec::new();
        let mut filtered = vec![false; len];
        for (i, kind, p) in rules {
            if !matches!(kind, Kind::Body | Kind::Rawbody | Kind::Uri | Kind::Full) {
                continue;
            }
            let Some(lits) = source(p).and_then(prefix_literals) else {
                continue;
            };
            filtered[i] = true;
            let entry = match per_kind.iter_mut().position(|(k, _, _)| *k == kind) {
                Some(e) => e,
                None => {
                    per_kind.push((kind, Vec::new(), Vec::new()));
                    per_kind.len() - 1
                }
            };
            let (_, patterns, owners) = &mut per_kind[entry];
            for l in lits {
                match patterns.iter().position(|x| *x == l) {
                    Some(at) => owners[at].push(i),
                    None => {
                        patterns.push(l);
                        owners.push(vec![i]);
                    }
                }
            }
        }
        let tables = per_kind
            .into_iter()
            .map(|(kind, patterns, owners)| {
                let automaton = AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(&patterns)
                    .ok();
                if automaton.is_none() {
                    // Without an automaton nothing can be ruled out.
                    for o in owners.iter().flatten() {
                        filtered[*o] = false;
                    }
                }
                (kind, Table { automaton, owners })
            })
            .collect();
        Prefilter { tables, filtered }
    }

    /// Which rules may run: `true` for every rule without a literal set, and for those
    /// whose literal appears in the text of their kind (`texts` gives it, lines joined).
    pub fn candidates<'t>(&self, texts: impl Fn(Kind) -> std::borrow::Cow<'t, [u8]>) -> Vec<bool> {
        let mut may = self.filtered.iter().map(|f| !f).collect::<Vec<bool>>();
        for (kind, table) in &self.tables {
            let Some(ac) = &table.automaton else { continue };
            let text = texts(*kind);
            for m in ac.find_overlapping_iter(&text) {
                for &rule in &table.owners[m.pattern().as_usize()] {
                    may[rule] = true;
                }
            }
        }
        may
    }

    /// How many rules have a literal set.
    pub fn filtered_rules(&self) -> usize {
        self.filtered.iter().filter(|f| **f).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_soundness() {
        let l = prefix_literals("(?i)free money").unwrap();
        assert!(
            !l.is_empty() && l.iter().all(|x| x.starts_with(b"fre")),
            "{l:?}"
        );
        let l = prefix_literals("(?-u)(?:buy|order) now").unwrap();
        assert_eq!(l, vec![b"buy now".to_vec(), b"order now".to_vec()]);
        assert!(prefix_literals(r"(?-u)\bcheap\s+pills").is_some());
        assert!(
            prefix_literals(r"(?-u).*money").is_none(),
            "no prefix literal"
        );
        assert!(
            prefix_literals(r"(?-u)a\nbcd").is_none(),
            "cut at the line break: too short"
        );
        assert_eq!(
            prefix_literals(r"(?-u)abcd\nx"),
            Some(vec![b"abcd".to_vec()])
        );
        let rules = [
            crate::spam::pattern::compile("/(?:buy|order) now/i").unwrap(),
            crate::spam::pattern::compile("/.*x/").unwrap(),
        ];
        let pf = Prefilter::build(rules.iter().enumerate().map(|(i, p)| (i, Kind::Body, p)), 2);
        assert_eq!(pf.filtered_rules(), 1);
        assert_eq!(
            pf.candidates(|_| b"please ORDER NOW"[..].into()),
            vec![true, true]
        );
        assert_eq!(
            pf.candidates(|_| b"nothing to see"[..].into()),
            vec![false, true]
        );
    }
}
