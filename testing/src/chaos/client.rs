//! The sending side of the chaos run, behaving as Postfix's `amavisfeed` transport does: a
//! message is done when the filter answers 2xx (delivered, as far as the client knows) or
//! 5xx (bounced); a 4xx, a dropped connection or a timeout defers it, and it is tried again
//! after a backoff, on any session. Sessions are kept and reused until an error.

use super::mail::ChaosMessage;
use crate::load::read_reply;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Longest wait for a reply to a command; Postfix's smtp_*_timeout are minutes.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the reply after the final dot (Postfix: smtp_data_done_timeout = 600 s).
/// Longer than the filter's worst case under the chaos configuration, so that a timeout here
/// is a hang to report, not a duplicate made by an impatient client.
const DATA_DONE_TIMEOUT: Duration = Duration::from_secs(180);
/// First retry delay; doubled per deferral up to [`MAX_BACKOFF`] (Postfix's minimal and
/// maximal backoff, scaled from minutes to a run of minutes).
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// What became of one message, as the client saw it.
#[derive(Debug, Clone, Default)]
pub struct Fate {
    /// The final reply (2xx or 5xx) once there is one.
    pub done: Option<String>,
    /// Attempts made.
    pub tries: u32,
    /// Attempts answered 4xx.
    pub deferred_4xx: u32,
    /// Attempts cut by a closed connection while the filter was killed (its generation
    /// changed during the attempt): the allowed cause of a duplicate.
    pub cut_by_kill: u32,
    /// Attempts cut otherwise (connection refused or closed, no kill seen).
    pub cut_other: u32,
    /// Attempts that hit the client's own timeout.
    pub timeouts: u32,
    /// Why the last deferred attempt failed.
    pub last_error: Option<String>,
}

impl Fate {
    pub fn accepted(&self) -> bool {
        self.done.as_deref().is_some_and(|r| r.starts_with('2'))
    }
    pub fn bounced(&self) -> bool {
        self.done.as_deref().is_some_and(|r| r.starts_with('5'))
    }
}

/// The queue of one run: messages waiting for their next try, and their fates.
pub struct Queue {
    ready: Mutex<BinaryHeap<Reverse<(Instant, usize)>>>,
    fates: Mutex<Vec<Fate>>,
    left: AtomicUsize,
    /// Bumped by the harness at each kill and restart of the filter.
    pub generation: Arc<AtomicU64>,
}

impl Queue {
    /// `n` messages, arriving at `rate` a second (all at once without one), as mail reaches
    /// Postfix over time.
    pub fn new(n: usize, rate: Option<f64>, generation: Arc<AtomicU64>) -> Arc<Queue> {
        let now = Instant::now();
        let at = |i: usize| match rate {
            Some(r) if r > 0.0 => now + Duration::from_secs_f64(i as f64 / r),
            _ => now,
        };
        Arc::new(Queue {
            ready: Mutex::new((0..n).map(|i| Reverse((at(i), i))).collect()),
            fates: Mutex::new(vec![Fate::default(); n]),
            left: AtomicUsize::new(n),
            generation,
        })
    }

    /// Messages without a final reply yet.
    pub fn left(&self) -> usize {
        self.left.load(Ordering::Relaxed)
    }

    /// The fates so far.
    pub fn fates(&self) -> Vec<Fate> {
        self.fates.lock().map(|g| g.clone()).unwrap_or_default()
    }

    fn take_ready(&self) -> Option<usize> {
        let mut q = self.ready.lock().ok()?;
        match q.peek() {
            Some(Reverse((at, _))) if *at <= Instant::now() => q.pop().map(|Reverse((_, i))| i),
            _ => None,
        }
    }

    fn update(&self, i: usize, f: impl FnOnce(&mut Fate)) -> Option<Fate> {
        let mut g = self.fates.lock().ok()?;
        let fate = g.get_mut(i)?;
        f(fate);
        Some(fate.clone())
    }

    fn finish(&self, i: usize, reply: String) {
        self.update(i, |f| f.done = Some(reply));
        self.left.fetch_sub(1, Ordering::Relaxed);
    }

    fn defer(&self, i: usize, how: Attempt, gen_before: u64) {
        let killed = self.generation.load(Ordering::Relaxed) != gen_before;
        let Some(fate) = self.update(i, |f| {
            match &how {
                Attempt::Final(_) => f.deferred_4xx += 1,
                Attempt::Cut(_) if killed => f.cut_by_kill += 1,
                Attempt::Cut(_) => f.cut_other += 1,
                Attempt::TimedOut => f.timeouts += 1,
            }
            f.last_error = Some(match how {
                Attempt::Final(r) | Attempt::Cut(r) => r,
                Attempt::TimedOut => "client timeout".into(),
            });
        }) else {
            return;
        };
        let shift = fate.tries.min(8).saturating_sub(1);
        let backoff = (MIN_BACKOFF * (1u32 << shift)).min(MAX_BACKOFF);
        // Jitter, so that deferred messages do not all come back in one burst.
        let jitter = Duration::from_millis(u64::from(fate.tries * 37 + i as u32 % 97) % 150);
        if let Ok(mut q) = self.ready.lock() {
            q.push(Reverse((Instant::now() + backoff + jitter, i)));
        }
    }
}

/// How one attempt ended.
enum Attempt {
    /// A reply that ends the transaction: 2xx, 4xx or 5xx.
    Final(String),
    /// The connection failed or closed.
    Cut(String),
    /// No reply within the client's timeout.
    TimedOut,
}

struct Session {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    line: String,
}

/// Runs one sending session until every message is done or `until` passes. With several
/// `targets` (filter nodes) a session starts at its own and, as Postfix does with a next hop
/// of several addresses, tries the others when one refuses or fails to greet.
pub async fn session(
    no: usize,
    targets: Arc<Vec<SocketAddr>>,
    queue: Arc<Queue>,
    messages: Arc<Vec<ChaosMessage>>,
    until: Instant,
) {
    let mut conn: Option<Session> = None;
    while queue.left() > 0 && Instant::now() < until {
        let Some(i) = queue.take_ready() else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let gen_before = queue.generation.load(Ordering::Relaxed);
        queue.update(i, |f| f.tries += 1);
        let Some(msg) = messages.get(i) else { continue };
        let attempt = match conn.as_mut() {
            Some(s) => send(s, msg).await,
            None => match connect_any(no, &targets).await {
                Ok(mut s) => {
                    let a = send(&mut s, msg).await;
                    conn = Some(s);
                    a
                }
                Err(a) => a,
            },
        };
        match attempt {
            Attempt::Final(r) if r.starts_with('2') || r.starts_with('5') => queue.finish(i, r),
            other => {
                let keep = matches!(&other, Attempt::Final(r) if !r.starts_with("421"));
                if !keep {
                    conn = None;
                }
                queue.defer(i, other, gen_before);
            }
        }
    }
    if let Some(mut s) = conn {
        let _ = s.wr.write_all(b"QUIT\r\n").await;
    }
}

async fn connect_any(no: usize, targets: &[SocketAddr]) -> Result<Session, Attempt> {
    let mut last = Attempt::Cut("no filter address".into());
    for k in 0..targets.len() {
        match connect(no, targets[(no + k) % targets.len()]).await {
            Ok(s) => return Ok(s),
            Err(a) => last = a,
        }
    }
    Err(last)
}

async fn connect(no: usize, target: SocketAddr) -> Result<Session, Attempt> {
    let stream = match tokio::time::timeout(COMMAND_TIMEOUT, TcpStream::connect(target)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(Attempt::Cut(format!("connect: {e}"))),
        Err(_) => return Err(Attempt::TimedOut),
    };
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let mut s = Session {
        rd: BufReader::new(rd),
        wr,
        line: String::new(),
    };
    let greeting = reply(&mut s, COMMAND_TIMEOUT).await?;
    if !greeting.starts_with("220") {
        return Err(Attempt::Final(greeting));
    }
    let ehlo = command(&mut s, &format!("EHLO chaos{no}.example\r\n")).await?;
    if !ehlo.starts_with('2') {
        return Err(Attempt::Final(ehlo));
    }
    Ok(s)
}

async fn reply(s: &mut Session, limit: Duration) -> Result<String, Attempt> {
    match tokio::time::timeout(limit, read_reply(&mut s.rd, &mut s.line)).await {
        Ok(Ok(r)) => Ok(r.trim_end().to_string()),
        Ok(Err(e)) => Err(Attempt::Cut(e)),
        Err(_) => Err(Attempt::TimedOut),
    }
}

async fn command(s: &mut Session, line: &str) -> Result<String, Attempt> {
    s.wr.write_all(line.as_bytes())
        .await
        .map_err(|e| Attempt::Cut(e.to_string()))?;
    reply(s, COMMAND_TIMEOUT).await
}

/// One transaction: MAIL, RCPT, DATA, the message. A refusal before the message ends the
/// transaction with RSET, as Postfix does, and the session stays usable.
async fn send(s: &mut Session, msg: &ChaosMessage) -> Attempt {
    match transaction(s, msg).await {
        Ok(r) | Err(Attempt::Final(r)) => Attempt::Final(r),
        Err(a) => a,
    }
}

async fn transaction(s: &mut Session, msg: &ChaosMessage) -> Result<String, Attempt> {
    let mail = format!("MAIL FROM:<{}> SIZE={}\r\n", msg.sender, msg.stuffed.len());
    for line in [mail, format!("RCPT TO:<{}>\r\n", msg.recipient)] {
        let r = command(s, &line).await?;
        if !r.starts_with('2') {
            rset(s).await?;
            return Err(Attempt::Final(r));
        }
    }
    let r = command(s, "DATA\r\n").await?;
    if !r.starts_with("354") {
        rset(s).await?;
        return Err(Attempt::Final(r));
    }
    s.wr.write_all(&msg.stuffed)
        .await
        .map_err(|e| Attempt::Cut(e.to_string()))?;
    reply(s, DATA_DONE_TIMEOUT).await
}

async fn rset(s: &mut Session) -> Result<(), Attempt> {
    let r = command(s, "RSET\r\n").await?;
    if r.starts_with('2') {
        Ok(())
    } else {
        Err(Attempt::Cut(format!("RSET: {r}")))
    }
}
