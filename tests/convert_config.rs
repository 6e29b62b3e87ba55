//! `amavisd convert-config`: an amavisd-new configuration becomes TOML that our loader
//! accepts, with the common settings carried over and the rest listed by name. Two inputs:
//! Debian's own conf.d files (package amavisd-new, installed by .ci/run) and a hand-written
//! amavisd.conf with policy banks, ports, SQL and banned rules
//! (tests/fixtures/convert/amavisd.conf).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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
    let cfg = Config::load(&path)
        .unwrap_or_else(|e| panic!("{e}\n{toml}"))
        .into_raw();
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
    // The clamd entry of @av_scanners; the others (programs amavisd-new would look for)
    // are listed.
    assert_eq!(cfg.av.primary.len(), 1);
    assert_eq!(
        cfg.av.primary[0].socket.as_deref(),
        Some(Path::new("/var/run/clamav/clamd.ctl"))
    );
    // 25-amavis_helpers: the unix socket is AM.PDP, for amavisd-release: our release socket.
    assert_eq!(cfg.release.unix, Path::new("/var/lib/amavis/amavisd.sock"));
    assert!(!cfg.release.require_secret);
    assert!(cfg.listen.iter().all(|l| l.unix.is_none()), "{toml}");
    assert!(!toml.contains("AM.PDP-SOCK"), "{toml}");
    // $mydomain comes from /etc/mailname through Perl code: what uses it is left out, not
    // converted wrong.
    assert!(stderr.contains("$virus_admin"), "{stderr}");
    for name in ["@av_scanners (not clamd): ", "$DO_SYSLOG", "chomp()"] {
        assert!(stderr.contains(name), "{name} not listed: {stderr}");
        assert!(
            toml.contains(&format!("#   {name}")),
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
        "$max_servers",
        "read_hash()",
    ] {
        assert!(stderr.contains(name), "{name} not listed: {stderr}");
    }
    // Lovers in an ACL become recipient tables; the clamd entry our scanner.
    assert!(
        !stderr.contains("@spam_lovers_maps") && !stderr.contains("@av_scanners"),
        "{stderr}"
    );
    assert_eq!(
        cfg.recipients["spamlover@example.com"].get("spam_lover"),
        Some(&toml::Value::Boolean(true))
    );
    assert_eq!(cfg.av.primary[0].name, "ClamAV-clamd");
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

/// The upstream sample's shapes: an AM.PDP port, the banned rules with their look-ahead,
/// clamd over TCP, lovers in ACLs, a client-address bank with its own scanner, and the
/// settings we have keys for. What comes out loads, and says what it left.
#[test]
fn an_upstream_style_amavisd_conf_converts() {
    let conf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/convert/amavisd-sample.conf");
    let (toml, stderr, cfg) = convert(&[conf]);
    // The AM.PDP port is the release socket, not an SMTP listener.
    let ports: Vec<&str> = cfg
        .listen
        .iter()
        .filter_map(|l| l.inet.as_deref())
        .collect();
    assert_eq!(ports, ["127.0.0.1:10024"], "{toml}");
    assert_eq!(cfg.release.inet, "127.0.0.1:9998");
    assert!(!cfg.release.require_secret);
    assert!(!cfg.policy_bank.contains_key("AM.PDP-INET"), "{toml}");
    // Limits.
    assert_eq!(cfg.limits.idle_timeout, 300);
    assert_eq!(cfg.limits.data_timeout, 300);
    assert_eq!(cfg.limits.recipient_limit, 500);
    assert_eq!(cfg.limits.message_size_limit, 40 * 1024 * 1024);
    // Lovers: the ACL's entries, negation included.
    let lover = |k: &str| {
        cfg.recipients
            .get(k)
            .and_then(|t| t.get("virus_lover"))
            .cloned()
    };
    assert_eq!(
        lover("postmaster@example.org"),
        Some(toml::Value::Boolean(true))
    );
    assert_eq!(
        lover("nolove@example.org"),
        Some(toml::Value::Boolean(false))
    );
    assert_eq!(lover(".lab.example.org"), Some(toml::Value::Boolean(true)));
    assert_eq!(
        cfg.recipients["helpdesk@example.org"].get("banned_files_lover"),
        Some(&toml::Value::Boolean(true))
    );
    // The client-address bank, with its own clamd and failure handling.
    let sel = cfg
        .policy_bank_select
        .iter()
        .find(|s| s.bank == "PARTNER")
        .expect("the PARTNER selection");
    assert_eq!(sel.client, ["192.0.2.0/24", "!192.0.2.128/25"]);
    let banks = cfg.bank_scanners().unwrap();
    assert_eq!(
        banks["PARTNER"].primary[0].tcp,
        Some("10.9.9.9:3310".parse().unwrap())
    );
    let policies = cfg.policies().unwrap();
    assert_eq!(
        policies.bank("PARTNER").unwrap().virus_scan_failure,
        amavisd::policy_bank::ScanFailure::Tempfail
    );
    assert_eq!(
        cfg.policy.virus_scan_failure,
        amavisd::policy_bank::ScanFailure::Unchecked
    );
    assert_eq!(cfg.policy.banned_quarantine_method, "local:banned-%m");
    assert_eq!(
        cfg.av.primary[0].tcp,
        Some("127.0.0.1:3310".parse().unwrap())
    );
    // The look-ahead rule is kept (the filter runs it on fancy-regex) and works.
    let sets = cfg.banned.compile().unwrap();
    let site = &sets["SITE"];
    let hit = |name: &str| {
        site.rules
            .iter()
            .any(|r| r.action == amavisd::banned::Action::Ban && r.matches(name))
    };
    assert!(hit("invoice.pdf.exe") && !hit("cid:x.pdf.exe") && !hit("notes.txt"));
    // A regex neither engine takes is listed, never written.
    assert!(stderr.contains("perl-code-in-a-regex"), "{stderr}");
    assert!(
        !toml.contains("perl-code-in-a-regex\n") || toml.contains("#   $banned_filename_re"),
        "{toml}"
    );
    assert!(
        stderr.contains("@av_scanners (not clamd): Sophie"),
        "{stderr}"
    );
    for name in [
        "$smtpd_timeout",
        "@virus_lovers_maps",
        "@virus_lovers_acl",
        "@client_ipaddr_policy",
        "$inet_socket_port",
    ] {
        assert!(!stderr.contains(name), "{name} listed: {stderr}");
    }
}

/// amavisd-new's own list of its settings and their defaults (amavisd.conf-default, shipped
/// by Debian's package), every one-line assignment uncommented: whatever of it is converted
/// or listed, the TOML that comes out loads.
#[test]
fn every_setting_of_amavisd_conf_default_gives_toml_that_loads() {
    let default = Path::new("/usr/share/doc/amavisd-new/examples/amavisd.conf-default");
    let text = std::fs::read_to_string(default).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (apt-get install amavisd-new; .ci/run does)",
            default.display()
        )
    });
    let re = regex::Regex::new(r"^#\s*([$@%][A-Za-z_][A-Za-z0-9_]*(\{[^}]*\})?\s*=.*;)\s*(#.*)?$")
        .unwrap();
    let lines: Vec<String> = text
        .lines()
        .filter_map(|l| re.captures(l).map(|c| c[1].to_string()))
        .filter(|l| !l.contains("..."))
        .collect();
    assert!(lines.len() > 150, "{} assignments", lines.len());
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("amavisd.conf");
    std::fs::write(&conf, format!("use strict;\n{}\n1;\n", lines.join("\n"))).unwrap();
    let (_, stderr, _) = convert(&[conf]);
    assert!(stderr.contains("not converted"), "{stderr}");
}
