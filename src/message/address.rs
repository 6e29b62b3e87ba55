//! Mail addresses as amavisd-new handles them: split at the last `@`, and the address
//! extension (`user+ext@domain`) read and set. Pure functions over plain strings, used by
//! policy lookups, the verdict (`addr_extension_*`) and per-user Bayes stores alike.

/// Splits `user@domain` at the last `@`; the domain is lower-cased, the user kept as sent
/// except that amavisd-new lower-cases it for lookups too.
pub fn split(addr: &str) -> (String, String) {
    match addr.rsplit_once('@') {
        Some((u, d)) => (u.to_lowercase(), d.to_lowercase()),
        None => (addr.to_lowercase(), String::new()),
    }
}

/// The extension of `addr` (`spam` in `user+spam@x`), if any.
pub fn extension<'a>(addr: &'a str, delimiter: &str) -> Option<&'a str> {
    let d = delimiter.chars().next()?;
    let user = addr.rsplit_once('@').map_or(addr, |(u, _)| u);
    user.split_once(d).map(|(_, e)| e).filter(|e| !e.is_empty())
}

/// `addr` with `ext` as its address extension (an existing one is replaced), as
/// amavisd-new's `addr_extension_*` does: `user@x` + `spam` = `user+spam@x`.
pub fn with_extension(addr: &str, delimiter: &str, ext: &str) -> String {
    let Some(d) = delimiter.chars().next() else {
        return addr.to_string();
    };
    if ext.is_empty() || addr.is_empty() {
        return addr.to_string();
    }
    let (user, domain) = match addr.rsplit_once('@') {
        Some((u, dm)) => (u, Some(dm)),
        None => (addr, None),
    };
    let base = user.split(d).next().unwrap_or(user);
    match domain {
        Some(dm) => format!("{base}{d}{ext}@{dm}"),
        None => format!("{base}{d}{ext}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        assert_eq!(with_extension("user@x.org", "+", "spam"), "user+spam@x.org");
        assert_eq!(
            with_extension("user+old@x.org", "+", "spam"),
            "user+spam@x.org"
        );
        assert_eq!(with_extension("user@x.org", "", "spam"), "user@x.org");
        assert_eq!(extension("user+spam@x.org", "+"), Some("spam"));
        assert_eq!(extension("user@x.org", "+"), None);
    }
}
