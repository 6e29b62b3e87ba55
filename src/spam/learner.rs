//! The learner in the filter: the LEARNER_xx rules over the second statistical engine's
//! probability (`logistic`, its weights in the Bayes store), added to a scan's outcome
//! once its rules have run, because the rules' hits are among the learner's features.

use super::bayes::store::BayesError;
use super::bayes::weights::{self, WeightStore};
use super::logistic::{self, Params, features};
use super::scan::{Hit, Outcome};
use super::settings::SpamConfig;

/// The learner's settings, when it is on.
#[derive(Debug, Clone, PartialEq)]
pub struct Learner {
    pub params: Params,
    /// Scores of LEARNER_00, _80, _95 and _99 (`spam.learner_scores`).
    scores: [f64; 4],
}

/// Each rule: its name, the probabilities it covers (above the first, at most the second)
/// and its description.
const RULES: [(&str, f32, f32, &str); 4] = [
    (
        "LEARNER_00",
        -1.0,
        0.01,
        "Learner spam probability is 0 to 1%",
    ),
    (
        "LEARNER_80",
        0.8,
        0.95,
        "Learner spam probability is 80 to 95%",
    ),
    (
        "LEARNER_95",
        0.95,
        0.99,
        "Learner spam probability is 95 to 99%",
    ),
    (
        "LEARNER_99",
        0.99,
        2.0,
        "Learner spam probability is 99 to 100%",
    ),
];

impl Learner {
    /// The learner `cfg` turns on, if any (it needs a Bayes store: the configuration checks
    /// that).
    pub fn of(cfg: &SpamConfig) -> Option<Learner> {
        (cfg.learner && !cfg.bayes_store.is_empty()).then(|| Learner {
            params: Params::default(),
            scores: cfg.learner_scores,
        })
    }

    /// The rule probability `p` hits, with its score; `None` between the bands or when that
    /// rule's score is 0 (a rule scored 0 does not run, as in SpamAssassin).
    pub fn rule(&self, p: f32) -> Option<Hit> {
        let i = RULES
            .iter()
            .position(|(_, lo, hi, _)| p > *lo && p <= *hi)?;
        let (name, _, _, describe) = RULES[i];
        let score = self.scores[i];
        (score != 0.0).then(|| Hit {
            name: name.into(),
            score,
            count: 1,
            describe: describe.into(),
        })
    }

    /// Adds the rule probability `p` hits to `outcome`.
    pub fn apply(&self, outcome: &mut Outcome, p: f32) {
        if let Some(hit) = self.rule(p) {
            outcome.score += hit.score;
            outcome.hits.push(hit);
        }
    }

    /// The learner's probabilities of a scanned message: `base` the margins of its other
    /// features (site's first, then each user's: [`weights::margins`]), and the rules each
    /// outcome hit, in the same order, giving the rest.
    pub async fn probabilities<S: WeightStore>(
        &self,
        store: &S,
        users: &[&str],
        base: &[f32],
        outcomes: &[Outcome],
    ) -> Result<Vec<f32>, BayesError> {
        let mut out = Vec::with_capacity(base.len());
        for (i, (b, o)) in base.iter().zip(outcomes).enumerate() {
            let hits = hit_features(&o.hits);
            // Site first, then the user whose outcome this is.
            let user: &[&str] = match i {
                0 => &[],
                _ => users.get(i - 1..i).unwrap_or(&[]),
            };
            let m = weights::margins(store, &self.params, "", user, &hits).await?;
            out.push(logistic::sigmoid(b + m.last().copied().unwrap_or(0.0)));
        }
        Ok(out)
    }
}

/// The learner's features for the rules that hit: the statistical engines' own rules
/// (BAYES_xx, LEARNER_xx) left out, so that neither learns from the other's answer.
pub fn hit_features(hits: &[Hit]) -> Vec<u64> {
    let names: Vec<&str> = hits
        .iter()
        .map(|h| h.name.as_str())
        .filter(|n| !n.starts_with("BAYES_") && !n.starts_with("LEARNER_"))
        .collect();
    features::rule_hits(&names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learner() -> Learner {
        Learner::of(&SpamConfig {
            bayes_store: "sqlite:x".into(),
            learner: true,
            learner_scores: [-0.5, 0.0, 1.5, 2.0],
            ..SpamConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn each_band_hits_its_rule_and_zero_scores_stay_out() {
        let l = learner();
        let name = |p| l.rule(p).map(|h| h.name);
        assert_eq!(name(0.005).as_deref(), Some("LEARNER_00"));
        assert_eq!(name(0.5), None);
        assert_eq!(name(0.9), None, "LEARNER_80 is scored 0");
        assert_eq!(name(0.97).as_deref(), Some("LEARNER_95"));
        assert_eq!(name(0.995).as_deref(), Some("LEARNER_99"));
        assert_eq!(name(1.0).as_deref(), Some("LEARNER_99"));
        let mut o = Outcome::default();
        l.apply(&mut o, 0.999);
        assert_eq!((o.score, o.tests()), (2.0, "LEARNER_99".to_string()));
    }

    #[test]
    fn off_without_a_store_or_the_key() {
        assert_eq!(Learner::of(&SpamConfig::default()), None);
        let no_store = SpamConfig {
            learner: true,
            ..SpamConfig::default()
        };
        assert_eq!(Learner::of(&no_store), None);
    }

    #[test]
    fn the_statistical_rules_are_not_features() {
        let hit = |n: &str| Hit {
            name: n.into(),
            score: 1.0,
            count: 1,
            describe: String::new(),
        };
        let f = hit_features(&[hit("BAYES_99"), hit("LEARNER_95"), hit("MISSING_DATE")]);
        assert_eq!(f, features::rule_hits(&["MISSING_DATE"]));
    }
}
