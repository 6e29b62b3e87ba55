//! A literal prefilter across the body-like rules: every match of most rules starts with one
//! of a few literals (`regex-syntax` extracts them), so one Aho-Corasick pass over each kind
//! of text finds which rules can match at all, and the others are not run. Sound by
//! construction: literals are compared without case (a superset of what the rule needs),
//! cut at line breaks (the texts are joined with them), and rules without a usable literal
//! set always run.

use crate::spam::rules::cf::Kind;
use crate::spam::rules::pattern::Pattern;
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

/// A set of Hyperscan databases over one kind of text; together they hold every rule of
/// that kind Hyperscan accepted.
#[cfg(hyperscan)]
struct OnePass {
    kind: Kind,
    db: crate::spam::rules::hyperscan::Database,
    /// Pattern id to plan index.
    rules: Vec<usize>,
}

/// One way of ruling rules out: literal automata, and (once compiled) one-pass databases
/// for the rules they hold.
#[derive(Default)]
struct Stage {
    tables: Vec<(Kind, Table)>,
    #[cfg(hyperscan)]
    one_pass: Vec<OnePass>,
    /// Plan indexes that some table or database stands for (the others always run).
    filtered: Vec<bool>,
}

/// What the background compile needs of a rule: plan index, kind, Hyperscan source and
/// flags (when it has one), and its literals (for the rules Hyperscan does not hold).
#[cfg(hyperscan)]
type Offer = (usize, Kind, Option<(String, u32)>, Option<Vec<Vec<u8>>>);

/// The prefilter of a plan: the literal stage from the start and, in a build with
/// Hyperscan, the one-pass stage once its background compile is done (it takes seconds for
/// the shipped rules: compiling it at start-up would hold mail up, so the literal stage
/// answers meanwhile; both give the same results).
#[derive(Default)]
pub struct Prefilter {
    literal: Stage,
    #[cfg(hyperscan)]
    /// Set once the background compile ends: the stage, or `None` when it gave up.
    one_pass: std::sync::Arc<std::sync::OnceLock<Option<Stage>>>,
}

/// Patterns per Hyperscan database: compiling a few hundred at once took twice as long as
/// the same patterns in sets of this size, and the extra passes cost little.
#[cfg(hyperscan)]
const ONE_PASS_SET: usize = 128;

/// Compiles one kind's patterns (`(plan index, source, flags)`) in sets of
/// [`ONE_PASS_SET`]; a pattern Hyperscan refuses is retried loosened ([`relax`]: no
/// lookaround or backreference) and else left out. `None` when `alive` says the plan is
/// gone. Also returns the plan indexes left out.
///
/// [`relax`]: crate::spam::rules::pattern::relax
#[cfg(hyperscan)]
fn compile_one_pass(
    kind: Kind,
    patterns: Vec<(usize, String, u32)>,
    alive: &dyn Fn() -> bool,
) -> Option<(Vec<OnePass>, Vec<usize>)> {
    use crate::spam::rules::hyperscan::Database;
    let mut out = Vec::new();
    let mut refused = Vec::new();
    for chunk in patterns.chunks(ONE_PASS_SET) {
        let mut set: Vec<(usize, String, u32, bool)> = chunk
            .iter()
            .map(|(i, s, f)| (*i, s.clone(), *f, false))
            .collect();
        // Each failed compile names one pattern; the set shrinks every round.
        while !set.is_empty() {
            if !alive() {
                return None;
            }
            let sources: Vec<(String, u32)> =
                set.iter().map(|(_, s, f, _)| (s.clone(), *f)).collect();
            match Database::compile(&sources) {
                Ok(db) => {
                    let rules = set.iter().map(|(i, ..)| *i).collect();
                    out.push(OnePass { kind, db, rules });
                    break;
                }
                Err(e) => match e.pattern.filter(|&bad| bad < set.len()) {
                    Some(bad) if !set[bad].3 => {
                        set[bad].1 = crate::spam::rules::pattern::relax(&set[bad].1);
                        set[bad].3 = true;
                    }
                    Some(bad) => refused.push(set.remove(bad).0),
                    None => {
                        refused.extend(set.iter().map(|(i, ..)| *i));
                        break;
                    }
                },
            }
        }
    }
    Some((out, refused))
}

impl Stage {
    /// Literal automata for `rules` (`(plan index, kind, literals)`).
    fn literal<'a>(rules: impl Iterator<Item = (usize, Kind, &'a [Vec<u8>])>, len: usize) -> Stage {
        // Per kind: the literals, and for each the rules it stands for.
        type Literals = (Kind, Vec<Vec<u8>>, Vec<Vec<usize>>);
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
        }
    }

    fn candidates<'t>(&self, texts: &dyn Fn(Kind) -> std::borrow::Cow<'t, [u8]>) -> Vec<bool> {
        let mut may = self.filtered.iter().map(|f| !f).collect::<Vec<bool>>();
        // Each kind's text once, borrowed by every database and table of that kind (the
        // header text is assembled per message; a copy per database was wasted work).
        let mut kinds: Vec<Kind> = self.tables.iter().map(|(k, _)| *k).collect();
        #[cfg(hyperscan)]
        kinds.extend(self.one_pass.iter().map(|o| o.kind));
        kinds.sort();
        kinds.dedup();
        let cache: Vec<(Kind, std::borrow::Cow<'t, [u8]>)> =
            kinds.into_iter().map(|k| (k, texts(k))).collect();
        let text_of = |kind: Kind| -> &[u8] {
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
    /// Builds the literal automata for `rules` (plan order: `(index, kind, pattern, Perl
    /// literal)`) and, with Hyperscan, starts compiling the one-pass stage in the
    /// background.
    pub fn build<'a>(
        rules: impl Iterator<Item = (usize, Kind, &'a Pattern, Option<String>)>,
        len: usize,
    ) -> Prefilter {
        let rules: Vec<_> = rules
            .filter(|(_, kind, _, _)| {
                matches!(
                    kind,
                    Kind::Header | Kind::Body | Kind::Rawbody | Kind::Uri | Kind::Full
                )
            })
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
            let offers: Vec<Offer> = rules
                .into_iter()
                .map(|(i, kind, lits, lit)| {
                    let src = lit
                        .as_deref()
                        .and_then(crate::spam::rules::pattern::hyperscan_source);
                    (i, kind, src, lits)
                })
                .collect();
            let one_pass = std::sync::Arc::new(std::sync::OnceLock::new());
            let weak = std::sync::Arc::downgrade(&one_pass);
            let spawned = std::thread::Builder::new()
                .name("spam-one-pass".into())
                .spawn(move || build_one_pass(offers, len, weak));
            if let Err(e) = spawned {
                tracing::warn!(
                    "spam: one-pass prefilter not started ({e}); literal prefilter only"
                );
                let _ = one_pass.set(None);
            }
            Prefilter { literal, one_pass }
        }
        #[cfg(not(hyperscan))]
        Prefilter { literal }
    }

    /// Which rules may run: `true` for every rule no table or database stands for, and
    /// for those whose literal or pattern appears in the text of their kind (`texts` gives
    /// it, lines joined).
    /// `literal_only` keeps to the literal stage (for tests that compare the two).
    pub fn candidates<'t>(
        &self,
        literal_only: bool,
        texts: impl Fn(Kind) -> std::borrow::Cow<'t, [u8]>,
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

/// The background compile: one-pass databases per kind, literal automata for the rules they
/// do not hold; installed in `target` unless the plan was dropped meanwhile (a reload).
#[cfg(hyperscan)]
fn build_one_pass(
    offers: Vec<Offer>,
    len: usize,
    target: std::sync::Weak<std::sync::OnceLock<Option<Stage>>>,
) {
    let started = std::time::Instant::now();
    if !crate::spam::rules::hyperscan::self_check() {
        tracing::error!(
            "spam: libhs failed its self-check (Debian's Vectorscan 5.4.9 misses matches; install libhyperscan-dev): literal prefilter only"
        );
        if let Some(t) = target.upgrade() {
            let _ = t.set(None);
        }
        return;
    }
    let alive = || target.strong_count() > 0;
    let mut kinds: Vec<Kind> = offers.iter().map(|o| o.1).collect();
    kinds.sort();
    kinds.dedup();
    let mut one_pass = Vec::new();
    let mut inside = vec![false; len];
    let mut refused = 0;
    for kind in kinds {
        let patterns = offers
            .iter()
            .filter(|o| o.1 == kind)
            .filter_map(|(i, _, src, _)| src.as_ref().map(|(s, f)| (*i, s.clone(), *f)))
            .collect();
        let Some((dbs, left_out)) = compile_one_pass(kind, patterns, &alive) else {
            return;
        };
        refused += left_out.len();
        for db in &dbs {
            for &i in &db.rules {
                inside[i] = true;
            }
        }
        one_pass.extend(dbs);
    }
    let mut stage = Stage::literal(
        offers.iter().filter_map(|(i, k, _, lits)| match lits {
            Some(l) if !inside[*i] => Some((*i, *k, l.as_slice())),
            _ => None,
        }),
        len,
    );
    let held: usize = one_pass.iter().map(|o| o.rules.len()).sum();
    let sets = one_pass.len();
    for (f, inside) in stage.filtered.iter_mut().zip(&inside) {
        *f |= inside;
    }
    stage.one_pass = one_pass;
    if let Some(t) = target.upgrade() {
        let _ = t.set(Some(stage));
        tracing::info!(
            "spam: one-pass prefilter ready: {held} rules in {sets} Hyperscan databases, compiled in {:.1} s ({refused} refused, left to the literal prefilter)",
            started.elapsed().as_secs_f64()
        );
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
                .map(|(i, p)| (i, Kind::Body, p, None)),
            2,
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
