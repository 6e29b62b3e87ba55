//! `amavisd convert-config`: an amavisd-new configuration becomes TOML that our loader
//! accepts, with the common settings carried over and the rest listed by name. Two inputs:
//! Debian's own conf.d files (package amavisd-new, installed by .ci/run) and a hand-written
//! amavisd.conf with policy banks, ports, SQL and banned rules
//! (tests/fixtures/convert/amavisd.conf).

use amavisd::config::Config;
use amavisd::message::Destiny;
use std::path::{Path, PathBuf};
use std::process::Command;

const AMAVISD: &str = env!("CARGO_BIN_EXE_amavisd");

/// Runs `amavisd convert-config FILES`; (TOML, stderr), the TOML also loaded as our config.
fn convert(files: &[PathBuf]) -> (String, String, Config) {
    let out = Command::new(AMAVISD)
        .arg("convert-config")
        .args(files)
        .output()
        .expect("amavisd");
    assert!(out.status.success(), "{out:?}");
    let toml = String::from_utf8(out.stdout).expect("UTF-8");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("amavisd.toml");
    std::fs::write(&path, &toml).expect("write");
    let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    (toml, String::from_utf8_lossy(&out.stderr).into_owned(), cfg)
}

#[test]
fn debians_conf_d_converts() {
    let dir = Path::new("/etc/amavis/conf.d");
    assert!(
        dir.is_dir(),
        "Debian's amavisd-new configuration is missing: apt-get install amavisd-new (.ci/run does)"
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("conf.d")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let (toml, stderr, cfg) = convert(&files);
    // 20-debian_defaults.
    assert_eq!(cfg.policy.spam_kill_level, 6.31);
    assert_eq!(cfg.policy.spam_tag2_level, 6.31);
    assert_eq!(cfg.policy.final_virus_destiny, Destiny::Discard);
    assert_eq!(cfg.policy.final_spam_destiny, Destiny::Pass);
    assert_eq!(cfg.spam.max_size, 200 * 1024);
    assert_eq!(cfg.decode.max_files, 1500);
    assert_eq!(
        cfg.quarantine.directory,
        Path::new("/var/lib/amavis/virusmails")
    );
    assert_eq!(cfg.policy.banned_rules, "SITE");
    assert!(
        toml.contains("'(?i).\\.(exe|vbs|pif|scr|bat|cmd|com|cpl)$'"),
        "{toml}"
    );
    assert!(
        cfg.listen
            .iter()
            .any(|l| l.inet.as_deref() == Some("127.0.0.1:10024"))
    );
    // $mydomain comes from /etc/mailname through Perl code: what uses it is left out, not
    // converted wrong.
    assert!(stderr.contains("$virus_admin"), "{stderr}");
    for name in ["@av_scanners", "$DO_SYSLOG", "chomp()"] {
        assert!(stderr.contains(name), "{name} not listed: {stderr}");
        assert!(
            toml.contains(&format!("#   {name}\n")),
            "{name} not in the TOML's comment"
        );
    }
}

#[test]
fn a_sites_amavisd_conf_converts() {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/convert/amavisd.conf");
    let (toml, stderr, cfg) = convert(&[conf]);
    assert_eq!(cfg.myhostname, "mx1.example.com");
    assert_eq!(cfg.user, "amavis");
    assert_eq!(cfg.mynetworks, ["127.0.0.0/8", "[::1]", "192.0.2.0/24"]);
    assert_eq!(cfg.policy.local_domains, [".example.com", "example.net"]);
    let ports: Vec<&str> = cfg
        .listen
        .iter()
        .filter_map(|l| l.inet.as_deref())
        .collect();
    assert_eq!(ports, ["127.0.0.1:10024", "127.0.0.1:10026"]);
    assert_eq!(cfg.sql.url, "postgres://amavis:secret@127.0.0.1:5432/mail");
    // undef tag level: headers at every score.
    assert_eq!(cfg.policy.spam_tag_level, Some(-999.0));
    assert_eq!(cfg.policy.spam_tag2_level, 5.0);
    assert_eq!(cfg.policy.spam_subject_tag2, "[SPAM] ");
    assert_eq!(cfg.policy.final_banned_destiny, Destiny::Bounce);
    assert_eq!(cfg.policy.virus_quarantine_method, "sql:");
    assert_eq!(cfg.decode.max_expansion_quota, 100 * 1024 * 1024);
    // The banks, and the port that loads ORIGINATING.
    let policies = cfg.policies().expect("policies");
    let orig = policies.bank("ORIGINATING").expect("ORIGINATING");
    assert!(orig.originating && orig.bypass_spam_checks);
    assert_eq!(orig.final_virus_destiny, Destiny::Reject);
    assert_eq!(orig.virus_admin, "virusalert@example.com");
    assert_eq!(
        policies.bank("MYNETS").expect("MYNETS").spam_kill_level,
        12.0
    );
    assert!(
        toml.contains("[[policy_bank_select]]\nbank = \"ORIGINATING\"\nport = 10026"),
        "{toml}"
    );
    // Banned rules keep their order and meaning: archives allowed, then executables.
    assert!(
        toml.contains("action = \"allow\"\nregex = '^\\.(zip|rar)$'"),
        "{toml}"
    );
    // Listed by name: what has no equivalent or no simple form.
    for name in [
        "$policy_bank{'ORIGINATING'}{forward_method}",
        "@spam_lovers_maps",
        "@av_scanners",
        "$max_servers",
        "read_hash()",
    ] {
        assert!(stderr.contains(name), "{name} not listed: {stderr}");
    }
    assert!(!stderr.contains("$MYHOME"), "{stderr}");
    // DKIM: both switches and the key.
    assert!(cfg.dkim.verify && cfg.dkim.sign);
    assert_eq!(cfg.dkim.keys.len(), 1);
    assert_eq!(
        (
            cfg.dkim.keys[0].domain.as_str(),
            cfg.dkim.keys[0].selector.as_str()
        ),
        ("example.com", "dkim")
    );
    assert!(!stderr.contains("dkim"), "{stderr}");
}

#[test]
fn no_file_is_an_error() {
    let out = Command::new(AMAVISD)
        .arg("convert-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = Command::new(AMAVISD)
        .args(["convert-config", "/nonexistent/amavisd.conf"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/amavisd.conf"));
}
