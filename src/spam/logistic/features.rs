//! A message as the logistic-regression engine sees it: hashed binary features.
//!
//! - the Bayes tokens (body words, sender and mailer header tokens, URL hosts and path
//!   words), so the two engines read the same text;
//! - the rules that hit, as `R:NAME` (the rules' view of the message, learned per site);
//! - a bias feature.
//!
//! Orthogonal sparse bigrams of the body words (Siefkes et al., "Combining Winnow and
//! Orthogonal Sparse Bigrams for Incremental Spam Filtering", 2004: each word paired with
//! each of the next few, the distance kept) are here too, and `examples/bayes_cv.rs` tries
//! them (`AMAVISD_CV_PAIRS`), but the filter does not use them: on the SpamAssassin corpus
//! pairs 4 apart made 17 times as many features (1.34 M rows a model instead of 78 k, and as
//! many lookups a message) and did no better on the later mail (recall at 0.1 % false
//! positives 84.4 % with them, 87.6 % without; rules + Bayes + LEARNER_xx the same 96.8 % on
//! the development folds, 90.3 % with and 90.7 % without on the later sets).

use crate::spam::bayes::tokens;
use crate::spam::view::MessageView;

/// How far apart two words of a pair may be in the filter's features: none (see above).
/// The paper's best was 5.
pub const OSB_WINDOW: usize = 0;
/// Body words paired: a bound on the features of a long message (each word gives up to
/// the window's pairs).
pub const MAX_PAIRED_WORDS: usize = 3000;

/// A feature key from its text, in the Bayes token hash space but apart from it (a `\0`
/// cannot be in a token), so both can share a store's key column.
pub fn key(feature: &str) -> u64 {
    tokens::hash(&format!("\0{feature}"))
}

/// The word-pair features of a word sequence, pairs at most `window` words apart (0: none).
pub fn word_pairs_within(words: &[String], window: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity(words.len() * window);
    for (i, w) in words.iter().enumerate() {
        for d in 1..=window {
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
/// of its body ([`OSB_WINDOW`]: none) and the bias. Sorted and without repeats: features are binary.
pub fn base(view: &MessageView, bayes_tokens: &[u64]) -> Vec<u64> {
    base_with(view, bayes_tokens, OSB_WINDOW, MAX_PAIRED_WORDS)
}

/// The same with pairs `window` words apart at most, over the first `max_words` words.
pub fn base_with(
    view: &MessageView,
    bayes_tokens: &[u64],
    window: usize,
    max_words: usize,
) -> Vec<u64> {
    let mut out: Vec<u64> = bayes_tokens.to_vec();
    if window > 0 {
        out.extend(word_pairs_within(
            &tokens::body_words(view, max_words),
            window,
        ));
    }
    // A bias feature: the model's prior, learned like any weight.
    out.push(key("bias"));
    out.sort_unstable();
    out.dedup();
    out
}

/// Adds `more` features (the rule hits, once the rules have ran) to sorted ones, keeping
/// them sorted and without repeats: features are binary.
pub fn extend(features: &mut Vec<u64>, more: impl IntoIterator<Item = u64>) {
    features.extend(more);
    features.sort_unstable();
    features.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_keep_their_distance() {
        let w: Vec<String> = ["buy", "cheap", "pills", "now"].map(String::from).into();
        let pairs = word_pairs_within(&w, 3);
        assert_eq!(pairs.len(), 3 + 2 + 1);
        assert!(pairs.contains(&key("buy 2 pills")));
        assert!(!pairs.contains(&key("buy 1 pills")));
    }

    #[test]
    fn tokens_pairs_and_hits_are_distinct_features() {
        let view = MessageView::new(b"Subject: hi\r\n\r\nbuy cheap pills now\r\n", "");
        let (_, toks) =
            crate::spam::bayes::learnable(b"Subject: hi\r\n\r\nbuy cheap pills now\r\n");
        let mut f = base(&view, &toks);
        extend(&mut f, rule_hits(&["MISSING_DATE"]));
        assert!(f.contains(&key("R:MISSING_DATE")));
        assert!(f.contains(&key("bias")));
        assert!(
            !f.contains(&key("cheap 1 pills")),
            "no pairs in the filter's"
        );
        assert!(toks.iter().all(|t| f.contains(t)));
        assert!(f.windows(2).all(|w| w[0] < w[1]));
        let with_pairs = base_with(&view, &toks, 1, 100);
        assert!(with_pairs.contains(&key("cheap 1 pills")));
    }
}
