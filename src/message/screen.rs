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

/// What a front end that only scans (rspamd's HTTP protocol) hears: the one answer of the
/// before-queue rule, and the findings behind it as one copy sees them.
#[derive(Debug, Clone)]
pub struct Advice {
    /// The answer, recipients to remove and the reported copy's header changes, as the
    /// milter would hear them (never a hold: nothing is kept).
    pub screened: Screened,
    /// The findings as the reported copy sees them; `None` without recipients.
    pub findings: Option<Findings>,
}

/// The findings behind an [`Advice`], as one copy sees them: the first local recipient
/// whose copy passes, else the first that passes, else the first recipient (the copy
/// whose header changes the answer carries).
#[derive(Debug, Clone)]
pub struct Findings {
    /// The worst category that applies to it.
    pub category: super::Category,
    /// Its spam result (its own Bayes store's and its sender list's, over the site's), with
    /// each test's description where the spam engine gave one.
    pub spam: Option<super::SpamResult>,
    pub descriptions: Vec<(String, String)>,
    /// Its policy's level that blocks (`spam_kill_level`).
    pub kill_level: f64,
    /// Virus names found; banned parts (`invoice.pdf.exe`); content not checked and why;
    /// header findings.
    pub viruses: Vec<String>,
    pub banned: Vec<String>,
    pub unchecked: Vec<String>,
    pub bad_header: Vec<String>,
    /// The hosts of the message's web links and the addresses it names (rspamd's `urls`
    /// and `emails`), when the spam engine looked.
    pub urls: Vec<String>,
    pub emails: Vec<String>,
    /// The message's `Message-ID`, without its angle brackets.
    pub message_id: Option<String>,
    /// When the copy is blocked (whatever its destiny): the refusal that names why
    /// (`554 5.7.0 Reject, id=... - INFECTED: Eicar-Test-Signature`).
    pub refusal: Option<Reply>,
}

impl Advice {
    /// The whole message waits with `reply`.
    pub fn waiting(am_id: &str, reply: Reply) -> Advice {
        Advice {
            screened: Screened::waiting(am_id, reply),
            findings: None,
        }
    }
}
