//! A literal prefilter across the body-like rules: every match of most rules starts with one
//! of a few literals (`regex-syntax` extracts them), so one Aho-Corasick pass over each kind
//! of text finds which rules can match at all, and the others are not run. Sound by
//! construction: literals are compared without case (a superset of what the rule needs),
//! cut at line breaks (the texts are joined with them), and rules without a usable literal
//! set always run.
//!
//! With Hyperscan, a one-pass stage ([`one_pass`]) takes over once ready: the rules' own
//! patterns in a few databases, kept compiled on disk ([`cache`]) so that a start with
//! unchanged rules has it at once.

use crate::spam::rules::cf::Kind;
use crate::spam::rules::pattern::Pattern;
use aho_corasick::AhoCorasick;

#[cfg(hyperscan)]
mod cache;
#[cfg(hyperscan)]
mod one_pass;
#[cfg(hyperscan)]
mod source;
use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// The text a table or database scans: each kind of body-like rule has its own, and
/// header rules two (see [`Text::of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Text {
    /// The values of the header fields rules test, apart from the wide ones.
    Fields,
    /// Whole header blocks, the Received chain and the relay pseudo-fields: several times
    /// the size of the other fields together, and tested by few rules. Scanned apart, the
    /// many rules on single fields no longer pass over them (Hyperscan's time grows with
    /// text and rules together).
    WideFields,
    Body,
    Rawbody,
    Uri,
    Full,
}

impl Text {
    /// The text a rule of `kind` is prefiltered on (`spec`: the field a header rule
    /// tests); `None` for the kinds the prefilter does not take.
    pub fn of(kind: Kind, spec: Option<&str>) -> Option<Text> {
        Some(match kind {
            Kind::Header => {
                let name = spec.unwrap_or("").split(':').next().unwrap_or("").trim();
                let wide = name == "ALL"
                    || name.starts_with("ALL-")
                    || name.eq_ignore_ascii_case("Received")
                    || name.starts_with("X-Spam-Relays-");
                if wide { Text::WideFields } else { Text::Fields }
            }
            Kind::Body => Text::Body,
            Kind::Rawbody => Text::Rawbody,
            Kind::Uri => Text::Uri,
            Kind::Full => Text::Full,
            _ => return None,
        })
    }
}

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

/// One way of ruling rules out: literal automata, and (once compiled) one-pass databases
/// for the rules they hold.
#[derive(Default)]
struct Stage {
    tables: Vec<(Text, Table)>,
    #[cfg(hyperscan)]
    one_pass: Vec<one_pass::OnePass>,
    /// Plan indexes that some table or database stands for (the others always run).
    filtered: Vec<bool>,
    /// Rules Hyperscan refused (left to the literal automata).
    #[cfg(hyperscan)]
    refused: usize,
}

/// The prefilter of a plan: the literal stage from the start and, in a build with
/// Hyperscan, the one-pass stage once its background compile is done (it takes seconds for
/// the shipped rules: compiling it at start-up would hold mail up, so the literal stage
/// answers meanwhile; both give the same results).
#[derive(Default)]
pub struct Prefilter {
    literal: Stage,
    #[cfg(hyperscan)]
    /// Set once the one-pass stage is ready: the stage, or `None` when it gave up.
    one_pass: one_pass::Slot,
}

impl Stage {
    /// Literal automata for `rules` (`(plan index, kind, literals)`).
    fn literal<'a>(rules: impl Iterator<Item = (usize, Text, &'a [Vec<u8>])>, len: usize) -> Stage {
        // Per kind: the literals, and for each the rules it stands for.
        type Literals = (Text, Vec<Vec<u8>>, Vec<Vec<usize>>);
        let mut per_kind: Vec<Literals> = Vec::new();
        let mut filtered = vec![false; len];
        for (i, kind, lits) in rules {
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
                match patterns.iter().position(|x| x == l) {
                    Some(at) => owners[at].push(i),
                    None => {
                        patterns.push(l.clone());
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
        Stage {
            tables,
            #[cfg(hyperscan)]
            one_pass: Vec::new(),
            filtered,
            #[cfg(hyperscan)]
            refused: 0,
        }
    }

    fn candidates<'t>(&self, texts: &dyn Fn(Text) -> std::borrow::Cow<'t, [u8]>) -> Vec<bool> {
        let mut may = self.filtered.iter().map(|f| !f).collect::<Vec<bool>>();
        // Each kind's text once, borrowed by every database and table of that kind (the
        // header text is assembled per message; a copy per database was wasted work).
        let mut kinds: Vec<Text> = self.tables.iter().map(|(k, _)| *k).collect();
        #[cfg(hyperscan)]
        kinds.extend(self.one_pass.iter().map(|o| o.kind));
        kinds.sort();
        kinds.dedup();
        let cache: Vec<(Text, std::borrow::Cow<'t, [u8]>)> =
            kinds.into_iter().map(|k| (k, texts(k))).collect();
        let text_of = |kind: Text| -> &[u8] {
            cache
                .iter()
                .find(|(k, _)| *k == kind)
                .map_or(&[][..], |(_, t)| t.as_ref())
        };
        #[cfg(hyperscan)]
        for one in &self.one_pass {
            let text = text_of(one.kind);
            let scanned = one.db.scan(text, &mut |id| {
                if let Some(&rule) = one.rules.get(id) {
                    may[rule] = true;
                }
            });
            if !scanned {
                for &rule in &one.rules {
                    may[rule] = true;
                }
            }
        }
        for (kind, table) in &self.tables {
            let Some(ac) = &table.automaton else { continue };
            let text = text_of(*kind);
            for m in ac.find_overlapping_iter(text) {
                for &rule in &table.owners[m.pattern().as_usize()] {
                    may[rule] = true;
                }
            }
        }
        may
    }
}

impl Prefilter {
    /// Builds the literal automata for `rules` (plan order: `(index, text, pattern, Perl
    /// literal)`, the plan picking each rule's [`Text`]) and, with Hyperscan, starts
    /// compiling the one-pass stage in the background.
    pub fn build<'a>(
        rules: impl Iterator<Item = (usize, Text, &'a Pattern, Option<String>)>,
        len: usize,
        cache_dir: Option<&std::path::Path>,
    ) -> Prefilter {
        let rules: Vec<_> = rules
            .map(|(i, kind, p, lit)| (i, kind, source(p).and_then(prefix_literals), lit))
            .collect();
        let literal = Stage::literal(
            rules
                .iter()
                .filter_map(|(i, k, lits, _)| lits.as_deref().map(|l| (*i, *k, l))),
            len,
        );
        #[cfg(hyperscan)]
        {
            let offers: Vec<one_pass::Offer> = rules
                .into_iter()
                .map(|(i, kind, lits, lit)| {
                    let src = lit.as_deref().and_then(source::hyperscan_source);
                    (i, kind, src, lits)
                })
                .collect();
            let one_pass = one_pass::start(offers, len, cache_dir.map(cache::Cache::new));
            Prefilter { literal, one_pass }
        }
        #[cfg(not(hyperscan))]
        {
            let _ = cache_dir;
            Prefilter { literal }
        }
    }

    /// Which rules may run: `true` for every rule no table or database stands for, and
    /// for those whose literal or pattern appears in the text of their kind (`texts` gives
    /// it, lines joined).
    /// `literal_only` keeps to the literal stage (for tests that compare the two).
    pub fn candidates<'t>(
        &self,
        literal_only: bool,
        texts: impl Fn(Text) -> std::borrow::Cow<'t, [u8]>,
    ) -> Vec<bool> {
        if literal_only {
            return self.literal.candidates(&texts);
        }
        self.stage().candidates(&texts)
    }

    fn stage(&self) -> &Stage {
        #[cfg(hyperscan)]
        if let Some(Some(s)) = self.one_pass.get() {
            return s;
        }
        &self.literal
    }

    /// How many rules the prefilter stands for (so far: the one-pass stage adds some once
    /// compiled).
    pub fn filtered_rules(&self) -> usize {
        self.stage().filtered.iter().filter(|f| **f).count()
    }

    /// How many rules the one-pass (Hyperscan) databases hold; 0 until they are compiled,
    /// and in a build without Hyperscan.
    pub fn one_pass_rules(&self) -> usize {
        #[cfg(hyperscan)]
        if let Some(Some(s)) = self.one_pass.get() {
            return s.one_pass.iter().map(|o| o.rules.len()).sum();
        }
        0
    }

    /// Which stage answers, for `amavisd status`: the one-pass databases once ready, the
    /// literal automata before (while the one-pass stage compiles) or without Hyperscan.
    pub fn describe(&self) -> String {
        #[cfg(hyperscan)]
        match self.one_pass.get() {
            Some(Some(s)) => {
                return format!(
                    "one-pass: {} rules in {} Hyperscan databases",
                    self.one_pass_rules(),
                    s.one_pass.len()
                );
            }
            None => return "literal (the one-pass stage is compiling)".into(),
            Some(None) => {}
        }
        "literal".into()
    }

    /// Whether the one-pass stage is settled: ready, or given up (always, without
    /// Hyperscan). Before, the literal stage answers while it compiles.
    pub fn one_pass_settled(&self) -> bool {
        #[cfg(hyperscan)]
        return self.one_pass.get().is_some();
        #[cfg(not(hyperscan))]
        true
    }

    /// Waits up to `limit` for the one-pass stage (benchmarks and tests that measure or
    /// check it) or for its compile to give up; whether it is in use. `false` at once in a build without Hyperscan.
    pub fn wait_one_pass(&self, limit: std::time::Duration) -> bool {
        #[cfg(hyperscan)]
        {
            let until = std::time::Instant::now() + limit;
            while self.one_pass.get().is_none() && std::time::Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            matches!(self.one_pass.get(), Some(Some(_)))
        }
        #[cfg(not(hyperscan))]
        {
            let _ = limit;
            false
        }
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
            crate::spam::rules::pattern::compile("/(?:buy|order) now/i").unwrap(),
            crate::spam::rules::pattern::compile("/.*x/").unwrap(),
        ];
        let pf = Prefilter::build(
            rules
                .iter()
                .enumerate()
                .map(|(i, p)| (i, Text::Body, p, None)),
            2,
            None,
        );
        assert_eq!(pf.filtered_rules(), 1);
        assert_eq!(
            pf.candidates(false, |_| b"please ORDER NOW"[..].into()),
            vec![true, true]
        );
        assert_eq!(
            pf.candidates(false, |_| b"nothing to see"[..].into()),
            vec![false, true]
        );
    }
}
