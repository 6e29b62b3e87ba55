//! Viruses and banned files through the whole pipe (SMTP/LMTP in, decode, banned rules, the
//! real clamd started by .ci/run, verdict, reinjection to a sink): what the client is told, and
//! that nothing reaches the next hop unless policy passes it. A scanner that is down or silent
//! makes the message wait (451), never pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod av_common;
mod common;
mod decode_common;
use av_common::{clamd_at, clamd_socket, eicar, fake_clamd};
use common::*;
use decode_common::*;

use amavisd::av::{ScannerConfig, ScannerKind};
use amavisd::config::Config;
use amavisd::message::Destiny;
use amavisd::policy_bank::ScanFailure;
use amavisd_testing::sink::SinkMode;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// amavisd with the real clamd, rejecting viruses and banned files so that the reply names
/// what was found.
async fn with_clamd(tweak: impl FnOnce(&mut Config)) -> Rig {
    Rig::start_with(SinkMode::Accept, false, |c| {
        c.av.primary = vec![clamd_at(clamd_socket(), 30)];
        c.policy.final_virus_destiny = Destiny::Reject;
        c.policy.final_banned_destiny = Destiny::Reject;
        tweak(c);
    })
    .await
}

async fn send(rig: &Rig, msg: &[u8]) -> String {
    rig.client()
        .await
        .send_mail(false, "s@example.org", &["u@example.com"], msg)
        .await
}

const HEAD: &str = "From: a@example.org\r\nTo: b@example.com\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
                    Subject: test\r\nMessage-ID: <t@example.org>\r\n";

fn plain(body: &[u8]) -> Vec<u8> {
    let mut m = format!("{HEAD}\r\n").into_bytes();
    m.extend_from_slice(body);
    m.extend_from_slice(b"\r\n");
    m
}

/// `data` as a 7bit (unencoded) MIME part: the CRLF before the boundary is not content, so
/// the part decodes to exactly `data` (the test database matches whole files by hash).
fn plain_part(data: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "{HEAD}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
    )
    .into_bytes();
    m.extend_from_slice(data);
    m.extend_from_slice(b"\r\n--B--\r\n");
    m
}

/// A single-part message whose whole body is `data` in base64.
fn base64_body(data: &[u8]) -> Vec<u8> {
    format!(
        "{HEAD}MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}",
        base64_lines(data)
    )
    .into_bytes()
}

fn attached(name: &str, data: &[u8]) -> Vec<u8> {
    mail_with_attachment(
        &format!("filename=\"{name}\""),
        data,
        "application/octet-stream",
    )
}

#[tokio::test]
async fn eicar_in_every_wrapping_is_rejected_and_not_delivered() {
    let rig = with_clamd(|_| {}).await;
    let e = eicar();
    let inner_mail = attached("eicar.txt", &e);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("plain text part", plain_part(&e)),
        ("base64 message body", base64_body(&e)),
        ("base64 attachment", attached("eicar.txt", &e)),
        ("in a zip", attached("a.zip", &zip(&[("eicar.txt", &e)]))),
        ("in a 7z", attached("a.7z", &sevenz(&[("eicar.txt", &e)]))),
        (
            "in a tar.gz",
            attached("a.tar.gz", &gz(&tar(&[("dir/eicar.txt", &e)]))),
        ),
        (
            "in a message/rfc822 in a zip",
            attached("mails.zip", &zip(&[("fwd.eml", &inner_mail)])),
        ),
    ];
    for (what, msg) in cases {
        let r = send(&rig, &msg).await;
        assert!(r.starts_with("554 5.7.0 Reject, id="), "{what}: {r}");
        assert!(r.contains("INFECTED: Eicar-Test-Signature"), "{what}: {r}");
    }
    assert!(rig.sink.received().is_empty(), "nothing may be delivered");
    // The same scanner passes clean mail, scanned, with our header.
    let r = send(&rig, &attached("report.txt", b"quarterly figures")).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let got = rig.sink.received();
    assert_eq!(got.len(), 1);
    assert!(String::from_utf8_lossy(&got[0].data).contains("X-Virus-Scanned: amavisd-rs"));
    rig.stop().await;
}

#[tokio::test]
async fn default_virus_destiny_discards_with_250() {
    let rig = with_clamd(|c| c.policy.final_virus_destiny = Destiny::Discard).await;
    let r = send(&rig, &attached("eicar.txt", &eicar())).await;
    assert!(
        r.starts_with("250 2.7.0 Ok, discarded, id=")
            && r.contains("INFECTED: Eicar-Test-Signature"),
        "{r}"
    );
    assert!(rig.sink.received().is_empty());
    rig.stop().await;
}

/// The ClamAV test payload in each container we decode (and in the ones clamd opens itself):
/// every one is found through the pipe.
#[tokio::test]
async fn clamav_test_files_through_the_pipe() {
    let dir = std::path::Path::new("/usr/share/clamav-testfiles");
    assert!(
        dir.is_dir(),
        "apt-get install clamav-testfiles (.ci/run does)"
    );
    let rig = with_clamd(|_| {}).await;
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut infected = Vec::new();
    let mut other = Vec::new();
    for name in &names {
        let data = std::fs::read(dir.join(name)).unwrap();
        // A neutral name, so that only the content can give it away.
        let r = send(&rig, &attached("sample.bin", &data)).await;
        if r.starts_with("554 5.7.0") && r.contains("INFECTED: Clamav.Test.File") {
            infected.push(name.as_str());
        } else {
            other.push(format!("{name}: {}", r.trim_end()));
        }
    }
    // Formats we decode ourselves, and the ones left to clamd (arj, chm, binhex, szdd, OLE,
    // RTF, PDF, the old implode zip) all yield the test payload.
    for want in [
        "clam.7z",
        "clam.bin-be.cpio",
        "clam.bin-le.cpio",
        "clam.newc.cpio",
        "clam.odc.cpio",
        "clam.bz2.zip",
        "clam.d64.zip",
        "clam.zip",
        "clam.impl.zip",
        "clam.cab",
        "clam.exe",
        "clam.exe.bz2",
        "clam.tar.gz",
        "clam.mail",
        "clam.exe.mbox.base64",
        "clam.exe.mbox.uu",
        "clam.exe.html",
        "clam.tnef",
        "clam.arj",
        "clam.chm",
        "clam.exe.binhex",
        "clam.exe.szdd",
    ] {
        assert!(
            infected.contains(&want),
            "{want} not found infected; not infected: {other:#?}"
        );
    }
    // Nothing passes: what the test database cannot name (packed executables) is still an
    // executable, banned by content.
    for o in &other {
        assert!(o.contains("554 5.7.0") && o.contains("BANNED"), "{o}");
    }
    assert!(rig.sink.received().is_empty());
    rig.stop().await;
}

#[tokio::test]
async fn clamd_down_tempfails_and_delivers_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // A socket file nobody listens on: what a stopped clamd leaves behind.
    let stale = tmp.path().join("clamd.ctl");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    for socket in [stale, tmp.path().join("missing.ctl")] {
        let rig = with_clamd(|c| c.av.primary = vec![clamd_at(socket.clone(), 5)]).await;
        let r = send(&rig, &plain(b"hello")).await;
        assert!(
            r.starts_with("451 4.5.0 Error in processing, id=") && r.contains("virus_scan FAILED"),
            "{}: {r}",
            socket.display()
        );
        // LMTP: every recipient waits.
        let r = rig
            .client()
            .await
            .send_mail(
                true,
                "s@example.org",
                &["a@example.com", "b@example.com"],
                &plain(b"x"),
            )
            .await;
        assert_eq!(r.matches("451 4.5.0").count(), 2, "{r}");
        assert!(rig.sink.received().is_empty());
        rig.stop().await;
    }
    // Over TCP, a port nobody listens on.
    let rig = with_clamd(|c| {
        c.av.primary = vec![ScannerConfig {
            socket: None,
            tcp: Some(format!("127.0.0.1:{}", free_port()).parse().unwrap()),
            ..clamd_at(PathBuf::new(), 5)
        }]
    })
    .await;
    assert!(send(&rig, &plain(b"x")).await.starts_with("451 4.5.0"));
    assert!(rig.sink.received().is_empty());
    rig.stop().await;
}

#[tokio::test]
async fn silent_clamd_tempfails_within_its_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("silent.ctl");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    // Accepts, reads everything, never answers.
    let fake = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut s, _)) = listener.accept().await {
            held.push(tokio::spawn(async move {
                let mut buf = [0u8; 65536];
                use tokio::io::AsyncReadExt;
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            }));
        }
    });
    let rig = with_clamd(|c| c.av.primary = vec![clamd_at(path.clone(), 1)]).await;
    let t = Instant::now();
    let r = send(&rig, &attached("a.txt", b"data")).await;
    assert!(r.starts_with("451 4.5.0"), "{r}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(rig.sink.received().is_empty());
    rig.stop().await;
    fake.abort();
}

#[tokio::test]
async fn failed_scan_passes_as_unchecked_where_policy_says_so() {
    let rig = with_clamd(|c| {
        c.av.primary = vec![clamd_at("/nonexistent/clamd.ctl".into(), 2)];
        c.policy.virus_scan_failure = ScanFailure::Unchecked;
    })
    .await;
    let r = send(&rig, &plain(b"hello")).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    assert_eq!(rig.sink.received().len(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn backup_scanner_takes_over_when_the_primary_is_down() {
    let rig = with_clamd(|c| {
        c.av.primary = vec![clamd_at("/nonexistent/clamd.ctl".into(), 2)];
        c.av.backup = vec![clamd_at(clamd_socket(), 30)];
    })
    .await;
    let r = send(&rig, &attached("a.zip", &zip(&[("e.txt", &eicar())]))).await;
    assert!(r.contains("INFECTED: Eicar-Test-Signature"), "{r}");
    rig.stop().await;
}

#[tokio::test]
async fn clamscan_command_scanner_in_the_pipe() {
    let rig = with_clamd(|c| {
        c.av.primary = vec![ScannerConfig {
            name: "ClamAV-clamscan".into(),
            kind: ScannerKind::Command,
            socket: None,
            tcp: None,
            program: Some("clamscan".into()),
            args: vec![
                "--no-summary".into(),
                "-d".into(),
                "/var/lib/clamav/amavisd-rs-test.hdb".into(),
                "{}".into(),
            ],
            clean_codes: vec![0],
            infected_codes: vec![1],
            name_regex: Some(r"^.*?: (.+) FOUND$".into()),
            timeout: 60,
            max_sessions: 10,
            stream_max_length: amavisd::av::DEFAULT_STREAM_MAX_LENGTH,
        }]
    })
    .await;
    let r = send(
        &rig,
        &attached("a.tar.gz", &gz(&tar(&[("e.txt", &eicar())]))),
    )
    .await;
    assert!(r.contains("INFECTED: Eicar-Test-Signature"), "{r}");
    assert!(send(&rig, &plain(b"clean")).await.starts_with("250 2.0.0"));
    rig.stop().await;
}

#[tokio::test]
async fn lmtp_client_gets_the_reject_for_each_recipient() {
    let rig = with_clamd(|_| {}).await;
    let r = rig
        .client()
        .await
        .send_mail(
            true,
            "s@example.org",
            &["a@example.com", "b@example.com"],
            &attached("e.txt", &eicar()),
        )
        .await;
    assert_eq!(r.matches("554 5.7.0 Reject").count(), 2, "{r}");
    assert!(rig.sink.received().is_empty());
    rig.stop().await;
}

#[tokio::test]
async fn virus_names_that_mean_spam_do_not_block() {
    use amavisd::av::virus_names::SpamScoreSpec;
    let rig = with_clamd(|c| {
        c.av.virus_name_spam_scores = vec![SpamScoreSpec {
            regex: "^Eicar-".into(),
            score: Some(3.0),
        }]
    })
    .await;
    let r = send(&rig, &attached("e.txt", &eicar())).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    assert_eq!(rig.sink.received().len(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn banned_files_through_the_pipe() {
    // No scanner: the banned rules alone.
    let rig = with_clamd(|c| c.av.primary.clear()).await;
    let exe = payload();
    let r = send(&rig, &attached("invoice.pdf.exe", b"text")).await;
    assert!(
        r.starts_with("554 5.7.0 Reject") && r.contains("BANNED: invoice.pdf.exe"),
        "{r}"
    );
    let r = send(&rig, &attached("notes.txt", &exe)).await;
    assert!(r.contains("BANNED: .exe-ms"), "disguised executable: {r}");
    let r = send(&rig, &attached("a.zip", &zip(&[("setup.scr", b"x")]))).await;
    assert!(r.contains("BANNED: setup.scr"), "{r}");
    let r = send(&rig, &attached("a.tar", &tar(&[("setup.scr", b"x")]))).await;
    assert!(
        r.starts_with("250 2.0.0"),
        "names inside tar are allowed: {r}"
    );
    assert_eq!(rig.sink.received().len(), 1);
    rig.stop().await;

    let rig = Rig::start_with(SinkMode::Accept, false, |c| {
        c.policy.bypass_banned_checks = true
    })
    .await;
    let r = send(&rig, &attached("invoice.pdf.exe", b"text")).await;
    assert!(r.starts_with("250 2.0.0"), "bypassed: {r}");
    rig.stop().await;

    // Default destiny: discarded, 250.
    let rig = Rig::start(SinkMode::Accept, false).await;
    let r = send(&rig, &attached("invoice.pdf.exe", b"text")).await;
    assert!(
        r.starts_with("250 2.7.0 Ok, discarded") && r.contains("BANNED"),
        "{r}"
    );
    assert!(rig.sink.received().is_empty());
    rig.stop().await;
}

#[tokio::test]
async fn passed_virus_carries_an_alert_field() {
    let rig = with_clamd(|c| c.policy.final_virus_destiny = Destiny::Pass).await;
    let r = send(&rig, &attached("e.txt", &eicar())).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let got = rig.sink.received();
    let text = String::from_utf8_lossy(&got[0].data);
    assert!(
        // clamd adds ".UNOFFICIAL" to names from a local database such as the test one.
        text.contains("X-Amavis-Alert: INFECTED, message contains virus: Eicar-Test-Signature"),
        "{text}"
    );
    rig.stop().await;
}

#[tokio::test]
async fn bounce_tells_the_sender_without_returning_the_virus() {
    let rig = with_clamd(|c| c.policy.final_virus_destiny = Destiny::Bounce).await;
    let r = send(&rig, &attached("e.txt", &eicar())).await;
    assert!(r.starts_with("250 2.7.0"), "{r}");
    let got = rig.sink.received();
    assert_eq!(got.len(), 1, "one DSN");
    let dsn = String::from_utf8_lossy(&got[0].data);
    assert!(got[0].mail.contains("MAIL FROM:<>"), "{}", got[0].mail);
    assert!(got[0].rcpts[0].contains("<s@example.org>"));
    assert!(dsn.contains("Status: 5.7.0"), "{dsn}");
    assert!(dsn.contains("INFECTED: Eicar-Test-Signature"), "{dsn}");
    let e = String::from_utf8_lossy(&eicar()).into_owned();
    assert!(!dsn.contains(&e) && !dsn.contains(&base64_lines(&eicar())[..20]));
    // No DSN to the null sender.
    let r = rig
        .client()
        .await
        .send_mail(false, "", &["u@example.com"], &attached("e.txt", &eicar()))
        .await;
    assert!(r.starts_with("250 2.7.0"), "{r}");
    assert_eq!(rig.sink.received().len(), 1);
    rig.stop().await;

    // When the DSN cannot be sent, the message waits rather than vanish silently.
    let rig = with_clamd(|c| {
        c.policy.final_virus_destiny = Destiny::Bounce;
        c.notify_method = format!("smtp:[127.0.0.1]:{}", free_port());
    })
    .await;
    let r = send(&rig, &attached("e.txt", &eicar())).await;
    assert!(r.starts_with("451 4.3.0"), "{r}");
    rig.stop().await;
}

#[tokio::test]
async fn object_too_large_for_clamd_is_unchecked_not_deferred() {
    let addr = fake_clamd(
        |_| Some("INSTREAM size limit exceeded. ERROR".into()),
        u64::MAX,
    )
    .await;
    let tcp = move || ScannerConfig {
        socket: None,
        tcp: Some(addr),
        ..clamd_at(PathBuf::new(), 5)
    };
    // Unchecked passes by default: delivered, not retried for days.
    let rig = with_clamd(|c| c.av.primary = vec![tcp()]).await;
    let r = send(&rig, &attached("big.bin", b"pretend this is large")).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    assert_eq!(rig.sink.received().len(), 1);
    rig.stop().await;
    // And its destiny decides.
    let rig = with_clamd(|c| {
        c.av.primary = vec![tcp()];
        c.policy.final_unchecked_destiny = Destiny::Reject;
    })
    .await;
    let r = send(&rig, &attached("big.bin", b"pretend this is large")).await;
    assert!(
        r.starts_with("554 5.7.0 Reject") && r.contains("UNCHECKED"),
        "{r}"
    );
    rig.stop().await;
}

/// clamd refuses an object over its StreamMaxLength (25 MiB in Debian) with "INSTREAM size
/// limit exceeded" and closes while we still write. A 1 GiB zip bomb decodes (up to the
/// decoder's limits) to a part far larger. That message would meet the same refusal at every
/// retry, so it is UNCHECKED and its destiny decides, never 451: whether we know clamd's
/// limit and do not send the part, or believe a larger one and clamd refuses half-way.
#[tokio::test]
async fn zip_bomb_beyond_clamds_stream_limit_is_unchecked_not_deferred() {
    let bomb = attached("bomb.zip", &zeros_zip(1024));
    for (what, our_limit) in [
        ("clamd's limit known: not sent", None),
        (
            "a larger limit believed: refused mid-stream",
            Some(1u64 << 30),
        ),
    ] {
        let rig = with_clamd(|c| {
            if let Some(l) = our_limit {
                c.av.primary[0].stream_max_length = l;
            }
            c.policy.final_unchecked_destiny = Destiny::Reject;
        })
        .await;
        let r = send(&rig, &bomb).await;
        assert!(
            r.starts_with("554 5.7.0 Reject") && r.contains("UNCHECKED"),
            "{what}: {r}"
        );
        rig.stop().await;
    }
    // Passed by default (amavisd-new's final_unchecked_destiny), its subject tagged.
    let rig = with_clamd(|_| {}).await;
    let r = send(&rig, &bomb).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let text = String::from_utf8_lossy(&rig.sink.received()[0].data).into_owned();
    assert!(text.contains("Subject: ***UNCHECKED*** test\r\n"), "{text}");
    rig.stop().await;
}

/// Policy banks choose their own virus scanners (amavisd-new's `$policy_bank{..}{av_scanners}`):
/// a partner's mail goes to a clamd of its own. When that clamd is down, the partner's mail
/// waits (451) while everyone else's is scanned by the site's clamd and passes; a bank that
/// says scanner failures are not fatal passes its mail UNCHECKED instead.
#[tokio::test]
async fn a_policy_bank_brings_its_own_scanners() {
    let missing = tempfile::tempdir().unwrap().path().join("no-clamd.ctl");
    let toml = format!(
        "[policy_bank.PARTNER.av]\n\
         primary = [{{ name = \"partner-clamd\", type = \"clamd\", socket = {missing:?}, timeout = 5 }}]\n\
         [policy_bank.RELAXED]\n\
         virus_scan_failure = \"unchecked\"\n\
         [policy_bank.RELAXED.av]\n\
         primary = [{{ name = \"relaxed-clamd\", type = \"clamd\", socket = {missing:?}, timeout = 5 }}]\n\
         [[policy_bank_select]]\nsender = [\"partner.example\"]\nbank = \"PARTNER\"\n\
         [[policy_bank_select]]\nsender = [\"relaxed.example\"]\nbank = \"RELAXED\"\n"
    );
    let parsed = Config::from_toml(std::path::Path::new("bank-av.toml"), &toml)
        .unwrap()
        .into_raw();
    let rig = with_clamd(move |c| {
        c.policy_bank = parsed.policy_bank;
        c.policy_bank_select = parsed.policy_bank_select;
    })
    .await;
    let clean = attached("report.txt", b"quarterly figures");
    let from = |sender: &str| {
        let rig = &rig;
        let clean = clean.clone();
        let sender = sender.to_string();
        async move {
            rig.client()
                .await
                .send_mail(false, &sender, &["u@example.com"], &clean)
                .await
        }
    };
    let r = from("s@partner.example").await;
    assert!(
        r.starts_with("451 4.5.0"),
        "the partner's scanner is down: {r}"
    );
    assert!(rig.sink.received().is_empty());
    let r = from("s@example.org").await;
    assert!(r.starts_with("250 2.0.0"), "the site's scanner: {r}");
    let r = from("s@relaxed.example").await;
    assert!(
        r.starts_with("250 2.0.0"),
        "unchecked by the bank's policy: {r}"
    );
    let got = rig.sink.received();
    assert_eq!(got.len(), 2);
    assert!(String::from_utf8_lossy(&got[1].data).contains("***UNCHECKED***"));
    // The site's scanner still catches a virus from anyone else.
    let r = from("s@example.org").await;
    assert!(r.starts_with("250"), "{r}");
    let r = send(&rig, &attached("e.txt", &eicar())).await;
    assert!(r.contains("INFECTED"), "{r}");
    rig.stop().await;
}
