//! The verdict as tables: findings and policy in, category, destiny, reply and modifications
//! out, over every category x destiny x lover/bypass combination.

use super::*;
use crate::message::{BadHeader, BannedHit, SpamResult, Unchecked, VirusHit};
use std::collections::BTreeMap;

fn clean() -> CheckResults {
    CheckResults {
        dmarc_reject: false,
        parts: 1,
        unchecked: vec![],
        bad_header: vec![],
        banned: BTreeMap::from([("DEFAULT".to_string(), vec![])]),
        virus: VirusScan::Done {
            scanner: "ClamAV-clamd".into(),
            objects: 1,
            hits: vec![],
            failed: vec![],
        },
        virus_spam: vec![],
        virus_fakes_sender: false,
        spam: None,
        spam_per_user: Default::default(),
        bulk: false,
    }
}

fn virus(r: &mut CheckResults, name: &str) {
    if let VirusScan::Done { hits, .. } = &mut r.virus {
        hits.push(VirusHit {
            part: "p002".into(),
            names: vec![name.into()],
        });
    }
}

fn banned(r: &mut CheckResults, key: &str) {
    r.banned
        .entry("DEFAULT".into())
        .or_default()
        .push(BannedHit {
            part: "p003".into(),
            level: "1/2".into(),
            key: key.into(),
            rule: r"^\.(exe-ms|dll)$".into(),
            why: "executable".into(),
        });
}

fn unchecked(r: &mut CheckResults, minor: u8) {
    r.unchecked.push(Unchecked {
        minor,
        reason: "encrypted zip".into(),
    });
}

fn badh(r: &mut CheckResults) {
    r.bad_header.push(BadHeader {
        minor: 7,
        detail: "Missing required header field: \"Date\"".into(),
    });
}

fn spam(r: &mut CheckResults, score: f64) {
    r.spam = Some(SpamResult {
        score,
        tests: vec![
            ("BAYES_99".into(), 3.5),
            ("AV:Sanesecurity.Jurlbl.x".into(), 0.1),
        ],
        autolearn: "no".into(),
        dns: String::new(),
        dns_incomplete: false,
    });
}

fn failed(r: &mut CheckResults) {
    r.virus = VirusScan::Failed {
        reason: "ClamAV-clamd: cannot connect".into(),
    };
}

fn run(r: &CheckResults, p: &Policy) -> Verdict {
    run_at(r, p, "u@example.com", true, "s@example.org", 1000)
}

fn run_at(
    r: &CheckResults,
    p: &Policy,
    addr: &str,
    local: bool,
    sender: &str,
    size: u64,
) -> Verdict {
    decide(
        &MessageInput {
            results: r,
            am_id: "1-01",
            sender,
            size,
        },
        &RecipientInput {
            address: addr,
            policy: p,
            local,
            list: SenderList::None,
            bayes_user: None,
            report: None,
        },
    )
}

/// One blocking category: how to make it, how to set its destiny, lover, bypass, and the
/// reply text its reject carries.
struct Case {
    name: &'static str,
    category: Category,
    setup: fn(&mut CheckResults),
    destiny: fn(&mut Policy, Destiny),
    lover: Option<fn(&mut Policy)>,
    bypass: Option<fn(&mut Policy)>,
    /// Does a bypass leave the finding in place, loved (virus: others made the scan run)?
    bypass_keeps_category: bool,
    reject: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "virus",
            category: Category::Virus,
            setup: |r| virus(r, "Eicar-Test-Signature"),
            destiny: |p, d| p.final_virus_destiny = d,
            lover: Some(|p| p.virus_lover = true),
            bypass: Some(|p| p.bypass_virus_checks = true),
            bypass_keeps_category: true,
            reject: "554 5.7.0 Reject, id=1-01 - INFECTED: Eicar-Test-Signature",
        },
        Case {
            name: "banned",
            category: Category::Banned,
            setup: |r| banned(r, "T=.exe-ms (container p002)"),
            destiny: |p, d| p.final_banned_destiny = d,
            lover: Some(|p| p.banned_files_lover = true),
            bypass: Some(|p| p.bypass_banned_checks = true),
            bypass_keeps_category: false,
            reject: "554 5.7.0 Reject, id=1-01 - BANNED: .exe-ms",
        },
        Case {
            name: "unchecked",
            category: Category::Unchecked,
            setup: |r| unchecked(r, 1),
            destiny: |p, d| p.final_unchecked_destiny = d,
            lover: Some(|p| p.unchecked_lover = true),
            bypass: None,
            bypass_keeps_category: false,
            reject: "554 5.7.0 Reject, id=1-01 - UNCHECKED",
        },
        Case {
            name: "spam",
            category: Category::Spam,
            setup: |r| spam(r, 8.0),
            destiny: |p, d| p.final_spam_destiny = d,
            lover: Some(|p| p.spam_lover = true),
            bypass: Some(|p| p.bypass_spam_checks = true),
            bypass_keeps_category: false,
            reject: "554 5.7.0 Reject, id=1-01 - SPAM",
        },
        Case {
            name: "bad header",
            category: Category::BadHeader,
            setup: badh,
            destiny: |p, d| p.final_bad_header_destiny = d,
            lover: Some(|p| p.bad_header_lover = true),
            bypass: Some(|p| p.bypass_header_checks = true),
            bypass_keeps_category: false,
            reject: "554 5.6.0 Reject, id=1-01 - BAD HEADER SECTION",
        },
        Case {
            name: "oversized",
            category: Category::Oversized,
            setup: |_| {},
            destiny: |p, d| {
                p.final_oversized_destiny = d;
                p.message_size_limit = 500;
            },
            lover: None,
            bypass: None,
            bypass_keeps_category: false,
            reject: "552 5.3.4 Reject, id=1-01 - Message size exceeds recipient's size limit",
        },
    ]
}

#[test]
fn every_category_destiny_lover_and_bypass() {
    let destinies = [
        Destiny::Pass,
        Destiny::Discard,
        Destiny::Bounce,
        Destiny::Reject,
        Destiny::Tempfail,
    ];
    let mut rows = 0;
    for c in cases() {
        let mut r = clean();
        (c.setup)(&mut r);
        for d in destinies {
            let mut p = Policy::default();
            (c.destiny)(&mut p, d);
            let v = run(&r, &p);
            let what = format!("{} / {d:?}", c.name);
            assert_eq!(v.category, c.category, "{what}");
            assert_eq!(v.destiny, d, "{what}");
            let reply = v.reply.as_ref().map(Reply::one_line);
            let want = match d {
                Destiny::Pass => None,
                Destiny::Reject => Some(c.reject.to_string()),
                Destiny::Discard | Destiny::Bounce => {
                    Some(c.reject.replacen("Reject", "Ok, discarded", 1).replacen(
                        &c.reject[..9],
                        "250 2.7.0",
                        1,
                    ))
                }
                Destiny::Tempfail => Some(
                    c.reject
                        .replacen("Reject", "Temporary failure", 1)
                        .replacen(&c.reject[..5], "450 4", 1),
                ),
            };
            assert_eq!(reply, want, "{what}");
            assert_eq!(v.dsn_reply.is_some(), d == Destiny::Bounce, "{what}");
            rows += 1;
            if let Some(lover) = c.lover {
                let mut p = p.clone();
                lover(&mut p);
                let v = run(&r, &p);
                assert_eq!(
                    (v.category, v.destiny),
                    (c.category, Destiny::Pass),
                    "{what} lover"
                );
                rows += 1;
            }
            if let Some(bypass) = c.bypass {
                let mut p = p.clone();
                bypass(&mut p);
                let v = run(&r, &p);
                // A bypassed check finds nothing, except a virus scan that others made run.
                let cat = if c.bypass_keeps_category {
                    c.category
                } else {
                    Category::Clean
                };
                assert_eq!(
                    (v.category, v.destiny),
                    (cat, Destiny::Pass),
                    "{what} bypass"
                );
                rows += 1;
            }
        }
    }
    assert!(rows >= 70, "{rows} combinations");
}

#[test]
fn order_of_badness_and_first_blocking_category() {
    let mut r = clean();
    virus(&mut r, "X");
    banned(&mut r, "N=a.exe");
    badh(&mut r);
    spam(&mut r, 9.0);
    unchecked(&mut r, 2);
    let p = Policy::default();
    let v = run(&r, &p);
    assert_eq!(
        (v.category, v.destiny, v.blocked_by),
        (Category::Virus, Destiny::Discard, Category::Virus)
    );
    // The virus is loved: the banned part decides.
    let p = Policy {
        virus_lover: true,
        final_banned_destiny: Destiny::Reject,
        ..Policy::default()
    };
    let v = run(&r, &p);
    assert_eq!(
        (v.category, v.blocked_by, v.destiny),
        (Category::Virus, Category::Banned, Destiny::Reject)
    );
    assert_eq!(
        v.reply.unwrap().one_line(),
        "554 5.7.0 Reject, id=1-01 - BANNED: a.exe"
    );
    // Everything loved or passing: delivered with an alert for each bad category.
    let p = Policy {
        virus_lover: true,
        banned_files_lover: true,
        ..Policy::default()
    };
    let v = run(&r, &p);
    assert_eq!(v.destiny, Destiny::Pass);
    let alerts: Vec<&str> = v
        .headers
        .iter()
        .filter(|(n, _)| n == "X-Amavis-Alert")
        .map(|(_, b)| b.as_str())
        .collect();
    assert_eq!(
        alerts,
        [
            "INFECTED, message contains virus: X",
            "BANNED, message contains a.exe",
            "BAD HEADER SECTION, Missing required header field: \"Date\"",
        ]
    );
}

#[test]
fn spam_levels() {
    let p = Policy::default(); // tag 2, tag2 6.2, kill 6.9
    let at = |score: f64, p: &Policy| {
        let mut r = clean();
        spam(&mut r, score);
        let v = run(&r, p);
        (v.category, v.minor)
    };
    assert_eq!(at(1.0, &p), (Category::Clean, 0));
    assert_eq!(at(2.0, &p), (Category::Clean, 1));
    assert_eq!(at(6.2, &p), (Category::Spammy, 0));
    assert_eq!(at(6.9, &p), (Category::Spam, 0));
    let p3 = Policy {
        spam_tag3_level: Some(6.5),
        ..Policy::default()
    };
    assert_eq!(at(6.6, &p3), (Category::Spammy, 1));
    // Spammy is tagged, never blocked, whatever the spam destiny.
    let reject = Policy {
        final_spam_destiny: Destiny::Reject,
        ..Policy::default()
    };
    let mut r = clean();
    spam(&mut r, 6.5);
    assert_eq!(run(&r, &reject).destiny, Destiny::Pass);
    spam(&mut r, 7.0);
    assert_eq!(run(&r, &reject).destiny, Destiny::Reject);
}

#[test]
fn spam_headers_golden() {
    let mut r = clean();
    spam(&mut r, 7.1);
    let v = run(&r, &Policy::default());
    let text: String = v
        .headers
        .iter()
        .map(|(n, b)| format!("{n}: {b}\r\n"))
        .collect();
    let golden = include_str!("../../tests/fixtures/verdict/spam-headers.txt");
    assert_eq!(text, golden.replace('\n', "\r\n").replace("\r\r\n", "\r\n"));
    // Below the tag level: none; for a non-local recipient: none.
    let mut low = clean();
    spam(&mut low, 1.0);
    assert!(run(&low, &Policy::default()).headers.is_empty());
    let v = run_at(&r, &Policy::default(), "x@elsewhere.org", false, "s@x", 10);
    assert!(v.headers.is_empty() && !v.strip_spam_headers && v.subject_tag.is_empty());
    // No tag level: always.
    let p = Policy {
        spam_tag_level: None,
        ..Policy::default()
    };
    let v = run(&low, &p);
    assert_eq!(v.headers[0], ("X-Spam-Flag".to_string(), "NO".to_string()));
    assert!(v.headers[3].1.contains("tagged_above=-999"));
}

#[test]
fn subject_tags_and_extensions() {
    let mut r = clean();
    spam(&mut r, 6.5);
    let p = Policy {
        spam_subject_tag2: "[SPAM _SCORE_/_REQD_ _YESNO_] ".into(),
        addr_extension_spam: "spam".into(),
        ..Policy::default()
    };
    let v = run(&r, &p);
    assert_eq!(v.subject_tag, "[SPAM 6.5/6.2 Yes] ");
    assert_eq!(v.address, "u+spam@example.com");
    let mut r = clean();
    virus(&mut r, "Eicar");
    let p = Policy {
        virus_lover: true,
        ..Policy::default()
    };
    assert_eq!(run(&r, &p).subject_tag, "***INFECTED*** ");
    let mut r = clean();
    spam(&mut r, 3.0);
    assert_eq!(run(&r, &Policy::default()).subject_tag, "");
    let p = Policy {
        spam_subject_tag: "[maybe] ".into(),
        ..Policy::default()
    };
    assert_eq!(run(&r, &p).subject_tag, "[maybe] ");
}

#[test]
fn soft_bounce_turns_refusals_into_tempfails() {
    let mut r = clean();
    virus(&mut r, "X");
    for d in [Destiny::Reject, Destiny::Bounce] {
        let p = Policy {
            final_virus_destiny: d,
            soft_bounce: true,
            ..Policy::default()
        };
        let v = run(&r, &p);
        assert_eq!(v.destiny, Destiny::Tempfail);
        assert_eq!(v.reply.unwrap().code, 450);
    }
}

#[test]
fn scan_failure_waits_by_default_or_is_unchecked() {
    let mut r = clean();
    failed(&mut r);
    let v = run(&r, &Policy::default());
    assert_eq!(v.destiny, Destiny::Tempfail);
    assert_eq!(
        v.reply.unwrap().one_line(),
        "451 4.5.0 Error in processing, id=1-01, virus_scan FAILED: all virus scanners failed"
    );
    let p = Policy {
        virus_scan_failure: ScanFailure::Unchecked,
        ..Policy::default()
    };
    let v = run(&r, &p);
    assert_eq!(
        (v.category, v.destiny),
        (Category::Unchecked, Destiny::Pass)
    );
    let p = Policy {
        bypass_virus_checks: true,
        ..Policy::default()
    };
    assert_eq!(run(&r, &p).destiny, Destiny::Pass);
}

#[test]
fn bounces_are_suppressed_where_amavisd_new_suppresses_them() {
    let p = Policy {
        final_virus_destiny: Destiny::Bounce,
        final_spam_destiny: Destiny::Bounce,
        ..Policy::default()
    };
    let mut r = clean();
    virus(&mut r, "Worm.Mydoom.A");
    assert!(!run(&r, &p).suppress_dsn);
    assert!(
        run_at(&r, &p, "u@example.com", true, "", 10).suppress_dsn,
        "null sender"
    );
    r.virus_fakes_sender = true;
    assert!(run(&r, &p).suppress_dsn, "faked sender");
    let mut r = clean();
    spam(&mut r, 8.0);
    assert!(!run(&r, &p).suppress_dsn);
    spam(&mut r, 12.0);
    assert!(run(&r, &p).suppress_dsn, "above the DSN cut-off");
    let mut r = clean();
    virus(&mut r, "Eicar");
    r.bulk = true;
    assert!(run(&r, &p).suppress_dsn, "list mail");
}

#[test]
fn admins_and_recipient_warnings() {
    let mut r = clean();
    virus(&mut r, "X");
    let p = Policy {
        virus_admin: "virusalert@example.com".into(),
        warn_virus_recip: true,
        ..Policy::default()
    };
    let v = run(&r, &p);
    assert_eq!(v.admin, "virusalert@example.com");
    assert!(v.warn_recipient);
}

#[test]
fn findings_cannot_inject_header_lines() {
    let mut r = clean();
    virus(&mut r, "Evil\r\nX-Spam-Flag: NO");
    let p = Policy {
        virus_lover: true,
        ..Policy::default()
    };
    let v = run(&r, &p);
    assert!(
        v.headers
            .iter()
            .all(|(_, b)| !b.contains('\n') && !b.contains('\r'))
    );
}

#[test]
fn white_and_blacklists_move_the_spam_score() {
    let listed = |r: &CheckResults, list: SenderList| {
        decide(
            &MessageInput {
                results: r,
                am_id: "1",
                sender: "s@x",
                size: 10,
            },
            &RecipientInput {
                address: "u@example.com",
                policy: &Policy::default(),
                local: true,
                list,
                bayes_user: None,
                report: None,
            },
        )
    };
    let mut r = clean();
    spam(&mut r, 8.0);
    assert_eq!(listed(&r, SenderList::None).category, Category::Spam);
    assert_eq!(listed(&r, SenderList::White).category, Category::Clean);
    assert_eq!(
        listed(&r, SenderList::Score(-1.5)).category,
        Category::Spammy
    );
    let c = clean();
    let v = listed(&c, SenderList::Black);
    assert_eq!(
        v.category,
        Category::Spam,
        "blacklisted without a spam check"
    );
    assert!(v.headers.is_empty() || v.destiny == Destiny::Pass);
    assert_eq!(SenderList::parse("W"), SenderList::White);
    assert_eq!(SenderList::parse(" -3.5 "), SenderList::Score(-3.5));
    assert_eq!(SenderList::parse("NaN"), SenderList::None);
}

#[test]
fn a_report_copy_goes_no_further_whatever_it_carries() {
    let mut infected = clean();
    virus(&mut infected, "Eicar-Test-Signature");
    let learned = Reply::new(250, "2.7.0", "Ok, 1 reported message(s) learned");
    let outside = Reply::new(554, "5.7.1", "Reports are taken from local users only");
    // (results, answer, destiny)
    for (r, answer, destiny) in [
        (clean(), &learned, Destiny::Discard),
        (infected.clone(), &learned, Destiny::Discard),
        (clean(), &outside, Destiny::Reject),
        (infected, &outside, Destiny::Reject),
    ] {
        let v = decide(
            &MessageInput {
                results: &r,
                am_id: "1",
                sender: "s@x",
                size: 10,
            },
            &RecipientInput {
                address: "spam@example.com",
                policy: &Policy::default(),
                local: true,
                list: SenderList::None,
                bayes_user: None,
                report: Some(answer),
            },
        );
        assert_eq!(v.destiny, destiny);
        assert_eq!(v.reply.as_ref(), Some(answer));
        // Never quarantined or notified, and no fields for a copy nobody gets.
        assert_eq!(v.blocked_by, Category::Clean);
        assert!(v.admin.is_empty() && !v.warn_recipient && v.headers.is_empty());
    }
}
