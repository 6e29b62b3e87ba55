//! `meta` rules: expressions over other rules' hits, as SpamAssassin evaluates them (Perl
//! operators and precedence): a rule name is its hit count (0 when it did not hit or does
//! not exist), numbers are numbers, and `! * / + - < <= > >= == != && ||` and parentheses
//! combine them. A meta hits when its value is not 0.

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Rule(String),
    /// A rule already looked up: its index in the hit counts ([`Expr::resolve`]).
    Slot(usize),
    Num(f64),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(Box<Expr>, Op, Box<Expr>),
}

/// Binary operators, in Perl's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Mul,
    Div,
    Add,
    Sub,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

/// What a leaf of an expression names.
enum Leaf<'a> {
    Name(&'a str),
    Slot(usize),
}

use super::perl_lex::Lexer;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Num(f64),
    Op(&'static str),
}

/// Operators of meta expressions, as Perl reads them.
const OPS: &[&str] = &[
    "&&", "||", "<=", ">=", "==", "!=", "!", "*", "/", "+", "-", "<", ">", "(", ")",
];

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut lx = Lexer::new(s);
    let mut out = Vec::new();
    while let Some(ch) = lx.peek() {
        if ch.is_ascii_alphabetic() || ch == '_' {
            out.push(Tok::Name(lx.word()));
        } else if ch.is_ascii_digit() || ch == '.' {
            out.push(Tok::Num(lx.number(false)?));
        } else {
            out.push(Tok::Op(lx.operator(OPS)?));
        }
    }
    Ok(out)
}

struct P {
    t: Vec<Tok>,
    i: usize,
}

impl P {
    fn op(&self) -> Option<&'static str> {
        match self.t.get(self.i) {
            Some(Tok::Op(o)) => Some(o),
            _ => None,
        }
    }

    /// Binary levels, loosest first: || && (== !=) (< <= > >=) (+ -) (* /).
    fn level(&mut self, n: usize) -> Result<Expr, String> {
        const LEVELS: [&[(&str, Op)]; 6] = [
            &[("||", Op::Or)],
            &[("&&", Op::And)],
            &[("==", Op::Eq), ("!=", Op::Ne)],
            &[("<", Op::Lt), ("<=", Op::Le), (">", Op::Gt), (">=", Op::Ge)],
            &[("+", Op::Add), ("-", Op::Sub)],
            &[("*", Op::Mul), ("/", Op::Div)],
        ];
        if n == LEVELS.len() {
            return self.unary();
        }
        let mut l = self.level(n + 1)?;
        while let Some(o) = self.op() {
            let Some((_, op)) = LEVELS[n].iter().find(|(s, _)| *s == o) else {
                break;
            };
            self.i += 1;
            let r = self.level(n + 1)?;
            l = Expr::Bin(Box::new(l), *op, Box::new(r));
        }
        Ok(l)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        match self.t.get(self.i).cloned() {
            Some(Tok::Op("!")) => {
                self.i += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some(Tok::Op("-")) => {
                self.i += 1;
                Ok(Expr::Neg(Box::new(self.unary()?)))
            }
            Some(Tok::Op("(")) => {
                self.i += 1;
                let e = self.level(0)?;
                if self.op() != Some(")") {
                    return Err("unbalanced (".into());
                }
                self.i += 1;
                Ok(e)
            }
            Some(Tok::Name(n)) => {
                self.i += 1;
                Ok(Expr::Rule(n))
            }
            Some(Tok::Num(x)) => {
                self.i += 1;
                Ok(Expr::Num(x))
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

/// Parses a meta expression.
pub fn parse(s: &str) -> Result<Expr, String> {
    let mut p = P { t: lex(s)?, i: 0 };
    let e = p.level(0)?;
    if p.i != p.t.len() {
        return Err(format!("trailing tokens in {s:?}"));
    }
    Ok(e)
}

impl Expr {
    /// The value, with `hits` giving each rule's hit count.
    pub fn eval(&self, hits: &dyn Fn(&str) -> f64) -> f64 {
        self.value(&|leaf| match leaf {
            Leaf::Name(n) => hits(n),
            Leaf::Slot(_) => 0.0,
        })
    }

    /// The value over hit counts by index, for an expression [`Expr::resolve`]d against
    /// the same indexes. The scan runs the compiled [`Program`]; this is the reference it
    /// is tested against.
    pub fn eval_counts(&self, counts: &[u32]) -> f64 {
        self.value(&|leaf| match leaf {
            Leaf::Slot(i) => counts.get(i).map_or(0.0, |&c| f64::from(c)),
            Leaf::Name(_) => 0.0,
        })
    }

    /// The same expression with each rule name replaced by its index; a name `index` does
    /// not know counts 0, as a rule that does not exist.
    pub fn resolve(&self, index: &dyn Fn(&str) -> Option<usize>) -> Expr {
        match self {
            Expr::Rule(n) => index(n).map_or(Expr::Num(0.0), Expr::Slot),
            Expr::Slot(i) => Expr::Slot(*i),
            Expr::Num(x) => Expr::Num(*x),
            Expr::Not(e) => Expr::Not(Box::new(e.resolve(index))),
            Expr::Neg(e) => Expr::Neg(Box::new(e.resolve(index))),
            Expr::Bin(l, op, r) => {
                Expr::Bin(Box::new(l.resolve(index)), *op, Box::new(r.resolve(index)))
            }
        }
    }

    /// The tree's value (the reference semantics; the scan runs [`Program`]).
    fn value<F: Fn(Leaf) -> f64>(&self, hits: &F) -> f64 {
        let b = |x: bool| f64::from(u8::from(x));
        match self {
            Expr::Rule(n) => hits(Leaf::Name(n)),
            Expr::Slot(i) => hits(Leaf::Slot(*i)),
            Expr::Num(x) => *x,
            Expr::Not(e) => b(e.value(hits) == 0.0),
            Expr::Neg(e) => -e.value(hits),
            Expr::Bin(l, op, r) => {
                let a = l.value(hits);
                // && and || short-circuit and yield a truth value, as SpamAssassin's
                // compiled metas use them.
                match op {
                    Op::And => return b(a != 0.0 && r.value(hits) != 0.0),
                    Op::Or => return b(a != 0.0 || r.value(hits) != 0.0),
                    _ => {}
                }
                arith(*op, a, r.value(hits))
            }
        }
    }

    /// The rules it reads, for ordering: a meta runs after what it depends on.
    pub fn rules(&self, out: &mut Vec<String>) {
        match self {
            Expr::Rule(n) => {
                if !out.contains(n) {
                    out.push(n.clone());
                }
            }
            Expr::Num(_) | Expr::Slot(_) => {}
            Expr::Not(e) | Expr::Neg(e) => e.rules(out),
            Expr::Bin(l, _, r) => {
                l.rules(out);
                r.rules(out);
            }
        }
    }
}

/// A resolved meta expression as one flat program, run over a small stack: what the scan
/// evaluates for every message. Over a thousand of SpamAssassin's metas run per message;
/// walking their boxed trees (a pointer chase per node) was ~8% of the scan threads' samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    code: Vec<Instr>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Instr {
    /// A rule's hit count, by index.
    Slot(usize),
    Num(f64),
    Not,
    Neg,
    /// Pops the right operand, then the left; pushes the result.
    Bin(Op),
    /// `&&`'s left side is false: the value is 0 and the next `n` instructions (its right
    /// side and the [`Instr::Truth`] after it) are skipped.
    AndSkip(usize),
    /// `||`'s left side is true: the value is 1, and the right side is skipped.
    OrSkip(usize),
    /// The value as a truth value (0 or 1), as `&&` and `||` yield.
    Truth,
}

impl Expr {
    /// The program of an expression [`Expr::resolve`]d to indexes (a name left over counts 0).
    pub fn compile(&self) -> Program {
        let mut code = Vec::new();
        self.emit(&mut code);
        Program { code }
    }

    fn emit(&self, code: &mut Vec<Instr>) {
        match self {
            Expr::Rule(_) => code.push(Instr::Num(0.0)),
            Expr::Slot(i) => code.push(Instr::Slot(*i)),
            Expr::Num(x) => code.push(Instr::Num(*x)),
            Expr::Not(e) => {
                e.emit(code);
                code.push(Instr::Not);
            }
            Expr::Neg(e) => {
                e.emit(code);
                code.push(Instr::Neg);
            }
            Expr::Bin(l, op @ (Op::And | Op::Or), r) => {
                l.emit(code);
                let at = code.len();
                code.push(Instr::Truth);
                r.emit(code);
                code.push(Instr::Truth);
                let skip = code.len() - at - 1;
                code[at] = match op {
                    Op::And => Instr::AndSkip(skip),
                    _ => Instr::OrSkip(skip),
                };
            }
            Expr::Bin(l, op, r) => {
                l.emit(code);
                r.emit(code);
                code.push(Instr::Bin(*op));
            }
        }
    }
}

impl Program {
    /// The value over hit counts by index; `stack` is scratch space kept between calls.
    pub fn run(&self, counts: &[u32], stack: &mut Vec<f64>) -> f64 {
        let b = |x: bool| f64::from(u8::from(x));
        stack.clear();
        let mut pc = 0;
        while let Some(&instr) = self.code.get(pc) {
            pc += 1;
            match instr {
                Instr::Slot(i) => stack.push(counts.get(i).map_or(0.0, |&c| f64::from(c))),
                Instr::Num(x) => stack.push(x),
                Instr::Not => {
                    let x = stack.pop().unwrap_or(0.0);
                    stack.push(b(x == 0.0));
                }
                Instr::Neg => {
                    let x = stack.pop().unwrap_or(0.0);
                    stack.push(-x);
                }
                Instr::Truth => {
                    let x = stack.pop().unwrap_or(0.0);
                    stack.push(b(x != 0.0));
                }
                Instr::AndSkip(n) | Instr::OrSkip(n) => {
                    let left = stack.last().copied().unwrap_or(0.0) != 0.0;
                    let and = matches!(instr, Instr::AndSkip(_));
                    if left != and {
                        // Decided by the left side: 0 for `&&`, 1 for `||`.
                        stack.pop();
                        stack.push(b(left));
                        pc += n;
                    } else {
                        stack.pop();
                    }
                }
                Instr::Bin(op) => {
                    let c = stack.pop().unwrap_or(0.0);
                    let a = stack.pop().unwrap_or(0.0);
                    stack.push(arith(op, a, c));
                }
            }
        }
        stack.pop().unwrap_or(0.0)
    }
}

/// `a op c`, as Perl computes it; `&&` and `||` here see both values (the callers skip the
/// right side when the left decides).
fn arith(op: Op, a: f64, c: f64) -> f64 {
    let b = |x: bool| f64::from(u8::from(x));
    match op {
        Op::Mul => a * c,
        Op::Div => {
            if c == 0.0 {
                0.0
            } else {
                a / c
            }
        }
        Op::Add => a + c,
        Op::Sub => a - c,
        Op::Lt => b(a < c),
        Op::Le => b(a <= c),
        Op::Gt => b(a > c),
        Op::Ge => b(a >= c),
        Op::Eq => b(a == c),
        Op::Ne => b(a != c),
        Op::And => b(a != 0.0 && c != 0.0),
        Op::Or => b(a != 0.0 || c != 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(s: &str, hit: &[&str]) -> f64 {
        parse(s)
            .unwrap()
            .eval(&|n| f64::from(u8::from(hit.contains(&n))))
    }

    #[test]
    fn boolean_and_arithmetic() {
        assert_eq!(eval("A && !B", &["A"]), 1.0);
        assert_eq!(eval("A && !B", &["A", "B"]), 0.0);
        assert_eq!(eval("(A || B) && C", &["B", "C"]), 1.0);
        assert_eq!(eval("A + B + C > 1", &["A", "C"]), 1.0);
        assert_eq!(eval("A + B + C > 1", &["A"]), 0.0);
        assert_eq!(eval("2 * A - B >= 2", &["A"]), 1.0);
        assert_eq!(eval("A / 0", &["A"]), 0.0);
        assert_eq!(eval("!UNKNOWN_RULE", &[]), 1.0);
        // Precedence: || is loosest, then &&, then comparisons, then + -, then * /.
        assert_eq!(eval("A || B && C", &["A"]), 1.0);
        assert_eq!(eval("1 + 2 * 3 == 7", &[]), 1.0);
    }

    #[test]
    fn resolved_expressions_read_counts_by_index() {
        let e = parse("A + B > 1 && !MISSING")
            .unwrap()
            .resolve(&|n| ["A", "B"].iter().position(|x| *x == n));
        assert_eq!(e.eval_counts(&[1, 1]), 1.0);
        assert_eq!(e.eval_counts(&[2, 0]), 1.0);
        assert_eq!(e.eval_counts(&[1, 0]), 0.0);
    }

    /// The flat program gives the tree's value for every expression and every pattern of
    /// hit counts, short-circuits included.
    #[test]
    fn programs_agree_with_the_tree() {
        let names = ["A", "B", "C"];
        let exprs = [
            "A && !B",
            "(A || B) && C",
            "A || B && C",
            "!(A && B) || !C",
            "A + B + C > 1",
            "2 * A - B >= 2 && (C || !A)",
            "A / B",
            "-A + (B == C) * 3 != 0",
            "A && B && C || A && !B || !A && !B && !C",
            "(A || B) + (B && C) + !C",
            "MISSING || A",
            "1 + 2 * 3 == 7",
        ];
        let mut stack = Vec::new();
        for text in exprs {
            let e = parse(text)
                .unwrap()
                .resolve(&|n| names.iter().position(|x| *x == n));
            let p = e.compile();
            for a in 0..3 {
                for b in 0..3 {
                    for c in 0..3 {
                        let counts = [a, b, c];
                        assert_eq!(
                            p.run(&counts, &mut stack),
                            e.eval_counts(&counts),
                            "{text} over {counts:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn errors_and_dependencies() {
        assert!(parse("A &&").is_err());
        assert!(parse("(A").is_err());
        assert!(parse("A $ B").is_err());
        let mut deps = Vec::new();
        parse("__A && (B || !__A) + C > 0")
            .unwrap()
            .rules(&mut deps);
        assert_eq!(deps, ["__A", "B", "C"]);
    }
}
