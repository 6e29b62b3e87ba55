//! The compatibility harness: runs the real `spamassassin -L -t` (Debian `spamassassin`,
//! network tests off) and our engine over messages of the SpamAssassin corpus development set
//! (easy ham, hard ham and spam, in file name order), and prints rule-hit agreement per rule
//! and overall over the rules we evaluate, and the score difference per message.
//!
//! ```text
//! cargo run --release --example sa_compat -- [MESSAGES] [-v] [--later]
//! ```
//!
//! MESSAGES: the first N of the development set by file name (default: every one). `--later`
//! takes the later sets (easy-ham-2, spam-2) instead: mail the rules were not compared on
//! while they were written. `AMAVISD_CORPUS=dir` names the corpus.
//!
//! Agreement is reported three ways: (message, rule) pairs, the mean over messages of the
//! Jaccard index of the two hit sets (rules both hit / rules either hit; 1 when neither hits
//! any), and the share of messages whose hit sets are identical.
//!
//! SpamAssassin lists only rules with a non-zero score in `tests=`, so the comparison covers
//! those, for the rules our plan runs (network, Bayes and rules with eval functions we lack
//! are left out of the rule agreement, but not out of the score comparison). spamassassin
//! takes about 0.8 s a message; its answers are kept under `target/sa-compat/`, and
//! `bash scripts/sa-compat-cache.sh` fills them from spamd six times faster.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use amavisd::spam::engine::Rules;
use amavisd::spam::scan::Options;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// SpamAssassin's X-Spam-Status field for `raw` (unfolded), from the cache under
/// `target/sa-compat/` when an earlier run stored it.
fn sa_status(file: &Path, raw: &[u8]) -> String {
    let name = |p: Option<&std::ffi::OsStr>| {
        p.map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let cache = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/sa-compat")
        .join(format!(
            "{}__{}",
            name(file.parent().and_then(|p| p.file_name())),
            name(file.file_name())
        ));
    if let Ok(s) = std::fs::read_to_string(&cache) {
        return s;
    }
    let mut child = Command::new("spamassassin")
        .args(["-L", "-t"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spamassassin (apt-get install spamassassin)");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(raw);
    }
    let out = child.wait_with_output().expect("spamassassin output");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut status = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("X-Spam-Status:") {
            inside = true;
            status.push_str(line);
        } else if inside && (line.starts_with(' ') || line.starts_with('\t')) {
            status.push(' ');
            status.push_str(line.trim());
        } else if inside {
            break;
        }
    }
    let _ = std::fs::create_dir_all(cache.parent().unwrap_or(Path::new(".")));
    let _ = std::fs::write(&cache, &status);
    status
}

/// The rule names in `tests=` and the score.
fn parse_status(status: &str) -> (BTreeSet<String>, f64) {
    let score = status
        .split("score=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    // tests= runs until " autolearn=" and may have been folded with spaces after commas.
    let tests = status
        .split("tests=")
        .nth(1)
        .unwrap_or("")
        .split(" autolearn=")
        .next()
        .unwrap_or("");
    let names = tests
        .split([',', ' '])
        .filter(|t| !t.is_empty() && *t != "none")
        .map(str::to_string)
        .collect();
    (names, score)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(usize::MAX);
    let verbose = args.iter().any(|a| a == "-v");
    let later = args.iter().any(|a| a == "--later");
    let rules = Rules::load(
        Path::new("/usr/share/spamassassin"),
        Some(Path::new("/etc/spamassassin")),
    )
    .expect("rules");
    // Compare what the filter runs with: the one-pass prefilter when this build has it.
    rules
        .plan
        .prefilter
        .wait_one_pass(std::time::Duration::from_secs(600));
    println!("{}", rules.summary());
    let evaluated: BTreeSet<&str> = rules
        .plan
        .rules
        .iter()
        .filter(|r| r.score != 0.0 && !r.name.starts_with("__"))
        .map(|r| r.name.as_str())
        .collect();
    let files = if later {
        common::later_files(n)
    } else {
        common::dev_files(n)
    };
    let (mut agree, mut total) = (0usize, 0usize);
    let (mut jaccard, mut identical) = (0.0f64, 0usize);
    let mut per_rule: BTreeMap<&str, (usize, usize)> = BTreeMap::new(); // (only ours, only SA)
    let mut within = 0usize;
    let mut diffs: Vec<(f64, String, f64, f64)> = Vec::new();
    let mut ms = 0.0;
    for f in &files {
        let raw = std::fs::read(f).expect("message");
        let body = match raw.strip_prefix(b"From ") {
            Some(_) => raw
                .splitn(2, |&b| b == b'\n')
                .nth(1)
                .unwrap_or(&[])
                .to_vec(),
            None => raw.clone(),
        };
        let (theirs, sa_score) = parse_status(&sa_status(f, &body));
        let t = std::time::Instant::now();
        let o = rules.check(&body, "", Options::default());
        ms += t.elapsed().as_secs_f64() * 1000.0;
        let ours: BTreeSet<&str> = o.hits.iter().map(|h| h.name.as_str()).collect();
        let (both, either) = evaluated.iter().fold((0, 0), |(b, e), r| {
            let (a, t) = (ours.contains(r), theirs.contains(*r));
            (b + usize::from(a && t), e + usize::from(a || t))
        });
        jaccard += if either == 0 {
            1.0
        } else {
            both as f64 / either as f64
        };
        identical += usize::from(both == either);
        for r in &evaluated {
            total += 1;
            let (a, b) = (ours.contains(r), theirs.contains(*r));
            if a == b {
                agree += 1;
            } else {
                let e = per_rule.entry(r).or_default();
                if a { e.0 += 1 } else { e.1 += 1 }
            }
        }
        let d = o.score - sa_score;
        if d.abs() <= 0.5 {
            within += 1;
        }
        diffs.push((
            d,
            f.file_name()
                .map(|x| x.to_string_lossy().into_owned())
                .unwrap_or_default(),
            o.score,
            sa_score,
        ));
        if verbose && d.abs() > 0.5 {
            let only_sa: Vec<&String> = theirs
                .iter()
                .filter(|t| !ours.contains(t.as_str()))
                .collect();
            let only_us: Vec<&&str> = ours.iter().filter(|t| !theirs.contains(**t)).collect();
            println!(
                "{}: ours {:.1} SA {:.1}; only SA {:?}; only ours {:?}",
                f.display(),
                o.score,
                sa_score,
                only_sa,
                only_us
            );
        }
    }
    println!(
        "{} messages, {} rules evaluated: {agree} of {total} (message, rule) pairs agree ({:.2} %)",
        files.len(),
        evaluated.len(),
        agree as f64 * 100.0 / total.max(1) as f64
    );
    println!(
        "hit sets: mean Jaccard {:.4}; identical on {identical} of {} messages ({:.2} %)",
        jaccard / files.len().max(1) as f64,
        files.len(),
        identical as f64 * 100.0 / files.len().max(1) as f64
    );
    println!(
        "score within 0.5 of SpamAssassin's: {within} of {} messages ({:.1} %); our scan {:.2} ms a message",
        files.len(),
        within as f64 * 100.0 / files.len().max(1) as f64,
        ms / files.len().max(1) as f64
    );
    let mut worst: Vec<(usize, &str, usize, usize)> = per_rule
        .iter()
        .map(|(r, (a, b))| (a + b, *r, *a, *b))
        .collect();
    worst.sort_by_key(|w| std::cmp::Reverse(w.0));
    println!("rules that disagree most (we hit alone / SpamAssassin hit alone):");
    for (_, name, a, b) in worst.iter().take(40) {
        println!("  {name}: {a} / {b}");
    }
    diffs.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
    println!("largest score differences (ours - SpamAssassin's):");
    for (d, name, o, s) in diffs.iter().take(10) {
        println!("  {name}: {d:+.1} (ours {o:.1}, SpamAssassin {s:.1})");
    }
}
