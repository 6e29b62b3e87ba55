//! The front-end check API (`Pipeline::check`): the verdict per recipient with what explains
//! it, and nothing delivered (the next hop here is a closed port: a delivery would fail).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod av_common;
mod common;
mod decode_common;
use common::*;
use decode_common::*;

use amavisd::message::{
    Category, ClientInfo, Destiny, Envelope, Protocol, Recipient, Spool, VirusScan,
};
use amavisd::pipeline::{CheckOptions, Pipeline};
use std::sync::Arc;

fn envelope(rcpts: &[&str]) -> Envelope {
    Envelope {
        mail_from: "s@example.org".into(),
        mail_params: vec![],
        recipients: rcpts
            .iter()
            .map(|a| Recipient {
                address: a.to_string(),
                params: vec![],
            })
            .collect(),
        client: ClientInfo::default(),
        protocol: Protocol::Smtp,
        received_at: std::time::SystemTime::now(),
    }
}

/// A pipeline with a lover of banned files: the bank LOVERS, or lover@example.com.
fn with_lovers(tmp: &std::path::Path, at_bank: bool) -> Pipeline {
    let mut c = config(&closed_next_hop(), tmp);
    let lover: toml::Table = "banned_files_lover = true".parse().unwrap();
    if at_bank {
        c.policy_bank.insert("LOVERS".into(), lover);
    } else {
        c.recipients.insert("lover@example.com".into(), lover);
    }
    Pipeline::new(Arc::new(valid(c))).unwrap()
}

fn closed_next_hop() -> String {
    format!("smtp:[127.0.0.1]:{}", free_port())
}

#[tokio::test]
async fn verdicts_per_recipient_with_their_reasons() {
    let tmp = tempfile::tempdir().unwrap();
    let pipeline = with_lovers(tmp.path(), false);
    let exe = exe_mail();
    let clean =
        b"From: a@example.org\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: hi\r\n\r\nhello\r\n"
            .to_vec();
    let rcpts = ["lover@example.com", "other@example.com"];
    // (message, recipient index, category, destiny, detail)
    let cases: [(&[u8], usize, Category, Destiny, &str); 4] = [
        (&exe, 0, Category::Banned, Destiny::Pass, "invoice.pdf.exe"),
        (
            &exe,
            1,
            Category::Banned,
            Destiny::Discard,
            "invoice.pdf.exe",
        ),
        (&clean, 0, Category::Clean, Destiny::Pass, ""),
        (&clean, 1, Category::Clean, Destiny::Pass, ""),
    ];
    for (msg, i, category, destiny, detail) in cases {
        let spool = Spool::from_bytes(msg.to_vec());
        let a = pipeline.check(envelope(&rcpts), spool).await.unwrap();
        assert_eq!(a.recipients.len(), 2);
        let r = &a.recipients[i];
        assert_eq!(r.address, rcpts[i]);
        assert_eq!(r.verdict.category, category, "{i}: {r:?}");
        assert_eq!(r.verdict.destiny, destiny, "{i}: {r:?}");
        assert_eq!(r.verdict.detail, detail, "{i}: {r:?}");
        assert!(!a.am_id.is_empty() && !a.mail_id.is_empty());
        assert_eq!(a.banks, "");
        if category == Category::Banned {
            // The part and the rule that matched are there to explain it.
            let hits: Vec<_> = a.results.banned.values().flatten().collect();
            assert_eq!(hits.len(), 1, "{hits:?}");
            assert_eq!(hits[0].value(), "invoice.pdf.exe");
            assert!(!hits[0].part.is_empty());
        }
    }
}

#[tokio::test]
async fn a_recipient_lookup_that_fails_is_a_tempfail() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = config(&closed_next_hop(), tmp.path());
    c.sql.url = format!("postgres://postgres@127.0.0.1:{}/test", free_port());
    c.sql.lookups = true;
    c.sql.timeout = 1;
    let pipeline = Pipeline::new(Arc::new(valid(c))).unwrap();
    let spool = Spool::from_bytes(b"Subject: hi\r\n\r\nhello\r\n".to_vec());
    let t = pipeline
        .check(envelope(&["u@example.com"]), spool)
        .await
        .unwrap_err();
    assert_eq!(t.reply.code, 451, "{t:?}");
    assert!(t.reply.text.contains("SQL lookup"), "{t:?}");
    assert!(t.reason.is_some_and(|r| r.contains("<u@example.com>")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spam_only_scope_asks_the_spam_engine_alone() {
    // What the spamd listener asks: a virus scanner that would fail (a closed port) is not
    // asked, nothing is decoded, and the engine's whole outcome comes back.
    let tmp = tempfile::tempdir().unwrap();
    let mut c = config(&closed_next_hop(), tmp.path());
    c.spam.enabled = true;
    c.spam.rules_dir = "/usr/share/spamassassin".into();
    c.spam.site_dir = "/etc/spamassassin".into();
    c.av.primary = vec![amavisd::av::ScannerConfig {
        socket: None,
        tcp: Some(format!("127.0.0.1:{}", free_port()).parse().unwrap()),
        ..av_common::clamd_at(std::path::PathBuf::new(), 5)
    }];
    let pipeline = Pipeline::new(Arc::new(valid(c))).unwrap();
    let gtube =
        b"From: a@example.org\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: x\r\n\r\n\
        XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n";
    let spool = Arc::new(Spool::from_bytes(gtube.to_vec()));
    let env = envelope(&[]);
    let a = pipeline
        .check_with(env, spool, &CheckOptions::spam_only())
        .await
        .unwrap();
    let o = a.spam.expect("the spam engine's outcome");
    assert!(o.is_spam(), "{o:?}");
    assert!(o.hits.iter().any(|h| h.name == "GTUBE"), "{o:?}");
    assert_eq!(a.results.virus, VirusScan::NotScanned);
    assert_eq!(a.results.parts, 0, "nothing decoded");
    assert!(a.recipients.is_empty());
    // The full scope, on the same pipeline, does ask the scanner: it fails, and the
    // message waits.
    let full = pipeline
        .check(
            envelope(&["u@example.com"]),
            Spool::from_bytes(gtube.to_vec()),
        )
        .await
        .unwrap();
    assert!(matches!(full.results.virus, VirusScan::Failed { .. }));
    assert_eq!(full.recipients[0].verdict.destiny, Destiny::Tempfail);
}

#[tokio::test]
async fn a_front_end_names_its_policy_bank() {
    // A milter's {daemon_name} picks a bank as a listening port does for SMTP.
    let tmp = tempfile::tempdir().unwrap();
    let pipeline = with_lovers(tmp.path(), true);
    let exe = exe_mail();
    // (banks named, bank path, destiny)
    let cases: [(&[&str], &str, Destiny); 3] = [
        (&[], "", Destiny::Discard),
        (&["LOVERS"], "LOVERS", Destiny::Pass),
        (&["NO-SUCH-BANK"], "", Destiny::Discard),
    ];
    for (banks, path, destiny) in cases {
        let opts = CheckOptions {
            banks: banks.iter().map(|b| b.to_string()).collect(),
            ..CheckOptions::default()
        };
        let spool = Arc::new(Spool::from_bytes(exe.clone()));
        let a = pipeline
            .check_with(envelope(&["u@example.com"]), spool, &opts)
            .await
            .unwrap();
        assert_eq!(a.banks, path, "{banks:?}");
        let v = &a.recipients[0].verdict;
        assert_eq!(v.category, Category::Banned, "{banks:?}");
        assert_eq!(v.destiny, destiny, "{banks:?}");
    }
}
