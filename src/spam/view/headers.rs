//! Header values as SpamAssassin's `header` rules see them: `Name` is every occurrence of the
//! field, RFC 2047-decoded and unfolded, each ending in a newline, joined; `Name:raw` skips
//! the decoding; `Name:addr` is the first address and `Name:name` the first display name;
//! the pseudo-headers `ALL`, `ToCc`, `MESSAGEID` and `EnvelopeFrom` combine fields. A field
//! that is not there is unset (`[if-unset: ...]` then applies).

use crate::spam::rules::pattern::Pattern;

/// The header section, split into fields.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    /// (name, raw value without the name and colon, folding kept, no final CRLF).
    fields: Vec<(String, Vec<u8>)>,
    /// The envelope sender, for `EnvelopeFrom`.
    envelope_from: String,
}

fn trim_line_end(v: &[u8]) -> &[u8] {
    let mut end = v.len();
    while end > 0 && (v[end - 1] == b'\n' || v[end - 1] == b'\r') {
        end -= 1;
    }
    &v[..end]
}

/// Folding removed: a line break before white space disappears (the white space stays).
fn unfold(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\r' && v.get(i + 1) == Some(&b'\n') {
            i += 2;
            continue;
        }
        if v[i] == b'\n' {
            i += 1;
            continue;
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

/// Encoded words decoded (mail-parser's unstructured-field decoder) and folding removed.
fn decode(raw: &[u8]) -> String {
    let mut buf = raw.to_vec();
    buf.extend_from_slice(b"\r\n");
    let mut s = mail_parser::parsers::MessageStream::new(&buf);
    match s.parse_unstructured() {
        mail_parser::HeaderValue::Text(t) => t.into_owned(),
        _ => String::from_utf8_lossy(&unfold(raw)).trim().to_string(),
    }
}

/// The first address in a field value (`Name <a@b>` or `a@b (Name)`).
fn first_addr(v: &str) -> String {
    if let (Some(a), Some(b)) = (v.find('<'), v.find('>'))
        && a < b
    {
        return v[a + 1..b].trim().to_string();
    }
    v.split([',', ' ', '\t'])
        .find(|t| t.contains('@'))
        .unwrap_or(v.split(',').next().unwrap_or(""))
        .trim()
        .to_string()
}

/// The first display name in a field value.
fn first_name(v: &str) -> String {
    let first = v.split(',').next().unwrap_or("");
    if let Some(a) = first.find('<') {
        return first[..a].trim().trim_matches('"').trim().to_string();
    }
    if let (Some(a), Some(b)) = (first.find('('), first.rfind(')'))
        && a < b
    {
        return first[a + 1..b].trim().to_string();
    }
    String::new()
}

impl Headers {
    /// Splits a header section (the part before the empty line).
    pub fn parse(section: &[u8], envelope_from: &str) -> Headers {
        let mut fields: Vec<(String, Vec<u8>)> = Vec::new();
        for line in section.split_inclusive(|&b| b == b'\n') {
            if (line.starts_with(b" ") || line.starts_with(b"\t"))
                && let Some(last) = fields.last_mut()
            {
                last.1.extend_from_slice(line);
                continue;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let name = String::from_utf8_lossy(&line[..colon]).trim().to_string();
            let mut value = &line[colon + 1..];
            if value.first() == Some(&b' ') {
                value = &value[1..];
            }
            fields.push((name, value.to_vec()));
        }
        for f in &mut fields {
            let v = trim_line_end(&f.1).to_vec();
            f.1 = v;
        }
        Headers {
            fields,
            envelope_from: envelope_from.to_string(),
        }
    }

    fn values(&self, name: &str, raw: bool) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| {
                if raw {
                    String::from_utf8_lossy(&unfold(v)).into_owned()
                } else {
                    decode(v)
                }
            })
            .collect()
    }

    fn join(values: Vec<String>) -> Option<String> {
        if values.is_empty() {
            return None;
        }
        Some(values.into_iter().map(|v| v + "\n").collect())
    }

    /// The value a rule's header spec (`Subject`, `From:addr`, `ALL:raw`, `ToCc` ...) sees;
    /// `None` when unset.
    pub fn get(&self, spec: &str) -> Option<String> {
        let (name, modifier) = match spec.split_once(':') {
            Some((n, m)) => (n.trim(), m.trim()),
            None => (spec.trim(), ""),
        };
        let raw = modifier == "raw";
        let value = match name {
            "ALL" => {
                let all: Vec<String> = self
                    .fields
                    .iter()
                    .map(|(n, v)| {
                        let v = if raw {
                            String::from_utf8_lossy(&unfold(v)).into_owned()
                        } else {
                            decode(v)
                        };
                        format!("{n}: {v}")
                    })
                    .collect();
                Self::join(all)
            }
            "ToCc" => {
                let mut v = self.values("To", raw);
                v.extend(self.values("Cc", raw));
                if v.is_empty() {
                    None
                } else {
                    Some(v.join(", ") + "\n")
                }
            }
            "MESSAGEID" => {
                let mut v = Vec::new();
                for n in ["Message-Id", "Resent-Message-Id", "X-Message-Id"] {
                    v.extend(self.values(n, raw));
                }
                Self::join(v)
            }
            "EnvelopeFrom" => self.envelope_from().map(|e| format!("{e}\n")),
            _ => Self::join(self.values(name, raw)),
        }?;
        Some(match modifier {
            "addr" => first_addr(value.trim_end()),
            "name" => first_name(value.trim_end()),
            _ => value,
        })
    }

    /// The envelope sender when there is an envelope (SMTP); without one (a file, spamc)
    /// SpamAssassin guesses from fields a delivering MTA leaves: `X-Envelope-From`,
    /// `Envelope-Sender`, `Return-Path`, each only when it stands above every `Received`
    /// (below one, anybody could have written it).
    pub fn envelope_from(&self) -> Option<String> {
        if !self.envelope_from.is_empty() {
            return Some(self.envelope_from.clone());
        }
        let first_received = self
            .fields
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case("Received"));
        for name in ["X-Envelope-From", "Envelope-Sender", "Return-Path"] {
            let Some(at) = self
                .fields
                .iter()
                .position(|(n, _)| n.eq_ignore_ascii_case(name))
            else {
                continue;
            };
            if first_received.is_some_and(|r| r < at) {
                if name == "X-Envelope-From" {
                    return None;
                }
                continue;
            }
            let v = String::from_utf8_lossy(&unfold(&self.fields[at].1)).into_owned();
            return Some(first_addr(v.trim()));
        }
        None
    }

    /// The fields from the `from`-th `Received` field (counted from 0, top down) on, or up
    /// to the `to`-th `Received` field itself: SpamAssassin's `ALL-EXTERNAL`/`ALL-UNTRUSTED` and
    /// `ALL-INTERNAL`/`ALL-TRUSTED`. Fields above the first `Received` count as number -1.
    pub fn all_in_received_range(
        &self,
        from: Option<usize>,
        to: Option<usize>,
        raw: bool,
    ) -> Option<String> {
        let mut index: isize = -1;
        let mut out = String::new();
        for (n, v) in &self.fields {
            let received = n.eq_ignore_ascii_case("Received");
            if received {
                index += 1;
            }
            // The `to`-th Received field itself is the last one taken.
            let at_end = to.is_some_and(|t| index == t as isize);
            if to.is_some_and(|t| index > t as isize) || (at_end && !received) {
                break;
            }
            if from.is_some_and(|f| index < f as isize) {
                continue;
            }
            let v = if raw {
                String::from_utf8_lossy(&unfold(v)).into_owned()
            } else {
                decode(v)
            };
            out.push_str(&format!("{n}: {v}\n"));
        }
        (!out.is_empty()).then_some(out)
    }

    /// True when an SMTP envelope sender was given.
    pub fn has_envelope(&self) -> bool {
        !self.envelope_from.is_empty()
    }

    /// Every occurrence of a field, unfolded, not decoded.
    pub fn raw_values(&self, name: &str) -> Vec<String> {
        self.values(name, true)
    }

    /// The field names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(n, _)| n.as_str())
    }

    /// True when the field is present (`exists:Name`).
    pub fn exists(&self, name: &str) -> bool {
        self.fields
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}

/// A `header` rule that tests a value with a regex (not `eval:`).
pub struct HeaderTest {
    pub spec: String,
    pub negate: bool,
    pub pattern: Pattern,
    pub if_unset: Option<String>,
}

impl HeaderTest {
    /// Reads `Name[:mod] =~ /re/flags [if-unset: X]`, or `exists:Name` (`None` pattern
    /// work is left to the caller: see [`Headers::exists`]).
    pub fn parse(def: &str) -> Result<HeaderTest, String> {
        let at = def
            .find("=~")
            .or_else(|| def.find("!~"))
            .ok_or("no =~ or !~")?;
        let negate = def[at..].starts_with("!~");
        let spec = def[..at].trim().to_string();
        let lit =
            crate::spam::rules::pattern::literal_of(crate::spam::rules::cf::Kind::Header, def)
                .ok_or("no regex")?;
        let if_unset = def.rfind("[if-unset:").and_then(|i| {
            def[i + 10..]
                .trim_end()
                .strip_suffix(']')
                .map(|v| v.trim().to_string())
        });
        Ok(HeaderTest {
            spec,
            negate,
            pattern: crate::spam::rules::pattern::compile(&lit)?,
            if_unset,
        })
    }

    /// Does the rule hit on these headers?
    pub fn hits(&self, h: &Headers) -> bool {
        self.hits_with(|spec| h.get(spec))
    }

    /// Does the rule hit, with header values from `get` (which knows pseudo-headers)?
    pub fn hits_with<S: AsRef<str>>(&self, get: impl Fn(&str) -> Option<S>) -> bool {
        let hit = match get(&self.spec) {
            Some(v) => self.pattern.is_match(v.as_ref().as_bytes()),
            None => {
                let unset = self.if_unset.as_deref().unwrap_or_default();
                self.pattern.is_match(unset.as_bytes())
            }
        };
        hit != self.negate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &[u8] = b"From: \"Joe Bloggs\" <joe@example.org>\r\nTo: a@x.org\r\nCc: b@y.org,\r\n c@z.org\r\n\
Subject: =?UTF-8?B?R3LDvMOfZQ==?= and\r\n  more\r\nMessage-ID: <m1@x>\r\nReceived: one\r\nReceived: two\r\n";

    #[test]
    fn values_as_spamassassin_sees_them() {
        let h = Headers::parse(H, "bounce@example.org");
        // Decoded values join folded lines with one space (mail-parser's unfolding); whether
        // that is SpamAssassin's exact spacing is for the compatibility harness to show.
        assert_eq!(h.get("Subject").as_deref(), Some("Grüße and more\n"));
        assert_eq!(
            h.get("Subject:raw").as_deref(),
            Some("=?UTF-8?B?R3LDvMOfZQ==?= and  more\n")
        );
        assert_eq!(h.get("From:addr").as_deref(), Some("joe@example.org"));
        assert_eq!(h.get("From:name").as_deref(), Some("Joe Bloggs"));
        assert_eq!(h.get("Received").as_deref(), Some("one\ntwo\n"));
        assert_eq!(
            h.get("ToCc").as_deref(),
            Some("a@x.org, b@y.org, c@z.org\n")
        );
        assert_eq!(h.get("MESSAGEID").as_deref(), Some("<m1@x>\n"));
        assert_eq!(
            h.get("EnvelopeFrom").as_deref(),
            Some("bounce@example.org\n")
        );
        assert!(h.get("ALL").unwrap().contains("Subject: Grüße and more\n"));
        assert_eq!(h.get("X-Missing"), None);
        assert!(h.exists("message-id") && !h.exists("X-Missing"));
    }

    #[test]
    fn header_tests() {
        let h = Headers::parse(H, "");
        let t = |d: &str| HeaderTest::parse(d).unwrap().hits(&h);
        assert!(t("Subject =~ /grüße/i"));
        assert!(t("From:addr =~ /\\@example\\.org$/"));
        assert!(!t("Subject !~ /more/"));
        assert!(t("X-Missing =~ /^UNSET$/ [if-unset: UNSET]"));
        assert!(t("X-Missing !~ /./"));
        assert!(HeaderTest::parse("eval:check()").is_err());
    }
}
