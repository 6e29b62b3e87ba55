//! Where the spam engine's memory goes: live heap (Rust allocations, counted) and resident
//! memory (everything, including libhs and PCRE2's C allocations) after each phase.
//!
//! ```text
//! cargo run --release --example engine_memory -- DIR [THREADS...]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amavisd::spam::engine::Rules;
use amavisd::spam::scan::{self, Options};
use amavisd::spam::view::MessageView;
use std::alloc::{GlobalAlloc, Layout};
use std::path::Path;
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to mimalloc unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn report(what: &str) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let rss = status
        .lines()
        .find(|l| l.starts_with("RssAnon:"))
        .unwrap_or("")
        .to_string();
    println!(
        "{what:40} live heap {:7.1} MiB   {rss}",
        LIVE.load(Ordering::Relaxed) as f64 / 1048576.0
    );
}

/// The linear regexes' compiled size and their caches, summed; the largest caches by rule.
fn regex_memory(plan: &amavisd::spam::rules::plan::Plan) {
    use amavisd::spam::rules::pattern::Pattern;
    use amavisd::spam::rules::plan::Test;
    let (mut compiled, mut caches, mut n, mut other) = (0usize, 0usize, 0usize, 0usize);
    let mut largest: Vec<(usize, &str)> = Vec::new();
    let mut big: Vec<(usize, &str)> = Vec::new();
    for rule in &plan.rules {
        let p = match &rule.test {
            Test::Pattern(p) => p,
            Test::Mimeheader { pattern, .. } => pattern,
            Test::Header(h) => &h.pattern,
            _ => continue,
        };
        let linear = match p {
            Pattern::Fast(l) => Some(l),
            Pattern::Perl(_, pre) => {
                other += 1;
                pre.as_ref()
            }
            #[cfg(feature = "pcre")]
            Pattern::Pcre(_, _) => {
                other += 1;
                None
            }
        };
        if let Some(l) = linear {
            let (c, k) = l.memory_usage();
            compiled += c;
            caches += k;
            n += 1;
            largest.push((k, &rule.name));
            big.push((c, &rule.name));
        }
    }
    largest.sort_unstable_by(|a, b| b.cmp(a));
    big.sort_unstable_by(|a, b| b.cmp(a));
    if caches == 0 {
        let top: usize = big.iter().take(50).map(|b| b.0).sum();
        println!(
            "  largest compiled: {} (top 50 together {:.1} MiB)",
            big.iter()
                .take(12)
                .map(|(b, name)| format!("{name} {:.2}", *b as f64 / 1048576.0))
                .collect::<Vec<_>>()
                .join(", "),
            top as f64 / 1048576.0
        );
    }
    let mib = |b: usize| b as f64 / 1048576.0;
    println!(
        "  {n} linear regexes ({other} on PCRE2 or fancy-regex): compiled {:.1} MiB, caches {:.1} MiB; \
         largest caches: {}",
        mib(compiled),
        mib(caches),
        largest
            .iter()
            .take(8)
            .map(|(b, name)| format!("{name} {:.2}", mib(*b)))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are the 12th and 13th after the name.
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = &args[0];
    let threads: Vec<usize> = args[1..].iter().map(|a| a.parse().unwrap()).collect();
    let mut msgs: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    msgs.truncate(1000);
    report("messages read");
    let rules = Rules::load(
        Path::new("/usr/share/spamassassin"),
        Some(Path::new("/etc/spamassassin")),
    )
    .unwrap();
    report("rules loaded (literal prefilter)");
    regex_memory(&rules.plan);
    let one_pass = rules
        .plan
        .prefilter
        .wait_one_pass(std::time::Duration::from_secs(600));
    report(&format!("one-pass compiled ({one_pass})"));
    for n in threads {
        let t0 = std::time::Instant::now();
        let cpu0 = cpu_seconds();
        std::thread::scope(|s| {
            for t in 0..n {
                let (rules, msgs) = (&rules, &msgs);
                s.spawn(move || {
                    for m in msgs.iter().skip(t).step_by(n) {
                        let view = MessageView::build(m, "", &rules.view);
                        let o = scan::scan(&rules.plan, &view, &rules.lists, Options::default());
                        std::hint::black_box(o);
                    }
                });
            }
        });
        report(&format!(
            "scanned on {n} threads in {:.1} s ({:.2} CPU s)",
            t0.elapsed().as_secs_f64(),
            cpu_seconds() - cpu0
        ));
        regex_memory(&rules.plan);
    }
}
