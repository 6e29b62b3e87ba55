//! The compatibility harness: runs the real `spamassassin -L -t` (Debian `spamassassin`,
//! network tests off) and our engine over messages of the SpamAssassin corpus development set,
//! and prints rule-hit agreement for the rules we evaluate (for now: header rules that test a
//! value with a regex, and body regex rules) and where we disagree.
//!
//! ```text
//! cargo run --release --example sa_compat -- [MESSAGES]     # default 100; AMAVISD_CORPUS=dir
//! ```
//!
//! SpamAssassin lists only rules with a non-zero score in `tests=`, so the comparison covers
//! those. About 0.8 s per message goes to spamassassin itself.

use amavisd::spam::cf::{Config, Kind};
use amavisd::spam::headers::{HeaderTest, Headers};
use amavisd::spam::pattern::{Pattern, compile, literal_of};
use amavisd::spam::render::body_paragraphs;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn corpus() -> PathBuf {
    if let Ok(d) = std::env::var("AMAVISD_CORPUS") {
        return d.into();
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/scripts/fetch-corpus.sh"
    );
    let out = Command::new("bash")
        .arg(script)
        .output()
        .expect("fetch-corpus.sh");
    String::from_utf8_lossy(&out.stdout).trim().into()
}

/// The rule names in SpamAssassin's X-Spam-Status `tests=` list.
fn sa_hits(raw: &[u8]) -> BTreeSet<String> {
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
            status.push_str(line.trim());
        } else if inside {
            break;
        }
    }
    let tests = status
        .split("tests=")
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("");
    tests
        .split(',')
        .filter(|t| !t.is_empty() && *t != "none")
        .map(str::to_string)
        .collect()
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let cfg = Config::load(
        Path::new("/usr/share/spamassassin"),
        Some(Path::new("/etc/spamassassin")),
    );
    let mut tests = Vec::new();
    for r in cfg.rules.values() {
        let d = r.definition.trim();
        if r.kind != Kind::Header
            || d.starts_with("eval:")
            || d.starts_with("exists:")
            || cfg.score_of(r) == 0.0
        {
            continue;
        }
        if let Ok(t) = HeaderTest::parse(d) {
            tests.push((r.name.clone(), t));
        }
    }
    let mut bodies: Vec<(String, Pattern)> = Vec::new();
    for r in cfg.rules.values() {
        if r.kind != Kind::Body || cfg.score_of(r) == 0.0 {
            continue;
        }
        if let Some(lit) = literal_of(r.kind, &r.definition)
            && let Ok(p) = compile(&lit)
        {
            bodies.push((r.name.clone(), p));
        }
    }
    let root = corpus();
    let mut files: Vec<PathBuf> = ["easy-ham-1", "spam-1", "hard-ham-1"]
        .iter()
        .flat_map(|s| {
            std::fs::read_dir(root.join(s))
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.path())
        .collect();
    files.sort_by_key(|p| p.file_name().map(|f| f.to_owned()));
    files.truncate(n);
    let (mut agree, mut total) = (0usize, 0usize);
    let (mut b_agree, mut b_total) = (0usize, 0usize);
    let mut only_ours: BTreeMap<String, usize> = BTreeMap::new();
    let mut only_sa: BTreeMap<String, usize> = BTreeMap::new();
    for f in &files {
        let raw = std::fs::read(f).expect("message");
        // The corpus files start with an mbox "From " line, which SpamAssassin skips too.
        let body = match raw.strip_prefix(b"From ") {
            Some(_) => raw
                .splitn(2, |&b| b == b'\n')
                .nth(1)
                .unwrap_or(&[])
                .to_vec(),
            None => raw.clone(),
        };
        let end = body
            .windows(2)
            .position(|w| w == b"\n\n")
            .map_or(body.len(), |p| p + 1);
        let head = Headers::parse(&body[..end], "");
        let theirs = sa_hits(&body);
        let paragraphs = body_paragraphs(&body);
        for (name, p) in &bodies {
            let ours = paragraphs.iter().any(|x| p.is_match(x.as_bytes()));
            let sa = theirs.contains(name);
            b_total += 1;
            if ours == sa {
                b_agree += 1;
            } else if ours {
                *only_ours.entry(name.clone()).or_default() += 1;
            } else {
                *only_sa.entry(name.clone()).or_default() += 1;
            }
        }
        for (name, t) in &tests {
            let ours = t.hits(&head);
            let sa = theirs.contains(name);
            total += 1;
            if ours == sa {
                agree += 1;
            } else if ours {
                *only_ours.entry(name.clone()).or_default() += 1;
            } else {
                *only_sa.entry(name.clone()).or_default() += 1;
            }
        }
    }
    println!(
        "{} messages, {} header regex rules: {agree} of {total} (message, rule) pairs agree ({:.2} %)",
        files.len(),
        tests.len(),
        agree as f64 * 100.0 / total.max(1) as f64
    );
    println!(
        "{} body regex rules: {b_agree} of {b_total} pairs agree ({:.2} %)",
        bodies.len(),
        b_agree as f64 * 100.0 / b_total.max(1) as f64
    );
    let mut worst: Vec<(usize, String, &str)> = only_ours
        .iter()
        .map(|(k, v)| (*v, k.clone(), "we hit, SpamAssassin did not"))
        .chain(
            only_sa
                .iter()
                .map(|(k, v)| (*v, k.clone(), "SpamAssassin hit, we did not")),
        )
        .collect();
    worst.sort_by_key(|w| std::cmp::Reverse(w.0));
    for (count, name, what) in worst.iter().take(20) {
        println!("  {name}: {count} ({what})");
    }
}
