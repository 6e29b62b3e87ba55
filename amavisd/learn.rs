//! `amavisd-learn`: trains the Bayes store on files, folders (maildir included) and mbox
//! files, as `sa-learn` does:
//!
//! ```text
//! amavisd-learn [--spam PATH...] [--ham PATH...] [--db URL] [--user U] [--learner]
//! amavisd-learn --forget [--db URL] [--user U] PATH...
//! amavisd-learn --purge [--db URL] [--user U] [--learner] [--max-age-days N] [--hapax-days N] [--max-tokens N]
//! ```
//!
//! `--learner` trains (and purges) the second engine's weights too, as the filter does with
//! `spam.learner = true`: give it when the filter has the learner on.
//!
//! Learning a message again changes nothing; learning it as the other class moves it over.
//! The store is `sqlite:var/bayes.sqlite` unless `--db` names another (`postgres://...`,
//! `redis://...`). `--purge` removes old tokens (every user's, or `--user`'s), as the filter
//! does on its own every `spam.bayes_purge_interval`. Exit status 0 when every message was
//! read and stored.

use amavisd::spam::SpamConfig;
use amavisd::spam::learner::Learner;
use amavisd::spam::{Class, Learnable, Learned, Trainer, message_files, messages_in};
use clap::Parser;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "amavisd-learn",
    version,
    about = "Train amavisd-rs's Bayes store"
)]
struct Args {
    /// Learn the messages in these files, folders and mbox files as spam. With --ham in the
    /// same run the two classes are learned interleaved, in proportion: the learner
    /// (--learner) is biased by long runs of one class.
    #[arg(long, num_args = 1.., value_name = "PATH")]
    spam: Vec<PathBuf>,
    /// Learn the messages in these as ham.
    #[arg(long, num_args = 1.., value_name = "PATH")]
    ham: Vec<PathBuf>,
    /// Take the messages in PATH... back out.
    #[arg(long, conflicts_with_all = ["spam", "ham", "purge"])]
    forget: bool,
    /// Remove old tokens: not learned for --max-age-days, hapaxes not learned for
    /// --hapax-days, then the least recently learned beyond --max-tokens.
    #[arg(long, conflicts_with_all = ["spam", "ham"])]
    purge: bool,
    /// The store: sqlite:FILE, postgres://... or redis://...
    #[arg(long, default_value = "sqlite:var/bayes.sqlite")]
    db: String,
    /// Whose store (dspam-style per-user training); empty for the site's. With --purge and
    /// no --user: every user's.
    #[arg(long)]
    user: Option<String>,
    /// Purge: days since a token was last learned before it goes (0: kept).
    #[arg(long, default_value_t = SpamConfig::default().bayes_token_max_age_days)]
    max_age_days: u64,
    /// Purge: the same for tokens seen in one message only (0: kept).
    #[arg(long, default_value_t = SpamConfig::default().bayes_hapax_max_age_days)]
    hapax_days: u64,
    /// Purge: tokens kept per user at most (0: no bound).
    #[arg(long, default_value_t = SpamConfig::default().bayes_max_tokens)]
    max_tokens: u64,
    /// Train the learner's weights too (the filter's `spam.learner`); with --purge, purge
    /// them too.
    #[arg(long)]
    learner: bool,
    /// With --forget: files, folders (walked recursively) and mbox files.
    #[arg(requires = "forget")]
    paths: Vec<PathBuf>,
}

/// A progress bar on a terminal, nothing otherwise.
fn progress(done: usize, total: usize) {
    let mut err = std::io::stderr();
    if !err.is_terminal() || total == 0 {
        return;
    }
    let width = 40;
    let filled = done * width / total;
    let _ = write!(
        err,
        "\r[{}{}] {done}/{total}",
        "#".repeat(filled),
        " ".repeat(width - filled)
    );
    if done == total {
        let _ = writeln!(err);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let store = match Trainer::open(&args.db, 0).await {
        Ok(s) if args.learner => s.with_learner(Learner::of(&SpamConfig {
            bayes_store: args.db.clone(),
            learner: true,
            ..SpamConfig::default()
        })),
        Ok(s) => s,
        Err(e) => {
            eprintln!("amavisd-learn: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.purge {
        return purge(&store, &args).await;
    }
    let user = args.user.clone().unwrap_or_default();
    let files = match work_list(&args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("amavisd-learn: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.learner && (args.spam.is_empty() || args.ham.is_empty()) && files.len() > 50 {
        // Measured (README, the learner): a whole folder of one class, then one of the
        // other, leaves the learner worse than none.
        eprintln!(
            "amavisd-learn: note: the learner learns in the order given; {} messages of one class in a row will bias it. Give --spam and --ham in one run to have them interleaved.",
            files.len()
        );
    }
    let (mut new, mut unchanged, mut flipped, mut forgotten, mut failed) = (0, 0, 0, 0, 0);
    let started = std::time::Instant::now();
    for (n, (f, class)) in files.iter().enumerate() {
        let data = match std::fs::read(f) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("amavisd-learn: {}: {e}", f.display());
                failed += 1;
                continue;
            }
        };
        for raw in messages_in(&data) {
            let msg = Learnable::of(raw);
            let done = match class {
                Some(c) => store.learn(&user, *c, &msg).await,
                None => store.forget(&user, &msg).await,
            };
            match done {
                Ok(Learned::New) => new += 1,
                Ok(Learned::Unchanged) => unchanged += 1,
                Ok(Learned::Flipped) => flipped += 1,
                Ok(Learned::Forgotten) => forgotten += 1,
                Ok(Learned::NotLearned) => unchanged += 1,
                Err(e) => {
                    eprintln!("amavisd-learn: {}: {e}", f.display());
                    failed += 1;
                }
            }
        }
        progress(n + 1, files.len());
    }
    let total = new + unchanged + flipped + forgotten;
    let rate = total as f64 / started.elapsed().as_secs_f64().max(1e-9);
    match store.totals(&user).await {
        Ok((s, h)) => println!(
            "{total} messages: {new} learned, {flipped} moved to the other class, {forgotten} forgotten, {unchanged} unchanged, {failed} failed ({rate:.0}/s); the store holds {s} spam and {h} ham"
        ),
        Err(e) => {
            eprintln!("amavisd-learn: {e}");
            failed += 1;
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The files to learn, each with its class (`None`: forget), spam and ham interleaved in
/// proportion so that neither class comes in a long run.
fn work_list(args: &Args) -> Result<Vec<(PathBuf, Option<Class>)>, String> {
    if args.forget {
        if args.paths.is_empty() {
            return Err("--forget needs the messages to forget (PATH...)".into());
        }
        let files = message_files(&args.paths).map_err(|e| e.to_string())?;
        return Ok(files.into_iter().map(|f| (f, None)).collect());
    }
    if args.spam.is_empty() && args.ham.is_empty() {
        return Err("give --spam PATH..., --ham PATH..., --forget PATH... or --purge".into());
    }
    let spam = message_files(&args.spam).map_err(|e| e.to_string())?;
    let ham = message_files(&args.ham).map_err(|e| e.to_string())?;
    Ok(interleave(spam, ham))
}

/// Spam and ham merged so that at every point each class has come in its share of the
/// whole (the next file is of the class furthest behind its share).
fn interleave(spam: Vec<PathBuf>, ham: Vec<PathBuf>) -> Vec<(PathBuf, Option<Class>)> {
    let (ns, nh) = (spam.len(), ham.len());
    let mut out = Vec::with_capacity(ns + nh);
    let (mut s, mut h) = (spam.into_iter(), ham.into_iter());
    let (mut taken_s, mut taken_h) = (0usize, 0usize);
    while taken_s < ns || taken_h < nh {
        // Spam's share after taking one more, against ham's, cross-multiplied.
        let spam_next = taken_h == nh || (taken_s < ns && (taken_s + 1) * nh <= (taken_h + 1) * ns);
        let next = if spam_next {
            taken_s += 1;
            s.next().map(|f| (f, Some(Class::Spam)))
        } else {
            taken_h += 1;
            h.next().map(|f| (f, Some(Class::Ham)))
        };
        out.extend(next);
    }
    out
}

/// `--purge`: one user's tokens, or every user's.
async fn purge(store: &Trainer, args: &Args) -> ExitCode {
    let cfg = SpamConfig {
        bayes_token_max_age_days: args.max_age_days,
        bayes_hapax_max_age_days: args.hapax_days,
        bayes_max_tokens: args.max_tokens,
        ..SpamConfig::default()
    };
    let now = amavisd::spam::now();
    let (p, w) = (cfg.purge(now), cfg.weight_purge(now));
    let done = match &args.user {
        Some(u) => store.purge_user(u, &p, &w).await.map(|n| (1, n)),
        None => store.purge(&p, &w).await,
    };
    match done {
        Ok((users, removed)) => {
            let what = if args.learner {
                "tokens and learner features"
            } else {
                "tokens"
            };
            println!("purged {removed} {what} of {users} users");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("amavisd-learn: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_come_in_proportion_not_in_runs() {
        let files = |tag: &str, n: usize| -> Vec<PathBuf> {
            (0..n).map(|i| PathBuf::from(format!("{tag}{i}"))).collect()
        };
        let order: String = interleave(files("s", 2), files("h", 6))
            .iter()
            .map(|(_, c)| if *c == Some(Class::Spam) { 's' } else { 'h' })
            .collect();
        assert_eq!(order.len(), 8);
        // Every prefix holds its share of spam, give or take one.
        for k in 1..=order.len() {
            let spam = order[..k].matches('s').count() as f64;
            assert!((spam - k as f64 * 2.0 / 8.0).abs() <= 1.0, "{order}");
        }
        assert_eq!(order.matches('s').count(), 2);
        let all = interleave(files("s", 3), files("h", 3));
        assert_eq!(all.len(), 6);
        assert!(all.windows(2).all(|w| w[0].1 != w[1].1), "alternate");
        assert!(
            interleave(files("s", 2), Vec::new())
                .iter()
                .all(|(_, c)| *c == Some(Class::Spam))
        );
        assert!(interleave(Vec::new(), Vec::new()).is_empty());
    }
}
