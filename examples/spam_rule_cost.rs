//! Which rules cost the most: runs the non-meta rules of the plan that pass the prefilter
//! over corpus messages, as a scan does, and prints the slowest in total time with
//! how often each ran (a tuning aid for the prefilters).
//!
//! ```text
//! cargo run --release --example spam_rule_cost -- [MESSAGES]   # default 300
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use amavisd::spam::engine::Rules;
use amavisd::spam::eval::Ctx;
use amavisd::spam::scan::run_rule;
use amavisd::spam::view::MessageView;
use std::path::Path;
use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    let rules = Rules::load(
        Path::new("/usr/share/spamassassin"),
        Some(Path::new("/etc/spamassassin")),
    )
    .unwrap_or_else(|e| panic!("rules: {e}"));
    rules.plan.prefilter.wait_one_pass(Duration::from_secs(600));
    let files = common::dev_files(n);
    let plan = &rules.plan;
    let mut cost = vec![Duration::ZERO; plan.first_meta];
    let mut runs = vec![0usize; plan.first_meta];
    let mut view_time = Duration::ZERO;
    let mut prefilter_time = Duration::ZERO;
    for f in &files {
        let raw = std::fs::read(f).unwrap_or_default();
        let t = Instant::now();
        let view = MessageView::build(&raw, "", &rules.view);
        view_time += t.elapsed();
        let ctx = Ctx {
            view: &view,
            lists: &rules.lists,
            bayes: None,
        };
        let t = Instant::now();
        let may = amavisd::spam::scan::candidates(plan, &view, Default::default());
        prefilter_time += t.elapsed();
        for (i, r) in plan.rules[..plan.first_meta].iter().enumerate() {
            if !may[i] {
                continue;
            }
            runs[i] += 1;
            let t = Instant::now();
            run_rule(r, &view, &ctx);
            cost[i] += t.elapsed();
        }
    }
    let total: Duration = cost.iter().sum();
    let per_message = |d: Duration| d.as_secs_f64() * 1000.0 / files.len() as f64;
    println!(
        "{} messages: view {:.2} ms, prefilter {:.2} ms, rules {:.2} ms a message",
        files.len(),
        per_message(view_time),
        per_message(prefilter_time),
        per_message(total)
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
    for &i in order.iter().take(40) {
        let r = &plan.rules[i];
        let engine = match &r.test {
            amavisd::spam::rules::plan::Test::Pattern(p) => p.engine(),
            _ => "-",
        };
        println!(
            "{:>8.3} ms  {:>4} runs  {:?} {} {}",
            cost[i].as_secs_f64() * 1000.0 / files.len() as f64,
            runs[i],
            r.kind,
            r.name,
            engine
        );
    }
}
