//! The plain data types every stage shares: the envelope, the spooled message, SMTP replies,
//! message identifiers and what the checks found. Stages talk through these and nothing else:
//! none reaches into another's internals, so each can be tested alone.

pub mod address;
pub mod budget;
mod category;
mod checks;
pub mod date;
mod envelope;
pub mod header_edit;
pub mod line_ends;
mod mail_id;
mod printable;
mod reply;
pub mod screen;
mod spool;
pub mod temp;
pub mod xtext;

pub use category::{Category, Destiny};
pub use checks::{BadHeader, BannedHit, CheckResults, SpamResult, Unchecked, VirusHit, VirusScan};
pub use envelope::{ClientInfo, Envelope, Param, Protocol, Recipient, XForward};
pub use mail_id::{MailIds, check_secret, generate_mail_id};
pub use printable::printable;
pub use reply::Reply;
pub use spool::{Spool, SpoolError, SpoolWriter, header_field};

/// What the pipeline answers for one message: the single SMTP reply, and the per-recipient LMTP
/// replies (one per accepted recipient, in RCPT order).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub message: Reply,
    pub per_recipient: Vec<Reply>,
}

impl Outcome {
    /// The same reply for the message and for every recipient.
    pub fn uniform(reply: Reply, recipients: usize) -> Outcome {
        Outcome {
            per_recipient: vec![reply.clone(); recipients],
            message: reply,
        }
    }
}
