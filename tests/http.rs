//! rspamd's HTTP protocol: `rspamc` from Debian's rspamd package against our listener (what
//! it prints is our verdict; learning; passwords), and a raw client for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod av_common;
mod common;
mod decode_common;
use common::*;
use decode_common::*;

use amavisd::config::Config;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// amavisd with the HTTP listener on a free loopback port; the next hop is a closed port
/// (a check never delivers).
async fn start(
    tweak: impl FnOnce(&mut Config),
) -> (amavisd::server::Running, SocketAddr, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = config(&format!("smtp:[127.0.0.1]:{}", free_port()), tmp.path());
    c.http.listen = "127.0.0.1:0".into();
    c.http.timeout = 3;
    tweak(&mut c);
    let server = amavisd::server::start(valid(c)).await.unwrap();
    let addr = server.http_addr.expect("http listener");
    (server, addr, tmp)
}

fn spam_on(c: &mut Config) {
    c.spam.enabled = true;
    c.spam.rules_dir = "/usr/share/spamassassin".into();
    c.spam.site_dir = "/etc/spamassassin".into();
}

/// `rspamc -h ADDR ARGS... FILE`: its exit code and what it printed.
async fn rspamc(addr: SocketAddr, args: &[&str], message: &[u8]) -> (i32, String) {
    assert!(
        std::path::Path::new("/usr/bin/rspamc").exists(),
        "rspamc is missing: apt-get install rspamd (.ci/run does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("msg.eml");
    std::fs::write(&file, message).unwrap();
    let out = tokio::process::Command::new("rspamc")
        .arg("-h")
        .arg(addr.to_string())
        .args(args)
        .arg(&file)
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The JSON rspamc prints with `--json`.
async fn rspamc_json(addr: SocketAddr, args: &[&str], message: &[u8]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out) = rspamc(addr, &all, message).await;
    assert_eq!(code, 0, "{out}");
    let start = out.find('{').expect("JSON");
    serde_json::from_str(&out[start..]).unwrap_or_else(|e| panic!("{e}: {out}"))
}

const CLEAN: &[u8] = b"From: a@example.org\nTo: u@example.com\nSubject: hi\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <c1@example.org>\nX-Spam-Flag: YES\n\nHello, see https://www.example.net/page and write to bob@example.org.\n";

fn gtube() -> Vec<u8> {
    b"From: a@example.org\nTo: u@example.com\nSubject: s\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <g1@example.org>\n\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\n".to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rspamc_prints_our_verdicts() {
    let (server, addr, _tmp) = start(|c| {
        spam_on(c);
        c.av.primary = vec![av_common::clamd_at(av_common::clamd_socket(), 30)];
        let lover: toml::Table = "banned_files_lover = true".parse().unwrap();
        c.recipients.insert("lover@example.com".into(), lover);
        let quiet: toml::Table = "spam_subject_tag2 = \"\"".parse().unwrap();
        c.policy_bank.insert("NOTAG".into(), quiet);
    })
    .await;

    // Clean: no action; our fields, the forged X-Spam-Flag removed; links and addresses.
    let (code, out) = rspamc(addr, &["symbols"], CLEAN).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Action: no action") && out.contains("Spam: false"),
        "{out}"
    );
    let j = rspamc_json(addr, &["--rcpt", "u@example.com", "symbols"], CLEAN).await;
    assert_eq!(j["action"], "no action", "{j}");
    assert_eq!(j["message-id"], "c1@example.org", "{j}");
    assert_eq!(j["urls"], serde_json::json!(["www.example.net"]), "{j}");
    assert_eq!(j["emails"], serde_json::json!(["bob@example.org"]), "{j}");
    assert_eq!(j["milter"]["remove_headers"]["X-Spam-Flag"], 1, "{j}");
    let scanned = &j["milter"]["add_headers"]["X-Virus-Scanned"];
    assert_eq!(scanned["order"], 0, "{j}");
    assert!(
        scanned["value"]
            .as_str()
            .unwrap()
            .starts_with("amavisd-rs at"),
        "{j}"
    );

    // GTUBE: spam, passed with a subject tag (amavisd-new's defaults): rewrite subject.
    let (_, out) = rspamc(addr, &["symbols"], &gtube()).await;
    assert!(out.contains("Action: rewrite subject"), "{out}");
    assert!(out.contains("Spam: true"), "{out}");
    assert!(out.contains("Subject: ***Spam*** s"), "{out}");
    assert!(out.contains("Symbol: GTUBE (1000.00)"), "{out}");
    assert!(out.contains(" / 6.90"), "{out}");
    // The same, compressed both ways (rspamc -z sends zstd and reads a zstd reply).
    let (_, out) = rspamc(addr, &["-z", "symbols"], &gtube()).await;
    assert!(out.contains("Action: rewrite subject"), "{out}");
    // Settings-ID names a policy bank: without a subject tag, the action is add header.
    let (_, out) = rspamc(
        addr,
        &["--header", "Settings-ID: NOTAG", "symbols"],
        &gtube(),
    )
    .await;
    assert!(out.contains("Action: add header"), "{out}");

    // A virus: reject, the virus as a symbol, our refusal as the SMTP message.
    let virus = mail_with_attachment(
        "filename=\"e.txt\"",
        &av_common::eicar(),
        "application/octet-stream",
    );
    let (_, out) = rspamc(addr, &["symbols"], &virus).await;
    assert!(out.contains("Action: reject"), "{out}");
    assert!(out.contains("Symbol: AMAVIS_VIRUS (0.00)[Eicar"), "{out}");
    assert!(out.contains("smtp_message: Reject, id="), "{out}");
    assert!(out.contains("INFECTED"), "{out}");

    // Banned for one of two recipients (the other loves it): passed for the lover, the
    // other taken off the envelope.
    let args = [
        "--rcpt",
        "lover@example.com",
        "--rcpt",
        "other@example.com",
        "symbols",
    ];
    let j = rspamc_json(addr, &args, &exe_mail()).await;
    assert_eq!(j["action"], "no action", "{j}");
    assert_eq!(
        j["milter"]["del_rcpt"],
        serde_json::json!(["other@example.com"]),
        "{j}"
    );
    assert!(j["symbols"]["AMAVIS_BANNED"].is_object(), "{j}");
    // Banned for all: reject (the default destiny, discard, is a refusal before the queue).
    let (_, out) = rspamc(
        addr,
        &["--rcpt", "other@example.com", "symbols"],
        &exe_mail(),
    )
    .await;
    assert!(out.contains("Action: reject"), "{out}");
    assert!(out.contains("BANNED"), "{out}");

    // The old protocol: symbols inside "default", is_spam.
    let (_, out) = raw(addr, &post("/check", &[], &gtube())).await;
    let j: serde_json::Value = serde_json::from_str(body_of(&out)).unwrap();
    assert_eq!(j["default"]["is_spam"], true, "{j}");
    assert_eq!(j["default"]["GTUBE"]["score"], 1000.0, "{j}");
    assert_eq!(j["default"]["action"], "rewrite subject", "{j}");

    let (_, out) = rspamc(addr, &["stat"], b"").await;
    assert!(out.contains("Messages with action reject: 2"), "{out}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanner_down_is_a_soft_reject() {
    let (server, addr, _tmp) = start(|c| {
        c.av.primary = vec![av_common::clamd_at(
            std::env::temp_dir().join("no-clamd-here.sock"),
            2,
        )];
    })
    .await;
    let (code, out) = rspamc(addr, &["symbols"], CLEAN).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Action: soft reject"), "{out}");
    assert!(out.contains("Symbol: AMAVIS_TEMPFAIL"), "{out}");
    assert!(
        out.contains("smtp_message: Error in processing, id="),
        "{out}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rspamc_learns_into_the_bayes_store() {
    use amavisd::spam::bayes::shared::SharedStore;
    use amavisd::spam::bayes::store::TokenStore;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("bayes.sqlite").display());
    let u = url.clone();
    let (server, addr, _tmp) = start(move |c| {
        spam_on(c);
        c.spam.bayes_store = u;
    })
    .await;
    let store = SharedStore::open(&url).await.unwrap();
    let m = gtube();
    let (code, out) = rspamc(addr, &["learn_spam"], &m).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("success = true"), "{out}");
    assert_eq!(store.totals("").await.unwrap(), (1, 0));
    let (code, out) = rspamc(addr, &["learn_spam"], &m).await;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("HTTP error: 404, <g1@example.org> has been already learned as spam"),
        "{out}"
    );
    let (_, out) = rspamc(addr, &["learn_ham"], &m).await;
    assert!(out.contains("success = true"), "{out}");
    assert_eq!(store.totals("").await.unwrap(), (0, 1));
    // Deliver-To names a user with a store of its own (extension removed).
    let (_, out) = rspamc(addr, &["-d", "Joe+lists@example.com", "learn_spam"], &m).await;
    assert!(out.contains("success = true"), "{out}");
    assert_eq!(store.totals("joe@example.com").await.unwrap(), (1, 0));
    // Compressed.
    let (_, out) = rspamc(addr, &["-z", "-d", "ann@example.com", "learn_ham"], &m).await;
    assert!(out.contains("success = true"), "{out}");
    assert_eq!(store.totals("ann@example.com").await.unwrap(), (0, 1));
    let (_, out) = rspamc(addr, &["stat"], b"").await;
    assert!(out.contains("Messages learned: 4"), "{out}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_guard_the_controller_commands() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("bayes.sqlite").display());
    let (server, addr, _tmp) = start(move |c| {
        spam_on(c);
        c.spam.bayes_store = url;
        c.http.secure_ip.clear();
        c.http.password = "reader".into();
        c.http.enable_password = "writer".into();
    })
    .await;
    let m = gtube();
    for args in [
        &["learn_spam"][..],
        &["-P", "reader", "learn_spam"],
        &["stat"],
    ] {
        let (code, out) = rspamc(addr, args, &m).await;
        assert_ne!(code, 0, "{args:?}: {out}");
        assert!(
            out.contains("HTTP error: 401, Unauthorized"),
            "{args:?}: {out}"
        );
    }
    let (_, out) = rspamc(addr, &["-P", "writer", "learn_spam"], &m).await;
    assert!(out.contains("success = true"), "{out}");
    let (code, out) = rspamc(addr, &["-P", "reader", "stat"], b"").await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Messages learned: 1"), "{out}");
    // Checks need no password, as on rspamd's normal worker.
    let (_, out) = rspamc(addr, &["symbols"], &m).await;
    assert!(out.contains("Symbol: GTUBE"), "{out}");
    server.stop().await;
}

/// A request as bytes.
fn post(path: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    let mut r = r.into_bytes();
    r.extend_from_slice(body);
    r
}

/// Sends `request`, half-closes, reads to the end: (whether the server closed within the
/// time, what it sent).
async fn raw(addr: SocketAddr, request: &[u8]) -> (bool, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before it has read all (a body over the limit).
    let _ = s.write_all(request).await;
    let _ = s.shutdown().await;
    let mut out = Vec::new();
    let done = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out)).await;
    (done.is_ok(), String::from_utf8_lossy(&out).into_owned())
}

fn body_of(reply: &str) -> &str {
    reply.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_answer_and_the_listener_survives() {
    let (server, addr, _tmp) = start(|c| c.limits.message_size_limit = 100_000).await;
    let big = vec![b'x'; 200_000];
    let many_rcpts: Vec<String> = (0..1001)
        .map(|i| format!("Rcpt: u{i}@example.com"))
        .collect();
    let many: Vec<&str> = many_rcpts.iter().map(String::as_str).collect();
    // (what, request, the status line's start, a JSON error body follows)
    let cases: Vec<(&str, Vec<u8>, &str, bool)> = vec![
        (
            "garbage",
            b"HELLO THERE\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
            false,
        ),
        (
            "unknown path",
            post("/nothing", &[], CLEAN),
            "HTTP/1.1 404 invalid command",
            true,
        ),
        (
            "bad IP",
            post("/checkv2", &["IP: 300.1.1.1"], CLEAN),
            "HTTP/1.1 400 IP: \"300.1.1.1\"",
            true,
        ),
        (
            "not UTF-8",
            b"POST /checkv2 HTTP/1.1\r\nFrom: \xff@x\r\nContent-Length: 0\r\n\r\n".to_vec(),
            "HTTP/1.1 400 from: not UTF-8",
            true,
        ),
        (
            "address with spaces",
            post("/checkv2", &["Rcpt: a b@x"], CLEAN),
            "HTTP/1.1 400 rcpt:",
            true,
        ),
        (
            "too many recipients",
            post("/checkv2", &many, CLEAN),
            "HTTP/1.1 400 more than 1000",
            true,
        ),
        (
            "announced over the limit",
            b"POST /checkv2 HTTP/1.1\r\nContent-Length: 200000\r\n\r\n".to_vec(),
            "HTTP/1.1 413",
            true,
        ),
        (
            "over the limit",
            post("/checkv2", &[], &big),
            "HTTP/1.1 413",
            true,
        ),
        (
            "chunked over the limit",
            [
                b"POST /checkv2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".as_slice(),
                b"186a0\r\n",
                &big[..100_000],
                b"\r\n186a0\r\n",
                &big[..100_000],
                b"\r\n0\r\n\r\n",
            ]
            .concat(),
            "HTTP/1.1 413",
            true,
        ),
        (
            "Settings not JSON",
            post("/checkv2", &["Settings: {symbol1 = "], CLEAN),
            "HTTP/1.1 400 Settings: not JSON",
            true,
        ),
        (
            "broken zstd",
            post("/checkv2", &["Compression: zstd"], b"not zstd at all"),
            "HTTP/1.1 400 Decompression error",
            true,
        ),
        (
            "other compression",
            post("/checkv2", &["Compression: gzip"], CLEAN),
            "HTTP/1.1 415",
            true,
        ),
        (
            "empty learn",
            post("/learnspam", &[], b""),
            "HTTP/1.1 4",
            true,
        ),
    ];
    for (what, req, want, json) in &cases {
        let (closed, out) = raw(addr, req).await;
        assert!(closed, "{what}: connection left open");
        assert!(out.starts_with(want), "{what}: {out}");
        if *json {
            let j: serde_json::Value = serde_json::from_str(body_of(&out))
                .unwrap_or_else(|e| panic!("{what}: {e}: {out}"));
            assert!(j["error"].is_string(), "{what}: {out}");
        }
    }
    // A body cut short (the client half-closes): an answer or a close, in time.
    let mut cut = post("/checkv2", &[], CLEAN);
    cut.truncate(cut.len() - 20);
    assert!(raw(addr, &cut).await.0, "cut body");
    // Silence: closed after http.timeout (3 s here), not never.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut rest = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut rest)).await;
    assert!(r.is_ok(), "a silent client holds the connection");
    // And the listener still answers a good request.
    let (_, out) = raw(addr, &post("/checkv2", &["Rcpt: u@example.com"], CLEAN)).await;
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    let j: serde_json::Value = serde_json::from_str(body_of(&out)).unwrap();
    assert_eq!(j["action"], "no action", "{j}");
    // A zstd body named by HTTP's own Content-Encoding: checked, and the reply compressed.
    let z = ruzstd::encoding::compress_to_vec(CLEAN, ruzstd::encoding::CompressionLevel::Fastest);
    let (_, out) = raw(addr, &post("/checkv2", &["Content-Encoding: zstd"], &z)).await;
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    assert!(out.contains("compression: zstd"), "{out}");
    let (_, out) = raw(addr, b"GET /ping HTTP/1.0\r\n\r\n").await;
    assert!(out.ends_with("pong\r\n"), "{out}");
    // The controller's read commands, from a client in secure_ip: no password needed.
    let (_, out) = raw(addr, b"GET /metrics HTTP/1.0\r\n\r\n").await;
    assert!(out.starts_with("HTTP/1.0 200 OK"), "{out}");
    assert!(body_of(&out).contains("amavisd_"), "{out}");
    let (_, out) = raw(addr, b"GET /auth HTTP/1.0\r\n\r\n").await;
    let j: serde_json::Value = serde_json::from_str(body_of(&out)).unwrap();
    assert_eq!(
        (j["auth"].as_str(), j["read_only"].as_bool()),
        (Some("ok"), Some(false)),
        "{j}"
    );
    server.stop().await;
}
