//! The verdict as a table: findings and policy in, category, destiny and reply out.

use super::*;
use crate::message::{BadHeader, BannedHit, Unchecked, VirusHit};
use std::collections::BTreeMap;

fn clean() -> CheckResults {
    CheckResults {
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

fn failed(r: &mut CheckResults) {
    r.virus = VirusScan::Failed {
        reason: "ClamAV-clamd: cannot connect".into(),
    };
}

type Setup = fn(&mut CheckResults);
type Tweak = fn(&mut Policy);
/// What, findings, policy change, then the expected category, minor, destiny and reply.
type Row = (
    &'static str,
    Setup,
    Tweak,
    Category,
    u8,
    Destiny,
    Option<&'static str>,
);

#[test]
fn table() {
    let none: Tweak = |_| {};
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("clean", |_| {}, none, Category::Clean, 0, Destiny::Pass, None),
        ("virus: discarded by default", |r| virus(r, "Eicar-Test-Signature"), none,
            Category::Virus, 0, Destiny::Discard,
            Some("250 2.7.0 Ok, discarded, id=1-01 - INFECTED: Eicar-Test-Signature")),
        ("virus: rejected by policy", |r| virus(r, "Eicar-Test-Signature"),
            |p| p.final_virus_destiny = Destiny::Reject, Category::Virus, 0, Destiny::Reject,
            Some("554 5.7.0 Reject, id=1-01 - INFECTED: Eicar-Test-Signature")),
        ("virus: bounced", |r| virus(r, "W32.Worm"), |p| p.final_virus_destiny = Destiny::Bounce,
            Category::Virus, 0, Destiny::Bounce,
            Some("250 2.7.0 Ok, discarded, id=1-01 - INFECTED: W32.Worm")),
        ("virus: tempfail destiny", |r| virus(r, "X"), |p| p.final_virus_destiny = Destiny::Tempfail,
            Category::Virus, 0, Destiny::Tempfail,
            Some("450 4.7.0 Temporary failure, id=1-01 - INFECTED: X")),
        ("virus beats banned", |r| { banned(r, "N=a.exe"); virus(r, "X") }, none,
            Category::Virus, 0, Destiny::Discard,
            Some("250 2.7.0 Ok, discarded, id=1-01 - INFECTED: X")),
        ("banned: discarded, named by value", |r| banned(r, "T=.exe-ms (container p002)"), none,
            Category::Banned, 0, Destiny::Discard,
            Some("250 2.7.0 Ok, discarded, id=1-01 - BANNED: .exe-ms")),
        ("banned: bypassed", |r| banned(r, "N=a.exe"), |p| p.bypass_banned_checks = true,
            Category::Clean, 0, Destiny::Pass, None),
        ("banned: other rule set chosen, no hit there", |r| banned(r, "N=a.exe"),
            |p| p.banned_rules = "SITE".into(), Category::Clean, 0, Destiny::Pass, None),
        ("virus passed: banned below it rejects", |r| { virus(r, "X"); banned(r, "N=a.exe") },
            |p| { p.final_virus_destiny = Destiny::Pass; p.final_banned_destiny = Destiny::Reject },
            Category::Banned, 0, Destiny::Reject,
            Some("554 5.7.0 Reject, id=1-01 - BANNED: a.exe")),
        ("unchecked encrypted passes", |r| unchecked(r, 1), none,
            Category::Unchecked, 1, Destiny::Pass, None),
        ("unchecked rejected by policy", |r| unchecked(r, 2),
            |p| p.final_unchecked_destiny = Destiny::Reject, Category::Unchecked, 2, Destiny::Reject,
            Some("554 5.7.0 Reject, id=1-01 - UNCHECKED")),
        ("bad header passes", badh, none, Category::BadHeader, 7, Destiny::Pass, None),
        ("bad header rejected: 5.6.0", badh, |p| p.final_bad_header_destiny = Destiny::Reject,
            Category::BadHeader, 7, Destiny::Reject,
            Some("554 5.6.0 Reject, id=1-01 - BAD HEADER SECTION")),
        ("bad header bypassed", badh, |p| p.bypass_header_checks = true,
            Category::Clean, 0, Destiny::Pass, None),
        ("scan failure as unchecked", failed, |p| p.virus_scan_failure = ScanFailure::Unchecked,
            Category::Unchecked, 0, Destiny::Pass, None),
        ("scan failure unchecked, unchecked rejected", failed,
            |p| { p.virus_scan_failure = ScanFailure::Unchecked; p.final_unchecked_destiny = Destiny::Reject },
            Category::Unchecked, 0, Destiny::Reject, Some("554 5.7.0 Reject, id=1-01 - UNCHECKED")),
        ("not scanned (no scanner) is clean", |r| r.virus = VirusScan::NotScanned, none,
            Category::Clean, 0, Destiny::Pass, None),
    ];
    for (what, setup, tweak, cat, minor, destiny, reply) in rows {
        let mut r = clean();
        setup(&mut r);
        let mut p = Policy::default();
        tweak(&mut p);
        let v = decide(&r, &p, "1-01", "s@example.org").expect(what);
        assert_eq!(
            (v.category, v.minor, v.destiny),
            (cat, minor, destiny),
            "{what}"
        );
        assert_eq!(v.reply.map(|r| r.one_line()).as_deref(), reply, "{what}");
    }
}

#[test]
fn scan_failure_waits_by_default() {
    let mut r = clean();
    failed(&mut r);
    assert_eq!(decide(&r, &Policy::default(), "1-01", "s@x"), None);
    let reply = scan_failed_reply("1-01", "ClamAV-clamd: cannot connect");
    assert_eq!(
        reply.one_line(),
        "451 4.5.0 Error in processing, id=1-01, virus_scan FAILED: ClamAV-clamd: cannot connect"
    );
}

#[test]
fn passed_categories_add_alerts() {
    let mut r = clean();
    virus(&mut r, "Eicar-Test-Signature");
    banned(&mut r, "N=x.scr");
    badh(&mut r);
    let p = Policy {
        final_virus_destiny: Destiny::Pass,
        final_banned_destiny: Destiny::Pass,
        ..Policy::default()
    };
    let v = decide(&r, &p, "1-01", "s@x").unwrap();
    assert_eq!(v.category, Category::Virus);
    let alerts: Vec<&str> = v.headers.iter().map(|(_, b)| b.as_str()).collect();
    assert_eq!(
        alerts,
        [
            "INFECTED, message contains virus: Eicar-Test-Signature",
            "BANNED, message contains x.scr",
            "BAD HEADER SECTION, Missing required header field: \"Date\"",
        ]
    );
}

#[test]
fn bounces_are_suppressed_for_null_sender_and_faked_senders() {
    let p = Policy {
        final_virus_destiny: Destiny::Bounce,
        ..Policy::default()
    };
    let mut r = clean();
    virus(&mut r, "Worm.Mydoom.A");
    assert!(!decide(&r, &p, "1", "s@x").unwrap().suppress_dsn);
    assert!(decide(&r, &p, "1", "").unwrap().suppress_dsn);
    r.virus_fakes_sender = true;
    assert!(decide(&r, &p, "1", "s@x").unwrap().suppress_dsn);
}

#[test]
fn findings_cannot_inject_header_lines() {
    let mut r = clean();
    virus(&mut r, "Evil\r\nX-Spam-Flag: NO");
    let p = Policy {
        final_virus_destiny: Destiny::Pass,
        ..Policy::default()
    };
    let v = decide(&r, &p, "1", "s@x").unwrap();
    assert!(
        v.headers
            .iter()
            .all(|(_, b)| !b.contains('\n') && !b.contains('\r'))
    );
}
