//! The fault injector: at random moments (a seeded generator, so a run can be repeated) it
//! picks a fault whose resource is not already failing, applies it, and heals it after a
//! random while. Faults on different resources overlap: the filter sees compound failures.

use super::disk::Disk;
use super::filter::Filter;
use super::proxy::{FaultProxy, ProxyState};
use super::watch::{Moment, kill_at};
use crate::sink::{Sink, SinkMode};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Mutex as AsyncMutex;

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// The next hop refuses connections (stopped).
    NextHopDown,
    /// The next hop answers or behaves as this sink mode says.
    NextHop(NextHopFault),
    /// `kill -9` of the filter at a random moment, then a restart.
    Kill9,
    /// `kill -9` right after the next hop's 250 to a message, before the filter's own reply.
    Kill9AfterNextHop,
    /// `kill -9` as the filter writes a quarantine file: as the write begins, or as the
    /// complete copy is renamed into place, before its SQL record.
    Kill9InQuarantine,
    /// SIGTERM, then a restart (a package upgrade).
    Restart,
    ClamdDown,
    ClamdHang,
    SqlDown,
    SqlHang,
    RedisDown,
    /// The disk holding tempdir, the quarantine (and a SQLite database) is full.
    DiskFull,
}

/// The next hop's misbehaviours (the sink's modes but `accept`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NextHopFault {
    Greet421,
    HangGreeting,
    MailTempFail,
    MailReject,
    RcptTempFail,
    RcptReject,
    DataTempFail,
    DataReject,
    DropInData,
    DropAfterData,
    HangAfterData,
}

impl NextHopFault {
    pub const ALL: [NextHopFault; 11] = [
        Self::Greet421,
        Self::HangGreeting,
        Self::MailTempFail,
        Self::MailReject,
        Self::RcptTempFail,
        Self::RcptReject,
        Self::DataTempFail,
        Self::DataReject,
        Self::DropInData,
        Self::DropAfterData,
        Self::HangAfterData,
    ];

    fn mode(self) -> SinkMode {
        match self {
            Self::Greet421 => SinkMode::Greet421,
            Self::HangGreeting => SinkMode::HangGreeting,
            Self::MailTempFail => SinkMode::TempFail,
            Self::MailReject => SinkMode::Reject,
            Self::RcptTempFail => SinkMode::RcptTempFail,
            Self::RcptReject => SinkMode::RcptReject,
            Self::DataTempFail => SinkMode::DataTempFail,
            Self::DataReject => SinkMode::DataReject,
            Self::DropInData => SinkMode::DropInData,
            Self::DropAfterData => SinkMode::DropAfterData,
            Self::HangAfterData => SinkMode::HangAfterData,
        }
    }

    /// A permanent refusal: messages reaching it are bounced, rightly.
    pub fn permanent(self) -> bool {
        matches!(self, Self::MailReject | Self::RcptReject | Self::DataReject)
    }
}

impl Fault {
    /// The name in the report.
    pub fn name(self) -> String {
        match self {
            Fault::NextHopDown => "next hop down".into(),
            Fault::NextHop(f) => format!("next hop {f:?}"),
            Fault::Kill9 => "kill -9 (random moment)".into(),
            Fault::Kill9AfterNextHop => "kill -9 after next hop's 250".into(),
            Fault::Kill9InQuarantine => "kill -9 during a quarantine write".into(),
            Fault::Restart => "SIGTERM + restart".into(),
            Fault::ClamdDown => "clamd down".into(),
            Fault::ClamdHang => "clamd hangs".into(),
            Fault::SqlDown => "SQL server down".into(),
            Fault::SqlHang => "SQL server hangs".into(),
            Fault::RedisDown => "Redis down".into(),
            Fault::DiskFull => "disk full".into(),
        }
    }

    /// What it breaks: two faults of one resource never overlap. (`amavisd-load chaos
    /// --faults` picks by these names.)
    pub fn resource(self) -> &'static str {
        match self {
            Fault::NextHopDown | Fault::NextHop(_) => "next-hop",
            Fault::Kill9 | Fault::Kill9AfterNextHop | Fault::Kill9InQuarantine | Fault::Restart => {
                "filter"
            }
            Fault::ClamdDown | Fault::ClamdHang => "clamd",
            Fault::SqlDown | Fault::SqlHang => "sql",
            Fault::RedisDown => "redis",
            Fault::DiskFull => "disk",
        }
    }

    /// How long it lasts, at least and at most: permanent refusals briefly (each message that
    /// meets one is bounced, rightly, and is out of the rest of the run).
    fn span(self, every: Duration) -> (Duration, Duration) {
        match self {
            Fault::NextHop(f) if f.permanent() => (every / 4, every / 2),
            _ => (every / 2, every * 3),
        }
    }

    /// How often it is picked, relative to the others: permanent refusals bounce every
    /// message that meets them, so they are rarer than the transient faults.
    fn weight(self) -> u64 {
        match self {
            Fault::NextHop(f) if f.permanent() => 1,
            Fault::NextHop(_) => 2,
            _ => 6,
        }
    }
}

/// What the injector acts on.
pub struct Targets {
    pub sink: Arc<Sink>,
    pub next_hop: Arc<FaultProxy>,
    pub clamd: Arc<FaultProxy>,
    pub sql: Option<Arc<FaultProxy>>,
    pub redis: Option<Arc<FaultProxy>>,
    pub disk: Option<Arc<Disk>>,
    /// The filter nodes; a kill or restart hits one of them.
    pub filters: Vec<Arc<AsyncMutex<Filter>>>,
    /// Each node's quarantine folder, when it keeps blocked mail in files.
    pub quarantines: Vec<Option<PathBuf>>,
}

impl Targets {
    /// The faults these targets allow, from `wanted`.
    pub fn possible(&self, wanted: &[Fault]) -> Vec<Fault> {
        wanted
            .iter()
            .copied()
            .filter(|f| match f {
                Fault::SqlDown | Fault::SqlHang => self.sql.is_some(),
                Fault::RedisDown => self.redis.is_some(),
                Fault::DiskFull => self.disk.is_some(),
                // The SQL quarantine's write cannot be seen from outside; its kills are the
                // random ones (and a SQL server that hangs mid-write).
                Fault::Kill9InQuarantine => self.quarantines.iter().all(Option::is_some),
                _ => true,
            })
            .collect()
    }
}

/// A small seeded generator (xorshift64*): repeatable runs without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A duration between `lo` and `hi`.
    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.saturating_sub(lo).as_millis() as u64;
        lo + Duration::from_millis(if span == 0 { 0 } else { self.next_u64() % span })
    }
}

/// Faults applied so far, by kind, and the errors met applying them.
#[derive(Debug, Default)]
pub struct Injected {
    pub counts: BTreeMap<Fault, u64>,
    pub errors: Vec<String>,
}

/// Injects faults every `every` (jittered) until `stop` is set, then heals what is still
/// failing and returns the counts.
pub async fn inject(
    targets: Arc<Targets>,
    faults: Vec<Fault>,
    every: Duration,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> Injected {
    let mut rng = Rng::new(seed);
    let busy: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let injected = Arc::new(Mutex::new(Injected::default()));
    let mut tasks = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let next = tokio::time::Instant::now() + rng.between(every / 2, every * 3 / 2);
        while tokio::time::Instant::now() < next && !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let free: Vec<Fault> = {
            let b = busy.lock().map(|g| g.clone()).unwrap_or_default();
            faults
                .iter()
                .copied()
                .filter(|f| !b.contains(&f.resource()))
                .collect()
        };
        // Every kind once before any twice, so that a short run still tries them all.
        let untried: Vec<Fault> = {
            let done = injected
                .lock()
                .map(|g| g.counts.clone())
                .unwrap_or_default();
            free.iter()
                .copied()
                .filter(|f| !done.contains_key(f))
                .collect()
        };
        let Some(fault) = pick(&mut rng, if untried.is_empty() { &free } else { &untried }) else {
            continue;
        };
        if let Ok(mut b) = busy.lock() {
            b.push(fault.resource());
        }
        let (lo, hi) = fault.span(every);
        let lasts = rng.between(lo, hi);
        let node = (rng.next_u64() % targets.filters.len().max(1) as u64) as usize;
        let (t, busy, injected) = (
            Arc::clone(&targets),
            Arc::clone(&busy),
            Arc::clone(&injected),
        );
        tasks.push(tokio::spawn(async move {
            let result = apply(&t, fault, lasts, node).await;
            if let Ok(mut g) = injected.lock() {
                *g.counts.entry(fault).or_default() += 1;
                if let Err(e) = result {
                    g.errors.push(format!("{}: {e}", fault.name()));
                }
            }
            if let Ok(mut b) = busy.lock() {
                b.retain(|r| *r != fault.resource());
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    Arc::try_unwrap(injected)
        .ok()
        .and_then(|m| m.into_inner().ok())
        .unwrap_or_default()
}

fn pick(rng: &mut Rng, faults: &[Fault]) -> Option<Fault> {
    let total: u64 = faults.iter().map(|f| f.weight()).sum();
    if total == 0 {
        return None;
    }
    let mut n = rng.next_u64() % total;
    for f in faults {
        if n < f.weight() {
            return Some(*f);
        }
        n -= f.weight();
    }
    None
}

/// Applies `fault`, keeps it for `lasts` and heals it (kills and restarts are instant, and
/// hit filter `node`).
async fn apply(t: &Targets, fault: Fault, lasts: Duration, node: usize) -> Result<(), String> {
    let filter = t.filters.get(node).ok_or("no filter node")?;
    let proxy_fault = |p: &Arc<FaultProxy>, s: ProxyState| (Arc::clone(p), s);
    let held = match fault {
        Fault::NextHopDown => Some(proxy_fault(&t.next_hop, ProxyState::Down)),
        Fault::ClamdDown => Some(proxy_fault(&t.clamd, ProxyState::Down)),
        Fault::ClamdHang => Some(proxy_fault(&t.clamd, ProxyState::Hang)),
        Fault::SqlDown => t.sql.as_ref().map(|p| proxy_fault(p, ProxyState::Down)),
        Fault::SqlHang => t.sql.as_ref().map(|p| proxy_fault(p, ProxyState::Hang)),
        Fault::RedisDown => t.redis.as_ref().map(|p| proxy_fault(p, ProxyState::Down)),
        _ => None,
    };
    if let Some((proxy, state)) = held {
        proxy.set(state);
        tokio::time::sleep(lasts).await;
        proxy.set(ProxyState::Pass);
        return Ok(());
    }
    match fault {
        Fault::NextHop(f) => {
            t.sink.set_mode(f.mode());
            tokio::time::sleep(lasts).await;
            t.sink.set_mode(SinkMode::Accept);
            Ok(())
        }
        Fault::DiskFull => match &t.disk {
            Some(d) => {
                d.fill()?;
                tokio::time::sleep(lasts).await;
                d.free()
            }
            None => Ok(()),
        },
        Fault::Kill9 => filter.lock().await.kill9_and_restart().await,
        Fault::Kill9AfterNextHop => {
            let told = t.sink.next_accepted();
            // No message may come while the next hop is down: then a plain kill.
            let _ = tokio::time::timeout(lasts.max(Duration::from_secs(5)), told).await;
            filter.lock().await.kill9_and_restart().await
        }
        Fault::Kill9InQuarantine => {
            if let Some(dir) = t.quarantines.get(node).and_then(Option::as_ref) {
                // Half of them as the write begins, half as the copy is complete.
                let moment = if lasts.as_millis().is_multiple_of(2) {
                    Moment::Writing
                } else {
                    Moment::Written
                };
                let (pid, generation) = {
                    let f = filter.lock().await;
                    (f.pid(), Arc::clone(&f.generation))
                };
                if let Some(pid) = pid {
                    let (dir, limit) = (dir.clone(), lasts.max(Duration::from_secs(5)));
                    tokio::task::spawn_blocking(move || {
                        kill_at(&dir, moment, pid, &generation, limit)
                    })
                    .await
                    .map_err(|e| e.to_string())??;
                }
            }
            // Reaps the killed process and starts a new one (or, when no quarantine write
            // came, kills at this moment).
            filter.lock().await.kill9_and_restart().await
        }
        Fault::Restart => filter.lock().await.stop(true).await,
        _ => Ok(()),
    }
}
