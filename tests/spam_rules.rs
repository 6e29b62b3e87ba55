//! SpamAssassin's own rule files (Debian `spamassassin`, installed by .ci/run) load without a
//! single problem: every rule defined, every score applied, every `if` block evaluated as
//! SpamAssassin 4.0.1 with Debian's plugin set evaluates it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amavisd::spam::rules::cf::{Config, Kind};
use std::path::Path;

#[path = "../benches/common/mod.rs"]
mod corpus;

const RULES: &str = "/usr/share/spamassassin";
const SITE: &str = "/etc/spamassassin";

#[test]
fn shipped_rule_files_load_cleanly() {
    assert!(
        Path::new(RULES).join("50_scores.cf").exists(),
        "{RULES} is missing: apt-get install spamassassin (.ci/run does)"
    );
    let c = Config::load(Path::new(RULES), Some(Path::new(SITE)));
    assert!(
        c.problems.is_empty(),
        "{} problems, first: {:?}",
        c.problems.len(),
        c.problems.first()
    );
    let count = |k: Kind| c.rules.values().filter(|r| r.kind == k).count();
    let (h, b, m, u) = (
        count(Kind::Header),
        count(Kind::Body),
        count(Kind::Meta),
        count(Kind::Uri),
    );
    println!(
        "{} rules: {h} header, {b} body, {m} meta, {u} uri, {} rawbody, {} full, {} mimeheader; \
         {} plugins; {} kinds of directives recorded only",
        c.rules.len(),
        count(Kind::Rawbody),
        count(Kind::Full),
        count(Kind::Mimeheader),
        c.plugins.len(),
        c.ignored.len()
    );
    // Sizes of the shipped set (Debian 4.0.1), with room for other releases.
    assert!(c.rules.len() > 1500, "{}", c.rules.len());
    assert!(h > 300 && b > 300 && m > 300 && u > 20);
    // Debian's .pre files load the usual plugins.
    assert!(c.plugins.contains("Mail::SpamAssassin::Plugin::MIMEHeader"));
    // Known rules, their kinds and (four-valued) scores.
    let r = &c.rules["SUBJ_ALL_CAPS"];
    assert_eq!(r.kind, Kind::Header);
    assert_eq!(r.definition, "eval:subject_is_all_caps()");
    assert_eq!(r.describe.as_deref(), Some("Subject is all capitals"));
    assert!(r.score.is_some(), "scored in 50_scores.cf");
    assert_eq!(c.rules["MISSING_SUBJECT"].kind, Kind::Meta);
    assert_eq!(c.rules["BAYES_99"].score.as_ref().map(Vec::len), Some(4));
    assert_eq!(c.required_score, 5.0);
    // Sub-rules count 0 unless scored.
    let sub = c
        .rules
        .values()
        .find(|r| r.name.starts_with("__") && r.score.is_none())
        .expect("a sub-rule");
    assert_eq!(c.score_of(sub), 0.0);
}

/// Every regex of the shipped rules compiles and none is dropped: on PCRE2 where it takes
/// the pattern (with the `pcre` feature: Perl's dialect, a fraction of the linear automata's
/// memory), on the linear engine where PCRE2 finds it too large (or without the feature), on
/// fancy-regex else. Nearly every one keeps a linear form for the prefilter's literals.
#[test]
fn every_shipped_regex_compiles() {
    use amavisd::spam::rules::pattern::{compile, literal_of};
    let c = Config::load(Path::new(RULES), Some(Path::new(SITE)));
    let t = std::time::Instant::now();
    let mut engines: std::collections::BTreeMap<&str, usize> = Default::default();
    let (mut with_source, mut failed) = (0, Vec::new());
    for r in c.rules.values() {
        let Some(lit) = literal_of(r.kind, &r.definition) else {
            continue;
        };
        match compile(&lit) {
            Ok(p) => {
                *engines.entry(p.engine()).or_default() += 1;
                with_source += usize::from(p.linear_source().is_some());
            }
            Err(e) => failed.push(format!("{}: {e}", r.name)),
        }
    }
    let total: usize = engines.values().sum();
    println!(
        "{total} regex rules: {engines:?}, {with_source} with a linear form, {} failed, \
         compiled in {:?}",
        failed.len(),
        t.elapsed()
    );
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(total > 1000);
    assert!(with_source * 100 > total * 95, "{with_source} of {total}");
    let on = |e: &str| engines.get(e).copied().unwrap_or(0);
    if cfg!(feature = "pcre") {
        assert!(on("pcre2") > on("regex") * 5, "{engines:?}");
        assert!(on("regex") > 0, "the largest stay linear: {engines:?}");
    } else {
        assert!(on("regex") > on("fancy-regex") * 5, "{engines:?}");
    }
}

/// Every shipped `meta` expression parses, and names only rules that exist (or are the
/// sub-rules of plugins that are not loaded, which count 0 as in SpamAssassin).
#[test]
fn every_shipped_meta_parses() {
    use amavisd::spam::rules::meta::parse;
    let c = Config::load(Path::new(RULES), Some(Path::new(SITE)));
    let mut failed = Vec::new();
    let (mut n, mut missing) = (0, 0);
    for r in c.rules.values().filter(|r| r.kind == Kind::Meta) {
        n += 1;
        match parse(&r.definition) {
            Ok(e) => {
                let mut deps = Vec::new();
                e.rules(&mut deps);
                missing += deps.iter().filter(|d| !c.rules.contains_key(*d)).count();
            }
            Err(e) => failed.push(format!("{}: {e}: {}", r.name, r.definition)),
        }
    }
    println!(
        "{n} metas, {} failed, {missing} references to rules not defined",
        failed.len()
    );
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(n > 500);
}

/// Every shipped header rule that tests a value with a regex parses, and all of them run over
/// 300 messages of the SpamAssassin corpus (fetched by scripts/fetch-corpus.sh).
/// Agreement with SpamAssassin's own hits is the compatibility harness's job; this shows the
/// rules evaluate and that many of them fire on real mail.
#[test]
fn header_regex_rules_run_on_the_corpus() {
    use amavisd::spam::view::headers::{HeaderTest, Headers};
    let c = Config::load(Path::new(RULES), Some(Path::new(SITE)));
    let mut tests = Vec::new();
    let mut failed = Vec::new();
    for r in c.rules.values().filter(|r| r.kind == Kind::Header) {
        let d = r.definition.trim();
        if d.starts_with("eval:") || d.starts_with("exists:") {
            continue;
        }
        match HeaderTest::parse(d) {
            Ok(t) => tests.push((r.name.clone(), t)),
            Err(e) => failed.push(format!("{}: {e}: {d}", r.name)),
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
    let files = ham_and_spam();
    let files = &files[..300];
    let t = std::time::Instant::now();
    let mut hits: std::collections::BTreeMap<&str, usize> = Default::default();
    for f in files {
        let raw = std::fs::read(f).unwrap();
        let end = raw
            .windows(2)
            .position(|w| w == b"\n\n")
            .map_or(raw.len(), |p| p + 1);
        // The corpus files start with an mbox "From " line.
        let head = raw[..end].splitn(2, |&b| b == b'\n').nth(1).unwrap_or(&[]);
        let h = Headers::parse(head, "");
        for (name, test) in &tests {
            if test.hits(&h) {
                *hits.entry(name.as_str()).or_default() += 1;
            }
        }
    }
    let per = t.elapsed() / files.len() as u32;
    println!(
        "{} header regex rules over {} messages: {} rules hit, {per:?} per message (debug build)",
        tests.len(),
        files.len(),
        hits.len()
    );
    assert!(tests.len() > 200);
    assert!(hits.len() > 30, "{hits:?}");
}

/// The prefilters only save time: over 150 corpus messages (ham and spam), the one-pass
/// stage (Vectorscan, when this build has it), the literal stage and no prefilter at all give
/// the same hits and scores with Debian's whole rule set.
#[test]
fn prefilters_change_no_result() {
    use amavisd::spam::engine::Rules;
    use amavisd::spam::scan::{Options, PrefilterUse};
    let cache = tempfile::tempdir().unwrap();
    let load = || {
        Rules::load_with(
            Path::new(RULES),
            Some(Path::new(SITE)),
            false,
            Some(cache.path()),
        )
    };
    let rules = load().expect("rules");
    let one_pass = rules
        .plan
        .prefilter
        .wait_one_pass(std::time::Duration::from_secs(900));
    assert_eq!(
        one_pass,
        cfg!(hyperscan),
        "one-pass stage built only with libhs"
    );
    if one_pass {
        assert!(
            rules.plan.prefilter.one_pass_rules() > 500,
            "{}",
            rules.summary()
        );
    }
    // Loaded again, the same rules read their one-pass stage back from the cache at once
    // (a restart is at full speed from the first message), and it finds the same.
    let again = load().expect("rules");
    assert_eq!(
        again
            .plan
            .prefilter
            .wait_one_pass(std::time::Duration::ZERO),
        one_pass,
        "read from the cache, not compiled"
    );
    assert_eq!(
        again.plan.prefilter.one_pass_rules(),
        rules.plan.prefilter.one_pass_rules()
    );
    let files = ham_and_spam();
    let step = (files.len() / 150).max(1);
    let mut checked = 0;
    let mut hit = 0;
    for f in files.iter().step_by(step) {
        let raw = std::fs::read(f).unwrap();
        let with = |prefilter| {
            rules.check(
                &raw,
                "",
                Options {
                    prefilter,
                    ..Options::default()
                },
            )
        };
        let all = with(PrefilterUse::Off);
        for using in [PrefilterUse::Best, PrefilterUse::Literal] {
            let o = with(using);
            assert!(
                o == all,
                "{using:?} on {}: {}",
                f.display(),
                differences(&o, &all)
            );
        }
        let cached = again.check(&raw, "", Options::default());
        assert!(
            cached == all,
            "cached stage on {}: {}",
            f.display(),
            differences(&cached, &all)
        );
        checked += 1;
        hit += all.hits.len();
    }
    assert!(
        checked >= 140 && hit > 500,
        "{checked} messages, {hit} hits"
    );
}

/// The corpus's first easy-ham and spam sets, sorted by name (`AMAVISD_CORPUS`, else what
/// scripts/fetch-corpus.sh fetches); a test that needs them fails without them.
fn ham_and_spam() -> Vec<std::path::PathBuf> {
    let dir = corpus::corpus().expect("the SpamAssassin corpus (scripts/fetch-corpus.sh)");
    let mut files: Vec<_> = ["easy-ham-1", "spam-1"]
        .iter()
        .flat_map(|set| corpus::set_files(&dir, set))
        .collect();
    files.sort();
    files
}

/// Rule names one outcome has and the other lacks (scoring rules and sub-rules).
fn differences(a: &amavisd::spam::scan::Outcome, b: &amavisd::spam::scan::Outcome) -> String {
    let names = |o: &amavisd::spam::scan::Outcome| -> std::collections::BTreeSet<String> {
        o.hits
            .iter()
            .map(|h| h.name.clone())
            .chain(o.subtests.iter().cloned())
            .collect()
    };
    let (a, b) = (names(a), names(b));
    format!(
        "only with the prefilter: {:?}; only without: {:?}",
        a.difference(&b).collect::<Vec<_>>(),
        b.difference(&a).collect::<Vec<_>>()
    )
}

/// With Bayes on, the shipped BAYES_xx rules read the message's probability and score as
/// score set 2 scores them; with Bayes off set 0 applies, which gives them no score.
#[test]
fn bayes_rules_score_set_two() {
    use amavisd::spam::engine::Rules;
    use amavisd::spam::rules::plan::Inactive;
    use amavisd::spam::scan::Options;
    let msg = b"From: a@example.org\nTo: b@example.com\nSubject: hello\n\nJust a note.\n";
    let on = Rules::load_with(Path::new(RULES), Some(Path::new(SITE)), true, None).expect("rules");
    let hits = |p: Option<f64>| {
        on.check(
            msg,
            "",
            Options {
                bayes: p,
                ..Options::default()
            },
        )
        .hits
        .into_iter()
        .filter(|h| h.name.starts_with("BAYES_"))
        .map(|h| (h.name, h.score))
        .collect::<Vec<_>>()
    };
    assert_eq!(
        hits(Some(0.9995)),
        [
            ("BAYES_99".to_string(), 3.8),
            ("BAYES_999".to_string(), 0.2)
        ]
    );
    assert_eq!(hits(Some(0.0)), [("BAYES_00".to_string(), -1.5)]);
    assert_eq!(hits(None), [], "untrained: no BAYES_ rule");
    let off = Rules::load(Path::new(RULES), Some(Path::new(SITE))).expect("rules");
    // Score set 0 gives them no score: they are not even compiled.
    assert!(!off.plan.index.contains_key("BAYES_99"));
    assert!(
        !off.plan
            .inactive
            .values()
            .any(|w| *w == Inactive::NoEval("check_bayes".into()))
    );
}

/// `tflags nosubject`: a body rule that does not read the Subject, which SpamAssassin puts
/// first in the body (`__NONEMPTY_BODY`, so `EMPTY_MESSAGE` for a message with a subject
/// and nothing else).
#[test]
fn nosubject_rules_do_not_read_the_subject() {
    use amavisd::spam::engine::Rules;
    use amavisd::spam::scan::Options;
    let rules = Rules::load(Path::new(RULES), Some(Path::new(SITE))).unwrap();
    let hits = |msg: &str| -> Vec<String> {
        let o = rules.check(msg.as_bytes(), "", Options::default());
        o.hits.into_iter().map(|h| h.name).collect()
    };
    let empty = hits("From: a@example.com\nSubject: a subject of some words\n\n\n");
    assert!(empty.iter().any(|h| h == "EMPTY_MESSAGE"), "{empty:?}");
    let text = hits("From: a@example.com\nSubject: a subject of some words\n\nA body.\n");
    assert!(!text.iter().any(|h| h == "EMPTY_MESSAGE"), "{text:?}");
}
