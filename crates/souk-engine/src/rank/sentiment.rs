//! Review sentiment from text: a logistic-regression head over the vectors of a pre-trained
//! sentence encoder (the search embedder), trained on labelled reviews.
//!
//! The encoder is pre-trained and frozen; the head learns which directions of its space say
//! "pleased" and which "disappointed". Training is Newton's method on the L2-regularised log
//! loss (iteratively reweighted least squares): each step solves `(XᵀSX + λI) δ = ∇` with a
//! Cholesky factor (faer), where `S` holds `p(1 − p)` per review; the bias is not
//! regularised. A handful of steps converge for a 384-wide encoder, so no learning rate is
//! tuned. [`SentimentHead::fit_tuned`] picks `λ` by log loss on a seeded validation slice of
//! the training reviews, then refits on all of them.
//!
//! A head belongs to the encoder it was trained on: its artifact names the encoder, and
//! [`SentimentHead::score`] refuses a vector of another width.

use faer::linalg::matmul::matmul;
use faer::linalg::solvers::Solve;
use faer::{Accum, Mat, Par, Side};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Regularisation strengths tried by [`SentimentHead::fit_tuned`] (on the summed log loss).
pub const L2_GRID: [f64; 5] = [0.1, 1.0, 10.0, 100.0, 1000.0];
/// Share of the training reviews held back to choose `λ`.
const VALIDATION_SHARE: f64 = 0.1;
const MAX_STEPS: usize = 30;
/// Newton stops when no coefficient moves more than this.
const TOLERANCE: f64 = 1e-7;

/// A trained head: `p(positive | v) = σ(w·v + b)` for an encoder's vector `v`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentimentHead {
    /// The encoder whose vectors the head reads (its model id).
    pub encoder: String,
    pub weights: Vec<f32>,
    pub bias: f32,
    /// The regularisation it was trained with.
    pub l2: f64,
    /// Newton steps taken.
    pub steps: usize,
}

/// One λ of the grid with the validation figures it gave.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GridPoint {
    pub l2: f64,
    pub log_loss: f64,
    pub accuracy: f64,
}

impl SentimentHead {
    /// Fit the head on `vectors` (one per review, all of one width) and their labels
    /// (`true`: positive) with regularisation `l2`.
    pub fn fit(encoder: &str, vectors: &[Vec<f32>], labels: &[bool], l2: f64) -> Result<Self> {
        let dim = check_inputs(vectors, labels)?;
        if !(l2.is_finite() && l2 > 0.0) {
            return Err(Error::Internal(format!("the sentiment head needs a positive l2, got {l2}")));
        }
        let n = vectors.len();
        let width = dim + 1; // the last column is the bias
        let x = Mat::<f64>::from_fn(n, width, |i, j| if j < dim { f64::from(vectors[i][j]) } else { 1.0 });
        let mut theta = vec![0.0f64; width];
        let mut steps = 0;
        for _ in 0..MAX_STEPS {
            steps += 1;
            let mut gradient = Mat::<f64>::zeros(width, 1);
            let mut scaled = Mat::<f64>::zeros(n, width);
            for i in 0..n {
                let z: f64 = (0..width).map(|j| x[(i, j)] * theta[j]).sum();
                let p = sigmoid(z);
                let residual = p - if labels[i] { 1.0 } else { 0.0 };
                let root = (p * (1.0 - p)).max(1e-12).sqrt();
                for j in 0..width {
                    gradient[(j, 0)] += residual * x[(i, j)];
                    scaled[(i, j)] = root * x[(i, j)];
                }
            }
            let mut hessian = Mat::<f64>::zeros(width, width);
            matmul(hessian.as_mut(), Accum::Replace, scaled.transpose(), scaled.as_ref(), 1.0, Par::rayon(0));
            for j in 0..width {
                let penalty = if j < dim { l2 } else { 1e-9 };
                gradient[(j, 0)] += penalty * theta[j];
                hessian[(j, j)] += penalty;
            }
            let factor = hessian
                .llt(Side::Lower)
                .map_err(|e| Error::Internal(format!("the sentiment head's Newton system is singular: {e:?}")))?;
            let step = factor.solve(&gradient);
            let mut largest = 0.0f64;
            for j in 0..width {
                theta[j] -= step[(j, 0)];
                largest = largest.max(step[(j, 0)].abs());
            }
            if !largest.is_finite() {
                return Err(Error::Internal("the sentiment head diverged".into()));
            }
            if largest < TOLERANCE {
                break;
            }
        }
        Ok(SentimentHead {
            encoder: encoder.to_string(),
            weights: theta[..dim].iter().map(|&w| w as f32).collect(),
            bias: theta[dim] as f32,
            l2,
            steps,
        })
    }

    /// Choose `λ` from [`L2_GRID`] by log loss on a seeded, label-stratified validation
    /// slice of the training reviews, then fit on all of them. Returns the head and the
    /// grid's validation figures.
    pub fn fit_tuned(
        encoder: &str,
        vectors: &[Vec<f32>],
        labels: &[bool],
        seed: u64,
    ) -> Result<(Self, Vec<GridPoint>)> {
        check_inputs(vectors, labels)?;
        let (fit_rows, held) = stratified_split(labels, VALIDATION_SHARE, seed);
        if held.is_empty() || fit_rows.is_empty() {
            return Err(Error::Internal("too few labelled reviews to choose the regularisation".into()));
        }
        let pick = |rows: &[usize]| -> (Vec<Vec<f32>>, Vec<bool>) {
            (rows.iter().map(|&i| vectors[i].clone()).collect(), rows.iter().map(|&i| labels[i]).collect())
        };
        let (fit_x, fit_y) = pick(&fit_rows);
        let (held_x, held_y) = pick(&held);
        let mut grid = Vec::with_capacity(L2_GRID.len());
        for l2 in L2_GRID {
            let head = SentimentHead::fit(encoder, &fit_x, &fit_y, l2)?;
            let probabilities: Vec<f64> = held_x.iter().map(|v| f64::from(head.probability(v))).collect();
            let log_loss = crate::rank::metrics::log_loss(&probabilities, &held_y).unwrap_or(f64::INFINITY);
            grid.push(GridPoint { l2, log_loss, accuracy: accuracy(&probabilities, &held_y) });
        }
        let best = grid.iter().min_by(|a, b| a.log_loss.total_cmp(&b.log_loss)).map_or(1.0, |g| g.l2);
        Ok((SentimentHead::fit(encoder, vectors, labels, best)?, grid))
    }

    /// Probability that the text behind `vector` is positive.
    pub fn probability(&self, vector: &[f32]) -> f32 {
        let z: f32 = self.weights.iter().zip(vector).map(|(w, x)| w * x).sum::<f32>() + self.bias;
        sigmoid(f64::from(z)) as f32
    }

    /// Sentiment on −1 (negative) … 1 (positive): `2p − 1`; an error for a vector of
    /// another width than the head's encoder.
    pub fn score(&self, vector: &[f32]) -> Result<f32> {
        if vector.len() != self.weights.len() {
            return Err(Error::Internal(format!(
                "the sentiment head reads {}-wide vectors of {}, got {}",
                self.weights.len(),
                self.encoder,
                vector.len()
            )));
        }
        Ok(2.0 * self.probability(vector) - 1.0)
    }
}

/// Share of `probabilities` on the right side of one half.
pub fn accuracy(probabilities: &[f64], labels: &[bool]) -> f64 {
    if labels.is_empty() {
        return f64::NAN;
    }
    let right = probabilities.iter().zip(labels).filter(|(p, &y)| (**p >= 0.5) == y).count();
    right as f64 / labels.len() as f64
}

/// Rows split into (kept, held out) with `share` of each label held out, seeded.
pub fn stratified_split(labels: &[bool], share: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut kept, mut held) = (Vec::new(), Vec::new());
    for class in [false, true] {
        let mut rows: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        rows.shuffle(&mut rng);
        let n_held = (rows.len() as f64 * share).round() as usize;
        held.extend_from_slice(&rows[..n_held]);
        kept.extend_from_slice(&rows[n_held..]);
    }
    kept.sort_unstable();
    held.sort_unstable();
    (kept, held)
}

fn check_inputs(vectors: &[Vec<f32>], labels: &[bool]) -> Result<usize> {
    if vectors.len() != labels.len() {
        return Err(Error::Internal(format!("{} vectors for {} labels", vectors.len(), labels.len())));
    }
    let dim = vectors.first().map_or(0, Vec::len);
    if dim == 0 || vectors.iter().any(|v| v.len() != dim || v.iter().any(|x| !x.is_finite())) {
        return Err(Error::Internal("the sentiment head needs finite vectors of one non-zero width".into()));
    }
    if !labels.contains(&true) || !labels.contains(&false) {
        return Err(Error::Internal("the sentiment head needs positive and negative reviews".into()));
    }
    Ok(dim)
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;

    /// Vectors whose label is a noisy linear rule along a hidden direction.
    fn noisy(n: usize, dim: usize, seed: u64) -> (Vec<Vec<f32>>, Vec<bool>, Vec<f32>) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let direction: Vec<f32> = (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let mut vectors = Vec::new();
        let mut labels = Vec::new();
        for _ in 0..n {
            let v: Vec<f32> = (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let z: f32 = v.iter().zip(&direction).map(|(a, b)| a * b).sum::<f32>() + 0.3;
            labels.push(rng.gen::<f64>() < sigmoid(f64::from(3.0 * z)));
            vectors.push(v);
        }
        (vectors, labels, direction)
    }

    #[test]
    fn the_head_learns_a_linear_rule_and_beats_chance_on_new_vectors() {
        let (x, y, direction) = noisy(3000, 8, 1);
        let head = SentimentHead::fit("enc", &x, &y, 1.0).unwrap();
        assert!(head.steps < MAX_STEPS, "Newton converges: {} steps", head.steps);
        let cosine = head.weights.iter().zip(&direction).map(|(a, b)| a * b).sum::<f32>()
            / (head.weights.iter().map(|a| a * a).sum::<f32>().sqrt()
                * direction.iter().map(|a| a * a).sum::<f32>().sqrt());
        assert!(cosine > 0.95, "weights point along the hidden direction: cosine {cosine}");
        let (test_x, test_y, _) = noisy(2000, 8, 1);
        let p: Vec<f64> = test_x.iter().map(|v| f64::from(head.probability(v))).collect();
        assert!(accuracy(&p, &test_y) > 0.75, "accuracy {}", accuracy(&p, &test_y));
        assert!(head.bias > 0.0, "the positive offset is learned unregularised: {}", head.bias);
        let score = head.score(&x[0]).unwrap();
        assert!((-1.0..=1.0).contains(&score));
        assert!(head.score(&[1.0, 2.0]).is_err(), "a vector of another width is refused");
    }

    #[test]
    fn stronger_regularisation_shrinks_the_weights() {
        let (x, y, _) = noisy(500, 6, 2);
        let norm = |h: &SentimentHead| h.weights.iter().map(|w| w * w).sum::<f32>();
        let loose = SentimentHead::fit("enc", &x, &y, 0.1).unwrap();
        let tight = SentimentHead::fit("enc", &x, &y, 1000.0).unwrap();
        assert!(norm(&tight) < norm(&loose) * 0.5, "{} vs {}", norm(&tight), norm(&loose));
    }

    #[test]
    fn tuning_reports_every_grid_point_and_refits_with_the_best() {
        let (x, y, _) = noisy(1500, 8, 3);
        let (head, grid) = SentimentHead::fit_tuned("enc", &x, &y, 7).unwrap();
        assert_eq!(grid.len(), L2_GRID.len());
        let best = grid.iter().min_by(|a, b| a.log_loss.total_cmp(&b.log_loss)).unwrap();
        assert_eq!(head.l2, best.l2);
        assert!(grid.iter().all(|g| g.accuracy > 0.5 && g.log_loss.is_finite()));
        let again = SentimentHead::fit_tuned("enc", &x, &y, 7).unwrap().0;
        assert_eq!(head, again, "seeded");
    }

    #[test]
    fn bad_inputs_are_refused() {
        let v = vec![vec![1.0f32, 0.0], vec![0.0, 1.0]];
        assert!(SentimentHead::fit("e", &v, &[true, true], 1.0).is_err(), "one class");
        assert!(SentimentHead::fit("e", &v, &[true], 1.0).is_err(), "lengths differ");
        assert!(SentimentHead::fit("e", &[vec![1.0], vec![f32::NAN]], &[true, false], 1.0).is_err());
        assert!(SentimentHead::fit("e", &v, &[true, false], 0.0).is_err(), "l2 must be positive");
    }

    #[test]
    fn the_split_holds_out_a_share_of_each_label() {
        let labels: Vec<bool> = (0..100).map(|i| i % 4 == 0).collect();
        let (kept, held) = stratified_split(&labels, 0.2, 5);
        assert_eq!(kept.len() + held.len(), 100);
        assert_eq!(held.iter().filter(|&&i| labels[i]).count(), 5);
        assert_eq!(held.iter().filter(|&&i| !labels[i]).count(), 15);
        assert!(kept.iter().all(|i| !held.contains(i)));
        assert_eq!(stratified_split(&labels, 0.2, 5), (kept, held));
    }
}
