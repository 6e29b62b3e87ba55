//! Which relays are ours: SpamAssassin's `trusted_networks`, `internal_networks` and
//! `msa_networks`, and its inference when none is set. The network rules query only the
//! relays outside this trust (a blocklist lookup of our own relay says nothing), and the
//! local rules read the same split (`ALL_TRUSTED`, `X-Spam-Relays-Untrusted`).

use super::relays::Relay;
use ipnet::IpNet;
use std::net::IpAddr;

/// One netset: entries in order, `!` ones excluding (the first entry that contains an
/// address decides, as SpamAssassin's NetSet).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetSet {
    entries: Vec<(bool, IpNet)>,
}

impl NetSet {
    /// Reads entries as the rule files write them: `192.168.1.1`, `10/8`, `172.16.`,
    /// `[2001:db8::]/32`, `!10.0.0.1`. Gives the entries that cannot be read.
    pub fn add(&mut self, words: &str) -> Vec<String> {
        let mut bad = Vec::new();
        for w in words.split_whitespace() {
            let (exclude, w) = match w.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, w),
            };
            match parse_net(w) {
                Some(n) => self.entries.push((exclude, n)),
                None => bad.push(w.to_string()),
            }
        }
        bad
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `ip` is in the set (loopback always is, as SpamAssassin adds it).
    pub fn contains(&self, ip: &IpAddr) -> bool {
        if ip.is_loopback() {
            return true;
        }
        self.entries
            .iter()
            .find(|(_, n)| n.contains(ip))
            .is_some_and(|(exclude, _)| !exclude)
    }
}

/// `10`, `10.`, `10/8`, `192.168.0.0/16`, `[::1]`, `2001:db8::/32`.
fn parse_net(w: &str) -> Option<IpNet> {
    let (addr, len) = match w.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
        None => (w, None),
    };
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = addr.parse::<IpAddr>() {
        let full = if ip.is_ipv4() { 32 } else { 128 };
        return IpNet::new(ip, len.unwrap_or(full)).ok().map(|n| n.trunc());
    }
    // A partial IPv4 address: its octets given, the rest zero, the mask its length.
    let octets: Vec<&str> = addr.trim_end_matches('.').split('.').collect();
    if octets.is_empty() || octets.len() > 3 {
        return None;
    }
    let mut full = [0u8; 4];
    for (i, o) in octets.iter().enumerate() {
        full[i] = o.parse().ok()?;
    }
    let prefix = len.unwrap_or(8 * octets.len() as u8);
    IpNet::new(IpAddr::from(full), prefix)
        .ok()
        .map(|n| n.trunc())
}

/// The three netsets of a rule set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trust {
    pub trusted: NetSet,
    pub internal: NetSet,
    pub msa: NetSet,
}

/// Where one relay stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standing {
    pub trusted: bool,
    pub internal: bool,
    pub msa: bool,
}

impl Trust {
    /// Is `ip` in `trusted_networks` (or, when only `internal_networks` is set, in that)?
    pub fn is_trusted(&self, ip: &IpAddr) -> bool {
        if self.trusted.is_empty() {
            self.internal.contains(ip)
        } else {
            self.trusted.contains(ip)
        }
    }

    fn is_internal(&self, ip: &IpAddr) -> bool {
        if self.internal.is_empty() {
            self.trusted.contains(ip)
        } else {
            self.internal.contains(ip)
        }
    }

    /// Walks the relays, newest first, as SpamAssassin's Received parser does: each gets
    /// whether it is trusted, internal and an MSA. Once a relay is untrusted, so is every
    /// older one; past an MSA every older relay keeps the MSA's standing.
    pub fn walk(&self, relays: &[Relay]) -> Vec<Standing> {
        let configured = !(self.trusted.is_empty() && self.internal.is_empty());
        let mut now = Standing {
            trusted: true,
            internal: true,
            msa: false,
        };
        let mut found_msa = false;
        let mut out = Vec::with_capacity(relays.len());
        for r in relays {
            let ip = r.ip.parse::<IpAddr>().ok();
            let authed = !r.auth.is_empty();
            now.msa = false;
            if !found_msa && now.trusted {
                if !configured {
                    // Inferred: private addresses and authenticated hops are ours.
                    if !authed && !r.ip_private {
                        now.trusted = false;
                        now.internal = false;
                    }
                } else if !authed && !ip.is_some_and(|ip| self.is_trusted(&ip)) {
                    now.trusted = false;
                    now.internal = false;
                } else {
                    if !authed && !ip.is_some_and(|ip| self.is_internal(&ip)) {
                        now.internal = false;
                    }
                    if ip.is_some_and(|ip| self.msa.contains(&ip) && !ip.is_loopback()) {
                        now.msa = true;
                        found_msa = true;
                    }
                }
            }
            out.push(now);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(ip: &str, auth: &str) -> Relay {
        Relay {
            ip: ip.into(),
            auth: auth.into(),
            ip_private: crate::spam::view::received::is_ip_private(ip),
            ..Relay::default()
        }
    }

    fn trusted(s: &[Standing]) -> Vec<bool> {
        s.iter().map(|s| s.trusted).collect()
    }

    #[test]
    fn netsets_read_the_rule_files_forms() {
        let mut n = NetSet::default();
        assert!(
            n.add("10/8 172.16. !192.168.1.1 192.168.1/24 [2001:db8::]/32")
                .is_empty()
        );
        for ip in [
            "10.1.2.3",
            "172.16.9.9",
            "192.168.1.2",
            "2001:db8::1",
            "127.0.0.1",
        ] {
            assert!(n.contains(&ip.parse().unwrap()), "{ip}");
        }
        for ip in ["192.168.1.1", "172.17.0.1", "11.0.0.1", "2001:db9::1"] {
            assert!(!n.contains(&ip.parse().unwrap()), "{ip}");
        }
        assert_eq!(n.add("nonsense 1.2.3.4/99"), ["nonsense", "1.2.3.4/99"]);
    }

    #[test]
    fn inferred_trust_takes_private_and_authenticated_hops() {
        let t = Trust::default();
        let s = t.walk(&[
            relay("10.0.0.1", ""),
            relay("192.0.2.1", "ESMTPA"),
            relay("198.51.100.1", ""),
            relay("10.0.0.2", ""),
        ]);
        assert_eq!(trusted(&s), [true, true, false, false]);
        assert!(s.iter().all(|s| s.trusted == s.internal));
    }

    #[test]
    fn configured_trust_internal_and_msa() {
        let mut t = Trust::default();
        t.trusted.add("192.0.2.0/24 198.51.100.7");
        t.internal.add("192.0.2.0/24");
        t.msa.add("192.0.2.9");
        // Our MX, then a trusted outside backup MX, then the world.
        let s = t.walk(&[
            relay("192.0.2.1", ""),
            relay("198.51.100.7", ""),
            relay("203.0.113.5", ""),
        ]);
        assert_eq!(trusted(&s), [true, true, false]);
        assert_eq!(
            s.iter().map(|s| s.internal).collect::<Vec<_>>(),
            [true, false, false]
        );
        // Past our MSA everything keeps its standing: the user's own client is trusted.
        let s = t.walk(&[relay("192.0.2.9", ""), relay("203.0.113.5", "")]);
        assert_eq!(trusted(&s), [true, true]);
        assert!(s[0].msa && !s[1].msa);
    }
}
