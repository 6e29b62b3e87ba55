//! The embedded spam engine. Its front door is [`Engine`] (rules, Bayes, autolearning) with
//! [`Trainer`] (everything that teaches the Bayes store); the rooms behind it:
//!
//! - [`rules`]: SpamAssassin's rule files read and compiled into a scan plan, with the Perl
//!   regex dialect, the literal prefilter and Hyperscan.
//! - [`view`]: the message as the rules see it: decoded header fields, rendered text and
//!   HTML, URIs, the relay chain.
//! - [`eval`]: SpamAssassin's eval functions.
//! - [`scan`]: the plan run over a view into scored symbols; [`engine`] holds the loaded
//!   rules; [`report`] writes SpamAssassin's header fields and report.
//! - [`bayes`]: the Bayes classifier and its shared token stores.
//! - [`spamd`]: the spamc protocol, so spamd's clients can use the engine.

pub mod bayes;
pub mod engine;
pub mod eval;
pub mod learner;
pub mod logistic;
pub mod net;
pub mod report;
pub mod rules;
pub mod scan;
pub mod settings;
pub mod spamd;
mod stage;
mod trainer;
pub mod view;

pub use bayes::LearnError;
pub use bayes::store::BayesError;
pub use settings::SpamConfig;
pub use stage::{
    AuthWatch, Class, Engine, Halfway, Learned, Scan, Scanned, SetupError, bayes_user,
    message_files, messages_in, now,
};
pub use trainer::{Learnable, Trainer};

/// Compiles one of the engine's own constant patterns (not a rule file's). They are fixed at
/// build time, so a failure is a bug of ours that the spam tests meet on their first
/// message, never a message's or a site's fault: there is no error a caller could act on.
#[allow(clippy::panic)]
pub(crate) fn builtin_regex(pattern: &str) -> regex::Regex {
    regex::Regex::new(pattern).unwrap_or_else(|e| panic!("built-in pattern {pattern}: {e}"))
}
