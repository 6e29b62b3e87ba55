//! SpamAssassin's `if` conditions: `plugin(Name)`, `can(Name)`, `has(Name)`, `version`,
//! numbers, comparisons, `!`, `&&`, `||` and parentheses. SpamAssassin evaluates them as Perl
//! after checking the tokens; this is a small parser over the same tokens.

/// What conditions are evaluated against.
pub trait Environment {
    /// A plugin is loaded (`Mail::SpamAssassin::Plugin::DKIM`).
    fn plugin(&self, name: &str) -> bool;
    /// `can(...)`: a configuration feature or a plugin's capability.
    fn can(&self, name: &str) -> bool;
    /// The SpamAssassin version we emulate, as Perl's number (4.000001).
    fn version(&self) -> f64;
}

use super::perl_lex::Lexer;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Call(String, String),
    Version,
    Op(&'static str),
    Open,
    Close,
}

/// Operators of conditions, as Perl reads them.
const OPS: &[&str] = &[">=", "<=", "==", "!=", "&&", "||", ">", "<", "!", "(", ")"];

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut lx = Lexer::new(s);
    let mut out = Vec::new();
    while let Some(ch) = lx.peek() {
        if ch.is_ascii_digit() || ch == '.' {
            out.push(Tok::Num(lx.number(true)?));
        } else if ch.is_ascii_alphabetic() {
            let word = lx.word();
            if word == "version" {
                out.push(Tok::Version);
                continue;
            }
            if !matches!(word.as_str(), "plugin" | "can" | "has") {
                return Err(format!("unknown word {word:?}"));
            }
            if !lx.eat('(') {
                return Err(format!("{word} needs (...)"));
            }
            let arg = lx
                .until_close()
                .ok_or_else(|| format!("{word}( is not closed"))?;
            out.push(Tok::Call(word, arg.trim().to_string()));
        } else {
            out.push(match lx.operator(OPS)? {
                "(" => Tok::Open,
                ")" => Tok::Close,
                op => Tok::Op(op),
            });
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy)]
enum Val {
    Num(f64),
    Bool(bool),
}

impl Val {
    fn truth(self) -> bool {
        match self {
            Val::Num(n) => n != 0.0,
            Val::Bool(b) => b,
        }
    }
    fn num(self) -> f64 {
        match self {
            Val::Num(n) => n,
            Val::Bool(b) => f64::from(u8::from(b)),
        }
    }
}

struct Parser<'a, E: Environment> {
    t: Vec<Tok>,
    i: usize,
    env: &'a E,
}

impl<E: Environment> Parser<'_, E> {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i)
    }
    fn or(&mut self) -> Result<Val, String> {
        let mut v = self.and()?;
        while self.peek() == Some(&Tok::Op("||")) {
            self.i += 1;
            let r = self.and()?;
            v = Val::Bool(v.truth() || r.truth());
        }
        Ok(v)
    }
    fn and(&mut self) -> Result<Val, String> {
        let mut v = self.cmp()?;
        while self.peek() == Some(&Tok::Op("&&")) {
            self.i += 1;
            let r = self.cmp()?;
            v = Val::Bool(v.truth() && r.truth());
        }
        Ok(v)
    }
    fn cmp(&mut self) -> Result<Val, String> {
        let l = self.unary()?;
        let op = match self.peek() {
            Some(Tok::Op(o)) if matches!(*o, ">=" | "<=" | ">" | "<" | "==" | "!=") => *o,
            _ => return Ok(l),
        };
        self.i += 1;
        let r = self.unary()?;
        let (a, b) = (l.num(), r.num());
        Ok(Val::Bool(match op {
            ">=" => a >= b,
            "<=" => a <= b,
            ">" => a > b,
            "<" => a < b,
            "==" => a == b,
            _ => a != b,
        }))
    }
    fn unary(&mut self) -> Result<Val, String> {
        match self.t.get(self.i).cloned() {
            Some(Tok::Op("!")) => {
                self.i += 1;
                Ok(Val::Bool(!self.unary()?.truth()))
            }
            Some(Tok::Open) => {
                self.i += 1;
                let v = self.or()?;
                if self.peek() != Some(&Tok::Close) {
                    return Err("unbalanced (".into());
                }
                self.i += 1;
                Ok(v)
            }
            Some(Tok::Num(n)) => {
                self.i += 1;
                Ok(Val::Num(n))
            }
            Some(Tok::Version) => {
                self.i += 1;
                Ok(Val::Num(self.env.version()))
            }
            Some(Tok::Call(f, arg)) => {
                self.i += 1;
                Ok(Val::Bool(match f.as_str() {
                    "plugin" => self.env.plugin(&arg),
                    _ => self.env.can(&arg),
                }))
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

/// Evaluates an `if` condition.
pub fn eval<E: Environment>(cond: &str, env: &E) -> Result<bool, String> {
    let t = lex(cond)?;
    let mut p = Parser { t, i: 0, env };
    let v = p.or()?;
    if p.i != p.t.len() {
        return Err(format!("trailing tokens in {cond:?}"));
    }
    Ok(v.truth())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Env;
    impl Environment for Env {
        fn plugin(&self, name: &str) -> bool {
            name.ends_with("::DKIM")
        }
        fn can(&self, name: &str) -> bool {
            name.contains("::feature_")
        }
        fn version(&self) -> f64 {
            4.000001
        }
    }

    #[test]
    fn conditions() {
        let e = |s: &str| eval(s, &Env).unwrap();
        assert!(e("(version >= 3.004002)"));
        assert!(!e("version >= 4.001000"));
        assert!(e("plugin(Mail::SpamAssassin::Plugin::DKIM)"));
        assert!(!e("!plugin(Mail::SpamAssassin::Plugin::DKIM)"));
        assert!(e("can(Mail::SpamAssassin::Conf::feature_bug6558_free)"));
        assert!(e(
            "plugin(Mail::SpamAssassin::Plugin::DKIM) && (version > 3.0 || !can(x))"
        ));
        assert!(eval("version >= ", &Env).is_err());
        assert!(eval("system('rm')", &Env).is_err());
    }
}
