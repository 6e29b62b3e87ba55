//! RFC 5322 dates for `Received:`, `Date:` and DSN fields.

use std::time::SystemTime;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// `Mon, 23 Nov 2026 21:27:29 +0000`, in UTC: a daemon must not read the local time zone from
/// a multi-threaded process, and UTC is what an administrator compares logs in anyway.
pub fn rfc2822(t: SystemTime) -> String {
    OffsetDateTime::from(t)
        .format(&Rfc2822)
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 +0000".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn epoch() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(86400 * 365);
        assert_eq!(super::rfc2822(t), "Fri, 01 Jan 1971 00:00:00 +0000");
    }
}
