//! Nearest neighbours by inner product among wide rows — content vectors: 512 hashed
//! catalog buckets, plus the text vector and the shop's own vectors — through their
//! principal directions.
//!
//! An [`IvfIndex`] over the full rows reads every probed row from its owner's array: at 1M
//! items × 512 dimensions that is two clusters of a thousand 2 KB rows at random places
//! per query, and a third of a recommendation's time went there. Here the rows are
//! projected onto their `reduced` strongest principal directions (the eigenvectors of the
//! second-moment matrix `XᵀX` of a sample: inner products, not distances from a mean, are
//! what the search preserves), the projections are indexed with a copy in cluster order
//! (read in sequence), and the best `k + extra` candidates by projected inner product are
//! scored exactly on their full rows (on the query's non-zero spans: the rest adds
//! nothing). The answer's scores are exact; only which rows are candidates is approximate,
//! measured against the exact scan by `souk bench ann --space content`.

use faer::linalg::matmul::matmul;

use super::ivf::{BuildEffort, IvfIndex, TopK};
use super::kernels::dot_rows;

/// Rows of the sample the principal directions are computed from.
const SAMPLE: usize = 20_000;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct ProjectedIndex {
    dim: usize,
    /// `reduced` rows of `dim`: the principal directions, strongest first.
    directions: Vec<f32>,
    ivf: IvfIndex,
}

impl ProjectedIndex {
    /// An index over `rows` (`dim` wide) projected onto `reduced` directions, with
    /// `clusters` clusters; deterministic for a seed. `None` when the directions cannot be
    /// computed (no rows, or an eigendecomposition that fails).
    pub fn build(
        rows: &[f32],
        dim: usize,
        reduced: usize,
        clusters: usize,
        seed: u64,
        effort: BuildEffort,
    ) -> Option<Self> {
        let n = rows.len().checked_div(dim).unwrap_or(0);
        let reduced = reduced.min(dim);
        if n == 0 || reduced == 0 {
            return None;
        }
        let step = n.div_ceil(SAMPLE);
        let sample: Vec<f32> = rows.chunks_exact(dim).step_by(step).flatten().copied().collect();
        let x = faer::MatRef::from_row_major_slice(&sample, sample.len() / dim, dim);
        let mut moments = faer::Mat::<f32>::zeros(dim, dim);
        matmul(moments.as_mut(), faer::Accum::Replace, x.transpose(), x, 1.0f32, faer::Par::rayon(0));
        let eigen = moments.self_adjoint_eigen(faer::Side::Lower).ok()?;
        let vectors = eigen.U();
        // Eigenvalues ascend: the strongest directions are the last columns.
        let directions: Vec<f32> =
            (0..reduced).flat_map(|r| vectors.col(dim - 1 - r).iter().copied().collect::<Vec<_>>()).collect();
        if directions.iter().any(|x| !x.is_finite()) {
            return None;
        }
        let mut projected = vec![0f32; n * reduced];
        let all = faer::MatRef::from_row_major_slice(&rows[..n * dim], n, dim);
        let onto = faer::MatRef::from_row_major_slice(&directions, reduced, dim);
        let out = faer::MatMut::from_row_major_slice_mut(&mut projected, n, reduced);
        matmul(out, faer::Accum::Replace, all, onto.transpose(), 1.0f32, faer::Par::rayon(0));
        let ivf = IvfIndex::build_with(&projected, reduced, clusters, seed, effort).with_copy(&projected);
        Some(Self { dim, directions, ivf })
    }

    /// The number of directions kept.
    pub fn reduced(&self) -> usize {
        self.directions.len() / self.dim.max(1)
    }

    /// Bytes the index holds besides the rows: the directions, the projections and the
    /// cluster index.
    pub fn memory_bytes(&self) -> usize {
        self.directions.len() * 4 + self.ivf.memory_bytes()
    }

    /// The `k` best of `rows` (the rows the index was built over) for `query` by exact
    /// inner product, best first, among the `k + extra` best by projected inner product
    /// (at least `probe_items` projections scored) that `skip` lets through.
    pub fn search(
        &self,
        rows: &[f32],
        query: &[f32],
        k: usize,
        probe_items: usize,
        extra: usize,
        skip: &mut dyn FnMut(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let dim = self.dim;
        if query.len() != dim || rows.len() < self.ivf.len() * dim {
            return Vec::new();
        }
        let mut projected = vec![0f32; self.reduced()];
        dot_rows(query, &self.directions, &mut projected);
        let candidates = self.ivf.search(&[], &projected, k + extra, probe_items, skip);
        // Where the query is zero the rows add nothing: content queries often lack whole
        // blocks (the text vector of a shop that embedded a share of its catalog), and a
        // candidate's exact score reads only the query's non-zero spans.
        let spans = nonzero_spans(query, SPAN);
        let mut top = TopK::new(k);
        let mut part = [0f32];
        for (i, _) in candidates {
            let row = &rows[i as usize * dim..(i as usize + 1) * dim];
            let mut score = 0.0;
            for span in &spans {
                dot_rows(&query[span.clone()], &row[span.clone()], &mut part);
                score += part[0];
            }
            top.push(i, score);
        }
        top.into_sorted()
    }
}

/// Width of the pieces [`nonzero_spans`] judges.
const SPAN: usize = 64;

/// The ranges of `v` outside which it is zero, judged in pieces of `width` (adjacent
/// non-zero pieces join).
fn nonzero_spans(v: &[f32], width: usize) -> Vec<std::ops::Range<usize>> {
    let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
    for (p, piece) in v.chunks(width.max(1)).enumerate() {
        if piece.iter().any(|x| *x != 0.0) {
            let range = p * width..p * width + piece.len();
            match spans.last_mut() {
                Some(last) if last.end == range.start => last.end = range.end,
                _ => spans.push(range),
            }
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::ivf::exact_search;
    use rand::{Rng, SeedableRng};

    /// Unit rows of rank 24 in 256 dimensions: around 40 centres, with noise, all in the
    /// span of 24 directions (so 32 principal directions lose nothing: what is tested is
    /// the index, the loss on real rows is measured by `souk bench ann --space content`).
    fn rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let basis: Vec<Vec<f32>> = (0..24).map(|_| (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect()).collect();
        let centres: Vec<Vec<f32>> = (0..40)
            .map(|_| {
                let weights: Vec<f32> = (0..24).map(|_| rng.gen_range(-1.0..1.0)).collect();
                (0..dim).map(|d| basis.iter().zip(&weights).map(|(b, w)| b[d] * w).sum()).collect()
            })
            .collect();
        let mut out = Vec::with_capacity(n * dim);
        for i in 0..n {
            let noise: Vec<f32> = (0..24).map(|_| rng.gen_range(-0.3..0.3)).collect();
            let row: Vec<f32> = (0..dim)
                .map(|d| centres[i % 40][d] + basis.iter().zip(&noise).map(|(b, w)| b[d] * w).sum::<f32>())
                .collect();
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            out.extend(row.iter().map(|x| x / norm));
        }
        out
    }

    #[test]
    fn finds_most_exact_neighbours_with_exact_scores_and_skips() {
        let (n, dim) = (20_000, 256);
        let data = rows(n, dim, 5);
        let effort = BuildEffort { sample_per_cluster: 16, iterations: 5 };
        let index = ProjectedIndex::build(&data, dim, 32, IvfIndex::clusters_for(n), 7, effort).expect("an index");
        assert_eq!(index.reduced(), 32);
        let (queries, k) = (30, 10);
        let mut found = 0;
        for q in 0..queries {
            let query = &data[q * 331 * dim..(q * 331 + 1) * dim];
            let exact = exact_search(&data, dim, query, k, &mut |_| false);
            let approx = index.search(&data, query, k, 2_000, 30, &mut |_| false);
            assert_eq!(approx.len(), k);
            // Scores are the full rows' inner products.
            for (i, s) in &approx {
                let row = &data[*i as usize * dim..(*i as usize + 1) * dim];
                let truth: f32 = row.iter().zip(query).map(|(a, b)| a * b).sum();
                assert!((s - truth).abs() < 1e-4, "{s} vs {truth}");
            }
            found += approx.iter().filter(|(i, _)| exact.iter().any(|(e, _)| e == i)).count();
        }
        assert!(found >= queries * k * 9 / 10, "recall@{k} {}", found as f32 / (queries * k) as f32);
        // Skipped rows never come back.
        let query = &data[..dim];
        let best = index.search(&data, query, 5, 2_000, 10, &mut |i| i % 2 == 0);
        assert_eq!(best.len(), 5);
        assert!(best.iter().all(|(i, _)| i % 2 == 1), "{best:?}");
    }

    #[test]
    fn scores_read_only_where_the_query_is_not_zero() {
        let mut v = vec![0f32; 300];
        v[3] = 1.0;
        v[70] = 2.0;
        v[299] = -1.0;
        assert_eq!(nonzero_spans(&v, 64), vec![0..128, 256..300]);
        assert!(nonzero_spans(&[0.0; 10], 4).is_empty());
        // A query with a zero block scores exactly as the full dot product does.
        let (n, dim) = (20_000, 256);
        let mut data = rows(n, dim, 9);
        for row in data.chunks_exact_mut(dim) {
            row[128..].iter_mut().for_each(|x| *x *= 0.5);
        }
        let index =
            ProjectedIndex::build(&data, dim, 32, IvfIndex::clusters_for(n), 7, BuildEffort::default()).unwrap();
        let mut query = data[..dim].to_vec();
        query[128..192].iter_mut().for_each(|x| *x = 0.0);
        for (i, s) in index.search(&data, &query, 10, 2_000, 10, &mut |_| false) {
            let row = &data[i as usize * dim..(i as usize + 1) * dim];
            let truth: f32 = row.iter().zip(&query).map(|(a, b)| a * b).sum();
            assert!((s - truth).abs() < 1e-4, "{s} vs {truth}");
        }
    }

    #[test]
    fn no_rows_no_index() {
        assert!(ProjectedIndex::build(&[], 8, 4, 1, 1, BuildEffort::default()).is_none());
    }
}
