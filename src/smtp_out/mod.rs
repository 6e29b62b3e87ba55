//! Outbound: the reinjection client to `forward_method`, and the DSNs and notices we compose.
//!
//! Neither lettre nor mail-send can reinject faithfully (they abort on one refused RCPT, read one
//! reply after DATA even for LMTP, add a CRLF, drop DSN parameters and XFORWARD), so this is a small client on smtp-proto's reply parser.
//!
//! # Limits
//! Every read has a deadline (`[forward]`: `connect_timeout` for the greeting,
//! `command_timeout` per command, `data_done_timeout` after the dot); a reply is at most 4096
//! bytes (smtp-proto's parser refuses longer ones: 451); idle connections kept for reuse are
//! capped by `forward.max_idle_connections` and reset before reuse.
//!
//! # Security
//! The next hop is a local address by construction: `forward_method` takes IP addresses and
//! unix sockets only, never a host name, so DNS can neither redirect nor bounce mail. A reply
//! that cannot be parsed, arrives late or breaks the connection is a temporary failure
//! (`ForwardError`, 451), never a 250. Text from replies reaches our own replies and DSNs
//! only through `Reply`, whose wire form keeps CR and LF inside a text from forging lines.

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
