//! amavisd-new's lookup rules, as pure functions: the keys a hash table is searched with for
//! an address, domain lists (`local_domains`), and network lists (`mynetworks`, bank
//! selection by client address).

use crate::message::address::split;
use ipnet::IpNet;
use std::net::IpAddr;

/// The hash lookup keys for `addr`, most specific first (README.lookups):
/// `user+ext@sub.example.com`, `user@sub.example.com`, `user+ext@`, `user@`,
/// `sub.example.com`, `.sub.example.com`, `.example.com`, `.com`, `.`. The null sender is
/// looked up as `""`, `@`, `.`. Keys without an extension are not repeated.
pub fn keys(addr: &str, delimiter: &str) -> Vec<String> {
    if addr.is_empty() {
        return vec![String::new(), "@".into(), ".".into()];
    }
    let (user, domain) = split(addr);
    let base = match delimiter.chars().next() {
        Some(d) if !user.starts_with(d) => user.split(d).next().unwrap_or(&user).to_string(),
        _ => user.clone(),
    };
    let mut k = Vec::new();
    let mut push = |s: String| {
        if !k.contains(&s) {
            k.push(s);
        }
    };
    push(format!("{user}@{domain}"));
    push(format!("{base}@{domain}"));
    push(format!("{user}@"));
    push(format!("{base}@"));
    if !domain.is_empty() {
        push(domain.clone());
        let mut d = domain.as_str();
        loop {
            push(format!(".{d}"));
            match d.split_once('.') {
                Some((_, rest)) => d = rest,
                None => break,
            }
        }
    }
    push(".".into());
    k
}

/// amavisd-new's ACL list over a domain: `example.com` matches that domain only,
/// `.example.com` it and its subdomains, `.` everything; `!` before an entry excludes; the
/// first matching entry decides; no match is false.
pub fn domain_in(addr: &str, list: &[String], mydomain: &str) -> bool {
    let (_, domain) = split(addr);
    for entry in list {
        let (neg, e) = match entry.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, entry.as_str()),
        };
        let e = e.replace("%d", mydomain).to_lowercase();
        let hit = if e == "." {
            true
        } else if let Some(parent) = e.strip_prefix('.') {
            domain == parent || domain.ends_with(&e)
        } else {
            domain == e
        };
        if hit {
            return !neg;
        }
    }
    false
}

/// A network list entry: a CIDR network or an address, `!` to exclude.
#[derive(Debug, Clone, PartialEq)]
pub struct NetEntry {
    pub negate: bool,
    pub net: IpNet,
}

/// Parses `["10.0.0.0/8", "!10.1.0.0/16", "[::1]", "192.0.2.7"]`; the error names the entry.
pub fn parse_nets(list: &[String]) -> Result<Vec<NetEntry>, String> {
    list.iter()
        .map(|raw| {
            let (negate, s) = match raw.strip_prefix('!') {
                Some(r) => (true, r),
                None => (false, raw.as_str()),
            };
            // amavisd-new writes IPv6 in brackets: [::1] or [FE80::]/10.
            let s = s.replacen('[', "", 1).replacen(']', "", 1);
            let net = s
                .parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{raw:?} is not an address or a network"))?;
            Ok(NetEntry { negate, net })
        })
        .collect()
}

/// First matching entry decides; no match is false. IPv4-mapped IPv6 addresses match as IPv4.
pub fn ip_in(ip: IpAddr, list: &[NetEntry]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    list.iter()
        .find(|e| e.net.contains(&ip))
        .is_some_and(|e| !e.negate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_is_amavisd_new_s() {
        assert_eq!(
            keys("User+foo@Sub.Example.com", "+"),
            [
                "user+foo@sub.example.com",
                "user@sub.example.com",
                "user+foo@",
                "user@",
                "sub.example.com",
                ".sub.example.com",
                ".example.com",
                ".com",
                "."
            ]
        );
        assert_eq!(
            keys("u@example.com", "+"),
            [
                "u@example.com",
                "u@",
                "example.com",
                ".example.com",
                ".com",
                "."
            ]
        );
        assert_eq!(keys("", "+"), ["", "@", "."]);
        // No delimiter configured: the extension is part of the user.
        assert_eq!(keys("a+b@x", "")[..2], ["a+b@x".to_string(), "a+b@".into()]);
    }

    #[test]
    fn domain_lists() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let list = l(&["!lists.example.com", ".example.com", "example.net"]);
        assert!(domain_in("a@example.com", &list, "x"));
        assert!(domain_in("a@Mail.Example.com", &list, "x"));
        assert!(!domain_in("a@lists.example.com", &list, "x"));
        assert!(domain_in("a@example.net", &list, "x"));
        assert!(!domain_in("a@sub.example.net", &list, "x"));
        assert!(!domain_in("a@example.org", &list, "x"));
        assert!(domain_in("a@host.mydom.org", &l(&[".%d"]), "mydom.org"));
        assert!(domain_in("a@anything", &l(&["."]), "x"));
    }

    #[test]
    fn networks() {
        let nets = parse_nets(&[
            "!10.1.0.0/16".into(),
            "10.0.0.0/8".into(),
            "[::1]".into(),
            "192.0.2.7".into(),
        ])
        .unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(ip_in(ip("10.2.3.4"), &nets));
        assert!(!ip_in(ip("10.1.3.4"), &nets));
        assert!(ip_in(ip("::1"), &nets));
        assert!(ip_in(ip("192.0.2.7"), &nets));
        assert!(ip_in(ip("::ffff:10.2.3.4"), &nets));
        assert!(!ip_in(ip("192.0.2.8"), &nets));
        assert!(parse_nets(&["10.0.0.0/33".into()]).is_err());
    }
}
