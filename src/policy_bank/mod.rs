//! Policy: the settings that decide what happens to checked mail, and where they come from.
//! `[policy]` holds the site-wide values (amavisd-new's defaults); policy banks chosen by
//! listening port or socket, client address (MYNETS and CIDR lists) or sender override them
//! for a message; per-recipient tables, then SQL, override them for one recipient. See [`banks`]
//! for the order, [`lookup`] for amavisd-new's lookup rules, [`settings`] for the keys, and
//! [`Policies::resolve_recipients`] for the whole per-recipient resolution.

pub mod banks;
pub mod lookup;
mod recipients;
pub mod settings;

pub use banks::{BankSelect, MessagePolicy, Policies, RecipientRegex};
pub use recipients::{LookupError, RecipientPolicy, SenderList};
pub use settings::{Policy, ScanFailure};
