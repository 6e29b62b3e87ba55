//! The engine's result as text: SpamAssassin's `X-Spam-Status` value and its content
//! analysis report (what spamd's `REPORT` returns and `spamassassin -t` prints).

use super::scan::Outcome;

/// `Yes, score=7.4 required=5.0 tests=A,B autolearn=no version=...` as SpamAssassin writes it
/// (one decimal).
pub fn status_field(o: &Outcome) -> String {
    format!(
        "{}, score={:.1} required={:.1} tests={} autolearn=no autolearn_force=no version=amavisd-rs-{}",
        if o.is_spam() { "Yes" } else { "No" },
        o.score,
        o.required,
        o.tests(),
        env!("CARGO_PKG_VERSION")
    )
}

/// The content analysis table.
pub fn report_text(o: &Outcome) -> String {
    let mut s = format!(
        "Content analysis details:   ({:.1} points, {:.1} required)\n\n pts rule name              description\n---- ---------------------- --------------------------------------------------\n",
        o.score, o.required
    );
    for h in &o.hits {
        s.push_str(&format!("{:>4.1} {:<22} {}\n", h.score, h.name, h.describe));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spam::scan::Hit;

    #[test]
    fn formats_like_spamassassin() {
        let o = Outcome {
            score: 7.43,
            required: 5.0,
            hits: vec![Hit {
                name: "MISSING_DATE".into(),
                score: 1.36,
                count: 1,
                describe: "Missing Date: header".into(),
            }],
            ..Outcome::default()
        };
        assert!(
            status_field(&o)
                .starts_with("Yes, score=7.4 required=5.0 tests=MISSING_DATE autolearn=no")
        );
        assert!(report_text(&o).contains(" 1.4 MISSING_DATE           Missing Date: header\n"));
    }
}
