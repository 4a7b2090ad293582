//! A trained ensemble: prediction, per-feature contributions, importances and the artifact.
//!
//! A tree is a flat array of split nodes and an array of leaf values; a child is a node index,
//! or a leaf index with the top bit set. Children always come after their parent, which the
//! loader checks, so a walk from the root always ends at a leaf.
//!
//! Cost model of [`GbdtModel::predict`]: per tree, one 20-byte node and one feature value
//! read per level (a tree of 31 leaves is about 5–10 levels, its nodes fit in 600 bytes),
//! no allocation; missing values cost one more branch only when a comparison fails.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use super::objective::sigmoid;
use super::GbdtParams;
use crate::error::{Error, Result};
use crate::recommend::artifact::{corrupt_artifact, Array, Artifact};

/// The model's name in its artifact.
pub const MODEL_NAME: &str = "gbdt";

/// A child index with this bit set is a leaf index.
pub(crate) const LEAF: u32 = 1 << 31;

/// One split node: rows with `value <= threshold` go to `children[0]`, others to
/// `children[1]`; missing values (NaN) go left when `default_left`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Split {
    pub(crate) feature: u32,
    pub(crate) threshold: f32,
    pub(crate) default_left: bool,
    pub(crate) children: [u32; 2],
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tree {
    pub(crate) splits: Vec<Split>,
    /// What each split node would predict were it a leaf (its shrunk Newton value): the
    /// path attribution of [`GbdtModel::contributions`] credits the changes of this value.
    pub(crate) split_values: Vec<f32>,
    /// Training gain of each split (for [`GbdtModel::feature_importance`]).
    pub(crate) split_gains: Vec<f32>,
    pub(crate) leaves: Vec<f32>,
}

impl Tree {
    /// The leaf a row lands in.
    #[inline]
    pub(crate) fn leaf(&self, row: &[f32]) -> usize {
        if self.splits.is_empty() {
            return 0;
        }
        let mut node = 0usize;
        loop {
            let split = &self.splits[node];
            let value = row[split.feature as usize];
            let left = if value <= split.threshold { true } else { value.is_nan() && split.default_left };
            let child = split.children[usize::from(!left)];
            if child & LEAF != 0 {
                return (child & !LEAF) as usize;
            }
            node = child as usize;
        }
    }

    #[inline]
    pub(crate) fn predict(&self, row: &[f32]) -> f64 {
        f64::from(self.leaves[self.leaf(row)])
    }

    fn root_value(&self) -> f64 {
        f64::from(self.split_values.first().copied().unwrap_or(self.leaves[0]))
    }

    fn value_of(&self, child: u32) -> f64 {
        if child & LEAF != 0 {
            f64::from(self.leaves[(child & !LEAF) as usize])
        } else {
            f64::from(self.split_values[child as usize])
        }
    }
}

/// How training went, iteration by iteration: kept with the model for reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingHistory {
    /// The validation metric after each iteration: mean NDCG@`eval_at` for LambdaRank,
    /// log loss for Binary. Empty without a validation set.
    pub validation: Vec<f64>,
    /// How many trees the model kept: the best iteration's count under early stopping, else
    /// every tree trained.
    pub trees_kept: usize,
}

/// A trained gradient-boosted tree ensemble: `score = base_score + Σ tree(row)`.
#[derive(Debug, Clone, PartialEq)]
pub struct GbdtModel {
    pub(crate) params: GbdtParams,
    pub(crate) feature_names: Vec<String>,
    pub(crate) base_score: f64,
    pub(crate) trees: Vec<Tree>,
    pub(crate) history: TrainingHistory,
}

impl GbdtModel {
    pub fn params(&self) -> &GbdtParams {
        &self.params
    }

    /// The features a row must hold, in order.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// The score before any tree: 0 for LambdaRank, the log-odds of the training base rate
    /// for Binary.
    pub fn base_score(&self) -> f64 {
        self.base_score
    }

    pub fn history(&self) -> &TrainingHistory {
        &self.history
    }

    /// The model's score of one row (`n_features()` values, NaN for missing): a ranking
    /// score for LambdaRank, the log-odds for Binary (see [`Self::probability`]).
    ///
    /// # Panics
    /// When `row.len() != n_features()`: a caller's bug, not a data problem.
    pub fn predict(&self, row: &[f32]) -> f64 {
        assert_eq!(row.len(), self.n_features(), "predict: expected one value per feature");
        let mut score = self.base_score;
        for tree in &self.trees {
            score += tree.predict(row);
        }
        score
    }

    /// `σ(predict(row))`: the probability of a Binary model.
    pub fn probability(&self, row: &[f32]) -> f64 {
        sigmoid(self.predict(row))
    }

    /// Scores of row-major `rows` (a multiple of `n_features()` values), trees outermost so
    /// each tree stays in cache while it scores every row.
    ///
    /// # Panics
    /// When `rows.len()` is not a multiple of `n_features()`.
    pub fn predict_batch(&self, rows: &[f32]) -> Vec<f64> {
        let n = self.n_features();
        assert_eq!(rows.len() % n, 0, "predict_batch: expected whole rows");
        let mut scores = vec![self.base_score; rows.len() / n];
        for tree in &self.trees {
            for (score, row) in scores.iter_mut().zip(rows.chunks_exact(n)) {
                *score += tree.predict(row);
            }
        }
        scores
    }

    /// Per-feature contributions to `predict(row)`, plus the bias last (`n_features() + 1`
    /// values): Saabas's path attribution — walking each tree from root to leaf, the change
    /// of the node value at each split is credited to the split's feature; the bias is the
    /// base score plus every root's value. They sum to the prediction (up to rounding).
    pub fn contributions(&self, row: &[f32]) -> Vec<f64> {
        assert_eq!(row.len(), self.n_features(), "contributions: expected one value per feature");
        let n = self.n_features();
        let mut out = vec![0.0; n + 1];
        out[n] = self.base_score;
        for tree in &self.trees {
            out[n] += tree.root_value();
            if tree.splits.is_empty() {
                continue;
            }
            let mut node = 0usize;
            loop {
                let split = &tree.splits[node];
                let value = row[split.feature as usize];
                let left = if value <= split.threshold { true } else { value.is_nan() && split.default_left };
                let child = split.children[usize::from(!left)];
                out[split.feature as usize] += tree.value_of(child) - f64::from(tree.split_values[node]);
                if child & LEAF != 0 {
                    break;
                }
                node = child as usize;
            }
        }
        out
    }

    /// Total training gain of the splits on each feature, in feature order.
    pub fn feature_importance(&self) -> Vec<f64> {
        let mut gains = vec![0.0; self.n_features()];
        for tree in &self.trees {
            for (split, gain) in tree.splits.iter().zip(&tree.split_gains) {
                gains[split.feature as usize] += f64::from(*gain);
            }
        }
        gains
    }

    /// The model as data. Shape fields next to the parameters: `n_features`,
    /// `feature_names`, `tree_count`, `base_score`, `history`. Arrays, in order: split
    /// count per tree; then per split node its feature, threshold, left child, right child,
    /// default direction (0/1), value and gain; then every leaf value.
    pub fn to_artifact(&self) -> Result<Artifact> {
        let mut params =
            serde_json::to_value(&self.params).map_err(|e| Error::Internal(format!("encoding params: {e}")))?;
        params["n_features"] = self.n_features().into();
        params["feature_names"] = self.feature_names.clone().into();
        params["tree_count"] = self.trees.len().into();
        params["base_score"] = self.base_score.into();
        params["history"] =
            serde_json::to_value(&self.history).map_err(|e| Error::Internal(format!("encoding history: {e}")))?;
        let splits = || self.trees.iter().flat_map(|t| &t.splits);
        Ok(Artifact {
            name: MODEL_NAME.into(),
            params,
            arrays: vec![
                Array::U32(self.trees.iter().map(|t| t.splits.len() as u32).collect()),
                Array::U32(splits().map(|s| s.feature).collect()),
                Array::F32(splits().map(|s| s.threshold).collect()),
                Array::U32(splits().map(|s| s.children[0]).collect()),
                Array::U32(splits().map(|s| s.children[1]).collect()),
                Array::U32(splits().map(|s| u32::from(s.default_left)).collect()),
                Array::F32(self.trees.iter().flat_map(|t| t.split_values.iter().copied()).collect()),
                Array::F32(self.trees.iter().flat_map(|t| t.split_gains.iter().copied()).collect()),
                Array::F32(self.trees.iter().flat_map(|t| t.leaves.iter().copied()).collect()),
            ],
        })
    }

    /// Rebuild a model from [`Self::to_artifact`]'s output, checking that every tree is a
    /// tree over known features, so a damaged artifact is an error here and never a panic
    /// or an endless walk in `predict`.
    pub fn from_artifact(artifact: Artifact) -> Result<Self> {
        if artifact.name != MODEL_NAME {
            return Err(corrupt_artifact(format!("expected a {MODEL_NAME} model, found {:?}", artifact.name)));
        }
        let shape_keys = ["n_features", "feature_names", "tree_count", "base_score", "history"];
        let n_features = artifact.shape("n_features")?;
        let tree_count = artifact.shape("tree_count")?;
        let feature_names: Vec<String> = serde_json::from_value(artifact.params["feature_names"].clone())
            .map_err(|e| corrupt_artifact(format!("params.feature_names: {e}")))?;
        if feature_names.len() != n_features || n_features == 0 {
            return Err(corrupt_artifact(format!(
                "params.feature_names: expected {n_features} names (at least one), found {}",
                feature_names.len()
            )));
        }
        let base_score = artifact.params["base_score"]
            .as_f64()
            .filter(|v| v.is_finite())
            .ok_or_else(|| corrupt_artifact("params.base_score: expected a finite number"))?;
        let history: TrainingHistory = serde_json::from_value(artifact.params["history"].clone())
            .map_err(|e| corrupt_artifact(format!("params.history: {e}")))?;
        let params: GbdtParams = artifact.model_params(&shape_keys)?;
        params.validate().map_err(|e| corrupt_artifact(format!("params: {e}")))?;

        let mut arrays = artifact.arrays.into_iter();
        let split_counts = Artifact::u32_array(&mut arrays, "split counts", tree_count)?;
        let total_splits = split_counts.iter().map(|&c| c as usize).sum::<usize>();
        let features = Artifact::u32_array(&mut arrays, "features", total_splits)?;
        let thresholds = Artifact::f32_array(&mut arrays, "thresholds", total_splits)?;
        let lefts = Artifact::u32_array(&mut arrays, "left children", total_splits)?;
        let rights = Artifact::u32_array(&mut arrays, "right children", total_splits)?;
        let defaults = Artifact::u32_array(&mut arrays, "default directions", total_splits)?;
        let values = Artifact::f32_array(&mut arrays, "split values", total_splits)?;
        let gains = Artifact::f32_array(&mut arrays, "split gains", total_splits)?;
        let leaves = Artifact::f32_array(&mut arrays, "leaf values", total_splits + tree_count)?;
        if arrays.next().is_some() {
            return Err(corrupt_artifact("expected 9 arrays, found more"));
        }

        let mut trees = Vec::with_capacity(tree_count);
        let (mut at, mut leaf_at) = (0usize, 0usize);
        for (t, &count) in split_counts.iter().enumerate() {
            let count = count as usize;
            let nodes = at..at + count;
            let mut splits = Vec::with_capacity(count);
            for i in nodes.clone() {
                if features[i] as usize >= n_features || thresholds[i].is_nan() || defaults[i] > 1 {
                    return Err(corrupt_artifact(format!(
                        "tree {t} node {}: expected a feature below {n_features}, a threshold and a 0/1 direction, found {}, {}, {}",
                        i - at,
                        features[i],
                        thresholds[i],
                        defaults[i]
                    )));
                }
                if !(values[i].is_finite() && gains[i].is_finite()) {
                    return Err(corrupt_artifact(format!("tree {t} node {}: expected finite value and gain", i - at)));
                }
                splits.push(Split {
                    feature: features[i],
                    threshold: thresholds[i],
                    default_left: defaults[i] == 1,
                    children: [lefts[i], rights[i]],
                });
            }
            let tree_leaves = leaves[leaf_at..leaf_at + count + 1].to_vec();
            if let Some(v) = tree_leaves.iter().find(|v| !v.is_finite()) {
                return Err(corrupt_artifact(format!("tree {t}: expected finite leaf values, found {v}")));
            }
            check_tree_shape(&splits, t)?;
            trees.push(Tree {
                splits,
                split_values: values[nodes.clone()].to_vec(),
                split_gains: gains[nodes].to_vec(),
                leaves: tree_leaves,
            });
            at += count;
            leaf_at += count + 1;
        }
        Ok(Self { params, feature_names, base_score, trees, history })
    }

    /// Write the model as a versioned, checksummed artifact.
    pub fn save(&self, writer: &mut dyn Write) -> Result<()> {
        self.to_artifact()?.write_to(writer)
    }

    /// Read a model written by [`Self::save`]; damage is a corruption error, not a panic.
    pub fn load(reader: &mut dyn Read) -> Result<Self> {
        Self::from_artifact(Artifact::read_from(reader)?)
    }
}

/// A tree of `n` splits has `n + 1` leaves; every split but the root and every leaf is the
/// child of exactly one split, and a split's child splits come after it.
fn check_tree_shape(splits: &[Split], tree: usize) -> Result<()> {
    let n = splits.len();
    let mut node_seen = vec![false; n];
    let mut leaf_seen = vec![false; n + 1];
    for (i, split) in splits.iter().enumerate() {
        for child in split.children {
            let seen = if child & LEAF != 0 {
                leaf_seen.get_mut((child & !LEAF) as usize)
            } else if (child as usize) > i {
                node_seen.get_mut(child as usize)
            } else {
                None
            };
            match seen {
                Some(seen) if !*seen => *seen = true,
                _ => {
                    return Err(corrupt_artifact(format!(
                        "tree {tree} node {i}: child {child:#x} is out of range, before its parent or used twice"
                    )))
                }
            }
        }
    }
    if node_seen.iter().skip(1).any(|s| !s) || leaf_seen.iter().any(|s| !s) {
        return Err(corrupt_artifact(format!("tree {tree}: expected every node and leaf to hang from one parent")));
    }
    Ok(())
}
