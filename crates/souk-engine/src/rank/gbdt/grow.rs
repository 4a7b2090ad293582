//! Growing one regression tree on gradients and hessians: histograms of binned features,
//! best-first (leaf-wise) growth, Newton leaf values.
//!
//! The split criterion is the second-order gain of XGBoost/LightGBM:
//! `G_L² / (H_L + λ) + G_R² / (H_R + λ) − G² / (H + λ)`, with `G`, `H` the sums of gradients
//! and hessians of a side and `λ` the L2 strength; a leaf's value is `−η G / (H + λ)`, one
//! Newton step shrunk by the learning rate η. Missing values (bin 0) are tried on both sides
//! of every threshold and the better side is remembered as the split's default direction.
//!
//! Growth is best-first: the leaf whose best split gains most is split next, until the tree
//! has `max_leaves` leaves or no split gains more than `min_split_gain`; `max_depth`,
//! `min_data_in_leaf` and `min_sum_hessian` bound every split.
//!
//! Cost: each split builds the histogram of its smaller child only — one pass over the
//! child's rows per sampled feature, features in parallel — and gets the larger child's by
//! subtracting from the parent's (the "histogram subtraction" of LightGBM), so the rows
//! read per tree are about `n · (1 + log2(leaves) / 2)` per feature instead of
//! `n · depth`. Rows live in one index array in which every leaf owns a contiguous range;
//! a split partitions its range in place, stably, so histogram passes read bins in
//! increasing row order. A histogram is 256 bins × 24 bytes per feature and one is kept per
//! open leaf.

use std::ops::Range;

use rayon::prelude::*;

use super::bins::{BinnedData, BINS};
use super::model::{Split, Tree, LEAF};

/// The parameters a tree is grown with (a subset of [`super::GbdtParams`]).
#[derive(Debug, Clone)]
pub(crate) struct TreeParams {
    pub(crate) max_leaves: usize,
    /// 0: no limit.
    pub(crate) max_depth: usize,
    pub(crate) min_data_in_leaf: usize,
    pub(crate) min_sum_hessian: f64,
    pub(crate) min_split_gain: f64,
    pub(crate) lambda_l2: f64,
    pub(crate) learning_rate: f64,
}

/// Sums over the rows of one histogram bin, or of a node.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sums {
    gradient: f64,
    hessian: f64,
    count: u32,
}

impl Sums {
    fn add(&mut self, other: &Sums) {
        self.gradient += other.gradient;
        self.hessian += other.hessian;
        self.count += other.count;
    }

    fn minus(&self, other: &Sums) -> Sums {
        Sums {
            gradient: self.gradient - other.gradient,
            hessian: self.hessian - other.hessian,
            count: self.count - other.count,
        }
    }
}

type FeatureHistogram = [Sums; BINS];

/// The best split found for a leaf.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    feature: usize,
    /// Value bins `1..=bin` go left.
    bin: usize,
    default_left: bool,
    gain: f64,
    left: Sums,
    right: Sums,
}

impl Candidate {
    /// A total order that makes the parallel reduction deterministic: higher gain, then
    /// lower feature index.
    fn better(self, other: Candidate) -> Candidate {
        if other.gain > self.gain || (other.gain == self.gain && other.feature < self.feature) {
            other
        } else {
            self
        }
    }
}

/// A leaf of the tree being grown.
struct OpenLeaf {
    rows: Range<usize>,
    depth: usize,
    sums: Sums,
    /// Kept while the leaf may still be split.
    histogram: Option<Vec<FeatureHistogram>>,
    best: Option<Candidate>,
    /// The split node pointing at this leaf, and whether as its left child.
    parent: Option<(usize, bool)>,
}

/// A grown tree and, per leaf, the training rows it holds.
pub(crate) struct Grown {
    pub(crate) tree: Tree,
    pub(crate) leaf_rows: Vec<Range<usize>>,
}

/// Grows trees on one binned dataset, reusing its buffers from tree to tree.
pub(crate) struct TreeLearner<'a> {
    data: &'a BinnedData,
    params: TreeParams,
    n_rows: usize,
    /// Row ids; every leaf owns a contiguous range.
    indices: Vec<u32>,
    scratch: Vec<u32>,
    /// `[gradient, hessian]` of the rows of the node being histogrammed, in its row order.
    ordered: Vec<[f32; 2]>,
    /// Features this tree may split on.
    selected: Vec<bool>,
    pool: Vec<Vec<FeatureHistogram>>,
}

fn score(sums: &Sums, lambda_l2: f64) -> f64 {
    let denominator = sums.hessian + lambda_l2;
    if denominator > 0.0 {
        sums.gradient * sums.gradient / denominator
    } else {
        0.0
    }
}

impl<'a> TreeLearner<'a> {
    pub(crate) fn new(data: &'a BinnedData, n_rows: usize, params: TreeParams) -> Self {
        Self {
            data,
            params,
            n_rows,
            indices: Vec::with_capacity(n_rows),
            scratch: Vec::with_capacity(n_rows),
            ordered: Vec::with_capacity(n_rows),
            selected: vec![false; data.mappers.len()],
            pool: Vec::new(),
        }
    }

    /// The training rows of a leaf range returned by [`Self::grow`].
    pub(crate) fn rows(&self, range: Range<usize>) -> &[u32] {
        &self.indices[range]
    }

    /// The Newton value of a node: `−η G / (H + λ)`, stored as f32.
    fn value(&self, sums: &Sums) -> f32 {
        let denominator = sums.hessian + self.params.lambda_l2;
        if denominator > 0.0 {
            (-self.params.learning_rate * sums.gradient / denominator) as f32
        } else {
            0.0
        }
    }

    /// Grow one tree on the given per-row gradients and hessians, splitting only on
    /// `features`.
    pub(crate) fn grow(&mut self, gradients: &[f32], hessians: &[f32], features: &[usize]) -> Grown {
        self.selected.iter_mut().for_each(|s| *s = false);
        for &f in features {
            self.selected[f] = true;
        }
        self.indices.clear();
        self.indices.extend(0..self.n_rows as u32);
        let mut total = Sums { count: self.n_rows as u32, ..Sums::default() };
        for (g, h) in gradients.iter().zip(hessians) {
            total.gradient += f64::from(*g);
            total.hessian += f64::from(*h);
        }
        let mut root =
            OpenLeaf { rows: 0..self.n_rows, depth: 0, sums: total, histogram: None, best: None, parent: None };
        if self.may_split(&root) && self.params.max_leaves > 1 {
            let mut histogram = self.take_histogram();
            self.build_histogram(root.rows.clone(), gradients, hessians, &mut histogram);
            root.best = self.best_split(&histogram, &root.sums);
            root.histogram = Some(histogram);
        }
        let mut leaves = vec![root];
        let mut splits: Vec<Split> = Vec::new();
        let (mut split_values, mut split_gains) = (Vec::new(), Vec::new());
        while leaves.len() < self.params.max_leaves {
            let mut chosen: Option<(usize, f64)> = None;
            for (l, leaf) in leaves.iter().enumerate() {
                if let Some(best) = &leaf.best {
                    if chosen.is_none_or(|(_, gain)| best.gain > gain) {
                        chosen = Some((l, best.gain));
                    }
                }
            }
            let Some((l, _)) = chosen else { break };
            let new_leaf = leaves.len();
            let leaf = &mut leaves[l];
            let Some(candidate) = leaf.best.take() else { break };
            let parent_histogram = leaf.histogram.take();
            let node = splits.len();
            splits.push(Split {
                feature: candidate.feature as u32,
                threshold: self.data.mappers[candidate.feature].threshold(candidate.bin),
                default_left: candidate.default_left,
                children: [LEAF | l as u32, LEAF | new_leaf as u32],
            });
            split_values.push(self.value(&leaf.sums));
            split_gains.push(candidate.gain as f32);
            if let Some((parent, is_left)) = leaf.parent {
                splits[parent].children[usize::from(!is_left)] = node as u32;
            }
            let middle = self.partition(leaf.rows.clone(), &candidate);
            debug_assert_eq!(middle - leaf.rows.start, candidate.left.count as usize);
            let mut left = OpenLeaf {
                rows: leaf.rows.start..middle,
                depth: leaf.depth + 1,
                sums: candidate.left,
                histogram: None,
                best: None,
                parent: Some((node, true)),
            };
            let mut right = OpenLeaf {
                rows: middle..leaf.rows.end,
                depth: leaf.depth + 1,
                sums: candidate.right,
                histogram: None,
                best: None,
                parent: Some((node, false)),
            };
            // One more split must fit for the children's histograms to be of any use.
            if leaves.len() + 1 < self.params.max_leaves {
                self.prepare_children(&mut left, &mut right, parent_histogram, gradients, hessians);
            } else if let Some(histogram) = parent_histogram {
                self.pool.push(histogram);
            }
            leaves[l] = left;
            leaves.push(right);
        }
        let mut leaf_values = Vec::with_capacity(leaves.len());
        let mut leaf_rows = Vec::with_capacity(leaves.len());
        for leaf in leaves {
            leaf_values.push(self.value(&leaf.sums));
            leaf_rows.push(leaf.rows);
            if let Some(histogram) = leaf.histogram {
                self.pool.push(histogram);
            }
        }
        Grown { tree: Tree { splits, split_values, split_gains, leaves: leaf_values }, leaf_rows }
    }

    fn may_split(&self, leaf: &OpenLeaf) -> bool {
        (self.params.max_depth == 0 || leaf.depth < self.params.max_depth)
            && leaf.sums.count as usize >= 2 * self.params.min_data_in_leaf.max(1)
    }

    /// Histograms and best splits of a split's two children: build the smaller one's,
    /// subtract it from the parent's for the larger one.
    fn prepare_children(
        &mut self,
        left: &mut OpenLeaf,
        right: &mut OpenLeaf,
        parent_histogram: Option<Vec<FeatureHistogram>>,
        gradients: &[f32],
        hessians: &[f32],
    ) {
        let (small, large) = if left.sums.count <= right.sums.count { (left, right) } else { (right, left) };
        let (small_splits, large_splits) = (self.may_split(small), self.may_split(large));
        if !(small_splits || large_splits) {
            if let Some(histogram) = parent_histogram {
                self.pool.push(histogram);
            }
            return;
        }
        let mut small_histogram = self.take_histogram();
        self.build_histogram(small.rows.clone(), gradients, hessians, &mut small_histogram);
        match parent_histogram {
            Some(mut histogram) if large_splits => {
                self.subtract(&mut histogram, &small_histogram);
                large.best = self.best_split(&histogram, &large.sums);
                large.histogram = Some(histogram);
            }
            Some(histogram) => self.pool.push(histogram),
            None => {}
        }
        if small_splits {
            small.best = self.best_split(&small_histogram, &small.sums);
            small.histogram = Some(small_histogram);
        } else {
            self.pool.push(small_histogram);
        }
    }

    fn take_histogram(&mut self) -> Vec<FeatureHistogram> {
        self.pool.pop().unwrap_or_else(|| vec![[Sums::default(); BINS]; self.data.mappers.len()])
    }

    fn build_histogram(
        &mut self,
        rows: Range<usize>,
        gradients: &[f32],
        hessians: &[f32],
        histogram: &mut [FeatureHistogram],
    ) {
        let rows = &self.indices[rows];
        self.ordered.clear();
        self.ordered.extend(rows.iter().map(|&r| [gradients[r as usize], hessians[r as usize]]));
        let ordered = &self.ordered;
        let whole = rows.len() == self.n_rows;
        let data = self.data;
        let selected = &self.selected;
        histogram.par_iter_mut().enumerate().filter(|(f, _)| selected[*f]).for_each(|(f, bins)| {
            let used = data.mappers[f].value_bins() + 1;
            bins[..used].fill(Sums::default());
            let column = data.column(f);
            if whole {
                // The root: every row in order, no index indirection.
                for (&bin, &[g, h]) in column.iter().zip(ordered) {
                    let sums = &mut bins[usize::from(bin)];
                    sums.gradient += f64::from(g);
                    sums.hessian += f64::from(h);
                    sums.count += 1;
                }
            } else {
                for (&r, &[g, h]) in rows.iter().zip(ordered) {
                    let sums = &mut bins[usize::from(column[r as usize])];
                    sums.gradient += f64::from(g);
                    sums.hessian += f64::from(h);
                    sums.count += 1;
                }
            }
        });
    }

    /// `parent -= child`, bin by bin, on the selected features.
    fn subtract(&self, parent: &mut [FeatureHistogram], child: &[FeatureHistogram]) {
        for (f, (p, c)) in parent.iter_mut().zip(child).enumerate().filter(|(f, _)| self.selected[*f]) {
            let used = self.data.mappers[f].value_bins() + 1;
            for (p, c) in p[..used].iter_mut().zip(&c[..used]) {
                *p = p.minus(c);
            }
        }
    }

    fn best_split(&self, histogram: &[FeatureHistogram], total: &Sums) -> Option<Candidate> {
        histogram
            .par_iter()
            .enumerate()
            .filter(|(f, _)| self.selected[*f])
            .filter_map(|(f, bins)| self.best_split_of_feature(f, bins, total))
            .reduce_with(Candidate::better)
    }

    /// Scan the thresholds of one feature, with the missing values on either side.
    fn best_split_of_feature(&self, feature: usize, bins: &FeatureHistogram, total: &Sums) -> Option<Candidate> {
        let p = &self.params;
        let value_bins = self.data.mappers[feature].value_bins();
        let missing = bins[0];
        let parent_score = score(total, p.lambda_l2);
        let min_count = p.min_data_in_leaf.max(1) as u32;
        let mut best: Option<Candidate> = None;
        // With no missing value here, one direction is enough; the other is chosen below.
        let directions: &[bool] = if missing.count == 0 { &[false] } else { &[false, true] };
        for &default_left in directions {
            let mut left = if default_left { missing } else { Sums::default() };
            for (bin, sums) in bins.iter().enumerate().take(value_bins + 1).skip(1) {
                left.add(sums);
                let right = total.minus(&left);
                if right.count < min_count {
                    break;
                }
                if left.count < min_count || left.hessian < p.min_sum_hessian || right.hessian < p.min_sum_hessian {
                    continue;
                }
                let gain = score(&left, p.lambda_l2) + score(&right, p.lambda_l2) - parent_score;
                if gain > p.min_split_gain && best.is_none_or(|b| gain > b.gain) {
                    best = Some(Candidate { feature, bin, default_left, gain, left, right });
                }
            }
        }
        if missing.count == 0 {
            // Send values unseen as missing in training where most rows went.
            if let Some(b) = &mut best {
                b.default_left = b.left.count >= b.right.count;
            }
        }
        best
    }

    /// Stable partition of a leaf's rows by a split; returns where the right side starts.
    fn partition(&mut self, rows: Range<usize>, split: &Candidate) -> usize {
        let column = self.data.column(split.feature);
        let slice = &mut self.indices[rows.clone()];
        self.scratch.clear();
        let mut kept = 0;
        for i in 0..slice.len() {
            let r = slice[i];
            let bin = usize::from(column[r as usize]);
            let go_left = if bin == 0 { split.default_left } else { bin <= split.bin };
            if go_left {
                slice[kept] = r;
                kept += 1;
            } else {
                self.scratch.push(r);
            }
        }
        slice[kept..].copy_from_slice(&self.scratch);
        rows.start + kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rank::gbdt::dataset::Dataset;

    fn params() -> TreeParams {
        TreeParams {
            max_leaves: 8,
            max_depth: 0,
            min_data_in_leaf: 1,
            min_sum_hessian: 0.0,
            min_split_gain: 0.0,
            lambda_l2: 0.0,
            learning_rate: 1.0,
        }
    }

    /// Squared loss from 0: gradient −y, hessian 1, so a leaf's value is its mean target.
    fn fit(rows: Vec<f32>, n_features: usize, targets: &[f32], params: TreeParams) -> (Tree, Dataset) {
        let names = (0..n_features).map(|f| format!("f{f}")).collect();
        let data = Dataset::new(names, rows, targets.to_vec()).unwrap();
        let binned = BinnedData::new(&data, 255, 100_000, 1);
        let mut learner = TreeLearner::new(&binned, data.n_rows(), params);
        let gradients: Vec<f32> = targets.iter().map(|t| -t).collect();
        let grown = learner.grow(&gradients, &vec![1.0; targets.len()], &(0..n_features).collect::<Vec<_>>());
        // Every training row's leaf by bins is its leaf by raw values.
        for (leaf, range) in grown.leaf_rows.iter().enumerate() {
            for &r in learner.rows(range.clone()) {
                assert_eq!(grown.tree.leaf(data.row(r as usize)), leaf, "row {r}");
            }
        }
        (grown.tree, data)
    }

    #[test]
    fn a_step_function_is_learned_exactly() {
        let xs: Vec<f32> = (0..40).map(|i| i as f32).collect();
        let targets: Vec<f32> = xs
            .iter()
            .map(|&x| {
                if x < 10.0 {
                    1.0
                } else if x < 30.0 {
                    5.0
                } else {
                    -2.0
                }
            })
            .collect();
        let (tree, _) = fit(xs.clone(), 1, &targets, params());
        assert_eq!(tree.leaves.len(), 3, "three levels need exactly two splits: {tree:?}");
        for (x, t) in xs.iter().zip(&targets) {
            assert_eq!(tree.predict(&[*x]), f64::from(*t));
        }
        assert_eq!(tree.splits[0].threshold, 29.5, "the largest gain comes first");
    }

    #[test]
    fn missing_values_learn_their_direction() {
        // Missing rows look like the high rows; a value of 0 or 1 separates the others.
        let xs = [0.0, 0.0, 1.0, 1.0, f32::NAN, f32::NAN];
        let targets = [0.0, 0.0, 4.0, 4.0, 4.0, 4.0];
        let (tree, _) = fit(xs.to_vec(), 1, &targets, TreeParams { max_leaves: 2, ..params() });
        assert_eq!(tree.splits.len(), 1);
        assert!(!tree.splits[0].default_left, "{tree:?}");
        assert_eq!(tree.predict(&[f32::NAN]), 4.0);
        // Only "missing or not" separates these: the split puts all values left.
        let targets = [0.0, 0.0, 0.0, 0.0, 4.0, 4.0];
        let (tree, _) = fit(xs.to_vec(), 1, &targets, TreeParams { max_leaves: 2, ..params() });
        assert_eq!((tree.predict(&[f32::NAN]), tree.predict(&[1e30]), tree.predict(&[-5.0])), (4.0, 0.0, 0.0));
    }

    #[test]
    fn limits_bound_the_tree() {
        let xs: Vec<f32> = (0..64).map(|i| i as f32).collect();
        let targets: Vec<f32> = xs.iter().map(|x| (x * 0.37).sin()).collect();
        let (tree, _) = fit(xs.clone(), 1, &targets, TreeParams { max_leaves: 5, ..params() });
        assert_eq!(tree.leaves.len(), 5);
        let (tree, _) = fit(xs.clone(), 1, &targets, TreeParams { max_leaves: 64, max_depth: 2, ..params() });
        assert_eq!(tree.leaves.len(), 4, "depth 2 allows 4 leaves");
        let (_, data) = fit(xs.clone(), 1, &targets, TreeParams { max_leaves: 64, min_data_in_leaf: 10, ..params() });
        let (tree, _) = fit(xs.clone(), 1, &targets, TreeParams { max_leaves: 64, min_data_in_leaf: 10, ..params() });
        let mut counts = vec![0; tree.leaves.len()];
        for i in 0..data.n_rows() {
            counts[tree.leaf(data.row(i))] += 1;
        }
        assert!(counts.iter().all(|&c| c >= 10), "{counts:?}");
        let (tree, _) = fit(xs, 1, &targets, TreeParams { max_leaves: 64, min_split_gain: 1e9, ..params() });
        assert_eq!(tree.leaves.len(), 1, "no split gains a billion");
    }

    #[test]
    fn unselected_features_are_never_split_and_l2_shrinks_values() {
        // Feature 0 is noise, feature 1 decides.
        let rows: Vec<f32> = (0..20).flat_map(|i| [(i * 7 % 5) as f32, (i % 2) as f32]).collect();
        let targets: Vec<f32> = (0..20).map(|i| if i % 2 == 1 { 2.0 } else { 0.0 }).collect();
        let (tree, _) = fit(rows.clone(), 2, &targets, TreeParams { max_leaves: 2, ..params() });
        assert_eq!(tree.splits[0].feature, 1);
        let names = vec!["a".to_string(), "b".to_string()];
        let data = Dataset::new(names, rows, targets.clone()).unwrap();
        let binned = BinnedData::new(&data, 255, 100_000, 1);
        let gradients: Vec<f32> = targets.iter().map(|t| -t).collect();
        let mut learner = TreeLearner::new(&binned, 20, TreeParams { max_leaves: 2, lambda_l2: 10.0, ..params() });
        let grown = learner.grow(&gradients, &[1.0; 20], &[0]);
        assert!(grown.tree.splits.iter().all(|s| s.feature == 0), "{:?}", grown.tree);
        let grown = learner.grow(&gradients, &[1.0; 20], &[1]);
        // Ten rows of target 2 with λ = 10: −(−20) / (10 + 10) = 1 instead of 2.
        assert_eq!(grown.tree.predict(&[0.0, 1.0]), 1.0);
    }
}
