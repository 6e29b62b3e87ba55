//! Shared helpers for the wire tests: a configured amavisd on 127.0.0.1:0 in front of a
//! scripted sink, and a raw SMTP client that reads whole (multi-line) replies.
#![allow(dead_code)]

pub mod postfix;

use amavisd::config::{Config, ListenProtocol, Listener};
use amavisd::server::{self, Running};
use amavisd_testing::sink::{Sink, SinkMode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A config listening on 127.0.0.1:0 and forwarding to `forward`, with short timeouts and no
/// virus scanner and no SQL log (the tests of those configure them); [`valid`] validates it.
pub fn config(forward: &str, tempdir: &std::path::Path) -> Config {
    let mut c = Config {
        myhostname: "filter.example.com".into(),
        listen: vec![Listener {
            inet: Some("127.0.0.1:0".into()),
            unix: None,
            protocol: ListenProtocol::Auto,
        }],
        forward_method: forward.into(),
        tempdir: tempdir.to_path_buf(),
        pid_file: tempdir.join("amavisd.pid"),
        ..Config::default()
    };
    c.forward.connect_timeout = 2;
    c.forward.command_timeout = 2;
    c.forward.data_done_timeout = 2;
    c.av.primary.clear();
    // The spam engine loads SpamAssassin's rules (a second or so); tests/spam_*.rs turn it on.
    c.spam.enabled = false;
    // No DNS from tests but tests/dns_rules.rs (with its own server): results must not
    // depend on the world's blocklists or on this host's resolver.
    c.dns.enabled = false;
    // No SQL log unless a test asks for one (tests/sql_*.rs); quarantine files in the
    // test's own folder.
    c.sql.url.clear();
    c.quarantine.directory = tempdir.join("quarantine");
    c.release.unix = tempdir.join("release.sock");
    c
}

/// `c` validated, as the filter takes it.
pub fn valid(c: Config) -> amavisd::config::ValidConfig {
    c.validate(std::path::Path::new("test"))
        .expect("test config")
}

/// amavisd in front of a sink.
pub struct Rig {
    pub sink: Arc<Sink>,
    pub server: Running,
    pub addr: SocketAddr,
    pub tmp: tempfile::TempDir,
    sink_task: tokio::task::JoinHandle<()>,
}

impl Rig {
    /// Starts a sink in `mode` and amavisd forwarding to it over SMTP (or LMTP).
    pub async fn start(mode: SinkMode, lmtp_out: bool) -> Rig {
        Self::start_with(mode, lmtp_out, |_| {}).await
    }

    /// Same, with a chance to change the configuration.
    pub async fn start_with(
        mode: SinkMode,
        lmtp_out: bool,
        tweak: impl FnOnce(&mut Config),
    ) -> Rig {
        let sink = Sink::new(mode, true);
        let (port, sink_task) = sink.spawn().await.expect("sink");
        let tmp = tempfile::tempdir().expect("tempdir");
        let proto = if lmtp_out { "lmtp" } else { "smtp" };
        let mut cfg = config(&format!("{proto}:[127.0.0.1]:{port}"), tmp.path());
        tweak(&mut cfg);
        let server = server::start(valid(cfg)).await.expect("server");
        let addr = server.addrs[0];
        Rig {
            sink,
            server,
            addr,
            tmp,
            sink_task,
        }
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    pub async fn stop(self) {
        self.server.stop().await;
        self.sink_task.abort();
    }
}

/// A raw SMTP/LMTP client over any stream (TCP, or a duplex pipe in the in-memory tests).
pub struct Client<S = TcpStream> {
    pub stream: S,
    buf: Vec<u8>,
    pub greeting: String,
}

impl Client<TcpStream> {
    pub async fn connect(addr: SocketAddr) -> Client {
        Self::from_stream(TcpStream::connect(addr).await.expect("connect")).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Wraps a connected stream and reads the greeting.
    pub async fn from_stream(stream: S) -> Client<S> {
        let mut c = Client {
            stream,
            buf: Vec::new(),
            greeting: String::new(),
        };
        c.greeting = c.reply().await;
        c
    }

    /// Reads one whole reply (all its lines), with a 20 s safety timeout; `<EOF>` marks a
    /// closed connection.
    pub async fn reply(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(20), self.reply_inner())
            .await
            .expect("reply within 20 s")
    }

    async fn reply_inner(&mut self) -> String {
        let mut out = String::new();
        loop {
            while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let line = String::from_utf8_lossy(&line).into_owned();
                out.push_str(&line);
                if line.as_bytes().get(3) != Some(&b'-') {
                    return out;
                }
            }
            let mut tmp = [0u8; 8192];
            let n = self.stream.read(&mut tmp).await.unwrap_or(0);
            if n == 0 {
                out.push_str("<EOF>");
                return out;
            }
            self.buf.extend_from_slice(&tmp[..n]);
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Sends a command line (CRLF added) and returns the reply.
    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// The code and enhanced code of the reply to `line` ("250 2.1.0").
    pub async fn code(&mut self, line: &str) -> String {
        let r = self.cmd(line).await;
        r.get(..9).unwrap_or(&r).to_string()
    }

    /// EHLO, MAIL, RCPTs, DATA, message (dot-stuffed here), and returns the reply after the
    /// dot (SMTP: one; LMTP: one per accepted recipient, joined).
    pub async fn send_mail(
        &mut self,
        lmtp: bool,
        from: &str,
        rcpts: &[&str],
        msg: &[u8],
    ) -> String {
        let hello = if lmtp {
            "LHLO client.example"
        } else {
            "EHLO client.example"
        };
        assert!(self.cmd(hello).await.starts_with("250"));
        let r = self.cmd(&format!("MAIL FROM:<{from}>")).await;
        assert!(r.starts_with("250"), "{r}");
        let mut accepted = 0;
        for rc in rcpts {
            if self
                .cmd(&format!("RCPT TO:<{rc}>"))
                .await
                .starts_with("250")
            {
                accepted += 1;
            }
        }
        let r = self.cmd("DATA").await;
        assert!(r.starts_with("354"), "{r}");
        self.send(&stuff(msg)).await;
        let n = if lmtp { accepted } else { 1 };
        let mut out = String::new();
        for _ in 0..n {
            out.push_str(&self.reply().await);
        }
        out
    }
}

/// A loopback port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Dot-stuffs and terminates a message for DATA.
pub fn stuff(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 8);
    let mut sol = true;
    for &b in msg {
        if sol && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        sol = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

pub const SIMPLE: &[u8] = b"From: s@example.org\r\nTo: u@example.com\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nSubject: hi\r\nMessage-ID: <m1@example.org>\r\n\r\nHello.\r\n";

/// Waits until `f` holds, up to 10 s.
pub async fn eventually(f: impl FnMut() -> bool) -> bool {
    eventually_for(Duration::from_secs(10), f).await
}

/// Waits until `f` holds, up to `limit`.
pub async fn eventually_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..(limit.as_millis() / 50) {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// One transaction with an XFORWARD line (empty: none); the reply (LMTP: all of them).
pub async fn send_xf(
    addr: SocketAddr,
    lmtp: bool,
    xforward: &str,
    from: &str,
    rcpts: &[&str],
    msg: &[u8],
) -> String {
    let mut c = Client::connect(addr).await;
    let hello = if lmtp { "LHLO t" } else { "EHLO t" };
    assert!(c.cmd(hello).await.starts_with("250"));
    if !xforward.is_empty() {
        let r = c.cmd(&format!("XFORWARD {xforward}")).await;
        assert!(r.starts_with("250"), "{r}");
    }
    assert!(
        c.cmd(&format!("MAIL FROM:<{from}>"))
            .await
            .starts_with("250")
    );
    for r in rcpts {
        assert!(c.cmd(&format!("RCPT TO:<{r}>")).await.starts_with("250"));
    }
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(&stuff(msg)).await;
    let mut out = String::new();
    for _ in 0..if lmtp { rcpts.len() } else { 1 } {
        out.push_str(&c.reply().await);
    }
    out
}

/// Runs the real spamc against our listener.
pub async fn spamc(port: u16, args: &[&str], input: &[u8]) -> (i32, String) {
    use std::process::Stdio;
    let mut child = tokio::process::Command::new("spamc")
        .args(["-d", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spamc (apt-get install spamc; .ci/run does)");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).await.expect("write");
    drop(stdin);
    let out = child.wait_with_output().await.expect("spamc output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// SpamAssassin's plugin files (`/etc/spamassassin/*.pre`) and `local` as local.cf, in a
/// folder of their own: a site configuration a test may change without touching the host's.
pub fn spamassassin_site(local: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    for e in std::fs::read_dir("/etc/spamassassin").expect("/etc/spamassassin (spamassassin)") {
        let p = e.expect("dir entry").path();
        if p.extension().is_some_and(|x| x == "pre") {
            let name = p.file_name().expect("file name");
            std::fs::copy(&p, d.path().join(name)).expect("copy a .pre file");
        }
    }
    std::fs::write(d.path().join("local.cf"), local).expect("write local.cf");
    d
}

/// The X-Spam-Status field of a delivered copy, unfolded.
pub fn spam_status(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data).into_owned();
    let start = text.find("X-Spam-Status:").expect("X-Spam-Status");
    let end = text[start..]
        .find("\r\n\r\n")
        .map_or(text.len(), |e| start + e);
    text[start..end]
        .replace("\r\n\t", " ")
        .replace("\r\n ", " ")
}
