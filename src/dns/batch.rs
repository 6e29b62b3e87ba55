//! One message's lookups: sent out together as soon as the message's relays and links are
//! known, collected once the local rules have run, cut off at the message's budget.
//! SpamAssassin's async lookups do the same; a query still out at the deadline is a
//! [`Failure::Timeout`] and is dropped.

use super::resolver::{Answer, Failure, Resolver};
use hickory_resolver::proto::rr::RecordType;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// The record types the network rules ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueryKind {
    A,
    Aaaa,
    Txt,
    Ns,
    Mx,
}

impl QueryKind {
    /// A type as the rule files write it (`A`, `TXT` ...).
    pub fn parse(s: &str) -> Option<QueryKind> {
        Some(match s.to_ascii_uppercase().as_str() {
            "A" => QueryKind::A,
            "AAAA" => QueryKind::Aaaa,
            "TXT" => QueryKind::Txt,
            "NS" => QueryKind::Ns,
            "MX" => QueryKind::Mx,
            _ => return None,
        })
    }

    fn record_type(self) -> RecordType {
        match self {
            QueryKind::A => RecordType::A,
            QueryKind::Aaaa => RecordType::AAAA,
            QueryKind::Txt => RecordType::TXT,
            QueryKind::Ns => RecordType::NS,
            QueryKind::Mx => RecordType::MX,
        }
    }
}

/// One question: a name (lower case, no final dot) and a type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Query {
    pub name: String,
    pub kind: QueryKind,
}

impl Query {
    pub fn new(name: &str, kind: QueryKind) -> Query {
        Query {
            name: name.trim_end_matches('.').to_ascii_lowercase(),
            kind,
        }
    }
}

/// Lookups on their way.
pub struct Pending {
    tasks: Vec<(Query, JoinHandle<(Answer, Instant)>)>,
    deadline: tokio::time::Instant,
    started: Instant,
    skipped: usize,
}

/// What came back for one message.
#[derive(Debug, Default)]
pub struct Answers {
    map: HashMap<Query, Answer>,
    /// Queries sent.
    pub sent: usize,
    /// ... of which still out at the deadline.
    pub timed_out: usize,
    /// ... of which the server refused or garbled.
    pub failed: usize,
    /// Queries over `max_queries`, not sent.
    pub skipped: usize,
    /// From the first query to the last answer (or the deadline): what the network checks
    /// took, whatever the local rules took meanwhile.
    pub elapsed: Duration,
}

impl Answers {
    /// The answer to `q`, if it was asked.
    pub fn get(&self, q: &Query) -> Option<&Answer> {
        self.map.get(q)
    }

    /// Found records of `q`; empty when not found, failed or not asked.
    pub fn found(&self, q: &Query) -> &[String] {
        match self.map.get(q) {
            Some(Answer::Found(v)) => v,
            _ => &[],
        }
    }

    /// Did some lookup not answer in time?
    pub fn incomplete(&self) -> bool {
        self.timed_out > 0
    }

    /// `dns=12/12 in 3 ms`, `dns=12/15 in 10000 ms (3 timed out)`: for the log line.
    pub fn summary(&self) -> String {
        let answered = self.sent - self.timed_out - self.failed;
        let mut s = format!(
            "{answered}/{} in {} ms",
            self.sent,
            self.elapsed.as_millis()
        );
        let mut notes = Vec::new();
        if self.timed_out > 0 {
            notes.push(format!("{} timed out", self.timed_out));
        }
        if self.failed > 0 {
            notes.push(format!("{} failed", self.failed));
        }
        if self.skipped > 0 {
            notes.push(format!("{} over max_queries", self.skipped));
        }
        if !notes.is_empty() {
            s.push_str(&format!(" ({})", notes.join(", ")));
        }
        s
    }
}

impl Resolver {
    /// Sends `queries` (duplicates asked once, at most `max_queries`) on `runtime`; callable
    /// from any thread, the scanning threads included.
    pub fn start(&self, runtime: &tokio::runtime::Handle, queries: Vec<Query>) -> Pending {
        let unique: BTreeSet<Query> = queries.into_iter().collect();
        let skipped = unique.len().saturating_sub(self.cfg.max_queries);
        let tasks = unique
            .into_iter()
            .take(self.cfg.max_queries)
            .map(|q| {
                let r = self.clone();
                let (name, kind) = (q.name.clone(), q.kind.record_type());
                let task = async move { (r.query(&name, kind).await, Instant::now()) };
                (q, runtime.spawn(task))
            })
            .collect();
        Pending {
            tasks,
            deadline: tokio::time::Instant::now() + Duration::from_secs(self.cfg.budget),
            started: Instant::now(),
            skipped,
        }
    }
}

impl Pending {
    /// Nothing to wait for (network checks off, or nothing to ask).
    pub fn none() -> Pending {
        Pending {
            tasks: Vec::new(),
            deadline: tokio::time::Instant::now(),
            started: Instant::now(),
            skipped: 0,
        }
    }

    /// Every answer, or [`Failure::Timeout`] for those still out at the deadline (their
    /// queries are dropped).
    pub async fn wait(mut self) -> Answers {
        let tasks = std::mem::take(&mut self.tasks);
        let mut out = Answers {
            sent: tasks.len(),
            skipped: self.skipped,
            ..Answers::default()
        };
        let mut last = self.started;
        for (q, task) in tasks {
            let abort = task.abort_handle();
            let answer = match tokio::time::timeout_at(self.deadline, task).await {
                Ok(Ok((a, at))) => {
                    last = last.max(at);
                    a
                }
                // The task panicked or was cancelled: no answer, as a server failure.
                Ok(Err(e)) => Answer::Failed(Failure::Server(e.to_string())),
                Err(_) => {
                    abort.abort();
                    last = Instant::now();
                    Answer::Failed(Failure::Timeout)
                }
            };
            match &answer {
                Answer::Failed(Failure::Timeout) => out.timed_out += 1,
                Answer::Failed(Failure::Server(_)) => out.failed += 1,
                _ => {}
            }
            out.map.insert(q, answer);
        }
        out.elapsed = last.duration_since(self.started);
        out
    }
}

/// A message given up on (its session ended) takes its lookups with it.
impl Drop for Pending {
    fn drop(&mut self) {
        for (_, task) in &self.tasks {
            task.abort();
        }
    }
}
