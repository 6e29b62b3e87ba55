//! What a virus name means beyond "infected", as amavisd-new's maps say:
//!
//! - `@virus_name_to_spam_score_maps`: signatures that third-party databases (Sanesecurity,
//!   SecuriteInfo, phishing feeds) publish for spam and phishing. A name that maps to a score
//!   is not a virus: it adds that score to the spam check instead (amavisd-new reports it as
//!   test `AV.<name>`). A name mapped to no score stays a virus.
//! - `@viruses_that_fake_sender_maps`: worms forge the sender, so no bounce may go to it.
//!   All names are taken to fake the sender except test signatures and old macro viruses.
//!
//! First matching pattern wins, in list order. Both lists are `[av]` keys; the defaults are
//! amavisd-new's.

use regex::Regex;
use serde::Deserialize;

/// One entry of `av.virus_name_spam_scores`: names matching `regex` add `score` to the spam
/// check instead of counting as a virus; without `score` they stay viruses (an exception to a
/// broader pattern below it).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SpamScoreSpec {
    pub regex: String,
    pub score: Option<f64>,
}

/// One entry of `av.viruses_that_fake_sender`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FakeSenderSpec {
    pub regex: String,
    pub fakes: bool,
}

/// A compiled rule: a pattern and its value.
#[derive(Debug, Clone)]
pub struct NameRule<T> {
    pub pattern: Regex,
    pub value: T,
}

fn compile<T: Copy>(list: &[(&str, T)]) -> Result<Vec<NameRule<T>>, (usize, String)> {
    list.iter()
        .enumerate()
        .map(|(i, (p, v))| {
            Regex::new(p)
                .map(|pattern| NameRule { pattern, value: *v })
                .map_err(|e| (i, format!("bad regex {p:?}: {e}")))
        })
        .collect()
}

/// Compiles `av.virus_name_spam_scores`; the error is `(index, reason)`.
pub fn spam_score_rules(
    specs: &[SpamScoreSpec],
) -> Result<Vec<NameRule<Option<f64>>>, (usize, String)> {
    if let Some((i, s)) = specs
        .iter()
        .enumerate()
        .find(|(_, s)| s.score.is_some_and(|x| !x.is_finite()))
    {
        return Err((i, format!("score {:?} is not a number", s.score)));
    }
    let v: Vec<(&str, Option<f64>)> = specs.iter().map(|s| (&*s.regex, s.score)).collect();
    compile(&v)
}

/// Compiles `av.viruses_that_fake_sender`; the error is `(index, reason)`.
pub fn fake_sender_rules(specs: &[FakeSenderSpec]) -> Result<Vec<NameRule<bool>>, (usize, String)> {
    let v: Vec<(&str, bool)> = specs.iter().map(|s| (&*s.regex, s.fakes)).collect();
    compile(&v)
}

/// amavisd-new's default name-to-spam-score map (its order matters: keep-rules come before the
/// catch-alls they except).
pub fn default_spam_score_specs() -> Vec<SpamScoreSpec> {
    [
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
    ]
    .into_iter()
    .map(|(r, score)| SpamScoreSpec {
        regex: r.into(),
        score,
    })
    .collect()
}

/// amavisd-new's default fake-sender map.
pub fn default_fake_sender_specs() -> Vec<FakeSenderSpec> {
    [
        (r"(?i)^(EICAR|Joke\.|Junk\.)", false),
        (r"(?i)^(WM97|OF97|W95/CIH-|JS/Fort)", false),
        (r".", true),
    ]
    .into_iter()
    .map(|(r, fakes)| FakeSenderSpec {
        regex: r.into(),
        fakes,
    })
    .collect()
}

/// The first rule's value for `name`, if any matches.
fn lookup<T: Copy>(name: &str, rules: &[NameRule<T>]) -> Option<T> {
    rules
        .iter()
        .find(|r| r.pattern.is_match(name))
        .map(|r| r.value)
}

/// Splits scanner findings into real viruses and spam findings (each name with its score).
pub fn classify(
    names: &[String],
    rules: &[NameRule<Option<f64>>],
) -> (Vec<String>, Vec<(String, f64)>) {
    let mut viruses = Vec::new();
    let mut spam = Vec::new();
    for n in names {
        match lookup(n, rules) {
            Some(Some(s)) => spam.push((n.clone(), s)),
            Some(None) | None => viruses.push(n.clone()),
        }
    }
    (viruses, spam)
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

    fn spam(xs: &[(&str, f64)]) -> Vec<(String, f64)> {
        xs.iter().map(|(n, s)| (n.to_string(), *s)).collect()
    }

    #[test]
    fn spam_names_become_scores() {
        let r = spam_score_rules(&default_spam_score_specs()).unwrap();
        assert_eq!(r.len(), 11, "every default pattern compiles");
        let n = "Sanesecurity.Jurlbl.abc";
        assert_eq!(classify(&v(&[n]), &r), (vec![], spam(&[(n, 0.1)])));
        let n = "Heuristics.Phishing.Email.SpoofedDomain";
        assert_eq!(classify(&v(&[n]), &r), (vec![], spam(&[(n, 0.1)])));
        let n = "Sanesecurity_PhishBar_123";
        assert_eq!(classify(&v(&[n]), &r), (vec![], spam(&[(n, 0.0)])));
        // Kept as viruses: a Sanesecurity malware name, SecuriteInfo, real viruses.
        assert_eq!(classify(&v(&["Sanesecurity.Malware.1234"]), &r).0.len(), 1);
        assert_eq!(
            classify(&v(&["Trojan.Agent-SecuriteInfo.com"]), &r).0.len(),
            1
        );
        let (viruses, s) = classify(&v(&["Win.Trojan.Agent-1", "Email.Phishing.X"]), &r);
        assert_eq!(
            (viruses, s),
            (
                v(&["Win.Trojan.Agent-1"]),
                spam(&[("Email.Phishing.X", 0.1)])
            )
        );
    }

    #[test]
    fn fake_sender() {
        let r = fake_sender_rules(&default_fake_sender_specs()).unwrap();
        assert!(!fakes_sender(&v(&["Eicar-Test-Signature"]), &r));
        assert!(!fakes_sender(&v(&["WM97.Marker"]), &r));
        assert!(fakes_sender(&v(&["Worm.Mydoom.A"]), &r));
        assert!(fakes_sender(
            &v(&["Eicar-Test-Signature", "Worm.Mydoom.A"]),
            &r
        ));
        assert!(!fakes_sender(&[], &r));
    }

    #[test]
    fn bad_entries_are_refused_with_their_index() {
        let bad = [
            SpamScoreSpec {
                regex: "^ok".into(),
                score: Some(1.0),
            },
            SpamScoreSpec {
                regex: "(".into(),
                score: None,
            },
        ];
        assert_eq!(spam_score_rules(&bad).unwrap_err().0, 1);
        let nan = [SpamScoreSpec {
            regex: "x".into(),
            score: Some(f64::NAN),
        }];
        assert_eq!(spam_score_rules(&nan).unwrap_err().0, 0);
    }
}
