//! amavisd-rs: a content filter in Postfix's `content_filter` slot, compatible with amavisd-new.
//!
//! # Layout
//! The pipeline runs in one direction, and stages exchange only the plain types of [`message`]:
//!
//! - [`catch_panic`]: a panic becomes an error for one message or one archive reader.
//! - [`config`]: the TOML file, validated; every limit with its default and reason.
//! - [`smtp_in`]: listeners, framing with hard caps, the SMTP/LMTP session state machine.
//! - [`policy_bank`]: the settings that decide what happens to checked mail.
//! - [`decode`]: a message as a flat list of parts: MIME tree, archives, types, bad headers,
//!   within hard limits.
//! - [`av`]: virus scanners behind one trait: clamd and command-line programs.
//! - [`banned`]: banned names and types over the decoded parts, amavisd-new's rule semantics.
//! - [`verdict`]: check results and policy in, category, destiny, reply and headers out.
//! - [`pipeline`]: what happens to one received message: checks, verdict, trace headers,
//!   reinjection, the reply contract (DESIGN.md §3), DSNs and the log line.
//! - [`smtp_out`]: the reinjection client (SMTP/LMTP, pipelining, XFORWARD, DSN parameters,
//!   per-recipient results, connection cache) and DSN composition.
//! - [`quarantine`]: blocked mail kept durably, in files or SQL, as amavisd-new keeps it.
//! - [`release`]: the AM.PDP server that releases quarantined mail (`amavisd-release`).
//! - [`sql_log`]: amavisd-new's SQL log tables on SQLite, PostgreSQL or MariaDB.
//! - [`spam`]: the embedded spam engine, starting with SpamAssassin's rule files.
//! - [`dkim`]: DKIM verification (`Authentication-Results`), signing of our users' mail, and
//!   the key tools.
//! - [`server`]: process life: signals, reload, pid file.
//! - [`load`]: the load generator behind `amavisd-load`.
//! - [`sink`]: a small SMTP/LMTP receiver with scripted answers, for the load tool and tests.

pub mod av;
pub mod banned;
pub mod catch_panic;
pub mod config;
pub mod decode;
pub mod dkim;

pub mod message;
pub mod migrate;
pub mod pipeline;
pub mod policy_bank;
pub mod quarantine;
pub mod release;
pub mod server;

pub mod smtp_in;
pub mod smtp_out;
pub mod spam;
pub mod sql;
pub mod stats;
pub mod verdict;
