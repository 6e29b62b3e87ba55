//! amavisd-new's template language, the common part: `%x` macros and `[?%x|empty|not empty]`
//! conditionals (nestable). A macro is a list of values: in text it is the values joined by
//! ", "; in a conditional it is "empty" when the list is. `%%` is a literal `%`, `\]`, `\|`
//! and `\[` are literal brackets and bars. Unknown macros expand to nothing, as in amavisd-new.

use std::collections::HashMap;

/// Macro values by letter.
#[derive(Debug, Default, Clone)]
pub struct Macros(HashMap<char, Vec<String>>);

/// Values come from the message (file names, subjects, virus names): control characters
/// become spaces, so that no value can start a new line, a header field or a body.
fn clean(v: String) -> String {
    if v.chars().any(char::is_control) {
        v.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    } else {
        v
    }
}

impl Macros {
    /// Sets `%c` to one value (an empty string is an empty list).
    pub fn one(&mut self, c: char, v: impl Into<String>) -> &mut Self {
        let v = clean(v.into());
        self.0
            .insert(c, if v.is_empty() { Vec::new() } else { vec![v] });
        self
    }

    /// Sets `%c` to a list.
    pub fn list(&mut self, c: char, v: Vec<String>) -> &mut Self {
        self.0.insert(c, v.into_iter().map(clean).collect());
        self
    }

    fn get(&self, c: char) -> &[String] {
        self.0.get(&c).map_or(&[], Vec::as_slice)
    }
}

/// Expands `t`.
pub fn expand(t: &str, m: &Macros) -> String {
    let chars: Vec<char> = t.chars().collect();
    let mut out = String::with_capacity(t.len());
    expand_into(&chars, m, &mut out);
    out
}

/// Index of the `]` closing the `[` at `open`, and the `|` positions at depth 1.
fn scan_group(c: &[char], open: usize) -> Option<(usize, Vec<usize>)> {
    let mut depth = 0;
    let mut bars = Vec::new();
    let mut i = open;
    while i < c.len() {
        match c[i] {
            '\\' => i += 1,
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some((i, bars));
                }
            }
            '|' if depth == 1 => bars.push(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn expand_into(c: &[char], m: &Macros, out: &mut String) {
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '\\' if i + 1 < c.len() && matches!(c[i + 1], '[' | ']' | '|' | '\\') => {
                out.push(c[i + 1]);
                i += 2;
            }
            '%' if i + 1 < c.len() => {
                let k = c[i + 1];
                if k == '%' {
                    out.push('%');
                } else {
                    out.push_str(&m.get(k).join(", "));
                }
                i += 2;
            }
            '[' if c.get(i + 1) == Some(&'?') => match scan_group(c, i) {
                Some((close, bars)) if !bars.is_empty() => {
                    // [?%x|if empty|if not empty]; the condition is the text before the first bar.
                    let cond: String = c[i + 2..bars[0]].iter().collect();
                    let cond = cond.trim();
                    let empty = match cond.strip_prefix('%').and_then(|r| r.chars().next()) {
                        Some(k) => m.get(k).iter().all(|v| v.is_empty()),
                        None => cond.is_empty(),
                    };
                    let mut ends = bars.clone();
                    ends.push(close);
                    let pick = if empty { 0 } else { 1 };
                    if pick + 1 < ends.len() {
                        expand_into(&c[ends[pick] + 1..ends[pick + 1]], m, out);
                    }
                    i = close + 1;
                }
                _ => {
                    out.push('[');
                    i += 1;
                }
            },
            ch => {
                out.push(ch);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macros_and_conditionals() {
        let mut m = Macros::default();
        m.one('s', "<a@x>")
            .list('V', vec!["W32.A".into(), "W32.B".into()])
            .list('F', vec![]);
        assert_eq!(expand("from %s: %V", &m), "from <a@x>: W32.A, W32.B");
        assert_eq!(expand("[?%V|clean|infected]", &m), "infected");
        assert_eq!(expand("[?%F|no banned|banned]", &m), "no banned");
        assert_eq!(expand("[?%V|x|[?%F|virus only|both]]!", &m), "virus only!");
        assert_eq!(expand("100%% \\[sure\\]", &m), "100% [sure]");
        assert_eq!(expand("%Q unknown", &m), " unknown");
        assert_eq!(expand("[not a conditional]", &m), "[not a conditional]");
        // Unterminated: kept as text, its macros expanded.
        assert_eq!(
            expand("[?%V|unterminated", &m),
            "[?W32.A, W32.B|unterminated"
        );
        m.one('j', "evil\r\nBcc: x@y\n\nbody");
        assert_eq!(expand("Subject: %j", &m), "Subject: evil  Bcc: x@y  body");
    }
}
