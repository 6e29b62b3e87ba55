//! A message as the logistic-regression engine sees it: hashed binary features.
//!
//! - the Bayes tokens (body words, sender and mailer header tokens, URL hosts and path
//!   words), so the two engines read the same text;
//! - orthogonal sparse bigrams of the body words (Siefkes et al., "Combining Winnow and
//!   Orthogonal Sparse Bigrams for Incremental Spam Filtering", 2004): each word paired with
//!   each of the next [`OSB_WINDOW`] words, the distance kept, so phrases and their
//!   variants with a word inserted count;
//! - the rules that hit, as `R:NAME` (the rules' view of the message, learned per site).

use crate::spam::bayes::tokens;
use crate::spam::view::MessageView;

/// How far apart two words of a pair may be (5 in the paper; 4 loses little and makes a
/// quarter fewer features).
pub const OSB_WINDOW: usize = 4;
/// Body words paired: a bound on the features of a long message (each word gives
/// [`OSB_WINDOW`] pairs).
pub const MAX_PAIRED_WORDS: usize = 3000;

/// A feature key from its text, in the Bayes token hash space but apart from it (a `\0`
/// cannot be in a token), so both can share a store's key column.
pub fn key(feature: &str) -> u64 {
    tokens::hash(&format!("\0{feature}"))
}

/// The word-pair features of a word sequence.
pub fn word_pairs(words: &[String]) -> Vec<u64> {
    let mut out = Vec::with_capacity(words.len() * OSB_WINDOW);
    for (i, w) in words.iter().enumerate() {
        for d in 1..=OSB_WINDOW {
            if let Some(next) = words.get(i + d) {
                out.push(key(&format!("{w} {d} {next}")));
            }
        }
    }
    out
}

/// The features of the rules that hit, `R:NAME`.
pub fn rule_hits(hits: &[&str]) -> Vec<u64> {
    hits.iter().map(|h| key(&format!("R:{h}"))).collect()
}

/// A message's features before its rules have run: its Bayes token hashes, the word pairs
/// of its body and the bias. Sorted and without repeats: features are binary.
pub fn base(view: &MessageView, bayes_tokens: &[u64]) -> Vec<u64> {
    let mut out: Vec<u64> = bayes_tokens.to_vec();
    out.extend(word_pairs(&tokens::body_words(view, MAX_PAIRED_WORDS)));
    // A bias feature: the model's prior, learned like any weight.
    out.push(key("bias"));
    out.sort_unstable();
    out.dedup();
    out
}

/// A message's features: its Bayes token hashes (as [`crate::spam::bayes::learnable`]
/// gives them), word pairs of its body, and the rules that hit. Sorted and without
/// repeats: features are binary.
pub fn features(view: &MessageView, bayes_tokens: &[u64], hits: &[&str]) -> Vec<u64> {
    let mut out = base(view, bayes_tokens);
    out.extend(rule_hits(hits));
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_keep_their_distance() {
        let w: Vec<String> = ["buy", "cheap", "pills", "now"].map(String::from).into();
        let pairs = word_pairs(&w);
        assert_eq!(pairs.len(), 3 + 2 + 1);
        assert!(pairs.contains(&key("buy 2 pills")));
        assert!(!pairs.contains(&key("buy 1 pills")));
    }

    #[test]
    fn tokens_pairs_and_hits_are_distinct_features() {
        let view = MessageView::new(b"Subject: hi\r\n\r\nbuy cheap pills now\r\n", "");
        let (_, toks) =
            crate::spam::bayes::learnable(b"Subject: hi\r\n\r\nbuy cheap pills now\r\n");
        let f = features(&view, &toks, &["MISSING_DATE"]);
        assert!(f.contains(&key("R:MISSING_DATE")));
        assert!(f.contains(&key("cheap 1 pills")));
        assert!(toks.iter().all(|t| f.contains(t)));
        assert!(f.windows(2).all(|w| w[0] < w[1]));
    }
}
