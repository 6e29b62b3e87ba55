//! A spamd-protocol listener (`[spam] spamd_listen`), so spamc and other spamd clients can
//! use the embedded engine: one request per connection, the message read whole (bounded by
//! [`MAX_MESSAGE`]), scanned through the pipeline's check API with the spam engine alone
//! ([`CheckOptions::spam_only`]), with the rules and Bayes store in force at that moment. The
//! protocol itself, sans I/O, is [`crate::spam::spamd::protocol`]. TELL (`spamc -L spam|ham|forget`) trains the Bayes store: the site's, or a
//! user's own when `User` is an address (per-user stores are keyed by address; spamc sends
//! the Unix login by default, which is not one).
//!
//! # Limits
//! A request's header section is at most [`protocol::MAX_HEAD`] bytes and its message at
//! most [`MAX_MESSAGE`]; the whole request must arrive within [`READ_TIMEOUT`];
//! [`MAX_SESSIONS`] sessions are served at once (more wait to be accepted).
//!
//! # Security
//! Anyone who can connect can scan and, with TELL, train the Bayes store: the listener is off
//! unless `spam.spamd_listen` names an address, which should be loopback (as spamd's own
//! default). Malformed requests get spamd's error codes (`EX_PROTOCOL`, `EX_DATAERR`), never a
//! panic; the user name only selects a per-user store keyed by address.

use crate::message::{ClientInfo, Envelope, Protocol, Spool};
use crate::pipeline::{CheckOptions, Pipeline};
use crate::spam::LearnError;
use crate::spam::scan::Outcome;
use crate::spam::spamd::protocol::{self, ProtoError, Verb};
use crate::spam::{Class, Learned};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Largest message accepted: spamc itself sends at most 500 KB unless told otherwise (-s);
/// 64 MiB bounds memory for clients that do not limit themselves.
pub const MAX_MESSAGE: usize = 64 << 20;

/// Sessions served at once; more wait to be accepted. Each may hold a message of up to
/// [`MAX_MESSAGE`] while it is scanned, so this bounds the listener's memory (spamd's own
/// default is 5 children).
pub const MAX_SESSIONS: usize = 16;

/// How long a client may take to send its request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts spamc connections until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    pipeline: Arc<Pipeline>,
    mut shutdown: watch::Receiver<bool>,
) {
    let sessions = Arc::new(tokio::sync::Semaphore::new(MAX_SESSIONS));
    loop {
        let Some(permit) = crate::accept::session_permit(&sessions, &mut shutdown).await else {
            return;
        };
        tokio::select! {
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    return;
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let pipeline = Arc::clone(&pipeline);
                    tokio::spawn(async move {
                        if let Err(e) = session(stream, pipeline).await {
                            tracing::debug!("spamd session: {e}");
                        }
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!("spamd accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

async fn session(mut stream: TcpStream, pipeline: Arc<Pipeline>) -> std::io::Result<()> {
    let reply = match tokio::time::timeout(READ_TIMEOUT, request(&mut stream, &pipeline)).await {
        Ok(Ok(Some(bytes))) => bytes,
        Ok(Ok(None)) => return Ok(()),
        Ok(Err(e)) => protocol::error(&e),
        Err(_) => protocol::error(&ProtoError {
            code: protocol::EX_PROTOCOL,
            text: "timeout reading the request".into(),
        }),
    };
    stream.write_all(&reply).await?;
    stream.shutdown().await
}

/// Reads one request and computes its answer; `None` for SKIP.
async fn request(
    stream: &mut TcpStream,
    pipeline: &Pipeline,
) -> Result<Option<Vec<u8>>, ProtoError> {
    let io = |e: std::io::Error| ProtoError {
        code: protocol::EX_PROTOCOL,
        text: format!("read error: {e}"),
    };
    let mut buf = Vec::with_capacity(4096);
    let head_len = loop {
        if let Some(end) = protocol::head_end(&buf) {
            break end;
        }
        if buf.len() > protocol::MAX_HEAD {
            return Err(ProtoError {
                code: protocol::EX_PROTOCOL,
                text: "request head too long".into(),
            });
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err(ProtoError {
                code: protocol::EX_PROTOCOL,
                text: "connection closed in the request head".into(),
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let req = protocol::parse_head(&buf[..head_len])?;
    match req.verb {
        Verb::Ping => return Ok(Some(protocol::pong())),
        Verb::Skip => return Ok(None),
        _ => {}
    }
    let len = req.content_length.unwrap_or(0);
    if len > MAX_MESSAGE {
        return Err(ProtoError {
            code: protocol::EX_DATAERR,
            text: format!("message larger than {MAX_MESSAGE} bytes"),
        });
    }
    let mut message = buf.split_off(head_len);
    if message.len() < len {
        let mut rest = vec![0u8; len - message.len()];
        stream.read_exact(&mut rest).await.map_err(io)?;
        message.extend_from_slice(&rest);
    }
    message.truncate(len);
    if req.verb == Verb::Tell {
        return tell(&req, pipeline, message).await.map(Some);
    }
    let spool = Arc::new(Spool::from_bytes(message));
    let o = scan(pipeline, Arc::clone(&spool)).await?;
    let message = spool.as_bytes().unwrap_or_default();
    Ok(Some(protocol::answer(req.verb, &o, message)))
}

/// The spam engine's answer for `spool`, through the pipeline's check API with the spam
/// engine alone ([`CheckOptions::spam_only`]): no envelope sender, no recipients.
async fn scan(pipeline: &Pipeline, spool: Arc<Spool>) -> Result<Outcome, ProtoError> {
    let env = Envelope {
        mail_from: String::new(),
        mail_params: Vec::new(),
        recipients: Vec::new(),
        client: ClientInfo::default(),
        protocol: Protocol::Smtp,
        received_at: std::time::SystemTime::now(),
    };
    let assessed = pipeline
        .check_with(env, spool, &CheckOptions::spam_only())
        .await
        .map_err(|t| ProtoError {
            // As the filter: no answer rather than a score without its Bayes part.
            code: protocol::EX_UNAVAILABLE,
            text: t.reason.unwrap_or_else(|| t.reply.one_line()),
        })?;
    assessed.spam.ok_or_else(|| ProtoError {
        code: protocol::EX_UNAVAILABLE,
        text: "the spam engine is off ([spam] enabled = false)".into(),
    })
}

/// TELL: learns (`Set: local`) or forgets (`Remove: local`) the message. `remote` (reporting
/// to Razor and the like) is not done and so not listed in the answer, as spamd without
/// those plugins.
async fn tell(
    req: &protocol::Request,
    pipeline: &Pipeline,
    message: Vec<u8>,
) -> Result<Vec<u8>, ProtoError> {
    // Both a missing store and one that does not answer are spamd's "service unavailable".
    let fail = |e: LearnError| ProtoError {
        code: protocol::EX_UNAVAILABLE,
        text: format!("TELL: {e}"),
    };
    let user = req.user.as_deref();
    let (mut did_set, mut did_remove) = (false, false);
    let remove = req.tells("remove");
    if let Some(class) = req.tell_class()? {
        let class = if class == "spam" {
            Class::Spam
        } else {
            Class::Ham
        };
        let copy = if remove { message.clone() } else { Vec::new() };
        let l = pipeline
            .learn(user, Some(class), message)
            .await
            .map_err(fail)?;
        did_set = matches!(l, Learned::New | Learned::Flipped);
        if remove {
            let l = pipeline.learn(user, None, copy).await.map_err(fail)?;
            did_remove = l == Learned::Forgotten;
        }
    } else if remove {
        let l = pipeline.learn(user, None, message).await.map_err(fail)?;
        did_remove = l == Learned::Forgotten;
    }
    Ok(protocol::told(did_set, did_remove))
}
