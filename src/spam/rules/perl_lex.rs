//! The lexing that `if` conditions ([`super::condition`]) and `meta` expressions
//! ([`super::meta`]) share: SpamAssassin hands both to Perl, so both are Perl's numbers,
//! words and operators, with whitespace between.

/// A cursor over an expression's characters.
pub struct Lexer {
    c: Vec<char>,
    i: usize,
}

impl Lexer {
    pub fn new(s: &str) -> Lexer {
        Lexer {
            c: s.chars().collect(),
            i: 0,
        }
    }

    /// The next character that is not whitespace, without taking it; `None` at the end.
    pub fn peek(&mut self) -> Option<char> {
        while self.c.get(self.i).is_some_and(|c| c.is_whitespace()) {
            self.i += 1;
        }
        self.c.get(self.i).copied()
    }

    /// Takes a number (digits and dots; with `underscores`, Perl's `4.000_001` too).
    pub fn number(&mut self, underscores: bool) -> Result<f64, String> {
        let part = |c: &char| c.is_ascii_digit() || *c == '.' || (underscores && *c == '_');
        let text: String = self
            .take_while(part)
            .into_iter()
            .filter(|&c| c != '_')
            .collect();
        text.parse().map_err(|_| format!("bad number {text:?}"))
    }

    /// Takes a word: letters, digits and `_`.
    pub fn word(&mut self) -> String {
        self.take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .into_iter()
            .collect()
    }

    /// Takes the longest of `ops` that comes next (two-character operators before one).
    pub fn operator(&mut self, ops: &[&'static str]) -> Result<&'static str, String> {
        let two: String = self.c[self.i..(self.i + 2).min(self.c.len())]
            .iter()
            .collect();
        let found = ops
            .iter()
            .filter(|o| o.len() == 2)
            .chain(ops.iter().filter(|o| o.len() == 1))
            .find(|o| two.starts_with(**o))
            .ok_or_else(|| format!("unexpected {:?}", self.c.get(self.i).unwrap_or(&' ')))?;
        self.i += found.len();
        Ok(found)
    }

    /// Takes everything up to the next `)` and the `)` itself (a call's raw argument).
    pub fn until_close(&mut self) -> Option<String> {
        let close = self.c[self.i..].iter().position(|&x| x == ')')?;
        let arg = self.c[self.i..self.i + close].iter().collect();
        self.i += close + 1;
        Some(arg)
    }

    /// Takes `c` when it comes next.
    pub fn eat(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn take_while(&mut self, f: impl Fn(&char) -> bool) -> Vec<char> {
        let start = self.i;
        while self.c.get(self.i).is_some_and(&f) {
            self.i += 1;
        }
        self.c[start..self.i].to_vec()
    }
}
