//! The reply contract as a pure function: what the next hop said, per recipient,
//! becomes what we answer our client, and which recipients get a DSN from us.
//!
//! | next hop said | SMTP client gets | LMTP client gets |
//! |---|---|---|
//! | nothing usable (down, timeout, dropped) | 451 | 451 for each |
//! | 2xx for all | 250 | 250 for each |
//! | any 4xx | 451 (the next hop got no copy: the transaction was aborted before DATA) | that 4xx for that recipient |
//! | 2xx and 5xx | 250, and a DSN to the sender for the 5xx ones | 5xx for exactly those |
//! | 5xx for all | 5xx (Postfix bounces) | 5xx for each |
//!
//! A mixed 2xx/4xx after DATA can only come from an LMTP next hop; answering an SMTP client 250
//! would lose the deferred copies, so it gets 451 and the delivered recipients may see the
//! message twice: duplicates are the lesser harm.
//!
//! # Failures: which wait, which do not
//!
//! A failure that may be gone at the next try is answered 4xx, and Postfix keeps the mail. A
//! limit or a format that the same message would meet at every try must not be: Postfix would
//! retry it until it expires (five days), then bounce it. Each stage's error type says which
//! (`is_temporary`); this is the whole list.
//!
//! | failure | kind | answer |
//! |---|---|---|
//! | message over `message_size_limit`, header section over `header_size_limit` | permanent | 552 5.3.4 |
//! | decoder limits (depth, parts, quota, ratio, time), encrypted parts | permanent | UNCHECKED: `final_unchecked_destiny` |
//! | an object larger than clamd accepts (`stream_max_length`, `AvError::SizeLimit`) | permanent | UNCHECKED |
//! | a message larger than `spam.max_size` | permanent | not spam-scanned, as amavisd-new |
//! | a value the SQL log cannot store | cannot happen | made safe first (`sql_log::fields`) |
//! | virus scanner down, hanging, nonsense (`AvError`, others) | temporary | 451 4.5.0, or UNCHECKED by policy |
//! | SQL log or lookups down (`SqlError`) | temporary | 451 4.3.0 |
//! | Bayes store down, spool unreadable (`CheckError`) | temporary | 451 4.3.0 |
//! | quarantine cannot store a blocked copy (`QuarantineError`) | temporary | 451 4.3.0 |
//! | next hop down, slow or confused (`ForwardError`) | temporary | 451 (this table above) |
//! | a panic in our own code, caught per message | temporary | 451 4.3.0, logged as an internal error |

use crate::message::{Outcome, Protocol, Recipient, Reply};

/// The contract's decision for one message.
#[derive(Debug, Clone)]
pub struct Decision {
    pub outcome: Outcome,
    /// Indices of recipients we must report in a DSN of our own.
    pub dsn_for: Vec<usize>,
    /// How amavisd-new would name what happened in its log line: Relayed, TempFailed, Rejected.
    pub action: &'static str,
}

fn normalized(r: &Reply) -> Reply {
    let class = (r.code / 100) as u8;
    let status_ok = r.status.as_bytes().first() == Some(&(b'0' + class));
    Reply {
        code: r.code,
        status: if status_ok {
            r.status.clone()
        } else {
            format!("{class}.0.0")
        },
        text: r.text.clone(),
    }
}

/// Our reply quoting the next hop's, as amavisd-new words it:
/// `250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as X`.
pub fn quoting(code: u16, status: &str, via: &str, r: &Reply) -> Reply {
    Reply::new(code, status, format!("from MTA({via}): {}", r.one_line()))
}

/// When nothing usable came back from the next hop.
pub fn failed(nrcpt: usize, reply: Reply) -> Decision {
    Decision {
        outcome: Outcome::uniform(reply, nrcpt),
        dsn_for: Vec::new(),
        action: "TempFailed",
    }
}

/// What became of one recipient's copy before the contract speaks.
#[derive(Debug, Clone)]
pub enum RcptOutcome {
    /// Sent to the next hop, which answered this.
    Forwarded(Reply),
    /// Kept back by the verdict (discard, bounce: 250; reject: 5xx; tempfail: 4xx), with our
    /// reply. `dsn` says whether a reject may be reported to the sender in a DSN when the
    /// SMTP client is told 250 for the others.
    Blocked { reply: Reply, dsn: bool },
}

impl RcptOutcome {
    /// The reply as a DSN reports it.
    pub fn reply_text(&self) -> Reply {
        self.reply().clone()
    }

    fn reply(&self) -> &Reply {
        match self {
            RcptOutcome::Forwarded(r) | RcptOutcome::Blocked { reply: r, .. } => r,
        }
    }
}

/// Decides from the next hop's final reply per recipient (everything forwarded).
pub fn decide(
    protocol: Protocol,
    via: &str,
    mail_from: &str,
    recipients: &[Recipient],
    replies: &[Reply],
) -> Decision {
    let outcomes: Vec<RcptOutcome> = replies
        .iter()
        .cloned()
        .map(RcptOutcome::Forwarded)
        .collect();
    combine(protocol, via, mail_from, recipients, &outcomes)
}

/// Decides from what became of each recipient's copy: forwarded (the next hop's reply) or
/// kept back by the verdict. SMTP gets one reply: any 4xx defers the message; otherwise 250
/// when any copy was delivered or discarded, with a DSN from us for the refused ones (the next
/// hop's 5xx, our rejects); 5xx when every copy was refused. LMTP gets each reply.
pub fn combine(
    protocol: Protocol,
    via: &str,
    mail_from: &str,
    recipients: &[Recipient],
    outcomes: &[RcptOutcome],
) -> Decision {
    let any_temp = outcomes.iter().any(|o| o.reply().is_temporary());
    let any_ok = outcomes.iter().any(|o| o.reply().is_positive());
    let all_ok = outcomes.iter().all(|o| o.reply().is_positive());
    let action = if all_ok {
        "Relayed"
    } else if any_temp {
        "TempFailed"
    } else if any_ok {
        "Relayed"
    } else {
        "Rejected"
    };
    let (outcome, dsn_for) = match protocol {
        Protocol::Lmtp => (lmtp(via, outcomes), Vec::new()),
        Protocol::Smtp => smtp(via, mail_from, recipients, outcomes),
    };
    Decision {
        outcome,
        dsn_for,
        action,
    }
}

/// What we answer for one copy: the next hop's reply quoted, or ours.
fn ours(o: &RcptOutcome, via: &str) -> Reply {
    match o {
        RcptOutcome::Forwarded(r) => {
            let n = normalized(r);
            quoting(n.code, &n.status, via, r)
        }
        RcptOutcome::Blocked { reply, .. } => reply.clone(),
    }
}

/// LMTP: each recipient's own reply; the message's is the first deferral, else the first
/// success, else the first reply.
fn lmtp(via: &str, outcomes: &[RcptOutcome]) -> Outcome {
    let per_recipient: Vec<Reply> = outcomes.iter().map(|o| ours(o, via)).collect();
    let message = outcomes
        .iter()
        .find(|o| o.reply().is_temporary())
        .or_else(|| outcomes.iter().find(|o| o.reply().is_positive()))
        .or(outcomes.first())
        .map(|o| ours(o, via))
        .unwrap_or_else(|| Reply::new(451, "4.3.0", "no recipients"));
    Outcome {
        message,
        per_recipient,
    }
}

/// SMTP: one reply for the message, and the recipients our DSN reports.
fn smtp(
    via: &str,
    mail_from: &str,
    recipients: &[Recipient],
    outcomes: &[RcptOutcome],
) -> (Outcome, Vec<usize>) {
    let first_where = |f: fn(&Reply) -> bool| outcomes.iter().find(|o| f(o.reply()));
    let (message, dsn_for) = if let Some(t) = first_where(Reply::is_temporary) {
        (ours(t, via), Vec::new())
    } else if first_where(Reply::is_positive).is_some() {
        let ok = outcomes
            .iter()
            .find_map(|o| match o {
                RcptOutcome::Forwarded(r) if r.is_positive() => Some(quoting(250, "2.0.0", via, r)),
                _ => None,
            })
            .or_else(|| first_where(Reply::is_positive).map(|o| ours(o, via)));
        (
            ok.unwrap_or_else(|| Reply::new(250, "2.0.0", "Ok")),
            refused_to_report(mail_from, recipients, outcomes),
        )
    } else {
        let first = outcomes.first().map(|o| ours(o, via));
        (
            first.unwrap_or_else(|| Reply::new(451, "4.3.0", "no recipients")),
            Vec::new(),
        )
    };
    (Outcome::uniform(message, outcomes.len()), dsn_for)
}

/// The copies refused for good that our DSN reports when the client hears 250: the next
/// hop's 5xx and our rejects, unless the sender is `<>` or the recipient said NOTIFY=NEVER.
fn refused_to_report(
    mail_from: &str,
    recipients: &[Recipient],
    outcomes: &[RcptOutcome],
) -> Vec<usize> {
    if mail_from.is_empty() {
        return Vec::new();
    }
    (0..outcomes.len())
        .filter(|&i| {
            let may = match &outcomes[i] {
                RcptOutcome::Forwarded(_) => true,
                RcptOutcome::Blocked { dsn, .. } => *dsn,
            };
            may && outcomes[i].reply().is_permanent() && recipients[i].notify_failure()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Param;

    const VIA: &str = "smtp:[127.0.0.1]:10025";

    fn rcpt(a: &str, notify: Option<&str>) -> Recipient {
        Recipient {
            address: a.into(),
            params: notify
                .map(|v| {
                    vec![Param {
                        keyword: "NOTIFY".into(),
                        value: Some(v.into()),
                    }]
                })
                .unwrap_or_default(),
        }
    }

    fn ok() -> Reply {
        Reply::new(250, "2.0.0", "Ok: queued as ABC")
    }
    fn temp() -> Reply {
        Reply::new(450, "4.2.0", "mailbox busy")
    }
    fn perm() -> Reply {
        Reply::new(550, "5.1.1", "User unknown")
    }

    struct Row {
        replies: Vec<Reply>,
        smtp: u16,
        smtp_dsn: Vec<usize>,
        lmtp: Vec<u16>,
    }

    #[test]
    fn contract_table() {
        let rows = [
            Row {
                replies: vec![ok(), ok()],
                smtp: 250,
                smtp_dsn: vec![],
                lmtp: vec![250, 250],
            },
            Row {
                replies: vec![ok(), temp()],
                smtp: 450,
                smtp_dsn: vec![],
                lmtp: vec![250, 450],
            },
            Row {
                replies: vec![ok(), perm()],
                smtp: 250,
                smtp_dsn: vec![1],
                lmtp: vec![250, 550],
            },
            Row {
                replies: vec![perm(), perm()],
                smtp: 550,
                smtp_dsn: vec![],
                lmtp: vec![550, 550],
            },
            Row {
                replies: vec![temp(), perm()],
                smtp: 450,
                smtp_dsn: vec![],
                lmtp: vec![450, 550],
            },
        ];
        let rcpts = [rcpt("a@x", None), rcpt("b@x", None)];
        for row in rows {
            let d = decide(Protocol::Smtp, VIA, "s@x", &rcpts, &row.replies);
            assert_eq!(d.outcome.message.code, row.smtp, "{:?}", row.replies);
            assert_eq!(d.dsn_for, row.smtp_dsn);
            assert!(
                d.outcome
                    .message
                    .text
                    .starts_with("from MTA(smtp:[127.0.0.1]:10025): ")
            );
            let d = decide(Protocol::Lmtp, VIA, "s@x", &rcpts, &row.replies);
            let codes: Vec<u16> = d.outcome.per_recipient.iter().map(|r| r.code).collect();
            assert_eq!(codes, row.lmtp);
            assert!(d.dsn_for.is_empty());
        }
    }

    #[test]
    fn no_dsn_for_null_sender_or_notify_never() {
        let rcpts = [
            rcpt("a@x", None),
            rcpt("b@x", Some("NEVER")),
            rcpt("c@x", Some("SUCCESS")),
        ];
        let replies = [ok(), perm(), perm()];
        assert!(
            decide(Protocol::Smtp, VIA, "s@x", &rcpts, &replies)
                .dsn_for
                .is_empty()
        );
        let rcpts = [rcpt("a@x", None), rcpt("b@x", Some("FAILURE,DELAY"))];
        assert_eq!(
            decide(Protocol::Smtp, VIA, "s@x", &rcpts, &[ok(), perm()]).dsn_for,
            [1]
        );
        assert!(
            decide(Protocol::Smtp, VIA, "", &rcpts, &[ok(), perm()])
                .dsn_for
                .is_empty()
        );
    }

    #[test]
    fn blocked_copies_join_the_contract() {
        let rcpts = [rcpt("a@x", None), rcpt("b@x", None), rcpt("c@x", None)];
        let reject = || RcptOutcome::Blocked {
            reply: Reply::new(554, "5.7.0", "Reject, id=1 - INFECTED: X"),
            dsn: true,
        };
        let discard = || RcptOutcome::Blocked {
            reply: Reply::new(250, "2.7.0", "Ok, discarded, id=1 - INFECTED: X"),
            dsn: false,
        };
        let tempfail = || RcptOutcome::Blocked {
            reply: Reply::new(450, "4.7.0", "Temporary failure"),
            dsn: false,
        };
        let fwd = || RcptOutcome::Forwarded(ok());
        // Delivered + rejected + discarded: 250, the rejected one reported by DSN.
        let d = combine(
            Protocol::Smtp,
            VIA,
            "s@x",
            &rcpts,
            &[fwd(), reject(), discard()],
        );
        assert_eq!((d.outcome.message.code, d.dsn_for.clone()), (250, vec![1]));
        assert!(d.outcome.message.text.starts_with("from MTA("));
        // Every copy rejected: the reject itself, no DSN.
        let d = combine(
            Protocol::Smtp,
            VIA,
            "s@x",
            &rcpts,
            &[reject(), reject(), reject()],
        );
        assert_eq!((d.outcome.message.code, d.dsn_for.len()), (554, 0));
        // All discarded: our 250 2.7.0.
        let d = combine(
            Protocol::Smtp,
            VIA,
            "s@x",
            &rcpts,
            &[discard(), discard(), discard()],
        );
        assert_eq!(
            d.outcome.message.one_line(),
            "250 2.7.0 Ok, discarded, id=1 - INFECTED: X"
        );
        // Any 4xx defers the whole message.
        let d = combine(
            Protocol::Smtp,
            VIA,
            "s@x",
            &rcpts,
            &[fwd(), tempfail(), discard()],
        );
        assert_eq!(d.outcome.message.code, 450);
        // LMTP: each its own.
        let d = combine(
            Protocol::Lmtp,
            VIA,
            "s@x",
            &rcpts,
            &[fwd(), reject(), tempfail()],
        );
        let codes: Vec<u16> = d.outcome.per_recipient.iter().map(|r| r.code).collect();
        assert_eq!(codes, [250, 554, 450]);
    }

    #[test]
    fn status_class_follows_code() {
        let rcpts = [rcpt("a@x", None)];
        let d = decide(
            Protocol::Smtp,
            VIA,
            "s@x",
            &rcpts,
            &[Reply::new(451, "", "later")],
        );
        assert_eq!(d.outcome.message.status, "4.0.0");
        let d = decide(
            Protocol::Smtp,
            VIA,
            "s@x",
            &rcpts,
            &[Reply::new(554, "2.0.0", "odd")],
        );
        assert_eq!(d.outcome.message.status, "5.0.0");
    }
}
