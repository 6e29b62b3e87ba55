//! The milter front end: a raw milter client speaking protocol 6 as Postfix does (what each
//! verdict becomes, bad input), and Postfix itself with `smtpd_milters` pointed at us (the
//! SMTP client hears our answer at DATA; nothing is lost).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod av_common;
mod common;
mod decode_common;
use common::postfix::Postfix;
use common::*;
use decode_common::*;

use amavisd::config::Config;
use amavisd::milter::MilterListener;
use amavisd_testing::sink::{Sink, SinkMode};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn listener() -> MilterListener {
    MilterListener {
        inet: Some("127.0.0.1:0".into()),
        unix: None,
        policy_bank: String::new(),
        authenticated_bank: "ORIGINATING".into(),
        hold_blocked: false,
        idle_timeout: 5,
        max_connections: 8,
    }
}

/// amavisd with one milter listener; the next hop is a closed port (the milter path must
/// never deliver).
async fn start(
    tweak: impl FnOnce(&mut Config),
) -> (amavisd::server::Running, SocketAddr, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = config(&format!("smtp:[127.0.0.1]:{}", free_port()), tmp.path());
    c.milter = vec![listener()];
    tweak(&mut c);
    let server = amavisd::server::start(valid(c)).await.unwrap();
    let addr = server.milter_addrs[0];
    (server, addr, tmp)
}

fn packet(cmd: u8, data: &[u8]) -> Vec<u8> {
    let mut p = ((data.len() + 1) as u32).to_be_bytes().to_vec();
    p.push(cmd);
    p.extend_from_slice(data);
    p
}

fn strings(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(p);
        out.push(0);
    }
    out
}

/// A milter client as Postfix's smtpd is one.
struct Mta {
    s: TcpStream,
    /// The protocol flags the filter chose (which commands it does not answer).
    proto: u32,
}

impl Mta {
    async fn connect(addr: SocketAddr) -> Mta {
        let mut m = Mta {
            s: TcpStream::connect(addr).await.unwrap(),
            proto: 0,
        };
        // Version 6, every action, every protocol flag Postfix 3 offers.
        let mut o = 6u32.to_be_bytes().to_vec();
        o.extend_from_slice(&0x1ffu32.to_be_bytes());
        o.extend_from_slice(&0x1f_ffffu32.to_be_bytes());
        let r = m.ask(b'O', &o).await;
        assert_eq!(r[0].0, b'O', "{r:?}");
        m.proto = u32::from_be_bytes(r[0].1[8..12].try_into().unwrap());
        // No reply to headers, connect, HELO, MAIL, RCPT: no round trip per field.
        assert_eq!(m.proto & 0xf080, 0xf080, "{:#x}", m.proto);
        m
    }

    /// A command the filter answers with "continue" unless it negotiated no reply (`flag`).
    async fn step(&mut self, cmd: u8, data: &[u8], flag: u32) {
        if self.proto & flag != 0 {
            self.send(cmd, data).await;
        } else {
            assert_eq!(self.ask(cmd, data).await[0].0, b'c');
        }
    }

    async fn send(&mut self, cmd: u8, data: &[u8]) {
        self.s.write_all(&packet(cmd, data)).await.unwrap();
    }

    async fn read(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut len = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(60), self.s.read_exact(&mut len))
            .await
            .expect("answer in time")
            .ok()?;
        let mut p = vec![0u8; u32::from_be_bytes(len) as usize];
        self.s.read_exact(&mut p).await.ok()?;
        Some((p[0], p[1..].to_vec()))
    }

    /// Sends a command and reads answers up to a final one.
    async fn ask(&mut self, cmd: u8, data: &[u8]) -> Vec<(u8, Vec<u8>)> {
        self.send(cmd, data).await;
        let mut out = Vec::new();
        while let Some((c, d)) = self.read().await {
            out.push((c, d));
            if matches!(c, b'O' | b'c' | b'a' | b'r' | b'd' | b't' | b'y') {
                break;
            }
        }
        out
    }

    /// A whole message; the answers to end of message.
    async fn message(&mut self, from: &str, rcpts: &[&str], msg: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut c = b"client.example\x004".to_vec();
        c.extend_from_slice(&25u16.to_be_bytes());
        c.extend_from_slice(b"192.0.2.10\0");
        self.step(b'C', &c, 0x1000).await;
        self.step(b'H', b"client.example\0", 0x2000).await;
        self.send(
            b'D',
            &[b"M".as_slice(), &strings(&[b"i", b"4QUEUEID"])].concat(),
        )
        .await;
        let mail = format!("<{from}>");
        self.step(b'M', &strings(&[mail.as_bytes()]), 0x4000).await;
        for r in rcpts {
            let r = format!("<{r}>");
            self.step(b'R', &strings(&[r.as_bytes()]), 0x8000).await;
        }
        let (head, body) = split(msg);
        for f in amavisd::message::header_edit::fields(head) {
            let colon = f.iter().position(|&b| b == b':').unwrap();
            // Postfix with SMFIP_HDR_LEADSPC: the value as it stood, space included,
            // continuation lines with LF alone.
            let value = f[colon + 1..f.len() - 2].to_vec();
            let value: Vec<u8> = value.into_iter().filter(|&b| b != b'\r').collect();
            self.step(b'L', &strings(&[&f[..colon], &value]), 0x80)
                .await;
        }
        assert_eq!(self.ask(b'N', b"").await[0].0, b'c');
        for chunk in body.chunks(65535) {
            assert_eq!(self.ask(b'B', chunk).await[0].0, b'c');
        }
        self.ask(b'E', b"").await
    }
}

fn split(msg: &[u8]) -> (&[u8], &[u8]) {
    let at = msg.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (&msg[..at + 2], &msg[at + 4..])
}

/// The final answer and the header edits before it, as text.
fn shown(answers: &[(u8, Vec<u8>)]) -> Vec<String> {
    answers
        .iter()
        .map(|(c, d)| {
            format!(
                "{} {}",
                *c as char,
                String::from_utf8_lossy(d).replace('\0', "|")
            )
        })
        .collect()
}

const CLEAN: &[u8] = b"From: a@example.org\r\nTo: u@example.com\r\nSubject: hi\r\nX-Spam-Flag: YES\r\nMessage-ID: <m1@example.org>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nHello.\r\n";

#[tokio::test]
async fn verdicts_become_milter_answers() {
    let (server, addr, tmp) = start(|c| {
        let lover: toml::Table = "banned_files_lover = true".parse().unwrap();
        c.recipients.insert("lover@example.com".into(), lover);
        c.policy.final_banned_destiny = amavisd::message::Destiny::Reject;
    })
    .await;
    let mut m = Mta::connect(addr).await;

    // Clean: accepted, our field on top, the forged X-Spam-Flag of a local recipient gone.
    let a = shown(&m.message("s@example.org", &["u@example.com"], CLEAN).await);
    assert_eq!(a.last().unwrap(), "a ", "{a:?}");
    assert!(
        a.iter()
            .any(|x| x.starts_with("i ||||X-Virus-Scanned| amavisd-rs at")),
        "{a:?}"
    );
    assert!(a.contains(&"m |||\u{1}X-Spam-Flag||".to_string()), "{a:?}");

    // Banned for one of two (the other loves it): accepted for the lover, the other removed.
    let a = shown(
        &m.message(
            "s@example.org",
            &["lover@example.com", "other@example.com"],
            &exe_mail(),
        )
        .await,
    );
    assert_eq!(a.last().unwrap(), "a ", "{a:?}");
    assert!(a.contains(&"- <other@example.com>|".to_string()), "{a:?}");

    // Banned for all, destiny reject: our 5xx, and a copy in the quarantine.
    let a = shown(
        &m.message("s@example.org", &["other@example.com"], &exe_mail())
            .await,
    );
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(a[0].starts_with("y 554 5.7.0 Reject, id="), "{a:?}");
    assert!(a[0].contains("BANNED"), "{a:?}");
    let kept = std::fs::read_dir(tmp.path().join("quarantine"))
        .unwrap()
        .count();
    assert!(kept >= 1);
    drop(m);
    server.stop().await;
}

#[tokio::test]
async fn discard_and_the_hold_queue() {
    let (server, addr, _tmp) = start(|c| {
        c.milter.push(MilterListener {
            hold_blocked: true,
            ..listener()
        });
    })
    .await;
    // Banned, amavisd-new's default destiny (discard).
    let mut m = Mta::connect(addr).await;
    let a = shown(
        &m.message("s@example.org", &["u@example.com"], &exe_mail())
            .await,
    );
    assert_eq!(a, ["d "], "{a:?}");
    // The listener that holds: accepted into the hold queue with the reason.
    let mut h = Mta::connect(server.milter_addrs[1]).await;
    let a = shown(
        &h.message("s@example.org", &["u@example.com"], &exe_mail())
            .await,
    );
    assert_eq!(a.last().unwrap(), "a ", "{a:?}");
    assert!(
        a.iter()
            .any(|x| x.starts_with("q amavisd-rs id=") && x.contains("BANNED")),
        "{a:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_scanner_down_is_a_tempfail() {
    let (server, addr, tmp) = start(|c| {
        c.av.primary = vec![av_common::clamd_at(
            std::env::temp_dir().join("no-clamd-here.sock"),
            2,
        )];
    })
    .await;
    let _ = tmp;
    let mut m = Mta::connect(addr).await;
    let a = shown(&m.message("s@example.org", &["u@example.com"], CLEAN).await);
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(a[0].starts_with("y 451 4."), "{a:?}");
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_end_and_the_listener_survives() {
    let (server, addr, _tmp) = start(|c| {
        c.limits.message_size_limit = 100_000;
        c.limits.header_size_limit = 20_000;
    })
    .await;
    // An unknown command, a hostile length, a packet cut short: each ends its connection.
    for bytes in [
        packet(b'Z', b"what"),
        u32::MAX.to_be_bytes().to_vec(),
        packet(b'L', b"Subject\0no terminator"),
        b"\0\0\x01\0Lshort".to_vec(),
    ] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&bytes).await.unwrap();
        s.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await;
        assert!(r.is_ok(), "connection not closed for {bytes:?}");
    }
    // Silence: the session ends after idle_timeout (5 s here), not never.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut rest = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut rest)).await;
    assert!(r.is_ok(), "a silent MTA holds the session");
    // Over the size limit: 552, permanent, at the body.
    let mut m = Mta::connect(addr).await;
    let mut big = CLEAN.to_vec();
    big.extend(std::iter::repeat_n(b'x', 200_000));
    m.step(b'M', &strings(&[b"<s@example.org>"]), 0x4000).await;
    m.step(b'R', &strings(&[b"<u@example.com>"]), 0x8000).await;
    m.send(b'N', b"").await;
    assert_eq!(m.read().await.unwrap().0, b'c');
    let r = m.ask(b'B', &big[..60_000]).await;
    assert_eq!(r[0].0, b'c');
    let r = shown(&m.ask(b'B', &big[60_000..120_000]).await);
    assert!(r[0].starts_with("y 552 5.3.4"), "{r:?}");
    m.send(b'A', b"").await;
    // A header section over its limit, sent without replies (NR_HDR): the refusal comes
    // at the end of the headers, permanent.
    let mut m = Mta::connect(addr).await;
    m.step(b'M', &strings(&[b"<s@example.org>"]), 0x4000).await;
    m.step(b'R', &strings(&[b"<u@example.com>"]), 0x8000).await;
    let long = vec![b'v'; 900];
    for _ in 0..30 {
        m.step(b'L', &strings(&[b"X-Long", &long]), 0x80).await;
    }
    let r = shown(&m.ask(b'N', b"").await);
    assert!(r[0].starts_with("y 552 5.3.4"), "{r:?}");
    m.send(b'A', b"").await;
    // And the listener still serves a good message.
    let mut m = Mta::connect(addr).await;
    let a = shown(&m.message("s@example.org", &["u@example.com"], CLEAN).await);
    assert_eq!(a.last().unwrap(), "a ", "{a:?}");
    server.stop().await;
}

/// Postfix's smtpd with our milter: the SMTP client hears our answer at end of DATA.
struct Before {
    server: amavisd::server::Running,
    pf: Postfix,
    sink: std::sync::Arc<Sink>,
    sink_task: tokio::task::JoinHandle<()>,
    smtpd: u16,
    _tmp: tempfile::TempDir,
}

impl Before {
    async fn start(tweak: impl FnOnce(&mut Config)) -> Before {
        let sink = Sink::new(SinkMode::Accept, true);
        let (sink_port, sink_task) = sink.spawn().await.unwrap();
        let (server, addr, tmp) = start(tweak).await;
        let smtpd = free_port();
        let main = format!(
            "smtpd_milters = inet:127.0.0.1:{}\n\
             milter_protocol = 6\n\
             milter_default_action = tempfail\n\
             milter_content_timeout = 120s\n",
            addr.port()
        );
        let pf = Postfix::start(smtpd, sink_port, &main, "");
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", smtpd)).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Before {
            server,
            pf,
            sink,
            sink_task,
            smtpd,
            _tmp: tmp,
        }
    }

    /// One message through Postfix; the reply to its DATA.
    async fn send(&self, msg: &[u8]) -> String {
        let mut c = Client::connect(format!("127.0.0.1:{}", self.smtpd).parse().unwrap()).await;
        assert!(c.cmd("EHLO client.example").await.starts_with("250"));
        let r = c.cmd("MAIL FROM:<s@example.org>").await;
        assert!(r.starts_with("250"), "{r}");
        let r = c.cmd("RCPT TO:<u@example.com>").await;
        assert!(r.starts_with("250"), "{r}");
        assert!(c.cmd("DATA").await.starts_with("354"));
        c.send(&stuff(msg)).await;
        let r = c.reply().await;
        c.cmd("QUIT").await;
        r
    }

    async fn stop(self) {
        drop(self.pf);
        self.server.stop().await;
        self.sink_task.abort();
    }
}

fn with_clamd_and_spam(c: &mut Config) {
    c.av.primary = vec![av_common::clamd_at(av_common::clamd_socket(), 30)];
    c.spam.enabled = true;
    c.spam.rules_dir = "/usr/share/spamassassin".into();
    c.spam.site_dir = "/etc/spamassassin".into();
    c.policy.final_virus_destiny = amavisd::message::Destiny::Reject;
    c.policy.final_spam_destiny = amavisd::message::Destiny::Reject;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postfix_rejects_viruses_and_spam_at_data_and_passes_the_rest() {
    let rig = Before::start(with_clamd_and_spam).await;
    // The test clamd knows EICAR by its hash: a part decoded to exactly those bytes.
    let virus = mail_with_attachment(
        "filename=\"e.txt\"",
        &av_common::eicar(),
        "application/octet-stream",
    );
    let r = rig.send(&virus).await;
    assert!(
        r.starts_with("554 5.7.0 Reject, id="),
        "{r}\n{}",
        rig.pf.maillog()
    );
    assert!(r.contains("INFECTED"), "{r}");

    let gtube = b"From: a@example.org\r\nTo: u@example.com\r\nSubject: s\r\n\r\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n";
    let r = rig.send(gtube).await;
    assert!(r.starts_with("554 5.7.0 Reject, id="), "{r}");
    assert!(r.contains("SPAM"), "{r}");

    let r = rig.send(CLEAN).await;
    assert!(r.starts_with("250"), "{r}\n{}", rig.pf.maillog());
    let arrived = eventually_for(Duration::from_secs(60), || !rig.sink.received().is_empty()).await;
    assert!(arrived, "nothing delivered:\n{}", rig.pf.maillog());
    let got = String::from_utf8_lossy(&rig.sink.received()[0].data).into_owned();
    assert!(got.contains("X-Virus-Scanned: amavisd-rs at"), "{got}");
    // The incoming X-Spam-Flag (forged: the verdict is ours) is gone; below the tag level
    // no spam fields of ours are added.
    assert!(!got.contains("X-Spam-"), "{got}");
    assert!(got.ends_with("\r\n\r\nHello.\r\n"), "{got}");
    // Refused mail was never queued; accepted mail left.
    let ok = eventually_for(Duration::from_secs(30), || {
        rig.pf.queue().contains("Mail queue is empty")
    })
    .await;
    assert!(ok, "{}", rig.pf.queue());
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postfix_tempfails_when_the_scanner_is_down() {
    let rig = Before::start(|c| {
        c.av.primary = vec![av_common::clamd_at(
            std::env::temp_dir().join("no-clamd-here.sock"),
            2,
        )];
    })
    .await;
    let r = rig.send(CLEAN).await;
    assert!(r.starts_with("451 4."), "{r}\n{}", rig.pf.maillog());
    assert!(rig.sink.received().is_empty());
    assert!(
        rig.pf.queue().contains("Mail queue is empty"),
        "{}",
        rig.pf.queue()
    );
    rig.stop().await;
}
