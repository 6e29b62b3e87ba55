//! Every limit of the decoder, with amavisd-new's name, its default and the reason.
//!
//! Going over any of them stops that branch of the tree and marks the message UNCHECKED,
//! minor 2 ("over limits"): the checks then know that some content was not looked at.

use serde::Deserialize;

/// Decoder limits (the `[decode]` table of the configuration).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Nesting depth of containers (MIME multiparts, attached messages, archives). amavisd-new's
    /// `$MAXLEVELS`, 14 in its sample config: real mail rarely nests past 5, bombs nest deep.
    pub max_levels: usize,
    /// Parts in one message, containers included. amavisd-new's `$MAXFILES` (3000).
    pub max_files: usize,
    /// Decoded bytes for the whole message are capped at message size times this factor
    /// (amavisd-new's `$MAX_EXPANSION_FACTOR`, 500) ...
    pub max_expansion_factor: u64,
    /// ... but never below message size times this (`$MIN_EXPANSION_FACTOR`, 5) ...
    pub min_expansion_factor: u64,
    /// ... nor below this many bytes (`$MIN_EXPANSION_QUOTA`, 100 MiB here: a small message may
    /// still carry an archive worth opening) ...
    pub min_expansion_quota: u64,
    /// ... nor above this many bytes (`$MAX_EXPANSION_QUOTA`, 500 MiB): the disk and time a
    /// single message may cost.
    pub max_expansion_quota: u64,
    /// Bytes of one decoded part. A part cut here is still checked as far as it was read.
    pub max_part_size: u64,
    /// Largest ratio of decoded to compressed size for one archive entry or compressed
    /// stream; zip bombs reach thousands, real files rarely exceed 100 (text: ~10).
    pub max_compression_ratio: u64,
    /// Decompressed bytes an archive entry may produce before the ratio is judged, so that
    /// tiny files with high ratios (a 1 KB file of spaces) are not refused.
    pub ratio_grace_bytes: u64,
    /// Wall-clock budget for decoding one message, in milliseconds.
    pub time_budget_ms: u64,
    /// Decoded parts up to this size stay in memory; larger ones go to a temporary file.
    pub memory_part_limit: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_levels: 14,
            max_files: 3000,
            max_expansion_factor: 500,
            min_expansion_factor: 5,
            min_expansion_quota: 100 * 1024 * 1024,
            max_expansion_quota: 500 * 1024 * 1024,
            max_part_size: 100 * 1024 * 1024,
            max_compression_ratio: 1000,
            ratio_grace_bytes: 1024 * 1024,
            time_budget_ms: 30_000,
            memory_part_limit: 1024 * 1024,
        }
    }
}

impl Limits {
    /// The decoded-bytes quota for a message of `message_size` bytes, as amavisd-new computes
    /// it: `message_size * factor` kept between the two quotas.
    pub fn expansion_quota(&self, message_size: u64) -> u64 {
        let low = self
            .min_expansion_quota
            .max(message_size.saturating_mul(self.min_expansion_factor));
        let high = self
            .max_expansion_quota
            .min(message_size.saturating_mul(self.max_expansion_factor));
        high.max(low)
    }

    /// Refuses zeros where zero would disable the decoder or every check.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (k, v) in [
            ("max_levels", self.max_levels as u64),
            ("max_files", self.max_files as u64),
            ("max_part_size", self.max_part_size),
            ("max_compression_ratio", self.max_compression_ratio),
            ("time_budget_ms", self.time_budget_ms),
            ("max_expansion_quota", self.max_expansion_quota),
        ] {
            if v == 0 {
                return Err((k, "must be greater than 0".into()));
            }
        }
        if self.min_expansion_quota > self.max_expansion_quota {
            return Err((
                "min_expansion_quota",
                "must not exceed max_expansion_quota".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_between_bounds() {
        let l = Limits::default();
        assert_eq!(l.expansion_quota(1000), 100 * 1024 * 1024);
        assert_eq!(l.expansion_quota(10_000_000), 500 * 1024 * 1024);
        assert_eq!(l.expansion_quota(500_000), 500_000 * 500);
    }
}
