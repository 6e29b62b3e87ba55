//! rspamd's JSON replies, made from our verdict ([`Advice`]).
//!
//! # Actions
//! The verdict becomes one of rspamd's actions by the before-queue rule's answer and the
//! reported copy's category (`pipeline/advise.rs` picks the copy):
//!
//! | our answer                                   | rspamd action      |
//! |----------------------------------------------|--------------------|
//! | tempfail (a scanner down, an SQL lookup failed) | `soft reject`   |
//! | every copy blocked (reject, bounce, discard) | `reject`           |
//! | passed, spam (tag2 level) with a subject tag | `rewrite subject`  |
//! | passed, spam (tag2 level) without one        | `add header`       |
//! | passed, anything else                        | `no action`        |
//!
//! A discarded copy is refused: a client that scans before its queue loses nothing by
//! refusing, and the sender hears of it without backscatter. So a virus or a banned part
//! (final destinies `discard` by default) is `reject`, with the symbol `AMAVIS_VIRUS` or
//! `AMAVIS_BANNED` naming it; a recipient who loves them gets its copy passed, as on the
//! SMTP path. We never say `greylist`. `required_score` is the reported copy's
//! `spam_kill_level` (rspamd's is its reject threshold).

use super::protocol::ProtoError;
use crate::message::Category;
use crate::message::header_edit::FieldChange;
use crate::message::screen::{Advice, Answer, Findings};
use serde_json::{Map, Value, json};

/// rspamd's actions we answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    NoAction,
    AddHeader,
    RewriteSubject,
    SoftReject,
    Reject,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::NoAction => "no action",
            Action::AddHeader => "add header",
            Action::RewriteSubject => "rewrite subject",
            Action::SoftReject => "soft reject",
            Action::Reject => "reject",
        }
    }

    /// rspamd's `is_spam`: every action but `no action` (and `greylist`).
    pub fn is_spam(self) -> bool {
        self != Action::NoAction
    }

    /// The action for a verdict (the module's table).
    pub fn of(a: &Advice) -> Action {
        match &a.screened.answer {
            Answer::Tempfail(_) => Action::SoftReject,
            Answer::Reject(_) | Answer::Discard => Action::Reject,
            Answer::Accept => match &a.findings {
                Some(f) if matches!(f.category, Category::Spam | Category::Spammy) => {
                    if new_subject(&a.screened.changes).is_some() {
                        Action::RewriteSubject
                    } else {
                        Action::AddHeader
                    }
                }
                _ => Action::NoAction,
            },
        }
    }
}

/// The `/checkv2` reply; `time_real` is the seconds the request took.
pub fn check_v2(a: &Advice, time_real: f64) -> Value {
    let action = Action::of(a);
    let mut out = head(a, action);
    out.insert("symbols".into(), Value::Object(symbols(a, true)));
    tail(a, &mut out, time_real, "milter");
    Value::Object(out)
}

/// The old `/check` (`/symbols`) reply: the result and its symbols inside `default`, no
/// `metric_score`, the header changes as `rmilter`.
pub fn check_v1(a: &Advice, time_real: f64) -> Value {
    let action = Action::of(a);
    let mut default = Map::new();
    default.insert("is_spam".into(), json!(action.is_spam()));
    default.extend(head(a, action));
    default.extend(symbols(a, false));
    let mut out = Map::new();
    out.insert("default".into(), Value::Object(default));
    tail(a, &mut out, time_real, "rmilter");
    Value::Object(out)
}

/// `Flags: skip`: nothing scanned, nothing to do.
pub fn skipped() -> Value {
    json!({
        "is_skipped": true, "score": 0.0, "required_score": 0.0, "action": "no action",
        "symbols": {}, "messages": {},
    })
}

/// An error's body (its text is also the status line's phrase).
pub fn error(e: &ProtoError) -> Value {
    json!({ "error": e.text, "error_domain": "protocol-error" })
}

/// `is_skipped`, `score`, `required_score`, `action`, `subject`.
fn head(a: &Advice, action: Action) -> Map<String, Value> {
    let f = a.findings.as_ref();
    let score = f.and_then(|f| f.spam.as_ref()).map_or(0.0, |s| s.score);
    let mut m = Map::new();
    m.insert("is_skipped".into(), json!(false));
    m.insert("score".into(), json!(round(score)));
    m.insert(
        "required_score".into(),
        json!(round(f.map_or(0.0, |f| f.kill_level))),
    );
    m.insert("action".into(), json!(action.as_str()));
    if action == Action::RewriteSubject
        && let Some(s) = new_subject(&a.screened.changes)
    {
        m.insert("subject".into(), json!(s));
    }
    m
}

/// `messages`, `urls`, `emails`, `message-id`, `time_real` and the header changes.
fn tail(a: &Advice, out: &mut Map<String, Value>, time_real: f64, milter_key: &str) {
    let mut messages = Map::new();
    let refusal = match &a.screened.answer {
        Answer::Tempfail(r) | Answer::Reject(r) => Some(r.clone()),
        Answer::Discard => a.findings.as_ref().and_then(|f| f.refusal.clone()),
        Answer::Accept => None,
    };
    if let Some(r) = refusal {
        messages.insert("smtp_message".into(), json!(r.text));
    }
    out.insert("messages".into(), Value::Object(messages));
    if let Some(f) = &a.findings {
        if !f.urls.is_empty() || !f.emails.is_empty() {
            out.insert("urls".into(), json!(f.urls));
            out.insert("emails".into(), json!(f.emails));
        }
        if let Some(id) = &f.message_id {
            out.insert("message-id".into(), json!(id));
        }
    }
    out.insert("time_real".into(), json!(round(time_real)));
    let m = milter(&a.screened.changes, &a.screened.remove);
    if !m.is_empty() {
        out.insert(milter_key.into(), Value::Object(m));
    }
}

/// Scores to 6 places, as rspamd writes them (and without binary noise like 6.8999999).
fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// One symbol object.
fn symbol(name: &str, score: f64, description: &str, options: &[String], v2: bool) -> Value {
    let mut s = Map::new();
    s.insert("name".into(), json!(name));
    s.insert("score".into(), json!(round(score)));
    if v2 {
        s.insert("metric_score".into(), json!(round(score)));
    }
    if !description.is_empty() {
        s.insert("description".into(), json!(description));
    }
    if !options.is_empty() {
        s.insert("options".into(), json!(options));
    }
    Value::Object(s)
}

/// The spam tests that hit, and our other findings as symbols of score 0 (they decide by
/// category, not by score).
fn symbols(a: &Advice, v2: bool) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(f) = &a.findings else {
        if let Answer::Tempfail(r) = &a.screened.answer {
            let what = "The checks could not run: try again later";
            out.insert(
                "AMAVIS_TEMPFAIL".into(),
                symbol("AMAVIS_TEMPFAIL", 0.0, what, &[r.one_line()], v2),
            );
        }
        return out;
    };
    for (name, score) in f.spam.iter().flat_map(|s| &s.tests) {
        let description = f
            .descriptions
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, d)| d.as_str());
        out.insert(name.clone(), symbol(name, *score, description, &[], v2));
    }
    for (name, description, options) in ours(f) {
        if !options.is_empty() {
            out.insert(name.into(), symbol(name, 0.0, description, options, v2));
        }
    }
    out
}

/// Our findings that are not spam tests.
fn ours(f: &Findings) -> [(&'static str, &'static str, &[String]); 4] {
    [
        ("AMAVIS_VIRUS", "A virus scanner found malware", &f.viruses),
        (
            "AMAVIS_BANNED",
            "A part is banned by name or type",
            &f.banned,
        ),
        (
            "AMAVIS_UNCHECKED",
            "Content could not be checked",
            &f.unchecked,
        ),
        (
            "AMAVIS_BAD_HEADER",
            "The header section is malformed",
            &f.bad_header,
        ),
    ]
}

/// The subject the reported copy gets, when it changes.
fn new_subject(changes: &[FieldChange]) -> Option<String> {
    changes.iter().find_map(|c| match c {
        FieldChange::Replace { name, value, .. } | FieldChange::Append { name, value }
            if name.eq_ignore_ascii_case("Subject") && !value.is_empty() =>
        {
            Some(String::from_utf8_lossy(value).into_owned())
        }
        _ => None,
    })
}

/// The milter block: fields to add (`order` 0 is the top; none: append) and to remove
/// (the occurrence, 0 for all when several go), recipients to drop. A new subject is the
/// reply's `subject` instead.
fn milter(changes: &[FieldChange], remove_rcpts: &[String]) -> Map<String, Value> {
    let mut add: Map<String, Value> = Map::new();
    let mut remove: Map<String, Value> = Map::new();
    for c in changes {
        let (name, value, order) = match c {
            FieldChange::Insert { index, name, value } => (name, value, Some(*index)),
            FieldChange::Append { name, value } => (name, value, None),
            FieldChange::Replace { index, name, value } => {
                if value.is_empty() {
                    let n = if remove.contains_key(name) { 0 } else { *index };
                    remove.insert(name.clone(), json!(n));
                }
                continue;
            }
        };
        if name.eq_ignore_ascii_case("Subject") {
            continue;
        }
        let mut h = Map::new();
        h.insert("value".into(), json!(String::from_utf8_lossy(value)));
        h.insert("order".into(), json!(order.map_or(-1, i64::from)));
        match add.get_mut(name) {
            Some(Value::Array(list)) => list.push(Value::Object(h)),
            Some(one) => *one = Value::Array(vec![one.take(), Value::Object(h)]),
            None => {
                add.insert(name.clone(), Value::Object(h));
            }
        }
    }
    let mut m = Map::new();
    if !add.is_empty() {
        m.insert("add_headers".into(), Value::Object(add));
    }
    if !remove.is_empty() {
        m.insert("remove_headers".into(), Value::Object(remove));
    }
    if !remove_rcpts.is_empty() {
        let bare: Vec<&str> = remove_rcpts
            .iter()
            .map(|r| r.trim_start_matches('<').trim_end_matches('>'))
            .collect();
        m.insert("del_rcpt".into(), json!(bare));
    }
    m
}

/// A reply's text as a status line's phrase: printable ASCII, bounded.
pub fn phrase(text: &str) -> String {
    let p: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(200)
        .collect();
    if p.is_empty() { "Error".into() } else { p }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Reply;
    use crate::message::screen::Screened;

    fn advice(answer: Answer, category: Category, changes: Vec<FieldChange>) -> Advice {
        Advice {
            screened: Screened {
                am_id: "1-01".into(),
                answer,
                remove: vec!["<b@x.example>".into()],
                changes,
                hold: None,
            },
            findings: Some(Findings {
                category,
                spam: None,
                descriptions: Vec::new(),
                kill_level: 6.9,
                viruses: vec!["Eicar-Test-Signature".into()],
                banned: Vec::new(),
                unchecked: Vec::new(),
                bad_header: Vec::new(),
                urls: Vec::new(),
                emails: Vec::new(),
                message_id: None,
                refusal: Some(Reply::new(554, "5.7.0", "Reject, id=1-01 - INFECTED: x")),
            }),
        }
    }

    fn subject() -> FieldChange {
        FieldChange::Replace {
            index: 1,
            name: "Subject".into(),
            value: b"***Spam*** hi".to_vec(),
        }
    }

    #[test]
    fn verdicts_map_to_actions() {
        let t = Reply::new(451, "4.3.0", "later");
        let cases = [
            (
                Answer::Tempfail(t.clone()),
                Category::Clean,
                vec![],
                Action::SoftReject,
            ),
            (Answer::Discard, Category::Virus, vec![], Action::Reject),
            (Answer::Reject(t), Category::Spam, vec![], Action::Reject),
            (
                Answer::Accept,
                Category::Spam,
                vec![subject()],
                Action::RewriteSubject,
            ),
            (Answer::Accept, Category::Spammy, vec![], Action::AddHeader),
            (Answer::Accept, Category::Virus, vec![], Action::NoAction),
            (
                Answer::Accept,
                Category::Clean,
                vec![subject()],
                Action::NoAction,
            ),
        ];
        for (answer, category, changes, want) in cases {
            assert_eq!(Action::of(&advice(answer, category, changes)), want);
        }
        let v = check_v2(&advice(Answer::Discard, Category::Virus, vec![]), 0.1);
        assert_eq!(v["action"], "reject");
        assert_eq!(
            v["messages"]["smtp_message"],
            "Reject, id=1-01 - INFECTED: x"
        );
        assert_eq!(
            v["symbols"]["AMAVIS_VIRUS"]["options"][0],
            "Eicar-Test-Signature"
        );
        assert_eq!(v["required_score"], 6.9);
    }

    #[test]
    fn header_changes_become_the_milter_block() {
        let changes = vec![
            FieldChange::Replace {
                index: 2,
                name: "X-Spam-Flag".into(),
                value: Vec::new(),
            },
            FieldChange::Replace {
                index: 1,
                name: "X-Spam-Flag".into(),
                value: Vec::new(),
            },
            FieldChange::Replace {
                index: 1,
                name: "X-Other".into(),
                value: Vec::new(),
            },
            subject(),
            FieldChange::Insert {
                index: 0,
                name: "X-Virus-Scanned".into(),
                value: b"ours".to_vec(),
            },
            FieldChange::Insert {
                index: 1,
                name: "X-Spam-Status".into(),
                value: b"Yes,\r\n\ttests=[GTUBE]".to_vec(),
            },
            FieldChange::Insert {
                index: 2,
                name: "X-Spam-Status".into(),
                value: b"second".to_vec(),
            },
        ];
        let v = check_v2(&advice(Answer::Accept, Category::Spam, changes), 0.0);
        let m = &v["milter"];
        assert_eq!(m["remove_headers"]["X-Spam-Flag"], 0, "{m}");
        assert_eq!(m["remove_headers"]["X-Other"], 1, "{m}");
        assert!(m["add_headers"].get("Subject").is_none(), "{m}");
        assert_eq!(m["add_headers"]["X-Virus-Scanned"]["order"], 0, "{m}");
        assert_eq!(
            m["add_headers"]["X-Spam-Status"][1]["value"], "second",
            "{m}"
        );
        assert_eq!(m["del_rcpt"][0], "b@x.example", "{m}");
        assert_eq!(v["subject"], "***Spam*** hi");
        let old = check_v1(
            &advice(Answer::Accept, Category::Spam, vec![subject()]),
            0.0,
        );
        assert_eq!(old["default"]["is_spam"], true);
        assert!(old["rmilter"].is_object() && old.get("milter").is_none());
    }

    #[test]
    fn phrases_are_printable() {
        assert_eq!(phrase("a\r\nb\u{e9}"), "a??b?");
        assert_eq!(phrase(""), "Error");
    }
}
