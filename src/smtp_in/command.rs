//! Parsing one command line: bytes in, [`Command`] or [`CommandError`] out, no I/O.
//!
//! smtp-proto's `Request` parser is not used here on purpose: it xtext-decodes parameter values
//! (we must pass them on byte-exact), refuses parameters it does not know and ORCPT address types
//! other than `rfc822`, and has no XFORWARD. Its reply parser is used by `smtp_out`; its
//! `DataReceiver` no longer is (it misread the first line of DATA: see `data.rs`).

use crate::message::printable;
use crate::message::{Param, Reply, xtext};

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Helo(String),
    Ehlo(String),
    Lhlo(String),
    Mail {
        address: String,
        params: Vec<Param>,
    },
    Rcpt {
        address: String,
        params: Vec<Param>,
    },
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy(String),
    Help,
    /// XFORWARD attributes, names upper-cased, values xtext-decoded.
    Xforward(Vec<(String, String)>),
    /// A real SMTP verb we do not offer (STARTTLS, AUTH, BDAT, EXPN, ETRN, TURN ...).
    NotImplemented(String),
}

/// Why a command line was refused; [`CommandError::reply`] gives the SMTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// Not an SMTP verb at all.
    Unrecognized,
    /// The line holds a NUL byte.
    Nul,
    /// The line is not UTF-8 (RFC 6531 allows UTF-8, nothing else).
    NonUtf8,
    /// Right verb, wrong arguments; the text is the expected syntax.
    Syntax(&'static str),
    /// The address between the angle brackets is malformed.
    BadSender,
    BadRecipient,
    /// A MAIL/RCPT parameter we do not know.
    UnknownParam(String),
    /// A known parameter with a malformed or repeated value.
    BadParam(String),
    /// A parameter value we understand but do not support (BODY=BINARYMIME).
    UnsupportedValue(String),
    /// An XFORWARD attribute we do not know, or a malformed one.
    BadXforward(String),
}

impl CommandError {
    /// The reply, with its enhanced status code.
    pub fn reply(&self) -> Reply {
        match self {
            CommandError::Unrecognized => Reply::new(502, "5.5.2", "Error: command not recognized"),
            CommandError::Nul => Reply::new(500, "5.5.2", "Error: NUL character in command"),
            CommandError::NonUtf8 => Reply::new(500, "5.5.2", "Error: command is not valid UTF-8"),
            CommandError::Syntax(s) => Reply::new(501, "5.5.4", format!("Syntax: {s}")),
            CommandError::BadSender => Reply::new(501, "5.1.7", "Bad sender address syntax"),
            CommandError::BadRecipient => Reply::new(501, "5.1.3", "Bad recipient address syntax"),
            CommandError::UnknownParam(p) => Reply::new(
                555,
                "5.5.4",
                format!("Unsupported option: {}", printable(p)),
            ),
            CommandError::BadParam(p) => {
                Reply::new(501, "5.5.4", format!("Bad parameter: {}", printable(p)))
            }
            CommandError::UnsupportedValue(p) => Reply::new(
                504,
                "5.5.4",
                format!("Parameter not implemented: {}", printable(p)),
            ),
            CommandError::BadXforward(p) => Reply::new(
                501,
                "5.5.4",
                format!("Bad XFORWARD attribute: {}", printable(p)),
            ),
        }
    }
}

const NOT_IMPLEMENTED: [&str; 9] = [
    "STARTTLS", "AUTH", "BDAT", "EXPN", "ETRN", "TURN", "ATRN", "BURL", "XCLIENT",
];

/// Parses one command line, CRLF already removed.
pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
    if line.contains(&0) {
        return Err(CommandError::Nul);
    }
    let line = std::str::from_utf8(line).map_err(|_| CommandError::NonUtf8)?;
    let line = line.trim_end_matches([' ', '\t']);
    let (verb, rest) = match line.find([' ', '\t']) {
        Some(i) => (&line[..i], line[i + 1..].trim_start_matches([' ', '\t'])),
        None => (line, ""),
    };
    let verb_uc = verb.to_ascii_uppercase();
    let no_args = |cmd: Command, syntax: &'static str| {
        if rest.is_empty() {
            Ok(cmd)
        } else {
            Err(CommandError::Syntax(syntax))
        }
    };
    match verb_uc.as_str() {
        "HELO" | "EHLO" | "LHLO" => {
            if rest.is_empty() || rest.chars().any(char::is_control) {
                return Err(CommandError::Syntax(match verb_uc.as_str() {
                    "HELO" => "HELO hostname",
                    "EHLO" => "EHLO hostname",
                    _ => "LHLO hostname",
                }));
            }
            let host = rest.to_string();
            Ok(match verb_uc.as_str() {
                "HELO" => Command::Helo(host),
                "EHLO" => Command::Ehlo(host),
                _ => Command::Lhlo(host),
            })
        }
        "MAIL" => {
            let (address, params) =
                path_and_params(rest, "FROM:", "MAIL FROM:<address> [parameters]").map_err(
                    |e| {
                        if e == CommandError::BadRecipient {
                            CommandError::BadSender
                        } else {
                            e
                        }
                    },
                )?;
            let params = mail_params(params)?;
            Ok(Command::Mail { address, params })
        }
        "RCPT" => {
            let (address, params) = path_and_params(rest, "TO:", "RCPT TO:<address> [parameters]")?;
            if address.is_empty() {
                return Err(CommandError::BadRecipient);
            }
            let params = rcpt_params(params)?;
            Ok(Command::Rcpt { address, params })
        }
        "DATA" => no_args(Command::Data, "DATA"),
        "RSET" => no_args(Command::Rset, "RSET"),
        "QUIT" => no_args(Command::Quit, "QUIT"),
        "NOOP" => Ok(Command::Noop),
        "HELP" => Ok(Command::Help),
        "VRFY" => {
            if rest.is_empty() {
                Err(CommandError::Syntax("VRFY address"))
            } else {
                Ok(Command::Vrfy(rest.to_string()))
            }
        }
        "XFORWARD" => xforward(rest),
        v if NOT_IMPLEMENTED.contains(&v) => Ok(Command::NotImplemented(verb_uc)),
        _ => Err(CommandError::Unrecognized),
    }
}

/// Splits `FROM:<path> params` into the address and the parameter text.
fn path_and_params<'a>(
    rest: &'a str,
    keyword: &str,
    syntax: &'static str,
) -> Result<(String, &'a str), CommandError> {
    let head = rest
        .get(..keyword.len())
        .ok_or(CommandError::Syntax(syntax))?;
    if !head.eq_ignore_ascii_case(keyword) {
        return Err(CommandError::Syntax(syntax));
    }
    let path = rest[keyword.len()..].trim_start_matches(' ');
    let Some(inner) = path.strip_prefix('<') else {
        return Err(CommandError::Syntax(syntax));
    };
    // Find the closing '>' outside a quoted string.
    let mut in_quote = false;
    let mut escaped = false;
    let mut close = None;
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quote => escaped = true,
            '"' => in_quote = !in_quote,
            '>' if !in_quote => {
                close = Some(i);
                break;
            }
            _ => {}
        }
    }
    let close = close.ok_or(CommandError::Syntax(syntax))?;
    let mut addr = &inner[..close];
    let params = &inner[close + 1..];
    if !params.is_empty() && !params.starts_with(' ') {
        return Err(CommandError::Syntax(syntax));
    }
    // A source route (`@a,@b:user@c`) is obsolete; RFC 5321 says to ignore it.
    if addr.starts_with('@') {
        addr = addr
            .split_once(':')
            .map(|(_, a)| a)
            .ok_or(CommandError::BadRecipient)?;
    }
    if !address_ok(addr) {
        return Err(CommandError::BadRecipient);
    }
    Ok((addr.to_string(), params.trim_start_matches(' ')))
}

/// A liberal check: no controls, no unquoted spaces or angle brackets, at most 254 bytes of
/// local part and domain. Postfix already checked the address strictly; this only keeps
/// garbage out of logs and the next hop.
fn address_ok(a: &str) -> bool {
    if a.len() > 512 || a.chars().any(char::is_control) {
        return false;
    }
    let mut in_quote = false;
    let mut escaped = false;
    for c in a.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quote => escaped = true,
            '"' => in_quote = !in_quote,
            ' ' | '<' | '>' | ',' if !in_quote => return false,
            _ => {}
        }
    }
    !in_quote
}

fn split_params(s: &str) -> Vec<Param> {
    s.split(' ')
        .filter(|w| !w.is_empty())
        .map(Param::parse)
        .collect()
}

fn no_duplicates(params: &[Param]) -> Result<(), CommandError> {
    for (i, p) in params.iter().enumerate() {
        if params[..i].iter().any(|q| q.is(&p.keyword)) {
            return Err(CommandError::BadParam(format!("duplicate {}", p.keyword)));
        }
    }
    Ok(())
}

fn mail_params(s: &str) -> Result<Vec<Param>, CommandError> {
    let params = split_params(s);
    no_duplicates(&params)?;
    for p in &params {
        let kw = p.keyword.to_ascii_uppercase();
        let v = p.value.as_deref();
        let bad = || CommandError::BadParam(p.wire());
        match (kw.as_str(), v) {
            ("SIZE", Some(v)) => {
                if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
            }
            ("BODY", Some(v)) => {
                if v.eq_ignore_ascii_case("BINARYMIME") {
                    return Err(CommandError::UnsupportedValue(p.wire()));
                }
                if !v.eq_ignore_ascii_case("7BIT") && !v.eq_ignore_ascii_case("8BITMIME") {
                    return Err(bad());
                }
            }
            ("SMTPUTF8", None) => {}
            ("RET", Some(v)) => {
                if !v.eq_ignore_ascii_case("FULL") && !v.eq_ignore_ascii_case("HDRS") {
                    return Err(bad());
                }
            }
            ("ENVID", Some(v)) => {
                if v.is_empty() || v.len() > 100 || !xtext::is_valid(v) {
                    return Err(bad());
                }
            }
            ("AUTH", Some(v)) => {
                if v != "<>" && (v.is_empty() || !xtext::is_valid(v)) {
                    return Err(bad());
                }
            }
            ("SIZE" | "BODY" | "SMTPUTF8" | "RET" | "ENVID" | "AUTH", _) => return Err(bad()),
            _ => return Err(CommandError::UnknownParam(p.wire())),
        }
    }
    Ok(params)
}

fn rcpt_params(s: &str) -> Result<Vec<Param>, CommandError> {
    let params = split_params(s);
    no_duplicates(&params)?;
    for p in &params {
        let kw = p.keyword.to_ascii_uppercase();
        let bad = || CommandError::BadParam(p.wire());
        match (kw.as_str(), p.value.as_deref()) {
            ("NOTIFY", Some(v)) => {
                let words: Vec<String> = v.split(',').map(|w| w.to_ascii_uppercase()).collect();
                let never = words.iter().any(|w| w == "NEVER");
                let known = words
                    .iter()
                    .all(|w| matches!(w.as_str(), "NEVER" | "SUCCESS" | "FAILURE" | "DELAY"));
                if !known || (never && words.len() > 1) {
                    return Err(bad());
                }
            }
            ("ORCPT", Some(v)) => {
                // addr-type ";" xtext (RFC 3461); utf-8-addr-xtext (RFC 6533) may hold UTF-8.
                let Some((atype, addr)) = v.split_once(';') else {
                    return Err(bad());
                };
                let atype_ok = !atype.is_empty()
                    && atype
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-');
                let addr_ok = !addr.is_empty()
                    && addr.len() <= 500
                    && addr
                        .chars()
                        .all(|c| !c.is_control() && c != ' ' && c != '=');
                if !atype_ok || !addr_ok {
                    return Err(bad());
                }
            }
            ("NOTIFY" | "ORCPT", None) => return Err(bad()),
            _ => return Err(CommandError::UnknownParam(p.wire())),
        }
    }
    Ok(params)
}

fn xforward(rest: &str) -> Result<Command, CommandError> {
    if rest.is_empty() {
        return Err(CommandError::Syntax("XFORWARD attribute=value..."));
    }
    let mut out = Vec::new();
    for word in rest.split([' ', '\t']).filter(|w| !w.is_empty()) {
        let (k, v) = word
            .split_once('=')
            .ok_or_else(|| CommandError::BadXforward(word.to_string()))?;
        let k = k.to_ascii_uppercase();
        if !crate::message::XForward::NAMES.contains(&k.as_str()) {
            return Err(CommandError::BadXforward(k));
        }
        let v = xtext::decode(v).ok_or_else(|| CommandError::BadXforward(word.to_string()))?;
        out.push((k, v));
    }
    Ok(Command::Xforward(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, CommandError> {
        parse(s.as_bytes())
    }

    #[test]
    fn mail_keeps_raw_params() {
        let c =
            p("MAIL FROM:<a@b.c> SIZE=1234 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=abc+2Bd AUTH=<>")
                .unwrap();
        let Command::Mail { address, params } = c else {
            panic!()
        };
        assert_eq!(address, "a@b.c");
        let wire: Vec<String> = params.iter().map(Param::wire).collect();
        assert_eq!(
            wire,
            [
                "SIZE=1234",
                "BODY=8BITMIME",
                "SMTPUTF8",
                "RET=HDRS",
                "ENVID=abc+2Bd",
                "AUTH=<>"
            ]
        );
    }

    #[test]
    fn null_sender_and_case() {
        assert_eq!(
            p("mail from:<>").unwrap(),
            Command::Mail {
                address: String::new(),
                params: vec![]
            }
        );
        assert_eq!(
            p("MAIL FROM: <x@y>").unwrap(),
            Command::Mail {
                address: "x@y".into(),
                params: vec![]
            }
        );
    }

    #[test]
    fn rcpt_params_and_route() {
        let c = p("RCPT TO:<@relay:u@x> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u+2Bx@x").unwrap();
        let Command::Rcpt { address, params } = c else {
            panic!()
        };
        assert_eq!(address, "u@x");
        assert_eq!(params[1].wire(), "ORCPT=rfc822;u+2Bx@x");
        assert!(p("RCPT TO:<u@x> ORCPT=utf-8;ü@x").is_ok());
        assert!(p("RCPT TO:<\"a b\"@x>").is_ok());
    }

    #[test]
    fn errors() {
        use CommandError::*;
        assert_eq!(p("FOO bar"), Err(Unrecognized));
        assert_eq!(p(""), Err(Unrecognized));
        assert_eq!(parse(b"MAIL FROM:<a\0@b>"), Err(Nul));
        assert_eq!(parse(b"MAIL FROM:<\xff@b>"), Err(NonUtf8));
        assert!(matches!(p("MAIL TO:<a@b>"), Err(Syntax(_))));
        assert!(matches!(p("MAIL FROM:a@b"), Err(Syntax(_))));
        assert!(matches!(p("MAIL FROM:<a@b"), Err(Syntax(_))));
        assert!(matches!(p("MAIL FROM:<a@b>SIZE=1"), Err(Syntax(_))));
        assert_eq!(p("MAIL FROM:<a b@c>"), Err(BadSender));
        assert_eq!(p("RCPT TO:<>"), Err(BadRecipient));
        assert!(matches!(p("MAIL FROM:<a@b> FOO=1"), Err(UnknownParam(_))));
        assert!(matches!(p("MAIL FROM:<a@b> SIZE=x"), Err(BadParam(_))));
        assert!(matches!(
            p("MAIL FROM:<a@b> SIZE=1 SIZE=2"),
            Err(BadParam(_))
        ));
        assert!(matches!(
            p("MAIL FROM:<a@b> BODY=BINARYMIME"),
            Err(UnsupportedValue(_))
        ));
        assert!(matches!(p("MAIL FROM:<a@b> RET=ALL"), Err(BadParam(_))));
        assert!(matches!(p("MAIL FROM:<a@b> ENVID=a=b"), Err(BadParam(_))));
        assert!(matches!(
            p("RCPT TO:<a@b> NOTIFY=NEVER,SUCCESS"),
            Err(BadParam(_))
        ));
        assert!(matches!(p("RCPT TO:<a@b> ORCPT=nosemi"), Err(BadParam(_))));
        assert!(matches!(p("EHLO"), Err(Syntax(_))));
        assert!(matches!(p("DATA now"), Err(Syntax(_))));
        assert!(matches!(p("VRFY"), Err(Syntax(_))));
        assert!(matches!(p("XFORWARD"), Err(Syntax(_))));
        assert!(matches!(p("XFORWARD FOO=1"), Err(BadXforward(_))));
        assert!(matches!(p("XFORWARD ADDR"), Err(BadXforward(_))));
        assert_eq!(
            p("STARTTLS"),
            Ok(Command::NotImplemented("STARTTLS".into()))
        );
        for e in [
            Unrecognized,
            Nul,
            Syntax("x"),
            BadSender,
            UnknownParam("x".into()),
        ] {
            let r = e.reply();
            assert!(r.code >= 500 && r.status.starts_with("5."), "{r}");
        }
    }

    #[test]
    fn xforward_decodes() {
        assert_eq!(
            p("XFORWARD NAME=mx.example.org ADDR=192.0.2.1 helo=a+20b").unwrap(),
            Command::Xforward(vec![
                ("NAME".into(), "mx.example.org".into()),
                ("ADDR".into(), "192.0.2.1".into()),
                ("HELO".into(), "a b".into()),
            ])
        );
    }
}
