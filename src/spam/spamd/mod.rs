//! A spamd-protocol listener (`[spam] spamd_listen`), so spamc and other spamd clients can
//! use the embedded engine: one request per connection, the message read whole (bounded by
//! [`MAX_MESSAGE`]), scanned on the blocking pool with the rules in force at that moment.

pub mod protocol;

use crate::spam::engine::Rules;
use crate::spam::scan::Options;
use protocol::{ProtoError, Verb};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Largest message accepted: spamc itself sends at most 500 KB unless told otherwise (-s);
/// 64 MiB bounds memory for clients that do not limit themselves.
pub const MAX_MESSAGE: usize = 64 << 20;

/// How long a client may take to send its request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the listener gets the rules: the pipeline's, which change on reload.
pub type RulesSource = Arc<dyn Fn() -> Option<Arc<Rules>> + Send + Sync>;

/// Accepts spamc connections until `shutdown` turns true.
pub async fn serve(listener: TcpListener, rules: RulesSource, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    return;
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let rules = Arc::clone(&rules);
                    tokio::spawn(async move {
                        if let Err(e) = session(stream, rules).await {
                            tracing::debug!("spamd session: {e}");
                        }
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

async fn session(mut stream: TcpStream, rules: RulesSource) -> std::io::Result<()> {
    let reply = match tokio::time::timeout(READ_TIMEOUT, request(&mut stream, rules)).await {
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
    rules: RulesSource,
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
        // Learning is Bayes' job (issue 9); until then TELL says so instead of pretending.
        return Err(ProtoError {
            code: protocol::EX_UNAVAILABLE,
            text: "TELL: learning is not available (no Bayes store yet)".into(),
        });
    }
    let Some(rules) = rules() else {
        return Err(ProtoError {
            code: protocol::EX_UNAVAILABLE,
            text: "the spam engine is off ([spam] enabled = false)".into(),
        });
    };
    let verb = req.verb;
    tokio::task::spawn_blocking(move || {
        let o = rules.check(&message, "", Options::default());
        protocol::answer(verb, &o, &message)
    })
    .await
    .map(Some)
    .map_err(|e| ProtoError {
        code: protocol::EX_SOFTWARE,
        text: format!("internal error: {}", crate::catch_panic::join_error_text(e)),
    })
}
