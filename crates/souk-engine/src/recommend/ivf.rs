//! An inverted-file index for maximum-inner-product search over item factors, so serving
//! scores a few thousand items per request instead of the whole catalog.
//!
//! Build: spherical k-means (cosine) on the item vectors with √n clusters, items stored
//! contiguously by cluster. Search: score every centroid against the query, visit the best
//! clusters until `probe_items` items were scored exactly, keep the top `k`. With factors
//! normalised per cluster direction, the clusters whose centroids score highest hold the
//! items whose inner products are largest (Auvolat et al. 2015, "Clustering is efficient
//! for approximate maximum inner product search"); below [`EXACT_BELOW`] items the search is
//! exact. Cost per query: (clusters + probed items) × factors multiply-adds; the index holds
//! no copy of the vectors (their owner passes them in).
//!
//! Norm bounds. Trained factors are skewed in length (popular items long, the long tail near
//! zero: at 700k items of a generated shop the median norm was 0.007 and the largest 23), so
//! the largest inner products belong to long vectors in many directions, which direction
//! clusters alone find badly (recall@10 0.36 at 8,000 probed items of 700k). Within a
//! cluster items are stored longest first, and by Cauchy–Schwarz no item beats
//! `‖q‖·‖x‖`: a cluster whose longest item cannot enter the top `k` is skipped, and a
//! cluster's scan stops at the first block that cannot (the length-based pruning of
//! Teflioudi et al. 2015, "LEMP"). Pruned items cost one comparison and do not count
//! against `probe_items`, so the same budget reaches every cluster that could matter.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::kernels::{dot, dot_rows};

/// Catalogs smaller than this are searched exhaustively.
pub const EXACT_BELOW: usize = 20_000;

/// Rows scored between two length checks of a cluster's scan.
const BOUND_BLOCK: usize = 32;

/// The Cauchy–Schwarz bound, loosened by float rounding of the dot products it is compared
/// with (a row whose bound ties the `k`-th score is still scored).
const BOUND_SLACK: f32 = 1.0 + 1e-5;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct IvfIndex {
    dims: usize,
    centroids: Vec<f32>,
    /// Cluster `c` holds `order[offsets[c]..offsets[c + 1]]`.
    offsets: Vec<usize>,
    /// Item numbers in cluster order.
    order: Vec<u32>,
    /// Length of item `order[k]`'s vector: longest first within a cluster.
    norms: Vec<f32>,
    /// The vectors in cluster order (row `k` is item `order[k]`), when the index keeps a
    /// copy: scanned in sequence, 3× the queries per second of reading each probed row from
    /// its owner's array (64 factors, 700k items). Wide rows (content and text vectors) are
    /// read from their owner instead, who passes them to [`IvfIndex::search`]: a copy of a
    /// million 512-dimension content vectors is 2 GB.
    copy: Option<Vec<f32>>,
}

fn normalised(v: &[f32]) -> Vec<f32> {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 {
        v.iter().map(|x| x / norm).collect()
    } else {
        v.to_vec()
    }
}

impl IvfIndex {
    /// The number of clusters used for `n` items: one (exact search) below
    /// [`EXACT_BELOW`], else √n.
    pub fn clusters_for(n: usize) -> usize {
        if n < EXACT_BELOW {
            1
        } else {
            ((n as f64).sqrt() as usize).max(1)
        }
    }

    /// Build over `vectors` (n × dims, row-major) with `clusters` clusters (see
    /// [`IvfIndex::clusters_for`]); deterministic for a seed.
    pub fn build(vectors: &[f32], dims: usize, clusters: usize, seed: u64) -> Self {
        Self::build_with(vectors, dims, clusters, seed, BuildEffort::default())
    }

    /// Keep a copy of the vectors in cluster order (see the `copy` field): for narrow rows
    /// such as factors.
    pub fn with_copy(mut self, vectors: &[f32]) -> Self {
        let mut copy = Vec::with_capacity(self.order.len() * self.dims);
        for &i in &self.order {
            copy.extend_from_slice(&vectors[i as usize * self.dims..(i as usize + 1) * self.dims]);
        }
        self.copy = Some(copy);
        self
    }

    /// [`IvfIndex::build`] with a chosen k-means effort (wide vectors want less: the
    /// sample's cost is `clusters × sample_per_cluster × clusters × dims` per iteration).
    pub fn build_with(vectors: &[f32], dims: usize, clusters: usize, seed: u64, effort: BuildEffort) -> Self {
        let n = vectors.len().checked_div(dims).unwrap_or(0);
        let clusters = clusters.clamp(1, n.max(1));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let units: Vec<Vec<f32>> = (0..n).map(|i| normalised(&vectors[i * dims..(i + 1) * dims])).collect();
        let mut centroids: Vec<Vec<f32>> =
            (0..clusters).map(|_| units[rng.gen_range(0..n.max(1)).min(n.saturating_sub(1))].clone()).collect();
        let mut assignment = vec![0usize; n];
        if clusters > 1 {
            // Lloyd iterations on a sample keep building time near-linear in n.
            let sample: Vec<usize> =
                (0..(clusters * effort.sample_per_cluster).min(n)).map(|_| rng.gen_range(0..n)).collect();
            for _ in 0..effort.iterations {
                let mut sums = vec![vec![0f32; dims]; clusters];
                let mut counts = vec![0usize; clusters];
                let flat = centroids.concat();
                let mut scratch = vec![0f32; clusters];
                for &i in &sample {
                    let c = nearest(&flat, &units[i], &mut scratch);
                    counts[c] += 1;
                    for (s, x) in sums[c].iter_mut().zip(&units[i]) {
                        *s += x;
                    }
                }
                for c in 0..clusters {
                    if counts[c] > 0 {
                        centroids[c] = normalised(&sums[c]);
                    } else {
                        centroids[c] = units[rng.gen_range(0..n)].clone();
                    }
                }
            }
            use rayon::prelude::*;
            let flat = centroids.concat();
            assignment =
                units.par_iter().map_init(|| vec![0f32; clusters], |scratch, u| nearest(&flat, u, scratch)).collect();
        }
        let mut offsets = vec![0usize; clusters + 1];
        for &c in &assignment {
            offsets[c + 1] += 1;
        }
        for c in 0..clusters {
            offsets[c + 1] += offsets[c];
        }
        let mut next = offsets.clone();
        let mut order = vec![0u32; n];
        for (i, &c) in assignment.iter().enumerate() {
            order[next[c]] = i as u32;
            next[c] += 1;
        }
        let length = |i: u32| {
            dot(
                &vectors[i as usize * dims..(i as usize + 1) * dims],
                &vectors[i as usize * dims..(i as usize + 1) * dims],
            )
            .sqrt()
        };
        let lengths: Vec<f32> = (0..n as u32).map(length).collect();
        for c in 0..clusters {
            order[offsets[c]..offsets[c + 1]]
                .sort_by(|a, b| lengths[*b as usize].total_cmp(&lengths[*a as usize]).then(a.cmp(b)));
        }
        let norms = order.iter().map(|&i| lengths[i as usize]).collect();
        Self { dims, centroids: centroids.concat(), offsets, order, norms, copy: None }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Bytes the index holds besides the vectors: the centroids, the item numbers, their
    /// lengths and the cluster offsets.
    pub fn memory_bytes(&self) -> usize {
        (self.centroids.len() + self.norms.len() + self.order.len() + self.copy.as_ref().map_or(0, Vec::len)) * 4
            + self.offsets.len() * 8
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The best items for `query` by inner product among `vectors` (the rows the index was
    /// built over; unused when it keeps a copy), best first: at least `probe_items`
    /// items are scored exactly (all of them for small catalogs); `skip` rejects items
    /// (exclusions, filters) before they take a place in the top `k`.
    pub fn search(
        &self,
        vectors: &[f32],
        query: &[f32],
        k: usize,
        probe_items: usize,
        mut skip: impl FnMut(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let dims = self.dims;
        if query.len() != dims || (self.copy.is_none() && vectors.len() < self.order.len() * dims) {
            return Vec::new();
        }
        let clusters = self.offsets.len() - 1;
        let mut ranked: Vec<(usize, f32)> =
            (0..clusters).map(|c| (c, dot(query, &self.centroids[c * self.dims..(c + 1) * self.dims]))).collect();
        ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        let query_norm = dot(query, query).sqrt();
        let mut top = TopK::new(k);
        let mut scored = 0;
        let mut scores = [0f32; BOUND_BLOCK];
        for (c, _) in ranked {
            if scored >= probe_items && top.is_full() {
                break;
            }
            let (first, end) = (self.offsets[c], self.offsets[c + 1]);
            let mut at = first;
            // Longest first: once a block's longest row cannot enter, no later row can.
            while at < end && top.admits(query_norm * self.norms[at] * BOUND_SLACK) {
                let block = (end - at).min(BOUND_BLOCK);
                match &self.copy {
                    Some(copy) => {
                        let scores = &mut scores[..block];
                        dot_rows(query, &copy[at * dims..(at + block) * dims], scores);
                        for (&item, &score) in self.order[at..at + block].iter().zip(scores.iter()) {
                            if top.admits(score) && !skip(item) {
                                top.push(item, score);
                            }
                        }
                    }
                    None => {
                        for &item in &self.order[at..at + block] {
                            let row = item as usize * dims;
                            let score = dot(query, &vectors[row..row + dims]);
                            if top.admits(score) && !skip(item) {
                                top.push(item, score);
                            }
                        }
                    }
                }
                scored += block;
                at += block;
            }
        }
        top.into_sorted()
    }
}

/// The `k` best of all `rows` (`dim` wide) for `query` by inner product among those `skip`
/// lets through, best first: the exact scan, for row sets too small for an index.
pub fn exact_search(
    rows: &[f32],
    dim: usize,
    query: &[f32],
    k: usize,
    skip: &mut dyn FnMut(u32) -> bool,
) -> Vec<(u32, f32)> {
    let mut top = TopK::new(k);
    scan_into(&mut top, rows, dim, 0, query, skip);
    top.into_sorted()
}

/// Score every row of `rows` (numbered from `first`) into `top`, in blocks.
pub(super) fn scan_into(
    top: &mut TopK,
    rows: &[f32],
    dim: usize,
    first: u32,
    query: &[f32],
    skip: &mut dyn FnMut(u32) -> bool,
) {
    if dim == 0 || query.len() != dim {
        return;
    }
    let mut scores = [0f32; 256];
    for (b, block) in rows.chunks(256 * dim).enumerate() {
        let scores = &mut scores[..block.len() / dim];
        dot_rows(query, block, scores);
        for (r, &s) in scores.iter().enumerate() {
            let i = first + (b * 256 + r) as u32;
            if top.admits(s) && !skip(i) {
                top.push(i, s);
            }
        }
    }
}

/// How hard the k-means of [`IvfIndex::build_with`] works: Lloyd iterations on a sample of
/// `sample_per_cluster` vectors per cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildEffort {
    pub sample_per_cluster: usize,
    pub iterations: usize,
}

impl Default for BuildEffort {
    fn default() -> Self {
        Self { sample_per_cluster: 64, iterations: 8 }
    }
}

/// The centroid (rows of `centroids`, back to back) nearest to `unit`; `scratch` holds one
/// score per centroid.
fn nearest(centroids: &[f32], unit: &[f32], scratch: &mut [f32]) -> usize {
    dot_rows(unit, centroids, scratch);
    let mut best = (0, f32::NEG_INFINITY);
    for (c, &s) in scratch.iter().enumerate() {
        if s > best.1 {
            best = (c, s);
        }
    }
    best.0
}

/// The `k` largest (item, score) pairs seen, with an admission threshold so most
/// candidates are rejected by one comparison.
pub struct TopK {
    k: usize,
    heap: std::collections::BinaryHeap<std::cmp::Reverse<(OrdF32, u32)>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct OrdF32(f32);

impl Eq for OrdF32 {}

impl PartialOrd for OrdF32 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrdF32 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl TopK {
    pub fn new(k: usize) -> Self {
        Self { k, heap: std::collections::BinaryHeap::with_capacity(k + 1) }
    }

    pub fn is_full(&self) -> bool {
        self.heap.len() >= self.k
    }

    /// Whether a candidate with this score could enter.
    pub fn admits(&self, score: f32) -> bool {
        score.is_finite() && (!self.is_full() || self.heap.peek().is_some_and(|m| score > m.0 .0 .0))
    }

    pub fn push(&mut self, item: u32, score: f32) {
        if self.k == 0 || !self.admits(score) {
            return;
        }
        self.heap.push(std::cmp::Reverse((OrdF32(score), item)));
        if self.heap.len() > self.k {
            self.heap.pop();
        }
    }

    /// Best first; ties by item number.
    pub fn into_sorted(self) -> Vec<(u32, f32)> {
        let mut out: Vec<(u32, f32)> = self.heap.into_iter().map(|std::cmp::Reverse((s, i))| (i, s.0)).collect();
        out.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn random_vectors(n: usize, dims: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Clustered data, like trained factors: a few directions plus noise.
        let centres: Vec<Vec<f32>> = (0..20).map(|_| (0..dims).map(|_| rng.gen_range(-1.0..1.0)).collect()).collect();
        (0..n)
            .flat_map(|i| {
                let centre = &centres[i % 20];
                let scale = rng.gen_range(0.2..1.5f32);
                centre.iter().map(|c| c * scale + rng.gen_range(-0.3..0.3)).collect::<Vec<_>>()
            })
            .collect()
    }

    fn exact(vectors: &[f32], dims: usize, query: &[f32], k: usize) -> Vec<u32> {
        let mut top = TopK::new(k);
        for (i, v) in vectors.chunks_exact(dims).enumerate() {
            top.push(i as u32, dot(query, v));
        }
        top.into_sorted().into_iter().map(|(i, _)| i).collect()
    }

    #[test]
    fn small_catalogs_are_searched_exactly() {
        let dims = 8;
        let vectors = random_vectors(500, dims, 1);
        let index = IvfIndex::build(&vectors, dims, IvfIndex::clusters_for(500), 7);
        let query: Vec<f32> = vectors[..dims].to_vec();
        let found: Vec<u32> = index.search(&vectors, &query, 10, 0, |_| false).into_iter().map(|(i, _)| i).collect();
        assert_eq!(found, exact(&vectors, dims, &query, 10));
        let skipping: Vec<u32> =
            index.search(&vectors, &query, 10, 0, |i| i % 2 == 0).into_iter().map(|(i, _)| i).collect();
        assert!(skipping.iter().all(|i| i % 2 == 1) && skipping.len() == 10);
    }

    #[test]
    fn probing_a_tenth_of_a_large_catalog_finds_most_of_the_true_top_items() {
        let dims = 16;
        let n = 6_000;
        let vectors = random_vectors(n, dims, 2);
        let index = IvfIndex::build(&vectors, dims, 77, 7);
        assert_eq!(index.len(), n);
        let mut hits = 0;
        let mut total = 0;
        for q in 0..20 {
            let query: Vec<f32> = vectors[q * 37 * dims..(q * 37 + 1) * dims].to_vec();
            let truth = exact(&vectors, dims, &query, 20);
            let found: Vec<u32> =
                index.search(&vectors, &query, 20, n / 10, |_| false).into_iter().map(|(i, _)| i).collect();
            hits += found.iter().filter(|i| truth.contains(i)).count();
            total += truth.len();
        }
        let recall = hits as f64 / total as f64;
        assert!(recall >= 0.9, "recall@20 {recall}");
    }

    #[test]
    fn skewed_lengths_are_found_exactly_through_the_norm_bounds() {
        // Factors as training leaves them: random directions, lengths spread over orders of
        // magnitude (a long head, a tail near zero).
        let (dims, n) = (16, 40_000);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let vectors: Vec<f32> = (0..n)
            .flat_map(|_| {
                let length = (rng.gen_range(-4.0..2.5f32)).exp();
                let direction: Vec<f32> = (0..dims).map(|_| rng.gen_range(-1.0..1.0)).collect();
                let norm = dot(&direction, &direction).sqrt();
                direction.into_iter().map(move |x| x / norm * length)
            })
            .collect();
        let index = IvfIndex::build(&vectors, dims, IvfIndex::clusters_for(n), 7);
        let (mut hits, mut total) = (0, 0);
        for q in 0..30 {
            let query: Vec<f32> = (0..dims).map(|d| ((q * 7 + d * 3) % 11) as f32 / 11.0 - 0.45).collect();
            let truth = exact(&vectors, dims, &query, 10);
            let found: Vec<u32> =
                index.search(&vectors, &query, 10, 4_000, |_| false).into_iter().map(|(i, _)| i).collect();
            hits += found.iter().filter(|i| truth.contains(i)).count();
            total += truth.len();
        }
        // Direction clusters alone, with 4,000 of 40,000 items scored, found far fewer.
        assert_eq!(hits, total, "recall@10 {}", hits as f64 / total as f64);
    }

    #[test]
    fn a_copy_in_cluster_order_answers_as_the_owners_rows_do() {
        let (dims, n) = (16, 25_000);
        let vectors = random_vectors(n, dims, 9);
        let borrowing = IvfIndex::build(&vectors, dims, IvfIndex::clusters_for(n), 3);
        let copying = borrowing.clone().with_copy(&vectors);
        assert!(copying.memory_bytes() >= borrowing.memory_bytes() + n * dims * 4);
        for q in 0..10 {
            let query = &vectors[q * 101 * dims..(q * 101 + 1) * dims];
            let expected = borrowing.search(&vectors, query, 10, 2_000, |i| i % 3 == 0);
            let found = copying.search(&[], query, 10, 2_000, |i| i % 3 == 0);
            // The same items; scores equal up to the kernels' summation order.
            assert_eq!(found.iter().map(|x| x.0).collect::<Vec<_>>(), expected.iter().map(|x| x.0).collect::<Vec<_>>());
            assert!(found.iter().zip(&expected).all(|(a, b)| (a.1 - b.1).abs() <= 1e-4 * b.1.abs().max(1.0)));
        }
    }

    #[test]
    fn top_k_keeps_the_largest() {
        let mut top = TopK::new(3);
        for (i, s) in [(0, 1.0), (1, 5.0), (2, f32::NAN), (3, 3.0), (4, 4.0), (5, 2.0)] {
            top.push(i, s);
        }
        assert_eq!(top.into_sorted(), vec![(1, 5.0), (4, 4.0), (3, 3.0)]);
    }

    /// Unit rows around 40 directions, like content vectors of a catalog's categories.
    pub(crate) fn unit_rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let centres: Vec<Vec<f32>> = (0..40).map(|_| (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect()).collect();
        let mut out = Vec::with_capacity(n * dim);
        for i in 0..n {
            let row: Vec<f32> = centres[i % 40].iter().map(|c| c + rng.gen_range(-0.5..0.5)).collect();
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            out.extend(row.iter().map(|x| x / norm));
        }
        out
    }

    #[test]
    fn the_exact_scan_is_best_first_and_skips() {
        let dim = 8;
        let data = unit_rows(700, dim, 3);
        let query = data[..dim].to_vec();
        let best = exact_search(&data, dim, &query, 5, &mut |i| i == 0);
        assert_eq!(best.len(), 5);
        assert!(best.iter().all(|(i, _)| *i != 0));
        assert!(best.windows(2).all(|w| w[0].1 >= w[1].1));
        let all = exact_search(&data, dim, &query, 700, &mut |_| false);
        assert_eq!(all.len(), 700, "rows past the first block are scanned too");
    }
}
