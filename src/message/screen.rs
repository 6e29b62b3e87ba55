//! What a front end that filters before the MTA's queue (the milter) and the pipeline tell
//! each other: the options it asks with, and one answer for the whole message with the
//! passed copy's header changes (the rule that turns per-recipient verdicts into it is the
//! pipeline's, `pipeline/screen.rs`).

use super::Reply;
use super::header_edit::FieldChange;

/// What a before-queue front end tells the MTA about one message.
#[derive(Debug, Clone)]
pub struct Screened {
    /// amavisd-new's log id of the message.
    pub am_id: String,
    pub answer: Answer,
    /// Envelope recipients to remove (blocked while others pass).
    pub remove: Vec<String>,
    /// The passed copy's header changes, in the order the MTA is to apply them.
    pub changes: Vec<FieldChange>,
    /// Why the message should wait in the MTA's hold queue: with
    /// [`ScreenOptions::hold_blocked`], when no copy passes and ours is kept.
    pub hold: Option<String>,
}

/// The answer for the whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Discard,
    Reject(Reply),
    Tempfail(Reply),
}

/// How a before-queue front end asks.
#[derive(Debug, Clone, Default)]
pub struct ScreenOptions {
    /// Policy banks the front end names (loaded before those the envelope selects).
    pub banks: Vec<String>,
    /// Header values as the MTA exchanges them keep the space after the colon
    /// (the milter's negotiated `SMFIP_HDR_LEADSPC`).
    pub lead_space: bool,
    /// A message no copy of which passes is accepted into the MTA's hold queue instead of
    /// refused, so the MTA's admin can release it (`postsuper -H`).
    pub hold_blocked: bool,
    /// The MTA's queue id for the message (the milter's `i` macro), logged as where it
    /// was queued.
    pub queue_id: Option<String>,
}

impl Screened {
    /// The whole message waits with `reply`.
    pub fn waiting(am_id: &str, reply: Reply) -> Screened {
        Screened {
            am_id: am_id.to_string(),
            answer: Answer::Tempfail(reply),
            remove: Vec::new(),
            changes: Vec::new(),
            hold: None,
        }
    }
}
