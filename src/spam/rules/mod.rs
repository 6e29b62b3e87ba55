//! SpamAssassin's rule files and what they compile to: the `.cf` reader ([`cf`]) with its
//! `if`/`ifplugin` conditions ([`condition`]) and template tags ([`replace_tags`]); Perl
//! regexes on our engines ([`pattern`]); meta-rule expressions ([`meta`]); the scan plan
//! ([`plan`]) with its literal prefilter ([`prefilter`]) and, when the system has it,
//! Hyperscan's one-pass databases.

pub mod cf;
pub mod condition;
#[cfg(hyperscan)]
pub mod hyperscan;
pub mod meta;
pub mod pattern;
mod perl_lex;
pub mod plan;
pub mod prefilter;
pub mod replace_tags;
