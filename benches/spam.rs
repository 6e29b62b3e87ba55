//! `cargo bench --bench spam`: the embedded spam engine over the SpamAssassin corpus
//! development set with Debian's full rule set (score set 0), on 1 and 2 threads; then, in the
//! same run, the real `spamd` (2 children, network tests off) fed by `spamc` with the same
//! messages, and the ratio.
//!
//! `SPAM_BENCH_SPAMD=N` sets how many messages go to spamd (default 200; it does about 10 a
//! second on 2 cores, so the whole set would take minutes); `0` skips it. The engine's figure
//! is over the whole set, and also over the same N (every k-th message) for the ratio.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use amavisd::spam::engine::Rules;
use amavisd::spam::scan::Options;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn engine_rate(rules: &Rules, msgs: &[Vec<u8>], threads: usize) -> (f64, usize) {
    let start = Instant::now();
    let spam = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..threads {
            let spam = &spam;
            s.spawn(move || {
                for m in msgs.iter().skip(t).step_by(threads) {
                    if rules.check(m, "", Options::default()).is_spam() {
                        spam.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    (
        msgs.len() as f64 / start.elapsed().as_secs_f64(),
        spam.into_inner(),
    )
}

/// Real spamd with 2 children on `port`, 2 spamc streams; messages/s and how many it called
/// spam.
fn spamd_rate(msgs: &[Vec<u8>], port: u16) -> Option<(f64, usize)> {
    let mut spamd = Command::new("/usr/sbin/spamd")
        .args([
            "-L",
            "--max-children=2",
            "--min-children=2",
            "--min-spare=2",
            "--listen",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-u", "nobody", "--pidfile", "/tmp/amavisd-bench-spamd.pid"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let ping = || {
        Command::new("spamc")
            .args(["-d", "127.0.0.1", "-p", &port.to_string(), "-K"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ping() {
        if Instant::now() > deadline {
            let _ = spamd.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let start = Instant::now();
    let spam = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..2 {
            let spam = &spam;
            s.spawn(move || {
                for m in msgs.iter().skip(t).step_by(2) {
                    let mut c = Command::new("spamc")
                        .args([
                            "-d",
                            "127.0.0.1",
                            "-p",
                            &port.to_string(),
                            "-c",
                            "-s",
                            "10000000",
                        ])
                        .stdin(Stdio::piped())
                        .stdout(Stdio::null())
                        .spawn()
                        .expect("spamc");
                    if let Some(mut i) = c.stdin.take() {
                        let _ = i.write_all(m);
                    }
                    if c.wait().is_ok_and(|st| st.code() == Some(1)) {
                        spam.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let rate = msgs.len() as f64 / start.elapsed().as_secs_f64();
    let _ = spamd.kill();
    let _ = spamd.wait();
    Some((rate, spam.into_inner()))
}

fn main() {
    let Some(root) = common::corpus() else {
        eprintln!("spam bench: no corpus (scripts/fetch-corpus.sh)");
        return;
    };
    // The mbox "From " line is not part of the message (spamc would pass it on as a header).
    let msgs: Vec<Vec<u8>> = common::corpus_messages(&root)
        .into_iter()
        .map(|m| match m.strip_prefix(b"From ") {
            Some(_) => m.splitn(2, |&b| b == b'\n').nth(1).unwrap_or(&[]).to_vec(),
            None => m,
        })
        .collect();
    let t = Instant::now();
    let rules = Rules::load(
        Path::new("/usr/share/spamassassin"),
        Some(Path::new("/etc/spamassassin")),
    )
    .expect("SpamAssassin rules (apt-get install spamassassin)");
    let loaded = t.elapsed().as_secs_f64();
    // The filter answers with the literal prefilter while Vectorscan compiles in the
    // background; measure the steady state.
    let one_pass = rules.plan.prefilter.wait_one_pass(Duration::from_secs(600));
    println!(
        "rules loaded and compiled in {loaded:.2} s, one-pass prefilter {} after {:.1} s: {}",
        if one_pass { "ready" } else { "not built" },
        t.elapsed().as_secs_f64(),
        rules.summary()
    );
    // Warm up (lazy DFA states), then measure.
    engine_rate(&rules, &msgs[..msgs.len().min(200)], 1);
    for threads in [1, 2] {
        let (rate, spam) = engine_rate(&rules, &msgs, threads);
        println!(
            "engine, {threads} thread(s): {} messages, {rate:.0} msg/s, {:.2} ms a message, {spam} spam",
            msgs.len(),
            1000.0 * threads as f64 / rate
        );
    }
    let n: usize = std::env::var("SPAM_BENCH_SPAMD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
        .min(msgs.len());
    if n == 0 {
        return;
    }
    // Every k-th message, so the sample has ham and spam in the corpus's proportions.
    let sample: Vec<Vec<u8>> = msgs
        .iter()
        .step_by((msgs.len() / n).max(1))
        .take(n)
        .cloned()
        .collect();
    let sample = &sample[..];
    // The engine goes through the sample five times (one pass takes a fraction of a second,
    // too short to time on a busy machine); its spam count is of one pass.
    let (_, our_spam) = engine_rate(&rules, sample, 2);
    let five: Vec<Vec<u8>> = sample.iter().cycle().take(5 * n).cloned().collect();
    let (ours, _) = engine_rate(&rules, &five, 2);
    match spamd_rate(sample, 17830) {
        Some((theirs, their_spam)) => println!(
            "same {n} messages, 2 cores: engine {ours:.0} msg/s ({our_spam} spam), spamd 2 children + spamc {theirs:.1} msg/s ({their_spam} spam): {:.0} times",
            ours / theirs
        ),
        None => println!("spamd did not start (apt-get install spamd); no comparison"),
    }
}
