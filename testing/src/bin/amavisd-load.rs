//! `amavisd-load`: load generator and sink for measuring amavisd-rs on loopback.
//!
//! ```text
//! amavisd-load send --target 127.0.0.1:10024 --sessions 8 --count 2000 --size 1024
//! amavisd-load sink --listen 127.0.0.1:10025 --mode accept --time 600
//! amavisd-load compare --sizes 1024,102400 --sessions 1,8,64 --count 2000
//! amavisd-load chaos --amavisd target/release/amavisd --count 10000 --fault-every 3
//! ```

// glibc malloc serialised our 2 threads on its arena locks under load (perf: futex waits
// in malloc); mimalloc keeps per-thread heaps. Measured with `amavisd-load compare`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use amavisd::config::Config;
use amavisd_testing::load::{
    LoadOptions, Report, compare, comparison_table, generated_message, messages_from_dir, run,
};
use amavisd_testing::sink::{Sink, SinkMode};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "amavisd-load",
    version,
    about = "Load generator and sink for amavisd-rs (loopback only)"
)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct SendArgs {
    /// Messages in all (the run also stops at --time).
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Upper bound on the run, seconds.
    #[arg(long, default_value_t = 60)]
    time: u64,
    /// Size of generated messages, bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Send the files in this folder instead of generated messages.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Recipients per message.
    #[arg(long, default_value_t = 1)]
    rcpts: usize,
    /// Speak LMTP instead of SMTP.
    #[arg(long)]
    lmtp: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send messages over N concurrent sessions and report msg/s and latency.
    Send {
        /// Where to send (a loopback address).
        #[arg(long, default_value = "127.0.0.1:10024")]
        target: SocketAddr,
        /// Concurrent sessions.
        #[arg(long, default_value_t = 8)]
        sessions: usize,
        #[command(flatten)]
        send: SendArgs,
    },
    /// Listen and accept (or refuse, per --mode) everything, as a next hop stand-in.
    Sink {
        #[arg(long, default_value = "127.0.0.1:10025")]
        listen: SocketAddr,
        /// accept, tempfail, reject, hang-greeting, hang-after-data, drop-in-data, drop-after-data
        #[arg(long, default_value = "accept")]
        mode: SinkMode,
        /// Exit after this many seconds.
        #[arg(long, default_value_t = 600)]
        time: u64,
    },
    /// Sends N distinct messages through the real amavisd process while faults are injected
    /// (next hop, clamd, SQL, Redis, disk full, kill -9), then accounts for every message by
    /// its Message-ID. Exits non-zero if one is lost or the state is inconsistent.
    Chaos(ChaosArgs),
    /// In one process: a sink, and amavisd-rs in front of it; sends to each and compares.
    Compare {
        /// The filter's configuration (listeners, next hop and folders are replaced); default:
        /// the built-in defaults, which scan with clamd on Debian's socket.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Run the filter without virus scanners.
        #[arg(long)]
        no_av: bool,
        /// Message sizes, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1024,102400")]
        sizes: Vec<usize>,
        /// Session counts, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
        sessions: Vec<usize>,
        #[command(flatten)]
        send: SendArgs,
    },
}

#[derive(clap::Args)]
struct ChaosArgs {
    /// The amavisd binary.
    #[arg(long, default_value = "target/release/amavisd")]
    amavisd: PathBuf,
    /// Distinct messages.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Concurrent client sessions.
    #[arg(long, default_value_t = 8)]
    sessions: usize,
    /// Filter nodes sharing the SQL server and Redis (blocked mail then goes to the SQL
    /// quarantine, and the client spreads its sessions over the nodes).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Messages arriving a second (default: all at once).
    #[arg(long)]
    rate: Option<f64>,
    /// Mean seconds between faults.
    #[arg(long, default_value_t = 3.0)]
    fault_every: f64,
    /// Break only these, comma-separated: next-hop, filter (kill -9, SIGTERM), clamd, sql,
    /// redis, disk. Default: all.
    #[arg(long, value_delimiter = ',')]
    faults: Vec<String>,
    /// Upper bound on the run, seconds (faults stop at two thirds of it).
    #[arg(long, default_value_t = 900)]
    time: u64,
    /// `sqlite`, or a loopback server: postgres://postgres@127.0.0.1/test,
    /// mysql://root@127.0.0.1/test.
    #[arg(long, default_value = "sqlite")]
    sql: String,
    /// Spam checks on (rules and, with --redis, Bayes on Redis).
    #[arg(long)]
    spam: bool,
    /// The Bayes store on this Redis (with --spam), e.g. redis://127.0.0.1:6379/3.
    #[arg(long)]
    redis: Option<String>,
    /// Keep the spam prefilter's compiled databases here (faster restarts across runs).
    #[arg(long)]
    prefilter_cache: Option<PathBuf>,
    /// Send the files in this folder (real mail) instead of generated messages.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// clamd's unix socket.
    #[arg(long, default_value = "/var/run/clamav/clamd.ctl")]
    clamd: PathBuf,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

async fn chaos(a: ChaosArgs) -> Result<(), String> {
    use amavisd_testing::chaos::{ChaosOptions, proxy::Upstream, run};
    let kinds = ["next-hop", "filter", "clamd", "sql", "redis", "disk"];
    if let Some(bad) = a.faults.iter().find(|r| !kinds.contains(&r.as_str())) {
        return Err(format!("--faults {bad}: not one of {}", kinds.join(", ")));
    }
    let corpus = match &a.dir {
        Some(d) => messages_from_dir(d).map_err(|e| format!("{}: {e}", d.display()))?,
        None => Vec::new(),
    };
    let report = run(&ChaosOptions {
        amavisd: a.amavisd,
        count: a.count,
        sessions: a.sessions,
        nodes: a.nodes,
        rate: a.rate,
        fault_every: Duration::from_secs_f64(a.fault_every.max(0.1)),
        faults: ChaosOptions::all_faults()
            .into_iter()
            .filter(|f| a.faults.is_empty() || a.faults.iter().any(|r| r == f.resource()))
            .collect(),
        sql: a.sql,
        spam: a.spam,
        redis: a.redis,
        prefilter_cache: a.prefilter_cache,
        corpus,
        seed: a.seed,
        max_time: Duration::from_secs(a.time),
        clamd: Upstream::Unix(a.clamd),
        require_disk: false,
    })
    .await?;
    print!("{report}");
    if report.passed() {
        Ok(())
    } else {
        Err(format!(
            "chaos run failed; the filter's log is in {}",
            report.workdir.display()
        ))
    }
}

fn messages(a: &SendArgs) -> Result<Arc<Vec<Vec<u8>>>, String> {
    match &a.dir {
        Some(d) => messages_from_dir(d)
            .map(Arc::new)
            .map_err(|e| format!("{}: {e}", d.display())),
        None => Ok(Arc::new(
            (0..16).map(|n| generated_message(a.size, n)).collect(),
        )),
    }
}

fn opts(target: SocketAddr, sessions: usize, a: &SendArgs) -> LoadOptions {
    LoadOptions {
        target,
        lmtp: a.lmtp,
        sessions,
        count: a.count,
        max_time: Duration::from_secs(a.time),
        recipients: a.rcpts,
    }
}

fn print(label: &str, r: &Report) {
    println!("{label}: {}", r.summary());
    if let Some(e) = &r.first_error {
        println!("{label}: first error: {e}");
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    // `compare` runs the filter in this process: its warnings (a scanner failing, the next
    // hop refusing) explain failed messages. RUST_LOG changes the level.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("amavisd-load: {e}");
            return ExitCode::from(1);
        }
    };
    let result: Result<(), String> = rt.block_on(async {
        match args.cmd {
            Cmd::Send {
                target,
                sessions,
                send,
            } => {
                let r = run(&opts(target, sessions, &send), messages(&send)?).await?;
                print("send", &r);
                if r.failed > 0 {
                    return Err(format!("{} messages failed", r.failed));
                }
                Ok(())
            }
            Cmd::Sink { listen, mode, time } => {
                if !listen.ip().is_loopback() {
                    return Err(format!("{listen}: the sink only listens on loopback"));
                }
                let sink = Sink::new(mode, false);
                let l = tokio::net::TcpListener::bind(listen)
                    .await
                    .map_err(|e| format!("{listen}: {e}"))?;
                let task = tokio::spawn(Arc::clone(&sink).serve(l));
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(time)) => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                task.abort();
                println!(
                    "sink: {} messages in {} sessions",
                    sink.messages.load(std::sync::atomic::Ordering::Relaxed),
                    sink.sessions.load(std::sync::atomic::Ordering::Relaxed)
                );
                Ok(())
            }
            Cmd::Chaos(a) => chaos(a).await,
            Cmd::Compare {
                config,
                no_av,
                sizes,
                sessions,
                send,
            } => {
                let mut cfg = match &config {
                    Some(path) => Config::load(path).map_err(|e| e.to_string())?.into_raw(),
                    None => Config::default(),
                };
                if no_av {
                    cfg.av.primary.clear();
                    cfg.av.backup.clear();
                }
                let fixed = match &send.dir {
                    Some(_) => Some(messages(&send)?),
                    None => None,
                };
                let base = opts(([127, 0, 0, 1], 0).into(), 1, &send);
                let rows = compare(&sizes, &sessions, &base, fixed, cfg).await?;
                print!("{}", comparison_table(&rows));
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("amavisd-load: {e}");
            ExitCode::from(1)
        }
    }
}
