//! Five-fold cross-validation over the corpus development set (easy-ham-1 and hard-ham-1 as
//! ham, spam-1 as spam): each fold is classified by a Bayes store trained on the other four.
//! Prints the ham false-positive rate and the spam recall for rules alone (score set 0,
//! threshold 5.0), Bayes alone (probability above 0.99, BAYES_99, and above 0.5), and rules +
//! Bayes (score set 2 with the BAYES_xx rules, threshold 5.0); then the same for the
//! logistic-regression engine (`spam::logistic`) in Bayes' place and for both combined
//! (mean of their log-odds), with ROC area, recall at 0.1 % false positives and how
//! honest each probability is.
//!
//! ```text
//! cargo run --release --example bayes_cv [-- MIN_LEARNED]   # default 200 of each class
//! AMAVISD_CV_LATER=1 cargo run --release --example bayes_cv # train on it all, classify the
//!                                                           # later sets easy-ham-2, spam-2
//! AMAVISD_CV_ONLINE=1 cargo run --release --example bayes_cv  # the TREC spam track's online
//!                           # evaluation over every set in time order (see `online_run`)
//! AMAVISD_CV_SHOW=1 ...      # each message rules + Bayes gets wrong
//! AMAVISD_CV_EXPLAIN=NAME ...  # the most telling tokens of messages so named
//! AMAVISD_CV_LR=alpha,beta,l1,l2,epochs,hits ...  # the learner's settings (default: the
//!                                                 # filter's, 1 epoch, hits 1)
//! AMAVISD_CV_TONE=MARGIN ...  # train the learner only on messages it is unsure of
//! AMAVISD_CV_BLOCKS=1 ...   # train the learner on all spam, then all ham (folder order)
//! AMAVISD_CV_PAIRS=window,words ...  # word pairs up to `window` apart over the first `words`
//! ```
//!
//! The rules do not change between folds, only the Bayes probability does: each message is
//! scanned once per range of probability the BAYES_xx rules tell apart, and the scores are
//! kept in `target/bayes-cv-rule-scores.txt`, so that a second run takes seconds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{metrics, stack};

use amavisd::spam::bayes::{self, Class, MemoryStore};
use amavisd::spam::engine::Rules;
use amavisd::spam::logistic::{self, Model, Params};
use amavisd::spam::scan::Options;
use std::path::Path;
use std::time::{Duration, Instant};

const FOLDS: usize = 5;

struct Msg {
    name: String,
    /// From the later sets (easy-ham-2, spam-2): only classified, with AMAVISD_CV_LATER.
    later: bool,
    raw: Vec<u8>,
    spam: bool,
    key: bayes::MessageKey,
    tokens: Vec<u64>,
    /// The learner's features (tokens, word pairs, rule hits).
    features: Vec<u64>,
    /// When it was written (its Date field, seconds since the epoch; 0 without one).
    time: i64,
    /// Score set 0 (rules alone).
    alone: f64,
    /// Score set 2 for each of [`BUCKETS`]: the rules do not change between folds, only the
    /// Bayes probability does, so each message is scanned once per bucket, not per fold.
    with_bayes: Vec<f64>,
}

/// One probability inside each range the BAYES_xx rules tell apart, and none.
const BUCKETS: [Option<f64>; 11] = [
    None,
    Some(0.0001),
    Some(0.03),
    Some(0.1),
    Some(0.3),
    Some(0.5),
    Some(0.7),
    Some(0.9),
    Some(0.97),
    Some(0.995),
    Some(0.9995),
];

/// Where the rule scores are kept between runs: scanning the set takes minutes, and
/// experiments with the tokenizer or the classifier do not change them. The first line is
/// the rule sets' summary; a different one (other rules, another eval function) starts
/// afresh. Delete the file after changing what an implemented rule does.
fn scores_file() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bayes-cv-rule-scores.txt")
}

type Scores = std::collections::BTreeMap<String, Vec<f64>>;

fn load_scores(fingerprint: &str) -> Scores {
    let text = std::fs::read_to_string(scores_file()).unwrap_or_default();
    let mut lines = text.lines();
    if lines.next() != Some(fingerprint) {
        return Scores::new();
    }
    lines
        .filter_map(|l| {
            let mut f = l.split(' ');
            let name = f.next()?.to_string();
            let v: Vec<f64> = f.filter_map(|x| x.parse().ok()).collect();
            (name.starts_with("hits:") || v.len() == BUCKETS.len() + 1).then_some((name, v))
        })
        .collect()
}

fn save_scores(fingerprint: &str, scores: &Scores) {
    let mut text = format!("{fingerprint}\n");
    for (name, v) in scores {
        let v: Vec<String> = v.iter().map(f64::to_string).collect();
        text.push_str(&format!("{name} {}\n", v.join(" ")));
    }
    if let Err(e) = std::fs::write(scores_file(), text) {
        eprintln!("{}: {e}", scores_file().display());
    }
}

/// A message's rule scores: score set 0, then score set 2 at each of [`BUCKETS`].
fn rule_scores(
    rules: &Rules,
    with_bayes: &Rules,
    name: &str,
    raw: &[u8],
    cache: &mut Scores,
) -> (f64, Vec<f64>) {
    let scores = cache.entry(name.to_string()).or_insert_with(|| {
        let mut v = vec![rules.check(raw, "", Options::default()).score];
        let each = with_bayes.check_each_bayes(raw, "", Options::default(), &|_| BUCKETS.to_vec());
        v.extend(each.iter().map(|o| o.score));
        v
    });
    (scores[0], scores[1..].to_vec())
}

/// The rules a message hits (score set 0), kept like the scores, in their own file.
fn rule_hits(rules: &Rules, name: &str, raw: &[u8], cache: &mut Scores) -> Vec<String> {
    let key = format!("hits:{name}");
    if let Some(v) = cache.get(&key) {
        // Stored as indices into the rule names, so that the scores file format holds them.
        return v
            .iter()
            .map(|i| rules.plan.rules[*i as usize].name.clone())
            .collect();
    }
    let out = rules.check(raw, "", Options::default());
    let index = |n: &str| rules.plan.rules.iter().position(|r| r.name == n);
    let ids: Vec<f64> = out
        .hits
        .iter()
        .filter_map(|h| index(&h.name))
        .map(|i| i as f64)
        .collect();
    cache.insert(key, ids);
    out.hits.into_iter().map(|h| h.name).collect()
}

/// The learner's settings from `AMAVISD_CV_LR` (alpha,beta,l1,l2,epochs,hits).
fn learner_settings() -> (Params, usize, bool) {
    let v: Vec<f32> = std::env::var("AMAVISD_CV_LR")
        .unwrap_or_default()
        .split(',')
        .filter_map(|x| x.parse().ok())
        .collect();
    let d = Params::default();
    let at = |i: usize, or: f32| v.get(i).copied().unwrap_or(or);
    let params = Params {
        alpha: at(0, d.alpha),
        beta: at(1, d.beta),
        l1: at(2, d.l1),
        l2: at(3, d.l2),
    };
    (params, at(4, 1.0) as usize, at(5, 1.0) != 0.0)
}

/// The word pairs' window and words paired from `AMAVISD_CV_PAIRS` (window,words).
fn pair_settings() -> (usize, usize) {
    let v: Vec<usize> = std::env::var("AMAVISD_CV_PAIRS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|x| x.parse().ok())
        .collect();
    use logistic::features::{MAX_PAIRED_WORDS, OSB_WINDOW};
    (
        v.first().copied().unwrap_or(OSB_WINDOW),
        v.get(1).copied().unwrap_or(MAX_PAIRED_WORDS),
    )
}

/// Trains a learner on `msgs` for `epochs` passes, each in its own deterministic shuffle.
fn train_learner<'a>(
    msgs: impl Iterator<Item = &'a Msg> + Clone,
    params: Params,
    epochs: usize,
) -> Model {
    let mut model = Model::new(params);
    // AMAVISD_CV_TONE=MARGIN: train only where the model is wrong or within MARGIN of it.
    let tone: Option<f32> = std::env::var("AMAVISD_CV_TONE")
        .ok()
        .and_then(|v| v.parse().ok());
    for epoch in 0..epochs {
        let mut order: Vec<&Msg> = msgs.clone().collect();
        order.sort_by_key(|m| m.key[1].rotate_left(8 * epoch as u32) ^ m.key[2]);
        // AMAVISD_CV_BLOCKS=1: all the spam, then all the ham, as `amavisd-learn` over one
        // folder of each gives them.
        if std::env::var_os("AMAVISD_CV_BLOCKS").is_some() {
            order.sort_by_key(|m| !m.spam);
        }
        for m in order {
            match tone {
                Some(margin) => {
                    model.learn_if_unsure(&m.features, m.spam, margin);
                }
                None => {
                    model.learn(&m.features, m.spam);
                }
            }
        }
    }
    model
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

/// Ham flagged and spam caught, as "fp% / recall%".
#[derive(Default)]
struct Tally {
    ham: usize,
    spam: usize,
    fp: usize,
    caught: usize,
}

impl Tally {
    fn add(&mut self, is_spam: bool, flagged: bool) {
        if is_spam {
            self.spam += 1;
            self.caught += usize::from(flagged);
        } else {
            self.ham += 1;
            self.fp += usize::from(flagged);
        }
    }

    fn show(&self, what: &str) {
        println!(
            "{what:<40} false positives {:>3} of {} ham ({:.2} %), spam recall {} of {} ({:.2} %)",
            self.fp,
            self.ham,
            100.0 * self.fp as f64 / self.ham.max(1) as f64,
            self.caught,
            self.spam,
            100.0 * self.caught as f64 / self.spam.max(1) as f64
        );
    }
}

/// Prints a message's 40 most telling tokens: text, counts in its fold's store, probability.
fn explain_tokens(store: &MemoryStore, m: &Msg) {
    use amavisd::spam::bayes::{Store, classify, tokens};
    let view = amavisd::spam::view::MessageView::new(&m.raw, "");
    let (ns, nh) = store.totals();
    let mut rows: Vec<(f64, String, (u32, u32))> = tokens::tokens(&view)
        .into_iter()
        .filter_map(|t| {
            let c = store.counts(&[tokens::hash(&t)])[0];
            classify::token_probability(c.0, c.1, ns, nh).map(|p| (p, t, c))
        })
        .collect();
    rows.sort_by(|a, b| (b.0 - 0.5).abs().total_cmp(&(a.0 - 0.5).abs()));
    println!("{}: {} tokens with a probability", m.name, rows.len());
    for (p, t, (s, h)) in rows.iter().take(40) {
        println!("  {p:.3} {s:>4} {h:>5} {t}");
    }
}

fn main() {
    let min_learned: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let root = common::corpus_root();
    let show = std::env::var_os("AMAVISD_CV_SHOW").is_some();
    let explain = std::env::var("AMAVISD_CV_EXPLAIN").ok();
    let online = std::env::var_os("AMAVISD_CV_ONLINE").is_some();
    // Online: every set, the later ones included.
    let later = online || std::env::var_os("AMAVISD_CV_LATER").is_some();
    let (params, epochs, use_hits) = learner_settings();
    let pairs = pair_settings();
    let t = Instant::now();
    let rules = Rules::load(
        Path::new("/usr/share/spamassassin"),
        Some(Path::new("/etc/spamassassin")),
    )
    .expect("rules");
    let with_bayes = Rules::load_with(
        Path::new("/usr/share/spamassassin"),
        Some(Path::new("/etc/spamassassin")),
        true,
        None,
    )
    .expect("rules");
    for r in [&rules, &with_bayes] {
        r.plan.prefilter.wait_one_pass(Duration::from_secs(600));
    }
    let fingerprint = format!("{} / {}", rules.summary(), with_bayes.summary());
    let mut cache = load_scores(&fingerprint);
    let cached = cache.len();
    let mut msgs = Vec::new();
    for (set, spam, is_later) in [
        ("easy-ham-1", false, false),
        ("hard-ham-1", false, false),
        ("spam-1", true, false),
        ("easy-ham-2", false, true),
        ("spam-2", true, true),
    ] {
        if is_later && !later {
            continue;
        }
        for f in common::set_files(&root, set) {
            let raw = std::fs::read(&f).unwrap_or_default();
            let (key, tokens) = bayes::learnable(&raw);
            let name = format!(
                "{set}/{}",
                f.file_name().unwrap_or_default().to_string_lossy()
            );
            let (alone, with_bayes) = rule_scores(&rules, &with_bayes, &name, &raw, &mut cache);
            let hits = if use_hits {
                rule_hits(&rules, &name, &raw, &mut cache)
            } else {
                Vec::new()
            };
            let hits: Vec<&str> = hits.iter().map(String::as_str).collect();
            let view = amavisd::spam::view::MessageView::new(&raw, "");
            let mut features = logistic::features::base_with(&view, &tokens, pairs.0, pairs.1);
            logistic::features::extend(&mut features, logistic::features::rule_hits(&hits));
            let time = mail_parser::MessageParser::default()
                .parse(&raw)
                .and_then(|m| m.date().map(|d| d.to_timestamp()))
                .unwrap_or(0);
            msgs.push(Msg {
                time,
                features,
                name,
                alone,
                with_bayes,
                later: is_later,
                key,
                raw,
                spam,
                tokens,
            });
        }
    }
    if cache.len() != cached {
        save_scores(&fingerprint, &cache);
    }
    // Folds by a hash of the message, so that each holds ham and spam in the set's shares.
    let fold_of = |m: &Msg| (m.key[0] as usize) % FOLDS;
    println!(
        "{} messages ({} spam), read, tokenized and scanned in {:.1} s",
        msgs.len(),
        msgs.iter().filter(|m| m.spam).count(),
        t.elapsed().as_secs_f64()
    );
    let (mut rules_alone, mut bayes_99, mut bayes_50, mut both) = Default::default();
    let (mut lr_50, mut rules_lr, mut rules_both) = <(Tally, Tally, Tally)>::default();
    let (mut p_bayes, mut p_lr, mut p_both) = (Vec::new(), Vec::new(), Vec::new());
    let mut s_bayes = Vec::new();
    let mut stack_rows: Vec<stack::Row> = Vec::new();
    let (mut tokens_held, mut features_held) = (0, 0);
    let (mut bayes_time, mut lr_time) = (Duration::ZERO, Duration::ZERO);
    let t = Instant::now();
    // AMAVISD_CV_LATER=1: one round, trained on the whole development set, classifying the
    // later sets (easy-ham-2, spam-2): "later mail of the same kind".
    let rounds = if later { 1 } else { FOLDS };
    let trains = |m: &Msg, fold: usize| !m.later && (later || fold_of(m) != fold);
    let tests = |m: &Msg, fold: usize| if later { m.later } else { fold_of(m) == fold };
    // The score set 2 total with the BAYES_xx rules a probability fires.
    let with_p = |m: &Msg, p: Option<f64>| {
        let fires = with_bayes.plan.bayes_rules_at(p);
        let bucket = BUCKETS
            .iter()
            .position(|b| with_bayes.plan.bayes_rules_at(*b) == fires)
            .expect("every probability falls in one bucket");
        m.with_bayes[bucket]
    };
    if online {
        return online_run(&msgs, &with_p, min_learned, params);
    }
    for fold in 0..rounds {
        let mut store = MemoryStore::default();
        for m in msgs.iter().filter(|m| trains(m, fold)) {
            let class = if m.spam { Class::Spam } else { Class::Ham };
            bayes::learn(&mut store, &m.key, class, &m.tokens);
        }
        tokens_held += store.len();
        let model = train_learner(msgs.iter().filter(|m| trains(m, fold)), params, epochs);
        features_held += model.len();
        for m in msgs.iter().filter(|m| tests(m, fold)) {
            let tb = Instant::now();
            let p = bayes::probability(&store, &m.tokens, min_learned);
            bayes_time += tb.elapsed();
            let tl = Instant::now();
            let pl = f64::from(model.probability(&m.features));
            lr_time += tl.elapsed();
            let pc = match p {
                Some(pb) => 1.0 / (1.0 + (-(logit(pb) + logit(pl)) / 2.0).exp()),
                None => pl,
            };
            let alone = m.alone;
            let combined = with_p(m, p);
            Tally::add(&mut rules_alone, m.spam, alone >= 5.0);
            Tally::add(&mut bayes_99, m.spam, p.is_some_and(|p| p > 0.99));
            Tally::add(&mut bayes_50, m.spam, p.is_some_and(|p| p > 0.5));
            Tally::add(&mut both, m.spam, combined >= 5.0);
            Tally::add(&mut lr_50, m.spam, pl > 0.5);
            Tally::add(&mut rules_lr, m.spam, with_p(m, Some(pl)) >= 5.0);
            Tally::add(&mut rules_both, m.spam, with_p(m, Some(pc)) >= 5.0);
            p_bayes.push((p.unwrap_or(0.5), m.spam));
            p_lr.push((pl, m.spam));
            p_both.push((pc, m.spam));
            s_bayes.push((combined, m.spam));
            stack_rows.push((combined, pl, m.spam));
            // AMAVISD_CV_EXPLAIN=NAME: the most telling tokens of the messages so named.
            if explain.as_deref().is_some_and(|e| m.name.contains(e)) {
                explain_tokens(&store, m);
            }
            // AMAVISD_CV_SHOW=1: each message rules + Bayes gets wrong.
            if show && m.spam != (combined >= 5.0) {
                println!(
                    "{} {}: rules {alone:.1}, p {}, learner {pl:.3}, rules + Bayes {combined:.1}",
                    if m.spam { "missed" } else { "false positive" },
                    m.name,
                    p.map_or("-".into(), |p| format!("{p:.3}"))
                );
            }
        }
    }
    println!(
        "{rounds} rounds in {:.1} s; {} distinct tokens per store on average",
        t.elapsed().as_secs_f64(),
        tokens_held / rounds
    );
    Tally::show(&rules_alone, "rules alone (score >= 5)");
    Tally::show(&bayes_99, "Bayes alone (p > 0.99, BAYES_99)");
    Tally::show(&bayes_50, "Bayes alone (p > 0.5)");
    Tally::show(&both, "rules + Bayes (score set 2, >= 5)");
    println!(
        "learner: alpha {} beta {} l1 {} l2 {}, {epochs} epochs, rule hits {use_hits}; {} features with state per model",
        params.alpha,
        params.beta,
        params.l1,
        params.l2,
        features_held / rounds
    );
    Tally::show(&lr_50, "learner alone (p > 0.5)");
    Tally::show(&rules_lr, "rules + learner (in BAYES_xx places)");
    Tally::show(&rules_both, "rules + both (mean log-odds)");
    let n = p_lr.len().max(1) as f64;
    println!(
        "classify: Bayes {:.3} ms, learner {:.3} ms a message (features made once, before)",
        bayes_time.as_secs_f64() * 1e3 / n,
        lr_time.as_secs_f64() * 1e3 / n
    );
    for (what, s) in [
        ("Bayes p", &p_bayes),
        ("learner p", &p_lr),
        ("both p", &p_both),
        ("rules + Bayes score", &s_bayes),
    ] {
        println!(
            "{what:<20} ROC area {:.5}, spam recall at 0.1 % false positives {:.2} %",
            metrics::roc_area(s),
            100.0 * metrics::recall_at_fp(s, 0.001)
        );
    }
    for (what, s) in [("Bayes", &p_bayes), ("learner", &p_lr), ("both", &p_both)] {
        println!("{what:<8} {}", metrics::reliability(s));
    }
    learner_rules(&stack_rows, later, both.fp);
}

/// The TREC spam track's online evaluation with immediate feedback: every message of the
/// corpus (all five sets) in the order it was written (its Date field; the sets' order for
/// equal dates), each classified by rules + Bayes (+ LEARNER_xx at the filter's scores)
/// with what was learned before it, then learned as what it is, as a user's reports would
/// teach the filter. Bayes answers once it holds `min_learned` of each class, and the
/// learner where Bayes does, as in the filter.
fn online_run(
    msgs: &[Msg],
    with_p: &dyn Fn(&Msg, Option<f64>) -> f64,
    min_learned: u64,
    params: Params,
) {
    let scores = amavisd::spam::SpamConfig::default().learner_scores;
    // The filter's scores as stack::points reads them (LEARNER_00 as a deduction).
    let points: stack::Scores = [-scores[0], scores[1], scores[2], scores[3]];
    let mut order: Vec<&Msg> = msgs.iter().collect();
    order.sort_by_key(|m| m.time);
    // The same sequence for SpamAssassin's side (scripts/online-eval-spamd.sh).
    let list: String = order
        .iter()
        .map(|m| format!("{} {}\n", m.name, if m.spam { "spam" } else { "ham" }))
        .collect();
    let list_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/online-order.txt");
    if let Err(e) = std::fs::write(&list_file, list) {
        eprintln!("{}: {e}", list_file.display());
    }
    let mut store = MemoryStore::default();
    let mut model = Model::new(params);
    let (mut rb, mut rbl) = (Tally::default(), Tally::default());
    let (mut s_rb, mut s_rbl) = (Vec::new(), Vec::new());
    let (mut p_bayes, mut p_lr) = (Vec::new(), Vec::new());
    let undated = order.iter().filter(|m| m.time == 0).count();
    for m in order {
        let p = bayes::probability(&store, &m.tokens, min_learned);
        p_bayes.push((p.unwrap_or(0.5), m.spam));
        p_lr.push((f64::from(model.probability(&m.features)), m.spam));
        let score = with_p(m, p);
        let learner = match p {
            Some(_) => stack::points(&points, f64::from(model.probability(&m.features))),
            None => 0.0,
        };
        Tally::add(&mut rb, m.spam, score >= 5.0);
        Tally::add(&mut rbl, m.spam, score + learner >= 5.0);
        s_rb.push((score, m.spam));
        s_rbl.push((score + learner, m.spam));
        let class = if m.spam { Class::Spam } else { Class::Ham };
        bayes::learn(&mut store, &m.key, class, &m.tokens);
        model.learn(&m.features, m.spam);
    }
    println!(
        "online, {} messages in time order ({undated} without a date, first):",
        s_rb.len()
    );
    for (what, s) in [("Bayes p alone", &p_bayes), ("learner p alone", &p_lr)] {
        println!(
            "{what:<40} (1-ROCA)% {:.4}, spam recall at 0.1 % false positives {:.2} %",
            100.0 * (1.0 - metrics::roc_area(s)),
            100.0 * metrics::recall_at_fp(s, 0.001)
        );
    }
    for (what, t, s) in [
        ("rules + Bayes", &rb, &s_rb),
        ("rules + Bayes + LEARNER_xx", &rbl, &s_rbl),
    ] {
        Tally::show(t, what);
        println!(
            "{what:<40} (1-ROCA)% {:.4}, spam recall at 0.1 % false positives {:.2} %",
            100.0 * (1.0 - metrics::roc_area(s)),
            100.0 * metrics::recall_at_fp(s, 0.001)
        );
    }
}

/// LEARNER_xx rules added to rules + Bayes: on the development set, the scores a grid
/// search finds (no more ham flagged than rules + Bayes flags); on the later sets, the
/// scores given in AMAVISD_CV_LEARNER_SCORES (those found on the development set).
fn learner_rules(rows: &[stack::Row], later: bool, bayes_fp: usize) {
    let given = std::env::var("AMAVISD_CV_LEARNER_SCORES").ok();
    let (scores, fp, caught) = match given.as_deref().and_then(stack::parse) {
        Some(s) => {
            let mut t = Tally::default();
            for &(score, p, spam) in rows {
                Tally::add(&mut t, spam, score + stack::points(&s, p) >= 5.0);
            }
            (s, t.fp, t.caught)
        }
        None if !later => stack::search(rows, bayes_fp),
        None => {
            println!(
                "LEARNER_xx: set AMAVISD_CV_LEARNER_SCORES to the scores the development set chose"
            );
            return;
        }
    };
    let spam = rows.iter().filter(|r| r.2).count();
    let ham = rows.len() - spam;
    println!(
        "rules + Bayes + LEARNER_xx {:?}: false positives {fp} of {ham} ({:.2} %), spam recall {caught} of {spam} ({:.2} %)",
        scores,
        100.0 * fp as f64 / ham.max(1) as f64,
        100.0 * caught as f64 / spam.max(1) as f64
    );
}
