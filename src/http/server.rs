//! One client connection: hyper's HTTP/1 framing, our routing, passwords, bodies and
//! counters. Every answer has a reason phrase and a body (rspamc 3.4 crashes on an error
//! without the one or a 200 without the other), and the connection closes after it, as
//! rspamd's does.

use super::body::{spooled, whole};
use super::protocol::{Access, Command, ProtoError, ScanRequest};
use super::reply::{self, Action};
use super::{MAX_HEAD, MAX_HEADERS, Scanner, Settings};
use crate::message::screen::{Advice, ScreenOptions};
use crate::message::{ClientInfo, Envelope, Protocol, Recipient, XForward};
use crate::spam::{Class, Learned};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};

type Reply = Response<Full<Bytes>>;

/// What every connection of a listener shares.
pub(super) struct Ctx<S> {
    settings: Settings,
    scanner: Arc<S>,
    started: Instant,
    counts: Counts,
}

/// What `/stat` reports: requests since the start, checks by the action answered.
#[derive(Default)]
struct Counts {
    connections: AtomicU64,
    control: AtomicU64,
    learned: AtomicU64,
    /// By [`action_index`].
    actions: [AtomicU64; 5],
}

const ACTIONS: [Action; 5] = [
    Action::Reject,
    Action::SoftReject,
    Action::RewriteSubject,
    Action::AddHeader,
    Action::NoAction,
];

fn action_index(a: Action) -> usize {
    ACTIONS.iter().position(|x| *x == a).unwrap_or(4)
}

impl<S: Scanner> Ctx<S> {
    pub(super) fn new(settings: Settings, scanner: Arc<S>) -> Ctx<S> {
        Ctx {
            settings,
            scanner,
            started: Instant::now(),
            counts: Counts::default(),
        }
    }
}

/// Serves one connection: one request, then close.
pub(super) async fn connection<S, IO>(
    stream: IO,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    ctx: Arc<Ctx<S>>,
) where
    S: Scanner,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let timeout = ctx.settings.timeout;
    let io = hyper_util::rt::TokioIo::new(stream);
    let svc = hyper::service::service_fn(move |req| {
        let ctx = Arc::clone(&ctx);
        async move { Ok::<_, Infallible>(handle(req, peer, local, &ctx).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(timeout)
        .keep_alive(false)
        // A client may shut its side down once the request is sent; the answer still goes.
        .half_close(true)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS)
        .serve_connection(io, svc)
        .await;
    if let Err(e) = served {
        tracing::debug!("http: connection from {peer}: {e}");
    }
}

/// A request's answer; every error is an answer too.
async fn handle<S: Scanner>(
    req: Request<Incoming>,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    ctx: &Ctx<S>,
) -> Reply {
    let began = Instant::now();
    let (parts, body) = req.into_parts();
    let Some(cmd) = Command::route(parts.uri.path()) else {
        return error(&ProtoError {
            status: 404,
            text: "invalid command".into(),
        });
    };
    let query = super::protocol::query_headers(parts.uri.query().unwrap_or_default());
    let fields = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .chain(query.iter().map(|(n, v)| (n.as_str(), v.as_slice())));
    let r = match ScanRequest::parse(fields) {
        Ok(r) => r,
        Err(e) => return error(&e),
    };
    // A listener on [::] sees IPv4 clients as ::ffff:a.b.c.d.
    let ip = peer.ip().to_canonical();
    let secure = ctx.settings.secure_ip.iter().any(|n| n.contains(&ip));
    let write = match authorize(&ctx.settings, cmd.access(), secure, r.password.as_deref()) {
        Ok(w) => w,
        Err(e) => return error(&e),
    };
    let counter = if cmd.takes_message() && cmd.access() == Access::Open {
        &ctx.counts.connections
    } else {
        &ctx.counts.control
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let out = match cmd {
        Command::Ping => Ok(text("pong\r\n")),
        Command::Stat => Ok(json(&stat(ctx, !write), false)),
        Command::Auth => Ok(json(&auth(ctx, !write), false)),
        Command::Metrics => match crate::stats::render() {
            Some(m) => Ok(text(&m)),
            None => Err(ProtoError {
                status: 404,
                text: "metrics are not counted".into(),
            }),
        },
        Command::CheckV2 | Command::CheckV1 => check(ctx, cmd, &r, body, peer, local, began).await,
        Command::LearnSpam => learn(ctx, &r, body, Class::Spam).await,
        Command::LearnHam => learn(ctx, &r, body, Class::Ham).await,
    };
    out.unwrap_or_else(|e| error(&e))
}

/// The caller's rights for a command of `access`: `Ok(true)` when it may write (a client
/// in `secure_ip`, or the write password given), `Ok(false)` read only. Passwords are
/// compared in constant time.
fn authorize(
    s: &Settings,
    access: Access,
    secure: bool,
    given: Option<&str>,
) -> Result<bool, ProtoError> {
    let is = |want: &str| !want.is_empty() && given.is_some_and(|g| same(g, want));
    let writer =
        secure || is(&s.enable_password) || (s.enable_password.is_empty() && is(&s.password));
    let reader = writer || is(&s.password);
    let ok = match access {
        Access::Open => true,
        Access::Read => reader,
        Access::Write => writer,
    };
    if ok {
        Ok(writer)
    } else {
        Err(ProtoError {
            status: 401,
            text: "Unauthorized".into(),
        })
    }
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `/checkv2`, `/check`: the message checked and the verdict as rspamd's JSON.
async fn check<S: Scanner>(
    ctx: &Ctx<S>,
    cmd: Command,
    r: &ScanRequest,
    body: Incoming,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    began: Instant,
) -> Result<Reply, ProtoError> {
    if r.skip {
        return Ok(json(&reply::skipped(), r.compress_reply));
    }
    let spool = match spooled(&ctx.settings, r, body).await {
        Ok(s) => s,
        // Our own failure (a full disk): the client waits and asks again, as an MTA does
        // with 451; never "no action" for what was not checked.
        Err(e) if e.is_temporary() => {
            tracing::error!("http: {e}");
            let a = Advice::waiting(
                "",
                crate::message::Reply::new(451, "4.3.0", "Error in processing: spool"),
            );
            return Ok(answer(ctx, cmd, &a, began, r.compress_reply));
        }
        Err(e) => return Err(e),
    };
    let env = envelope(r, &ctx.settings, peer, local);
    let opts = options(r, &ctx.settings, &*ctx.scanner);
    let advice = ctx.scanner.advise(env, spool, &opts).await;
    Ok(answer(ctx, cmd, &advice, began, r.compress_reply))
}

/// Counts the check and renders its reply.
fn answer<S>(ctx: &Ctx<S>, cmd: Command, a: &Advice, began: Instant, zstd: bool) -> Reply {
    let action = Action::of(a);
    ctx.counts.actions[action_index(action)].fetch_add(1, Ordering::Relaxed);
    let t = began.elapsed().as_secs_f64();
    let v = match cmd {
        Command::CheckV1 => reply::check_v1(a, t),
        _ => reply::check_v2(a, t),
    };
    json(&v, zstd)
}

/// The envelope the headers describe. Without `Rcpt` the message is judged for
/// `Deliver-To`, else for the listener's default recipient.
fn envelope(
    r: &ScanRequest,
    s: &Settings,
    peer: SocketAddr,
    local: Option<SocketAddr>,
) -> Envelope {
    let mut rcpts = r.rcpts.clone();
    if rcpts.is_empty() {
        rcpts.push(
            r.deliver_to
                .clone()
                .unwrap_or_else(|| s.default_recipient.clone()),
        );
    }
    Envelope {
        mail_from: r.from.clone(),
        mail_params: Vec::new(),
        recipients: rcpts
            .into_iter()
            .map(|address| Recipient {
                address,
                params: Vec::new(),
            })
            .collect(),
        client: ClientInfo {
            peer: Some(peer),
            local,
            socket_path: None,
            helo: r.helo.clone().unwrap_or_default(),
            esmtp: true,
            xforward: XForward {
                addr: r.ip.map(|ip| ip.to_string()),
                name: r.hostname.clone(),
                helo: r.helo.clone(),
                ..XForward::default()
            },
        },
        protocol: Protocol::Smtp,
        received_at: std::time::SystemTime::now(),
    }
}

/// The banks the request loads: the listener's, `Settings-ID`'s, and the authenticated
/// one with `User`; those that exist.
fn options<S: Scanner>(r: &ScanRequest, s: &Settings, scanner: &S) -> ScreenOptions {
    let mut banks = Vec::new();
    let candidates = [
        Some(s.policy_bank.clone()),
        r.settings_id.clone(),
        r.user.as_ref().map(|_| s.authenticated_bank.clone()),
    ];
    for b in candidates.into_iter().flatten() {
        let configured = b == s.policy_bank;
        if !b.is_empty() && (configured || scanner.has_policy_bank(&b)) && !banks.contains(&b) {
            banks.push(b);
        }
    }
    ScreenOptions {
        banks,
        lead_space: false,
        hold_blocked: false,
        queue_id: r.queue_id.clone(),
    }
}

/// `/learnspam`, `/learnham`: rspamd's answers (`{"success":true}`; 404 when it was
/// learned as that class already; 204 when there was nothing to learn).
async fn learn<S: Scanner>(
    ctx: &Ctx<S>,
    r: &ScanRequest,
    body: Incoming,
    class: Class,
) -> Result<Reply, ProtoError> {
    let message = whole(&ctx.settings, r, body).await?;
    if message.is_empty() {
        return Err(ProtoError::bad("Empty body is not permitted"));
    }
    let id = message_id(&message).unwrap_or_else(|| "message".into());
    let user = r.deliver_to.as_deref();
    let learned = ctx
        .scanner
        .learn(user, class, message)
        .await
        .map_err(|e| ProtoError {
            status: if e.is_temporary() { 500 } else { 404 },
            text: format!("Cannot learn: {e}"),
        })?;
    let name = if class == Class::Spam { "spam" } else { "ham" };
    match learned {
        Learned::New | Learned::Flipped => {
            ctx.counts.learned.fetch_add(1, Ordering::Relaxed);
            Ok(json(
                &serde_json::json!({ "success": true }),
                r.compress_reply,
            ))
        }
        Learned::Unchanged => Err(ProtoError {
            status: 404,
            text: format!("{id} has been already learned as {name}, ignore it"),
        }),
        // rspamd says 204 with a body here, which HTTP forbids (and hyper drops): a 200
        // that says so.
        Learned::Forgotten | Learned::NotLearned => Ok(json(
            &serde_json::json!({
                "success": false,
                "error": format!("{id} has no tokens to learn"),
            }),
            r.compress_reply,
        )),
    }
}

/// The `Message-ID` field's value of a message, as rspamd names a message in its learn
/// errors.
fn message_id(message: &[u8]) -> Option<String> {
    let end = memchr::memmem::find(message, b"\n\r\n")
        .or_else(|| memchr::memmem::find(message, b"\n\n"))
        .map_or(message.len(), |e| e + 1);
    crate::message::header_field(&message[..end], "Message-ID")
}

/// `/stat`, as rspamd's controller reports it (rspamc `stat` prints it).
fn stat<S>(ctx: &Ctx<S>, read_only: bool) -> serde_json::Value {
    let c = &ctx.counts;
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut actions = serde_json::Map::new();
    for (i, a) in ACTIONS.iter().enumerate() {
        actions.insert(a.as_str().into(), n(&c.actions[i]).into());
    }
    actions.insert("greylist".into(), 0.into());
    let scanned: u64 = c.actions.iter().map(n).sum();
    let ham = n(&c.actions[action_index(Action::NoAction)]);
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime": ctx.started.elapsed().as_secs(),
        "read_only": read_only,
        "scanned": scanned,
        "learned": n(&c.learned),
        "actions": actions,
        "spam_count": scanned - ham,
        "ham_count": ham,
        "connections": n(&c.connections),
        "control_connections": n(&c.control),
        "total_learns": n(&c.learned),
    })
}

/// `/auth` (rspamc `uptime`).
fn auth<S>(ctx: &Ctx<S>, read_only: bool) -> serde_json::Value {
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "auth": "ok",
        "uptime": ctx.started.elapsed().as_secs(),
        "read_only": read_only,
    })
}

fn text(t: &str) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(t.to_string())));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    r
}

/// A JSON reply, zstd-compressed with `Compression: zstd` when the client asked.
fn json(v: &serde_json::Value, zstd: bool) -> Reply {
    let mut body = v.to_string().into_bytes();
    if zstd {
        body = ruzstd::encoding::compress_to_vec(
            &body[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
    }
    let mut r = Response::new(Full::new(Bytes::from(body)));
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    if zstd {
        h.insert(
            "compression",
            hyper::header::HeaderValue::from_static("zstd"),
        );
    }
    r
}

/// A JSON reply with another status than 200.
fn status(code: u16, v: &serde_json::Value) -> Reply {
    let mut r = json(v, false);
    *r.status_mut() =
        hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r
}

/// An error: its status, its text as the reason phrase and as `{"error": ...}`.
fn error(e: &ProtoError) -> Reply {
    let mut r = status(e.status, &reply::error(e));
    if let Ok(p) = hyper::ext::ReasonPhrase::try_from(reply::phrase(&e.text)) {
        r.extensions_mut().insert(p);
    }
    r
}
