//! The embedded spam engine (issues 8-10). So far: SpamAssassin's configuration files read into
//! rule definitions ([`cf`]), with its `if` conditions ([`condition`]), its Perl regular
//! expressions compiled ([`pattern`]) and its `meta` expressions parsed and evaluated
//! ([`meta`]), header values as header rules see them ([`headers`]) and the body as body
//! rules see it ([`render`]). Rule evaluation, the
//! message rendering SpamAssassin does, Bayes and the spamd protocol come next; the pipeline
//! does not call this yet.

pub mod cf;
pub mod condition;
pub mod headers;
pub mod meta;
pub mod pattern;
pub mod render;
