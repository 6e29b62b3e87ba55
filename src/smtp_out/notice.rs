//! Notices: the admin notice about a blocked message and the warning to a recipient whose copy
//! was blocked, written from templates in `etc/templates/` (amavisd-new's
//! `$notify_virus_admin_templ` and `$notify_virus_recips_templ`, reduced to the common
//! macros). A template is a message: header fields, a blank line, the body. Header fields
//! with non-ASCII text are RFC 2047 encoded; the body is sent as UTF-8.

use super::template::{Macros, expand};
use crate::message::date;

/// What a notice is about; each field is one or more template macros.
#[derive(Debug, Clone, Default)]
pub struct NoticeFacts {
    /// `%s`: the envelope sender, `<>` for the null sender.
    pub sender: String,
    /// `%R`: the recipients concerned.
    pub recipients: Vec<String>,
    /// `%V`: virus names.
    pub viruses: Vec<String>,
    /// `%F`: banned parts.
    pub banned: Vec<String>,
    /// `%X`: bad header findings.
    pub bad_header: Vec<String>,
    /// `%c`: the spam score, if any.
    pub spam_score: String,
    /// `%C`: the category as the log names it (`INFECTED`, `BANNED`).
    pub category: String,
    /// `%n` the log id, `%i` the mail_id, `%m` the Message-ID, `%j` the Subject.
    pub am_id: String,
    pub mail_id: String,
    pub message_id: String,
    pub subject: String,
    /// `%q`: where the message was quarantined (empty: not quarantined).
    pub quarantine: Vec<String>,
    /// `%z`: size in bytes; `%p`: policy bank path; `%a`: the original client address.
    pub size: u64,
    pub banks: String,
    pub client: String,
}

/// The sender of notices: `%h` and `%o` in templates.
#[derive(Debug, Clone)]
pub struct NoticeSite {
    pub myhostname: String,
    pub mydomain: String,
}

fn macros(f: &NoticeFacts, site: &NoticeSite, to: &str) -> Macros {
    let mut m = Macros::default();
    m.one('s', f.sender.clone())
        .list('R', f.recipients.iter().map(|r| format!("<{r}>")).collect())
        .list('V', f.viruses.clone())
        .list('F', f.banned.clone())
        .list('X', f.bad_header.clone())
        .one('c', f.spam_score.clone())
        .one('C', f.category.clone())
        .one('n', f.am_id.clone())
        .one('i', f.mail_id.clone())
        .one('m', f.message_id.clone())
        .one('j', f.subject.clone())
        .list('q', f.quarantine.clone())
        .one('z', f.size.to_string())
        .one('p', f.banks.clone())
        .one('a', f.client.clone())
        .one('h', site.myhostname.clone())
        .one('o', site.mydomain.clone())
        .one('T', format!("<{to}>"))
        .one('d', date::rfc2822(std::time::SystemTime::now()));
    m
}

/// Header text: controls removed; non-ASCII as one RFC 2047 encoded word.
fn header_value(v: &str) -> String {
    let v: String = v
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if v.is_ascii() {
        return v;
    }
    use base64::Engine;
    format!(
        "=?UTF-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(v.as_bytes())
    )
}

/// The notice to `to`, as the bytes to send (CRLF line ends).
pub fn build_notice(template: &str, f: &NoticeFacts, site: &NoticeSite, to: &str) -> Vec<u8> {
    let text = expand(template, &macros(f, site, to)).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or(("", text.as_str()));
    let mut out = String::new();
    let mut seen = Vec::new();
    for line in head.lines().filter(|l| !l.trim().is_empty()) {
        match line.split_once(':') {
            Some((name, value)) => {
                seen.push(name.trim().to_ascii_lowercase());
                out.push_str(&format!(
                    "{}: {}\r\n",
                    name.trim(),
                    header_value(value.trim())
                ));
            }
            None => out.push_str(&format!(" {}\r\n", header_value(line.trim()))),
        }
    }
    let mut add = |name: &str, value: String| {
        if !seen.iter().any(|s| s == &name.to_ascii_lowercase()) {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    };
    add(
        "From",
        format!(
            "\"Content-filter at {}\" <postmaster@{}>",
            site.myhostname, site.mydomain
        ),
    );
    add("To", format!("<{to}>"));
    add("Date", date::rfc2822(std::time::SystemTime::now()));
    // One message may cause several notices: the recipient makes each Message-ID unique.
    let tag: String = {
        use md5::Digest;
        let d = md5::Md5::digest(to.as_bytes());
        d.iter().take(4).map(|b| format!("{b:02x}")).collect()
    };
    add(
        "Message-ID",
        format!("<NTC{}.{tag}@{}>", f.mail_id, site.myhostname),
    );
    add("Auto-Submitted", "auto-generated".into());
    add("MIME-Version", "1.0".into());
    add("Content-Type", "text/plain; charset=UTF-8".into());
    add("Content-Transfer-Encoding", "8bit".into());
    out.push_str("\r\n");
    for line in body.lines() {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> NoticeFacts {
        NoticeFacts {
            sender: "<s@example.org>".into(),
            recipients: vec!["u@example.com".into(), "v@example.com".into()],
            viruses: vec!["Eicar-Test-Signature".into()],
            banned: vec![],
            bad_header: vec![],
            spam_score: String::new(),
            category: "INFECTED".into(),
            am_id: "4711-01".into(),
            mail_id: "K-c5C9vr87eF".into(),
            message_id: "<m1@example.org>".into(),
            subject: "Grüße".into(),
            quarantine: vec![],
            size: 1234,
            banks: "MYNETS".into(),
            client: "192.0.2.7".into(),
        }
    }

    fn site() -> NoticeSite {
        NoticeSite {
            myhostname: "mx.example.com".into(),
            mydomain: "example.com".into(),
        }
    }

    /// The notice without its Date field (it changes), as text.
    fn undated(b: &[u8]) -> String {
        String::from_utf8_lossy(b)
            .split("\r\n")
            .filter(|l| !l.starts_with("Date: "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Compares with the golden file; AMAVISD_BLESS=1 rewrites it (then review the diff).
    fn golden(name: &str, actual: &str) {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/notices")
            .join(name);
        if std::env::var_os("AMAVISD_BLESS").is_some() {
            std::fs::write(&p, actual).unwrap();
        }
        let want = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(actual, want, "{}", p.display());
    }

    #[test]
    fn admin_notice_for_a_virus() {
        let t = include_str!("../../etc/templates/notify_admin.txt");
        let n = build_notice(t, &facts(), &site(), "virusalert@example.com");
        golden("admin-virus.txt", &undated(&n));
    }

    #[test]
    fn admin_notice_for_a_banned_part() {
        let t = include_str!("../../etc/templates/notify_admin.txt");
        let f = NoticeFacts {
            viruses: vec![],
            banned: vec!["invoice.pdf.exe".into()],
            category: "BANNED".into(),
            ..facts()
        };
        let n = build_notice(t, &f, &site(), "admin@example.com");
        golden("admin-banned.txt", &undated(&n));
    }

    #[test]
    fn recipient_warning() {
        let t = include_str!("../../etc/templates/notify_recipient.txt");
        let f = NoticeFacts {
            recipients: vec!["u@example.com".into()],
            ..facts()
        };
        let n = build_notice(t, &f, &site(), "u@example.com");
        golden("recipient-virus.txt", &undated(&n));
    }

    #[test]
    fn non_ascii_header_text_is_encoded() {
        let t = "Subject: Virus %V in %j\n\nbody %j\n";
        let n = build_notice(t, &facts(), &site(), "a@b");
        let s = String::from_utf8_lossy(&n);
        assert!(s.starts_with("Subject: =?UTF-8?B?"), "{s}");
        assert!(s.contains("\r\n\r\nbody Grüße\r\n"), "{s}");
        assert!(s.is_char_boundary(0));
    }
}
