//! Addresses as the DNS checks see them: which no blocklist lists (SpamAssassin's private
//! ranges), and how a blocklist is asked about one (the reversed form, RFC 5782). One place
//! for the relay lists, the URI address lists, the trust inference and SPF's client.

use std::net::IpAddr;

/// SpamAssassin's private ranges (`IP_PRIVATE`): 10/8, 127/8, 169.254/16, 172.16/12,
/// 192.168/16, 100.64/10; for IPv6 link-local and ::1, and the IPv4 ones mapped.
pub fn is_private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            v.is_private()
                || v.is_loopback()
                || v.is_link_local()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v) => match v.to_ipv4_mapped() {
            Some(v4) => is_private(&IpAddr::V4(v4)),
            None => v.is_loopback() || (v.segments()[0] & 0xffc0) == 0xfe80,
        },
    }
}

/// `d.c.b.a`, or an IPv6 address's 32 nibbles reversed (RFC 5782).
pub fn reverse_ip(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            format!("{}.{}.{}.{}", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v) => {
            let hex: String = v.octets().iter().map(|b| format!("{b:02x}")).collect();
            let nibbles: Vec<String> = hex.chars().rev().map(String::from).collect();
            nibbles.join(".")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_is_spamassassins_list() {
        for ip in [
            "10.0.0.1",
            "100.64.0.1",
            "169.254.1.1",
            "::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(&ip.parse().unwrap()), "{ip}");
        }
        for ip in ["192.0.2.1", "0.0.0.1", "fc00::1", "100.128.0.1"] {
            assert!(!is_private(&ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn reversed_addresses() {
        assert_eq!(reverse_ip(&"192.0.2.99".parse().unwrap()), "99.2.0.192");
        let v6 = reverse_ip(&"2001:db8::1".parse().unwrap());
        assert!(
            v6.starts_with("1.0.0.0.") && v6.ends_with(".8.b.d.0.1.0.0.2"),
            "{v6}"
        );
        assert_eq!(v6.split('.').count(), 32);
    }
}
