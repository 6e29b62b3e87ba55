//! The session state machine in memory: the stream is a `tokio::io::duplex`, the handler a test
//! double that records what it was given.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::Client;

use amavisd::config::{Limits, ListenProtocol};
use amavisd::message::{ClientInfo, Envelope, Outcome, Reply, Spool};
use amavisd::smtp_in::{MessageHandler, Session, SessionSettings};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::watch;

#[derive(Default)]
struct Recorder {
    got: Mutex<Vec<(Envelope, Vec<u8>, bool)>>,
    panic_on: Option<&'static str>,
}

impl MessageHandler for Recorder {
    async fn handle(&self, envelope: Envelope, spool: Spool) -> Outcome {
        if let Some(p) = self.panic_on
            && envelope.mail_from == p
        {
            panic!("check blew up");
        }
        let mut data = Vec::new();
        spool
            .reader()
            .await
            .unwrap()
            .read_to_end(&mut data)
            .await
            .unwrap();
        let n = envelope.recipients.len();
        let per: Vec<Reply> = envelope
            .recipients
            .iter()
            .map(|r| Reply::new(250, "2.0.0", format!("<{}> ok", r.address)))
            .collect();
        self.got
            .lock()
            .unwrap()
            .push((envelope, data, spool.on_disk()));
        Outcome {
            message: Reply::new(250, "2.0.0", format!("Ok, {n} recipients")),
            per_recipient: per,
        }
    }
}

struct T {
    c: Client<DuplexStream>,
    task: tokio::task::JoinHandle<()>,
    handler: Arc<Recorder>,
    _shutdown: watch::Sender<bool>,
    _tmp: tempfile::TempDir,
}

fn limits() -> Limits {
    Limits {
        idle_timeout: 5,
        command_timeout: 5,
        data_timeout: 5,
        ..Limits::default()
    }
}

async fn start_with(proto: ListenProtocol, limits: Limits, handler: Recorder) -> T {
    let (client, server) = tokio::io::duplex(1 << 16);
    let tmp = tempfile::tempdir().unwrap();
    let set = SessionSettings {
        hostname: "filter.example.com".into(),
        protocol: proto,
        limits,
        tempdir: tmp.path().to_path_buf(),
    };
    let handler = Arc::new(handler);
    let (tx, rx) = watch::channel(false);
    let session = Session::new(server, set, Arc::clone(&handler), ClientInfo::default(), rx);
    let task = tokio::spawn(session.run());
    let c = Client::from_stream(client).await;
    assert!(
        c.greeting.starts_with("220 filter.example.com ESMTP"),
        "{}",
        c.greeting
    );
    T {
        c,
        task,
        handler,
        _shutdown: tx,
        _tmp: tmp,
    }
}

async fn start() -> T {
    start_with(ListenProtocol::Auto, limits(), Recorder::default()).await
}

impl std::ops::Deref for T {
    type Target = Client<DuplexStream>;
    fn deref(&self) -> &Self::Target {
        &self.c
    }
}

impl std::ops::DerefMut for T {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.c
    }
}

#[tokio::test]
async fn ehlo_advertises_extensions() {
    let mut t = start().await;
    let r = t.cmd("EHLO mx.example.org").await;
    for kw in [
        "PIPELINING",
        "SIZE 52428800",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "DSN",
        "VRFY",
        "XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE",
    ] {
        assert!(r.contains(kw), "missing {kw} in {r}");
    }
    assert!(t.cmd("HELO mx").await.starts_with("250 filter.example.com"));
    assert!(t.cmd("QUIT").await.starts_with("221 2.0.0"));
}

#[tokio::test]
async fn sequence_errors_have_enhanced_codes() {
    let mut t = start().await;
    assert_eq!(t.code("MAIL FROM:<a@b>").await, "503 5.5.1");
    assert_eq!(t.code("XFORWARD ADDR=1.2.3.4").await, "503 5.5.1");
    t.cmd("EHLO x").await;
    assert_eq!(t.code("RCPT TO:<a@b>").await, "503 5.5.1");
    assert_eq!(t.code("DATA").await, "503 5.5.1");
    assert_eq!(t.code("MAIL FROM:<a@b>").await, "250 2.1.0");
    assert_eq!(t.code("MAIL FROM:<a@b>").await, "503 5.5.1");
    assert_eq!(t.code("XFORWARD ADDR=1.2.3.4").await, "503 5.5.1");
    assert_eq!(t.code("DATA").await, "503 5.5.1");
    assert_eq!(t.code("RSET").await, "250 2.0.0");
    assert_eq!(t.code("NOOP").await, "250 2.0.0");
    assert_eq!(t.code("VRFY postmaster").await, "252 2.0.0");
    assert_eq!(t.code("HELP").await, "214 2.0.0");
    assert_eq!(t.code("STARTTLS").await, "502 5.5.1");
    assert_eq!(t.code("BDAT 10 LAST").await, "502 5.5.1");
}

#[tokio::test]
async fn malformed_commands() {
    let mut t = start().await;
    t.cmd("EHLO x").await;
    for (line, want) in [
        ("FOO", "502 5.5.2"),
        ("", "502 5.5.2"),
        ("EHLO", "501 5.5.4"),
        ("MAIL FROM:a@b", "501 5.5.4"),
        ("MAIL FROM:<a@b", "501 5.5.4"),
        ("MAIL TO:<a@b>", "501 5.5.4"),
        ("MAIL FROM:<a b@c>", "501 5.1.7"),
        ("MAIL FROM:<a@b> FOO=BAR", "555 5.5.4"),
        ("MAIL FROM:<a@b> SIZE=abc", "501 5.5.4"),
        ("MAIL FROM:<a@b> BODY=BINARYMIME", "504 5.5.4"),
        ("MAIL FROM:<a@b> RET=NONE", "501 5.5.4"),
        ("DATA x", "501 5.5.4"),
        ("XFORWARD FOO=1", "501 5.5.4"),
    ] {
        assert_eq!(t.code(line).await, want, "{line:?}");
    }
    t.cmd("MAIL FROM:<a@b>").await;
    for (line, want) in [
        ("RCPT TO:<>", "501 5.1.3"),
        ("RCPT TO:a@b", "501 5.5.4"),
        ("RCPT TO:<a@b> NOTIFY=SOMETIMES", "501 5.5.4"),
        ("RCPT TO:<a@b> XFOO=1", "555 5.5.4"),
    ] {
        assert_eq!(t.code(line).await, want, "{line:?}");
    }
}

#[tokio::test]
async fn nul_and_non_utf8_bytes() {
    let mut t = start().await;
    t.send(b"EHLO a\0b\r\n").await;
    assert!(t.reply().await.starts_with("500 5.5.2"));
    t.send(b"MAIL FROM:<\xff\xfe@x>\r\n").await;
    assert!(t.reply().await.starts_with("500 5.5.2"));
    // UTF-8 addresses are fine (SMTPUTF8).
    t.cmd("EHLO x").await;
    assert_eq!(
        t.code("MAIL FROM:<jösé@exämple.org> SMTPUTF8").await,
        "250 2.1.0"
    );
}

#[tokio::test]
async fn overlong_line_is_discarded_and_session_survives() {
    let mut t = start().await;
    let mut long = b"EHLO ".to_vec();
    long.extend(std::iter::repeat_n(b'x', 100_000));
    long.extend_from_slice(b"\r\n");
    t.send(&long).await;
    assert!(t.reply().await.starts_with("500 5.5.2"));
    assert!(t.cmd("EHLO ok").await.starts_with("250"));
}

#[tokio::test]
async fn error_limit_closes_with_421() {
    let mut t = start_with(
        ListenProtocol::Auto,
        Limits {
            error_limit: 3,
            ..limits()
        },
        Recorder::default(),
    )
    .await;
    t.cmd("FOO").await;
    t.cmd("BAR").await;
    assert!(t.cmd("BAZ").await.starts_with("502 5.5.2"));
    let r = t.reply().await;
    assert!(r.starts_with("421 4.7.0"), "{r}");
    assert!(t.reply().await.contains("<EOF>"));
}

#[tokio::test]
async fn transaction_passes_envelope_and_params_raw() {
    let mut t = start().await;
    t.cmd("EHLO mx.example.org").await;
    assert_eq!(
        t.code("XFORWARD NAME=client.example.net ADDR=192.0.2.7 PORT=4711")
            .await,
        "250 2.0.0"
    );
    assert_eq!(
        t.code("XFORWARD PROTO=ESMTP HELO=client.example.net IDENT=4Xyz SOURCE=REMOTE")
            .await,
        "250 2.0.0"
    );
    assert_eq!(
        t.code("MAIL FROM:<s@example.org> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=a+2Bb AUTH=<>")
            .await,
        "250 2.1.0"
    );
    assert_eq!(
        t.code("RCPT TO:<u@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u+2Bx@example.com")
            .await,
        "250 2.1.5"
    );
    assert_eq!(t.code("DATA").await, "354 End d");
    t.send(b"Subject: x\r\n\r\n..dot line\r\n.\r\n").await;
    assert!(t.reply().await.starts_with("250 2.0.0 Ok, 1 recipients"));
    let got = t.handler.got.lock().unwrap();
    let (env, data, _) = &got[0];
    assert_eq!(data, b"Subject: x\r\n\r\n.dot line\r\n");
    assert_eq!(env.mail_from, "s@example.org");
    let wire: Vec<String> = env.mail_params.iter().map(|p| p.wire()).collect();
    assert_eq!(
        wire,
        [
            "SIZE=100",
            "BODY=8BITMIME",
            "RET=HDRS",
            "ENVID=a+2Bb",
            "AUTH=<>"
        ]
    );
    assert_eq!(
        env.recipients[0].params[1].wire(),
        "ORCPT=rfc822;u+2Bx@example.com"
    );
    let x = &env.client.xforward;
    assert_eq!(x.addr.as_deref(), Some("192.0.2.7"));
    assert_eq!(x.ident.as_deref(), Some("4Xyz"));
    assert_eq!(x.source.as_deref(), Some("REMOTE"));
    assert_eq!(env.client.helo, "mx.example.org");
}

#[tokio::test]
async fn several_transactions_and_xforward_reset() {
    let mut t = start().await;
    t.cmd("EHLO x").await;
    for i in 0..3 {
        if i == 0 {
            t.cmd("XFORWARD ADDR=192.0.2.1").await;
        }
        t.cmd(&format!("MAIL FROM:<s{i}@x>")).await;
        t.cmd("RCPT TO:<u@y>").await;
        t.cmd("DATA").await;
        t.send(b"A: b\r\n\r\nc\r\n.\r\n").await;
        assert!(t.reply().await.starts_with("250"));
    }
    let got = t.handler.got.lock().unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].0.client.xforward.addr.as_deref(), Some("192.0.2.1"));
    assert_eq!(
        got[1].0.client.xforward.addr, None,
        "XFORWARD lasts one transaction"
    );
}

#[tokio::test]
async fn pipelined_commands_answered_in_order() {
    let mut t = start().await;
    t.send(b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\nDATA\r\n")
        .await;
    assert!(t.reply().await.starts_with("250-filter"));
    assert!(t.reply().await.starts_with("250 2.1.0"));
    assert!(t.reply().await.starts_with("250 2.1.5"));
    assert!(t.reply().await.starts_with("250 2.1.5"));
    assert!(t.reply().await.starts_with("354"));
    // The end of DATA and the next commands in one write.
    t.send(b"X: y\r\n\r\nz\r\n.\r\nRSET\r\nQUIT\r\n").await;
    assert!(t.reply().await.starts_with("250 2.0.0 Ok, 2"));
    assert!(t.reply().await.starts_with("250 2.0.0"));
    assert!(t.reply().await.starts_with("221"));
}

#[tokio::test]
async fn lmtp_one_reply_per_recipient() {
    let mut t = start().await;
    assert!(t.cmd("LHLO x").await.starts_with("250-filter"));
    t.cmd("MAIL FROM:<a@b>").await;
    t.cmd("RCPT TO:<one@x>").await;
    t.cmd("RCPT TO:<two@x>").await;
    t.cmd("DATA").await;
    t.send(b"X: y\r\n\r\nz\r\n.\r\n").await;
    assert!(t.reply().await.starts_with("250 2.0.0 <one@x> ok"));
    assert!(t.reply().await.starts_with("250 2.0.0 <two@x> ok"));
}

#[tokio::test]
async fn pinned_protocols() {
    let mut t = start_with(ListenProtocol::Lmtp, limits(), Recorder::default()).await;
    assert_eq!(t.code("EHLO x").await, "500 5.5.1");
    assert_eq!(t.code("HELO x").await, "500 5.5.1");
    assert!(t.cmd("LHLO x").await.starts_with("250"));
    let mut t = start_with(ListenProtocol::Smtp, limits(), Recorder::default()).await;
    assert_eq!(t.code("LHLO x").await, "500 5.5.1");
    assert!(t.cmd("EHLO x").await.starts_with("250"));
}

#[tokio::test]
async fn recipient_limit_452() {
    let mut t = start_with(
        ListenProtocol::Auto,
        Limits {
            recipient_limit: 2,
            ..limits()
        },
        Recorder::default(),
    )
    .await;
    t.cmd("EHLO x").await;
    t.cmd("MAIL FROM:<a@b>").await;
    assert_eq!(t.code("RCPT TO:<1@x>").await, "250 2.1.5");
    assert_eq!(t.code("RCPT TO:<2@x>").await, "250 2.1.5");
    assert_eq!(t.code("RCPT TO:<3@x>").await, "452 4.5.3");
    assert_eq!(t.code("RCPT TO:<4@x>").await, "452 4.5.3");
    t.cmd("DATA").await;
    t.send(b"X: y\r\n\r\n.\r\n").await;
    assert!(t.reply().await.starts_with("250 2.0.0 Ok, 2 recipients"));
}

#[tokio::test]
async fn ten_thousand_rcpts_pipelined() {
    let mut t = start().await;
    t.cmd("EHLO x").await;
    t.cmd("MAIL FROM:<a@b>").await;
    let mut batch = Vec::new();
    for i in 0..10_000 {
        batch.extend_from_slice(format!("RCPT TO:<u{i}@example.com>\r\n").as_bytes());
    }
    // Write and read concurrently: the replies would fill the pipe otherwise.
    let (mut rd, mut wr) = tokio::io::split(t.c.stream);
    let writer = tokio::spawn(async move {
        wr.write_all(&batch).await.unwrap();
        wr.write_all(b"DATA\r\n").await.unwrap();
        wr
    });
    let mut text = Vec::new();
    let mut tmp = [0u8; 65536];
    while !text.ends_with(b"354 End data with <CR><LF>.<CR><LF>\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(30), rd.read(&mut tmp))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        text.extend_from_slice(&tmp[..n]);
    }
    let text = String::from_utf8(text).unwrap();
    assert_eq!(text.matches("250 2.1.5").count(), 1100);
    assert_eq!(text.matches("452 4.5.3").count(), 8900);
    let mut wr = writer.await.unwrap();
    wr.write_all(b"X: y\r\n\r\n.\r\n").await.unwrap();
    let n = rd.read(&mut tmp).await.unwrap();
    assert!(tmp[..n].starts_with(b"250 2.0.0 Ok, 1100 recipients"));
}

#[tokio::test]
async fn size_limit_at_mail_and_during_data() {
    let mut t = start_with(
        ListenProtocol::Auto,
        Limits {
            message_size_limit: 1000,
            ..limits()
        },
        Recorder::default(),
    )
    .await;
    t.cmd("EHLO x").await;
    assert_eq!(t.code("MAIL FROM:<a@b> SIZE=1001").await, "552 5.3.4");
    assert_eq!(
        t.code("MAIL FROM:<a@b> SIZE=99999999999999999999").await,
        "552 5.3.4"
    );
    assert_eq!(t.code("MAIL FROM:<a@b> SIZE=10").await, "250 2.1.0");
    t.cmd("RCPT TO:<u@x>").await;
    t.cmd("DATA").await;
    let mut body = b"X: y\r\n\r\n".to_vec();
    body.extend(std::iter::repeat_n(b"0123456789\r\n".as_slice(), 200).flatten());
    body.extend_from_slice(b".\r\n");
    t.send(&body).await;
    assert!(t.reply().await.starts_with("552 5.3.4"));
    assert!(t.handler.got.lock().unwrap().is_empty());
    // The session is still in step.
    assert_eq!(t.code("MAIL FROM:<a@b>").await, "250 2.1.0");
}

#[tokio::test]
async fn header_section_limit() {
    let mut t = start_with(
        ListenProtocol::Auto,
        Limits {
            header_size_limit: 1000,
            ..limits()
        },
        Recorder::default(),
    )
    .await;
    t.cmd("EHLO x").await;
    t.cmd("MAIL FROM:<a@b>").await;
    t.cmd("RCPT TO:<u@x>").await;
    t.cmd("DATA").await;
    let mut body = Vec::new();
    for i in 0..100 {
        body.extend_from_slice(format!("X-H{i}: 0123456789\r\n").as_bytes());
    }
    body.extend_from_slice(b"\r\nbody\r\n.\r\n");
    t.send(&body).await;
    let r = t.reply().await;
    assert!(r.starts_with("552 5.3.4") && r.contains("header"), "{r}");
}

#[tokio::test]
async fn bare_lf_dot_does_not_end_data() {
    let mut t = start().await;
    t.cmd("EHLO x").await;
    t.cmd("MAIL FROM:<a@b>").await;
    t.cmd("RCPT TO:<u@x>").await;
    t.cmd("DATA").await;
    // "\n.\n" and "\r\n.\n" are not the end; a smuggled MAIL stays message content. (A line
    // that starts with a dot loses it, bare LF or not: RFC 5321 §4.5.2 unstuffing.)
    t.send(b"X: y\r\n\r\nbody\n.\nMAIL FROM:<evil@x>\r\n.\nmore\r\n.\r\n")
        .await;
    let r = t.reply().await;
    assert!(r.starts_with("250"), "{r}");
    let got = t.handler.got.lock().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].1,
        b"X: y\r\n\r\nbody\n.\nMAIL FROM:<evil@x>\r\n\nmore\r\n"
    );
}

#[tokio::test]
async fn large_message_spools_to_disk_byte_exact() {
    let mut t = start_with(
        ListenProtocol::Auto,
        Limits {
            memory_spool_limit: 4096,
            ..limits()
        },
        Recorder::default(),
    )
    .await;
    t.cmd("EHLO x").await;
    t.cmd("MAIL FROM:<a@b> BODY=8BITMIME").await;
    t.cmd("RCPT TO:<u@x>").await;
    t.cmd("DATA").await;
    let mut msg = b"Subject: \xe4\xf6\xfc 8-bit\r\n\r\n".to_vec();
    msg.extend(std::iter::repeat_n(b'a', 5000));
    msg.extend_from_slice(b"\r\n\xff\x00\x01 binary-ish\r\n");
    for i in 0..2000 {
        msg.extend_from_slice(format!("line {i}\r\n").as_bytes());
    }
    let (mut rd, mut wr) = tokio::io::split(t.c.stream);
    let stuffed = {
        let mut v = msg.clone();
        v.extend_from_slice(b".\r\n");
        v
    };
    wr.write_all(&stuffed).await.unwrap();
    let mut tmp = [0u8; 1024];
    let n = rd.read(&mut tmp).await.unwrap();
    assert!(
        tmp[..n].starts_with(b"250"),
        "{}",
        String::from_utf8_lossy(&tmp[..n])
    );
    let got = t.handler.got.lock().unwrap();
    assert_eq!(got[0].1, msg);
    assert!(got[0].2, "spooled to disk");
}

#[tokio::test]
async fn panic_in_handler_gives_451_and_session_continues() {
    let rec = Recorder {
        panic_on: Some("boom@x"),
        ..Recorder::default()
    };
    let mut t = start_with(ListenProtocol::Auto, limits(), rec).await;
    t.cmd("EHLO x").await;
    t.cmd("MAIL FROM:<boom@x>").await;
    t.cmd("RCPT TO:<u@x>").await;
    t.cmd("DATA").await;
    t.send(b"X: y\r\n\r\n.\r\n").await;
    assert!(t.reply().await.starts_with("451 4.3.0"));
    t.cmd("MAIL FROM:<fine@x>").await;
    t.cmd("RCPT TO:<u@x>").await;
    t.cmd("DATA").await;
    t.send(b"X: y\r\n\r\n.\r\n").await;
    assert!(t.reply().await.starts_with("250"));
}

#[tokio::test]
async fn client_gone_mid_data_no_message() {
    let mut t = start().await;
    t.cmd("EHLO x").await;
    t.cmd("MAIL FROM:<a@b>").await;
    t.cmd("RCPT TO:<u@x>").await;
    t.cmd("DATA").await;
    t.send(b"X: y\r\n\r\npartial").await;
    let T {
        c, task, handler, ..
    } = t;
    drop(c);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert!(handler.got.lock().unwrap().is_empty());
}

#[tokio::test]
async fn timeouts_give_421_4_4_2() {
    let l = Limits {
        idle_timeout: 1,
        command_timeout: 1,
        data_timeout: 1,
        ..limits()
    };
    // Idle.
    let mut t = start_with(ListenProtocol::Auto, l.clone(), Recorder::default()).await;
    let r = t.reply().await;
    assert!(r.starts_with("421 4.4.2"), "{r}");
    // A command line that never ends.
    let mut t = start_with(ListenProtocol::Auto, l.clone(), Recorder::default()).await;
    t.send(b"EHLO trickle").await;
    assert!(t.reply().await.starts_with("421 4.4.2"));
    // Silence during DATA.
    let mut t = start_with(ListenProtocol::Auto, l, Recorder::default()).await;
    t.cmd("EHLO x").await;
    t.cmd("MAIL FROM:<a@b>").await;
    t.cmd("RCPT TO:<u@x>").await;
    t.cmd("DATA").await;
    t.send(b"X: y\r\n").await;
    assert!(t.reply().await.starts_with("421 4.4.2"));
    assert!(t.handler.got.lock().unwrap().is_empty());
}
