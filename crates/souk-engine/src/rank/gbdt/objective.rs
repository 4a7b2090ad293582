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
    NdcgEvaluator::new(data, k).mean(data, scores)
}

/// Mean DCG@k over the groups with a positive label, each row's gain times its weight and
/// no per-group normalisation (see `GbdtParams::eval_weighted`). `None` when no group has a
/// positive label.
pub fn mean_weighted_dcg(data: &Dataset, scores: &[f64], k: usize) -> Option<f64> {
    NdcgEvaluator::weighted(data, k).mean(data, scores)
}

/// [`mean_ndcg`] of one dataset under changing scores: per-row gains and per-group ideal
/// DCGs computed once. Each call costs a partial sort per group (the top k, then its order)
/// in parallel, and sums in group order so the result does not depend on the threads.
#[derive(Debug)]
pub(crate) struct NdcgEvaluator {
    k: usize,
    /// `1 / ideal DCG@k` per group; 0 for a group without a positive label.
    inverse_ideal: Vec<f64>,
    gains: Vec<f64>,
    discounts: Vec<f64>,
}

impl NdcgEvaluator {
    pub(crate) fn new(data: &Dataset, k: usize) -> Self {
        let inverse_ideal = data
            .groups()
            .map(|range| {
                let ideal = ideal_dcg_at(&data.labels()[range], k);
                if ideal > 0.0 {
                    1.0 / ideal
                } else {
                    0.0
                }
            })
            .collect();
        let largest = data.groups().map(|r| r.len()).max().unwrap_or(0);
        Self {
            k,
            inverse_ideal,
            gains: data.labels().iter().map(|&l| label_gain(l)).collect(),
            discounts: (0..largest).map(position_discount).collect(),
        }
    }

    /// Weighted DCG@k instead: each row's gain times its weight, every group with a
    /// positive label counted with the same scale (no per-group normalisation).
    pub(crate) fn weighted(data: &Dataset, k: usize) -> Self {
        let mut evaluator = Self::new(data, k);
        for (gain, weight) in evaluator.gains.iter_mut().zip(data.weights()) {
            *gain *= f64::from(*weight);
        }
        for inverse in &mut evaluator.inverse_ideal {
            if *inverse > 0.0 {
                *inverse = 1.0;
            }
        }
        evaluator
    }

    pub(crate) fn mean(&self, data: &Dataset, scores: &[f64]) -> Option<f64> {
        assert_eq!(scores.len(), data.n_rows(), "mean_ndcg: one score per row");
        let groups: Vec<_> = data.groups().enumerate().filter(|(q, _)| self.inverse_ideal[*q] > 0.0).collect();
        let per_group: Vec<f64> = groups
            .par_iter()
            .map_init(Vec::new, |order: &mut Vec<usize>, (q, range)| {
                let (scores, gains) = (&scores[range.clone()], &self.gains[range.clone()]);
                let n = scores.len();
                let k = if self.k == 0 { n } else { self.k.min(n) };
                order.clear();
                order.extend(0..n);
                // Descending score, ties in row order: a total order, so the top k and their
                // order are the same as a full stable sort's.
                let by_rank = |a: &usize, b: &usize| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b));
                if k < n {
                    order.select_nth_unstable_by(k, by_rank);
                }
                order[..k].sort_unstable_by(by_rank);
                let dcg: f64 = order[..k].iter().zip(&self.discounts).map(|(&i, d)| gains[i] * d).sum();
                dcg * self.inverse_ideal[*q]
            })
            .collect();
        (!per_group.is_empty()).then(|| per_group.iter().sum::<f64>() / per_group.len() as f64)
    }
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

/// Per-thread scratch of the lambda computation: the group in rank order, one array per
/// quantity so the pair loop streams through memory in lanes.
#[derive(Default)]
struct GroupScratch {
    order: Vec<usize>,
    score: Vec<f64>,
    gain: Vec<f64>,
    weight: Vec<f64>,
    /// `e^(s − c)` and `e^(c − s)` around the group's middle score `c`.
    up: Vec<f64>,
    down: Vec<f64>,
    lambdas: Vec<f64>,
    hessians: Vec<f64>,
}

/// Pairs are processed in lanes of this many, with one accumulator per lane: the compiler
/// turns the lanes into SIMD, and the sums still run in a fixed order (deterministic).
const LANES: usize = 4;

/// One row of a group at its rank, as the pair loop sees it.
#[derive(Clone, Copy)]
struct Row {
    score: f64,
    gain: f64,
    weight: f64,
    up: f64,
    down: f64,
    discount: f64,
}

/// The lambda and hessian a pair (a above b in the ranking) adds: returns `(λ signed for
/// b, hessian)`; `a` gets `−λ` and the same hessian. Equal labels have equal gains and
/// give 0, so the caller needs no branch to skip them. `NORM`: LightGBM's division of
/// |ΔNDCG| by `0.01 + |Δs|`, on when the group's scores are not all equal.
///
/// With ρ = 1 / (1 + e^(s_high − s_low)), the RankNet probability that the pair is in the
/// wrong order: `λ = ρ |ΔNDCG| w / (0.01 + |Δs|)` and `hessian = λ (1 − ρ)`, computed with
/// one division (the pair loop's bottleneck).
#[inline(always)]
fn pair<const NORM: bool>(a: Row, b: Row, inverse_max_dcg: f64) -> (f64, f64) {
    let a_high = a.gain > b.gain;
    let sign = if a_high { 1.0 } else { -1.0 };
    // e^(s_high − s_low): one product instead of one `exp`.
    let ratio = if a_high { a.up * b.down } else { b.up * a.down };
    // Positions i < j, and the discount falls with the position.
    let delta_ndcg = (a.gain - b.gain).abs() * (a.discount - b.discount) * inverse_max_dcg;
    let spread = if NORM { 0.01 + (a.score - b.score).abs() } else { 1.0 };
    let q = 1.0 / ((1.0 + ratio) * spread);
    let rho = q * spread;
    let lambda = delta_ndcg * (a.weight * b.weight) * q;
    (sign * lambda, lambda * (1.0 - rho))
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
        let s = scratch;
        s.order.clear();
        s.order.extend(0..n);
        s.order.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        // Exact while the scores span less than 700; beyond, the pair's ρ is 0 or 1 anyway.
        let middle = (scores[s.order[0]] + scores[s.order[n - 1]]) / 2.0;
        let centred = |i: usize| (scores[i] - middle).clamp(-350.0, 350.0);
        s.score.clear();
        s.score.extend(s.order.iter().map(|&i| scores[i]));
        s.gain.clear();
        s.gain.extend(s.order.iter().map(|&i| gains[i]));
        s.weight.clear();
        s.weight.extend(s.order.iter().map(|&i| f64::from(weights[i])));
        s.up.clear();
        s.up.extend(s.order.iter().map(|&i| centred(i).exp()));
        s.down.clear();
        s.down.extend(s.up.iter().map(|u| 1.0 / u));
        s.lambdas.clear();
        s.lambdas.resize(n, 0.0);
        s.hessians.clear();
        s.hessians.resize(n, 0.0);
        let discounts = &self.discounts[..n];
        let top = if self.truncation == 0 { n } else { self.truncation.min(n) };
        let sum_lambdas = if s.score[0] != s.score[n - 1] {
            pairs::<true>(s, discounts, top, inverse_max_dcg)
        } else {
            pairs::<false>(s, discounts, top, inverse_max_dcg)
        };
        let scale = if sum_lambdas > 0.0 { (1.0 + sum_lambdas).log2() / sum_lambdas } else { 1.0 };
        for (rank, &i) in s.order.iter().enumerate() {
            gradients[i] = (s.lambdas[rank] * scale) as f32;
            hessians[i] = (s.hessians[rank] * scale) as f32;
        }
    }
}

/// Accumulate the lambdas and hessians of every pair with at least one row in the top
/// `top` into `s.lambdas` and `s.hessians` (by rank); returns `Σ|λ|` over both rows of
/// every pair.
fn pairs<const NORM: bool>(s: &mut GroupScratch, discounts: &[f64], top: usize, inverse_max_dcg: f64) -> f64 {
    let n = s.score.len();
    let mut sum_lambdas = [0.0; LANES];
    for i in 0..top.min(n - 1) {
        let a = Row {
            score: s.score[i],
            gain: s.gain[i],
            weight: s.weight[i],
            up: s.up[i],
            down: s.down[i],
            discount: discounts[i],
        };
        let (mut lambda_a, mut hessian_a) = ([0.0; LANES], [0.0; LANES]);
        let tail = i + 1..n;
        let (score, gain, weight) = (&s.score[tail.clone()], &s.gain[tail.clone()], &s.weight[tail.clone()]);
        let (up, down, discount) = (&s.up[tail.clone()], &s.down[tail.clone()], &discounts[tail.clone()]);
        let (lambdas, hessians) = (&mut s.lambdas[tail.clone()], &mut s.hessians[tail]);
        let b_at = |k: usize| Row {
            score: score[k],
            gain: gain[k],
            weight: weight[k],
            up: up[k],
            down: down[k],
            discount: discount[k],
        };
        for k in 0..score.len() {
            let (lambda, hessian) = pair::<NORM>(a, b_at(k), inverse_max_dcg);
            let lane = k % LANES;
            lambda_a[lane] -= lambda;
            lambdas[k] += lambda;
            hessian_a[lane] += hessian;
            hessians[k] += hessian;
            sum_lambdas[lane] += 2.0 * lambda.abs();
        }
        s.lambdas[i] += lambda_a.iter().sum::<f64>();
        s.hessians[i] += hessian_a.iter().sum::<f64>();
    }
    sum_lambdas.iter().sum()
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

    #[test]
    fn weighted_dcg_multiplies_gains_by_weights_and_does_not_normalise() {
        // Two groups: [2, 0, 1] with weights [1, 1, 4], and [0, 0] (no positive label).
        let data = Dataset::new(vec!["x".into()], vec![0.0; 5], vec![2.0, 0.0, 1.0, 0.0, 0.0])
            .unwrap()
            .with_weights(vec![1.0, 1.0, 4.0, 1.0, 1.0])
            .unwrap()
            .with_groups(vec![0, 3, 5])
            .unwrap();
        // Scores order the first group as rows 2, 0, 1.
        let scores = [2.0, 1.0, 3.0, 0.0, 0.0];
        let expected = 4.0 * 1.0 / 2f64.log2() + 3.0 * 1.0 / 3f64.log2();
        let got = mean_weighted_dcg(&data, &scores, 10).unwrap();
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
        // NDCG of the same order divides by the group's own ideal instead.
        let ndcg = mean_ndcg(&data, &scores, 10).unwrap();
        let ideal = 3.0 / 2f64.log2() + 1.0 / 3f64.log2();
        assert!((ndcg - (1.0 / 2f64.log2() + 3.0 / 3f64.log2()) / ideal).abs() < 1e-12, "{ndcg}");
    }

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

    /// LambdaRank as the module docs state it, one pair at a time, one `exp` per pair: the
    /// reference for the lane-wise, division-sparing loop.
    fn reference_lambdas(labels: &[f32], scores: &[f64], weights: &[f32], truncation: usize) -> (Vec<f64>, Vec<f64>) {
        let n = labels.len();
        let (mut lambdas, mut hessians) = (vec![0.0; n], vec![0.0; n]);
        let ideal = ideal_dcg_at(labels, truncation);
        if ideal == 0.0 {
            return (lambdas, hessians);
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        let spread = scores[order[0]] != scores[order[n - 1]];
        let top = if truncation == 0 { n } else { truncation.min(n) };
        let mut sum = 0.0;
        for i in 0..top.min(n.saturating_sub(1)) {
            for j in i + 1..n {
                let (a, b) = (order[i], order[j]);
                if labels[a] == labels[b] {
                    continue;
                }
                let (high, low) = if labels[a] > labels[b] { (a, b) } else { (b, a) };
                let delta_score = scores[high] - scores[low];
                let mut delta_ndcg = (label_gain(labels[high]) - label_gain(labels[low])).abs()
                    * (position_discount(i) - position_discount(j)).abs()
                    / ideal;
                if spread {
                    delta_ndcg /= 0.01 + delta_score.abs();
                }
                let rho = 1.0 / (1.0 + delta_score.exp());
                let weight = f64::from(weights[high]) * f64::from(weights[low]);
                lambdas[high] -= rho * delta_ndcg * weight;
                lambdas[low] += rho * delta_ndcg * weight;
                hessians[high] += rho * (1.0 - rho) * delta_ndcg * weight;
                hessians[low] += rho * (1.0 - rho) * delta_ndcg * weight;
                sum += 2.0 * rho * delta_ndcg * weight;
            }
        }
        let scale = if sum > 0.0 { (1.0 + sum).log2() / sum } else { 1.0 };
        (lambdas.iter().map(|l| l * scale).collect(), hessians.iter().map(|h| h * scale).collect())
    }

    proptest! {
        #[test]
        fn lambdas_match_the_reference(
            rows in proptest::collection::vec(((0u8..5).prop_map(f32::from), prop_oneof![(-3i8..3).prop_map(f64::from), -5.0..5.0f64], 0.0..3.0f32), 1..70),
            truncation in 0usize..12,
        ) {
            let labels: Vec<f32> = rows.iter().map(|r| r.0).collect();
            let scores: Vec<f64> = rows.iter().map(|r| r.1).collect();
            let weights: Vec<f32> = rows.iter().map(|r| r.2).collect();
            let (g, h) = lambdas(&labels, &scores, &weights, truncation);
            let (expected_g, expected_h) = reference_lambdas(&labels, &scores, &weights, truncation);
            for i in 0..labels.len() {
                prop_assert!((f64::from(g[i]) - expected_g[i]).abs() <= 1e-5 * (1.0 + expected_g[i].abs()), "gradient {i}: {} vs {}", g[i], expected_g[i]);
                prop_assert!((f64::from(h[i]) - expected_h[i]).abs() <= 1e-5 * (1.0 + expected_h[i].abs()), "hessian {i}: {} vs {}", h[i], expected_h[i]);
            }
        }

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
