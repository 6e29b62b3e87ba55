//! `amavisd [-c FILE] foreground|start|stop|reload|status|check|init-db`
//! `amavisd convert-config AMAVISD.CONF...` (TOML on stdout, what was not converted on stderr)
//! `amavisd genrsa FILE [BITS]`, `amavisd showkeys [DOMAIN...]`, `amavisd testkeys [DOMAIN...]`
//! (DKIM keys: write one, print the DNS records to publish, test them against DNS)
//!
//! Exit codes follow LSB init scripts: 0 ok, 1 error, 3 not running (status).

// glibc malloc serialised our 2 threads on its arena locks under load (perf: futex waits
// in malloc); mimalloc keeps per-thread heaps. Measured with `amavisd-load compare`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// The allocator's options are set from a constructor that runs before every default one
// (an `.init_array` entry with a priority is ordered first), so before mimalloc reserves
// its first arena: whether arenas are committed eagerly is read then, and set from `main`
// it measured 106 MiB idle instead of 90. One thread only exists at that point.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array.00101")]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

#[cfg(target_os = "linux")]
extern "C" fn tune_allocator() {
    amavisd::server::memory::return_memory_promptly();
}

use amavisd::config::Config;
use amavisd::server;
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "amavisd", version, about = "amavisd-rs content filter")]
struct Args {
    /// Configuration file.
    #[arg(
        short = 'c',
        long = "config",
        default_value = "/etc/amavisd-rs/amavisd.toml"
    )]
    config: PathBuf,
    /// What to do.
    #[arg(value_enum, default_value_t = Action::Foreground)]
    action: Action,
    /// convert-config: the amavisd-new configuration files, in the order amavisd-new reads
    /// them (amavisd.conf, or the conf.d files). genrsa: the key file to write, then the key
    /// size in bits (2048). showkeys, testkeys: the domains (default: every key's).
    files: Vec<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Action {
    /// Run in the foreground, logging to stderr.
    Foreground,
    /// Start as a background daemon.
    Start,
    /// Stop the daemon after it has finished the messages in flight.
    Stop,
    /// Make the daemon re-read its configuration (SIGHUP).
    Reload,
    /// Tell whether the daemon runs.
    Status,
    /// Check the configuration and what it names (sockets, next hop, scanners, SQL, rules,
    /// Bayes, DKIM keys, folders) without serving; exit 0 only when it would serve mail.
    Check,
    /// Create the SQL tables ([sql] url) that are missing, and exit.
    InitDb,
    /// Write the TOML for an amavisd-new configuration (amavisd.conf) to stdout.
    ConvertConfig,
    /// Write a new DKIM signing key (RSA, PEM, mode 0600) to a file.
    Genrsa,
    /// Print the DNS records of the DKIM keys in [[dkim.keys]], in zone-file form.
    Showkeys,
    /// Sign a test message with each DKIM key and verify it against the published record.
    Testkeys,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Reads amavisd-new's files, not ours: before our configuration is loaded.
    if let Action::ConvertConfig = args.action {
        return convert_config(&args.files);
    }
    // Needs no configuration either: the key is written where the file is named.
    if let Action::Genrsa = args.action {
        return genrsa(&args.files);
    }
    // Reports a configuration that does not load as one of its findings.
    if let Action::Check = args.action {
        return check(&args.config);
    }
    let cfg = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("amavisd: {e}");
            return ExitCode::from(1);
        }
    };
    let result = match args.action {
        Action::ConvertConfig => return convert_config(&args.files),
        Action::Genrsa => return genrsa(&args.files),
        Action::Check => return check(&args.config),
        Action::Showkeys => match amavisd::dkim::Keys::load(&cfg.dkim.keys) {
            Ok(keys) => {
                say(&amavisd::dkim::show_keys(&keys, &domains(&args.files)));
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("amavisd: showkeys: {e}");
                return ExitCode::from(1);
            }
        },
        Action::Testkeys => return testkeys(&cfg, &domains(&args.files)),
        Action::Foreground => {
            init_logging(&cfg);
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.max_blocking_threads(BLOCKING_THREADS);
            let Some(rt) = runtime(builder) else {
                return ExitCode::from(1);
            };
            rt.block_on(server::run_foreground(&args.config))
                .map(|()| String::new())
        }
        Action::Start => server::start_daemon(&args.config, &cfg)
            .map(|pid| format!("amavisd started, pid {pid}")),
        Action::Stop => server::stop(&cfg, Duration::from_secs(600))
            .map(|pid| format!("amavisd (pid {pid}) stopped")),
        Action::Reload => server::reload(&cfg).map(|pid| format!("amavisd (pid {pid}) reloading")),
        Action::InitDb => match init_db(&cfg) {
            Ok(msg) => {
                say(&format!("{msg}\n"));
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("amavisd: {e}");
                return ExitCode::from(1);
            }
        },
        Action::Status => match server::status(&cfg) {
            Ok(pid) => Ok(match server::live_status(&cfg) {
                Ok(live) => format!("amavisd is running, pid {pid}; {live}"),
                Err(e) => format!("amavisd is running, pid {pid} ({e})"),
            }),
            Err(e) => {
                say(&format!("{e}\n"));
                return ExitCode::from(3);
            }
        },
    };
    match result {
        Ok(msg) => {
            if !msg.is_empty() {
                say(&format!("{msg}\n"));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("amavisd: {e}");
            ExitCode::from(1)
        }
    }
}

/// Writes `text` to stdout. A reader that went away (`amavisd status | head`) ends the
/// program quietly with success, as Unix tools do, instead of a panic (exit 101).
fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// `amavisd check`: the report on stdout; exit 0 only when the filter would serve mail.
fn check(config: &std::path::Path) -> ExitCode {
    let Some(rt) = runtime(tokio::runtime::Builder::new_current_thread()) else {
        return ExitCode::from(1);
    };
    let report = rt.block_on(amavisd::server::check::check(config));
    say(&report.text());
    if report.serves() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// A tokio runtime from `builder`; `None` (said on stderr) when it cannot start.
/// Most threads tokio may start for blocking work: spool, quarantine and report file I/O
/// (the checks have their own pool, `scan_threads`). Its default, 512, let 64 sessions of
/// 10 MiB messages start ~150 threads, each with its own allocator heap, for a disk that
/// goes no faster; a task beyond the cap waits its turn.
const BLOCKING_THREADS: usize = 16;

fn runtime(mut builder: tokio::runtime::Builder) -> Option<tokio::runtime::Runtime> {
    builder
        .enable_all()
        .build()
        .map_err(|e| eprintln!("amavisd: cannot start the runtime: {e}"))
        .ok()
}

/// The operands as domain names.
fn domains(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|f| f.to_string_lossy().into_owned())
        .collect()
}

/// `amavisd genrsa FILE [BITS]`.
fn genrsa(files: &[PathBuf]) -> ExitCode {
    let Some(file) = files.first() else {
        eprintln!("amavisd: genrsa needs the file to write the key to");
        return ExitCode::from(1);
    };
    let bits = match files.get(1).map(|b| b.to_string_lossy().parse::<usize>()) {
        None => 2048,
        Some(Ok(b)) => b,
        Some(Err(_)) => {
            eprintln!("amavisd: genrsa: the key size is a number of bits (2048, 3072, 4096)");
            return ExitCode::from(1);
        }
    };
    match amavisd::dkim::generate_rsa(file, bits) {
        Ok(()) => {
            say(&format!(
                "Private RSA key successfully written to file \"{}\" ({bits} bits, PEM format)\n",
                file.display()
            ));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("amavisd: genrsa: {e}");
            ExitCode::from(1)
        }
    }
}

/// `amavisd testkeys [DOMAIN...]`: one line per key; fails unless every key passed.
fn testkeys(cfg: &Config, only: &[String]) -> ExitCode {
    let Some(rt) = runtime(tokio::runtime::Builder::new_current_thread()) else {
        return ExitCode::from(1);
    };
    match rt.block_on(amavisd::dkim::test_keys(&cfg.dkim, cfg.authserv_id(), only)) {
        Ok(lines) if lines.is_empty() => {
            eprintln!("amavisd: testkeys: no DKIM key (of those domains) in [[dkim.keys]]");
            ExitCode::from(1)
        }
        Ok(lines) => {
            for (line, _) in &lines {
                say(&format!("{line}\n"));
            }
            if lines.iter().all(|(_, ok)| *ok) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("amavisd: testkeys: {e}");
            ExitCode::from(1)
        }
    }
}

/// `amavisd convert-config FILE...`: TOML on stdout, the settings not converted on stderr.
fn convert_config(files: &[PathBuf]) -> ExitCode {
    if files.is_empty() {
        eprintln!("amavisd: convert-config needs the amavisd-new configuration file(s)");
        return ExitCode::from(1);
    }
    let mut sources = Vec::new();
    for f in files {
        match std::fs::read(f) {
            Ok(b) => sources.push(String::from_utf8_lossy(&b).into_owned()),
            Err(e) => {
                eprintln!("amavisd: {}: {e}", f.display());
                return ExitCode::from(1);
            }
        }
    }
    let out = amavisd::migrate::convert::convert(&sources);
    say(&out.toml);
    if !out.unconverted.is_empty() {
        eprintln!(
            "amavisd: not converted ({}): {}",
            out.unconverted.len(),
            out.unconverted.join(" ")
        );
    }
    ExitCode::SUCCESS
}

/// `amavisd init-db`: the schema of sql/*.sql for the configured database.
fn init_db(cfg: &Config) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async {
        // The pool needs a runtime even to be created.
        let store = amavisd::sql::Store::new(&cfg.sql)
            .map_err(|e| e.to_string())?
            .ok_or("no [sql] url is configured")?;
        store.create_schema().await.map_err(|e| e.to_string())
    })?;
    Ok(format!("SQL tables ready in {}", cfg.sql.url))
}

fn init_logging(cfg: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
