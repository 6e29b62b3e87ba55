//! Moving a site from amavisd-new: `amavisd convert-config` reads amavisd-new's Perl
//! configuration ([`perl_conf`], a reader for the subset of Perl such files use) and writes
//! our TOML ([`convert`]). A tool, not part of the filter's configuration: nothing here runs
//! when the filter loads `amavisd.toml`.

pub mod convert;
pub mod perl_conf;
