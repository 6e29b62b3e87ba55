//! The embedded spam engine: SpamAssassin's rule files read ([`cf`]) and compiled into a scan
//! plan ([`plan`]), run over a message as the rules see it ([`view`]) into scored symbols
//! ([`scan`]); [`engine`] holds the loaded rules and swaps them on reload; [`spamd`] speaks
//! the spamc protocol.

pub mod bayes;
pub mod cf;
pub mod condition;
pub mod engine;
pub mod eval;
pub mod headers;
pub mod html;
#[cfg(hyperscan)]
pub mod hyperscan;
pub mod meta;
pub mod pattern;
pub mod plan;
pub mod prefilter;
pub mod relays;
pub mod render;
pub mod replace_tags;
pub mod report;
pub mod scan;
pub mod settings;
pub mod spamd;
mod stage;
pub mod uri;
pub mod view;

pub use settings::SpamConfig;
pub use stage::{
    Class, Engine, Learnable, Learned, Scan, Scanned, SetupError, Trainer, bayes_user,
    message_files, messages_in, now,
};

/// Compiles one of the engine's own constant patterns (not a rule file's). They are fixed at
/// build time, so a failure is a bug of ours that the spam tests meet on their first
/// message, never a message's or a site's fault: there is no error a caller could act on.
#[allow(clippy::panic)]
pub(crate) fn builtin_regex(pattern: &str) -> regex::Regex {
    regex::Regex::new(pattern).unwrap_or_else(|e| panic!("built-in pattern {pattern}: {e}"))
}
