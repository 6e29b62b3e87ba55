//! Autolearning: which scanned messages Bayes learns from on its own, by SpamAssassin's
//! rules (its AutoLearnThreshold plugin): the score without Bayes decides, spam needs 3
//! points each from header and body rules unless a hit rule forces learning, and the learner
//! is not taught against what it already says strongly.

use super::Class;
use crate::spam::scan::Outcome;

/// Header and body points a message needs before it is learned as spam.
const MIN_AREA_POINTS: f64 = 3.0;
/// Learned points (from the BAYES_ rules) beyond which the learner is taken to disagree.
const LEARNER_SAID_HAM: f64 = -1.0;
const LEARNER_SAID_SPAM: f64 = 1.0;

/// The class to learn `o` as, or `None`: spam at `spam_at` points or more, ham below
/// `ham_below` (SpamAssassin's `bayes_auto_learn_threshold_spam` 12.0 and `_nonspam` 0.1).
/// An incomplete scan (stopped early) is never learned.
pub fn decide(o: &Outcome, spam_at: f64, ham_below: f64) -> Option<Class> {
    if o.stopped_early {
        return None;
    }
    let lp = &o.learn_points;
    if lp.points < ham_below {
        (lp.learned <= LEARNER_SAID_SPAM && !o.is_spam()).then_some(Class::Ham)
    } else if lp.points >= spam_at {
        let min = if lp.force { f64::MIN } else { MIN_AREA_POINTS };
        (lp.body >= min && lp.head >= min && lp.learned >= LEARNER_SAID_HAM && o.is_spam())
            .then_some(Class::Spam)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spam::scan::LearnPoints;

    fn outcome(score: f64, lp: LearnPoints) -> Outcome {
        Outcome {
            score,
            required: 5.0,
            learn_points: lp,
            ..Outcome::default()
        }
    }

    fn points(points: f64, head: f64, body: f64) -> LearnPoints {
        LearnPoints {
            points,
            head,
            body,
            ..LearnPoints::default()
        }
    }

    #[test]
    fn thresholds_and_areas() {
        let d = |o: &Outcome| decide(o, 12.0, 0.1);
        assert_eq!(d(&outcome(13.0, points(13.0, 5.0, 8.0))), Some(Class::Spam));
        // Between the thresholds: nothing.
        assert_eq!(d(&outcome(8.0, points(8.0, 4.0, 4.0))), None);
        // Too few body points, unless a rule forces learning.
        let mut lp = points(13.0, 12.0, 1.0);
        assert_eq!(d(&outcome(13.0, lp)), None);
        lp.force = true;
        assert_eq!(d(&outcome(13.0, lp)), Some(Class::Spam));
        assert_eq!(d(&outcome(-1.0, points(0.0, 0.0, 0.0))), Some(Class::Ham));
        // Exactly at the ham threshold is not below it.
        assert_eq!(d(&outcome(0.1, points(0.1, 0.1, 0.0))), None);
    }

    #[test]
    fn the_learner_and_the_verdict_must_agree() {
        let d = |o: &Outcome| decide(o, 12.0, 0.1);
        // Bayes said ham strongly: no spam learning.
        let mut lp = points(13.0, 5.0, 8.0);
        lp.learned = -1.9;
        assert_eq!(d(&outcome(11.1, lp)), None);
        // Bayes said spam: no ham learning.
        let mut lp = points(0.0, 0.0, 0.0);
        lp.learned = 3.5;
        assert_eq!(d(&outcome(3.5, lp)), None);
        // Scored as spam overall (say by a white/blacklist score) but wanted ham: no.
        assert_eq!(d(&outcome(6.0, points(0.0, 0.0, 0.0))), None);
        // Stopped early: the points are incomplete.
        let mut o = outcome(13.0, points(13.0, 5.0, 8.0));
        o.stopped_early = true;
        assert_eq!(d(&o), None);
    }
}
