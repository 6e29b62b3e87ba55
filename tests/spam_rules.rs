//! SpamAssassin's own rule files (Debian `spamassassin`, installed by .ci/run) load without a
//! single problem: every rule defined, every score applied, every `if` block evaluated as
//! SpamAssassin 4.0.1 with Debian's plugin set evaluates it.

use amavisd::spam::cf::{Config, Kind};
use std::path::Path;

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
