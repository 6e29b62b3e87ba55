//! The forms of each URI the `uri` rules see beside the one written (SpamAssassin's
//! `uri_list_canonicalize`): `%xx` escapes of printable characters undone, a scheme added,
//! user names and default ports dropped, numeric hosts written as dotted quads, `&#NN;`
//! entities decoded, and the target of a redirect (`...?url=http://...`). A spammer hiding
//! a host behind any of these meets the same rules as one who writes it plainly.
//!
//! Left out: `redirector_pattern` lines (the generic redirect above catches the common
//! ones) and IDN hosts (punycode forms).

use std::collections::HashSet;

/// Most forms taken from one message, originals included: each URI makes a few, and a
/// redirect chain is followed only this far.
const MAX_URIS: usize = 2000;

/// `uris` and the other forms of each, without repeats, originals first.
pub fn canonicalize(uris: Vec<String>) -> Vec<String> {
    let mut seen: HashSet<String> = uris.iter().cloned().collect();
    let mut out = uris.clone();
    let mut queue = uris;
    let mut i = 0;
    while i < queue.len() && out.len() < MAX_URIS {
        let (more_forms, redirects) = forms(&queue[i]);
        i += 1;
        for f in more_forms.into_iter().chain(redirects.iter().cloned()) {
            if seen.insert(f.clone()) {
                out.push(f);
            }
        }
        queue.extend(redirects);
    }
    out.truncate(MAX_URIS);
    out
}

/// `%xx` of a printable character other than space decoded (SpamAssassin's `url_encode`).
fn decode_printable_escapes(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
                && (0x21..=0x7e).contains(&v)
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `&#NN;` and `&#xNN;` of printable ASCII decoded, and the Unicode full stops as `.`.
fn decode_entities(s: &str) -> String {
    if !s.contains("&#") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find("&#") {
        out.push_str(&rest[..p]);
        let tail = &rest[p + 2..];
        let end = tail.find(';').filter(|&e| e <= 8);
        let value = end.and_then(|e| {
            let n = &tail[..e];
            match n.strip_prefix(['x', 'X']) {
                Some(h) => u32::from_str_radix(h, 16).ok(),
                None => n.parse::<u32>().ok(),
            }
        });
        match (end, value) {
            (Some(e), Some(v)) if (0x21..=0x7e).contains(&v) => {
                out.push(char::from(v as u8));
                rest = &tail[e + 1..];
            }
            (Some(e), Some(0x2e | 0x3002 | 0xff0e | 0xff61)) => {
                out.push('.');
                rest = &tail[e + 1..];
            }
            _ => {
                out.push_str("&#");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A host of numbers (`0x42.0102.66.2`, `1113983170`, `0x42661542`) as a dotted quad.
fn numeric_host(host: &str) -> Option<String> {
    let octet = |o: &str| -> Option<u64> {
        let lower = o.to_ascii_lowercase();
        if let Some(h) = lower.strip_prefix("0x") {
            u64::from_str_radix(h, 16).ok()
        } else if o.len() > 1 && o.starts_with('0') {
            u64::from_str_radix(o.trim_start_matches('0'), 8)
                .ok()
                .or(Some(0))
        } else {
            o.parse().ok()
        }
    };
    let parts: Vec<&str> = host.split('.').collect();
    if parts.len() == 4 {
        let v: Option<Vec<u64>> = parts.iter().map(|p| octet(p)).collect();
        return v.map(|v| v.iter().map(u64::to_string).collect::<Vec<_>>().join("."));
    }
    let lower = host.to_ascii_lowercase();
    let n = if let Some(h) = lower.strip_prefix("0x") {
        if h.is_empty() || !h.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(&h[h.len().saturating_sub(8)..], 16).ok()?
    } else if !host.is_empty() && host.bytes().all(|c| c.is_ascii_digit()) {
        host.parse::<u64>().ok()? & 0xffff_ffff
    } else {
        return None;
    };
    Some(std::net::Ipv4Addr::from(n as u32).to_string())
}

/// The other forms of one URI, and the URIs it redirects to (which get forms of their own).
fn forms(uri: &str) -> (Vec<String>, Vec<String>) {
    let uri: String = uri
        .trim()
        .chars()
        .filter(|c| *c != '\n' && *c != '\r')
        .collect();
    let b = uri.as_bytes();
    if b.len() <= 1
        || matches!(b[0], b'#' | b'?' | b'&')
        || (b[0] == b'/' && b.get(1) != Some(&b'/'))
    {
        return (Vec::new(), Vec::new());
    }
    let lower = uri.to_ascii_lowercase();
    if lower.starts_with("mailto:") || uri.split(':').next().is_some_and(|p| p.contains('@')) {
        return (mail_forms(&uri), Vec::new());
    }
    let n = normalized(&uri);
    let mut out = Vec::new();
    if n != uri {
        out.push(n.clone());
    }
    let Some((proto, after)) = n.split_once("://") else {
        return (out, Vec::new());
    };
    if proto != "http" && proto != "https" {
        return (out, Vec::new());
    }
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, path) = after.split_at(authority_end);
    out.extend(host_forms(proto, authority, path));
    // A redirect: another http URL inside the path or query.
    let mut redirects = Vec::new();
    let lower_path = path.to_ascii_lowercase();
    if let Some(p) = lower_path
        .find("http:")
        .or_else(|| lower_path.find("https:"))
    {
        let target: &str = path[p..].split(['&', '#']).next().unwrap_or("");
        if target.contains('.') {
            redirects.push(target.to_string());
        }
    }
    (out, redirects)
}

/// A mail address link without its query (`mailto:a@b?subject=...`).
fn mail_forms(uri: &str) -> Vec<String> {
    let mut out = Vec::new();
    for stop in ['?', '&'] {
        if let Some(p) = uri.find(stop).filter(|p| uri[..*p].contains('@')) {
            out.push(uri[..p].to_string());
        }
    }
    out
}

/// The URI as a browser reads it: `\` as `/`, `http:/x` as `http://x`, printable `%xx`
/// and `&#NN;` decoded, a scheme when it has none, a `/` before a bare query, the scheme
/// in lower case.
fn normalized(uri: &str) -> String {
    let mut n = uri.replace('\\', "/");
    for scheme in ["http:", "https:"] {
        if n.len() > scheme.len()
            && n.get(..scheme.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(scheme))
        {
            let rest = n[scheme.len()..].trim_start_matches('/');
            n = format!("{}//{rest}", &n[..scheme.len()]);
        }
    }
    if n.contains('%') {
        n = decode_printable_escapes(&n);
    }
    let has_scheme = n.split_once(':').is_some_and(|(s, _)| {
        !s.is_empty()
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    });
    if !has_scheme {
        n = if n.starts_with("ftp.") {
            format!("ftp://{n}")
        } else {
            format!("http://{n}")
        };
    }
    n = decode_entities(&n);
    let Some((proto, after)) = n.split_once("://") else {
        return n;
    };
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, path) = after.split_at(authority_end);
    // `http://host?x` is `http://host/?x`.
    let slash = if path.starts_with(['?', '#']) {
        "/"
    } else {
        ""
    };
    format!("{}://{authority}{slash}{path}", proto.to_ascii_lowercase())
}

/// The forms of an http(s) URI's host: without a user name, a default port, control
/// characters or trailing punctuation; a numeric host as a dotted quad; a bare name as a
/// browser completes it (`http://shop/` -> `http://www.shop.com/`).
fn host_forms(proto: &str, authority: &str, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (auth, hostport) = match authority.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, authority),
    };
    let (host, port) = match hostport.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (hostport, None),
    };
    let with = |h: &str, port: Option<&str>| match port {
        Some(p) => format!("{proto}://{h}:{p}{path}"),
        None => format!("{proto}://{h}{path}"),
    };
    let default_port = if proto == "http" { "80" } else { "443" };
    if port == Some(default_port) {
        out.push(with(host, None));
    }
    if auth.is_some() {
        out.push(with(host, port));
    }
    let clean: String = host
        .chars()
        .filter(|c| !c.is_control() && *c != ' ')
        .collect();
    if clean != host {
        out.push(with(&clean, port));
    }
    let trimmed = clean.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed != clean {
        out.push(with(trimmed, port));
    }
    if let Some(quad) = numeric_host(trimmed) {
        out.push(with(&quad, port));
    } else if proto == "http"
        && auth.is_none()
        && port.is_none_or(|p| p == "80")
        && !trimmed.eq_ignore_ascii_case("localhost")
    {
        let name = trimmed.strip_prefix("www.").unwrap_or(trimmed);
        if !name.is_empty() && !name.contains('.') {
            out.push(format!("http://www.{name}.com{path}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(u: &str) -> Vec<String> {
        canonicalize(vec![u.to_string()])
    }

    #[test]
    fn forms_of_a_uri() {
        let u = all("http://freetravel@66.46.145.35/members/travel/");
        assert!(
            u.contains(&"http://66.46.145.35/members/travel/".to_string()),
            "{u:?}"
        );
        let hex = all("http://%77%77%77.example.com/%7Euser");
        assert!(
            hex.contains(&"http://www.example.com/~user".to_string()),
            "{hex:?}"
        );
        let num = all("http://1113983170/x");
        assert!(
            num.contains(&"http://66.102.8.194/x".to_string()),
            "{num:?}"
        );
        let oct = all("http://0x42.0146.0101.0302/");
        assert!(
            oct.contains(&"http://66.102.65.194/".to_string()),
            "{oct:?}"
        );
        let port = all("http://a.example:80/p");
        assert!(port.contains(&"http://a.example/p".to_string()));
        let bare = all("www.example.com/path");
        assert!(
            bare.contains(&"http://www.example.com/path".to_string()),
            "{bare:?}"
        );
        let redirect = all("http://r.example/go?u=http://evil.example/x&y=1");
        assert!(
            redirect.contains(&"http://evil.example/x".to_string()),
            "{redirect:?}"
        );
        let dotcom = all("http://shop/");
        assert!(
            dotcom.contains(&"http://www.shop.com/".to_string()),
            "{dotcom:?}"
        );
        let ent = all("http://a&#46;example/");
        assert!(ent.contains(&"http://a.example/".to_string()), "{ent:?}");
        assert_eq!(all("#top"), ["#top"]);
        let mail = all("mailto:a@b.example?subject=x");
        assert!(mail.contains(&"mailto:a@b.example".to_string()));
    }

    #[test]
    fn any_text_is_taken() {
        for u in [
            "./廣告信.files/x",
            "http://廣告.example/é",
            "https:廣",
            "http://0x廣/",
            "&#廣;",
        ] {
            let _ = all(u);
        }
        let u = all("http://%E5%BB%A3.example/");
        assert!(u[0].starts_with("http://"));
    }

    #[test]
    fn redirect_loops_end() {
        let u = all("http://a.example/?u=http://a.example/?u=http://a.example/");
        assert!(u.len() < 10, "{u:?}");
    }
}
