//! End to end with a real Postfix (Debian `postfix`), configured from the repository's own
//! `postfix/main.cf` and `postfix/master.cf` snippets, on private loopback ports:
//!
//! client (from 127.0.0.2) -> Postfix smtpd :A -> amavisfeed -> amavisd-rs :F
//!   -> Postfix smtpd :B (the 10025 service) -> queue -> smtp -> sink :S
//!
//! The test fails, never skips, when Postfix is missing: `.ci/run` installs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::postfix::Postfix;
use common::*;

use amavisd_testing::sink::{Sink, SinkMode};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Postfix in the content_filter loop: the repository's own `postfix/main.cf` and
/// `postfix/master.cf` snippets, pointed at the filter on `filter_port` and back in on
/// `reentry_port`, with `extra` main.cf lines.
fn postfix_loop(smtpd: u16, filter: u16, reentry: u16, sink: u16, extra: &str) -> Postfix {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("postfix");
    let site_main = std::fs::read_to_string(repo.join("main.cf")).unwrap();
    let site_master = std::fs::read_to_string(repo.join("master.cf")).unwrap();
    let main = format!(
        "{}\n{extra}",
        site_main.replace(":10024", &format!(":{filter}"))
    );
    let master = site_master.replace("127.0.0.1:10025", &format!("127.0.0.1:{reentry}"));
    Postfix::start(smtpd, sink, &main, &master)
}

async fn wait_port(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

/// The whole loop: a sink as the final destination, amavisd-rs, and Postfix in front of it
/// (with `extra` main.cf lines), its smtpd answering.
struct Loop {
    sink: std::sync::Arc<Sink>,
    sink_task: tokio::task::JoinHandle<()>,
    server: amavisd::server::Running,
    pf: Postfix,
    smtpd: u16,
    filter: u16,
    _tmp: tempfile::TempDir,
}

impl Loop {
    async fn start(extra: &str) -> Loop {
        let sink = Sink::new(SinkMode::Accept, true);
        let (sink_port, sink_task) = sink.spawn().await.unwrap();
        let (smtpd, filter, reentry) = (free_port(), free_port(), free_port());
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = config(&format!("smtp:[127.0.0.1]:{reentry}"), tmp.path());
        cfg.listen[0].inet = Some(format!("127.0.0.1:{filter}"));
        let server = amavisd::server::start(valid(cfg)).await.unwrap();
        let pf = postfix_loop(smtpd, filter, reentry, sink_port, extra);
        wait_port(smtpd).await;
        Loop {
            sink,
            sink_task,
            server,
            pf,
            smtpd,
            filter,
            _tmp: tmp,
        }
    }

    async fn stop(self) {
        drop(self.pf);
        self.server.stop().await;
        self.sink_task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_through_postfix_content_filter_loop() {
    let rig = Loop::start("").await;
    let (sink, pf, smtpd, filter) = (&rig.sink, &rig.pf, rig.smtpd, rig.filter);

    let mut c = client_from_elsewhere(smtpd).await;
    assert!(c.greeting.starts_with("220"), "{}", c.greeting);
    let r = c
        .send_mail(false, "sender@example.org", &["user@example.com"], SIMPLE)
        .await;
    assert!(r.starts_with("250"), "{r}");
    c.cmd("QUIT").await;

    let arrived = eventually_for(Duration::from_secs(60), || !sink.received().is_empty()).await;
    assert!(arrived, "nothing delivered; Postfix log:\n{}", pf.maillog());
    let got = &sink.received()[0];
    let text = String::from_utf8_lossy(&got.data).into_owned();
    assert_eq!(
        got.rcpts,
        ["RCPT TO:<user@example.com> ORCPT=rfc822;user@example.com"],
        "{text}"
    );
    assert!(
        got.mail.starts_with("MAIL FROM:<sender@example.org>"),
        "{}",
        got.mail
    );
    // Our fields are there, and the body arrived intact.
    assert!(
        text.contains("X-Virus-Scanned: amavisd-rs at example.com\r\n"),
        "{text}"
    );
    assert!(text.contains("(amavisd-rs, port "), "{text}");
    assert!(text.ends_with("\r\n\r\nHello.\r\n"), "{text}");
    let log = pf.maillog();
    assert!(
        log.contains(&format!("relay=127.0.0.1[127.0.0.1]:{filter}")),
        "{log}"
    );
    assert!(
        log.contains("status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:"),
        "{log}"
    );
    // The 10025 smtpd records the original client and queue id it got by XFORWARD: only
    // Postfix -> amavisd-rs -> Postfix passing XFORWARD on could have told it 127.0.0.2.
    let first_id = log
        .lines()
        .find(|l| l.contains("client=unknown[127.0.0.2]"))
        .and_then(|l| l.split("]: ").nth(1))
        .and_then(|l| l.split(':').next())
        .expect("the first smtpd's queue id");
    assert!(
        log.contains(&format!(
            "client=localhost[127.0.0.1], orig_queue_id={first_id}, orig_client=unknown[127.0.0.2]"
        )),
        "XFORWARD did not arrive at the 10025 smtpd:\n{log}"
    );

    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_lmtp_gets_one_reply_per_recipient() {
    let rig = Rig::start(SinkMode::Accept, true).await;
    // swaks blocks; the server runs on the other worker thread.
    let out = Command::new("swaks")
        .args([
            "--protocol",
            "LMTP",
            "--server",
            &rig.addr.ip().to_string(),
            "--port",
            &rig.addr.port().to_string(),
            "--from",
            "sender@example.org",
            "--to",
            "ok@example.com,rcpt-perm@example.com,data-temp@example.com",
            "--pipeline",
            "--timeout",
            "20",
        ])
        .output()
        .expect("swaks is not installed: apt-get install swaks (the .ci/run script does)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // Each recipient gets the LMTP next hop's own answer, after DATA: the point of LMTP.
    assert!(
        text.contains("<-  250 2.0.0 from MTA(lmtp:[127.0.0.1]:"),
        "{text}"
    );
    assert!(text.contains("<** 550 5.1.1 from MTA(lmtp:"), "{text}");
    assert!(text.contains("<** 452 4.2.2 from MTA(lmtp:"), "{text}");
    rig.stop().await;
}

/// A client of the Postfix on `smtpd`, connected from 127.0.0.2: the original client's
/// address, told apart from the 127.0.0.1 of every hop in between.
async fn client_from_elsewhere(smtpd: u16) -> Client {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let stream = sock
        .connect(format!("127.0.0.1:{smtpd}").parse().unwrap())
        .await
        .unwrap();
    Client::from_stream(stream).await
}

/// Sends one message from 127.0.0.2 through the Postfix on `smtpd`: `from` with MAIL
/// parameters, to `rcpt`.
async fn submit(smtpd: u16, from: &str, rcpt: &str, data: &[u8]) {
    let mut c = client_from_elsewhere(smtpd).await;
    assert!(c.cmd("EHLO client.example").await.starts_with("250"));
    let r = c.cmd(&format!("MAIL FROM:{from}")).await;
    assert!(r.starts_with("250"), "{r}");
    let r = c.cmd(&format!("RCPT TO:<{rcpt}>")).await;
    assert!(r.starts_with("250"), "{r}");
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(&stuff(data)).await;
    let r = c.reply().await;
    assert!(r.starts_with("250"), "{r}");
    c.cmd("QUIT").await;
}

/// The header section of a message.
fn header_of(text: &str) -> &str {
    text.split("\r\n\r\n").next().unwrap_or("")
}

/// Notifications that real Postfix writes (non-delivery with RET=HDRS and RET=FULL, a
/// delayed-mail warning) reach a site from other MTAs with the null sender, through the
/// content filter like any mail: each must pass CLEAN, not as a bad header. (Postfix does not
/// filter the notifications it sends itself, so the test has Postfix write them to the sink,
/// then sends each back in from <> as a remote MTA would.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postfix_bounces_and_delay_warnings_pass_clean() {
    // Retry deferred mail every second and warn about it after one.
    let rig = Loop::start(
        "delay_warning_time = 1s\nqueue_run_delay = 1s\nminimal_backoff_time = 1s\n\
         maximal_backoff_time = 1s",
    )
    .await;
    let (sink, pf, smtpd) = (&rig.sink, &rig.pf, rig.smtpd);
    // The sink refuses rcpt-perm (550: a bounce) and defers rcpt-temp (450: a warning).
    let from = "<sender@example.org>";
    submit(
        smtpd,
        &format!("{from} RET=HDRS"),
        "rcpt-perm-hdrs@example.com",
        SIMPLE,
    )
    .await;
    submit(
        smtpd,
        &format!("{from} RET=FULL"),
        "rcpt-perm-full@example.com",
        SIMPLE,
    )
    .await;
    submit(smtpd, from, "rcpt-temp@example.com", SIMPLE).await;

    // (header section, whole text) of what came from the null sender.
    let notices = || {
        sink.received()
            .into_iter()
            .filter(|m| m.mail.starts_with("MAIL FROM:<>"))
            .map(|m| String::from_utf8_lossy(&m.data).into_owned())
            .collect::<Vec<_>>()
    };
    let kinds = [
        ("RET=HDRS bounce", "Content-Type: text/rfc822-headers"),
        ("RET=FULL bounce", "Content-Type: message/rfc822"),
        (
            "delay warning",
            "Subject: Delayed Mail (still being retried)",
        ),
    ];
    let find = |filtered: bool, mark: &str| {
        notices().into_iter().find(|t| {
            t.contains(mark) && header_of(t).contains("X-Virus-Scanned: amavisd-rs") == filtered
        })
    };
    // Waits for every kind of notice, as Postfix wrote it or as it came back filtered.
    let all_of = async |filtered: bool| {
        let came = eventually_for(Duration::from_secs(60), || {
            kinds.iter().all(|(_, mark)| find(filtered, mark).is_some())
        })
        .await;
        assert!(
            came,
            "notices: {:#?}\nPostfix log:\n{}",
            notices(),
            pf.maillog()
        );
    };
    all_of(false).await;
    for (_, mark) in kinds {
        let dsn = find(false, mark).unwrap();
        submit(smtpd, "<>", "postmaster@example.org", dsn.as_bytes()).await;
    }
    all_of(true).await;
    for (what, mark) in kinds {
        let text = find(true, mark).unwrap();
        let head = header_of(&text);
        assert!(head.contains("multipart/report"), "{what}: {text}");
        assert!(
            !head.contains("X-Amavis-Alert"),
            "{what} is not clean: {text}"
        );
    }
    rig.stop().await;
}

/// A filter node as its own process (kill -9 must hit a process, not a task of this test).
struct NodeProcess {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl NodeProcess {
    fn start(port: u16, reentry: u16) -> NodeProcess {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let cfg = dir.path().join("amavisd.toml");
        std::fs::write(
            &cfg,
            format!(
                "myhostname = \"node{port}.example.com\"\n\
                 forward_method = \"smtp:[127.0.0.1]:{reentry}\"\n\
                 tempdir = \"{d}/tmp\"\npid_file = \"{d}/amavisd.pid\"\n\
                 [[listen]]\ninet = \"127.0.0.1:{port}\"\n\
                 [log]\nfile = \"{d}/amavisd.log\"\n\
                 [spam]\nenabled = false\n[sql]\nurl = \"sqlite:{d}/amavisd.sqlite\"\n\
                 [quarantine]\ndirectory = \"{d}/quarantine\"\n[release]\nunix = \"\"\n"
            ),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_amavisd"))
            .arg("-c")
            .arg(&cfg)
            .arg("foreground")
            .spawn()
            .unwrap();
        NodeProcess { child, _dir: dir }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Messages `ns` of the failover test, each submitted through the Postfix on `smtpd`.
async fn submit_batch(smtpd: u16, ns: std::ops::Range<usize>) {
    for n in ns {
        let m = format!(
            "From: s@example.org\r\nTo: user@example.com\r\nSubject: node test {n}\r\n\
             Message-ID: <node-{n}@example.org>\r\n\r\nHello {n}.\r\n"
        );
        submit(smtpd, "<s@example.org>", "user@example.com", m.as_bytes()).await;
    }
}

/// Two filter nodes behind one Postfix: `amavisfeed` goes to node A, and to node B through
/// `smtp_fallback_relay` when A does not answer (README, "Several filter nodes"). Node A is
/// killed (SIGKILL) between two batches: the second batch arrives through B, none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postfix_fails_over_to_the_second_node_when_one_is_killed() {
    let sink = Sink::new(SinkMode::Accept, true);
    let (sink_port, sink_task) = sink.spawn().await.unwrap();
    let (smtpd, node_a, node_b, reentry) = (free_port(), free_port(), free_port(), free_port());
    let mut a = NodeProcess::start(node_a, reentry);
    let _b = NodeProcess::start(node_b, reentry);
    wait_port(node_a).await;
    wait_port(node_b).await;
    let pf = postfix_loop(
        smtpd,
        node_a,
        reentry,
        sink_port,
        &format!("smtp_fallback_relay = [127.0.0.1]:{node_b}"),
    );
    wait_port(smtpd).await;
    submit_batch(smtpd, 0..5).await;
    let first = eventually_for(Duration::from_secs(60), || sink.received().len() == 5).await;
    assert!(first, "first batch; Postfix log:\n{}", pf.maillog());
    assert!(
        pf.maillog()
            .contains(&format!("relay=127.0.0.1[127.0.0.1]:{node_a}"))
    );
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    submit_batch(smtpd, 5..10).await;
    let all = eventually_for(Duration::from_secs(90), || sink.received().len() == 10).await;
    let log = pf.maillog();
    assert!(all, "second batch; Postfix log:\n{log}");
    let subjects: std::collections::BTreeSet<String> = sink
        .received()
        .iter()
        .filter_map(|r| {
            let t = String::from_utf8_lossy(&r.data).into_owned();
            t.lines()
                .find(|l| l.starts_with("Subject: node test "))
                .map(str::to_string)
        })
        .collect();
    assert_eq!(subjects.len(), 10, "each message once: {subjects:?}");
    assert!(
        log.contains(&format!("relay=127.0.0.1[127.0.0.1]:{node_b}")),
        "the second node took over:\n{log}"
    );
    drop(pf);
    sink_task.abort();
}
