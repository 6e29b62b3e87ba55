//! amavisd-new's one line per message, which sites grep and feed to log analysers:
//!
//! `(12345-01) Passed CLEAN {RelayedInbound}, [192.0.2.1]:4321 [192.0.2.1] <s@x> -> <u@y>,
//! Queue-ID: 4Xyz, Message-ID: <id@x>, mail_id: abcDEF123456, Hits: -, size: 1234,
//! queued_as: 4Abc, 12 ms`

use crate::message::printable;
use crate::message::{Envelope, Reply};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static SEQ: AtomicU64 = AtomicU64::new(1);
static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// amavisd-new's log id, `PID-NN`: the process id and a per-process message counter.
pub fn next_am_id() -> String {
    // The pid is read once: getpid was one of the few syscalls per message.
    let pid = *PID.get_or_init(std::process::id);
    format!("{pid}-{:02}", SEQ.fetch_add(1, Ordering::Relaxed))
}

/// Whether this process gave out `am_id` (its pid, and a counter it has reached).
pub fn is_own_am_id(am_id: &str) -> bool {
    let pid = *PID.get_or_init(std::process::id);
    am_id.split_once('-').is_some_and(|(p, n)| {
        p.parse() == Ok(pid)
            && n.parse::<u64>()
                .is_ok_and(|n| n < SEQ.load(Ordering::Relaxed))
    })
}

/// The fields of the line.
pub struct LogLine<'a> {
    pub am_id: &'a str,
    /// `Passed CLEAN`, `Blocked INFECTED (Eicar-Test-Signature)`.
    pub status: &'a str,
    /// What is inside the braces: `RelayedInbound`, `DiscardedInbound,RelayedInbound`.
    pub action: &'a str,
    /// The policy bank path (`MYNETS/ORIGINATING`), empty for none.
    pub banks: &'a str,
    pub env: &'a Envelope,
    pub message_id: Option<String>,
    pub mail_id: &'a str,
    pub size: u64,
    /// The spam score, when the message was scored (`Hits: -` otherwise, as amavisd-new).
    pub hits: Option<f64>,
    /// The network checks' lookups (`12/12 in 3 ms (2 timed out)`), when any were made.
    pub dns: Option<&'a str>,
    /// DKIM, SPF, DMARC and ARC as amavisd-new logs them (`dkim_sd=sel:dom, dkim_id=@dom`)
    /// with the Authentication-Results summary; empty when not verified.
    pub auth: String,
    pub queued_as: Option<&'a str>,
    pub reply: &'a Reply,
    pub elapsed: Duration,
}

impl LogLine<'_> {
    /// The line's text.
    pub fn render(&self) -> String {
        let x = &self.env.client.xforward;
        let mut s = format!(
            "({}) {} {{{}}}, ",
            self.am_id,
            printable(self.status),
            self.action
        );
        if !self.banks.is_empty() {
            s.push_str(&format!("{} ", printable(self.banks)));
        }
        let ip = x
            .addr
            .clone()
            .or_else(|| self.env.client.peer.map(|p| p.ip().to_string()));
        let port = x
            .port
            .clone()
            .or_else(|| self.env.client.peer.map(|p| p.port().to_string()));
        if let Some(ip) = &ip {
            s.push_str(&format!("[{}]", printable(ip)));
            if let Some(port) = port {
                s.push_str(&format!(":{}", printable(&port)));
            }
            s.push_str(&format!(" [{}] ", printable(ip)));
        }
        s.push_str(&format!("<{}> -> ", printable(&self.env.mail_from)));
        let rcpts: Vec<String> = self
            .env
            .recipients
            .iter()
            .map(|r| format!("<{}>", printable(&r.address)))
            .collect();
        s.push_str(&rcpts.join(","));
        if let Some(q) = &x.ident {
            s.push_str(&format!(", Queue-ID: {}", printable(q)));
        }
        if let Some(m) = &self.message_id {
            s.push_str(&format!(", Message-ID: {}", printable(m)));
        }
        let hits = self.hits.map_or("-".to_string(), |h| format!("{h:.3}"));
        s.push_str(&format!(
            ", mail_id: {}, Hits: {hits}, size: {}",
            self.mail_id, self.size
        ));
        if !self.auth.is_empty() {
            s.push_str(&format!(", {}", printable(&self.auth)));
        }
        if let Some(d) = self.dns.filter(|d| !d.is_empty()) {
            s.push_str(&format!(", dns: {d}"));
        }
        if let Some(q) = self.queued_as {
            s.push_str(&format!(", queued_as: {}", printable(q)));
        }
        if !self.reply.is_positive() {
            s.push_str(&format!(", {}", printable(&self.reply.one_line())));
        }
        s.push_str(&format!(", {} ms", self.elapsed.as_millis()));
        s
    }

    /// Writes the line through `tracing` (target `amavis`).
    pub fn emit(&self) {
        tracing::info!(target: "amavis", "{}", self.render());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{ClientInfo, Protocol, Recipient, XForward};

    #[test]
    fn own_log_ids_are_those_given_out() {
        let pid = std::process::id();
        let given = next_am_id();
        assert!(is_own_am_id(&given));
        let (_, n) = given.split_once('-').unwrap();
        let later = format!("{pid}-{}", n.parse::<u64>().unwrap() + 1000);
        assert!(!is_own_am_id(&later), "not given out yet");
        assert!(!is_own_am_id(&format!("{}-01", pid + 1)), "another process");
        assert!(!is_own_am_id("kill-1") && !is_own_am_id(""));
    }

    #[test]
    fn amavisd_new_shape() {
        let env = Envelope {
            mail_from: "s@example.org".into(),
            mail_params: vec![],
            recipients: vec![
                Recipient {
                    address: "a@example.com".into(),
                    params: vec![],
                },
                Recipient {
                    address: "b@example.com".into(),
                    params: vec![],
                },
            ],
            client: ClientInfo {
                xforward: XForward {
                    addr: Some("192.0.2.1".into()),
                    port: Some("4321".into()),
                    ident: Some("4Xyz".into()),
                    ..XForward::default()
                },
                ..ClientInfo::default()
            },
            protocol: Protocol::Smtp,
            received_at: std::time::SystemTime::now(),
        };
        let reply = Reply::new(250, "2.0.0", "ok");
        let line = LogLine {
            am_id: "123-01",
            status: "Passed CLEAN",
            action: "RelayedInbound",
            banks: "",
            env: &env,
            message_id: Some("<id@example.org>".into()),
            mail_id: "abcDEF123456",
            size: 1234,
            hits: None,
            dns: None,
            auth: String::new(),
            queued_as: Some("4Abc"),
            reply: &reply,
            elapsed: Duration::from_millis(12),
        };
        assert_eq!(
            line.render(),
            "(123-01) Passed CLEAN {RelayedInbound}, [192.0.2.1]:4321 [192.0.2.1] \
             <s@example.org> -> <a@example.com>,<b@example.com>, Queue-ID: 4Xyz, \
             Message-ID: <id@example.org>, mail_id: abcDEF123456, Hits: -, size: 1234, \
             queued_as: 4Abc, 12 ms"
        );
        let line = LogLine {
            status: "Blocked INFECTED (Eicar-Test-Signature)",
            action: "DiscardedOutbound",
            banks: "MYNETS/ORIGINATING",
            ..line
        };
        assert!(
            line.render().starts_with(
                "(123-01) Blocked INFECTED (Eicar-Test-Signature) {DiscardedOutbound}, \
                 MYNETS/ORIGINATING [192.0.2.1]:4321 "
            ),
            "{}",
            line.render()
        );
        let line = LogLine {
            status: "Passed SPAM",
            dns: None,
            auth: String::new(),
            hits: Some(1000.8125),
            ..line
        };
        assert!(
            line.render().contains(", Hits: 1000.812, size: 1234"),
            "{}",
            line.render()
        );
    }
}
