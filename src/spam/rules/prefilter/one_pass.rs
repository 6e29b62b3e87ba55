//! The one-pass stage: Hyperscan databases holding the body-like rules, compiled in the
//! background (seconds for the shipped rules: compiling at start-up would hold mail up, so
//! the literal stage answers meanwhile) or read back from the on-disk [`Cache`] at once when
//! every set of the rules is there (a start or reload with unchanged rules).

use super::cache::{Cache, Compiled};
use super::{Stage, Text};
use crate::spam::rules::hyperscan::Database;
use std::sync::{Arc, OnceLock, Weak};

/// A set of Hyperscan databases over one kind of text; together they hold every rule of
/// that kind Hyperscan accepted.
pub(super) struct OnePass {
    pub(super) kind: Text,
    pub(super) db: Database,
    /// Pattern id to plan index.
    pub(super) rules: Vec<usize>,
}

/// What the one-pass stage needs of a rule: plan index, kind, Hyperscan source and flags
/// (when it has one), and its literals (for the rules Hyperscan does not hold).
pub(super) type Offer = (usize, Text, Option<(String, u32)>, Option<Vec<Vec<u8>>>);

/// Where the stage goes once built: `None` inside when it gave up.
pub(super) type Slot = Arc<OnceLock<Option<Stage>>>;

/// Patterns per Hyperscan database: compiling a few hundred at once took twice as long as
/// the same patterns in sets of this size, and the extra passes cost little. Also the unit
/// of the on-disk cache.
const ONE_PASS_SET: usize = 128;

/// The stage for `offers`: read from `cache` at once when every set is there, else
/// compiled on a thread of its own (reading what sets it can from the cache). The slot is
/// filled when the stage is ready.
pub(super) fn start(offers: Vec<Offer>, len: usize, cache: Option<Cache>) -> Slot {
    let slot: Slot = Arc::new(OnceLock::new());
    if let Some(c) = &cache {
        let started = std::time::Instant::now();
        // Outer `None`: a set is not cached; compiled below. A library that failed its
        // self-check (`Some(None)`) is settled here, not checked again on a thread.
        if let Some(stage) = build(&offers, len, Some(c), false, &|| true) {
            if let Some(s) = &stage {
                log_ready(s, started, "read from the cache");
            }
            let _ = slot.set(stage);
            return slot;
        }
    }
    let weak = Arc::downgrade(&slot);
    let spawned = std::thread::Builder::new()
        .name("spam-one-pass".into())
        .spawn(move || compile_in_background(offers, len, cache, weak));
    if let Err(e) = spawned {
        tracing::warn!("spam: one-pass prefilter not started ({e}); literal prefilter only");
        let _ = slot.set(None);
    }
    slot
}

fn compile_in_background(
    offers: Vec<Offer>,
    len: usize,
    cache: Option<Cache>,
    target: Weak<OnceLock<Option<Stage>>>,
) {
    let started = std::time::Instant::now();
    let alive = || target.strong_count() > 0;
    // `None`: the plan was dropped meanwhile (a reload); nothing to install.
    let Some(stage) = build(&offers, len, cache.as_ref(), true, &alive) else {
        return;
    };
    if let Some(t) = target.upgrade() {
        if let Some(s) = &stage {
            log_ready(s, started, "compiled");
        }
        let _ = t.set(stage);
    }
    // Compiling left the C heap with freed pages (hundreds of MB at its peak).
    crate::spam::rules::return_freed_memory();
}

fn log_ready(stage: &Stage, started: std::time::Instant, how: &str) {
    let held: usize = stage.one_pass.iter().map(|o| o.rules.len()).sum();
    tracing::info!(
        "spam: one-pass prefilter ready: {held} rules in {} Hyperscan databases, {how} in {:.1} s ({} refused, left to the literal prefilter)",
        stage.one_pass.len(),
        started.elapsed().as_secs_f64(),
        stage.refused,
    );
}

/// The stage: one-pass databases per kind, literal automata for the rules they do not
/// hold. `compile: false` reads the cache only and gives up at the first set it lacks.
/// Outer `None`: given up (the plan is gone, or a set is not cached); inner `None`: the
/// library failed its self-check, so no one-pass stage at all.
fn build(
    offers: &[Offer],
    len: usize,
    cache: Option<&Cache>,
    compile: bool,
    alive: &dyn Fn() -> bool,
) -> Option<Option<Stage>> {
    if !crate::spam::rules::hyperscan::self_check() {
        tracing::error!(
            "spam: libhs failed its self-check (Debian's Vectorscan 5.4.9 misses matches; install libhyperscan-dev): literal prefilter only"
        );
        return Some(None);
    }
    let mut kinds: Vec<Text> = offers.iter().map(|o| o.1).collect();
    kinds.sort();
    kinds.dedup();
    let mut one_pass = Vec::new();
    let mut inside = vec![false; len];
    let mut refused = 0;
    let mut keys = Vec::new();
    for kind in kinds {
        let patterns: Vec<(usize, String, u32)> = offers
            .iter()
            .filter(|o| o.1 == kind)
            .filter_map(|(i, _, src, _)| src.as_ref().map(|(s, f)| (*i, s.clone(), *f)))
            .collect();
        for chunk in patterns.chunks(ONE_PASS_SET) {
            if !alive() {
                return None;
            }
            let (key, compiled) = set(chunk, cache, compile, alive)?;
            keys.push(key);
            refused += compiled.refused.len();
            let rules: Vec<usize> = compiled.kept.iter().map(|&p| chunk[p as usize].0).collect();
            for &i in &rules {
                inside[i] = true;
            }
            if let Some(db) = compiled.db {
                one_pass.push(OnePass { kind, db, rules });
            }
        }
    }
    if compile && let Some(c) = cache {
        c.sweep(&keys);
    }
    let mut stage = Stage::literal(
        offers.iter().filter_map(|(i, k, _, lits)| match lits {
            Some(l) if !inside[*i] => Some((*i, *k, l.as_slice())),
            _ => None,
        }),
        len,
    );
    for (f, inside) in stage.filtered.iter_mut().zip(&inside) {
        *f |= inside;
    }
    stage.one_pass = one_pass;
    stage.refused = refused;
    Some(Some(stage))
}

/// One set of patterns (`(plan index, source, flags)`): from the cache, or (with `compile`)
/// compiled and then stored; with its cache key.
fn set(
    chunk: &[(usize, String, u32)],
    cache: Option<&Cache>,
    compile: bool,
    alive: &dyn Fn() -> bool,
) -> Option<(String, Compiled)> {
    let sources: Vec<(String, u32)> = chunk.iter().map(|(_, s, f)| (s.clone(), *f)).collect();
    let key = Cache::key(&sources);
    if let Some(hit) = cache.and_then(|c| c.load(&key, sources.len())) {
        return Some((key, hit));
    }
    if !compile {
        return None;
    }
    let compiled = compile_set(&sources, alive)?;
    if let Some(c) = cache
        && compiled.db.is_some()
        && let Err(e) = c.store(&key, &compiled)
    {
        tracing::warn!(
            "spam: one-pass prefilter cache not written ({e}); the next start compiles again"
        );
    }
    Some((key, compiled))
}

/// Compiles one set; a pattern Hyperscan refuses is retried loosened ([`relax`]: no
/// lookaround or backreference) and else left out. `None` when `alive` says the plan is
/// gone.
///
/// [`relax`]: crate::spam::rules::pattern::relax
fn compile_set(sources: &[(String, u32)], alive: &dyn Fn() -> bool) -> Option<Compiled> {
    // (position in the set, source, flags, loosened already)
    let mut set: Vec<(u32, String, u32, bool)> = sources
        .iter()
        .enumerate()
        .map(|(p, (s, f))| (p as u32, s.clone(), *f, false))
        .collect();
    let mut refused = Vec::new();
    // What Hyperscan cannot parse is loosened or left out pattern by pattern first: a
    // refusal found by compiling the set costs the whole set's compile again.
    set.retain_mut(|(p, source, flags, loosened)| {
        if crate::spam::rules::hyperscan::parses(source, *flags) {
            return true;
        }
        let relaxed = crate::spam::rules::pattern::relax(source);
        if relaxed != *source && crate::spam::rules::hyperscan::parses(&relaxed, *flags) {
            *source = relaxed;
            *loosened = true;
            return true;
        }
        refused.push(*p);
        false
    });
    // A failed compile names one pattern (one the parse let through: too large, say); the
    // set shrinks every round.
    while !set.is_empty() {
        if !alive() {
            return None;
        }
        let now: Vec<(String, u32)> = set.iter().map(|(_, s, f, _)| (s.clone(), *f)).collect();
        match Database::compile(&now) {
            Ok(db) => {
                return Some(Compiled {
                    kept: set.iter().map(|x| x.0).collect(),
                    refused,
                    db: Some(db),
                });
            }
            Err(e) => match e.pattern.filter(|&bad| bad < set.len()) {
                Some(bad) if !set[bad].3 => {
                    set[bad].1 = crate::spam::rules::pattern::relax(&set[bad].1);
                    set[bad].3 = true;
                }
                Some(bad) => refused.push(set.remove(bad).0),
                None => {
                    refused.extend(set.iter().map(|x| x.0));
                    break;
                }
            },
        }
    }
    Some(Compiled {
        kept: Vec::new(),
        refused,
        db: None,
    })
}
