//! The spamd protocol (what `spamc` and other spamd clients speak), sans I/O: requests
//! parsed, answers written from the engine's outcome. The listener is a front end above the
//! pipeline (`server::spamd`), which asks the check API for the spam engine's answer.

pub mod protocol;
