//! What Bayes counts: a message's distinct tokens, as SpamAssassin's Bayes plugin shapes
//! them (learned from its documentation and behaviour, not its code):
//!
//! - body words from the rendered body (the text body rules see), lower-cased, 3 to 15
//!   bytes; a longer word becomes a skip token `sk:` + its first 7 bytes, as a long token is
//!   mostly noise. Words in capitals are folded too: kept apart, they made every newsletter
//!   heading (`MONEY`, `CREDIT`) a strong spam token, and shouting is what the rules score
//!   (cross-validation on the corpus: 6 false positives with them apart, 4 folded);
//! - header tokens with the field as prefix (`HFrom:joe`), from the fields that say something
//!   about the sender and the sending software; the two Received fields nearest the sender
//!   give their addresses and host names (the hops above are the receiving site's own); Message-ID, the address fields and the mailer fields are grouped
//!   (`*m`, `*F`, `*x`) so that one mailer's spelling of a field name does not split them;
//! - URLs: each host name and its parent domains (`D:example.com`), and the URL's path words;
//! - Chinese, Japanese and Korean text, written without word spaces, as overlapping pairs of
//!   characters rather than one skip token per sentence.
//!
//! Tokens are hashed to 64 bits (SHA-256, first 8 bytes) for storage: stores stay compact and
//! nodes sharing a store agree on the hash.

use crate::spam::view::MessageView;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// Shortest body word counted.
const MIN_WORD: usize = 3;
/// Longest body word kept whole (SpamAssassin's MAX_TOKEN_LENGTH).
const MAX_WORD: usize = 15;
/// Most tokens taken from one message: a bound on store writes per message and on the work
/// of a huge one.
pub const MAX_TOKENS: usize = 10_000;
/// Most tokens one header field gives (fields full of gibberish would swamp the rest).
const MAX_PER_FIELD: usize = 64;

/// Fields mined for tokens, with the prefix they get. Address fields, Message-ID and mailer
/// fields are grouped.
const FIELDS: &[(&str, &str)] = &[
    ("From", "*F"),
    ("Reply-To", "*F"),
    ("Sender", "*F"),
    ("Return-Path", "*F"),
    ("To", "*T"),
    ("Cc", "*T"),
    ("Message-ID", "*m"),
    ("X-Mailer", "*x"),
    ("User-Agent", "*x"),
    ("X-MimeOLE", "*x"),
    ("Content-Type", "HContent-Type"),
    ("Content-Transfer-Encoding", "HContent-Transfer-Encoding"),
    ("MIME-Version", "HMIME-Version"),
    ("X-Priority", "HX-Priority"),
    ("X-MSMail-Priority", "HX-MSMail-Priority"),
    ("Organization", "HOrganization"),
    ("List-Id", "HList-Id"),
    ("List-Unsubscribe", "HList-Unsubscribe"),
    ("Precedence", "HPrecedence"),
    ("Received", "HReceived"),
];

/// A token's 64-bit hash, the key stores keep.
pub fn hash(token: &str) -> u64 {
    let d = Sha256::digest(token.as_bytes());
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// The words of a text: runs of letters, digits and a few inner marks, without the marks
/// at either end.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || matches!(c, '.' | '-' | '\'' | '$' | '!' | '_')))
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '$'))
        .filter(|w| !w.is_empty())
}

/// A body word as a token, or `None` when too short to mean anything.
fn body_token(w: &str) -> Option<String> {
    if w.len() < MIN_WORD {
        return None;
    }
    let t = w.to_lowercase();
    if t.len() > MAX_WORD {
        let mut cut = 7;
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        return Some(format!("sk:{}", &t[..cut]));
    }
    Some(t)
}

/// Chinese, Japanese and Korean script, written without spaces between words.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30ff      // Hiragana, Katakana
        | 0x3400..=0x4dbf    // CJK Extension A
        | 0x4e00..=0x9fff    // CJK Unified Ideographs
        | 0xac00..=0xd7af    // Hangul syllables
        | 0xf900..=0xfaff) // CJK Compatibility Ideographs
}

/// Text in a script without word spaces as overlapping pairs of characters (the usual way
/// to index such text: most words are one or two characters); runs of other letters in it as
/// words.
fn cjk_tokens(w: &str, out: &mut BTreeSet<String>) {
    let chars: Vec<char> = w.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let cjk = is_cjk(chars[i]);
        let start = i;
        while i < chars.len() && is_cjk(chars[i]) == cjk {
            i += 1;
        }
        let run = &chars[start..i];
        if cjk {
            if run.len() == 1 {
                out.insert(run[0].to_string());
            }
            for pair in run.windows(2) {
                out.insert(pair.iter().collect());
            }
        } else if let Some(t) = body_token(&run.iter().collect::<String>()) {
            out.insert(t);
        }
    }
}

/// A host name and its parent domains down to two labels.
fn domains(host: &str, out: &mut BTreeSet<String>) {
    let host = host.trim_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    for i in 0..labels.len().saturating_sub(1) {
        out.insert(format!("D:{}", labels[i..].join(".")));
    }
}

/// The message's distinct tokens (as text), at most [`MAX_TOKENS`].
pub fn tokens(view: &MessageView) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for para in &view.body {
        for w in words(para) {
            if w.chars().any(is_cjk) {
                cjk_tokens(w, &mut out);
            } else if let Some(t) = body_token(w) {
                out.insert(t);
            }
        }
    }
    for (field, prefix) in FIELDS {
        let v = if *field == "Received" {
            // The two hops nearest the sender, as SpamAssassin's Bayes: the ones above are
            // the same for every message a site receives (its own relays) and teach nothing.
            let all = view.headers.raw_values("Received");
            if all.is_empty() {
                continue;
            }
            all[all.len().saturating_sub(2)..].join(" ")
        } else {
            let Some(v) = view.header(&format!("{field}:raw")) else {
                continue;
            };
            v
        };
        let mut n = 0;
        for w in words(&v) {
            if n >= MAX_PER_FIELD {
                break;
            }
            // Received: where it came from, not the dates and ids of each hop.
            if *field == "Received" && !(w.contains('.') && w.len() > 4) {
                continue;
            }
            let w = w.to_lowercase();
            if w.len() >= MIN_WORD && w.len() <= 2 * MAX_WORD {
                out.insert(format!("{prefix}:{w}"));
                n += 1;
            }
        }
    }
    for uri in &view.uris {
        let rest = uri.split_once("://").map_or(uri.as_str(), |(_, r)| r);
        let host_end = rest.find(['/', '?', '#', ':']).unwrap_or(rest.len());
        let host = &rest[..host_end];
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        if host.contains('.') {
            domains(host, &mut out);
        }
        for w in words(&rest[host_end..]).take(8) {
            if (MIN_WORD..=MAX_WORD).contains(&w.len()) {
                out.insert(format!("U:{}", w.to_lowercase()));
            }
        }
    }
    while out.len() > MAX_TOKENS {
        out.pop_last();
    }
    out
}

/// The rendered body's words in order, as body tokens (lower-cased, long ones as skip
/// tokens), at most `max`: what word-pair features are built from. CJK runs stay whole.
pub fn body_words(view: &MessageView, max: usize) -> Vec<String> {
    view.body
        .iter()
        .flat_map(|para| words(para))
        .filter_map(body_token)
        .take(max)
        .collect()
}

/// The message's tokens as the store keys them.
pub fn hashed(view: &MessageView) -> Vec<u64> {
    tokens(view).iter().map(|t| hash(t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_header_and_uri_tokens() {
        let msg = b"From: Joe <joe@mail.example.com>\r\nSubject: cheap pills\r\n\
Message-ID: <abc@mail.example.com>\r\nX-Mailer: SuperMailer 5.1\r\n\r\n\
Buy FREE stuff now at http://www.shop.example.net/deals/today and save.\r\n\
Antidisestablishmentarianism is long.\r\n";
        let t = tokens(&MessageView::new(msg, ""));
        for want in [
            "buy",
            "free",
            "stuff",
            "cheap",
            "pills",
            "sk:antidis",
            "*F:mail.example.com",
            "*F:joe",
            "*x:supermailer",
            "D:example.net",
            "D:shop.example.net",
            "D:www.shop.example.net",
            "U:deals",
        ] {
            assert!(t.contains(want), "{want} missing from {t:?}");
        }
        assert!(!t.contains("at"), "too short");
        assert!(!t.contains("FREE"), "capitals folded");
    }

    #[test]
    fn text_without_word_spaces_becomes_character_pairs() {
        let msg = "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\u{4f18}\u{60e0}\u{4ef7}\u{683c}ABCD\u{597d}\r\n";
        let t = tokens(&MessageView::new(msg.as_bytes(), ""));
        for want in [
            "\u{4f18}\u{60e0}",
            "\u{60e0}\u{4ef7}",
            "\u{4ef7}\u{683c}",
            "abcd",
            "\u{597d}",
        ] {
            assert!(t.contains(want), "{want} missing from {t:?}");
        }
        assert!(!t.iter().any(|x| x.starts_with("sk:")), "{t:?}");
    }

    #[test]
    fn hashes_are_stable() {
        assert_eq!(hash("viagra"), hash("viagra"));
        assert_ne!(hash("viagra"), hash("Viagra"));
    }
}
