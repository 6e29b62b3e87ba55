//! What a virus name means beyond "infected", as amavisd-new's maps say:
//!
//! - `@virus_name_to_spam_score_maps`: signatures that third-party databases (Sanesecurity,
//!   SecuriteInfo, phishing feeds) publish for spam and phishing. A name that maps to a score
//!   is not a virus: it adds that score to the spam check instead (amavisd-new reports it as
//!   test `AV.<name>`). A name mapped to "keep" stays a virus.
//! - `@viruses_that_fake_sender_maps`: worms forge the sender, so no bounce may go to it.
//!   All names are taken to fake the sender except test signatures and old macro viruses.
//!
//! First matching pattern wins, in list order.

use regex::Regex;

/// A virus-name rule: a pattern and, for the spam map, `Some(score)` or `None` (keep as a
/// virus); for the fake-sender map, whether the sender is faked.
pub struct NameRule<T> {
    pub pattern: Regex,
    pub value: T,
}

fn rules<T: Copy>(list: &[(&str, T)]) -> Vec<NameRule<T>> {
    list.iter()
        .filter_map(|(p, v)| {
            Regex::new(p)
                .ok()
                .map(|pattern| NameRule { pattern, value: *v })
        })
        .collect()
}

/// amavisd-new's default name-to-spam-score map (its order matters: keep-rules come before the
/// catch-alls they except).
pub fn default_spam_score_rules() -> Vec<NameRule<Option<f64>>> {
    rules(&[
        (r"^Structured\.(SSN|CreditCardNumber)\b", Some(0.1)),
        (r"^(Heuristics\.)?Phishing\.", Some(0.1)),
        (r"^(Email|HTML)\.Phishing\.", Some(0.1)),
        (r"^Sanesecurity\.(Malware|Rogue|Trojan)\.", None),
        (r"^Sanesecurity\.", Some(0.1)),
        (r"^Sanesecurity_PhishBar_", Some(0.0)),
        (r"^Email\.Spam", Some(0.1)),
        (r"^Safebrowsing\.", Some(0.1)),
        (r"^(winnow|Doppelstern|ScamNailer|PhishTank)\.", Some(0.1)),
        (r"-SecuriteInfo\.com(\.|$)", None),
        (r"^MBL_", None),
    ])
}

/// amavisd-new's default fake-sender map.
pub fn default_fake_sender_rules() -> Vec<NameRule<bool>> {
    rules(&[
        (r"(?i)^(EICAR|Joke\.|Junk\.)", false),
        (r"(?i)^(WM97|OF97|W95/CIH-|JS/Fort)", false),
        (r".", true),
    ])
}

/// The first rule's value for `name`, if any matches.
fn lookup<T: Copy>(name: &str, rules: &[NameRule<T>]) -> Option<T> {
    rules
        .iter()
        .find(|r| r.pattern.is_match(name))
        .map(|r| r.value)
}

/// Splits scanner findings into real viruses and a spam-score contribution (the largest
/// score of the names that map to one).
pub fn classify(names: &[String], rules: &[NameRule<Option<f64>>]) -> (Vec<String>, f64) {
    let mut viruses = Vec::new();
    let mut score: f64 = 0.0;
    for n in names {
        match lookup(n, rules) {
            Some(Some(s)) => score = score.max(s),
            Some(None) | None => viruses.push(n.clone()),
        }
    }
    (viruses, score)
}

/// True when any of `names` is known to fake the sender (so no DSN goes to the sender).
pub fn fakes_sender(names: &[String], rules: &[NameRule<bool>]) -> bool {
    names.iter().any(|n| lookup(n, rules).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn spam_names_become_scores() {
        let r = default_spam_score_rules();
        assert_eq!(r.len(), 11, "every default pattern compiles");
        assert_eq!(
            classify(&v(&["Sanesecurity.Jurlbl.abc"]), &r),
            (vec![], 0.1)
        );
        assert_eq!(
            classify(&v(&["Heuristics.Phishing.Email.SpoofedDomain"]), &r),
            (vec![], 0.1)
        );
        assert_eq!(
            classify(&v(&["Sanesecurity_PhishBar_123"]), &r),
            (vec![], 0.0)
        );
        // Kept as viruses: a Sanesecurity malware name, SecuriteInfo, real viruses.
        assert_eq!(classify(&v(&["Sanesecurity.Malware.1234"]), &r).0.len(), 1);
        assert_eq!(
            classify(&v(&["Trojan.Agent-SecuriteInfo.com"]), &r).0.len(),
            1
        );
        let (viruses, score) = classify(&v(&["Win.Trojan.Agent-1", "Email.Phishing.X"]), &r);
        assert_eq!((viruses, score), (v(&["Win.Trojan.Agent-1"]), 0.1));
    }

    #[test]
    fn fake_sender() {
        let r = default_fake_sender_rules();
        assert!(!fakes_sender(&v(&["Eicar-Test-Signature"]), &r));
        assert!(!fakes_sender(&v(&["WM97.Marker"]), &r));
        assert!(fakes_sender(&v(&["Worm.Mydoom.A"]), &r));
        assert!(fakes_sender(
            &v(&["Eicar-Test-Signature", "Worm.Mydoom.A"]),
            &r
        ));
        assert!(!fakes_sender(&[], &r));
    }
}
