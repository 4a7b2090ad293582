//! EASE, "Embarrassingly Shallow Autoencoders for Sparse Data" (Steck 2019): a dense item ×
//! item weight matrix `B` with zero diagonal, learned in closed form, scoring a user as
//! their history row times `B`. Optionally with the dropout-derived, popularity-dependent
//! regularisation of EDLAE (Steck 2020, "Autoencoders that don't overfit towards the
//! Identity", §3–4).
//!
//! Owns the closed-form solve (Gram matrix, Cholesky inverse with faer) and scoring. Memory
//! is quadratic in the number of interacted items, so training refuses catalogues above
//! `max_items` instead of exhausting memory.

use faer::dyn_stack::{MemBuffer, MemStack};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::artifact::{Array, Artifact};
use super::data::Interactions;
use super::kernels::{axpy, check_range, invalid, map_values};
use super::Recommender;
use crate::{Error, Result};

/// Parameters of [`train`]. Tuning grid used by the registry: plain EASE with `lambda ∈ {50,
/// 200, 500, 1000}` × `popularity_exponent ∈ {0, 0.15}`, and the user-weighted DLAE with
/// `lambda ∈ {100, 300}` × `user_exponent ∈ {0.5, 0.75}` × `dropout ∈ {0.4, 0.6}`,
/// `popularity_exponent` 0.1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EaseParams {
    /// `λ`, the L2 penalty on `B` (eq. 1 of Steck 2019). > 0. Larger for denser data.
    pub lambda: f32,
    /// EDLAE's dropout probability `p` in [0, 0.95]: adds `p/(1−p)·G_ii` to the diagonal
    /// regularisation of item `i` (Steck 2020, eq. 7), penalising popular items' weights
    /// more. 0 is plain EASE.
    pub dropout: f32,
    /// Use 1 for every interaction (`true`, as in the paper) instead of its weight.
    pub binary: bool,
    /// `β` in `B_ij · deg(j)^−β`: divides each target item's column by its popularity
    /// (number of users) to the power β, as RP3beta does for its walk (Paudel et al. 2017)
    /// — EASE's scores favour popular items, and a mild penalty trades a little of that
    /// head for the long tail. In [0, 1]; 0 is plain EASE.
    pub popularity_exponent: f32,
    /// `g` in a user weight `|u|^−g`: each user's row enters the Gram matrix with that
    /// weight, so heavy users (hundreds of items) stop dominating the item co-occurrences
    /// that light users also depend on; `λ` is scaled by the mean user weight to keep its
    /// size comparable. In [0, 2]; 0 is plain EASE.
    pub user_exponent: f32,
    /// Solve the dropout autoencoder without EASE's zero-diagonal constraint (DLAE, Steck
    /// 2020 §3): `B = I − P·Λ`, i.e. `B_ij = −P_ij·Λ_jj`, instead of EASE's `−P_ij / P_jj`.
    /// The diagonal (only ever scoring items the user already has) is kept at 0.
    pub dlae: bool,
    /// Refuse to train with more interacted items than this: `B` takes `n²·4` bytes and
    /// the solve needs three such buffers (50,000 items ≈ 30 GB).
    pub max_items: usize,
}

impl Default for EaseParams {
    fn default() -> Self {
        Self {
            lambda: 200.0,
            dropout: 0.0,
            binary: true,
            popularity_exponent: 0.0,
            user_exponent: 0.0,
            dlae: false,
            max_items: 50_000,
        }
    }
}

impl EaseParams {
    pub fn validate(&self) -> Result<()> {
        check_range("ease.lambda", self.lambda, f32::MIN_POSITIVE, f32::MAX)?;
        check_range("ease.dropout", self.dropout, 0.0, 0.95)?;
        check_range("ease.popularity_exponent", self.popularity_exponent, 0.0, 1.0)?;
        check_range("ease.user_exponent", self.user_exponent, 0.0, 2.0)
    }
}

/// A trained EASE model. Only items with at least one training interaction take part
/// (`B` is zero elsewhere), so `weights` is `m × m` for the `m` active items.
#[derive(Debug, Clone, PartialEq)]
pub struct EaseModel {
    pub params: EaseParams,
    pub n_items: usize,
    /// Item index of each active item, ascending.
    active: Vec<u32>,
    /// Active position of each item, `u32::MAX` when inactive.
    position: Vec<u32>,
    /// `B` restricted to active items, row-major `m × m`.
    weights: Vec<f32>,
}

/// Allocate `n` zeros, or fail cleanly (a 20 GB allocation must not abort the process).
fn zeros(n: usize) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::Internal(format!("ease: cannot allocate {} bytes", n * 4)))?;
    v.resize(n, 0.0);
    Ok(v)
}

pub fn train(data: &Interactions, params: &EaseParams) -> Result<EaseModel> {
    params.validate()?;
    let binary = params.binary;
    let user_major = map_values(data, |w| if binary { 1.0 } else { w });
    let item_major = user_major.transpose();
    let n_items = data.n_items();
    let active: Vec<u32> = (0..n_items as u32).filter(|&i| !item_major.row(i as usize).0.is_empty()).collect();
    let m = active.len();
    if m > params.max_items {
        return Err(invalid(
            "ease.max_items",
            format!(
                "{m} interacted items exceed the limit of {}; memory would be {} MB",
                params.max_items,
                m.saturating_mul(m).saturating_mul(12) >> 20
            ),
        ));
    }
    let mut position = vec![u32::MAX; n_items];
    for (k, &i) in active.iter().enumerate() {
        position[i as usize] = k as u32;
    }

    // Per-user weights |u|^−g (1 for plain EASE), and their mean over users with history.
    let user_weights: Vec<f32> = (0..user_major.n_users())
        .map(|u| {
            let n = user_major.row(u).0.len();
            if n == 0 || params.user_exponent == 0.0 {
                1.0
            } else {
                (n as f32).powf(-params.user_exponent)
            }
        })
        .collect();
    let with_history = (0..user_major.n_users()).filter(|&u| !user_major.row(u).0.is_empty());
    let (sum, count) = with_history.fold((0f64, 0usize), |(s, c), u| (s + f64::from(user_weights[u]), c + 1));
    let mean_user_weight = if count == 0 { 1.0 } else { (sum / count as f64) as f32 };

    // G = Xᵀ·W·X over active items, one row per task: row i = Σ_{u ∋ i} w_u · x_ui · x_u.
    let mut g = zeros(m * m)?;
    g.par_chunks_mut(m.max(1)).enumerate().for_each(|(a, row)| {
        let (users, xs) = item_major.row(active[a] as usize);
        for (&u, &xu) in users.iter().zip(xs) {
            let (items, ws) = user_major.row(u as usize);
            let xu = xu * user_weights[u as usize];
            for (&j, &w) in items.iter().zip(ws) {
                row[position[j as usize] as usize] += xu * w;
            }
        }
    });
    // Λ = λ·w̄·I + p/(1−p)·diag(G) (Steck 2020 eq. 7; p = 0 gives EASE's λI).
    let dropout_scale = params.dropout / (1.0 - params.dropout);
    let regularisation: Vec<f32> =
        (0..m).map(|a| params.lambda * mean_user_weight + dropout_scale * g[a * m + a]).collect();
    for (a, l) in regularisation.iter().enumerate() {
        g[a * m + a] += l;
    }

    // P = (G + Λ)⁻¹ by Cholesky: G + Λ is symmetric positive definite for λ > 0. Symmetry
    // also makes the row-major buffer a valid column-major matrix.
    let par = faer::Par::rayon(0);
    let mut p = zeros(m * m)?;
    if m > 0 {
        use faer::linalg::cholesky::llt;
        let req = llt::factor::cholesky_in_place_scratch::<f32>(m, par, Default::default())
            .or(llt::inverse::inverse_scratch::<f32>(m, par));
        let mut mem =
            MemBuffer::try_new(req).map_err(|_| Error::Internal("ease: cannot allocate solver scratch".into()))?;
        let stack = MemStack::new(&mut mem);
        let mut l = faer::MatMut::from_column_major_slice_mut(&mut g, m, m);
        llt::factor::cholesky_in_place(l.as_mut(), Default::default(), par, stack, Default::default()).map_err(
            |e| Error::Internal(format!("ease: Gram matrix is not positive definite ({e}); increase ease.lambda")),
        )?;
        let out = faer::MatMut::from_column_major_slice_mut(&mut p, m, m);
        llt::inverse::inverse(out, l.as_ref(), par, stack);
    }
    drop(g);
    // `inverse` fills one triangle; mirror it, then B = I − P·diag(1/diag(P)) (Steck 2019
    // eq. 8): B_ij = −P_ij / P_jj off the diagonal, 0 on it. In column-major terms `inverse`
    // wrote the lower triangle, i.e. entries with row ≥ column.
    for j in 0..m {
        for i in 0..j {
            p[j * m + i] = p[i * m + j];
        }
    }
    let diagonal: Vec<f32> = (0..m).map(|j| p[j * m + j]).collect();
    let penalty: Vec<f32> =
        active.iter().map(|&i| (item_major.row(i as usize).0.len() as f32).powf(-params.popularity_exponent)).collect();
    // DLAE's columns are scaled by Λ_jj instead of 1/P_jj.
    let column: Vec<f32> = if params.dlae { regularisation } else { diagonal.iter().map(|d| 1.0 / d).collect() };
    p.par_chunks_mut(m.max(1)).enumerate().for_each(|(i, row)| {
        for (j, v) in row.iter_mut().enumerate() {
            *v = if i == j { 0.0 } else { -*v * column[j] * penalty[j] };
        }
    });
    Ok(EaseModel { params: params.clone(), n_items, active, position, weights: p })
}

impl EaseModel {
    /// `B_ij` (0 for inactive items).
    pub fn weight(&self, i: u32, j: u32) -> f32 {
        let m = self.active.len();
        match (self.position.get(i as usize), self.position.get(j as usize)) {
            (Some(&a), Some(&b)) if a != u32::MAX && b != u32::MAX => self.weights[a as usize * m + b as usize],
            _ => 0.0,
        }
    }

    pub fn from_artifact(artifact: Artifact) -> Result<Self> {
        let n_items = artifact.shape("n_items")?;
        let m = artifact.shape("active_items")?;
        let params = artifact.model_params(&["n_items", "active_items"])?;
        let mut arrays = artifact.arrays.into_iter();
        let active = Artifact::u32_array(&mut arrays, "active", m)?;
        let weights = Artifact::f32_array(&mut arrays, "weights", m.saturating_mul(m))?;
        let mut position = vec![u32::MAX; n_items];
        for (k, &i) in active.iter().enumerate() {
            match position.get_mut(i as usize) {
                Some(slot) if *slot == u32::MAX => *slot = k as u32,
                _ => return Err(super::artifact::corrupt_artifact("ease: active items out of range or repeated")),
            }
        }
        Ok(Self { params, n_items, active, position, weights })
    }
}

impl Recommender for EaseModel {
    fn name(&self) -> &str {
        "ease"
    }

    /// Cost: |history| × m multiply-adds (one dense row of `B` per history item).
    fn score(&self, _user: Option<u32>, history: &[(u32, f32)], scores: &mut [f32]) {
        let m = self.active.len();
        scores.iter_mut().for_each(|s| *s = 0.0);
        if m == 0 {
            return;
        }
        // Accumulate in active positions at the front of `scores` (m ≤ n_items), then
        // spread to item indices from the back so no slot is overwritten before it is read.
        let (compact, _) = scores.split_at_mut(m.min(scores.len()));
        for &(i, w) in history {
            let Some(&a) = self.position.get(i as usize) else { continue };
            if a == u32::MAX || w <= 0.0 {
                continue;
            }
            let w = if self.params.binary { 1.0 } else { w };
            axpy(w, &self.weights[a as usize * m..(a as usize + 1) * m], compact);
        }
        for k in (0..m.min(scores.len())).rev() {
            let i = self.active[k] as usize;
            if i != k && i < scores.len() {
                scores[i] = scores[k];
                scores[k] = 0.0;
            }
        }
    }

    fn to_artifact(&self) -> Option<Artifact> {
        let mut params = serde_json::to_value(&self.params).ok()?;
        params["n_items"] = self.n_items.into();
        params["active_items"] = self.active.len().into();
        Some(Artifact {
            name: self.name().into(),
            params,
            arrays: vec![Array::U32(self.active.clone()), Array::F32(self.weights.clone())],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::InteractionsBuilder;

    /// Dense reference in f64: P = (XᵀWX + Λ)⁻¹ by Gauss–Jordan with W = diag(|u|^−g) and
    /// Λ = λ·mean(W) + p/(1−p)·diag(XᵀWX); B = I − P·diag(1/diag P) (EASE) or
    /// −P·Λ off the diagonal (DLAE).
    fn reference_weighted(x: &[Vec<f64>], lambda: f64, dropout: f64, g: f64, dlae: bool) -> Vec<Vec<f64>> {
        let n = x[0].len();
        let w: Vec<f64> =
            x.iter().map(|row| row.iter().filter(|&&v| v != 0.0).count() as f64).map(|c| c.powf(-g)).collect();
        let mean_w = w.iter().sum::<f64>() / w.len() as f64;
        let mut a = vec![vec![0f64; 2 * n]; n];
        let mut l = vec![0f64; n];
        for i in 0..n {
            for j in 0..n {
                a[i][j] = x.iter().zip(&w).map(|(row, wu)| wu * row[i] * row[j]).sum();
            }
            l[i] = lambda * mean_w + dropout / (1.0 - dropout) * a[i][i];
            a[i][i] += l[i];
            a[i][n + i] = 1.0;
        }
        for c in 0..n {
            let pivot = a[c][c];
            for v in a[c].iter_mut() {
                *v /= pivot;
            }
            for r in 0..n {
                if r != c {
                    let factor = a[r][c];
                    let pivot_row = a[c].clone();
                    for (v, pv) in a[r].iter_mut().zip(pivot_row) {
                        *v -= factor * pv;
                    }
                }
            }
        }
        let column = |j: usize| if dlae { l[j] } else { 1.0 / a[j][n + j] };
        (0..n).map(|i| (0..n).map(|j| if i == j { 0.0 } else { -a[i][n + j] * column(j) }).collect()).collect()
    }

    fn reference(x: &[Vec<f64>], lambda: f64, dropout: f64) -> Vec<Vec<f64>> {
        reference_weighted(x, lambda, dropout, 0.0, false)
    }

    fn data_and_dense() -> (Interactions, Vec<Vec<f64>>) {
        let rows: [&[usize]; 5] = [&[0, 1], &[0, 1, 2], &[2, 4], &[1, 2, 4], &[0, 4]];
        let mut b = InteractionsBuilder::default();
        for i in 0..6 {
            b.add_item(&format!("i{i}")); // item 3 and 5 are never interacted with
        }
        let mut dense = vec![vec![0f64; 4]; 5];
        for (u, items) in rows.iter().enumerate() {
            for &i in *items {
                b.add(&format!("u{u}"), &format!("i{i}"), 2.0);
                dense[u][[0, 1, 2, usize::MAX, 3][i]] = 1.0;
            }
        }
        (b.build(), dense)
    }

    #[test]
    fn matches_a_dense_f64_computation() {
        let (data, dense) = data_and_dense();
        let active = [0u32, 1, 2, 4];
        for (lambda, dropout) in [(0.5, 0.0), (2.0, 0.0), (1.0, 0.3)] {
            let model = train(&data, &EaseParams { lambda, dropout, ..Default::default() }).unwrap();
            let expected = reference(&dense, lambda as f64, dropout as f64);
            for (a, &i) in active.iter().enumerate() {
                for (b, &j) in active.iter().enumerate() {
                    let got = model.weight(i, j) as f64;
                    assert!((got - expected[a][b]).abs() < 1e-4, "B[{i}][{j}] = {got}, expected {}", expected[a][b]);
                }
                assert_eq!(model.weight(i, 3), 0.0);
            }
            // Scores are history × B, placed at item indices.
            let mut scores = vec![f32::NAN; 6];
            model.score(Some(0), &[(0, 1.0), (4, 1.0)], &mut scores);
            for (b, &j) in active.iter().enumerate() {
                let want = expected[0][b] + expected[3][b];
                assert!((scores[j as usize] as f64 - want).abs() < 1e-4, "{scores:?}");
            }
            assert_eq!((scores[3], scores[5]), (0.0, 0.0));
        }
    }

    /// User weights |u|^−g and the DLAE solution against the f64 reference.
    #[test]
    fn user_weighted_dlae_matches_a_dense_f64_computation() {
        let (data, dense) = data_and_dense();
        let active = [0u32, 1, 2, 4];
        for (g, dlae, dropout) in [(0.75, false, 0.0), (0.0, true, 0.6), (0.75, true, 0.6), (1.5, true, 0.2)] {
            let params = EaseParams { lambda: 1.5, dropout, user_exponent: g, dlae, ..Default::default() };
            let model = train(&data, &params).unwrap();
            let expected = reference_weighted(&dense, 1.5, f64::from(dropout), f64::from(g), dlae);
            for (a, &i) in active.iter().enumerate() {
                for (b, &j) in active.iter().enumerate() {
                    let got = f64::from(model.weight(i, j));
                    assert!(
                        (got - expected[a][b]).abs() < 1e-4,
                        "g {g}, dlae {dlae}: B[{i}][{j}] = {got}, expected {}",
                        expected[a][b]
                    );
                }
            }
        }
        let plain = train(&data, &EaseParams { lambda: 1.5, dropout: 0.6, ..Default::default() }).unwrap();
        let dlae = train(&data, &EaseParams { lambda: 1.5, dropout: 0.6, dlae: true, ..Default::default() }).unwrap();
        assert!((plain.weight(0, 1) - dlae.weight(0, 1)).abs() > 1e-3, "DLAE must differ from EASE");
        assert!(train(&data, &EaseParams { user_exponent: 2.5, ..Default::default() }).is_err());
    }

    #[test]
    fn popularity_exponent_divides_columns_by_user_count() {
        let (data, _) = data_and_dense();
        let plain = train(&data, &EaseParams { lambda: 1.0, ..Default::default() }).unwrap();
        let tilted = train(&data, &EaseParams { lambda: 1.0, popularity_exponent: 0.5, ..Default::default() }).unwrap();
        let users = data.transpose();
        for i in [0u32, 1, 2, 4] {
            for j in [0u32, 1, 2, 4] {
                let n_j = users.row(j as usize).0.len() as f32;
                let want = plain.weight(i, j) / n_j.sqrt();
                assert!((tilted.weight(i, j) - want).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn too_many_items_is_refused_with_the_field() {
        let (data, _) = data_and_dense();
        let err = train(&data, &EaseParams { max_items: 3, ..Default::default() }).unwrap_err();
        match err {
            Error::Invalid(v) => assert_eq!(v.field, "ease.max_items"),
            other => panic!("expected a validation error, got {other:?}"),
        }
        assert!(train(&data, &EaseParams { lambda: 0.0, ..Default::default() }).is_err());
    }

    #[test]
    fn empty_data_scores_zero() {
        let model = train(&Interactions::default(), &EaseParams::default()).unwrap();
        // Whatever the buffer held before, a model trained on nothing scores every slot 0.
        let mut scores: Vec<f32> = vec![7.0; 3];
        model.score(None, &[(0, 1.0)], &mut scores);
        assert_eq!(scores, vec![0.0; 3]);
    }
}
