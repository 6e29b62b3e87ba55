//! SpamAssassin's regular expressions: Perl literals (`/re/flags`, `m{re}flags`, `m!re!`)
//! compiled with Perl's meaning as far as the engines allow. PCRE2 with its JIT (the default
//! `pcre` feature: Perl's own dialect, measured several times faster than fancy-regex on the
//! shipped rules) runs every pattern it takes (see `pcre.rs` for why, memory first);
//! the `regex` crate's linear-time engine those PCRE2 rejects as too large, and all of them
//! without the feature; Perl-only syntax (lookaround, backreferences, atomic groups,
//! possessive quantifiers) goes to PCRE2 alone (its loosened form only gives the one-pass
//! prefilter its literals), else to fancy-regex behind a linear prefilter;
//! what none accepts is reported by rule name with the reason, never silently dropped.

use super::linear::Linear;
#[cfg(feature = "pcre")]
pub use super::pcre::Front;
#[cfg(feature = "pcre")]
use super::pcre::pcre;

/// A compiled pattern.
pub enum Pattern {
    /// Linear-time engine.
    Fast(Linear),
    /// Backtracking engine for Perl-only syntax, behind a linear-time prefilter (the same
    /// pattern loosened, see [`relax`]) that rules out most texts without backtracking.
    Perl(fancy_regex::Regex, Option<Linear>),
    /// PCRE2 (JIT): every pattern it takes (why: `pcre.rs`).
    #[cfg(feature = "pcre")]
    Pcre(pcre2::bytes::Regex, Front),
}

impl Pattern {
    /// Does the pattern match `text`? A backtracking pattern that runs out of its step
    /// budget counts as no match (SpamAssassin's rules then simply do not hit).
    pub fn is_match(&self, text: &[u8]) -> bool {
        match self {
            Pattern::Fast(r) => r.is_match(text),
            Pattern::Perl(r, pre) => {
                pre.as_ref().is_none_or(|p| p.is_match(text)) && r.is_match(text).unwrap_or(false)
            }
            // A match-limit error (catastrophic backtracking) counts as no match.
            #[cfg(feature = "pcre")]
            Pattern::Pcre(r, _) => r.is_match(text).unwrap_or(false),
        }
    }

    /// The named groups of the first match (SpamAssassin 4's captured tags, `(?<NAME>...)`).
    pub fn named_captures(&self, text: &[u8]) -> Vec<(String, String)> {
        fn pairs<'a>(
            names: impl Iterator<Item = &'a str>,
            get: impl Fn(&str) -> Option<Vec<u8>>,
        ) -> Vec<(String, String)> {
            names
                .filter_map(|n| {
                    get(n).map(|v| (n.to_string(), String::from_utf8_lossy(&v).into_owned()))
                })
                .collect()
        }
        match self {
            Pattern::Fast(r) => r
                .named_captures(text)
                .into_iter()
                .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
                .collect(),
            Pattern::Perl(r, _) => match r.captures(text) {
                Ok(Some(c)) => pairs(r.capture_names().flatten(), |n| {
                    c.name(n).map(|m| m.as_bytes().to_vec())
                }),
                _ => Vec::new(),
            },
            #[cfg(feature = "pcre")]
            Pattern::Pcre(r, _) => match r.captures(text) {
                Ok(Some(c)) => pairs(
                    r.capture_names().iter().flatten().map(String::as_str),
                    |n| c.name(n).map(|m| m.as_bytes().to_vec()),
                ),
                _ => Vec::new(),
            },
        }
    }

    /// How many times it matches `text`, at most `max`.
    pub fn count(&self, text: &[u8], max: u32) -> u32 {
        match self {
            Pattern::Fast(r) => r.count(text, max as usize) as u32,
            Pattern::Perl(r, _) => r
                .find_iter(text)
                .take(max as usize)
                .take_while(Result::is_ok)
                .count() as u32,
            #[cfg(feature = "pcre")]
            Pattern::Pcre(r, _) => r
                .find_iter(text)
                .take(max as usize)
                .take_while(Result::is_ok)
                .count() as u32,
        }
    }

    /// A linear-time pattern whose matches include this one's: the regex itself (in either
    /// engine), or the loosened twin of a Perl-only one (run in front of fancy-regex; for
    /// PCRE2 only its text, for the prefilter's literals).
    pub fn linear_source(&self) -> Option<&str> {
        match self {
            Pattern::Fast(r) => Some(r.as_str()),
            Pattern::Perl(_, pre) => pre.as_ref().map(|p| p.as_str()),
            #[cfg(feature = "pcre")]
            Pattern::Pcre(_, front) => front.linear_source(),
        }
    }

    /// Which engine it runs on.
    pub fn engine(&self) -> &'static str {
        match self {
            Pattern::Fast(_) => "regex",
            Pattern::Perl(_, _) => "fancy-regex",
            #[cfg(feature = "pcre")]
            Pattern::Pcre(_, _) => "pcre2",
        }
    }
}

/// Splits a Perl regex literal into pattern and flags. The error says what is wrong.
pub fn split_literal(lit: &str) -> Result<(String, String), String> {
    let lit = lit.trim();
    let (open, body) = if let Some(rest) = lit.strip_prefix('m') {
        let c = rest.chars().next().ok_or("m without a delimiter")?;
        if c.is_alphanumeric() || c.is_whitespace() {
            return Err(format!("bad delimiter {c:?}"));
        }
        (c, &rest[c.len_utf8()..])
    } else if let Some(rest) = lit.strip_prefix('/') {
        ('/', rest)
    } else {
        return Err(format!("not a regex literal: {lit:.40}"));
    };
    let close = match open {
        '{' => '}',
        '(' => ')',
        '[' => ']',
        '<' => '>',
        c => c,
    };
    // The closing delimiter is the last one: flags are letters only after it.
    let end = body
        .rfind(close)
        .ok_or_else(|| format!("unterminated regex {lit:.40}"))?;
    let flags = &body[end + close.len_utf8()..];
    if !flags.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(format!("trailing text after the regex: {flags:?}"));
    }
    let mut pat = body[..end].to_string();
    if open == close && open != '/' {
        pat = pat.replace(&format!("\\{open}"), &open.to_string());
    } else if open == '/' {
        pat = pat.replace("\\/", "/");
    }
    Ok((pat, flags.to_string()))
}

/// Perl syntax the `regex` crate spells differently: `\Z`, `\h`, `\e`, octal escapes
/// (`\042`, `\015`), a `[` inside a character class, which Perl takes literally and the
/// `regex` crate as a nested class (so are `&&` and `~~`, its set operators), and `$`, which
/// without /m matches in Perl at the end or before a final newline (header values end in one).
fn translate(p: &str, multiline: bool) -> String {
    let c: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() + 8);
    let mut in_class = false;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\\' && i + 1 < c.len() {
            let n = c[i + 1];
            // Octal: \0, \0d, \0dd, or three digits \ddd (Perl's rule for what is not a
            // backreference).
            let digits: String = c[i + 1..]
                .iter()
                .take(3)
                .take_while(|d| d.is_digit(8))
                .collect();
            if n == '0' || (digits.len() == 3 && n != '8' && n != '9') {
                let v = u32::from_str_radix(&digits, 8).unwrap_or(0);
                out.push_str(&format!("\\x{{{v:x}}}"));
                i += 1 + digits.len();
                continue;
            }
            match n {
                'Z' if !in_class => out.push_str(r"(?:\n?\z)"),
                'h' => out.push_str(if in_class { r"\t\x20" } else { r"[\t\x20]" }),
                'e' => out.push_str(r"\x1b"),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
            i += 2;
            continue;
        }
        if !in_class {
            if ch == '[' {
                in_class = true;
                out.push('[');
                i += 1;
                // A leading ^ and a ] right after the opening bracket are part of the class.
                if c.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if c.get(i) == Some(&']') {
                    out.push_str(r"\]");
                    i += 1;
                }
                continue;
            }
            if ch == '$' && !multiline {
                out.push_str(r"(?:\n?\z)");
            } else {
                out.push(ch);
            }
            i += 1;
            continue;
        }
        match ch {
            ']' => {
                in_class = false;
                out.push(']');
            }
            '[' if c.get(i + 1) == Some(&':') => {
                // A POSIX class such as [:alpha:] stays as it is.
                let rest: String = c[i..].iter().collect();
                match rest.find(":]") {
                    Some(end) => {
                        out.push_str(&rest[..end + 2]);
                        i += end + 2;
                        continue;
                    }
                    None => out.push_str(r"\["),
                }
            }
            '[' => out.push_str(r"\["),
            '&' => out.push_str(r"\&"),
            '~' => out.push_str(r"\~"),
            other => out.push(other),
        }
        i += 1;
    }
    out
}

/// Most memory one rule's lazy DFA may use per thread.
const DFA_CACHE: usize = 16 << 20;

/// Compiles a Perl regex literal.
pub fn compile(lit: &str) -> Result<Pattern, String> {
    let (pat, flags) = split_literal(lit)?;
    let mut inline = String::new();
    for f in flags.chars() {
        match f {
            'i' | 's' | 'm' | 'x' => {
                if !inline.contains(f) {
                    inline.push(f)
                }
            }
            // /g /o /p do not change whether it matches.
            'g' | 'o' | 'p' => {}
            other => return Err(format!("unsupported flag {other:?}")),
        }
    }
    let prefix = if inline.is_empty() {
        String::new()
    } else {
        format!("(?{inline})")
    };
    let translated = format!("{prefix}{}", translate(&pat, flags.contains('m')));
    #[cfg(feature = "pcre")]
    if let Ok(r) = pcre(&pat, &flags) {
        return Ok(Pattern::Pcre(r, front(&translated)));
    }
    // Perl's \w and \d are ASCII on bytes unless the rule says otherwise: (?-u) keeps the
    // linear engine on bytes, as SpamAssassin matches (mostly) raw bytes.
    // The lazy DFA's cache: the default 2 MiB made the largest shipped rules rebuild their
    // states over and over (a tenth of the scan time); a cache only grows as far as its
    // rule needs.
    match Linear::build(&format!("(?-u){translated}"), Some(DFA_CACHE))
        .or_else(|_| Linear::build(&translated, Some(DFA_CACHE)))
    {
        Ok(r) => Ok(Pattern::Fast(r)),
        Err(fast) => {
            let prefilter = relaxed(&translated);
            fancy_regex::RegexBuilder::new(&translated)
                .backtrack_limit(100_000)
                .build()
                .map(|r| Pattern::Perl(r, prefilter))
                .map_err(|e| format!("regex: {fast}; fancy-regex: {e}"))
        }
    }
}

/// The loosened pattern ([`relax`]) on the linear engine, to run before a backtracking one.
fn relaxed(translated: &str) -> Option<Linear> {
    Linear::build(&format!("(?-u){}", relax(translated)), None).ok()
}

/// What goes with a pattern PCRE2 runs: its linear form as text when the linear engine's
/// syntax takes it, else the loosened pattern's (parsed, not compiled: only the prefilter's
/// literals need them).
#[cfg(feature = "pcre")]
fn front(translated: &str) -> Front {
    let bytes = format!("(?-u){translated}");
    if Linear::parses(&bytes) {
        Front::Exact(bytes.into())
    } else if Linear::parses(translated) {
        Front::Exact(translated.into())
    } else {
        let loosened = format!("(?-u){}", relax(translated));
        if Linear::parses(&loosened) {
            Front::Loosened(loosened.into())
        } else {
            Front::Nothing
        }
    }
}

/// The pattern loosened into one the linear engine takes and that matches whenever the
/// original does: lookarounds dropped, backreferences made `(?s:.*?)`, atomic groups and
/// possessive quantifiers made ordinary. Used only to rule texts out.
pub fn relax(p: &str) -> String {
    let c: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len());
    let mut i = 0;
    let mut in_class = false;
    while i < c.len() {
        let ch = c[i];
        if ch == '\\' {
            let next = c.get(i + 1).copied();
            if !in_class && next.is_some_and(|n| n.is_ascii_digit() && n != '0') {
                out.push_str("(?s:.*?)");
                i += 2;
                while c.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
                continue;
            }
            if !in_class
                && (next == Some('k') || next == Some('g'))
                && let Some(end) = c[i..].iter().position(|&x| x == '>' || x == '}')
            {
                out.push_str("(?s:.*?)");
                i += end + 1;
                continue;
            }
            out.push(ch);
            if let Some(n) = next {
                out.push(n);
            }
            i += 2;
            continue;
        }
        if in_class {
            if ch == ']' {
                in_class = false;
            }
            out.push(ch);
            i += 1;
            continue;
        }
        match ch {
            '[' => {
                in_class = true;
                out.push(ch);
                // A ']' first in the class is a literal.
                if c.get(i + 1) == Some(&']') {
                    out.push(']');
                    i += 1;
                } else if c.get(i + 1) == Some(&'^') && c.get(i + 2) == Some(&']') {
                    out.push_str("^]");
                    i += 2;
                }
            }
            '(' => {
                let rest: String = c[i..c.len().min(i + 4)].iter().collect();
                if rest.starts_with("(?=")
                    || rest.starts_with("(?!")
                    || rest.starts_with("(?<=")
                    || rest.starts_with("(?<!")
                {
                    // Skip the whole group.
                    let mut depth = 0;
                    let mut j = i;
                    let mut cls = false;
                    while j < c.len() {
                        match c[j] {
                            '\\' => j += 1,
                            '[' if !cls => cls = true,
                            ']' if cls => cls = false,
                            '(' if !cls => depth += 1,
                            ')' if !cls => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        j += 1;
                    }
                    i = j + 1;
                    // A quantifier on a dropped lookaround goes too.
                    if matches!(c.get(i), Some('*' | '+' | '?')) {
                        i += 1;
                    }
                    continue;
                }
                if rest.starts_with("(?>") {
                    out.push_str("(?:");
                    i += 3;
                    continue;
                }
                out.push('(');
            }
            '+' if i > 0 && matches!(c[i - 1], '*' | '+' | '?' | '}') && !out.ends_with("\\+") => {
                // Possessive: drop the extra '+'.
            }
            other => out.push(other),
        }
        i += 1;
    }
    out
}

/// The regex literal in a rule definition, when it has one: `Subject =~ /x/i` (or `!~`) for
/// header rules, the whole definition for body-like rules; `None` for `eval:` and `exists:`.
pub fn literal_of(kind: crate::spam::rules::cf::Kind, def: &str) -> Option<String> {
    use crate::spam::rules::cf::Kind;
    let def = def.trim();
    if def.starts_with("eval:") || def.starts_with("exists:") {
        return None;
    }
    match kind {
        Kind::Meta => None,
        Kind::Header | Kind::Mimeheader => {
            let at = def.find("=~").or_else(|| def.find("!~"))?;
            let rest = def[at + 2..].trim();
            // An optional [if-unset: ...] follows the literal.
            let rest = match rest.rfind("[if-unset:") {
                Some(i) if rest.trim_end().ends_with(']') => rest[..i].trim(),
                _ => rest,
            };
            Some(rest.to_string())
        }
        Kind::Body | Kind::Rawbody | Kind::Full | Kind::Uri => Some(def.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relaxed_patterns_admit_every_match() {
        assert_eq!(relax(r"foo(?=bar)baz"), "foobaz");
        assert_eq!(relax(r"(?<!x)y(?!z[)])w"), "yw");
        assert_eq!(relax(r"(a)\1"), "(a)(?s:.*?)");
        assert_eq!(relax(r"(?>ab)c++d{2}+"), "(?:ab)c+d{2}");
        assert_eq!(relax(r"\++[+]+"), r"\++[+]+");
        for (pat, text) in [
            (r"/\b(\w+) \1\b/", "the the"),
            (r"/(?<!un)subscribe(?!d)/i", "please Subscribe now"),
            (r"/\$\d++(?:\.\d\d)?/", "$100.00"),
        ] {
            let p = compile(pat).unwrap();
            assert!(p.is_match(text.as_bytes()), "{pat} on {text}");
            assert!(!p.is_match(b"nothing here"), "{pat}");
        }
    }

    #[test]
    fn literals() {
        assert_eq!(
            split_literal("/a\\/b/i").unwrap(),
            ("a/b".into(), "i".into())
        );
        assert_eq!(
            split_literal("m{x{2}}s").unwrap(),
            ("x{2}".into(), "s".into())
        );
        assert_eq!(
            split_literal("m!a\\!b!").unwrap(),
            ("a!b".into(), "".into())
        );
        assert!(split_literal("foo").is_err());
        assert!(split_literal("/x/ junk").is_err());
    }

    #[test]
    fn engines() {
        // PCRE2 takes what it can (memory); the prefilter still gets the linear form.
        let p = compile("/free\\s+money/i").unwrap();
        let either = if cfg!(feature = "pcre") {
            "pcre2"
        } else {
            "regex"
        };
        assert_eq!(p.engine(), either);
        assert!(p.is_match(b"get FREE   money now") && !p.is_match(b"free  mone"));
        assert_eq!(p.linear_source(), Some("(?-u)(?i)free\\s+money"));
        assert_eq!(p.count(b"free money, FREE MONEY, free cash", 5), 2);
        // Too large for PCRE2's compiled program: the linear engine keeps it.
        let words: Vec<String> = (0..12_000).map(|i| format!("w{i}x")).collect();
        let big = compile(&format!("/\\b(?:{})\\b/", words.join("|"))).unwrap();
        assert_eq!(big.engine(), "regex");
        assert!(big.is_match(b"say w11999x now") && !big.is_match(b"w12000x"));
        let p = compile("/(?<!not )viagra/i").unwrap();
        let perl_engine = if cfg!(feature = "pcre") {
            "pcre2"
        } else {
            "fancy-regex"
        };
        assert_eq!(p.engine(), perl_engine);
        assert!(p.is_match(b"cheap viagra"));
        assert!(!p.is_match(b"not viagra"));
        let p = compile("/(\\w)\\1\\1/").unwrap();
        assert!(p.is_match(b"aaa") && !p.is_match(b"abc"));
        assert!(compile("/a\\Z/").unwrap().is_match(b"xa\n"));
        // Perl's $ without /m: at the end or before a final newline only.
        assert!(compile("/a$/").unwrap().is_match(b"xa\n"));
        assert!(!compile("/a$/").unwrap().is_match(b"xa\nb"));
        assert!(compile("/a$/m").unwrap().is_match(b"xa\nb"));
        assert!(compile("/[$]x\\$/").unwrap().is_match(b"$x$"));
        // Perl's octal escapes and literal [ inside a class.
        assert!(compile("/\\015/").unwrap().is_match(b"a\rb"));
        assert!(compile("/[\\042\\223]{2}/").unwrap().is_match(b"\"\""));
        let p = compile("/[({[<]x[)}\\]>]/").unwrap();
        assert!(p.is_match(b"[x]") && p.is_match(b"(x>"));
        assert!(compile("/[[:alpha:]]+/").unwrap().is_match(b"abc"));
        assert!(compile("/[a&&b]/").unwrap().is_match(b"&"));
        assert!(compile("/(unclosed/").is_err());
    }

    /// A pattern that backtracks without end on some text gives up soon (no hit), on
    /// whichever engine runs it.
    #[test]
    fn runaway_backtracking_is_cut_short() {
        let p = compile("/^(a|aa)+$/").unwrap();
        let text = format!("{}b", "a".repeat(60));
        let t = std::time::Instant::now();
        assert!(!p.is_match(text.as_bytes()));
        assert!(p.is_match("a".repeat(60).as_bytes()));
        assert!(
            t.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn header_definitions() {
        use crate::spam::rules::cf::Kind;
        assert_eq!(
            literal_of(Kind::Header, "Subject =~ /x/i [if-unset: none]").as_deref(),
            Some("/x/i")
        );
        assert_eq!(
            literal_of(Kind::Header, "From:addr !~ m{@}").as_deref(),
            Some("m{@}")
        );
        assert_eq!(literal_of(Kind::Header, "eval:check_x()"), None);
        assert_eq!(literal_of(Kind::Body, "/foo/").as_deref(), Some("/foo/"));
    }
}
