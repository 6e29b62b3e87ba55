//! Inbound SMTP/LMTP: listeners, connection framing with hard caps, and the session state
//! machine. This stage owns nothing but the wire: at the end of DATA it hands an
//! [`crate::message::Envelope`] and a [`crate::message::Spool`] to a
//! [`MessageHandler`] and sends back the [`crate::message::Outcome`] it returns.
//!
//! # Limits
//! Every cap is in [`Limits`] (`[limits]` in the configuration): connections (421 when full), command line length,
//! header section size, message size (552 5.3.4 at `MAIL SIZE=` and during DATA), recipients
//! (452 4.5.3), idle/command/DATA timeouts (421 4.4.2), errors per session (421 4.7.0).
//!
//! # Security
//! Everything here reads bytes from the network. No input may panic, allocate without bound or
//! wait without a deadline. Peer text is made printable before it is echoed or logged.

mod command;
pub mod config;
mod connection;
mod data;
mod listener;
mod session;

pub use command::{Command, CommandError, parse as parse_command};
pub use config::{Limits, ListenProtocol, Listener};
pub use connection::{Connection, ReadError, ReadTimeouts};
pub use data::DataReceiver;
pub use listener::{Listeners, Rebind, bind_all, bind_new, serve};
pub use session::{Session, SessionSettings};

use crate::message::{Envelope, Outcome, Spool};
use std::future::Future;

/// What runs a received message through the filter and decides the reply. The session awaits
/// each call on its own task, with panics caught around it: a panic inside becomes `451 4.3.0`
/// for that message only, and the session goes on.
pub trait MessageHandler: Send + Sync + 'static {
    /// Processes one message; must return one reply per recipient in `per_recipient`.
    fn handle(&self, envelope: Envelope, spool: Spool) -> impl Future<Output = Outcome> + Send;
}
