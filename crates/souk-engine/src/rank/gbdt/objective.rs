//! What boosting minimises: per-row first and second derivatives of the loss with respect to
//! the current scores, and the validation metrics that decide when to stop.
//!
//! **LambdaRank** (Burges 2010, "From RankNet to LambdaRank to LambdaMART: An Overview",
//! section 6, with the details of LightGBM's `lambdarank` so results are comparable): within
//! a group, every pair of rows with different labels of which at least one is in the current
//! top `truncation` contributes a RankNet gradient `ρ = 1 / (1 + exp(s_high − s_low))` scaled
//! by `|ΔNDCG|`, the change of NDCG@truncation if the two swapped places. Hessians are
//! `ρ (1 − ρ) |ΔNDCG|`. As in LightGBM, `|ΔNDCG|` is divided by `0.01 + |s_high − s_low|`
//! (pairs already far apart matter less), and a group's lambdas are rescaled by
//! `log2(1 + Σ|λ|) / Σ|λ|` so that groups with many pairs do not drown the others.
//! A pair's weight is the product of its rows' weights — as if a row of weight `w` appeared
//! `w` times; with inverse-propensity weights on clicked rows and 1 elsewhere it is the
//! unbiased LambdaMART estimator of Hu et al. 2019.
//!
//! **Binary**: weighted log loss of `σ(score)`; gradient `w (p − y)`, hessian `w p (1 − p)`.
//!
//! Cost of LambdaRank per iteration: a sort per group and `min(n, truncation) · n` pairs per
//! group of `n` rows, each one `exp`; groups run in parallel.

use rayon::prelude::*;

use super::dataset::Dataset;

/// Gain of a graded label: `2^label − 1` (so 0 is worth nothing and each grade doubles).
pub fn label_gain(label: f32) -> f64 {
    f64::from(label).exp2() - 1.0
}

/// The discount of a 0-based position: `1 / log2(position + 2)`.
pub fn position_discount(position: usize) -> f64 {
    1.0 / ((position + 2) as f64).log2()
}

/// DCG@k of labels listed in ranked order: `Σ_{i<k} (2^label_i − 1) / log2(i + 2)`;
/// `k = 0` means the whole list.
pub fn dcg_at(labels_in_ranked_order: &[f32], k: usize) -> f64 {
    let k = if k == 0 { labels_in_ranked_order.len() } else { k };
    labels_in_ranked_order.iter().take(k).enumerate().map(|(i, &l)| label_gain(l) * position_discount(i)).sum()
}

/// The best DCG@k any order of these labels reaches (labels in any order).
pub fn ideal_dcg_at(labels: &[f32], k: usize) -> f64 {
    let mut sorted = labels.to_vec();
    sorted.sort_unstable_by(|a, b| b.total_cmp(a));
    dcg_at(&sorted, k)
}

/// NDCG@k of labels listed in ranked order: DCG@k over the ideal DCG@k, with exponential
/// gain `2^label − 1` and discount `1 / log2(rank + 1)` (1-based rank). `None` when no
/// label is positive (the ideal DCG is 0 and NDCG is undefined); `k = 0` means the whole list.
pub fn ndcg_at(labels_in_ranked_order: &[f32], k: usize) -> Option<f64> {
    let ideal = ideal_dcg_at(labels_in_ranked_order, k);
    (ideal > 0.0).then(|| dcg_at(labels_in_ranked_order, k) / ideal)
}

/// Mean NDCG@k over the groups of `data` when each is ordered by `scores` (descending; ties
/// keep row order). Groups without a positive label are left out of the mean — they say
/// nothing about the ranking (LightGBM counts them as 1, which shifts the mean but not which
/// model is better). `None` when no group has a positive label.
pub fn mean_ndcg(data: &Dataset, scores: &[f64], k: usize) -> Option<f64> {
    assert_eq!(scores.len(), data.n_rows(), "mean_ndcg: one score per row");
    let groups: Vec<_> = data.groups().collect();
    let (sum, count) = groups
        .par_iter()
        .map_init(Vec::new, |ranked: &mut Vec<f32>, range| {
            let (labels, scores) = (&data.labels()[range.clone()], &scores[range.clone()]);
            let mut order: Vec<usize> = (0..labels.len()).collect();
            order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
            ranked.clear();
            ranked.extend(order.iter().map(|&i| labels[i]));
            ndcg_at(ranked, k).map_or((0.0, 0), |v| (v, 1))
        })
        .reduce(|| (0.0, 0usize), |a, b| (a.0 + b.0, a.1 + b.1));
    (count > 0).then(|| sum / count as f64)
}

/// Weighted mean log loss of `σ(score)` against labels in [0, 1] (computed from the scores
/// directly, so it stays finite however confident the model is). `None` when the weights
/// sum to 0.
pub fn binary_log_loss(data: &Dataset, scores: &[f64]) -> Option<f64> {
    assert_eq!(scores.len(), data.n_rows(), "binary_log_loss: one score per row");
    let (mut loss, mut total) = (0.0, 0.0);
    for ((&s, &y), &w) in scores.iter().zip(data.labels()).zip(data.weights()) {
        // −[y ln σ(s) + (1 − y) ln(1 − σ(s))] = softplus(s) − y s.
        let softplus = if s > 0.0 { s + (-s).exp().ln_1p() } else { s.exp().ln_1p() };
        loss += f64::from(w) * (softplus - f64::from(y) * s);
        total += f64::from(w);
    }
    (total > 0.0).then(|| loss / total)
}

pub(crate) fn sigmoid(score: f64) -> f64 {
    1.0 / (1.0 + (-score).exp())
}

/// The LambdaRank objective's per-dataset constants.
#[derive(Debug)]
pub(crate) struct LambdaRank {
    truncation: usize,
    /// `1 / ideal DCG@truncation` per group, 0 for a group without a positive label.
    inverse_max_dcg: Vec<f64>,
    /// `2^label − 1` per row.
    gains: Vec<f64>,
    /// `position_discount(i)` for every position of the largest group.
    discounts: Vec<f64>,
}

/// Per-thread scratch of the lambda computation.
#[derive(Default)]
struct GroupScratch {
    order: Vec<usize>,
    lambdas: Vec<f64>,
    hessians: Vec<f64>,
}

impl LambdaRank {
    pub(crate) fn new(data: &Dataset, truncation: usize) -> Self {
        let inverse_max_dcg = data
            .groups()
            .map(|range| {
                let ideal = ideal_dcg_at(&data.labels()[range], truncation);
                if ideal > 0.0 {
                    1.0 / ideal
                } else {
                    0.0
                }
            })
            .collect();
        let largest = data.groups().map(|r| r.len()).max().unwrap_or(0);
        Self {
            truncation,
            inverse_max_dcg,
            gains: data.labels().iter().map(|&l| label_gain(l)).collect(),
            discounts: (0..largest).map(position_discount).collect(),
        }
    }

    /// Write every row's gradient and hessian for the current `scores`.
    pub(crate) fn gradients(&self, data: &Dataset, scores: &[f64], gradients: &mut [f32], hessians: &mut [f32]) {
        // Cut the outputs into one disjoint slice per group so groups can run in parallel.
        let mut parts = Vec::with_capacity(data.n_groups());
        let (mut rest_g, mut rest_h) = (gradients, hessians);
        for (q, range) in data.groups().enumerate() {
            let (g, tail_g) = std::mem::take(&mut rest_g).split_at_mut(range.len());
            let (h, tail_h) = std::mem::take(&mut rest_h).split_at_mut(range.len());
            (rest_g, rest_h) = (tail_g, tail_h);
            parts.push((q, range, g, h));
        }
        parts.into_par_iter().for_each_init(GroupScratch::default, |scratch, (q, range, g, h)| {
            self.group_gradients(
                scratch,
                self.inverse_max_dcg[q],
                &scores[range.clone()],
                &data.labels()[range.clone()],
                &self.gains[range.clone()],
                &data.weights()[range],
                g,
                h,
            );
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn group_gradients(
        &self,
        scratch: &mut GroupScratch,
        inverse_max_dcg: f64,
        scores: &[f64],
        labels: &[f32],
        gains: &[f64],
        weights: &[f32],
        gradients: &mut [f32],
        hessians: &mut [f32],
    ) {
        let n = scores.len();
        gradients.fill(0.0);
        hessians.fill(0.0);
        if inverse_max_dcg == 0.0 || n < 2 {
            return;
        }
        let GroupScratch { order, lambdas, hessians: hess } = scratch;
        order.clear();
        order.extend(0..n);
        order.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        lambdas.clear();
        lambdas.resize(n, 0.0);
        hess.clear();
        hess.resize(n, 0.0);
        let spread = scores[order[0]] != scores[order[n - 1]];
        let top = if self.truncation == 0 { n } else { self.truncation.min(n) };
        let mut sum_lambdas = 0.0;
        for i in 0..top.min(n - 1) {
            let a = order[i];
            for (j, &b) in order.iter().enumerate().skip(i + 1) {
                if labels[a] == labels[b] {
                    continue;
                }
                let (high, low, high_rank, low_rank) = if labels[a] > labels[b] { (a, b, i, j) } else { (b, a, j, i) };
                let delta_score = scores[high] - scores[low];
                let paired_discount = (self.discounts[high_rank] - self.discounts[low_rank]).abs();
                let mut delta_ndcg = (gains[high] - gains[low]) * paired_discount * inverse_max_dcg;
                if spread {
                    delta_ndcg /= 0.01 + delta_score.abs();
                }
                let weight = f64::from(weights[high]) * f64::from(weights[low]);
                // ρ: the RankNet probability that the pair is in the wrong order.
                let rho = 1.0 / (1.0 + delta_score.exp());
                let lambda = rho * delta_ndcg * weight;
                let hessian = rho * (1.0 - rho) * delta_ndcg * weight;
                lambdas[high] -= lambda;
                lambdas[low] += lambda;
                hess[high] += hessian;
                hess[low] += hessian;
                sum_lambdas += 2.0 * lambda;
            }
        }
        let scale = if sum_lambdas > 0.0 { (1.0 + sum_lambdas).log2() / sum_lambdas } else { 1.0 };
        for i in 0..n {
            gradients[i] = (lambdas[i] * scale) as f32;
            hessians[i] = (hess[i] * scale) as f32;
        }
    }
}

/// Gradients of the weighted log loss.
pub(crate) fn binary_gradients(data: &Dataset, scores: &[f64], gradients: &mut [f32], hessians: &mut [f32]) {
    gradients
        .par_iter_mut()
        .zip(hessians.par_iter_mut())
        .zip(scores.par_iter().zip(data.labels().par_iter().zip(data.weights().par_iter())))
        .for_each(|((g, h), (&s, (&y, &w)))| {
            let p = sigmoid(s);
            *g = (f64::from(w) * (p - f64::from(y))) as f32;
            *h = (f64::from(w) * p * (1.0 - p)) as f32;
        });
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn group_data(labels: &[f32]) -> Dataset {
        Dataset::new(vec!["x".into()], vec![0.0; labels.len()], labels.to_vec()).unwrap()
    }

    #[test]
    fn ndcg_by_hand() {
        // Ranked labels 0, 2, 1: DCG = 3/log2(3) + 1/2; ideal = 3 + 1/log2(3).
        let dcg = 3.0 / 3f64.log2() + 0.5;
        let ideal = 3.0 + 1.0 / 3f64.log2();
        assert!((ndcg_at(&[0.0, 2.0, 1.0], 0).unwrap() - dcg / ideal).abs() < 1e-12);
        assert!((ndcg_at(&[0.0, 2.0, 1.0], 1).unwrap() - 0.0).abs() < 1e-12);
        assert_eq!(ndcg_at(&[2.0, 1.0, 0.0], 2), Some(1.0));
        assert_eq!(ndcg_at(&[0.0, 0.0], 10), None);
        assert_eq!(ndcg_at(&[], 10), None);
    }

    #[test]
    fn mean_ndcg_orders_by_score_and_skips_groups_without_relevance() {
        let data = group_data(&[0.0, 1.0, 0.0, 0.0, 3.0, 0.0]).with_groups(vec![0, 2, 4, 6]).unwrap();
        // Group 0 ranked right, group 1 has no relevant row, group 2 ranked wrong.
        let scores = [0.1, 0.9, 5.0, 4.0, -1.0, 1.0];
        let expected = (1.0 + 1.0 / 3f64.log2()) / 2.0;
        assert!((mean_ndcg(&data, &scores, 10).unwrap() - expected).abs() < 1e-12);
        // Ties keep row order: the relevant second row loses the tie.
        let tied = mean_ndcg(&group_data(&[0.0, 1.0]), &[1.0, 1.0], 10).unwrap();
        assert!((tied - 1.0 / 3f64.log2()).abs() < 1e-12);
        assert_eq!(mean_ndcg(&group_data(&[0.0, 0.0]), &[1.0, 2.0], 10), None);
    }

    #[test]
    fn log_loss_matches_the_definition_and_stays_finite() {
        let data = group_data(&[1.0, 0.0]).with_weights(vec![1.0, 3.0]).unwrap();
        let (p, q) = (sigmoid(0.5), sigmoid(-2.0));
        let expected = (-(p.ln()) - 3.0 * (1.0 - q).ln()) / 4.0;
        assert!((binary_log_loss(&data, &[0.5, -2.0]).unwrap() - expected).abs() < 1e-12);
        assert!(binary_log_loss(&data, &[-1000.0, 1000.0]).unwrap().is_finite());
    }

    fn lambdas(labels: &[f32], scores: &[f64], weights: &[f32], truncation: usize) -> (Vec<f32>, Vec<f32>) {
        let data = group_data(labels).with_weights(weights.to_vec()).unwrap();
        let objective = LambdaRank::new(&data, truncation);
        let (mut g, mut h) = (vec![9.0; labels.len()], vec![9.0; labels.len()]);
        objective.gradients(&data, scores, &mut g, &mut h);
        (g, h)
    }

    #[test]
    fn lambdas_push_relevant_rows_up_and_sum_to_zero() {
        let (g, h) = lambdas(&[0.0, 2.0, 1.0, 0.0], &[0.4, 0.1, 0.3, 0.2], &[1.0; 4], 0);
        assert!(g[1] < 0.0 && g[2] < 0.0, "relevant rows get negative gradients (scores go up): {g:?}");
        assert!(g[0] > 0.0 && g[3] > 0.0, "{g:?}");
        assert!(g[1] < g[2], "the more relevant row is pushed harder: {g:?}");
        assert!(g.iter().map(|&v| f64::from(v)).sum::<f64>().abs() < 1e-6, "{g:?}");
        assert!(h.iter().all(|&v| v > 0.0), "{h:?}");
        // No relevant row, or one row: nothing to learn, and the outputs are cleared.
        assert_eq!(lambdas(&[0.0, 0.0], &[1.0, 2.0], &[1.0; 2], 0), (vec![0.0; 2], vec![0.0; 2]));
        assert_eq!(lambdas(&[1.0], &[1.0], &[1.0], 0), (vec![0.0], vec![0.0]));
    }

    #[test]
    fn truncation_ignores_pairs_below_the_top() {
        // Row 0 is on top; rows 1 and 2 (labels 0 and 1) are below it, in the wrong order.
        // With truncation 1 their pair is skipped and row 2 only loses to row 0; without,
        // the push above row 1 wins.
        let labels = [2.0, 0.0, 1.0];
        let scores = [3.0, 2.0, 1.0];
        let (full, _) = lambdas(&labels, &scores, &[1.0; 3], 0);
        let (top1, _) = lambdas(&labels, &scores, &[1.0; 3], 1);
        assert!(full[2] < 0.0, "without truncation row 2 is pushed up: {full:?}");
        assert!(top1[2] > 0.0, "with truncation 1 row 2 is only pushed below row 0: {top1:?}");
    }

    #[test]
    fn pair_weights_scale_lambdas() {
        let labels = [1.0, 0.0];
        let scores = [0.0, 0.0];
        let (plain, _) = lambdas(&labels, &scores, &[1.0, 1.0], 0);
        let (heavy, _) = lambdas(&labels, &scores, &[3.0, 1.0], 0);
        let (zero, _) = lambdas(&labels, &scores, &[0.0, 1.0], 0);
        assert!(heavy[0] < plain[0], "{heavy:?} vs {plain:?}");
        assert_eq!(zero, [0.0, 0.0]);
    }

    #[test]
    fn binary_gradients_by_hand() {
        let data = group_data(&[1.0, 0.0]).with_weights(vec![2.0, 1.0]).unwrap();
        let (mut g, mut h) = (vec![0.0; 2], vec![0.0; 2]);
        binary_gradients(&data, &[0.0, 0.0], &mut g, &mut h);
        assert_eq!((g, h), (vec![-1.0, 0.5], vec![0.5, 0.25]));
    }

    proptest! {
        #[test]
        fn ndcg_is_one_for_the_ideal_order_and_within_bounds(
            labels in proptest::collection::vec((0u8..5).prop_map(f32::from), 1..30),
            k in 0usize..12,
        ) {
            let mut ideal = labels.clone();
            ideal.sort_by(|a, b| b.total_cmp(a));
            match ndcg_at(&labels, k) {
                None => prop_assert!(labels.iter().all(|&l| l == 0.0)),
                Some(v) => {
                    prop_assert!((0.0..=1.0 + 1e-12).contains(&v), "{v}");
                    prop_assert!((ndcg_at(&ideal, k).unwrap() - 1.0).abs() < 1e-12);
                }
            }
        }
    }
}
