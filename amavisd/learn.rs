//! `amavisd-learn`: trains the Bayes store on files, folders (maildir included) and mbox
//! files, as `sa-learn` does:
//!
//! ```text
//! amavisd-learn --spam|--ham|--forget [--db URL] [--user U] PATH...
//! ```
//!
//! Learning a message again changes nothing; learning it as the other class moves it over.
//! The store is `sqlite:var/bayes.sqlite` unless `--db` names another (`postgres://...`).
//! Exit status 0 when every message was read and stored.

use amavisd::spam::bayes::sql_store::SqlStore;
use amavisd::spam::bayes::{self, Class, Learned, sources};
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
    /// The store: sqlite:FILE or postgres://...
    #[arg(long, default_value = "sqlite:var/bayes.sqlite")]
    db: String,
    /// Whose store (dspam-style per-user training); empty for the site's.
    #[arg(long, default_value = "")]
    user: String,
    /// Files, folders (walked recursively) and mbox files.
    #[arg(required = true)]
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
    if let Some(dir) = args
        .db
        .strip_prefix("sqlite:")
        .map(|p| p.trim_start_matches("//"))
        .and_then(|p| std::path::Path::new(p.split('?').next().unwrap_or(p)).parent())
        && !dir.as_os_str().is_empty()
    {
        let _ = std::fs::create_dir_all(dir);
    }
    let store = match SqlStore::open(&args.db).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("amavisd-learn: {e}");
            return ExitCode::FAILURE;
        }
    };
    let files = match sources::files(&args.paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("amavisd-learn: {e}");
            return ExitCode::FAILURE;
        }
    };
    let class = if args.spam { Class::Spam } else { Class::Ham };
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
        for raw in sources::messages(&data) {
            let (key, tokens) = bayes::learnable(raw);
            let done = if args.forget {
                store.forget(&args.user, &key, &tokens).await
            } else {
                store.learn(&args.user, &key, class, &tokens).await
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
    match store.totals(&args.user).await {
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
