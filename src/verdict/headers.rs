//! The spam header fields in amavisd-new's exact format:
//!
//! ```text
//! X-Spam-Flag: YES
//! X-Spam-Score: 7.1
//! X-Spam-Level: *******
//! X-Spam-Status: Yes, score=7.1 tagged_above=2 required=6.2
//!  tests=[AV:Sanesecurity.Jurlbl.abc=0.1, BAYES_99=3.5, ...] autolearn=no
//! ```

use crate::message::SpamResult;
use crate::policy_bank::Policy;

/// A score as amavisd-new prints it: `0+sprintf("%.3f")`, so 7.100 is `7.1`, 2.000 is `2`.
pub fn spam_number(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

/// `*` for each whole point of a positive score, at most 64.
pub fn spam_level(score: f64) -> String {
    let n = if score > 0.0 {
        (score.floor() as usize).min(64)
    } else {
        0
    };
    "*".repeat(n)
}

/// The four fields, in order. Test names and scores are header-safe (no controls).
pub fn spam_headers(s: &SpamResult, p: &Policy) -> Vec<(String, String)> {
    let yes = s.score >= p.spam_tag2_level;
    let mut tests: Vec<String> = s
        .tests
        .iter()
        .map(|(n, v)| {
            let n: String = n
                .chars()
                .filter(|c| !c.is_control() && *c != ',' && *c != ']')
                .take(100)
                .collect();
            format!("{n}={}", spam_number(*v))
        })
        .collect();
    tests.sort();
    let mut status = format!(
        "{}, score={}",
        if yes { "Yes" } else { "No" },
        spam_number(s.score)
    );
    match p.spam_tag_level {
        Some(t) => status.push_str(&format!(" tagged_above={}", spam_number(t))),
        None => status.push_str(" tagged_above=-999"),
    }
    status.push_str(&format!(" required={}", spam_number(p.spam_tag2_level)));
    // Folded before the test list, as amavisd-new does; long lists fold between tests.
    status.push_str("\r\n\ttests=[");
    let mut line = 7;
    for (i, t) in tests.iter().enumerate() {
        if i > 0 {
            if line + t.len() > 70 {
                status.push_str(",\r\n\t");
                line = 0;
            } else {
                status.push_str(", ");
                line += 2;
            }
        }
        status.push_str(t);
        line += t.len();
    }
    let autolearn = if s.autolearn.is_empty() {
        "disabled"
    } else {
        &s.autolearn
    };
    status.push_str(&format!("] autolearn={autolearn}"));
    if s.dns_incomplete {
        // Not amavisd-new's: says the network rules may have missed (DNS too slow).
        status.push_str(" dns=timeout");
    }
    vec![
        ("X-Spam-Flag".into(), if yes { "YES" } else { "NO" }.into()),
        ("X-Spam-Score".into(), spam_number(s.score)),
        ("X-Spam-Level".into(), spam_level(s.score)),
        ("X-Spam-Status".into(), status),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(spam_number(7.1), "7.1");
        assert_eq!(spam_number(2.0), "2");
        assert_eq!(spam_number(-1.9014), "-1.901");
        assert_eq!(spam_number(0.0), "0");
        assert_eq!(spam_number(-0.0001), "0");
        assert_eq!(spam_level(7.9), "*******");
        assert_eq!(spam_level(-3.0), "");
        assert_eq!(spam_level(500.0).len(), 64);
    }
}
