//! Metrics of a click model on logged impressions: how well it orders clicks above
//! non-clicks (AUC), how good its probabilities are (log loss), and whether they are right
//! on average (calibration: mean predicted vs observed click rate).
//!
//! Owns the metric definitions only. Every function is exact and deterministic: AUC is the
//! Mann–Whitney statistic with tied scores given their average rank, so a model that scores
//! everything the same gets 0.5, not whatever order a sort happened to leave.
//!
//! Clicks are rare, so a test set of thousands of impressions may hold a dozen clicks and an
//! AUC measured on it is uncertain by ±0.1. Two tools say how much: [`auc_std_error`] for one
//! model, and [`paired_auc_bootstrap`] for the difference between two models on the same rows.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::error::{Result, ValidationError};

/// Probabilities are clipped to `[EPSILON, 1 - EPSILON]` in the log loss, so one confident
/// mistake costs a lot (−ln 1e-15 ≈ 34.5) but not infinity.
pub const LOG_LOSS_EPSILON: f64 = 1e-15;

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative, ties counting one half. `None` when either class is empty (undefined).
/// Scores must not be NaN. O(n log n).
pub fn auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    assert_eq!(scores.len(), labels.len(), "auc: one label per score");
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        // Ranks start+1 ..= end share their average.
        let average_rank = (start + 1 + end) as f64 / 2.0;
        let group_positives = order[start..end].iter().filter(|&&i| labels[i]).count();
        rank_sum += average_rank * group_positives as f64;
        start = end;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Standard error of an AUC from `positives` and `negatives` examples (Hanley & McNeil
/// 1982, equation 2). With a handful of clicks it is large, and results should say so.
pub fn auc_std_error(auc: f64, positives: usize, negatives: usize) -> f64 {
    let (p, n) = (positives as f64, negatives as f64);
    let q1 = auc / (2.0 - auc);
    let q2 = 2.0 * auc * auc / (1.0 + auc);
    let variance = (auc * (1.0 - auc) + (p - 1.0) * (q1 - auc * auc) + (n - 1.0) * (q2 - auc * auc)) / (p * n);
    variance.max(0.0).sqrt()
}

/// The AUC difference of two models scored on the same rows, with a percentile interval
/// from a paired bootstrap.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AucDifference {
    /// AUC of the first model minus AUC of the second, on the rows as given.
    pub difference: f64,
    /// 2.5th and 97.5th percentiles of the difference over the resamples.
    pub ci95: [f64; 2],
    /// Share of resamples where the first model's AUC is higher.
    pub share_first_better: f64,
    /// Resamples used (those holding both classes).
    pub samples: usize,
    pub seed: u64,
}

/// Paired bootstrap of `auc(first) - auc(second)`: draw the rows with replacement
/// `resamples` times (seeded), score both models on each draw, and take the percentiles.
/// Pairing matters: both models face the same rows, so the noise of which clicks happened
/// to land in the test set cancels. `None` when the rows hold one class only.
/// Cost: `resamples` × two sorts of the rows.
pub fn paired_auc_bootstrap(
    first: &[f64],
    second: &[f64],
    labels: &[bool],
    resamples: usize,
    seed: u64,
) -> Option<AucDifference> {
    assert!(first.len() == labels.len() && second.len() == labels.len(), "paired_auc_bootstrap: one label per score");
    let difference = auc(first, labels)? - auc(second, labels)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = labels.len();
    let (mut a, mut b, mut y) = (vec![0.0; n], vec![0.0; n], vec![false; n]);
    let mut differences = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for k in 0..n {
            let row = rng.gen_range(0..n);
            (a[k], b[k], y[k]) = (first[row], second[row], labels[row]);
        }
        if let (Some(x), Some(z)) = (auc(&a, &y), auc(&b, &y)) {
            differences.push(x - z);
        }
    }
    if differences.is_empty() {
        return None;
    }
    differences.sort_by(f64::total_cmp);
    let percentile =
        |q: f64| differences[((q * (differences.len() - 1) as f64).round() as usize).min(differences.len() - 1)];
    let better = differences.iter().filter(|&&d| d > 0.0).count();
    Some(AucDifference {
        difference,
        ci95: [percentile(0.025), percentile(0.975)],
        share_first_better: better as f64 / differences.len() as f64,
        samples: differences.len(),
        seed,
    })
}

/// Mean negative log-likelihood of the labels under the predicted probabilities (natural
/// log). `None` for no examples.
pub fn log_loss(probabilities: &[f64], labels: &[bool]) -> Option<f64> {
    assert_eq!(probabilities.len(), labels.len(), "log_loss: one label per probability");
    if probabilities.is_empty() {
        return None;
    }
    let total: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &label)| {
            let p = p.clamp(LOG_LOSS_EPSILON, 1.0 - LOG_LOSS_EPSILON);
            -(if label { p.ln() } else { (1.0 - p).ln() })
        })
        .sum();
    Some(total / probabilities.len() as f64)
}

/// The metrics `souk eval --protocol open-bandit` reports for a model on the test rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClickMetrics {
    /// `None` (JSON null) when the rows hold no click or only clicks.
    pub auc: Option<f64>,
    /// [`auc_std_error`] of `auc`.
    pub auc_std_error: Option<f64>,
    pub log_loss: f64,
    /// Mean predicted click probability.
    pub mean_predicted: f64,
    /// Clicks / rows.
    pub observed_ctr: f64,
}

impl ClickMetrics {
    /// All metrics at once, after checking the input: as many labels as predictions, at
    /// least one, every prediction a probability.
    pub fn compute(probabilities: &[f64], labels: &[bool]) -> Result<Self> {
        if probabilities.len() != labels.len() {
            return Err(ValidationError::new(
                "length_mismatch",
                "labels",
                format!("expected one label per prediction ({}), found {}", probabilities.len(), labels.len()),
            )
            .into());
        }
        if probabilities.is_empty() {
            return Err(
                ValidationError::new("empty", "predictions", "expected at least one prediction, found none").into()
            );
        }
        if let Some((i, p)) = probabilities.iter().enumerate().find(|(_, p)| !(0.0..=1.0).contains(*p)) {
            return Err(ValidationError::new(
                "invalid_probability",
                format!("predictions[{i}]"),
                format!("expected a probability in [0, 1], found {p}"),
            )
            .into());
        }
        let positives = labels.iter().filter(|&&l| l).count();
        let negatives = labels.len() - positives;
        let auc = auc(probabilities, labels);
        let count = probabilities.len() as f64;
        Ok(Self {
            auc,
            auc_std_error: auc.map(|a| auc_std_error(a, positives, negatives)),
            log_loss: log_loss(probabilities, labels).unwrap_or(f64::NAN),
            mean_predicted: probabilities.iter().sum::<f64>() / count,
            observed_ctr: positives as f64 / count,
        })
    }

    /// Mean predicted over observed click rate: 1 is calibrated, above 1 over-predicts.
    /// `None` when nothing was clicked.
    pub fn calibration_ratio(&self) -> Option<f64> {
        (self.observed_ctr > 0.0).then(|| self.mean_predicted / self.observed_ctr)
    }
}

/// DCG@k of candidates in `order` with `gains` by candidate (`1 / log2(rank + 1)` discount),
/// not normalised.
pub fn dcg_of_order(order: &[usize], gains: &[f64], k: usize) -> f64 {
    order.iter().take(k).enumerate().map(|(i, &c)| gains[c] / (i as f64 + 2.0).log2()).sum()
}

/// NDCG@k of `order` (indices into `gains`) against the ideal order of all gains, with
/// linear gains (the value of each item, e.g. its expected purchase value) and log2
/// discounts; 0 when no item has a gain.
pub fn ndcg_of_order(order: &[usize], gains: &[f64], k: usize) -> f64 {
    let dcg = dcg_of_order(order, gains, k);
    let mut ideal: Vec<f64> = gains.to_vec();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal.iter().take(k).enumerate().map(|(i, g)| g / (i as f64 + 2.0).log2()).sum();
    if idcg > 0.0 {
        dcg / idcg
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::Rng;

    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// The definition, pair by pair: the reference the fast AUC is checked against.
    fn pairwise_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
        let mut wins = 0.0;
        let mut pairs = 0.0;
        for (i, &li) in labels.iter().enumerate() {
            for (j, &lj) in labels.iter().enumerate() {
                if li && !lj {
                    pairs += 1.0;
                    wins += match scores[i].partial_cmp(&scores[j]) {
                        Some(std::cmp::Ordering::Greater) => 1.0,
                        Some(std::cmp::Ordering::Equal) => 0.5,
                        _ => 0.0,
                    };
                }
            }
        }
        (pairs > 0.0).then(|| wins / pairs)
    }

    #[test]
    fn auc_by_hand() {
        // Perfect, reversed, and the textbook case: positives at 0.9 and 0.4, negatives at
        // 0.8, 0.3, 0.2 → pairs won: (0.9 beats all 3) + (0.4 beats 0.3, 0.2) = 5 of 6.
        assert_eq!(auc(&[0.1, 0.9], &[false, true]), Some(1.0));
        assert_eq!(auc(&[0.9, 0.1], &[false, true]), Some(0.0));
        let scores = [0.9, 0.8, 0.4, 0.3, 0.2];
        let labels = [true, false, true, false, false];
        assert!(close(auc(&scores, &labels).unwrap(), 5.0 / 6.0));
    }

    #[test]
    fn tied_scores_share_their_average_rank() {
        // Every score equal: no information, exactly one half.
        assert_eq!(auc(&[0.3; 4], &[true, false, false, true]), Some(0.5));
        // Positive scores {0.5, 0.7}, negatives {0.5, 0.1}: the 0.5/0.5 pair is a tie (½),
        // 0.5 beats 0.1, 0.7 beats both → (0.5 + 1 + 1 + 1) / 4 = 0.875.
        let scores = [0.5, 0.7, 0.5, 0.1];
        let labels = [true, true, false, false];
        assert!(close(auc(&scores, &labels).unwrap(), 0.875));
    }

    #[test]
    fn auc_is_undefined_for_one_class() {
        assert_eq!(auc(&[0.1, 0.2], &[false, false]), None);
        assert_eq!(auc(&[0.1, 0.2], &[true, true]), None);
        assert_eq!(auc(&[], &[]), None);
    }

    #[test]
    fn log_loss_by_hand() {
        // −(ln 0.8 + ln(1 − 0.4)) / 2 = −(−0.22314355 − 0.51082562) / 2 = 0.36698459
        let loss = log_loss(&[0.8, 0.4], &[true, false]).unwrap();
        assert!((loss - 0.366_984_587_8).abs() < 1e-9, "{loss}");
        // A certain mistake is clipped, not infinite.
        let worst = log_loss(&[0.0], &[true]).unwrap();
        assert!((worst - (-LOG_LOSS_EPSILON.ln())).abs() < 1e-9, "{worst}");
        assert_eq!(log_loss(&[], &[]), None);
    }

    #[test]
    fn auc_std_error_by_hand() {
        // A = 0.75, 10 positives, 20 negatives: Q1 = 0.75 / 1.25 = 0.6,
        // Q2 = 2 · 0.5625 / 1.75 = 0.642857…; variance =
        // (0.1875 + 9 · (0.6 − 0.5625) + 19 · (0.642857… − 0.5625)) / 200 = 0.0102589…
        let se = auc_std_error(0.75, 10, 20);
        assert!((se - 0.010_258_928_571_428_f64.sqrt()).abs() < 1e-12, "{se}");
    }

    #[test]
    fn click_metrics_by_hand() {
        let m = ClickMetrics::compute(&[0.2, 0.1, 0.3, 0.2], &[true, false, false, false]).unwrap();
        assert!(close(m.mean_predicted, 0.2));
        assert!(close(m.observed_ctr, 0.25));
        assert!(close(m.calibration_ratio().unwrap(), 0.8));
        // Positive at 0.2; negatives 0.1 (won), 0.3 (lost), 0.2 (tie) → 1.5 / 3.
        assert!(close(m.auc.unwrap(), 0.5));
        assert!(m.auc_std_error.unwrap() > 0.0);
    }

    #[test]
    fn click_metrics_refuse_bad_input() {
        let error = ClickMetrics::compute(&[0.5, 1.5], &[true, false]).unwrap_err();
        assert!(error.to_string().contains("predictions[1]: expected a probability in [0, 1], found 1.5"), "{error}");
        let error = ClickMetrics::compute(&[f64::NAN], &[true]).unwrap_err();
        assert!(error.to_string().contains("found NaN"), "{error}");
        assert!(ClickMetrics::compute(&[0.5], &[true, false]).is_err());
        assert!(ClickMetrics::compute(&[], &[]).is_err());
        let all_clicked = ClickMetrics::compute(&[0.5], &[true]).unwrap();
        assert_eq!((all_clicked.auc, all_clicked.auc_std_error), (None, None));
    }

    #[test]
    fn paired_bootstrap_by_construction() {
        let labels = [true, false, true, false, false, true, false, false];
        let good = [0.9, 0.1, 0.8, 0.2, 0.3, 0.7, 0.4, 0.35];
        let reversed: Vec<f64> = good.iter().map(|s| 1.0 - s).collect();
        // Perfect against reversed: every resample with both classes differs by exactly 1.
        let d = paired_auc_bootstrap(&good, &reversed, &labels, 200, 1).unwrap();
        assert_eq!((d.difference, d.ci95, d.share_first_better), (1.0, [1.0, 1.0], 1.0));
        assert!(d.samples > 150 && d.samples <= 200, "{}", d.samples);
        // A model against itself: no difference, ever.
        let same = paired_auc_bootstrap(&good, &good, &labels, 200, 1).unwrap();
        assert_eq!((same.difference, same.ci95, same.share_first_better), (0.0, [0.0, 0.0], 0.0));
        // Deterministic for a seed; one class only is undefined.
        assert_eq!(
            paired_auc_bootstrap(&good, &reversed, &labels, 50, 9),
            paired_auc_bootstrap(&good, &reversed, &labels, 50, 9)
        );
        assert_eq!(paired_auc_bootstrap(&[0.1, 0.2], &[0.2, 0.1], &[false, false], 10, 1), None);
    }

    #[test]
    fn paired_bootstrap_interval_covers_noise_and_excludes_a_real_gap() {
        // 400 rows, 40 positives. `informed` ranks positives higher with noise; `coin` is noise.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let labels: Vec<bool> = (0..400).map(|k| k % 10 == 0).collect();
        let informed: Vec<f64> = labels.iter().map(|&l| rng.gen::<f64>() + if l { 0.6 } else { 0.0 }).collect();
        let coin: Vec<f64> = labels.iter().map(|_| rng.gen::<f64>()).collect();
        let other_coin: Vec<f64> = labels.iter().map(|_| rng.gen::<f64>()).collect();
        let gap = paired_auc_bootstrap(&informed, &coin, &labels, 300, 4).unwrap();
        assert!(gap.ci95[0] > 0.1 && gap.share_first_better > 0.99, "{gap:?}");
        let noise = paired_auc_bootstrap(&coin, &other_coin, &labels, 300, 4).unwrap();
        assert!(noise.ci95[0] < noise.difference && noise.difference < noise.ci95[1], "{noise:?}");
        assert!(noise.ci95[1] - noise.ci95[0] > 0.1, "40 positives cannot pin an AUC difference: {noise:?}");
    }

    proptest! {
        #[test]
        fn auc_matches_the_pairwise_definition(
            rows in proptest::collection::vec((0u8..6, any::<bool>()), 0..60)
        ) {
            // Scores from a small set, so ties are common.
            let scores: Vec<f64> = rows.iter().map(|(s, _)| f64::from(*s) / 5.0).collect();
            let labels: Vec<bool> = rows.iter().map(|(_, l)| *l).collect();
            let fast = auc(&scores, &labels);
            let slow = pairwise_auc(&scores, &labels);
            prop_assert_eq!(fast.is_some(), slow.is_some());
            if let (Some(a), Some(b)) = (fast, slow) {
                prop_assert!((a - b).abs() < 1e-9, "{} vs {}", a, b);
            }
        }

        #[test]
        fn log_loss_matches_the_plain_sum(
            rows in proptest::collection::vec((0.001f64..0.999, any::<bool>()), 1..40)
        ) {
            let p: Vec<f64> = rows.iter().map(|r| r.0).collect();
            let y: Vec<bool> = rows.iter().map(|r| r.1).collect();
            let mut total = 0.0;
            for (p, y) in p.iter().zip(&y) {
                total -= if *y { p.ln() } else { (1.0 - p).ln() };
            }
            prop_assert!((log_loss(&p, &y).unwrap() - total / p.len() as f64).abs() < 1e-9);
        }
    }

    #[test]
    fn ndcg_is_one_for_the_ideal_order_and_less_otherwise() {
        let gains = [0.0, 3.0, 1.0];
        assert_eq!(ndcg_of_order(&[1, 2, 0], &gains, 10), 1.0);
        let swapped = ndcg_of_order(&[2, 1, 0], &gains, 10);
        let expected = (1.0 + 3.0 / 3f64.log2()) / (3.0 + 1.0 / 3f64.log2());
        assert!((swapped - expected).abs() < 1e-12);
        assert_eq!(ndcg_of_order(&[0], &[0.0], 10), 0.0);
    }
}
