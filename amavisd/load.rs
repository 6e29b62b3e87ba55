//! `amavisd-load`: load generator and sink for measuring amavisd-rs on loopback.
//!
//! ```text
//! amavisd-load send --target 127.0.0.1:10024 --sessions 8 --count 2000 --size 1024
//! amavisd-load sink --listen 127.0.0.1:10025 --mode accept --time 600
//! amavisd-load compare --sizes 1024,102400 --sessions 1,8,64 --count 2000
//! ```

// glibc malloc serialised our 2 threads on its arena locks under load (perf: futex waits
// in malloc); mimalloc keeps per-thread heaps. Measured with `amavisd-load compare`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use amavisd::config::{Config, ListenProtocol, Listener};
use amavisd::load::{LoadOptions, Report, generated_message, messages_from_dir, run};
use amavisd::sink::{Sink, SinkMode};
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
    /// In one process: a sink, and amavisd-rs in front of it; sends to each and compares.
    Compare {
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

async fn compare(sizes: &[usize], sessions: &[usize], a: &SendArgs) -> Result<(), String> {
    let sink = Sink::new(SinkMode::Accept, false);
    let (port, _task) = sink.spawn().await.map_err(|e| e.to_string())?;
    let sink_addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut cfg = Config {
        listen: vec![Listener {
            inet: Some("127.0.0.1:0".into()),
            unix: None,
            protocol: ListenProtocol::Auto,
        }],
        forward_method: format!("smtp:[127.0.0.1]:{port}"),
        tempdir: tmp.path().to_path_buf(),
        pid_file: tmp.path().join("pid"),
        ..Config::default()
    };
    cfg.limits.max_connections = sessions.iter().copied().max().unwrap_or(64).max(64);
    cfg.validate(std::path::Path::new("compare"))
        .map_err(|e| e.to_string())?;
    let server = amavisd::server::start(cfg)
        .await
        .map_err(|e| e.to_string())?;
    let via = server.addrs[0];
    println!(
        "| size | sessions | direct msg/s | direct p99 ms | via amavisd msg/s | via p99 ms | ratio |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &size in sizes {
        let msgs = match &a.dir {
            Some(_) => messages(a)?,
            None => Arc::new((0..16).map(|n| generated_message(size, n)).collect()),
        };
        for &n in sessions {
            let direct = run(&opts(sink_addr, n, a), Arc::clone(&msgs)).await?;
            let through = run(&opts(via, n, a), Arc::clone(&msgs)).await?;
            for (l, r) in [("direct", &direct), ("via", &through)] {
                if r.failed > 0 || r.first_error.is_some() {
                    print(l, r);
                }
            }
            let p99 = |r: &Report| r.percentile(0.99).as_secs_f64() * 1000.0;
            println!(
                "| {size} | {n} | {:.0} | {:.2} | {:.0} | {:.2} | {:.2} |",
                direct.rate(),
                p99(&direct),
                through.rate(),
                p99(&through),
                through.rate() / direct.rate().max(1e-9)
            );
        }
    }
    server.stop().await;
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
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
            Cmd::Compare {
                sizes,
                sessions,
                send,
            } => compare(&sizes, &sessions, &send).await,
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
