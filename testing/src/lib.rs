//! Test doubles and the load tool of amavisd-rs, outside the filter's library:
//!
//! - [`sink`]: a small SMTP/LMTP receiver with scripted answers, the next hop in tests.
//! - [`load`]: the load generator behind `amavisd-load`.
//! - [`chaos`]: the chaos run behind `amavisd-load chaos`: faults, kills and the accounting.
//! - [`nsd`]: a real authoritative DNS server (Debian's NSD) with a test's zones.

pub mod chaos;
pub mod load;
pub mod nsd;
pub mod sink;
