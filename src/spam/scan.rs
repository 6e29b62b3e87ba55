//! Runs a [`Plan`] over a [`MessageView`]: each rule that hits becomes a symbol with its score
//! (rspamd's model), metas are evaluated over the hit counts once their rules have run, and
//! the total is compared with `required_score`.
//!
//! Early stop: with `stop_at` set, the scan ends as soon as the score already reached cannot
//! fall below `stop_at` whatever the remaining rules do (every negative score still to come
//! counted against it). The caller sets it to the highest level it acts on (amavisd-new's
//! kill level) and leaves it off when a full report is wanted.

use super::eval::{self, Ctx};
use super::view::MessageView;
use super::view::uri::Links;
use crate::spam::rules::cf::Kind;
use crate::spam::rules::plan::{Plan, Rule, Test};
use crate::spam::rules::prefilter::Text;
use std::collections::HashMap;

/// One rule that hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub name: String,
    /// The score it adds (per-match score times the count for `multiple` rules).
    pub score: f64,
    pub count: u32,
    pub describe: String,
}

/// The result of a scan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub score: f64,
    pub required: f64,
    /// Scoring rules that hit, by name (sub-rules `__X` are not listed).
    pub hits: Vec<Hit>,
    /// Sub-rules (`__X`) that hit, by name: SpamAssassin's `subtests`, for debugging.
    pub subtests: Vec<String>,
    /// The scan ended before every rule ran.
    pub stopped_early: bool,
    /// What autolearning weighs (SpamAssassin's autolearn points).
    pub learn_points: LearnPoints,
    /// The hosts and addresses the message links to (what rspamd reports as `urls` and
    /// `emails`).
    pub links: Links,
}

/// SpamAssassin's autolearn points of a scan: the hit rules' scores without Bayes, leaving
/// out rules with `tflags noautolearn`, and those with `tflags learn` (the BAYES_ rules)
/// counted apart.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LearnPoints {
    /// The score as autolearning sees it.
    pub points: f64,
    /// Of which from header rules, and from body rules.
    pub head: f64,
    pub body: f64,
    /// What the learner (Bayes) said, in points.
    pub learned: f64,
    /// A hit rule has `tflags autolearn_force`: the header and body minimums do not apply.
    pub force: bool,
}

impl Outcome {
    /// SpamAssassin's verdict: score at or above `required_score`.
    pub fn is_spam(&self) -> bool {
        self.score >= self.required
    }

    /// The `tests=` list: names, comma separated, `none` when empty.
    pub fn tests(&self) -> String {
        if self.hits.is_empty() {
            return "none".into();
        }
        self.hits
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Options for one scan.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub stop_at: Option<f64>,
    /// The message's Bayes probability (read by the BAYES_xx rules of a plan compiled with
    /// Bayes on).
    pub bayes: Option<f64>,
    /// Which prefilter rules out rules before they run; only tests and the harness choose.
    pub prefilter: PrefilterUse,
}

/// Which prefilter a scan uses. All of them give the same result (tests check it); they
/// differ in speed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PrefilterUse {
    /// The one-pass stage once compiled, the literal one until then.
    #[default]
    Best,
    /// Literals only.
    Literal,
    /// None: every rule runs.
    Off,
}

fn max_hits(r: &Rule) -> u32 {
    if r.tflags.multiple {
        r.tflags.maxhits.unwrap_or(u32::MAX)
    } else {
        1
    }
}

/// Fills `%{NAME}` from the captured tags; `None` when one is unset.
/// Also gives the values filled in.
fn fill<'t>(template: &str, tags: &'t HashMap<String, String>) -> Option<(String, Vec<&'t str>)> {
    let mut out = String::with_capacity(template.len());
    let mut values = Vec::new();
    let mut rest = template;
    while let Some(p) = rest.find("%{") {
        out.push_str(&rest[..p]);
        let end = rest[p..].find('}')? + p;
        let value = tags.get(&rest[p + 2..end])?;
        out.push_str(&regex::escape(value));
        values.push(value.as_str());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some((out, values))
}

/// The text a body-like rule of `kind` runs over, its pieces joined by line breaks; `None`
/// for the other kinds.
fn joined_text(view: &MessageView, kind: Kind) -> Option<&[u8]> {
    match kind {
        Kind::Body => Some(&view.body_joined),
        Kind::Rawbody => Some(&view.rawbody_joined),
        Kind::Uri => Some(&view.uris_joined),
        Kind::Full => Some(&view.full),
        _ => None,
    }
}

/// Runs a `%{NAME}` rule: the definition completed and compiled for this message.
fn run_template(
    r: &Rule,
    def: &str,
    view: &MessageView,
    ctx: &Ctx,
    tags: &HashMap<String, String>,
) -> u32 {
    let Some((def, values)) = fill(def, tags) else {
        return 0;
    };
    // Each tag value is a literal of the completed pattern: a text without it cannot match,
    // and compiling the pattern for nothing cost more than all other uri rules.
    if let Some(text) = joined_text(view, r.kind) {
        let present =
            |v: &[u8]| v.is_empty() || text.windows(v.len()).any(|w| w.eq_ignore_ascii_case(v));
        if !values.iter().all(|v| present(v.as_bytes())) {
            return 0;
        }
    }
    let test = match r.kind {
        Kind::Header => crate::spam::view::headers::HeaderTest::parse(&def).map(Test::Header),
        kind => crate::spam::rules::pattern::literal_of(kind, &def)
            .ok_or_else(|| "no regex".to_string())
            .and_then(|l| crate::spam::rules::pattern::compile(&l))
            .map(Test::Pattern),
    };
    let Ok(test) = test else { return 0 };
    let filled = Rule {
        name: r.name.clone(),
        captures: false,
        kind: r.kind,
        test,
        score: r.score,
        score_no_bayes: r.score_no_bayes,
        area: r.area,
        tflags: r.tflags.clone(),
        priority: r.priority,
        describe: String::new(),
    };
    run_rule(&filled, view, ctx)
}

/// Values of named groups of a rule that hit (header rules only, as the shipped set uses).
fn capture(r: &Rule, view: &MessageView, tags: &mut HashMap<String, String>) {
    if let Test::Header(t) = &r.test {
        let v = view
            .header(&t.spec)
            .or_else(|| t.if_unset.clone())
            .unwrap_or_default();
        tags.extend(t.pattern.named_captures(v.as_bytes()));
    }
}

/// Runs one non-meta rule; its hit count.
pub fn run_rule(r: &Rule, view: &MessageView, ctx: &Ctx) -> u32 {
    let max = max_hits(r);
    let over =
        |texts: &mut dyn Iterator<Item = &[u8]>, p: &crate::spam::rules::pattern::Pattern| -> u32 {
            let mut n = 0;
            for t in texts {
                if max == 1 {
                    if p.is_match(t) {
                        return 1;
                    }
                } else {
                    n += p.count(t, max - n);
                    if n >= max {
                        break;
                    }
                }
            }
            n
        };
    match &r.test {
        Test::Header(t) => u32::from(t.hits_with(|spec| view.header_shared(spec))),
        Test::Exists(name) => u32::from(view.header_shared(name).is_some()),
        Test::Eval(call) => u32::from(eval::run(call, ctx)),
        Test::Pattern(p) => match r.kind {
            Kind::Body => {
                // The Subject is the body's first paragraph, when there is one.
                let skip = usize::from(
                    r.tflags.nosubject
                        && view
                            .headers
                            .get("Subject")
                            .is_some_and(|s| !s.trim().is_empty()),
                );
                over(&mut view.body.iter().skip(skip).map(|s| s.as_bytes()), p)
            }
            Kind::Rawbody => over(&mut view.rawbody.iter().map(|s| s.as_bytes()), p),
            Kind::Uri => over(&mut view.uris.iter().map(|s| s.as_bytes()), p),
            Kind::Full => over(&mut std::iter::once(view.full.as_slice()), p),
            _ => 0,
        },
        Test::Mimeheader {
            field,
            raw,
            negate,
            pattern,
        } => {
            let spec = if *raw {
                format!("{field}:raw")
            } else {
                field.clone()
            };
            let hit = view.parts.iter().any(|part| {
                part.headers
                    .get(&spec)
                    .is_some_and(|v| pattern.is_match(v.as_bytes()) != *negate)
            });
            u32::from(hit)
        }
        Test::Meta(_) | Test::MetaProgram(_) | Test::Template(_) | Test::Net(_) => 0,
    }
}

/// Which rules of `plan` can match `view` at all (the literal prefilter); the others are
/// not run.
pub fn candidates(plan: &Plan, view: &MessageView, using: PrefilterUse) -> Vec<bool> {
    if using == PrefilterUse::Off {
        return vec![true; plan.rules.len()];
    }
    plan.prefilter
        .candidates(using == PrefilterUse::Literal, |text| match text {
            Text::Fields => header_text(plan, view, Text::Fields).into(),
            Text::WideFields => header_text(plan, view, Text::WideFields).into(),
            Text::Body => joined_text(view, Kind::Body).unwrap_or_default().into(),
            Text::Rawbody => joined_text(view, Kind::Rawbody).unwrap_or_default().into(),
            Text::Uri => joined_text(view, Kind::Uri).unwrap_or_default().into(),
            Text::Full => joined_text(view, Kind::Full).unwrap_or_default().into(),
        })
}

/// The values header rules of `which` text test, one after the other, then an empty line:
/// a rule whose pattern matches an absent field's empty value still finds a match there.
fn header_text(plan: &Plan, view: &MessageView, which: Text) -> Vec<u8> {
    let mut text = Vec::new();
    // Specs often give the same value (`From` and `From:raw`, `ALL-TRUSTED` and `ALL`):
    // each value once is enough for a prefilter, and Hyperscan's time grows with the text.
    let mut seen = std::collections::HashSet::new();
    for (_, spec) in plan.header_specs.iter().filter(|(t, _)| *t == which) {
        if let Some(v) = view.header_shared(spec)
            && !seen.contains(&v)
        {
            text.extend_from_slice(v.as_bytes());
            text.push(b'\n');
            seen.insert(v);
        }
    }
    text.extend_from_slice(b"\n\n");
    text
}

/// What the rules that run on the scanning thread found: everything but the network rules
/// and the metas, which [`finish`] adds once the lookups are back.
#[derive(Debug, Clone, PartialEq)]
pub struct Local {
    counts: Vec<u32>,
    score: f64,
    stopped_early: bool,
    links: Links,
}

/// Scans `view` with `plan`, network rules not counted.
pub fn scan(plan: &Plan, view: &MessageView, lists: &eval::Lists, opts: Options) -> Outcome {
    finish(plan, scan_local(plan, view, lists, opts), &[])
}

/// Runs the rules that need nothing but the message (network rules and metas wait for
/// [`finish`]).
pub fn scan_local(plan: &Plan, view: &MessageView, lists: &eval::Lists, opts: Options) -> Local {
    let ctx = Ctx {
        view,
        lists,
        bayes: opts.bayes,
    };
    let mut counts = vec![0u32; plan.rules.len()];
    let mut tags: HashMap<String, String> = HashMap::new();
    let mut score = 0.0;
    // Negative scores still to come; the score cannot end below `score + negative_left`.
    // The network rules' stay in it until `finish`: they may still subtract.
    let mut negative_left: f64 = plan.rules.iter().map(|r| r.score.min(0.0)).sum();
    let mut stopped_early = false;
    let may_match = candidates(plan, view, opts.prefilter);
    for (i, r) in plan.rules[..plan.first_meta].iter().enumerate() {
        if matches!(r.test, Test::Net(_)) {
            continue;
        }
        negative_left -= r.score.min(0.0);
        if !may_match[i] {
            continue;
        }
        let n = match &r.test {
            Test::Template(def) => run_template(r, def, view, &ctx, &tags),
            _ => run_rule(r, view, &ctx),
        };
        if n > 0 && r.captures {
            capture(r, view, &mut tags);
        }
        counts[i] = n;
        score += r.score * f64::from(n);
        if let Some(stop) = opts.stop_at
            && score + negative_left >= stop
        {
            stopped_early = true;
            break;
        }
    }
    Local {
        counts,
        score,
        stopped_early,
        links: Links::of(&view.uris),
    }
}

/// Adds the network rules' counts (`net`: rule index and count), runs the metas and scores.
pub fn finish(plan: &Plan, local: Local, net: &[(usize, u32)]) -> Outcome {
    let Local {
        mut counts,
        mut score,
        stopped_early,
        links,
    } = local;
    for &(i, n) in net {
        if let Some(r) = plan.rules.get(i) {
            counts[i] = n;
            score += r.score * f64::from(n);
        }
    }
    let mut stack = Vec::new();
    for (k, r) in plan.rules[plan.first_meta..].iter().enumerate() {
        let Test::MetaProgram(program) = &r.test else {
            continue;
        };
        let value = program.run(&counts, &mut stack);
        let i = plan.first_meta + k;
        if value != 0.0 {
            counts[i] = 1;
            score += r.score;
        }
    }
    let mut hits: Vec<Hit> = Vec::new();
    let mut lp = LearnPoints::default();
    let mut subtests = Vec::new();
    for (i, r) in plan.rules.iter().enumerate() {
        if counts[i] > 0 && r.name.starts_with("__") {
            subtests.push(r.name.clone());
        }
        if counts[i] == 0 || r.name.starts_with("__") || r.score == 0.0 {
            continue;
        }
        learn_points(r, counts[i], &mut lp);
        hits.push(Hit {
            name: r.name.clone(),
            score: r.score * f64::from(counts[i]),
            count: counts[i],
            describe: r.describe.clone(),
        });
    }
    hits.sort_by(|a, b| a.name.cmp(&b.name));
    subtests.sort();
    Outcome {
        score,
        required: plan.required_score,
        hits,
        subtests,
        stopped_early,
        learn_points: LearnPoints {
            // SpamAssassin rounds to 3 decimals, so 11.9995 reaches 12.
            points: (lp.points * 1000.0).round() / 1000.0,
            ..lp
        },
        links,
    }
}

/// Adds one hit rule to the autolearn points, as SpamAssassin's `_get_autolearn_points`.
fn learn_points(r: &Rule, count: u32, lp: &mut LearnPoints) {
    use crate::spam::rules::plan::Area;
    if r.tflags.noautolearn {
        return;
    }
    if r.tflags.learn {
        lp.learned += r.score * f64::from(count);
        return;
    }
    lp.force |= r.tflags.autolearn_force;
    let s = r.score_no_bayes * f64::from(count);
    if s == 0.0 {
        return;
    }
    match r.tflags.autolearn_area.unwrap_or(r.area) {
        Area::Head => lp.head += s,
        Area::Body => lp.body += s,
        Area::Split(h, b) => {
            lp.head += (s * h * 1000.0).round() / 1000.0;
            lp.body += (s * b * 1000.0).round() / 1000.0;
        }
        Area::Neither => {}
    }
    lp.points += s;
}
