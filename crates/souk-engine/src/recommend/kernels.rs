//! Small numeric kernels shared by the models: dense dot/axpy written so the compiler
//! vectorises them, the sparse item × item neighbour matrix that item-kNN and RP3beta
//! both produce, and the parameter-checking helpers.
//!
//! Owns no model logic; never allocates inside the per-item loops.

use rayon::prelude::*;

use super::artifact::{Array, Artifact};
use super::data::Interactions;
use crate::{Error, Result, ValidationError};

/// `out[r] = Σ query[k]·rows[r·d + k]` for the `out.len()` rows of width `d = query.len()`
/// stored back to back in `rows`: the scan of a vector search. One run-time dispatch to the
/// widest vectors the CPU has (fused multiply-add where present, through `pulp`) covers all
/// rows, so the scan gets the full vector width and fused multiply-adds that [`dot`], built
/// for the baseline instruction set, does not (the scan was 18% of a hybrid search server's
/// CPU before; see BENCHMARKS.md).
pub(crate) fn dot_rows(query: &[f32], rows: &[f32], out: &mut [f32]) {
    struct Scan<'a> {
        query: &'a [f32],
        rows: &'a [f32],
        out: &'a mut [f32],
    }
    impl pulp::WithSimd for Scan<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, simd: S) {
            let dim = self.query.len();
            let (q_head, q_tail) = S::as_simd_f32s(self.query);
            for (r, out) in self.out.iter_mut().enumerate() {
                let row = &self.rows[r * dim..(r + 1) * dim];
                let (w_head, w_tail) = S::as_simd_f32s(row);
                let mut acc = [simd.splat_f32s(0.0); 4];
                let mut chunks_q = q_head.chunks_exact(4);
                let mut chunks_w = w_head.chunks_exact(4);
                for (q, w) in (&mut chunks_q).zip(&mut chunks_w) {
                    for k in 0..4 {
                        acc[k] = simd.mul_add_e_f32s(q[k], w[k], acc[k]);
                    }
                }
                for (&q, &w) in chunks_q.remainder().iter().zip(chunks_w.remainder()) {
                    acc[0] = simd.mul_add_e_f32s(q, w, acc[0]);
                }
                let sum = simd.add_f32s(simd.add_f32s(acc[0], acc[1]), simd.add_f32s(acc[2], acc[3]));
                let tail: f32 = q_tail.iter().zip(&row[dim - w_tail.len()..]).map(|(a, b)| a * b).sum();
                *out = simd.reduce_sum_f32s(sum) + tail;
            }
        }
    }
    debug_assert!(rows.len() >= out.len() * query.len());
    pulp::Arch::new().dispatch(Scan { query, rows, out });
}

/// `Σ a[k]·b[k]`, with eight independent accumulators so the loop vectorises (a single
/// running sum is a serial dependency chain the compiler may not reorder for floats).
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    acc.iter().sum::<f32>() + tail
}

/// `y += alpha·x`.
#[inline]
pub(crate) fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yk, xk) in y.iter_mut().zip(x) {
        *yk += alpha * xk;
    }
}

pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::Invalid(ValidationError::new("invalid_value", field, message))
}

/// Check `value` is finite and inside `[lo, hi]`.
pub(crate) fn check_range(field: &str, value: f32, lo: f32, hi: f32) -> Result<()> {
    if value.is_finite() && value >= lo && value <= hi {
        Ok(())
    } else {
        Err(invalid(field, format!("expected a number in [{lo}, {hi}], found {value}")))
    }
}

/// Parse a model's parameters from JSON, naming the model in the error.
pub(crate) fn params_from_json<P: serde::de::DeserializeOwned>(model: &str, params: &serde_json::Value) -> Result<P> {
    serde_json::from_value(params.clone()).map_err(|e| {
        Error::Invalid(ValidationError::new("invalid_params", model, format!("invalid {model} parameters: {e}")))
    })
}

/// A sparse item × item matrix in CSR form: row `i` holds the neighbours `j` of item `i`
/// and their weights, so a user's scores are `Σ_{i ∈ history} w_i · row_i`.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Neighbours {
    pub n_items: usize,
    pub indptr: Vec<u32>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl Neighbours {
    /// The artifact of a neighbourhood model (item-kNN, RP3beta): its parameters plus the
    /// shape fields, then the neighbour arrays.
    pub fn to_artifact<P: serde::Serialize>(&self, name: &str, params: &P) -> Option<Artifact> {
        let mut params = serde_json::to_value(params).ok()?;
        params["n_items"] = self.n_items.into();
        params["nnz"] = self.indices.len().into();
        Some(Artifact { name: name.into(), params, arrays: self.clone().into_arrays() })
    }

    /// Read back what [`Neighbours::to_artifact`] wrote.
    pub fn from_artifact<P: serde::de::DeserializeOwned>(artifact: Artifact) -> Result<(P, Neighbours)> {
        let n_items = artifact.shape("n_items")?;
        let nnz = artifact.shape("nnz")?;
        let params = artifact.model_params(&["n_items", "nnz"])?;
        let mut arrays = artifact.arrays.into_iter();
        let neighbours = Neighbours::from_arrays(&mut arrays, n_items, nnz)?;
        Ok((params, neighbours))
    }

    /// Build row by row, in parallel over items. `left` is item-major (item → users with
    /// weights), `right` user-major (user → items with weights); the raw co-occurrence
    /// `d_ij = Σ_u left[i][u] · right[u][j]` is computed with one dense accumulator per
    /// worker (sparse × sparse, touching only co-occurring pairs: cost Σ_u |row_u|² per
    /// pass), then `finish(i, j, d_ij)` maps it to the final weight, and the `k` largest
    /// positive weights with `j ≠ i` are kept.
    pub fn top_k(
        left: &Interactions,
        right: &Interactions,
        k: usize,
        finish: impl Fn(usize, usize, f32) -> f32 + Sync,
    ) -> Neighbours {
        let n_items = left.indptr.len().saturating_sub(1);
        let rows: Vec<Vec<(u32, f32)>> = (0..n_items)
            .into_par_iter()
            .map_init(
                || (vec![0f32; n_items], Vec::<u32>::new()),
                |(acc, touched), i| {
                    let (users, lw) = left.row(i);
                    for (&u, &a) in users.iter().zip(lw) {
                        let (items, rw) = right.row(u as usize);
                        for (&j, &b) in items.iter().zip(rw) {
                            let slot = &mut acc[j as usize];
                            if *slot == 0.0 {
                                touched.push(j);
                            }
                            *slot += a * b;
                        }
                    }
                    let mut row: Vec<(u32, f32)> = Vec::with_capacity(touched.len());
                    for &j in touched.iter() {
                        let d = std::mem::take(&mut acc[j as usize]);
                        if j as usize != i && d != 0.0 {
                            let w = finish(i, j as usize, d);
                            if w > 0.0 && w.is_finite() {
                                row.push((j, w));
                            }
                        }
                    }
                    touched.clear();
                    if row.len() > k {
                        row.select_nth_unstable_by(k, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                        row.truncate(k);
                    }
                    row.sort_unstable_by_key(|(j, _)| *j);
                    row
                },
            )
            .collect();
        let mut out = Neighbours { n_items, indptr: vec![0], ..Default::default() };
        for row in rows {
            for (j, w) in row {
                out.indices.push(j);
                out.values.push(w);
            }
            out.indptr.push(out.indices.len() as u32);
        }
        out
    }

    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let range = self.indptr[i] as usize..self.indptr[i + 1] as usize;
        (&self.indices[range.clone()], &self.values[range])
    }

    /// Divide each row by its sum (rows become distributions), as RP3beta's reference
    /// implementation optionally does.
    pub fn normalise_rows(&mut self) {
        for i in 0..self.n_items {
            let range = self.indptr[i] as usize..self.indptr[i + 1] as usize;
            let sum: f32 = self.values[range.clone()].iter().sum();
            if sum > 0.0 {
                self.values[range].iter_mut().for_each(|v| *v /= sum);
            }
        }
    }

    /// `scores = Σ_{(i, w) ∈ history} weight(w) · row_i`. Cost: Σ over history of row
    /// lengths (≤ k each), plus zeroing `scores`.
    pub fn score(&self, history: &[(u32, f32)], weight: impl Fn(f32) -> f32, scores: &mut [f32]) {
        scores.iter_mut().for_each(|s| *s = 0.0);
        for &(i, w) in history {
            if (i as usize) >= self.n_items {
                continue;
            }
            let w = weight(w);
            let (js, vs) = self.row(i as usize);
            for (&j, &v) in js.iter().zip(vs) {
                if let Some(s) = scores.get_mut(j as usize) {
                    *s += w * v;
                }
            }
        }
    }

    pub fn into_arrays(self) -> Vec<Array> {
        vec![Array::U32(self.indptr), Array::U32(self.indices), Array::F32(self.values)]
    }

    /// Rebuild from [`Self::into_arrays`]'s output, checking every index.
    pub fn from_arrays(arrays: &mut std::vec::IntoIter<Array>, n_items: usize, nnz: usize) -> Result<Neighbours> {
        let indptr = Artifact::u32_array(arrays, "neighbours.indptr", n_items + 1)?;
        let indices = Artifact::u32_array(arrays, "neighbours.indices", nnz)?;
        let values = Artifact::f32_array(arrays, "neighbours.values", nnz)?;
        let monotone = indptr.first() == Some(&0)
            && indptr.windows(2).all(|w| w[0] <= w[1])
            && indptr.last().map(|&e| e as usize) == Some(nnz);
        if !monotone || indices.iter().any(|&j| j as usize >= n_items) {
            return Err(super::artifact::corrupt_artifact("neighbours: inconsistent sparse structure"));
        }
        Ok(Neighbours { n_items, indptr, indices, values })
    }
}

/// `data` with every weight replaced by `f(weight)` (same structure and ids).
pub(crate) fn map_values(data: &Interactions, f: impl Fn(f32) -> f32) -> Interactions {
    Interactions {
        user_ids: data.user_ids.clone(),
        item_ids: data.item_ids.clone(),
        indptr: data.indptr.clone(),
        indices: data.indices.clone(),
        values: data.values.iter().map(|&v| f(v)).collect(),
        social: data.social.clone(),
    }
}

/// Like [`map_values`] but the mapping also sees the row index.
pub(crate) fn map_rows(data: &Interactions, f: impl Fn(usize, f32) -> f32) -> Interactions {
    let mut values = Vec::with_capacity(data.nnz());
    for u in 0..data.indptr.len().saturating_sub(1) {
        let (_, ws) = data.row(u);
        values.extend(ws.iter().map(|&w| f(u, w)));
    }
    Interactions {
        user_ids: data.user_ids.clone(),
        item_ids: data.item_ids.clone(),
        indptr: data.indptr.clone(),
        indices: data.indices.clone(),
        values,
        social: data.social.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_rows_matches_dot() {
        for dim in [1, 7, 8, 33, 384] {
            let query: Vec<f32> = (0..dim).map(|k| (k % 5) as f32 * 0.25 - 0.5).collect();
            let rows: Vec<f32> = (0..dim * 6).map(|k| ((k * 7) % 11) as f32 / 11.0 - 0.4).collect();
            let mut out = vec![f32::NAN; 6];
            dot_rows(&query, &rows, &mut out);
            for (r, &score) in out.iter().enumerate() {
                let expected = dot(&query, &rows[r * dim..(r + 1) * dim]);
                assert!((score - expected).abs() < 1e-4 * expected.abs().max(1.0), "{dim}: {score} vs {expected}");
            }
        }
    }

    #[test]
    fn dot_matches_naive_for_odd_lengths() {
        for n in [0, 1, 7, 8, 9, 31] {
            let a: Vec<f32> = (0..n).map(|k| k as f32 * 0.5 - 1.0).collect();
            let b: Vec<f32> = (0..n).map(|k| (k % 3) as f32).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive).abs() < 1e-4);
        }
    }
}
