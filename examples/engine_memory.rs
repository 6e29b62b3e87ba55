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
    let one_pass = rules
        .plan
        .prefilter
        .wait_one_pass(std::time::Duration::from_secs(600));
    report(&format!("one-pass compiled ({one_pass})"));
    for n in threads {
        let t0 = std::time::Instant::now();
        std::thread::scope(|s| {
            for t in 0..n {
                let (rules, msgs) = (&rules, &msgs);
                s.spawn(move || {
                    for m in msgs.iter().skip(t).step_by(n) {
                        let view = MessageView::build(m, "", &rules.originating);
                        let o = scan::scan(&rules.plan, &view, &rules.lists, Options::default());
                        std::hint::black_box(o);
                    }
                });
            }
        });
        report(&format!(
            "scanned on {n} threads in {:.1} s",
            t0.elapsed().as_secs_f64()
        ));
    }
}
