//! amavisd-rs: a content filter in Postfix's `content_filter` slot, compatible with amavisd-new.
//!
//! # Using the library
//! The main entry point is [`pipeline::Pipeline::check`]: a message, its envelope and the
//! configuration in, the verdict for each recipient out, with everything that explains it
//! (spam symbols and scores, virus names, banned parts and the rule that matched,
//! bad-header minors, the policy bank path), and nothing delivered. The SMTP/LMTP listener
//! runs the same steps and then delivers; other front ends (a milter, an HTTP protocol, a
//! console) call it and answer in their own protocol.
//!
//! ```no_run
//! use amavisd::config::Config;
//! use amavisd::message::{ClientInfo, Envelope, Protocol, Recipient, Spool};
//! use amavisd::pipeline::Pipeline;
//! use std::sync::Arc;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let cfg = Config::load(std::path::Path::new("/etc/amavisd-rs/amavisd.toml"))?;
//! let pipeline = Pipeline::new(Arc::new(cfg))?;
//! let env = Envelope {
//!     mail_from: "sender@example.org".into(),
//!     mail_params: Vec::new(),
//!     recipients: vec![Recipient { address: "user@example.com".into(), params: Vec::new() }],
//!     client: ClientInfo::default(),
//!     protocol: Protocol::Smtp,
//!     received_at: std::time::SystemTime::now(),
//! };
//! let message = Spool::from_bytes(std::fs::read("message.eml")?);
//! match pipeline.check(env, message).await {
//!     Ok(a) => {
//!         for r in &a.recipients {
//!             println!("{}: {:?} {:?} {}", r.address, r.verdict.category, r.verdict.destiny, r.verdict.detail);
//!         }
//!     }
//!     // Something that may work next time (a scanner or the database down): try again.
//!     Err(t) => println!("later: {}", t.reply),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! A message meets the stages in this order; stages exchange only the plain types of
//! [`message`], and dependencies point down the list (a stage never imports one below it
//! that imports it back):
//!
//! - [`smtp_in`]: listeners, framing with hard caps, the SMTP/LMTP session state machine.
//! - [`pipeline`]: one message as a `Job` through its steps, each in its own file, and
//!   [`pipeline::Pipeline::check`], the check API every front end uses.
//! - [`policy_bank`]: the banks a message loads, then each recipient's settings (static
//!   tables, then SQL).
//! - [`decode`]: the message as a flat list of parts: MIME tree, archives, types, bad
//!   headers, within hard limits.
//! - [`extract`]: what is inside attachments, for the decoder's types and the spam rules:
//!   Office and PDF text and links, Office macros, QR codes; sans I/O, within limits.
//! - [`banned`]: banned names and types over the decoded parts, amavisd-new's rule semantics.
//! - [`av`]: virus scanners behind one trait: clamd and command-line programs.
//! - [`spam`]: the embedded spam engine: SpamAssassin's rule files, Bayes, the spamd protocol.
//! - [`dkim`]: DKIM verification (`Authentication-Results`), signing of our users' mail, keys.
//! - [`verdict`]: check results and one recipient's policy in, category, destiny, reply and
//!   header fields out; final when it returns.
//! - [`quarantine`]: blocked mail kept durably, in files or SQL, as amavisd-new keeps it.
//! - [`smtp_out`]: the reinjection client (SMTP/LMTP, pipelining, XFORWARD, DSN parameters,
//!   per-recipient results, connection cache), DSNs and notices.
//! - [`sql`]: the database layer: amavisd-new's SQL log, policy lookups and quarantine tables
//!   on SQLite, PostgreSQL or MariaDB.
//! - [`release`]: the AM.PDP server that releases quarantined mail (`amavisd-release`).
//! - [`milter`]: the before-queue front end: Postfix's or Sendmail's milter protocol, the
//!   pipeline's verdict as the MTA's answer to the client.
//!
//! Around the pipeline:
//!
//! - [`message`]: the plain types every stage shares: envelope, spool, reply, results,
//!   categories, addresses.
//! - [`config`]: the TOML file: each stage's section assembled, validated in one place.
//! - [`server`]: process life: start, signals, reload, the listeners of every front end.
//! - [`stats`]: counters and stage timings for Prometheus and `amavisd status`.
//! - [`catch_panic`]: a panic becomes an error for one message or one archive reader.
//! - [`dns`]: the process's resolver and one message's batch of lookups (network rules).
//! - [`accept`]: the session bound the side listeners (release, spamd) share.
//! - [`migrate`]: `amavisd convert-config`, from amavisd-new's Perl configuration.
//!
//! Test doubles (a scripted next hop) and the load tool live in the `amavisd-testing` crate
//! beside this one (`testing/`).

pub mod accept;
pub mod av;
pub mod banned;
pub mod catch_panic;
pub mod config;
pub mod decode;
pub mod dkim;
pub mod dns;
pub mod extract;
pub mod http;

pub mod message;
pub mod migrate;
pub mod milter;
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
