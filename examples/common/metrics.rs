//! How well a score separates spam from ham, whatever its scale: ROC area, recall at a
//! false-positive budget, and how honest a probability is (reliability by band).

/// (score, is spam) of each message classified.
pub type Scored = [(f64, bool)];

/// The area under the ROC curve: the chance that a random spam scores above a random ham
/// (ties count half).
pub fn roc_area(s: &Scored) -> f64 {
    let mut v: Vec<(f64, bool)> = s.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut ham_below, mut area, mut i) = (0.0, 0.0, 0);
    let spam = v.iter().filter(|x| x.1).count() as f64;
    let ham = v.len() as f64 - spam;
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            j += 1;
        }
        let tie_spam = v[i..j].iter().filter(|x| x.1).count() as f64;
        let tie_ham = (j - i) as f64 - tie_spam;
        area += tie_spam * (ham_below + tie_ham / 2.0);
        ham_below += tie_ham;
        i = j;
    }
    if spam == 0.0 || ham == 0.0 {
        return f64::NAN;
    }
    area / (spam * ham)
}

/// The share of spam caught at the lowest threshold that flags at most `fp_share` of ham.
pub fn recall_at_fp(s: &Scored, fp_share: f64) -> f64 {
    let mut hams: Vec<f64> = s.iter().filter(|x| !x.1).map(|x| x.0).collect();
    hams.sort_by(|a, b| b.total_cmp(a));
    let allowed = (fp_share * hams.len() as f64).floor() as usize;
    // Flag strictly above the (allowed+1)-th highest ham score.
    let threshold = hams.get(allowed).copied().unwrap_or(f64::NEG_INFINITY);
    let spams: Vec<f64> = s.iter().filter(|x| x.1).map(|x| x.0).collect();
    spams.iter().filter(|&&x| x > threshold).count() as f64 / spams.len().max(1) as f64
}

/// Reliability of a probability: per band of width 0.1, how many messages and the share
/// that was spam; and how often it was confidently (p < 0.1 or p > 0.9) right and wrong.
pub fn reliability(s: &Scored) -> String {
    let mut bands = [(0usize, 0usize); 10];
    let (mut right, mut wrong) = (0, 0);
    for &(p, spam) in s {
        let b = ((p * 10.0) as usize).min(9);
        bands[b].0 += 1;
        bands[b].1 += usize::from(spam);
        if !(0.1..=0.9).contains(&p) {
            if (p > 0.9) == spam {
                right += 1;
            } else {
                wrong += 1;
            }
        }
    }
    let cells: Vec<String> = bands
        .iter()
        .map(|(n, sp)| match n {
            0 => "-".into(),
            _ => format!("{n}:{:.0}%", 100.0 * *sp as f64 / *n as f64),
        })
        .collect();
    format!(
        "confidently right {right}, wrong {wrong}; bands {}",
        cells.join(" ")
    )
}
