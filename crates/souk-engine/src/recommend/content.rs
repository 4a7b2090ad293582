//! Items by their content: the map from an item's content vector into the collaborative
//! space (ALS item factors), and content similarity as a model.
//!
//! Owns the math, not the features: a caller (`serving::content`) turns catalog items into
//! content vectors (hashed catalog features, the search embedder's text vector, the shop's
//! own vectors) and hands them over as rows aligned with the training item indices.
//!
//! [`ContentMap`] is ridge regression from content vectors to ALS item factors, trained on
//! the items that have interactions (Gantner et al. 2010, "Learning attribute-to-feature
//! mappings for cold-start recommendations": the linear map, fitted by least squares).
//! `W = (XᵀX + λI)⁻¹ XᵀY` on centred X and Y; λ is chosen on every tenth warm item held
//! out (mean squared error of the predicted factors), then the map is refitted on all.
//! Cost: `O(n·d²)` for the Gram matrix and `O(d³)` per λ for its Cholesky factor (d ≈ 900
//! with a 384-d text vector: well under a second), `O(d·f)` per mapped item. Only factor
//! models get a map: a dense model such as EASE has no item representation a content
//! vector could be regressed on short of its whole n × n column, whose size grows with the
//! catalog (a cold item's EASE column is zero, and the content source serves it instead).
//!
//! [`ContentKnn`] scores every item by its summed content similarity to the user's items
//! (item-kNN over content vectors with every neighbour kept: `Σ_j w_j·cos(i, j)`, computed
//! as one dot product with `Σ_j w_j·v_j` since the vectors are unit length).
//! [`AlsContent`] is ALS whose items without interactions take mapped factors.

use serde::{Deserialize, Serialize};

use super::als::{AlsModel, AlsParams};
use super::artifact::{Array, Artifact};
use super::kernels::dot;
use super::{Interactions, Recommender};
use crate::error::{Error, Result};

/// Names of the content models `souk eval` knows besides the registry's: they read the
/// catalog (`graph`: the item graph of `recommend::graph`; `blend_graph`: the default blend
/// with the graph as one more part).
pub const CONTENT_MODELS: &[&str] = &["als_content", "content_knn", "graph", "blend_graph"];

/// The ridge penalties tried, relative to the mean diagonal of the Gram matrix.
pub const RIDGE_GRID: [f64; 5] = [0.01, 0.1, 1.0, 10.0, 100.0];

/// Content vectors of items, one unit-length (or zero) row of `dim` values per item.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContentRows {
    pub dim: usize,
    pub rows: Vec<f32>,
}

impl ContentRows {
    pub fn new(dim: usize, n_items: usize) -> Self {
        Self { dim, rows: vec![0.0; dim * n_items] }
    }

    pub fn len(&self) -> usize {
        self.rows.len().checked_div(self.dim).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.rows[i * self.dim..(i + 1) * self.dim]
    }

    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.rows[i * self.dim..(i + 1) * self.dim]
    }

    /// Whether item `i` has any content.
    pub fn has(&self, i: usize) -> bool {
        self.row(i).iter().any(|x| *x != 0.0)
    }
}

/// Ridge regression from content vectors to factor vectors; see the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentMap {
    pub dim_in: usize,
    pub dim_out: usize,
    /// The chosen penalty (absolute).
    pub lambda: f64,
    /// Held-out mean squared error per relative penalty tried, and of predicting the mean.
    pub validation: Vec<(f64, f64)>,
    pub baseline_mse: f64,
    #[serde(skip)]
    mean_in: Vec<f32>,
    #[serde(skip)]
    mean_out: Vec<f32>,
    /// `dim_in × dim_out`, row-major.
    #[serde(skip)]
    weights: Vec<f32>,
}

impl ContentMap {
    /// Fit the map on the rows of `content` that have content and a non-zero target row
    /// in `targets` (`dim_out` values per item). `None` when fewer than 20 items qualify.
    pub fn train(content: &ContentRows, targets: &[f32], dim_out: usize) -> Result<Option<ContentMap>> {
        let n = content.len().min(targets.len() / dim_out.max(1));
        let usable: Vec<usize> = (0..n)
            .filter(|&i| content.has(i) && targets[i * dim_out..(i + 1) * dim_out].iter().any(|y| *y != 0.0))
            .collect();
        if usable.len() < 20 || dim_out == 0 {
            return Ok(None);
        }
        let (train, held): (Vec<usize>, Vec<usize>) = usable.iter().partition(|&&i| i % 10 != 0);
        let d = content.dim;
        let fit_on = |items: &[usize], relative: f64| -> Result<(ContentMap, f64)> {
            let problem = Problem::of(content, targets, dim_out, items);
            let lambda = relative * problem.mean_diagonal();
            Ok((problem.solve(lambda)?, lambda))
        };
        let baseline = Problem::of(content, targets, dim_out, &train);
        let baseline_mse = mse(&held, content, targets, dim_out, &|_| baseline.mean_out.clone());
        let mut validation = Vec::new();
        let mut best = (f64::INFINITY, RIDGE_GRID[0]);
        for relative in RIDGE_GRID {
            let (map, _) = fit_on(&train, relative)?;
            let error = mse(&held, content, targets, dim_out, &|x| map.predict(x));
            validation.push((relative, error));
            if error < best.0 {
                best = (error, relative);
            }
        }
        let (mut map, lambda) = fit_on(&usable, best.1)?;
        debug_assert_eq!(map.dim_in, d);
        map.lambda = lambda;
        map.validation = validation;
        map.baseline_mse = baseline_mse;
        Ok(Some(map))
    }

    /// The factor vector of a content vector.
    pub fn predict(&self, x: &[f32]) -> Vec<f32> {
        let mut y = self.mean_out.clone();
        for (p, (&xp, &mp)) in x.iter().zip(&self.mean_in).enumerate() {
            let centred = xp - mp;
            if centred != 0.0 {
                for (yq, w) in y.iter_mut().zip(&self.weights[p * self.dim_out..(p + 1) * self.dim_out]) {
                    *yq += centred * w;
                }
            }
        }
        y
    }

    pub fn to_artifact(&self) -> Result<Artifact> {
        let params =
            serde_json::to_value(self).map_err(|e| Error::Internal(format!("encoding the content map: {e}")))?;
        Ok(Artifact {
            name: "content_map".into(),
            params,
            arrays: vec![
                Array::F32(self.mean_in.clone()),
                Array::F32(self.mean_out.clone()),
                Array::F32(self.weights.clone()),
            ],
        })
    }

    pub fn from_artifact(artifact: Artifact) -> Result<Self> {
        if artifact.name != "content_map" {
            return Err(super::artifact::corrupt_artifact(format!(
                "expected a content map, found {:?}",
                artifact.name
            )));
        }
        let mut map: ContentMap = serde_json::from_value(artifact.params.clone())
            .map_err(|e| super::artifact::corrupt_artifact(format!("content map params: {e}")))?;
        let mut arrays = artifact.arrays.into_iter();
        map.mean_in = Artifact::f32_array(&mut arrays, "mean_in", map.dim_in)?;
        map.mean_out = Artifact::f32_array(&mut arrays, "mean_out", map.dim_out)?;
        map.weights = Artifact::f32_array(&mut arrays, "weights", map.dim_in * map.dim_out)?;
        Ok(map)
    }
}

fn mse(
    items: &[usize],
    content: &ContentRows,
    targets: &[f32],
    dim_out: usize,
    predict: &dyn Fn(&[f32]) -> Vec<f32>,
) -> f64 {
    let mut total = 0.0;
    for &i in items {
        let y = predict(content.row(i));
        total +=
            y.iter().zip(&targets[i * dim_out..(i + 1) * dim_out]).map(|(a, b)| f64::from(a - b).powi(2)).sum::<f64>();
    }
    total / items.len().max(1) as f64
}

/// The normal equations of one fit: centred Gram matrix and right-hand sides.
struct Problem {
    d: usize,
    f: usize,
    gram: Vec<f64>,
    rhs: Vec<f64>,
    mean_in: Vec<f32>,
    mean_out: Vec<f32>,
}

impl Problem {
    fn of(content: &ContentRows, targets: &[f32], f: usize, items: &[usize]) -> Problem {
        let d = content.dim;
        let n = items.len().max(1) as f64;
        let mut mean_in = vec![0f64; d];
        let mut mean_out = vec![0f64; f];
        for &i in items {
            for (m, x) in mean_in.iter_mut().zip(content.row(i)) {
                *m += f64::from(*x) / n;
            }
            for (m, y) in mean_out.iter_mut().zip(&targets[i * f..(i + 1) * f]) {
                *m += f64::from(*y) / n;
            }
        }
        // XᵀX − n·x̄x̄ᵀ and XᵀY − n·x̄ȳᵀ: the centred products, accumulated over the
        // non-zero inputs of each row (hashed features are sparse).
        let mut gram = vec![0f64; d * d];
        let mut rhs = vec![0f64; d * f];
        let mut nonzero: Vec<(usize, f64)> = Vec::with_capacity(d);
        for &i in items {
            nonzero.clear();
            nonzero
                .extend(content.row(i).iter().enumerate().filter(|(_, x)| **x != 0.0).map(|(p, x)| (p, f64::from(*x))));
            let y = &targets[i * f..(i + 1) * f];
            for &(p, xp) in &nonzero {
                let row = &mut gram[p * d..(p + 1) * d];
                for &(q, xq) in &nonzero {
                    row[q] += xp * xq;
                }
                for (r, yq) in rhs[p * f..(p + 1) * f].iter_mut().zip(y) {
                    *r += xp * f64::from(*yq);
                }
            }
        }
        for p in 0..d {
            for q in 0..d {
                gram[p * d + q] -= n * mean_in[p] * mean_in[q];
            }
            for q in 0..f {
                rhs[p * f + q] -= n * mean_in[p] * mean_out[q];
            }
        }
        Problem {
            d,
            f,
            gram,
            rhs,
            mean_in: mean_in.into_iter().map(|v| v as f32).collect(),
            mean_out: mean_out.into_iter().map(|v| v as f32).collect(),
        }
    }

    fn mean_diagonal(&self) -> f64 {
        ((0..self.d).map(|p| self.gram[p * self.d + p]).sum::<f64>() / self.d.max(1) as f64).max(1e-12)
    }

    fn solve(&self, lambda: f64) -> Result<ContentMap> {
        let (d, f) = (self.d, self.f);
        let mut a = self.gram.clone();
        for p in 0..d {
            a[p * d + p] += lambda;
        }
        if !cholesky_in_place(&mut a, d) {
            return Err(Error::Internal(format!(
                "content map: the Gram matrix is not positive definite at λ {lambda}"
            )));
        }
        let mut weights = vec![0f32; d * f];
        let mut column = vec![0f64; d];
        for q in 0..f {
            for (p, c) in column.iter_mut().enumerate() {
                *c = self.rhs[p * f + q];
            }
            cholesky_solve(&a, &mut column, d);
            for (p, c) in column.iter().enumerate() {
                weights[p * f + q] = *c as f32;
            }
        }
        Ok(ContentMap {
            dim_in: d,
            dim_out: f,
            lambda,
            validation: Vec::new(),
            baseline_mse: 0.0,
            mean_in: self.mean_in.clone(),
            mean_out: self.mean_out.clone(),
            weights,
        })
    }
}

/// Cholesky factor `L` (lower triangle, row-major) of a symmetric positive definite matrix,
/// in place; false when it is not positive definite.
fn cholesky_in_place(a: &mut [f64], n: usize) -> bool {
    for j in 0..n {
        let mut s = a[j * n + j];
        for k in 0..j {
            s -= a[j * n + k] * a[j * n + k];
        }
        if s <= 0.0 || !s.is_finite() {
            return false;
        }
        let ljj = s.sqrt();
        a[j * n + j] = ljj;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / ljj;
        }
    }
    true
}

/// Solve `L·Lᵀ·x = b` in place with the factor of [`cholesky_in_place`].
fn cholesky_solve(l: &[f64], b: &mut [f64], n: usize) {
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= l[k * n + i] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// Content similarity to the user's items; see the module docs.
pub struct ContentKnn {
    content: ContentRows,
}

impl ContentKnn {
    /// Over content rows aligned with the training items.
    pub fn new(content: ContentRows) -> Self {
        Self { content }
    }
}

impl Recommender for ContentKnn {
    fn name(&self) -> &str {
        "content_knn"
    }

    fn score(&self, _user: Option<u32>, history: &[(u32, f32)], scores: &mut [f32]) {
        let d = self.content.dim;
        let mut profile = vec![0f32; d];
        for &(j, w) in history {
            if (j as usize) < self.content.len() {
                for (p, x) in profile.iter_mut().zip(self.content.row(j as usize)) {
                    *p += w * x;
                }
            }
        }
        for (i, s) in scores.iter_mut().enumerate() {
            *s = if i < self.content.len() { dot(&profile, self.content.row(i)) } else { 0.0 };
        }
    }
}

/// ALS whose items without interactions in training take the content map's factors.
pub struct AlsContent {
    als: AlsModel,
    /// (item, mapped factors) of the items without interactions.
    mapped: Vec<(u32, Vec<f32>)>,
    pub map: Option<ContentMap>,
}

impl AlsContent {
    /// Train ALS on `data`, the map on its items with interactions, and map the others.
    pub fn train(data: &Interactions, params: &AlsParams, content: &ContentRows) -> Result<Self> {
        let als = super::als::train(data, params)?;
        let map = ContentMap::train(content, &als.item_factors, als.params.factors)?;
        let mut counts = vec![0u32; data.n_items()];
        for &i in &data.indices {
            counts[i as usize] += 1;
        }
        let mapped = match &map {
            Some(map) => (0..data.n_items())
                .filter(|&i| counts[i] == 0 && i < content.len() && content.has(i))
                .map(|i| (i as u32, map.predict(content.row(i))))
                .collect(),
            None => Vec::new(),
        };
        Ok(Self { als, mapped, map })
    }
}

impl Recommender for AlsContent {
    fn name(&self) -> &str {
        "als_content"
    }

    fn score(&self, user: Option<u32>, history: &[(u32, f32)], scores: &mut [f32]) {
        let f = self.als.params.factors;
        let folded;
        let xu: &[f32] = match user {
            Some(u) if (u as usize) < self.als.n_users => &self.als.user_factors[u as usize * f..(u as usize + 1) * f],
            _ => {
                folded = self.als.fold_in(history);
                &folded
            }
        };
        for (s, yi) in scores.iter_mut().zip(self.als.item_factors.chunks_exact(f)) {
            *s = dot(xu, yi);
        }
        for (i, factors) in &self.mapped {
            if let Some(s) = scores.get_mut(*i as usize) {
                *s = dot(xu, factors);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows with a known linear relation to their targets: the map recovers it.
    #[test]
    fn the_map_recovers_a_linear_relation_and_round_trips() {
        let (n, d, f) = (300, 12, 3);
        let mut content = ContentRows::new(d, n);
        let mut targets = vec![0f32; n * f];
        let truth: Vec<f32> = (0..d * f).map(|k| ((k * 7919) % 13) as f32 / 13.0 - 0.5).collect();
        for i in 0..n {
            for p in 0..d {
                content.row_mut(i)[p] = (((i * 31 + p * 17) % 23) as f32 / 23.0) - 0.4;
            }
            for q in 0..f {
                targets[i * f + q] = 0.3 + (0..d).map(|p| content.row(i)[p] * truth[p * f + q]).sum::<f32>();
            }
        }
        let map = ContentMap::train(&content, &targets, f).unwrap().unwrap();
        assert_eq!(map.validation.len(), RIDGE_GRID.len());
        let best = map.validation.iter().map(|v| v.1).fold(f64::INFINITY, f64::min);
        assert!(
            best < map.baseline_mse / 100.0,
            "{:?} against predicting the mean {}",
            map.validation,
            map.baseline_mse
        );
        for i in [0, 17, 299] {
            let y = map.predict(content.row(i));
            for q in 0..f {
                assert!((y[q] - targets[i * f + q]).abs() < 0.05, "item {i}: {y:?}");
            }
        }
        let mut bytes = Vec::new();
        map.to_artifact().unwrap().write_to(&mut bytes).unwrap();
        let again = ContentMap::from_artifact(Artifact::read_from(&mut bytes.as_slice()).unwrap()).unwrap();
        assert_eq!(again, map);
        assert_eq!(again.predict(content.row(5)), map.predict(content.row(5)));
        // Too few items: no map.
        assert!(ContentMap::train(&ContentRows::new(d, 5), &targets[..5 * f], f).unwrap().is_none());
    }

    #[test]
    fn content_knn_sums_cosines_to_the_history() {
        let mut content = ContentRows::new(2, 3);
        content.row_mut(0).copy_from_slice(&[1.0, 0.0]);
        content.row_mut(1).copy_from_slice(&[0.6, 0.8]);
        content.row_mut(2).copy_from_slice(&[0.0, 1.0]);
        let model = ContentKnn::new(content);
        let mut scores = vec![0f32; 3];
        model.score(None, &[(0, 1.0), (2, 2.0)], &mut scores);
        assert!((scores[1] - (0.6 + 2.0 * 0.8)).abs() < 1e-6, "{scores:?}");
        assert!((scores[0] - 1.0).abs() < 1e-6 && (scores[2] - 2.0).abs() < 1e-6);
    }
}
