//! Implicit-feedback alternating least squares (Hu, Koren & Volinsky 2008, "Collaborative
//! Filtering for Implicit Feedback Datasets"), solved with the conjugate-gradient method of
//! Takács, Pilászy & Tikk 2011 ("Applications of the conjugate gradient method for
//! implicit feedback collaborative filtering").
//!
//! Owns the factor model: training, scoring known users, folding in new ones. Every
//! (user, item) pair is an observation with preference `p = 1` if the user interacted and 0
//! otherwise, trusted with confidence `c = 1 + α·g(r)` (`g(r) = r` or `ln(1 + r/ε)`,
//! Hu et al. eq. 6/7); the loss is `Σ_{u,i} c_ui (p_ui − x_uᵀy_i)² + λ(Σ‖x_u‖² + Σ‖y_i‖²)`
//! (eq. 3). f32 throughout.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::als_cg::HalfStep;
use super::artifact::{Array, Artifact};
use super::data::Interactions;
use super::kernels::{check_range, dot, invalid, map_values};
use super::Recommender;
use crate::Result;

/// Parameters of [`train`]. Tuning grid used by the registry: `factors ∈ {64, 128}` ×
/// `regularization ∈ {1, 10, 25, 50}` × `alpha ∈ {1, 10}` (MovieLens-100K peaks near
/// λ = 20–30, α = 1–2; LastFM near λ = 50, α = 10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlsParams {
    /// Latent dimension `f`, in 1..=1024.
    pub factors: usize,
    /// `λ`, the L2 penalty on every factor vector (not scaled by row counts). ≥ 0.
    pub regularization: f32,
    /// `α` in the confidence `c = 1 + α·g(r)`. ≥ 0.
    pub alpha: f32,
    /// Use `g(r) = ln(1 + r/ε)` (Hu et al. eq. 7), for weights with a long tail such as
    /// play counts, instead of `g(r) = r`.
    pub log_scaling: bool,
    /// `ε` of the log scaling. > 0.
    pub epsilon: f32,
    /// Alternations (one user half-step and one item half-step each), at most 1000.
    pub iterations: usize,
    /// Conjugate-gradient steps per row and half-step, warm-started from the previous
    /// factors (Takács et al. use 2–4; `implicit` defaults to 3). In 1..=64.
    pub cg_steps: usize,
    /// Seed of the initial factors: the same seed and data give the same model.
    pub seed: u64,
}

impl Default for AlsParams {
    fn default() -> Self {
        Self {
            factors: 64,
            // The best of the registry grid on MovieLens-100K (validation split).
            regularization: 10.0,
            alpha: 1.0,
            log_scaling: false,
            epsilon: 1.0,
            iterations: 15,
            cg_steps: 3,
            seed: 42,
        }
    }
}

impl AlsParams {
    pub fn validate(&self) -> Result<()> {
        if !(1..=1024).contains(&self.factors) {
            return Err(invalid("als.factors", format!("expected 1..=1024, found {}", self.factors)));
        }
        if self.iterations > 1000 {
            return Err(invalid("als.iterations", format!("expected at most 1000, found {}", self.iterations)));
        }
        if !(1..=64).contains(&self.cg_steps) {
            return Err(invalid("als.cg_steps", format!("expected 1..=64, found {}", self.cg_steps)));
        }
        check_range("als.regularization", self.regularization, 0.0, f32::MAX)?;
        check_range("als.alpha", self.alpha, 0.0, f32::MAX)?;
        check_range("als.epsilon", self.epsilon, f32::MIN_POSITIVE, f32::MAX)
    }

    fn confidence(&self, r: f32) -> f32 {
        let g = if self.log_scaling { (1.0 + r / self.epsilon).ln() } else { r };
        1.0 + self.alpha * g
    }
}

/// A trained ALS model: row-major `n_users × f` and `n_items × f` factor matrices.
#[derive(Debug, Clone, PartialEq)]
pub struct AlsModel {
    pub params: AlsParams,
    pub n_users: usize,
    pub n_items: usize,
    pub user_factors: Vec<f32>,
    pub item_factors: Vec<f32>,
    /// `YᵀY + λI` (f × f, row-major) of the final item factors, for fold-in.
    item_gram: Vec<f32>,
}

pub fn train(data: &Interactions, params: &AlsParams) -> Result<AlsModel> {
    train_observed(data, params, |_, _, _| {})
}

/// [`train`], calling `observe(iteration, user_factors, item_factors)` after every
/// alternation (used by tests to watch the loss).
pub(crate) fn train_observed(
    data: &Interactions,
    params: &AlsParams,
    mut observe: impl FnMut(usize, &[f32], &[f32]),
) -> Result<AlsModel> {
    params.validate()?;
    let f = params.factors;
    let (n_users, n_items) = (data.n_users(), data.n_items());
    // Small positive uniform start, as `implicit` does: the first half-step then fits the
    // users to nearly-equal items and the alternation breaks the symmetry.
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let mut user_factors: Vec<f32> = (0..n_users * f).map(|_| rng.gen::<f32>() * 0.01).collect();
    let mut item_factors: Vec<f32> = (0..n_items * f).map(|_| rng.gen::<f32>() * 0.01).collect();
    let by_user = map_values(data, |r| params.confidence(r));
    let by_item = by_user.transpose();
    let started = std::time::Instant::now();
    for iteration in 0..params.iterations {
        conjugate_gradient_half_step(&by_user, &mut user_factors, &item_factors, params);
        conjugate_gradient_half_step(&by_item, &mut item_factors, &user_factors, params);
        observe(iteration, &user_factors, &item_factors);
    }
    tracing::debug!(n_users, n_items, factors = f, seconds = started.elapsed().as_secs_f64(), "als trained");
    let item_gram = gram(&item_factors, f, params.regularization);
    Ok(AlsModel { params: params.clone(), n_users, n_items, user_factors, item_factors, item_gram })
}

/// `YᵀY + λI` for row-major `y` with `f` columns. Rows are summed in fixed blocks, each
/// block's product by faer on one thread, then blocks are added in order: the result does
/// not depend on the number of threads, which keeps training deterministic for a seed.
fn gram(y: &[f32], f: usize, regularization: f32) -> Vec<f32> {
    let partials: Vec<faer::Mat<f32>> = y
        .par_chunks(BLOCK_ROWS * f)
        .map(|block| {
            let m = faer::MatRef::from_row_major_slice(block, block.len() / f, f);
            let mut g = faer::Mat::<f32>::zeros(f, f);
            faer::linalg::matmul::matmul(g.as_mut(), faer::Accum::Replace, m.transpose(), m, 1.0f32, faer::Par::Seq);
            g
        })
        .collect();
    let mut out = vec![0f32; f * f];
    for g in &partials {
        for a in 0..f {
            for b in 0..f {
                out[a * f + b] += g[(a, b)];
            }
        }
    }
    for a in 0..f {
        out[a * f + a] += regularization;
    }
    out
}

/// Rows per block of [`gram`]: each block is one rayon task and one single-threaded faer
/// product, so the sum never depends on the thread count; small enough that the 943 or
/// 1,654 rows of a MovieLens-sized side still split over two threads.
const BLOCK_ROWS: usize = 512;

/// Re-solve every row `x_u` of `x` for fixed `y`: the normal equations of eq. 3 are
/// `(YᵀC_uY + λI) x_u = YᵀC_u p_u`, i.e. `A x_u = b` with
/// `A = (YᵀY + λI) + Σ_{i∈u} (c_ui − 1) y_i y_iᵀ` and `b = Σ_{i∈u} c_ui y_i` (Hu et al. §4:
/// only the rows with interactions differ from the shared `YᵀY`). `cg_steps` conjugate
/// gradient iterations from the current `x_u` (Takács et al. Alg. 2) cost
/// `O(steps · (f² + |u|·f))` per row and never form `A` ([`super::als_cg`] has the per-row solve
/// and its cost model).
fn conjugate_gradient_half_step(rows: &Interactions, x: &mut [f32], y: &[f32], params: &AlsParams) {
    let f = params.factors;
    let gram = gram(y, f, params.regularization);
    HalfStep {
        indptr: &rows.indptr,
        indices: &rows.indices,
        confidences: &rows.values,
        gram: &gram,
        y,
        factors: f,
        cg_steps: params.cg_steps,
    }
    .run(x);
}

/// Solve `A x = b` for symmetric positive definite `A` (row-major n × n, overwritten by
/// its Cholesky factor) in f64; `b` becomes `x`. Returns false if `A` is not positive
/// definite.
fn cholesky_solve(a: &mut [f64], b: &mut [f64], n: usize) -> bool {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * n + k] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= a[k * n + i] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    true
}

impl AlsModel {
    /// The user vector that minimises eq. 3 for this `history` with the item factors
    /// fixed — the same problem a training half-step solves, here exactly (Cholesky of the
    /// f × f system). Cost `O(|history|·f² + f³)`. Items outside the model are ignored.
    pub fn fold_in(&self, history: &[(u32, f32)]) -> Vec<f32> {
        let f = self.params.factors;
        let mut a: Vec<f64> = self.item_gram.iter().map(|&v| v as f64).collect();
        let mut b = vec![0f64; f];
        for &(i, r) in history {
            if i as usize >= self.n_items || r <= 0.0 {
                continue;
            }
            let c = self.params.confidence(r) as f64;
            let yi = &self.item_factors[i as usize * f..(i as usize + 1) * f];
            for p in 0..f {
                b[p] += c * yi[p] as f64;
                for q in 0..f {
                    a[p * f + q] += (c - 1.0) * yi[p] as f64 * yi[q] as f64;
                }
            }
        }
        if !cholesky_solve(&mut a, &mut b, f) {
            // Only possible with λ = 0 and degenerate factors; no preference then.
            return vec![0.0; f];
        }
        b.into_iter().map(|v| v as f32).collect()
    }

    fn score_with(&self, xu: &[f32], scores: &mut [f32]) {
        let f = self.params.factors;
        for (s, yi) in scores.iter_mut().zip(self.item_factors.chunks_exact(f)) {
            *s = dot(xu, yi);
        }
    }

    pub fn from_artifact(artifact: Artifact) -> Result<Self> {
        let n_users = artifact.shape("n_users")?;
        let n_items = artifact.shape("n_items")?;
        let params: AlsParams = artifact.model_params(&["n_users", "n_items"])?;
        params.validate().map_err(|e| super::artifact::corrupt_artifact(e.to_string()))?;
        let f = params.factors;
        let mut arrays = artifact.arrays.into_iter();
        let user_factors = Artifact::f32_array(&mut arrays, "user_factors", n_users * f)?;
        let item_factors = Artifact::f32_array(&mut arrays, "item_factors", n_items * f)?;
        let item_gram = gram(&item_factors, f, params.regularization);
        Ok(Self { params, n_users, n_items, user_factors, item_factors, item_gram })
    }
}

impl Recommender for AlsModel {
    fn name(&self) -> &str {
        "als"
    }

    fn score(&self, user: Option<u32>, history: &[(u32, f32)], scores: &mut [f32]) {
        let f = self.params.factors;
        match user {
            Some(u) if (u as usize) < self.n_users => {
                self.score_with(&self.user_factors[u as usize * f..(u as usize + 1) * f], scores)
            }
            _ => {
                let xu = self.fold_in(history);
                self.score_with(&xu, scores);
            }
        }
    }

    fn to_artifact(&self) -> Option<Artifact> {
        let mut params = serde_json::to_value(&self.params).ok()?;
        params["n_users"] = self.n_users.into();
        params["n_items"] = self.n_items.into();
        Some(Artifact {
            name: self.name().into(),
            params,
            arrays: vec![Array::F32(self.user_factors.clone()), Array::F32(self.item_factors.clone())],
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::recommend::InteractionsBuilder;

    /// A random sparse matrix with some structure: users prefer items of their group.
    pub(crate) fn synthetic(n_users: usize, n_items: usize, per_user: usize, seed: u64) -> Interactions {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut b = InteractionsBuilder::default();
        for i in 0..n_items {
            b.add_item(&format!("i{i}"));
        }
        for u in 0..n_users {
            let group = u % 4;
            for _ in 0..per_user {
                let i = if rng.gen_bool(0.8) {
                    (rng.gen_range(0..n_items / 4) * 4 + group) % n_items
                } else {
                    rng.gen_range(0..n_items)
                };
                b.add(&format!("u{u}"), &format!("i{i}"), rng.gen_range(1..4) as f32);
            }
        }
        b.build()
    }

    /// Eq. 3 evaluated densely (tests only: O(users · items · f)).
    fn loss(data: &Interactions, params: &AlsParams, x: &[f32], y: &[f32]) -> f64 {
        let f = params.factors;
        let mut total = 0f64;
        for u in 0..data.n_users() {
            let row = data.history(u);
            for i in 0..data.n_items() {
                let r = row.iter().find(|(j, _)| *j as usize == i).map(|(_, r)| *r);
                let (p, c) = match r {
                    Some(r) => (1.0, params.confidence(r) as f64),
                    None => (0.0, 1.0),
                };
                let e = p - dot(&x[u * f..(u + 1) * f], &y[i * f..(i + 1) * f]) as f64;
                total += c * e * e;
            }
        }
        let norms: f64 = x.iter().chain(y).map(|v| (*v as f64) * (*v as f64)).sum();
        total + params.regularization as f64 * norms
    }

    #[test]
    fn loss_decreases_every_iteration() {
        let data = synthetic(60, 40, 8, 1);
        let params = AlsParams { factors: 8, iterations: 10, alpha: 5.0, regularization: 0.5, ..Default::default() };
        let mut losses = Vec::new();
        train_observed(&data, &params, |_, x, y| losses.push(loss(&data, &params, x, y))).unwrap();
        assert_eq!(losses.len(), 10);
        for w in losses.windows(2) {
            assert!(w[1] <= w[0] * (1.0 + 1e-5), "loss went up: {losses:?}");
        }
        assert!(losses[9] < losses[0]);
    }

    #[test]
    fn cg_with_many_steps_reaches_the_exact_solution() {
        // With f CG steps (exact arithmetic) CG solves the f × f system exactly, so a user
        // half-step must agree with the Cholesky fold-in on the same item factors.
        let data = synthetic(30, 24, 6, 2);
        let params = AlsParams { factors: 6, iterations: 4, cg_steps: 30, alpha: 3.0, ..Default::default() };
        let model = train(&data, &params).unwrap();
        let mut users = model.user_factors.clone();
        let by_user = map_values(&data, |r| params.confidence(r));
        conjugate_gradient_half_step(&by_user, &mut users, &model.item_factors, &params);
        for u in 0..data.n_users() {
            let exact = model.fold_in(&data.history(u));
            for (a, b) in exact.iter().zip(&users[u * 6..(u + 1) * 6]) {
                assert!((a - b).abs() < 1e-3 * (1.0 + a.abs()), "user {u}: {exact:?}");
            }
        }
    }

    #[test]
    fn fold_in_of_a_training_history_scores_like_the_trained_user() {
        let data = synthetic(80, 40, 10, 3);
        let params = AlsParams { factors: 8, iterations: 15, alpha: 2.0, ..Default::default() };
        let model = train(&data, &params).unwrap();
        let (mut known, mut folded) = (vec![0.0; 40], vec![0.0; 40]);
        for u in [0u32, 17, 55] {
            let history = data.history(u as usize);
            model.score(Some(u), &history, &mut known);
            model.score(None, &history, &mut folded);
            let scale = known.iter().map(|s| s.abs()).fold(0.0f32, f32::max);
            for (a, b) in known.iter().zip(&folded) {
                assert!((a - b).abs() < 0.05 * scale, "user {u}: {known:?} vs {folded:?}");
            }
        }
    }

    #[test]
    fn same_seed_same_model_and_seed_matters() {
        let data = synthetic(40, 30, 6, 4);
        let params = AlsParams { factors: 4, iterations: 3, ..Default::default() };
        let a = train(&data, &params).unwrap();
        let b = train(&data, &params).unwrap();
        assert_eq!(a, b);
        let c = train(&data, &AlsParams { seed: 7, ..params }).unwrap();
        assert_ne!(a.item_factors, c.item_factors);
    }

    #[test]
    fn cholesky_solves_a_known_system() {
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![2.0, 1.0];
        assert!(cholesky_solve(&mut a, &mut b, 2));
        // [[4,2],[2,3]] x = [2,1] → x = [0.5, 0].
        assert!((b[0] - 0.5).abs() < 1e-12 && b[1].abs() < 1e-12);
    }

    #[test]
    fn bad_parameters_name_their_field() {
        let data = synthetic(4, 4, 2, 5);
        for (params, field) in [
            (AlsParams { factors: 0, ..Default::default() }, "als.factors"),
            (AlsParams { regularization: f32::NAN, ..Default::default() }, "als.regularization"),
            (AlsParams { cg_steps: 0, ..Default::default() }, "als.cg_steps"),
        ] {
            let err = train(&data, &params).unwrap_err();
            assert!(err.to_string().contains(field), "{err}");
        }
    }
}
