//! Releasing quarantined mail, as amavisd-new does for `amavisd-release`: an AM.PDP request
//! (`request=release|requeue|report`, `mail_id`, `secret_id`, `quar_type`, `mail_file`,
//! `partition_tag`, `recipient`..., `requested_by`) finds the stored copy (SQL or file), checks
//! the secret, and sends the message again through the forward path to the recipients whose
//! copy was blocked (release), to all original recipients (requeue), or to the recipients the
//! request names, with resend header fields on top; a report sends an abuse report (RFC 5965)
//! with the message attached to the recipients the request names. The answer is one
//! `setreply` per recipient.
//!
//! [`ampdp`] is the framing, [`server`] the listener; this file is the request's meaning.
//!
//! # Limits
//! A line is at most [`ampdp::MAX_LINE`] bytes and a request at most [`ampdp::MAX_ATTRS`]
//! attributes (beyond either the session is closed); [`server::MAX_SESSIONS`] sessions are
//! served at once (more wait to be accepted); [`server::IDLE_TIMEOUT`] of silence closes a
//! session. SQL reads run within `sql.timeout`, and the resend within the forward limits.
//!
//! # Security
//! The listener is a unix socket (mode 0660, owned by the filter's user) or a loopback port
//! (`release.inet` is refused otherwise). A release needs the message's `secret_id` unless
//! `release.require_secret` is off, as amavisd-new's `auth_required_release`. A mail_id must
//! look like one, and a `mail_file` from a request is read only as a plain relative path
//! inside the quarantine folder. Request text is decoded to UTF-8 (invalid bytes replaced) and
//! never echoed unescaped.

pub mod ampdp;
pub mod server;

pub use ampdp::Attrs;
pub use server::{ReleaseConfig, ReleaseHandler, ReleaseListener};

use crate::message::{Recipient, Reply, Spool, XForward, check_secret, date};
use crate::quarantine::{self, QuarantineConfig};
use crate::smtp_out::{Forwarder, OutMessage};
use crate::spam::{Class, Learnable, Trainer};
use crate::sql::Store;
use crate::sql::dialect::BindBin;
use sqlx::{AssertSqlSafe, Row};

/// What a release needs from the running filter.
pub struct ReleaseContext<'a> {
    /// The Bayes store a report (spam) or the release of spam (a false positive, ham)
    /// retrains (`spam.bayes_learn_on_release`); `None`: no retraining.
    pub bayes: Option<&'a Trainer>,
    /// How the original recipients' own store names are found (`recipient_delimiter`).
    pub recipient_delimiter: &'a str,
    pub store: Option<&'a Store>,
    pub quarantine: &'a QuarantineConfig,
    pub forwarder: &'a Forwarder,
    pub myhostname: &'a str,
    /// amavisd-new's `auth_required_release`: a request must carry the right secret_id.
    pub require_secret: bool,
}

fn reply(attrs: &mut Attrs, r: &Reply) {
    attrs.push("setreply", r.one_line());
}

fn fail(code: u16, status: &str, text: &str) -> Attrs {
    let mut a = Attrs::default();
    reply(&mut a, &Reply::new(code, status, text));
    a.push("exit_code", if code >= 500 { "69" } else { "75" });
    a
}

/// amavisd-new's mail_id syntax.
fn valid_mail_id(id: &str) -> bool {
    let b = id.as_bytes();
    let body_end = b.len() - b.iter().rev().take_while(|&&c| c == b'=').count();
    !b.is_empty()
        && b.len() - body_end <= 2
        && b[0].is_ascii_alphanumeric()
        && b[..body_end]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'+' | b'-'))
}

/// The `msgs` facts a release needs.
struct Row0 {
    quar_type: char,
    quar_loc: String,
    /// amavisd-new's content type (`S` spam, `Y` spammy, `V` virus ...).
    content: char,
}

async fn msgs_row(
    store: &Store,
    mail_id: &str,
    partition_tag: i64,
) -> Result<Option<Row0>, String> {
    let d = store.dialect();
    let sql = d.sql(&format!(
        "SELECT {}, quar_loc, {} FROM msgs WHERE partition_tag = ? AND mail_id = ?",
        d.text("quar_type"),
        d.text("content")
    ));
    let row = store
        .timed(async {
            Ok(sqlx::query(AssertSqlSafe(sql))
                .bind(partition_tag)
                .bind_bin(d, mail_id)
                .fetch_optional(store.pool())
                .await?)
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.map(|r| {
        let qt: Option<String> = r.try_get(0).ok();
        let loc = crate::sql::dialect::bin_column(&r, 1);
        let content: Option<String> = r.try_get(2).ok();
        Row0 {
            quar_type: qt.and_then(|s| s.chars().next()).unwrap_or(' '),
            quar_loc: String::from_utf8_lossy(&loc).into_owned(),
            content: content.and_then(|s| s.chars().next()).unwrap_or(' '),
        }
    }))
}

/// The stored copy split into its envelope fields and the message (CRLF line ends again).
struct Unpacked {
    sender: String,
    to: Vec<String>,
    blocked: Vec<String>,
    message: Vec<u8>,
}

fn addresses(v: &str) -> Vec<String> {
    v.split(',')
        .map(|a| {
            a.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
        .filter(|a| !a.is_empty())
        .collect()
}

fn unpack(stored: &[u8]) -> Unpacked {
    let mut u = Unpacked {
        sender: String::new(),
        to: Vec::new(),
        blocked: Vec::new(),
        message: Vec::new(),
    };
    // The envelope fields come first, each possibly folded; the message starts at the first
    // line that is none of them.
    let mut rest = stored;
    let mut current: Option<(&'static str, String)> = None;
    let flush = |cur: &mut Option<(&'static str, String)>, u: &mut Unpacked| {
        if let Some((name, v)) = cur.take() {
            match name {
                "from" => {
                    u.sender = v
                        .trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .into()
                }
                "to" => u.to = addresses(&v),
                "blocked" => u.blocked = addresses(&v),
                _ => {}
            }
        }
    };
    loop {
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |p| p + 1);
        let line = String::from_utf8_lossy(&rest[..end]);
        let l = line.trim_end_matches(['\r', '\n']);
        let field = [
            ("X-Envelope-From:", "from"),
            ("X-Envelope-To:", "to"),
            ("X-Envelope-To-Blocked:", "blocked"),
            ("X-Quarantine-ID:", "id"),
        ]
        .into_iter()
        .find(|(p, _)| l.len() >= p.len() && l[..p.len()].eq_ignore_ascii_case(p));
        if let Some((p, name)) = field {
            flush(&mut current, &mut u);
            current = Some((name, l[p.len()..].to_string()));
        } else if current.is_some() && (l.starts_with(' ') || l.starts_with('\t')) {
            if let Some((_, v)) = current.as_mut() {
                v.push_str(l);
            }
        } else {
            break;
        }
        rest = &rest[end..];
        if rest.is_empty() {
            break;
        }
    }
    flush(&mut current, &mut u);
    u.message = crate::message::line_ends::to_crlf(rest);
    u
}

/// Handles one request; the response attributes.
pub async fn handle(ctx: &ReleaseContext<'_>, req: &Attrs) -> Attrs {
    match release(ctx, req).await {
        Ok(a) | Err(a) => a,
    }
}

/// A request's answer when it goes no further (`Err`) or is done (`Ok`).
type Answer = Result<Attrs, Attrs>;

/// What a request asks for, checked.
struct Request<'r> {
    /// `release`, `requeue` or `report`.
    kind: &'r str,
    mail_id: &'r str,
    partition_tag: i64,
}

/// The steps of a request: check it, find the stored copy, choose the recipients, send it
/// again (or the abuse report about it), then record and retrain.
async fn release(ctx: &ReleaseContext<'_>, req: &Attrs) -> Answer {
    let r = checked(ctx, req)?;
    let (known, quar_loc, stored) = fetch(ctx, req, &r).await?;
    let u = unpack(&stored);
    let rcpts = recipients(&r, req, &u)?;
    let class = retrain_class(r.kind, known.as_ref(), &quar_loc);
    let retrain_as = class
        .filter(|_| ctx.bayes.is_some())
        .map(|c| (c, Learnable::of(&u.message)));
    let to = u.to.clone();
    let (a, ok) = resend(ctx, req, &r, u, &rcpts).await?;
    if let Some(store) = ctx.store
        && ok
        && r.kind != "report"
    {
        mark_released(store, r.mail_id, r.partition_tag, &rcpts).await;
    }
    if let (Some(trainer), Some((class, msg)), true) = (ctx.bayes, &retrain_as, ok) {
        let users = retrain_users(&to, ctx.recipient_delimiter);
        retrain(trainer, *class, msg, &users, r.mail_id).await;
    }
    Ok(a)
}

/// The request's kind, mail_id (with its secret when required) and partition.
fn checked<'r>(ctx: &ReleaseContext<'_>, req: &'r Attrs) -> Result<Request<'r>, Attrs> {
    let kind = req.get("request").unwrap_or("");
    if kind != "release" && kind != "requeue" && kind != "report" {
        return Err(fail(
            502,
            "5.5.1",
            &format!("request {kind:?} is not supported (release, requeue, report)"),
        ));
    }
    let Some(mail_id) = req.get("mail_id").filter(|m| valid_mail_id(m)) else {
        return Err(fail(554, "5.5.4", "missing or invalid mail_id"));
    };
    let secret = req.get("secret_id").unwrap_or("");
    if ctx.require_secret && !check_secret(mail_id, secret) {
        tracing::warn!("release of {mail_id} refused: wrong or missing secret_id");
        return Err(fail(554, "5.7.1", "wrong secret_id"));
    }
    let partition_tag: i64 = req
        .get("partition_tag")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| ctx.store.map_or(0, Store::partition_tag));
    Ok(Request {
        kind,
        mail_id,
        partition_tag,
    })
}

/// The stored copy, with its `msgs` row when SQL has one and where it was kept. Where the
/// copy is: the msgs row says, else the request (file quarantine without SQL).
async fn fetch(
    ctx: &ReleaseContext<'_>,
    req: &Attrs,
    r: &Request<'_>,
) -> Result<(Option<Row0>, String, Vec<u8>), Attrs> {
    let known = match ctx.store {
        Some(s) => msgs_row(s, r.mail_id, r.partition_tag)
            .await
            .map_err(|e| fail(451, "4.4.3", &format!("SQL: {e}")))?,
        None => None,
    };
    let (quar_type, quar_loc) = match &known {
        Some(row) if row.quar_type != ' ' => (row.quar_type, row.quar_loc.clone()),
        _ => {
            let file = req.get("mail_file").unwrap_or("");
            let qt = req
                .get("quar_type")
                .and_then(|q| q.chars().next())
                .unwrap_or(if file.ends_with(".gz") { 'Z' } else { 'F' });
            (qt, file.to_string())
        }
    };
    let fetched = quarantine::fetch(
        quar_type,
        &quar_loc,
        r.mail_id,
        r.partition_tag,
        ctx.quarantine,
        ctx.store,
    )
    .await
    .map_err(|e| fail(451, "4.4.3", &e.to_string()))?;
    match fetched {
        Some(stored) => Ok((known, quar_loc, stored)),
        None => Err(fail(
            550,
            "5.7.1",
            &format!(
                "mail_id {} is not in the quarantine (or was purged)",
                r.mail_id
            ),
        )),
    }
}

/// Who gets the copy: the recipients the request names, else every original recipient
/// (requeue, or nothing recorded as blocked), else those whose copy was blocked. `Err` is
/// the answer when there is nobody to send to.
fn recipients(r: &Request<'_>, req: &Attrs, u: &Unpacked) -> Result<Vec<String>, Attrs> {
    let named: Vec<String> = req
        .all("recipient")
        .into_iter()
        .map(|r| r.trim_start_matches('<').trim_end_matches('>').to_string())
        .filter(|r| !r.is_empty())
        .collect();
    if r.kind == "report" && named.is_empty() {
        return Err(fail(
            554,
            "5.5.4",
            "a report needs the recipient(s) to send it to",
        ));
    }
    let rcpts = if !named.is_empty() {
        named
    } else if r.kind == "requeue" || u.blocked.is_empty() {
        u.to.clone()
    } else {
        u.blocked.clone()
    };
    if rcpts.is_empty() {
        let mut a = Attrs::default();
        reply(
            &mut a,
            &Reply::new(250, "2.5.0", "No recipients, nothing to do"),
        );
        return Err(a);
    }
    Ok(rcpts)
}

/// The class a release or report retrains the Bayes store with: a report says the message
/// is spam; releasing spam says it was not.
fn retrain_class(kind: &str, known: Option<&Row0>, quar_loc: &str) -> Option<Class> {
    let was_spam = match known {
        Some(r) if r.content != ' ' => matches!(r.content, 'S' | 'Y'),
        // File quarantine without SQL: amavisd-new's spam file names.
        _ => file_name(quar_loc).starts_with("spam"),
    };
    match kind {
        "report" => Some(Class::Spam),
        "release" if was_spam => Some(Class::Ham),
        _ => None,
    }
}

/// The trace fields on top of a released copy: `Received`, `Resent-From` (who asked),
/// `Resent-Date`, `Resent-Message-ID`.
fn resent_fields(ctx: &ReleaseContext<'_>, req: &Attrs, mail_id: &str) -> String {
    let now = date::rfc2822(std::time::SystemTime::now());
    let host = ctx.myhostname;
    let mut head = format!(
        "Received: from localhost by {host} (amavisd-rs) for release of {mail_id};\r\n {now}\r\n"
    );
    if let Some(by) = req.get("requested_by") {
        let by: String = by.chars().filter(|c| !c.is_control()).collect();
        head.push_str(&format!("Resent-From: {by}\r\n"));
    }
    head.push_str(&format!(
        "Resent-Date: {now}\r\nResent-Message-ID: <RLS{mail_id}.{}@{host}>\r\n",
        std::process::id()
    ));
    head
}

/// Sends the copy (a release or requeue: the message again, from its sender or the one
/// the request names) or the abuse report about it (RFC 5965, from the null sender) to
/// `rcpts`; the per-recipient answers, and whether every one was accepted.
async fn resend(
    ctx: &ReleaseContext<'_>,
    req: &Attrs,
    r: &Request<'_>,
    u: Unpacked,
    rcpts: &[String],
) -> Result<(Attrs, bool), Attrs> {
    let mail_id = r.mail_id;
    let (sender, head, tail) = if r.kind == "report" {
        let (h, t) = arf(mail_id, &u, ctx.myhostname, req.get("requested_by"));
        (String::new(), h, t)
    } else {
        let sender = req
            .get("sender")
            .map(|s| s.trim_start_matches('<').trim_end_matches('>').to_string())
            .unwrap_or(u.sender.clone());
        (sender, resent_fields(ctx, req, mail_id), String::new())
    };
    let spool = Spool::from_bytes(u.message);
    let recipients: Vec<Recipient> = rcpts
        .iter()
        .map(|r| Recipient {
            address: r.clone(),
            params: Vec::new(),
        })
        .collect();
    let none = XForward::default();
    let out = OutMessage {
        mail_from: &sender,
        mail_params: &[],
        recipients: &recipients,
        xforward: &none,
        prefix: head.as_bytes(),
        spool: &spool,
        skip: 0,
        suffix: tail.as_bytes(),
        all_or_nothing: false,
    };
    let via = ctx.forwarder.method().to_string();
    let d = ctx
        .forwarder
        .deliver(&out)
        .await
        .map_err(|e| fail(451, e.status(), &format!("cannot forward to {via}: {e}")))?;
    let mut a = Attrs::default();
    for rep in &d.replies {
        let text = format!("from MTA({via}): {}", rep.one_line());
        reply(&mut a, &Reply::new(rep.code, &rep.status, text));
    }
    let ok = d.replies.iter().all(Reply::is_positive);
    a.push("exit_code", if ok { "0" } else { "69" });
    tracing::info!(
        "({mail_id}) {}d to {} recipient(s) by {}",
        r.kind,
        rcpts.len(),
        req.get("requested_by").unwrap_or("amavisd-release")
    );
    Ok((a, ok))
}

/// The last component of a quarantine location.
fn file_name(loc: &str) -> &str {
    loc.rsplit('/').next().unwrap_or(loc)
}

/// The stores a release retrains: the site's and each original recipient's own (dspam: a
/// user's correction trains the user's store).
fn retrain_users(to: &[String], delimiter: &str) -> Vec<String> {
    let mut users = vec![String::new()];
    for r in to {
        let user = crate::spam::bayes_user(r, delimiter);
        if !users.contains(&user) {
            users.push(user);
        }
    }
    users
}

/// Learns a released or reported message as `class` into `users`' stores. The release itself
/// is done; a store that fails only logs.
async fn retrain(
    trainer: &Trainer,
    class: Class,
    msg: &Learnable,
    users: &[String],
    mail_id: &str,
) {
    for user in users {
        match trainer.learn(user, class, msg).await {
            Ok(l) => tracing::info!("({mail_id}) learned as {class:?} for <{user}>: {l:?}"),
            Err(e) => tracing::warn!("({mail_id}) not learned as {class:?} for <{user}>: {e}"),
        }
    }
}

/// The parts of an abuse report (RFC 5965) around the original message: a text part, the
/// machine-readable `message/feedback-report`, then the message as `message/rfc822`.
fn arf(mail_id: &str, u: &Unpacked, myhostname: &str, by: Option<&str>) -> (String, String) {
    let clean = |s: &str| -> String { s.chars().filter(|c| !c.is_control()).collect() };
    let boundary = format!("----------=_ARF_{mail_id}");
    let now = date::rfc2822(std::time::SystemTime::now());
    let from = by.map_or_else(|| format!("postmaster@{myhostname}"), clean);
    let mut h = format!(
        "From: <{from}>\r\nSubject: Abuse report for quarantined mail {mail_id}\r\n\
         Date: {now}\r\nMessage-ID: <ARF{mail_id}.{}@{myhostname}>\r\n\
         Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report;\r\n boundary=\"{boundary}\"\r\n\r\n\
         --{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         This is an abuse report for a message quarantined by the content filter at\r\n\
         {myhostname} (mail_id {mail_id}).\r\n\r\n\
         --{boundary}\r\nContent-Type: message/feedback-report\r\n\r\n\
         Feedback-Type: abuse\r\nUser-Agent: amavisd-rs/{}\r\nVersion: 1\r\n",
        std::process::id(),
        env!("CARGO_PKG_VERSION"),
    );
    h.push_str(&format!("Original-Mail-From: <{}>\r\n", clean(&u.sender)));
    for r in &u.to {
        h.push_str(&format!("Original-Rcpt-To: <{}>\r\n", clean(r)));
    }
    h.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n"
    ));
    (h, format!("\r\n--{boundary}--\r\n"))
}

/// amavisd-new marks released recipients with `msgrcpt.rs = 'R'`, for the front ends.
async fn mark_released(store: &Store, mail_id: &str, partition_tag: i64, rcpts: &[String]) {
    let d = store.dialect();
    for r in rcpts {
        let sql = d.sql(
            "UPDATE msgrcpt SET rs = 'R' WHERE partition_tag = ? AND mail_id = ? AND rid IN \
             (SELECT id FROM maddr WHERE partition_tag = ? AND email = ?)",
        );
        let res = store
            .timed(async {
                sqlx::query(AssertSqlSafe(sql))
                    .bind(partition_tag)
                    .bind_bin(d, mail_id)
                    .bind(partition_tag)
                    .bind_bin(d, &crate::sql::fields::address(r))
                    .execute(store.pool())
                    .await?;
                Ok(())
            })
            .await;
        if let Err(e) = res {
            tracing::warn!("({mail_id}) cannot mark {r} released: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_ids() {
        assert!(valid_mail_id("K-c5C9vr87eF"));
        assert!(valid_mail_id("abc+de=="));
        assert!(!valid_mail_id("../etc"));
        assert!(!valid_mail_id("-abc"));
        assert!(!valid_mail_id("abc==="));
    }

    #[test]
    fn stored_copy_unpacks() {
        let s = b"X-Envelope-From: <s@x>\nX-Envelope-To: <a@y>,\n  <b@y>\nX-Envelope-To-Blocked: <b@y>\nX-Quarantine-ID: <id>\nFrom: s@x\nSubject: hi\n\nbody\n";
        let u = unpack(s);
        assert_eq!(u.sender, "s@x");
        assert_eq!(u.to, ["a@y", "b@y"]);
        assert_eq!(u.blocked, ["b@y"]);
        assert_eq!(u.message, b"From: s@x\r\nSubject: hi\r\n\r\nbody\r\n");
    }
}
