//! Scores for rules over the learner's probability, added to rules + Bayes the way the
//! BAYES_xx rules are: `LEARNER_00` (p < 0.01), `LEARNER_80` (0.8 to 0.95), `LEARNER_95`
//! (0.95 to 0.99) and `LEARNER_99` (above 0.99). Chosen on the development set's
//! cross-validated predictions by a grid search (the most spam caught without more ham
//! flagged than rules + Bayes flags); then fixed and tried on the later sets.

/// Scores of LEARNER_00 (as a deduction), _80, _95 and _99.
pub type Scores = [f64; 4];

/// The points the learner's rules add for probability `p`.
pub fn points(s: &Scores, p: f64) -> f64 {
    match p {
        p if p < 0.01 => -s[0],
        p if p > 0.99 => s[3],
        p if p > 0.95 => s[2],
        p if p > 0.8 => s[1],
        _ => 0.0,
    }
}

/// (rules + Bayes score, learner probability, is spam) of each message.
pub type Row = (f64, f64, bool);

fn tally(rows: &[Row], s: &Scores) -> (usize, usize) {
    let (mut fp, mut caught) = (0, 0);
    for &(score, p, spam) in rows {
        let flagged = score + points(s, p) >= 5.0;
        if spam {
            caught += usize::from(flagged);
        } else {
            fp += usize::from(flagged);
        }
    }
    (fp, caught)
}

/// The scores (steps of 0.5 up to 3) that catch the most spam while flagging no more ham
/// than `max_fp`; ties go to the smallest total score (the least the learner moves).
pub fn search(rows: &[Row], max_fp: usize) -> (Scores, usize, usize) {
    let steps: Vec<f64> = (0..=6).map(|i| f64::from(i) * 0.5).collect();
    let mut best = ([0.0; 4], 0, 0);
    let mut best_key = (0usize, f64::INFINITY);
    for &a in &steps {
        for &b in &steps {
            for &c in steps.iter().filter(|&&c| c >= b) {
                for &d in steps.iter().filter(|&&d| d >= c) {
                    let s = [a, b, c, d];
                    let (fp, caught) = tally(rows, &s);
                    let total = a + b + c + d;
                    if fp <= max_fp
                        && (caught > best_key.0 || (caught == best_key.0 && total < best_key.1))
                    {
                        best_key = (caught, total);
                        best = (s, fp, caught);
                    }
                }
            }
        }
    }
    best
}

/// Parses `a,b,c,d` (AMAVISD_CV_LEARNER_SCORES).
pub fn parse(v: &str) -> Option<Scores> {
    let f: Vec<f64> = v.split(',').filter_map(|x| x.parse().ok()).collect();
    f.try_into().ok()
}
