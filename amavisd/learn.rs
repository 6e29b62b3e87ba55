//! `amavisd-learn`: trains the Bayes store on files, folders (maildir included) and mbox
//! files, as `sa-learn` does:
//!
//! ```text
//! amavisd-learn --spam|--ham|--forget [--db URL] [--user U] [--learner] PATH...
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
    /// Learn the messages as spam.
    #[arg(long, group = "what", required = true)]
    spam: bool,
    /// Learn the messages as ham.
    #[arg(long, group = "what")]
    ham: bool,
    /// Take the messages back out.
    #[arg(long, group = "what")]
    forget: bool,
    /// Remove old tokens: not learned for --max-age-days, hapaxes not learned for
    /// --hapax-days, then the least recently learned beyond --max-tokens.
    #[arg(long, group = "what")]
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
    /// Files, folders (walked recursively) and mbox files.
    #[arg(required_unless_present = "purge")]
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
    let files = match message_files(&args.paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("amavisd-learn: {e}");
            return ExitCode::FAILURE;
        }
    };
    let class = if args.spam { Class::Spam } else { Class::Ham };
    if args.learner && !args.forget && files.len() > 50 {
        // Measured (README, the learner): a whole folder of one class, then one of the
        // other, leaves the learner worse than none.
        eprintln!(
            "amavisd-learn: note: the learner learns in the order given; {} messages of one class in a row will bias it. Learn spam and ham in small batches in turn.",
            files.len()
        );
    }
    let (mut new, mut unchanged, mut flipped, mut forgotten, mut failed) = (0, 0, 0, 0, 0);
    let started = std::time::Instant::now();
    for (n, f) in files.iter().enumerate() {
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
            let done = if args.forget {
                store.forget(&user, &msg).await
            } else {
                store.learn(&user, class, &msg).await
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
