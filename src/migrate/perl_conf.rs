//! Reads the assignments of an amavisd-new configuration file (Perl) without running Perl:
//! `$name = EXPR;`, `@name = (...);`, `%name = (...);` and `$name{KEY} = EXPR;`, with the
//! literals those files use (numbers and their arithmetic, quoted strings with `$var`
//! interpolation, `qw()`, `qr//` regexes, `D_PASS` and other barewords, lists, anonymous
//! arrays and hashes, `new_RE(...)` and other calls, `\%refs`), and statements that are a
//! call alone (`dkim_key(...);`). Anything else is skipped to
//! its `;` and reported by the name it assigns, so a converter can list what it did not take.

use std::collections::HashMap;

/// Marks, in an interpolated string, a variable the file never assigned (followed by its
/// name): such a value is not what Perl would compute.
pub const UNKNOWN: &str = "\u{0}unknown$";

/// A Perl value as far as a configuration file spells it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Num(f64),
    Str(String),
    /// `( ... )`, `[ ... ]` or `qw( ... )`.
    List(Vec<Value>),
    /// `{ key => value, ... }`.
    Hash(Vec<(String, Value)>),
    /// `qr/pattern/flags`.
    Regex {
        pattern: String,
        flags: String,
    },
    /// A bareword: `D_PASS`, `undef` is [`Value::Undef`].
    Bare(String),
    Undef,
    /// `name(args)`: `new_RE(...)`, `read_hash(...)`.
    Call(String, Vec<Value>),
    /// `\%name`, `\@name`, `\$name`.
    Ref(String),
    /// An expression this reader does not follow (its source text).
    Other(String),
}

/// What an assignment assigns to.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Scalar(String),
    Array(String),
    Hash(String),
    /// `$name{KEY}`.
    HashElem(String, String),
}

impl Target {
    /// The name as amavisd-new's documentation writes it (`$policy_bank{'MYNETS'}`).
    pub fn display(&self) -> String {
        match self {
            Target::Scalar(n) => format!("${n}"),
            Target::Array(n) => format!("@{n}"),
            Target::Hash(n) => format!("%{n}"),
            Target::HashElem(n, k) => format!("${n}{{'{k}'}}"),
        }
    }
}

/// The file read: its assignments in order, and the statements it could not read (their
/// first words).
#[derive(Debug, Default)]
pub struct Assignments {
    pub items: Vec<(Target, Value)>,
    /// Statements that are a call alone (`dkim_key('example.com', 'dkim', '/k.pem');`).
    pub calls: Vec<(String, Vec<Value>)>,
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Scalar(String),
    Array(String),
    HashVar(String),
    Word(String),
    Num(f64),
    Str(String),
    /// A double-quoted string as written: interpolated when parsed, with the scalars
    /// assigned by then.
    Interp(String),
    Regex(String, String),
    Qw(Vec<String>),
    Punct(&'static str),
}

/// The closing delimiter of a quote-like operator.
fn closing(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        '{' => '}',
        '<' => '>',
        c => c,
    }
}

/// A double-quoted string's value: escapes resolved, `$var` and `${var}` from the
/// scalars assigned so far.
fn interpolate(raw: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => {}
            },
            '$' if chars
                .peek()
                .is_some_and(|n| n.is_alphabetic() || *n == '{' || *n == '_') =>
            {
                let braced = chars.peek() == Some(&'{');
                if braced {
                    chars.next();
                }
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if n.is_alphanumeric() || n == '_' {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if braced && chars.peek() == Some(&'}') {
                    chars.next();
                }
                match vars.get(&name) {
                    Some(v) => out.push_str(v),
                    None => {
                        out.push_str(UNKNOWN);
                        out.push_str(&name);
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Text up to the unescaped `close` (nesting `open` when it differs), backslashes kept.
    fn delimited(&mut self, open: char, close: char) -> String {
        let mut out = String::new();
        let mut depth = 0;
        let text = String::from_utf8_lossy(&self.s[self.i..]).into_owned();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            if c == '\\' {
                if let Some((_, n)) = chars.next() {
                    out.push('\\');
                    out.push(n);
                }
                continue;
            }
            if c == close && depth == 0 {
                self.i += at + c.len_utf8();
                return out;
            }
            if open != close && c == open {
                depth += 1;
            } else if open != close && c == close {
                depth -= 1;
            }
            out.push(c);
        }
        self.i = self.s.len();
        out
    }

    fn name(&mut self) -> String {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn next(&mut self) -> Option<Tok> {
        loop {
            let c = self.peek()?;
            if c.is_ascii_whitespace() {
                self.i += 1;
            } else if c == b'#' {
                while self.peek().is_some_and(|c| c != b'\n') {
                    self.i += 1;
                }
            } else {
                break;
            }
        }
        let c = self.peek()?;
        let rest = &self.s[self.i..];
        if rest.starts_with(b"__END__") || rest.starts_with(b"__DATA__") {
            self.i = self.s.len();
            return None;
        }
        for p in ["=>", "::"] {
            if rest.starts_with(p.as_bytes()) {
                self.i += 2;
                return Some(Tok::Punct(p));
            }
        }
        match c {
            b'$' | b'@' | b'%'
                if rest
                    .get(1)
                    .is_some_and(|n| n.is_ascii_alphabetic() || *n == b'_' || *n == b'{') =>
            {
                self.i += 1;
                if self.peek() == Some(b'{') {
                    self.i += 1;
                    let n = self.name();
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                    }
                    return Some(Tok::Scalar(n));
                }
                let n = self.name();
                return Some(match c {
                    b'$' => Tok::Scalar(n),
                    b'@' => Tok::Array(n),
                    _ => Tok::HashVar(n),
                });
            }
            b'\'' => {
                self.i += 1;
                let raw = self.delimited('\'', '\'');
                return Some(Tok::Str(raw.replace("\\'", "'").replace("\\\\", "\\")));
            }
            b'"' => {
                self.i += 1;
                let raw = self.delimited('"', '"');
                return Some(Tok::Interp(raw));
            }
            b'0'..=b'9' => {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_digit() || c == b'.' || c == b'_' || c == b'e')
                {
                    self.i += 1;
                }
                let text = String::from_utf8_lossy(&self.s[start..self.i]).replace('_', "");
                return Some(Tok::Num(text.parse().unwrap_or(0.0)));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let w = self.name();
                let open = self.peek().map(char::from);
                let quote_like = |o: Option<char>| {
                    o.is_some_and(|o| {
                        !o.is_alphanumeric()
                            && !o.is_whitespace()
                            && o != ','
                            && o != ';'
                            && o != '='
                            && o != ')'
                    })
                };
                if (w == "qr" || w == "qw" || w == "q" || w == "qq") && quote_like(open) {
                    let open = open.unwrap_or('/');
                    self.i += open.len_utf8();
                    let body = self.delimited(open, closing(open));
                    return Some(match w.as_str() {
                        "qr" => {
                            let flags = self.name();
                            Tok::Regex(body, flags)
                        }
                        "qw" => Tok::Qw(body.split_whitespace().map(str::to_string).collect()),
                        "qq" => Tok::Interp(body),
                        _ => Tok::Str(body),
                    });
                }
                return Some(Tok::Word(w));
            }
            _ => {}
        }
        self.i += 1;
        const PUNCT: &[&str] = &[
            "=", ";", ",", "(", ")", "[", "]", "{", "}", "*", "+", "-", ".", "\\", "/", "!", "?",
            ":", "<", ">", "&", "|", "~", "^",
        ];
        let p = PUNCT
            .iter()
            .find(|p| p.as_bytes()[0] == c)
            .copied()
            .unwrap_or("?");
        Some(Tok::Punct(p))
    }
}

struct Parser<'a> {
    toks: Vec<Tok>,
    at: usize,
    vars: &'a mut HashMap<String, String>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn eat(&mut self, p: &'static str) -> bool {
        if self.peek() == Some(&Tok::Punct(p)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Skips to the end of the statement (`;` outside brackets).
    fn skip_statement(&mut self) {
        let mut depth = 0i32;
        while let Some(t) = self.toks.get(self.at) {
            self.at += 1;
            match t {
                Tok::Punct("(" | "[" | "{") => depth += 1,
                Tok::Punct(")" | "]" | "}") => depth -= 1,
                Tok::Punct(";") if depth <= 0 => return,
                _ => {}
            }
        }
    }

    /// A list's items up to `close`; `=>` quotes a bareword before it.
    fn items(&mut self, close: &'static str) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            if self.eat(close) || self.peek().is_none() {
                return out;
            }
            if self.eat(",") || self.eat("=>") {
                continue;
            }
            if let Some(Tok::Word(w)) = self.peek().cloned()
                && self.toks.get(self.at + 1) == Some(&Tok::Punct("=>"))
            {
                self.at += 1;
                out.push(Value::Str(w));
                continue;
            }
            match self.expr() {
                Some(v) => out.push(v),
                None => {
                    // Something we do not read: skip one token so the list ends.
                    self.at += 1;
                    out.push(Value::Other(String::new()));
                }
            }
        }
    }

    fn term(&mut self) -> Option<Value> {
        let t = self.peek()?.clone();
        self.at += 1;
        Some(match t {
            Tok::Num(n) => Value::Num(n),
            Tok::Str(s) => Value::Str(s),
            Tok::Interp(raw) => Value::Str(interpolate(&raw, self.vars)),
            Tok::Regex(pattern, flags) => Value::Regex { pattern, flags },
            Tok::Qw(words) => Value::List(words.into_iter().map(Value::Str).collect()),
            Tok::Scalar(n) => match self.vars.get(&n) {
                Some(v) => Value::Str(v.clone()),
                None => Value::Other(format!("${n}")),
            },
            Tok::Array(n) => Value::Other(format!("@{n}")),
            Tok::HashVar(n) => Value::Other(format!("%{n}")),
            Tok::Punct("(") => Value::List(self.items(")")),
            Tok::Punct("[") => Value::List(self.items("]")),
            Tok::Punct("{") => {
                let flat = self.items("}");
                let mut pairs = Vec::new();
                let mut it = flat.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    let key = match k {
                        Value::Str(s) | Value::Bare(s) => s,
                        Value::Num(n) => n.to_string(),
                        other => format!("{other:?}"),
                    };
                    pairs.push((key, v));
                }
                Value::Hash(pairs)
            }
            Tok::Punct("\\") => match self.term()? {
                Value::Other(n) => Value::Ref(n),
                v => v,
            },
            Tok::Punct("-") => match self.term()? {
                Value::Num(n) => Value::Num(-n),
                v => v,
            },
            Tok::Word(w) if w == "undef" => Value::Undef,
            Tok::Word(w) => {
                if self.eat("(") {
                    let args = self.items(")");
                    Value::Call(w, args)
                } else {
                    Value::Bare(w)
                }
            }
            Tok::Punct(p) => Value::Other(p.to_string()),
        })
    }

    /// A term, then `*`, `+`, `-` (numbers) or `.` (strings) with more terms.
    fn expr(&mut self) -> Option<Value> {
        let mut v = self.term()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Punct(p @ ("*" | "+" | "-" | "." | "/"))) => *p,
                _ => return Some(v),
            };
            self.at += 1;
            let r = self.term()?;
            v = match (op, v, r) {
                ("*", Value::Num(a), Value::Num(b)) => Value::Num(a * b),
                ("+", Value::Num(a), Value::Num(b)) => Value::Num(a + b),
                ("-", Value::Num(a), Value::Num(b)) => Value::Num(a - b),
                ("/", Value::Num(a), Value::Num(b)) if b != 0.0 => Value::Num(a / b),
                (".", Value::Str(a), Value::Str(b)) => Value::Str(a + &b),
                (_, a, _) => Value::Other(format!("{a:?} {op} ...")),
            };
        }
    }

    fn statement(&mut self, out: &mut Assignments) {
        let start = self.at;
        let target = match self.peek().cloned() {
            Some(Tok::Scalar(n)) => {
                self.at += 1;
                if self.eat("{") {
                    let key = match self.term() {
                        Some(Value::Str(k) | Value::Bare(k)) => k,
                        Some(Value::Num(n)) => n.to_string(),
                        _ => String::new(),
                    };
                    self.eat("}");
                    Target::HashElem(n, key)
                } else {
                    Target::Scalar(n)
                }
            }
            Some(Tok::Array(n)) => {
                self.at += 1;
                Target::Array(n)
            }
            Some(Tok::HashVar(n)) => {
                self.at += 1;
                Target::Hash(n)
            }
            Some(Tok::Word(w)) if matches!(w.as_str(), "use" | "no" | "package") => {
                self.skip_statement();
                return;
            }
            Some(Tok::Num(_)) => {
                // `1;` at the end of the file.
                self.skip_statement();
                return;
            }
            Some(Tok::Punct(";")) => {
                self.at += 1;
                return;
            }
            _ => {
                let first = match self.peek() {
                    Some(Tok::Word(w)) => w.clone(),
                    Some(t) => format!("{t:?}"),
                    None => return,
                };
                if let Some(Value::Call(name, args)) = self.expr()
                    && (self.eat(";") || self.peek().is_none())
                {
                    out.calls.push((name, args));
                    return;
                }
                self.at = start;
                self.skip_statement();
                out.skipped.push(first);
                return;
            }
        };
        if !self.eat("=") {
            self.at = start;
            self.skip_statement();
            out.skipped.push(target.display());
            return;
        }
        let value = self.expr();
        let end_ok = self.eat(";") || self.peek().is_none();
        match value {
            Some(v) if end_ok => {
                if let (Target::Scalar(n), Value::Str(s)) = (&target, &v) {
                    self.vars.insert(n.clone(), s.clone());
                }
                if let (Target::Scalar(n), Value::Num(x)) = (&target, &v) {
                    self.vars.insert(n.clone(), x.to_string());
                }
                out.items.push((target, v));
            }
            _ => {
                self.at = start;
                self.skip_statement();
                out.skipped.push(target.display());
            }
        }
    }
}

/// Reads the assignments of `source`. `vars` holds scalars known beforehand (amavisd-new's
/// `$MYHOME`, `$mydomain` from an earlier file) and gains this file's.
pub fn read(source: &str, vars: &mut HashMap<String, String>) -> Assignments {
    let toks = {
        let mut lx = Lexer {
            s: source.as_bytes(),
            i: 0,
        };
        let mut toks = Vec::new();
        while let Some(t) = lx.next() {
            toks.push(t);
        }
        toks
    };
    let mut p = Parser { toks, at: 0, vars };
    let mut out = Assignments::default();
    while p.peek().is_some() {
        let before = p.at;
        p.statement(&mut out);
        if p.at == before {
            p.at += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_amavisd_conf_files_write() {
        let src = r#"
use strict;
$mydomain = 'example.com';   # a comment
$sa_mail_body_size_limit = 200*1024;
$virus_admin = "postmaster\@$mydomain";
@mynetworks = qw( 127.0.0.0/8 [::1] 10.0.0.0/8 );
$final_spam_destiny = D_PASS;
$log_recip_templ = undef;
@local_domains_acl = ( ".$mydomain", "example.net" );
$banned_filename_re = new_RE(
  qr'\.[^./]*\.(exe|vbs)\.?$'i,
  [ qr'^\.(zip|rar)$' => 0 ],
);
$policy_bank{'MYNETS'} = {   # mail from our networks
  originating => 1,
  spam_admin_maps => ["spamalert\@$mydomain"],
};
@storage_sql_dsn = ( ['DBI:Pg:database=mail;host=127.0.0.1', 'amavis', 'secret'] );
read_hash(\%whitelist_sender, '/etc/amavis/wl');
1;
"#;
        let mut vars = HashMap::new();
        let a = read(src, &mut vars);
        let get = |t: Target| {
            a.items
                .iter()
                .find(|(x, _)| *x == t)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            get(Target::Scalar("sa_mail_body_size_limit".into())),
            Some(Value::Num(204800.0))
        );
        assert_eq!(
            get(Target::Scalar("virus_admin".into())),
            Some(Value::Str("postmaster@example.com".into()))
        );
        assert_eq!(
            get(Target::Array("mynetworks".into())),
            Some(Value::List(vec![
                Value::Str("127.0.0.0/8".into()),
                Value::Str("[::1]".into()),
                Value::Str("10.0.0.0/8".into())
            ]))
        );
        assert_eq!(
            get(Target::Scalar("final_spam_destiny".into())),
            Some(Value::Bare("D_PASS".into()))
        );
        assert_eq!(
            get(Target::Array("local_domains_acl".into())),
            Some(Value::List(vec![
                Value::Str(".example.com".into()),
                Value::Str("example.net".into())
            ]))
        );
        let Some(Value::Call(f, args)) = get(Target::Scalar("banned_filename_re".into())) else {
            panic!("{:?}", a.items);
        };
        assert_eq!(f, "new_RE");
        assert_eq!(
            args[0],
            Value::Regex {
                pattern: r"\.[^./]*\.(exe|vbs)\.?$".into(),
                flags: "i".into()
            }
        );
        assert_eq!(
            args[1],
            Value::List(vec![
                Value::Regex {
                    pattern: r"^\.(zip|rar)$".into(),
                    flags: String::new()
                },
                Value::Num(0.0)
            ])
        );
        let Some(Value::Hash(bank)) = get(Target::HashElem("policy_bank".into(), "MYNETS".into()))
        else {
            panic!("{:?}", a.items);
        };
        assert_eq!(bank[0], ("originating".into(), Value::Num(1.0)));
        assert_eq!(
            bank[1].1,
            Value::List(vec![Value::Str("spamalert@example.com".into())])
        );
        assert_eq!(a.calls[0].0, "read_hash");
        assert_eq!(a.calls[0].1[1], Value::Str("/etc/amavis/wl".into()));
        assert!(a.skipped.is_empty(), "{:?}", a.skipped);
    }
}
