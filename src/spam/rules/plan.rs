//! The scan plan: SpamAssassin's rule definitions compiled once (regexes, header tests, eval
//! calls, meta expressions), only the rules that can count (a non-zero score, or a sub-rule
//! some counting meta needs), in the order they run: cheap rules (headers, evals) first,
//! then the body kinds, then metas after everything they name.
//!
//! What cannot run is listed with its reason: rules needing the network (off, as with
//! `spamassassin -L`), Bayes (issue 9), eval functions we do not have, and the rare regex that
//! does not compile.

use crate::spam::eval::{self, Call, Status};
use crate::spam::net::NetDefs;
use crate::spam::rules::cf::{Config, Kind, RuleDef};
use crate::spam::rules::meta::{self, Expr};
use crate::spam::rules::pattern::{self, Pattern};
use crate::spam::view::headers::HeaderTest;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// A rule's test, compiled.
pub enum Test {
    Header(HeaderTest),
    /// `exists:Name` (negated for `!exists:`; SpamAssassin writes that as a meta usually).
    Exists(String),
    /// `body`, `rawbody`, `full` and `uri` regexes.
    Pattern(Pattern),
    /// `mimeheader NAME Field[:raw] =~ /re/`.
    Mimeheader {
        field: String,
        raw: bool,
        negate: bool,
        pattern: Pattern,
    },
    Eval(Call),
    /// The expression and the rule indexes it reads, by name.
    Meta(Expr),
    /// A meta once the plan is ordered: its expression resolved to rule indexes and compiled
    /// ([`Expr::compile`]), as the scan runs it.
    MetaProgram(crate::spam::rules::meta::Program),
    /// A network rule (DNS blocklists, `askdns`): its queries go out early in the scan and
    /// it is counted once the answers are back (`spam::net`).
    Net(crate::spam::net::NetTest),
    /// A rule naming captured tags (`%{NAME}`): compiled per message once the header rules
    /// that capture them (`(?<NAME>...)`) have run; it does not run when a tag is unset.
    Template(String),
}

/// `tflags` that change how a rule counts.
#[derive(Debug, Clone, Default)]
pub struct Tflags {
    /// Counts every match, up to `maxhits`.
    pub multiple: bool,
    pub maxhits: Option<u32>,
    pub noautolearn: bool,
    pub autolearn_force: bool,
    /// `autolearn_header` / `autolearn_body`: count the rule's points as that area's.
    pub autolearn_area: Option<Area>,
    pub learn: bool,
    pub net: bool,
    /// A body rule that does not read the Subject (SpamAssassin puts it first in the body).
    pub nosubject: bool,
}

/// Where a rule's points count for autolearning (SpamAssassin needs 3 from each of header
/// and body rules before it learns a message as spam).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Area {
    Head,
    Body,
    /// A meta: its points are shared out by how many of its direct sub-rules are header and
    /// body rules (head share, body share).
    Split(f64, f64),
    /// Neither (full, or a meta over neither).
    Neither,
}

impl Tflags {
    fn of(r: &RuleDef) -> Tflags {
        let mut t = Tflags::default();
        for f in &r.tflags {
            match f.as_str() {
                "multiple" => t.multiple = true,
                "noautolearn" => t.noautolearn = true,
                "autolearn_force" => t.autolearn_force = true,
                "autolearn_header" => t.autolearn_area = Some(Area::Head),
                "autolearn_body" => t.autolearn_area = Some(Area::Body),
                "learn" => t.learn = true,
                "net" => t.net = true,
                "nosubject" => t.nosubject = true,
                other => {
                    if let Some(n) = other.strip_prefix("maxhits=") {
                        t.maxhits = n.parse().ok();
                        t.multiple = true;
                    }
                }
            }
        }
        t
    }
}

/// One compiled rule.
pub struct Rule {
    pub name: String,
    /// Its regex has named groups whose values later rules use as `%{NAME}`.
    pub captures: bool,
    pub kind: Kind,
    pub test: Test,
    pub score: f64,
    /// Its score without Bayes (score set 0), which autolearning counts.
    pub score_no_bayes: f64,
    /// Where its points count for autolearning.
    pub area: Area,
    pub tflags: Tflags,
    pub priority: i32,
    pub describe: String,
}

/// A rule's autolearn area as SpamAssassin sorts test types: header (and header eval) rules
/// are head; body, rawbody, uri and MIME-header rules body; metas by their direct
/// sub-rules.
fn area_of(cfg: &Config, r: &RuleDef) -> Area {
    let plain = |k: Kind| match k {
        Kind::Header => Area::Head,
        Kind::Body | Kind::Rawbody | Kind::Uri | Kind::Mimeheader => Area::Body,
        Kind::Full | Kind::Meta => Area::Neither,
    };
    if r.kind != Kind::Meta {
        return plain(r.kind);
    }
    let Ok(e) = meta::parse(&r.definition) else {
        return Area::Neither;
    };
    let mut deps = Vec::new();
    e.rules(&mut deps);
    let (mut head, mut body) = (0u32, 0u32);
    for d in &deps {
        match cfg.rules.get(d).map(|d| plain(d.kind)) {
            Some(Area::Head) => head += 1,
            Some(Area::Body) => body += 1,
            _ => {}
        }
    }
    if head + body == 0 {
        return Area::Neither;
    }
    let all = f64::from(head + body);
    Area::Split(f64::from(head) / all, f64::from(body) / all)
}

/// Why a rule does not run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Inactive {
    Network,
    Bayes,
    /// An eval function we do not have (its name).
    NoEval(String),
    /// The regex or header test did not compile (the reason).
    Broken(String),
}

/// The compiled rule set.
pub struct Plan {
    /// Non-meta rules in run order, then metas in dependency order.
    pub rules: Vec<Rule>,
    /// Where the metas start in `rules`.
    pub first_meta: usize,
    /// Index by name, for metas.
    pub index: HashMap<String, usize>,
    /// The header specs (`From:addr`, `ALL` ...) the prefilter looks at: those of header
    /// regex rules that hit on a match (not `!~`, not `[if-unset: ...]`), each with the
    /// prefilter text its value goes into.
    pub header_specs: Vec<(crate::spam::rules::prefilter::Text, String)>,
    pub required_score: f64,
    /// Rules that exist but do not run, with why.
    pub inactive: BTreeMap<String, Inactive>,
    /// Which body-like rules can match at all, by their literals.
    pub prefilter: crate::spam::rules::prefilter::Prefilter,
}

/// Order within the non-meta rules: cheap kinds first, then by priority.
fn cost(kind: Kind) -> u8 {
    match kind {
        Kind::Header => 0,
        Kind::Mimeheader => 1,
        Kind::Uri => 2,
        Kind::Body => 3,
        Kind::Rawbody => 4,
        Kind::Full => 5,
        Kind::Meta => 6,
    }
}

fn compile_test(r: &RuleDef, bayes: bool, net: Option<&NetDefs>) -> Result<Test, Inactive> {
    let def = r.definition.trim();
    if def.contains("%{") && r.kind != Kind::Meta {
        return Ok(Test::Template(def.to_string()));
    }
    if let Some(call) = eval::parse(def) {
        return match eval::status(&call.name) {
            Status::Implemented => Ok(Test::Eval(call)),
            Status::Network => net
                .and_then(|n| n.compile(&r.name, &call, &r.tflags))
                .map(Test::Net)
                .ok_or(Inactive::Network),
            Status::Bayes if bayes => Ok(Test::Eval(call)),
            Status::Bayes => Err(Inactive::Bayes),
            Status::NotImplemented => Err(Inactive::NoEval(call.name)),
        };
    }
    match r.kind {
        Kind::Meta => meta::parse(def).map(Test::Meta).map_err(Inactive::Broken),
        Kind::Header => {
            if let Some(name) = def.strip_prefix("exists:") {
                return Ok(Test::Exists(name.trim().to_string()));
            }
            HeaderTest::parse(def)
                .map(Test::Header)
                .map_err(Inactive::Broken)
        }
        Kind::Mimeheader => {
            let at = def
                .find("=~")
                .or_else(|| def.find("!~"))
                .ok_or_else(|| Inactive::Broken("no =~ or !~".into()))?;
            let field = def[..at].trim();
            let (field, raw) = match field.strip_suffix(":raw") {
                Some(f) => (f.to_string(), true),
                None => (field.to_string(), false),
            };
            let lit = pattern::literal_of(Kind::Header, def)
                .ok_or_else(|| Inactive::Broken("no regex".into()))?;
            Ok(Test::Mimeheader {
                field,
                raw,
                negate: def[at..].starts_with("!~"),
                pattern: pattern::compile(&lit).map_err(Inactive::Broken)?,
            })
        }
        kind => {
            let lit = pattern::literal_of(kind, def)
                .ok_or_else(|| Inactive::Broken("no regex".into()))?;
            pattern::compile(&lit)
                .map(Test::Pattern)
                .map_err(Inactive::Broken)
        }
    }
}

impl Plan {
    /// Which `check_bayes` rules fire at probability `p`, in plan order: two probabilities
    /// with the same answer score a message alike.
    pub fn bayes_rules_at(&self, p: Option<f64>) -> Vec<bool> {
        self.rules
            .iter()
            .filter_map(|r| match &r.test {
                Test::Eval(c) if c.name == "check_bayes" => {
                    Some(crate::spam::eval::bayes_in_range(p, &c.args))
                }
                _ => None,
            })
            .collect()
    }

    /// Compiles `cfg` with score set 0 (no Bayes, no network tests).
    pub fn compile(cfg: &Config) -> Plan {
        Self::compile_with(cfg, false, None, None)
    }

    /// Compiles `cfg` with Bayes on (`bayes`: the BAYES_xx rules active) or off, and the
    /// network rules of `net` (score sets 1 and 3) or none (sets 0 and 2); the prefilter
    /// keeps its compiled databases in `prefilter_cache`.
    pub fn compile_with(
        cfg: &Config,
        bayes: bool,
        net: Option<&NetDefs>,
        prefilter_cache: Option<&Path>,
    ) -> Plan {
        let set = usize::from(bayes) * 2 + usize::from(net.is_some());
        let needed = needed_rules(cfg, set, net.is_some());
        let mut inactive = BTreeMap::new();
        let mut plain = Vec::new();
        let mut metas = Vec::new();
        for name in &needed {
            let Some(r) = cfg.rules.get(name) else {
                continue;
            };
            // `tflags net` alone does not switch a rule off: with the network off its eval
            // functions do not hit and score set 0 gives most of them no score.
            let tflags = Tflags::of(r);
            match compile_test(r, bayes, net) {
                Ok(test) => {
                    let rule = Rule {
                        name: name.clone(),
                        captures: r.definition.contains("(?<") || r.definition.contains("(?P<"),
                        kind: r.kind,
                        test,
                        score: cfg.score_in(r, set),
                        score_no_bayes: cfg.score_in(r, set & !2),
                        area: area_of(cfg, r),
                        tflags,
                        priority: r.priority,
                        describe: r.describe.clone().unwrap_or_default(),
                    };
                    if r.kind == Kind::Meta {
                        metas.push(rule);
                    } else {
                        plain.push(rule);
                    }
                }
                Err(why) => {
                    inactive.insert(name.clone(), why);
                }
            }
        }
        plain.sort_by_key(|r| {
            (
                matches!(r.test, Test::Template(_)),
                cost(r.kind),
                r.priority,
            )
        });
        let metas = order_metas(metas);
        let first_meta = plain.len();
        let mut rules = plain;
        rules.extend(metas);
        let index: HashMap<String, usize> = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        for r in &mut rules[first_meta..] {
            if let Test::Meta(e) = &r.test {
                r.test = Test::MetaProgram(e.resolve(&|n| index.get(n).copied()).compile());
            }
        }
        use crate::spam::rules::prefilter::Text;
        let prefilter = crate::spam::rules::prefilter::Prefilter::build(
            rules[..first_meta].iter().enumerate().filter_map(|(i, r)| {
                let (text, pattern) = match &r.test {
                    Test::Header(t) if !t.negate && t.if_unset.is_none() => {
                        (Text::of(r.kind, Some(&t.spec))?, &t.pattern)
                    }
                    Test::Pattern(p) => (Text::of(r.kind, None)?, p),
                    _ => return None,
                };
                let literal = cfg
                    .rules
                    .get(&r.name)
                    .and_then(|d| pattern::literal_of(r.kind, &d.definition));
                Some((i, text, pattern, literal))
            }),
            rules.len(),
            prefilter_cache,
        );
        let mut header_specs: Vec<(Text, String)> = rules[..first_meta]
            .iter()
            .filter_map(|r| match &r.test {
                Test::Header(t) if !t.negate && t.if_unset.is_none() => {
                    Some((Text::of(r.kind, Some(&t.spec))?, t.spec.clone()))
                }
                _ => None,
            })
            .collect();
        header_specs.sort();
        header_specs.dedup();
        Plan {
            rules,
            first_meta,
            index,
            header_specs,
            prefilter,
            required_score: cfg.required_score,
            inactive,
        }
    }

    /// Active rules by kind.
    pub fn active_by_kind(&self) -> BTreeMap<Kind, usize> {
        let mut m = BTreeMap::new();
        for r in &self.rules {
            *m.entry(r.kind).or_default() += 1;
        }
        m
    }

    /// Eval functions the rule set uses that we do not have, with how many needed rules use
    /// each.
    pub fn missing_evals(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for why in self.inactive.values() {
            if let Inactive::NoEval(f) = why {
                *m.entry(f.clone()).or_default() += 1;
            }
        }
        m
    }
}

/// Which rules are needed with score set `set`: every rule that scores, what the metas among
/// them name, the rules that capture tags, and (network on) the `__` rules that launch a
/// set's queries.
fn needed_rules(cfg: &Config, set: usize, network: bool) -> BTreeSet<String> {
    let mut needed: BTreeSet<String> = BTreeSet::new();
    let mut stack: Vec<String> = cfg
        .rules
        .values()
        // Rules that capture tags are needed by the `%{NAME}` rules that use them.
        .filter(|r| {
            (cfg.score_in(r, set) != 0.0 && !r.name.starts_with("__"))
                || r.definition.contains("(?<")
                // A `__` network rule may launch a set's queries for `check_rbl_sub`
                // rules; SpamAssassin runs every `__` rule.
                || (network && r.name.starts_with("__") && launches_queries(r))
        })
        .map(|r| r.name.clone())
        .collect();
    while let Some(name) = stack.pop() {
        if !needed.insert(name.clone()) {
            continue;
        }
        if let Some(r) = cfg.rules.get(&name)
            && r.kind == Kind::Meta
            && let Ok(e) = meta::parse(&r.definition)
        {
            let mut deps = Vec::new();
            e.rules(&mut deps);
            stack.extend(deps.into_iter().filter(|d| cfg.rules.contains_key(d)));
        }
    }
    needed
}

/// A DNSEval rule that sends queries a set's `check_rbl_sub` rules read.
fn launches_queries(r: &RuleDef) -> bool {
    eval::parse(&r.definition)
        .is_some_and(|c| c.name.starts_with("check_rbl") && c.name != "check_rbl_sub")
}

/// Metas after the metas they name (a cycle's members keep definition order; SpamAssassin
/// does not evaluate cycles either, and the shipped set has none).
fn order_metas(metas: Vec<Rule>) -> Vec<Rule> {
    let names: HashMap<String, usize> = metas
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.clone(), i))
        .collect();
    let deps: Vec<Vec<usize>> = metas
        .iter()
        .map(|r| match &r.test {
            Test::Meta(e) => {
                let mut d = Vec::new();
                e.rules(&mut d);
                d.iter().filter_map(|n| names.get(n).copied()).collect()
            }
            _ => Vec::new(),
        })
        .collect();
    let mut state = vec![0u8; metas.len()];
    let mut order = Vec::with_capacity(metas.len());
    fn visit(i: usize, deps: &[Vec<usize>], state: &mut [u8], order: &mut Vec<usize>) {
        if state[i] != 0 {
            return;
        }
        state[i] = 1;
        for &d in &deps[i] {
            visit(d, deps, state, order);
        }
        state[i] = 2;
        order.push(i);
    }
    for i in 0..metas.len() {
        visit(i, &deps, &mut state, &mut order);
    }
    let mut slots: Vec<Option<Rule>> = metas.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}
