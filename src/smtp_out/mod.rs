//! Outbound: the reinjection client to `forward_method`, and the DSNs and notices we compose.
//!
//! Neither lettre nor mail-send can reinject faithfully (they abort on one refused RCPT, read one
//! reply after DATA even for LMTP, add a CRLF, drop DSN parameters and XFORWARD; see
//! `../shared/notes/crates.md`), so this is a small client on smtp-proto's reply parser.

mod client;
pub mod config;
mod dot_stuff;
mod dsn;
mod error;
mod forwarder;
mod notice;
pub mod template;

pub use client::Capabilities;
pub use config::{ForwardLimits, ForwardMethod, ForwardTarget};
pub use dot_stuff::DotStuffer;
pub use dsn::{DsnInput, FailedRecipient, build_dsn};
pub use error::ForwardError;
pub use forwarder::{Delivery, Forwarder, OutMessage};
pub use notice::{NoticeFacts, NoticeSite, build_notice};
