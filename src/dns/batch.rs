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

/// What to ask once an answer is in: the URI blocklists of addresses look up what a link's
/// name resolves to, or its domain's name servers' addresses, in their zones.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Then {
    /// Each IPv4 address found, reversed, in each zone (A).
    AddressesIn(Vec<String>),
    /// Each name found (name servers): its addresses, then each of those in each zone.
    NamesThenAddressesIn(Vec<String>),
}

/// One question: a name (lower case, no final dot) and a type, and perhaps what to ask next.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Query {
    pub name: String,
    pub kind: QueryKind,
    pub then: Option<Then>,
}

impl Query {
    pub fn new(name: &str, kind: QueryKind) -> Query {
        Query {
            name: name.trim_end_matches('.').to_ascii_lowercase(),
            kind,
            then: None,
        }
    }

    /// The same question, followed by `then`.
    pub fn then(mut self, then: Then) -> Query {
        self.then = Some(then);
        self
    }
}

/// Names followed per answer (name servers of a domain), and addresses per name: a domain
/// with fifty name servers must not cost fifty times the queries.
const MAX_FOLLOWED: usize = 4;

/// One query's answer first, then those of what its [`Then`] asked, and when the last came.
type Asked = (Vec<(Query, Answer)>, Instant);

/// Lookups on their way.
pub struct Pending {
    tasks: Vec<(Query, JoinHandle<Asked>)>,
    deadline: tokio::time::Instant,
    started: Instant,
    skipped: usize,
}

/// What came back for one message.
#[derive(Debug, Default)]
pub struct Answers {
    map: HashMap<Query, Answer>,
    /// What was asked after each query with a [`Then`], with the answers.
    followed: HashMap<Query, Vec<(Query, Answer)>>,
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

    /// The queries asked after `q` (its [`Then`]) with their answers.
    pub fn followed(&self, q: &Query) -> &[(Query, Answer)] {
        self.followed.get(q).map_or(&[], Vec::as_slice)
    }

    /// Found records of `q`; empty when not found, failed or not asked.
    pub fn found(&self, q: &Query) -> &[String] {
        match self.map.get(q) {
            Some(Answer::Found(v)) => v,
            _ => &[],
        }
    }

    /// Counts a failed answer.
    fn count(&mut self, a: &Answer) {
        match a {
            Answer::Failed(Failure::Timeout) => self.timed_out += 1,
            Answer::Failed(Failure::Server(_)) => self.failed += 1,
            _ => {}
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
        let deadline = tokio::time::Instant::now() + Duration::from_secs(self.cfg.budget);
        self.start_by(runtime, queries, deadline)
    }

    /// Same, answered by `deadline` (a later round of a message's lookups keeps the
    /// message's budget).
    pub fn start_by(
        &self,
        runtime: &tokio::runtime::Handle,
        queries: Vec<Query>,
        deadline: tokio::time::Instant,
    ) -> Pending {
        let unique: BTreeSet<Query> = queries.into_iter().collect();
        let skipped = unique.len().saturating_sub(self.cfg.max_queries);
        let tasks = unique
            .into_iter()
            .take(self.cfg.max_queries)
            .map(|q| {
                let (r, asked) = (self.clone(), q.clone());
                let task = async move { (r.ask(asked).await, Instant::now()) };
                (q, runtime.spawn(task))
            })
            .collect();
        Pending {
            tasks,
            deadline,
            started: Instant::now(),
            skipped,
        }
    }
}

impl Resolver {
    /// `q`'s answer first, then what its [`Then`] asked after it.
    async fn ask(&self, q: Query) -> Vec<(Query, Answer)> {
        let first = self.query(&q.name, q.kind.record_type()).await;
        let mut out = Vec::new();
        if let (Some(then), Answer::Found(found)) = (&q.then, &first) {
            let found: Vec<String> = found.iter().take(MAX_FOLLOWED).cloned().collect();
            out = match then {
                Then::AddressesIn(zones) => self.listed(&found, zones).await,
                Then::NamesThenAddressesIn(zones) => self.names_listed(found, zones).await,
            };
        }
        out.insert(0, (q, first));
        out
    }

    /// Each name's addresses, then those in `zones`; the names in parallel.
    async fn names_listed(&self, names: Vec<String>, zones: &[String]) -> Vec<(Query, Answer)> {
        let mut set = tokio::task::JoinSet::new();
        for name in names {
            let r = self.clone();
            let zones = zones.to_vec();
            set.spawn(async move {
                let q = Query::new(&name, QueryKind::A);
                let a = r.query(&q.name, RecordType::A).await;
                let mut out = match &a {
                    Answer::Found(ips) => {
                        let ips: Vec<String> = ips.iter().take(MAX_FOLLOWED).cloned().collect();
                        r.listed(&ips, &zones).await
                    }
                    _ => Vec::new(),
                };
                out.insert(0, (q, a));
                out
            });
        }
        let mut out = Vec::new();
        while let Some(done) = set.join_next().await {
            out.extend(done.unwrap_or_default());
        }
        out
    }

    /// Each public IPv4 address of `ips`, reversed, asked in each zone, in parallel.
    async fn listed(&self, ips: &[String], zones: &[String]) -> Vec<(Query, Answer)> {
        let mut set = tokio::task::JoinSet::new();
        let public = ips
            .iter()
            .filter_map(|ip| ip.parse::<std::net::Ipv4Addr>().ok())
            .map(std::net::IpAddr::V4)
            .filter(|ip| !super::is_private(ip));
        for ip in public {
            let reversed = super::reverse_ip(&ip);
            for zone in zones {
                let q = Query::new(&format!("{reversed}.{zone}"), QueryKind::A);
                let r = self.clone();
                set.spawn(async move {
                    let a = r.query(&q.name, RecordType::A).await;
                    (q, a)
                });
            }
        }
        let mut out = Vec::new();
        while let Some(done) = set.join_next().await {
            if let Ok(pair) = done {
                out.push(pair);
            }
        }
        out
    }
}

impl Pending {
    /// When the answers stop being awaited.
    pub fn deadline(&self) -> tokio::time::Instant {
        self.deadline
    }

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
                Ok(Ok((mut all, at))) => {
                    last = last.max(at);
                    let first = all.remove(0).1;
                    if q.then.is_some() {
                        out.sent += all.len();
                        for (_, a) in &all {
                            out.count(a);
                        }
                        out.followed.insert(q.clone(), all);
                    }
                    first
                }
                // The task panicked or was cancelled: no answer, as a server failure.
                Ok(Err(e)) => Answer::Failed(Failure::Server(e.to_string())),
                Err(_) => {
                    abort.abort();
                    last = Instant::now();
                    Answer::Failed(Failure::Timeout)
                }
            };
            out.count(&answer);
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
