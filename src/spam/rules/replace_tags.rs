//! SpamAssassin's ReplaceTags: in the rules named by `replace_rules`, `<NAME>` stands for a
//! `replace_tag` pattern (which may name other tags), `<pre X>` / `<post X>` put a
//! `replace_pre` / `replace_post` snippet before / after every tag, and `<inter X>` puts a
//! `replace_inter` snippet between two tags that follow each other.

use std::collections::{BTreeMap, BTreeSet};

/// The tag definitions read from the configuration.
#[derive(Debug, Default, Clone)]
pub struct Tags {
    pub tags: BTreeMap<String, String>,
    pub pre: BTreeMap<String, String>,
    pub post: BTreeMap<String, String>,
    pub inter: BTreeMap<String, String>,
    pub rules: BTreeSet<String>,
}

impl Tags {
    /// Takes a `replace_*` directive; false when it is not one.
    pub fn directive(&mut self, directive: &str, rest: &str) -> bool {
        let map = match directive {
            "replace_tag" => &mut self.tags,
            "replace_pre" => &mut self.pre,
            "replace_post" => &mut self.post,
            "replace_inter" => &mut self.inter,
            "replace_rules" => {
                self.rules
                    .extend(rest.split_whitespace().map(str::to_string));
                return true;
            }
            "replace_start" | "replace_end" => return true,
            _ => return false,
        };
        if let Some((name, value)) = rest.trim().split_once(char::is_whitespace) {
            map.insert(name.to_string(), value.trim().to_string());
        }
        true
    }

    /// A tag's value with the tags inside it expanded (bounded, for cycles).
    fn expand_tag(&self, name: &str, depth: usize) -> Option<String> {
        let v = self.tags.get(name)?;
        if depth > 10 {
            return Some(v.clone());
        }
        Some(self.expand_plain(v, depth + 1))
    }

    fn expand_plain(&self, s: &str, depth: usize) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(open) = rest.find('<') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('>') {
                Some(close) if self.tags.contains_key(&after[..close]) => {
                    let v = self.expand_tag(&after[..close], depth).unwrap_or_default();
                    out.push_str("(?:");
                    out.push_str(&v);
                    out.push(')');
                    rest = &after[close + 1..];
                }
                _ => {
                    out.push('<');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The rule definition with its tags replaced.
    pub fn apply(&self, def: &str) -> String {
        let mut pre = String::new();
        let mut post = String::new();
        let mut inter = String::new();
        let mut out = String::with_capacity(def.len() * 4);
        let mut rest = def;
        let mut last_was_tag = false;
        while let Some(open) = rest.find('<') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('>') else { break };
            let inner = &after[..close];
            let directive = inner.split_once(' ');
            let known = match directive {
                Some(("pre", n)) => self.pre.get(n).map(|v| pre = v.clone()).is_some(),
                Some(("post", n)) => self.post.get(n).map(|v| post = v.clone()).is_some(),
                Some(("inter", n)) => self.inter.get(n).map(|v| inter = v.clone()).is_some(),
                _ => false,
            };
            if known {
                out.push_str(&rest[..open]);
                rest = &after[close + 1..];
                continue;
            }
            if let Some(v) = self.expand_tag(inner, 0) {
                let between = &rest[..open];
                if last_was_tag && between.is_empty() {
                    out.push_str(&inter);
                }
                out.push_str(between);
                out.push_str(&pre);
                out.push_str(&format!("(?:{v})"));
                out.push_str(&post);
                last_was_tag = true;
            } else {
                out.push_str(&rest[..open + 1]);
                last_was_tag = false;
                rest = after;
                continue;
            }
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_tags() {
        let mut t = Tags::default();
        t.directive("replace_tag", "A [a4@]");
        t.directive("replace_tag", "B [b8]");
        t.directive("replace_tag", "AB <A><B>");
        t.directive("replace_inter", "W1 \\W?");
        t.directive("replace_post", "P2 {1,2}");
        assert_eq!(t.apply("/<A><B>/i"), "/(?:[a4@])(?:[b8])/i");
        assert_eq!(
            t.apply("/<inter W1><post P2><A><B> x<A>/"),
            "/(?:[a4@]){1,2}\\W?(?:[b8]){1,2} x(?:[a4@]){1,2}/"
        );
        assert_eq!(t.apply("/<AB>/"), "/(?:(?:[a4@])(?:[b8]))/");
        assert_eq!(t.apply("/a<b>c<NOTATAG>/"), "/a<b>c<NOTATAG>/");
    }
}
