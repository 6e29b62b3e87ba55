//! Step: passed copies go to the next hop, grouped by what must change in them (one
//! transaction per group), with our trace and verdict fields, forged `Authentication-Results`
//! removed and, for our own users' mail, a DKIM signature. What the next hop answered becomes
//! the client's reply under the reply contract ([`combine`]).

use super::contract::{Decision, RcptOutcome, combine};
use super::job::{Job, Tempfail, Whole, read_whole};
use super::state::State;
use super::trace_headers::trace_headers;
use crate::message::{Destiny, Protocol, Recipient, Reply};
use crate::quarantine::Stored;
use crate::smtp_out::OutMessage;
use std::time::Instant;

/// What became of the copies.
pub(super) struct Delivered {
    /// Per recipient: forwarded with the next hop's reply, or blocked with ours.
    pub outcomes: Vec<RcptOutcome>,
    /// Per recipient: the next hop's own reply, when it gave one.
    pub next_hop: Vec<Option<Reply>>,
    pub queued_as: Option<String>,
    pub decision: Decision,
}

/// What must change in a passed copy; recipients with equal keys share a transaction.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct GroupKey {
    /// The copy names the quarantined message (`X-Quarantine-ID`: a local recipient of a
    /// message some of whose copies were kept).
    quarantine_id: bool,
    headers: Vec<(String, String)>,
    strip_spam: bool,
    subject_tag: String,
}

/// SMTP has one reply: a recipient that must wait makes the whole message wait, before
/// anything is delivered or kept.
pub(super) fn all_or_nothing(job: &Job) -> Result<(), Tempfail> {
    if job.env.protocol != Protocol::Smtp {
        return Ok(());
    }
    any_waits(job)
}

/// The whole message waits when one copy must: the reply of the first such copy.
pub(super) fn any_waits(job: &Job) -> Result<(), Tempfail> {
    match job
        .verdicts
        .iter()
        .find(|v| v.destiny == Destiny::Tempfail)
        .and_then(|v| v.reply.clone())
    {
        Some(r) => Err(Tempfail::reply(r)),
        None => Ok(()),
    }
}

/// Forwards the passed copies; blocked ones get their verdict's reply.
pub(super) async fn deliver(st: &State, job: &Job, stored: Option<&Stored>) -> Delivered {
    let n = job.verdicts.len();
    let mut outcomes: Vec<Option<RcptOutcome>> = vec![None; n];
    let mut next_hop: Vec<Option<Reply>> = vec![None; n];
    let mut queued_as = None;
    let groups = groups(job, stored.is_some(), &mut outcomes);
    let via = st.forwarder.method().to_string();
    crate::stats::sessions::stage("forward");
    let began = Instant::now();
    let mut signing = Signing::new(st, job);
    for (key, members) in &groups {
        let (prefix, skip) = signing.prefix(st, job, key).await;
        let rcpts: Vec<Recipient> = members
            .iter()
            .map(|&i| Recipient {
                address: job.verdicts[i].address.clone(),
                params: job.env.recipients[i].params.clone(),
            })
            .collect();
        let out = OutMessage {
            mail_from: &job.env.mail_from,
            mail_params: &job.env.mail_params,
            recipients: &rcpts,
            xforward: &job.env.client.xforward,
            prefix: &prefix,
            spool: &job.spool,
            skip,
            suffix: b"",
            all_or_nothing: job.env.protocol == Protocol::Smtp,
        };
        match st.forwarder.deliver(&out).await {
            Ok(d) => {
                crate::stats::bytes_out(job.spool.len());
                queued_as = queued_as.or(d.queued_as);
                for (&i, r) in members.iter().zip(d.replies) {
                    next_hop[i] = Some(r.clone());
                    outcomes[i] = Some(RcptOutcome::Forwarded(r));
                }
            }
            Err(e) => {
                tracing::warn!("({}) forwarding to {via} failed: {e}", job.am_id);
                let text = format!("Error: cannot forward to {via}, id={}: {e}", job.am_id);
                let r = Reply::new(451, e.status(), text);
                for &i in members {
                    outcomes[i] = Some(RcptOutcome::Blocked {
                        reply: r.clone(),
                        dsn: false,
                    });
                }
            }
        }
    }
    crate::stats::stage("forward", began.elapsed());
    let outcomes: Vec<RcptOutcome> = outcomes
        .into_iter()
        .map(|o| {
            // Every copy is blocked or in a group; one that is neither is our bug: it waits.
            o.unwrap_or_else(|| RcptOutcome::Blocked {
                reply: Tempfail::processing(&job.am_id, "internal error").reply,
                dsn: false,
            })
        })
        .collect();
    let env = &job.env;
    let decision = combine(
        env.protocol,
        &via,
        &env.mail_from,
        &env.recipients,
        &outcomes,
    );
    Delivered {
        outcomes,
        next_hop,
        queued_as,
        decision,
    }
}

/// The passed copies grouped by what must change in them; blocked copies' outcomes are
/// filled in `outcomes` on the way.
fn groups(
    job: &Job,
    quarantined: bool,
    outcomes: &mut [Option<RcptOutcome>],
) -> Vec<(GroupKey, Vec<usize>)> {
    let mut groups: Vec<(GroupKey, Vec<usize>)> = Vec::new();
    for (i, v) in job.verdicts.iter().enumerate() {
        if v.destiny != Destiny::Pass {
            // A blocked verdict always carries its reply; a missing one is our bug: wait.
            let reply = v
                .reply
                .clone()
                .unwrap_or_else(|| Tempfail::processing(&job.am_id, "internal error").reply);
            outcomes[i] = Some(RcptOutcome::Blocked {
                reply,
                dsn: v.destiny == Destiny::Reject && !v.suppress_dsn,
            });
            continue;
        }
        let key = GroupKey::of(job, i, quarantined);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    groups
}

impl GroupKey {
    /// The key of recipient `i`'s passed copy; `quarantined` when some copy was kept.
    pub(super) fn of(job: &Job, i: usize, quarantined: bool) -> GroupKey {
        let v = &job.verdicts[i];
        GroupKey {
            quarantine_id: quarantined && job.rcpts[i].settings.local,
            headers: v.headers.clone(),
            strip_spam: v.strip_spam_headers,
            subject_tag: v.subject_tag.clone(),
        }
    }
}

/// A passed copy's header changes: fields to put on top (our trace and verdict fields, a
/// DKIM signature first when we sign) and, when its own fields change (`X-Spam-*` or forged
/// `Authentication-Results` removed, a subject tag), the rewritten header section.
pub(super) struct CopyHeader {
    pub top: Vec<u8>,
    pub header: Option<Vec<u8>>,
}

/// Where our own `Received:` goes: on the copies we send ourselves, not on those an MTA
/// passes on after a milter (it writes its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trace {
    Received,
    ScannedByOnly,
}

/// The header edits and DKIM signing common to every group of one message.
pub(super) struct Signing<'a> {
    /// Incoming `Authentication-Results` of our authserv-id are forged: removed.
    forged: bool,
    signer: Option<&'a crate::dkim::Signer>,
    /// The author, when some copy is signed.
    author: String,
    /// The whole message, read once when some copy is signed.
    whole: Option<Whole<'a>>,
}

impl<'a> Signing<'a> {
    pub(super) fn new(st: &'a State, job: &'a Job) -> Signing<'a> {
        // Verification may run for the spam rules alone; the field is ours with `verify`.
        let dkim = job
            .checked
            .as_ref()
            .and_then(|c| c.dkim.as_ref())
            .filter(|_| st.cfg.dkim.verify);
        let forged = dkim.is_some()
            && crate::dkim::has_forged(job.spool.header_section(), st.cfg.authserv_id());
        let signer = st.signer.as_ref().filter(|_| job.bank.policy.originating);
        // Only mail we sign needs its author.
        let author = signer
            .and_then(|_| job.spool.header_field("From"))
            .map(|f| crate::dkim::author_address(&f).to_string())
            .unwrap_or_default();
        Signing {
            forged,
            signer,
            author,
            whole: None,
        }
    }

    /// The fields to send before the spooled message for the copies of `key`, and how many
    /// bytes of the spool they replace (its header section, when that is rewritten).
    async fn prefix(&mut self, st: &State, job: &'a Job, key: &GroupKey) -> (Vec<u8>, u64) {
        let CopyHeader { mut top, header } = self.copy(st, job, key, Trace::Received).await;
        match header {
            Some(h) => {
                top.extend_from_slice(&h);
                (top, job.spool.header_section().len() as u64)
            }
            None => (top, 0),
        }
    }

    /// The header changes of the copies of `key`, signed when the copy is ours to sign.
    pub(super) async fn copy(
        &mut self,
        st: &State,
        job: &'a Job,
        key: &GroupKey,
        trace: Trace,
    ) -> CopyHeader {
        let spool = &job.spool;
        let authserv_id = st.cfg.authserv_id();
        let mut top = match trace {
            Trace::Received => trace_headers(&st.cfg, &job.env, &job.ids.mail_id),
            Trace::ScannedByOnly => super::trace_headers::scanned_by(&st.cfg),
        };
        if let Some(v) = job
            .checked
            .as_ref()
            .and_then(|c| c.dkim.as_ref())
            .filter(|_| st.cfg.dkim.verify)
        {
            top.extend_from_slice(v.header.as_bytes());
        }
        if key.quarantine_id {
            let id = &job.ids.mail_id;
            top.extend_from_slice(format!("X-Quarantine-ID: <{id}>\r\n").as_bytes());
        }
        for (name, body) in &key.headers {
            top.extend_from_slice(format!("{name}: {body}\r\n").as_bytes());
        }
        let forged = self.forged;
        let header = (key.strip_spam || !key.subject_tag.is_empty() || forged).then(|| {
            crate::message::header_edit::rewrite_header(
                spool.header_section(),
                key.strip_spam,
                &key.subject_tag,
                |f| forged && crate::dkim::is_forged(f, authserv_id),
            )
        });
        if let Some(sig) = self.sign(job, &top, header.as_deref()).await {
            let mut signed = sig.into_bytes();
            signed.extend_from_slice(&top);
            top = signed;
        }
        CopyHeader { top, header }
    }

    /// A DKIM signature over the copy (`top`, then `header` or the original's, then the
    /// body), when the copy is ours to sign.
    async fn sign(&mut self, job: &'a Job, top: &[u8], header: Option<&[u8]>) -> Option<String> {
        let env = &job.env;
        let signer = self
            .signer
            .filter(|s| s.domain_for(&self.author, &env.mail_from).is_some())?;
        if self.whole.is_none() {
            self.whole = read_whole(&job.spool).await;
        }
        let am_id = &job.am_id;
        let skip = header.map_or(0, |_| job.spool.header_section().len());
        let signed = self.whole.as_deref().map(|w| {
            let rest = w.get(skip..).unwrap_or_default();
            // No empty chunk: one in the chain broke mail-auth's body hash (tests/dkim.rs).
            let chunks: Vec<&[u8]> = [top, header.unwrap_or_default(), rest]
                .into_iter()
                .filter(|c| !c.is_empty())
                .collect();
            signer.sign(&self.author, &env.mail_from, &chunks)
        });
        match signed {
            Some(Ok(sig)) => sig,
            Some(Err(e)) => {
                tracing::error!("({am_id}) DKIM: {e}; sent unsigned");
                None
            }
            None => {
                tracing::error!("({am_id}) DKIM: spool unreadable; sent unsigned");
                None
            }
        }
    }
}
