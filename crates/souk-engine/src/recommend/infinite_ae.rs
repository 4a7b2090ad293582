//! ∞-AE, "Infinite Recommendation Networks: A Data-Centric Approach" (Sachdeva, Dhaliwal,
//! Wu and McAuley, NeurIPS 2022): an autoencoder of infinite width, trained to convergence,
//! which by the neural tangent kernel theory (Jacot et al. 2018) is kernel ridge regression
//! over users with the network's NTK. A user's scores are
//!
//! ```text
//! s(h) = k(h, X) · (K + λ·tr(K)/n · I)⁻¹ · X
//! ```
//!
//! where `X` is the training user × item matrix, `K` its n × n NTK Gram matrix over users
//! and `k(h, X)` the kernel between the user's history `h` and every training user
//! (∞-AE §3, eq. 2, with the trace-scaled ridge of the authors' code). Unlike EASE, which
//! regresses items on items linearly, this is a non-linear model over *users*: similar
//! users' whole rows are borrowed, weighted by an angular kernel.
//!
//! The kernel is the NTK of a fully connected ReLU network with `depth` hidden layers, in
//! closed form by the arc-cosine recursion (Cho and Saul 2009; Arora et al. 2019, "On Exact
//! Computation with an Infinitely Wide Neural Net", eqs. 4–6), with Σ⁰(x, y) = x·y:
//!
//! ```text
//! θ  = arccos(Σ^{l−1}(x, y) / (‖x‖‖y‖))
//! Σ^l(x, y) = ‖x‖‖y‖ · (sin θ + (π − θ) cos θ) / π        (Σ^l(x, x) stays ‖x‖²)
//! Θ^l(x, y) = Θ^{l−1}(x, y) · (π − θ) / π + Σ^l(x, y),     Θ⁰ = Σ⁰
//! ```
//!
//! Owns training (sparse Gram, kernel, Cholesky solve with faer) and scoring. Memory is
//! `n_users² + n_users × n_items` floats, so training refuses more than `max_users` users.
//! Serving folds in any history (new users included) against the stored training rows.

use faer::dyn_stack::{MemBuffer, MemStack};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::artifact::{Array, Artifact};
use super::data::Interactions;
use super::kernels::{axpy, check_range, invalid, map_values};
use super::Recommender;
use crate::{Error, Result};

/// Parameters of [`train`]. Tuning grid used by the registry: `lambda ∈ {1, 2, 3, 5}`, depth 1
/// (on MovieLens-100K and HetRec LastFM validation splits depth 2 was no better).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InfiniteAeParams {
    /// `λ`, the ridge penalty relative to the mean of the kernel's diagonal (tr(K)/n), so
    /// it does not depend on how many items users have. > 0.
    pub lambda: f32,
    /// Hidden layers of the infinitely wide ReLU network whose NTK is the kernel, 1–4
    /// (the paper uses 1).
    pub depth: u32,
    /// Use 1 for every interaction (`true`) instead of its weight.
    pub binary: bool,
    /// Refuse to train with more users than this: the kernel takes `n²·4` bytes and the
    /// solution `n × items · 4` bytes (20,000 users ≈ 1.6 GB for the kernel alone).
    pub max_users: usize,
}

impl Default for InfiniteAeParams {
    fn default() -> Self {
        Self { lambda: 3.0, depth: 1, binary: true, max_users: 20_000 }
    }
}

impl InfiniteAeParams {
    pub fn validate(&self) -> Result<()> {
        check_range("infinite_ae.lambda", self.lambda, f32::MIN_POSITIVE, f32::MAX)?;
        if !(1..=4).contains(&self.depth) {
            return Err(invalid(
                "infinite_ae.depth",
                format!("expected a number of hidden layers in [1, 4], found {}", self.depth),
            ));
        }
        Ok(())
    }
}

/// A trained ∞-AE: the training rows (to compute `k(h, X)`) and the dual coefficients
/// `C = (K + λ'I)⁻¹ X`.
#[derive(Debug, Clone, PartialEq)]
pub struct InfiniteAeModel {
    pub params: InfiniteAeParams,
    /// Training rows after the binary mapping, user-major (CSR) and item-major.
    users: Interactions,
    items: Interactions,
    /// ‖x_v‖ of each training user.
    norms: Vec<f32>,
    /// `C`, row-major `n_users × n_items`.
    coefficients: Vec<f32>,
}

/// Allocate `n` zeros, or fail cleanly (a multi-gigabyte allocation must not abort).
fn zeros(n: usize) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::Internal(format!("infinite_ae: cannot allocate {} bytes", n * 4)))?;
    v.resize(n, 0.0);
    Ok(v)
}

/// Θ^depth(x, y) from Σ⁰(x, y) = x·y and the norms (see the module comment). Zero when
/// either vector is zero. Computed in f64: near θ = 0 the arccos is ill-conditioned.
fn ntk(dot: f32, norm_x: f32, norm_y: f32, depth: u32) -> f32 {
    let scale = norm_x as f64 * norm_y as f64;
    if scale <= 0.0 {
        return 0.0;
    }
    let pi = std::f64::consts::PI;
    let mut sigma = dot as f64;
    let mut theta_kernel = sigma;
    for _ in 0..depth {
        let cos = (sigma / scale).clamp(-1.0, 1.0);
        let angle = cos.acos();
        sigma = scale * (angle.sin() + (pi - angle) * cos) / pi;
        theta_kernel = theta_kernel * (pi - angle) / pi + sigma;
    }
    theta_kernel as f32
}

pub fn train(data: &Interactions, params: &InfiniteAeParams) -> Result<InfiniteAeModel> {
    params.validate()?;
    let binary = params.binary;
    let users = map_values(data, |w| if binary { 1.0 } else { w });
    let items = users.transpose();
    let (n, m) = (users.n_users(), users.n_items());
    if n > params.max_users {
        return Err(invalid(
            "infinite_ae.max_users",
            format!(
                "{n} users exceed the limit of {}; the kernel alone would take {} MB",
                params.max_users,
                n.saturating_mul(n).saturating_mul(4) >> 20
            ),
        ));
    }
    let norms: Vec<f32> = (0..n).map(|u| users.row(u).1.iter().map(|w| w * w).sum::<f32>().sqrt()).collect();

    // K = Θ(X Xᵀ), one row per task: row u of X Xᵀ = Σ_{i ∈ u} x_ui · (column i of X).
    // Cost Σ_i |users of i|² multiply-adds, then n² kernel evaluations.
    let mut kernel = zeros(n * n)?;
    kernel.par_chunks_mut(n.max(1)).enumerate().for_each(|(u, row)| {
        let (its, xs) = users.row(u);
        for (&i, &x) in its.iter().zip(xs) {
            let (vs, ys) = items.row(i as usize);
            for (&v, &y) in vs.iter().zip(ys) {
                row[v as usize] += x * y;
            }
        }
        for (v, k) in row.iter_mut().enumerate() {
            *k = ntk(*k, norms[u], norms[v], params.depth);
        }
    });
    let trace: f64 = (0..n).map(|u| kernel[u * n + u] as f64).sum();
    let mean_diagonal = if trace > 0.0 { trace / n as f64 } else { 1.0 };
    let ridge = (params.lambda as f64 * mean_diagonal) as f32;
    for u in 0..n {
        kernel[u * n + u] += ridge;
    }

    // C = (K + λ'I)⁻¹ X by Cholesky (K is a Gram matrix, so K + λ'I is positive definite;
    // symmetric, so row-major is also column-major). The right-hand side is X dense in
    // column-major n × m, i.e. item-major rows; C is transposed to user-major afterwards.
    let mut rhs = zeros(n * m)?;
    rhs.par_chunks_mut(n.max(1)).enumerate().for_each(|(i, column)| {
        let (vs, ys) = items.row(i);
        for (&v, &y) in vs.iter().zip(ys) {
            column[v as usize] = y;
        }
    });
    if n > 0 && m > 0 {
        use faer::linalg::cholesky::llt;
        let par = faer::Par::rayon(0);
        let req = llt::factor::cholesky_in_place_scratch::<f32>(n, par, Default::default())
            .or(llt::solve::solve_in_place_scratch::<f32>(n, m, par));
        let mut mem = MemBuffer::try_new(req)
            .map_err(|_| Error::Internal("infinite_ae: cannot allocate solver scratch".into()))?;
        let stack = MemStack::new(&mut mem);
        let mut l = faer::MatMut::from_column_major_slice_mut(&mut kernel, n, n);
        llt::factor::cholesky_in_place(l.as_mut(), Default::default(), par, stack, Default::default()).map_err(
            |e| Error::Internal(format!("infinite_ae: kernel is not positive definite ({e}); increase lambda")),
        )?;
        let solution = faer::MatMut::from_column_major_slice_mut(&mut rhs, n, m);
        llt::solve::solve_in_place(l.as_ref(), solution, par, stack);
    }
    drop(kernel);
    let mut coefficients = zeros(n * m)?;
    coefficients.par_chunks_mut(m.max(1)).enumerate().for_each(|(v, row)| {
        for (i, c) in row.iter_mut().enumerate() {
            *c = rhs[i * n + v];
        }
    });
    Ok(InfiniteAeModel { params: params.clone(), users, items, norms, coefficients })
}

impl InfiniteAeModel {
    pub fn from_artifact(artifact: Artifact) -> Result<Self> {
        let n = artifact.shape("n_users")?;
        let m = artifact.shape("n_items")?;
        let nnz = artifact.shape("nnz")?;
        let params: InfiniteAeParams = artifact.model_params(&["n_users", "n_items", "nnz"])?;
        let mut arrays = artifact.arrays.into_iter();
        let indptr = Artifact::u32_array(&mut arrays, "indptr", n + 1)?;
        let indices = Artifact::u32_array(&mut arrays, "indices", nnz)?;
        let values = Artifact::f32_array(&mut arrays, "values", nnz)?;
        let coefficients = Artifact::f32_array(&mut arrays, "coefficients", n.saturating_mul(m))?;
        let monotone = indptr.first() == Some(&0)
            && indptr.windows(2).all(|w| w[0] <= w[1])
            && indptr.last().map(|&e| e as usize) == Some(nnz);
        if !monotone || indices.iter().any(|&i| i as usize >= m) {
            return Err(super::artifact::corrupt_artifact("infinite_ae: inconsistent training rows"));
        }
        // Ids are not needed to score: rows and columns are positions.
        let users = Interactions {
            user_ids: vec![String::new(); n],
            item_ids: vec![String::new(); m],
            indptr: indptr.iter().map(|&p| p as usize).collect(),
            indices,
            values,
            social: Default::default(),
        };
        let items = users.transpose();
        let norms = (0..n).map(|u| users.row(u).1.iter().map(|w| w * w).sum::<f32>().sqrt()).collect();
        Ok(Self { params, users, items, norms, coefficients })
    }
}

impl Recommender for InfiniteAeModel {
    fn name(&self) -> &str {
        "infinite_ae"
    }

    /// Cost: Σ over history items of their user counts (the dot products with training
    /// users), n kernel evaluations, then n × n_items multiply-adds for `k · C`. Allocates
    /// one n-float buffer per call.
    fn score(&self, _user: Option<u32>, history: &[(u32, f32)], scores: &mut [f32]) {
        scores.iter_mut().for_each(|s| *s = 0.0);
        let (n, m) = (self.users.n_users(), self.users.n_items());
        let mut dots = vec![0f32; n];
        let mut norm_squared = 0f32;
        for &(i, w) in history {
            if i as usize >= m || w <= 0.0 {
                continue;
            }
            let w = if self.params.binary { 1.0 } else { w };
            norm_squared += w * w;
            let (vs, ys) = self.items.row(i as usize);
            for (&v, &y) in vs.iter().zip(ys) {
                dots[v as usize] += w * y;
            }
        }
        let norm = norm_squared.sqrt();
        if norm == 0.0 || m == 0 {
            return;
        }
        let width = m.min(scores.len());
        for (v, &dot) in dots.iter().enumerate() {
            let k = ntk(dot, norm, self.norms[v], self.params.depth);
            if k != 0.0 {
                axpy(k, &self.coefficients[v * m..v * m + width], &mut scores[..width]);
            }
        }
    }

    fn to_artifact(&self) -> Option<Artifact> {
        let mut params = serde_json::to_value(&self.params).ok()?;
        params["n_users"] = self.users.n_users().into();
        params["n_items"] = self.users.n_items().into();
        params["nnz"] = self.users.nnz().into();
        let indptr: Option<Vec<u32>> = self.users.indptr.iter().map(|&p| u32::try_from(p).ok()).collect();
        Some(Artifact {
            name: self.name().into(),
            params,
            arrays: vec![
                Array::U32(indptr?),
                Array::U32(self.users.indices.clone()),
                Array::F32(self.users.values.clone()),
                Array::F32(self.coefficients.clone()),
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::registry::{load_model, save_model};
    use crate::recommend::InteractionsBuilder;

    /// Five users over six items; items 3 and 5 are never interacted with.
    fn data() -> Interactions {
        let rows: [&[usize]; 5] = [&[0, 1], &[0, 1, 2], &[2, 4], &[1, 2, 4], &[0, 4]];
        let mut b = InteractionsBuilder::default();
        for i in 0..6 {
            b.add_item(&format!("i{i}"));
        }
        for (u, items) in rows.iter().enumerate() {
            for &i in *items {
                b.add(&format!("u{u}"), &format!("i{i}"), 2.0);
            }
        }
        b.build()
    }

    /// Dense f64 reference of the module's formula: Θ by the recursion, then
    /// (K + λ·tr(K)/n·I)⁻¹ X by Gauss–Jordan, then k(h, X) · C.
    fn reference_scores(x: &[Vec<f64>], lambda: f64, depth: u32, history: &[f64]) -> Vec<f64> {
        let pi = std::f64::consts::PI;
        let kernel = |a: &[f64], b: &[f64]| {
            let dot: f64 = a.iter().zip(b).map(|(p, q)| p * q).sum();
            let scale = a.iter().map(|p| p * p).sum::<f64>().sqrt() * b.iter().map(|q| q * q).sum::<f64>().sqrt();
            let (mut sigma, mut theta_kernel) = (dot, dot);
            for _ in 0..depth {
                let cos = (sigma / scale).clamp(-1.0, 1.0);
                let angle = cos.acos();
                sigma = scale * (angle.sin() + (pi - angle) * cos) / pi;
                theta_kernel = theta_kernel * (pi - angle) / pi + sigma;
            }
            theta_kernel
        };
        let (n, m) = (x.len(), x[0].len());
        let k: Vec<Vec<f64>> = x.iter().map(|a| x.iter().map(|b| kernel(a, b)).collect()).collect();
        let ridge = lambda * (0..n).map(|u| k[u][u]).sum::<f64>() / n as f64;
        // Augmented [K + ridge·I | X], reduced to [I | C].
        let mut a: Vec<Vec<f64>> = (0..n)
            .map(|u| (0..n).map(|v| k[u][v] + if u == v { ridge } else { 0.0 }).chain(x[u].iter().copied()).collect())
            .collect();
        for c in 0..n {
            let pivot = a[c][c];
            a[c].iter_mut().for_each(|v| *v /= pivot);
            let pivot_row = a[c].clone();
            for (r, row) in a.iter_mut().enumerate() {
                if r != c {
                    let factor = row[c];
                    row.iter_mut().zip(&pivot_row).for_each(|(v, p)| *v -= factor * p);
                }
            }
        }
        (0..m).map(|i| (0..n).map(|v| kernel(history, &x[v]) * a[v][n + i]).sum()).collect()
    }

    fn dense(data: &Interactions) -> Vec<Vec<f64>> {
        (0..data.n_users())
            .map(|u| {
                let mut row = vec![0f64; data.n_items()];
                data.row(u).0.iter().for_each(|&i| row[i as usize] = 1.0);
                row
            })
            .collect()
    }

    #[test]
    fn kernel_has_its_closed_form_values() {
        // θ = 0: Σ¹ = ‖x‖², Θ¹ = ‖x‖² · 1 + ‖x‖².
        assert!((ntk(4.0, 2.0, 2.0, 1) - 8.0).abs() < 1e-6);
        // θ = π/2: Σ¹ = ‖x‖‖y‖/π, Θ¹ = 0 · ½ + Σ¹.
        assert!((ntk(0.0, 1.0, 3.0, 1) - 3.0 / std::f32::consts::PI).abs() < 1e-6);
        // Depth 2 on parallel vectors: every layer adds ‖x‖² again.
        assert!((ntk(1.0, 1.0, 1.0, 2) - 3.0).abs() < 1e-6);
        assert_eq!(ntk(0.0, 0.0, 1.0, 1), 0.0);
    }

    #[test]
    fn matches_a_dense_f64_computation() {
        let data = data();
        let x = dense(&data);
        for (lambda, depth) in [(0.5, 1), (2.0, 1), (1.0, 3)] {
            let model = train(&data, &InfiniteAeParams { lambda, depth, ..Default::default() }).unwrap();
            for history in [vec![(0u32, 1.0f32), (4, 3.0)], vec![(2, 1.0)], data.history(3)] {
                let mut h = vec![0f64; 6];
                history.iter().for_each(|&(i, _)| h[i as usize] = 1.0);
                let want = reference_scores(&x, lambda as f64, depth, &h);
                let mut scores = vec![f32::NAN; 6];
                model.score(None, &history, &mut scores);
                for i in 0..6 {
                    assert!((scores[i] as f64 - want[i]).abs() < 1e-4, "{scores:?} vs {want:?}");
                }
                assert_eq!((scores[3], scores[5]), (0.0, 0.0));
            }
        }
    }

    #[test]
    fn training_is_deterministic_and_survives_save_and_load() {
        let data = crate::recommend::als::tests::synthetic(40, 30, 6, 7);
        let params = InfiniteAeParams { lambda: 2.0, ..Default::default() };
        let (a, b) = (train(&data, &params).unwrap(), train(&data, &params).unwrap());
        assert_eq!(a, b);
        let mut bytes = Vec::new();
        save_model(&a, &mut bytes).unwrap();
        let loaded = load_model(&mut bytes.as_slice()).unwrap();
        assert_eq!(loaded.name(), "infinite_ae");
        for u in 0..data.n_users() {
            let (mut want, mut got) = (vec![0.0; 30], vec![0.0; 30]);
            a.score(Some(u as u32), &data.history(u), &mut want);
            loaded.score(Some(u as u32), &data.history(u), &mut got);
            assert_eq!(want, got);
        }
    }

    #[test]
    fn bad_parameters_name_their_field() {
        let data = data();
        let field = |params: InfiniteAeParams| match train(&data, &params) {
            Err(Error::Invalid(v)) => v.field,
            other => panic!("expected a validation error, got {:?}", other.map(|_| ())),
        };
        assert_eq!(field(InfiniteAeParams { lambda: 0.0, ..Default::default() }), "infinite_ae.lambda");
        assert_eq!(field(InfiniteAeParams { lambda: f32::NAN, ..Default::default() }), "infinite_ae.lambda");
        assert_eq!(field(InfiniteAeParams { depth: 0, ..Default::default() }), "infinite_ae.depth");
        assert_eq!(field(InfiniteAeParams { depth: 5, ..Default::default() }), "infinite_ae.depth");
        assert_eq!(field(InfiniteAeParams { max_users: 4, ..Default::default() }), "infinite_ae.max_users");
    }

    #[test]
    fn empty_data_and_empty_histories_score_zero() {
        let model = train(&Interactions::default(), &InfiniteAeParams::default()).unwrap();
        let mut scores: Vec<f32> = vec![];
        model.score(None, &[(0, 1.0)], &mut scores);
        let model = train(&data(), &InfiniteAeParams::default()).unwrap();
        let mut scores = vec![f32::NAN; 6];
        model.score(None, &[(9, 1.0), (1, -1.0)], &mut scores);
        assert!(scores.iter().all(|&s| s == 0.0));
    }
}
