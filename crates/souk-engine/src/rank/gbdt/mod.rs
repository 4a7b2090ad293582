//! Gradient-boosted decision trees in pure Rust: LambdaMART for ranking candidates from
//! dense numeric features, and a binary log-loss objective.
//!
//! LambdaMART (Burges 2010, "From RankNet to LambdaRank to LambdaMART: An Overview") boosts
//! regression trees on lambda gradients — pairwise RankNet gradients scaled by how much NDCG
//! would change if the pair swapped — with Newton leaf values. The learner follows
//! LightGBM's design and defaults so results are comparable to its `lambdarank`:
//! - `bins`: quantile bins per feature, found once; training reads a `u8` bin matrix.
//! - `grow`: leaf-wise (best-first) trees on gradient histograms, histogram subtraction,
//!   features in parallel; missing values (NaN) go where the split learned they should.
//! - `objective`: lambda gradients per query group in parallel; binary log loss; NDCG.
//! - `model`: prediction, Saabas path contributions, gain importance, the artifact.
//!
//! [`train`] boosts up to [`GbdtParams::trees`] trees, scoring a validation set after each
//! one (NDCG@`eval_at` or log loss) and, with early stopping, keeps the best iteration's
//! trees; the per-iteration metric stays in the model's [`TrainingHistory`].
//!
//! Owns: the learner, its parameters and their validation, the model and its artifact form.
//! Knows nothing of where features come from. Never touches files: saving and loading go
//! through a reader or writer and the engine's model artifact ([`crate::recommend::artifact`]).
//! Training is deterministic: the same data, parameters and seed give the same model bytes,
//! whatever the thread count (parallel work is split by feature or group and reduced in a
//! fixed order).
//!
//! Cost of training, per tree, for `n` rows and `f` features: gradients in O(n · truncation)
//! for LambdaRank; histograms in about `n · f · (1 + log2(leaves) / 2)` byte reads; split
//! search in `leaves · f · 256`. Serving: see [`GbdtModel::predict`].

mod bins;
mod dataset;
mod grow;
mod model;
mod objective;
pub mod synthetic;

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use dataset::Dataset;
pub use model::{GbdtModel, TrainingHistory, MODEL_NAME};
pub use objective::{
    binary_log_loss, dcg_at, ideal_dcg_at, label_gain, mean_ndcg, mean_weighted_dcg, ndcg_at, position_discount,
};

use crate::error::{Result, ValidationError};
use crate::rank::ftrl::problems_to_error;
use bins::BinnedData;
use grow::{TreeLearner, TreeParams};
use objective::{binary_gradients, LambdaRank, NdcgEvaluator};

/// Largest query group LambdaRank accepts: its cost grows with `group rows × truncation`
/// (× group rows without truncation), and a group this large is more likely a dataset whose
/// groups were forgotten than a real request.
pub const MAX_GROUP_ROWS: usize = 10_000;

/// Largest graded label for LambdaRank: its gain `2^label − 1` must stay meaningful in f64.
pub const MAX_RANK_LABEL: f32 = 31.0;

/// What the trees are boosted to minimise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Objective {
    /// LambdaMART: lambda gradients weighted by |ΔNDCG| within query groups; graded labels
    /// in `0..=31`.
    #[serde(rename = "lambdarank")]
    LambdaRank,
    /// Log loss of `σ(score)`; labels in [0, 1].
    #[serde(rename = "binary")]
    Binary,
}

/// Parameters of the learner; names and defaults follow LightGBM's where they exist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GbdtParams {
    pub objective: Objective,
    /// LambdaRank: only pairs with at least one row in the current top `truncation` give
    /// lambdas, and |ΔNDCG| is normalised by the ideal DCG@`truncation` (LightGBM's
    /// `lambdarank_truncation_level`, same default). 0: every pair, the whole group's DCG.
    pub truncation: usize,
    /// LambdaRank: the validation metric is mean NDCG@`eval_at`. 0: the whole group.
    pub eval_at: usize,
    /// LambdaRank: validate on DCG@`eval_at` with each row's gain times its weight, not
    /// normalised per group, instead of NDCG. With inverse-examination weights on clicked
    /// rows this is unbiased for position-biased clicks; NDCG is not (a group's own ideal
    /// cancels the weight of its only click).
    pub eval_weighted: bool,
    /// Boosting iterations (one tree each), at most.
    pub trees: usize,
    /// Shrinkage η of every leaf value.
    pub learning_rate: f64,
    /// Leaves per tree, at most (best-first growth stops there).
    pub max_leaves: usize,
    /// Depth of a tree, at most; 0: no limit beyond `max_leaves`.
    pub max_depth: usize,
    /// Rows in a leaf, at least.
    pub min_data_in_leaf: usize,
    /// Sum of hessians in a leaf, at least.
    pub min_sum_hessian: f64,
    /// A split must gain more than this.
    pub min_split_gain: f64,
    /// L2 strength λ on leaf values.
    pub lambda_l2: f64,
    /// Value bins per feature, at most (a missing-value bin is extra); 2..=255.
    pub max_bins: usize,
    /// Rows sampled (seeded) to find the bins; all rows when there are fewer.
    pub bin_sample: usize,
    /// Share of the features each tree may split on, drawn per tree (seeded).
    pub feature_fraction: f64,
    /// Stop after this many iterations without a better validation metric and keep the
    /// best iteration's trees; 0: no early stopping (every tree is kept).
    pub early_stopping_rounds: usize,
    pub seed: u64,
}

impl Default for GbdtParams {
    fn default() -> Self {
        Self {
            objective: Objective::LambdaRank,
            truncation: 30,
            eval_at: 10,
            eval_weighted: false,
            trees: 500,
            learning_rate: 0.05,
            max_leaves: 31,
            max_depth: 0,
            min_data_in_leaf: 20,
            min_sum_hessian: 1e-3,
            min_split_gain: 0.0,
            lambda_l2: 0.0,
            max_bins: 255,
            bin_sample: 200_000,
            feature_fraction: 1.0,
            early_stopping_rounds: 50,
            seed: 42,
        }
    }
}

impl GbdtParams {
    /// Every problem with these parameters, each with its key (`gbdt.trees`, …).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, key: &str, expected: &str, found: &dyn std::fmt::Display| {
            if !ok {
                problems.push((format!("gbdt.{key}"), format!("expected {expected}, found {found}")));
            }
        };
        check((1..=100_000).contains(&self.trees), "trees", "1..=100000", &self.trees);
        let rate = self.learning_rate;
        check(rate.is_finite() && rate > 0.0 && rate <= 1.0, "learning_rate", "a number in (0, 1]", &rate);
        check((2..=1 << 16).contains(&self.max_leaves), "max_leaves", "2..=65536", &self.max_leaves);
        check(self.max_depth <= 64, "max_depth", "0 (no limit) or up to 64", &self.max_depth);
        check(self.min_data_in_leaf >= 1, "min_data_in_leaf", "at least 1", &self.min_data_in_leaf);
        for (key, value) in [
            ("min_sum_hessian", self.min_sum_hessian),
            ("min_split_gain", self.min_split_gain),
            ("lambda_l2", self.lambda_l2),
        ] {
            check(value.is_finite() && value >= 0.0, key, "a non-negative number", &value);
        }
        check((2..=255).contains(&self.max_bins), "max_bins", "2..=255", &self.max_bins);
        check(self.bin_sample >= 1, "bin_sample", "at least 1", &self.bin_sample);
        let fraction = self.feature_fraction;
        check(
            fraction.is_finite() && fraction > 0.0 && fraction <= 1.0,
            "feature_fraction",
            "a number in (0, 1]",
            &fraction,
        );
        problems
    }

    /// `Ok` when [`Self::problems`] is empty, else one error listing them all.
    pub fn validate(&self) -> Result<(), ValidationError> {
        problems_to_error(&self.problems())
    }

    fn tree_params(&self) -> TreeParams {
        TreeParams {
            max_leaves: self.max_leaves,
            max_depth: self.max_depth,
            min_data_in_leaf: self.min_data_in_leaf,
            min_sum_hessian: self.min_sum_hessian,
            min_split_gain: self.min_split_gain,
            lambda_l2: self.lambda_l2,
            learning_rate: self.learning_rate,
        }
    }
}

/// Check that `data` suits the objective: labels in range, groups not too large, weights
/// not all zero. `name` prefixes the field (`train`, `valid`).
fn check_data(params: &GbdtParams, data: &Dataset, name: &str) -> Result<(), ValidationError> {
    if data.n_rows() == 0 {
        return Err(ValidationError::new(
            "empty_dataset",
            format!("{name}.rows"),
            "expected at least one row, found none",
        ));
    }
    let (low, high) = match params.objective {
        Objective::LambdaRank => (0.0, MAX_RANK_LABEL),
        Objective::Binary => (0.0, 1.0),
    };
    if let Some(i) = data.labels().iter().position(|l| !(low..=high).contains(l)) {
        return Err(ValidationError::new(
            "invalid_label",
            format!("{name}.labels[{i}]"),
            format!(
                "expected a label in [{low}, {high}] for the {:?} objective, found {}",
                params.objective,
                data.labels()[i]
            ),
        ));
    }
    if params.objective == Objective::LambdaRank {
        if let Some((q, range)) = data.groups().enumerate().find(|(_, r)| r.len() > MAX_GROUP_ROWS) {
            return Err(ValidationError::new(
                "group_too_large",
                format!("{name}.groups[{q}]"),
                format!(
                    "expected at most {MAX_GROUP_ROWS} rows per query group, found {} (were the groups set?)",
                    range.len()
                ),
            ));
        }
    }
    if data.weights().iter().all(|&w| w == 0.0) {
        return Err(ValidationError::new(
            "invalid_weight",
            format!("{name}.weights"),
            "expected a positive weight, found only zeros",
        ));
    }
    Ok(())
}

/// The validation metric: mean NDCG@`eval_at` (higher is better) or log loss (lower).
enum Validation {
    Ndcg(NdcgEvaluator),
    LogLoss,
}

impl Validation {
    fn new(params: &GbdtParams, data: &Dataset) -> Self {
        match params.objective {
            Objective::LambdaRank if params.eval_weighted => {
                Validation::Ndcg(NdcgEvaluator::weighted(data, params.eval_at))
            }
            Objective::LambdaRank => Validation::Ndcg(NdcgEvaluator::new(data, params.eval_at)),
            Objective::Binary => Validation::LogLoss,
        }
    }

    fn metric(&self, data: &Dataset, scores: &[f64]) -> Option<f64> {
        match self {
            Validation::Ndcg(evaluator) => evaluator.mean(data, scores),
            Validation::LogLoss => binary_log_loss(data, scores),
        }
    }

    fn better(&self, metric: f64, than: f64) -> bool {
        match self {
            Validation::Ndcg(_) => metric > than,
            Validation::LogLoss => metric < than,
        }
    }
}

/// Train a model on `train`, scoring `valid` after every tree when given (see the module
/// docs). The same data and parameters always give the same model.
pub fn train(params: &GbdtParams, train: &Dataset, valid: Option<&Dataset>) -> Result<GbdtModel> {
    params.validate()?;
    check_data(params, train, "train")?;
    if let Some(valid) = valid {
        check_data(params, valid, "valid")?;
        if valid.feature_names() != train.feature_names() {
            return Err(ValidationError::new(
                "feature_mismatch",
                "valid.feature_names",
                format!(
                    "expected the training features {:?}, found {:?}",
                    train.feature_names(),
                    valid.feature_names()
                ),
            )
            .into());
        }
        if Validation::new(params, valid).metric(valid, &vec![0.0; valid.n_rows()]).is_none() {
            return Err(ValidationError::new(
                "invalid_label",
                "valid.labels",
                "expected at least one group with a positive label to measure NDCG on, found none",
            )
            .into());
        }
    }
    let n_rows = train.n_rows();
    let n_features = train.n_features();
    let base_score = match params.objective {
        Objective::LambdaRank => 0.0,
        Objective::Binary => {
            let total: f64 = train.weights().iter().map(|&w| f64::from(w)).sum();
            let positive: f64 =
                train.weights().iter().zip(train.labels()).map(|(&w, &y)| f64::from(w) * f64::from(y)).sum();
            let rate = (positive / total).clamp(1e-12, 1.0 - 1e-12);
            (rate / (1.0 - rate)).ln()
        }
    };
    let binned = BinnedData::new(train, params.max_bins, params.bin_sample, params.seed);
    let lambdarank = (params.objective == Objective::LambdaRank).then(|| LambdaRank::new(train, params.truncation));
    let mut learner = TreeLearner::new(&binned, n_rows, params.tree_params());
    let mut scores = vec![base_score; n_rows];
    let mut valid_scores = valid.map(|v| vec![base_score; v.n_rows()]);
    let validation = valid.map(|v| Validation::new(params, v));
    let (mut gradients, mut hessians) = (vec![0f32; n_rows], vec![0f32; n_rows]);
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let per_tree = ((params.feature_fraction * n_features as f64).round() as usize).clamp(1, n_features);
    let all_features: Vec<usize> = (0..n_features).collect();

    let mut trees = Vec::new();
    let mut metrics = Vec::new();
    let mut best: Option<(usize, f64)> = None;
    for iteration in 0..params.trees {
        match &lambdarank {
            Some(objective) => objective.gradients(train, &scores, &mut gradients, &mut hessians),
            None => binary_gradients(train, &scores, &mut gradients, &mut hessians),
        }
        let features = if per_tree == n_features {
            all_features.clone()
        } else {
            let mut chosen = sample(&mut rng, n_features, per_tree).into_vec();
            chosen.sort_unstable();
            chosen
        };
        let grown = learner.grow(&gradients, &hessians, &features);
        if grown.tree.splits.is_empty() {
            // Nothing left to split: every later tree would be this one.
            tracing::debug!(iteration, "gbdt: no split gains anything; stopping");
            break;
        }
        for (leaf, range) in grown.leaf_rows.iter().enumerate() {
            let value = f64::from(grown.tree.leaves[leaf]);
            for &r in learner.rows(range.clone()) {
                scores[r as usize] += value;
            }
        }
        let tree = grown.tree;
        if let (Some(valid), Some(valid_scores), Some(validation)) = (valid, valid_scores.as_mut(), &validation) {
            valid_scores.par_iter_mut().enumerate().for_each(|(i, s)| *s += tree.predict(valid.row(i)));
            let metric = validation.metric(valid, valid_scores).unwrap_or(f64::NAN);
            metrics.push(metric);
            if best.is_none_or(|(_, b)| validation.better(metric, b)) {
                best = Some((iteration, metric));
            }
            tracing::debug!(iteration, metric, "gbdt iteration");
        }
        trees.push(tree);
        if let Some((best_iteration, _)) = best {
            if params.early_stopping_rounds > 0 && iteration - best_iteration >= params.early_stopping_rounds {
                break;
            }
        }
    }
    if let Some((best_iteration, metric)) = best {
        if params.early_stopping_rounds > 0 {
            trees.truncate(best_iteration + 1);
        }
        tracing::info!(trees = trees.len(), best_iteration, metric, "gbdt trained");
    }
    let history = TrainingHistory { validation: metrics, trees_kept: trees.len() };
    Ok(GbdtModel { params: params.clone(), feature_names: train.feature_names().to_vec(), base_score, trees, history })
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::synthetic::{ranking_problem, xor_problem};
    use super::*;
    use crate::error::Error;
    use crate::rank::metrics::auc;
    use crate::recommend::artifact::{Array, Artifact};

    fn small_params() -> GbdtParams {
        GbdtParams {
            trees: 150,
            learning_rate: 0.1,
            max_leaves: 15,
            early_stopping_rounds: 20,
            ..GbdtParams::default()
        }
    }

    fn scores_of(model: &GbdtModel, data: &Dataset) -> Vec<f64> {
        (0..data.n_rows()).map(|i| model.predict(data.row(i))).collect()
    }

    /// Least squares on the raw features (missing values imputed with the mean) plus an
    /// intercept: the linear baseline.
    fn linear_scores(train: &Dataset, test: &Dataset) -> Vec<f64> {
        let n = train.n_features();
        let mut means = vec![0.0; n];
        let mut counts = vec![0usize; n];
        for i in 0..train.n_rows() {
            for (f, &v) in train.row(i).iter().enumerate() {
                if !v.is_nan() {
                    means[f] += f64::from(v);
                    counts[f] += 1;
                }
            }
        }
        for f in 0..n {
            means[f] /= counts[f].max(1) as f64;
        }
        let features = |row: &[f32]| -> Vec<f64> {
            let mut x: Vec<f64> =
                row.iter().zip(&means).map(|(&v, &m)| if v.is_nan() { m } else { f64::from(v) }).collect();
            x.push(1.0);
            x
        };
        // Normal equations (XᵀX + εI) w = Xᵀy, by Gaussian elimination with partial pivoting.
        let d = n + 1;
        let mut a = vec![vec![0.0; d + 1]; d];
        for i in 0..train.n_rows() {
            let x = features(train.row(i));
            let y = f64::from(train.labels()[i]);
            for r in 0..d {
                for c in 0..d {
                    a[r][c] += x[r] * x[c];
                }
                a[r][d] += x[r] * y;
            }
        }
        for (r, row) in a.iter_mut().enumerate() {
            row[r] += 1e-6;
        }
        for col in 0..d {
            let pivot = (col..d).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs())).unwrap();
            a.swap(col, pivot);
            let pivot_row = a[col].clone();
            for (_, row) in a.iter_mut().enumerate().filter(|(r, _)| *r != col) {
                let factor = row[col] / pivot_row[col];
                for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                    *x -= factor * p;
                }
            }
        }
        let w: Vec<f64> = (0..d).map(|r| a[r][d] / a[r][r]).collect();
        (0..test.n_rows()).map(|i| features(test.row(i)).iter().zip(&w).map(|(x, w)| x * w).sum()).collect()
    }

    fn ranking_data() -> (Dataset, Dataset, Dataset) {
        (ranking_problem(300, 50, 1), ranking_problem(100, 50, 2), ranking_problem(200, 50, 3))
    }

    #[test]
    fn lambdamart_beats_random_single_feature_and_linear_orders() {
        let (train_data, valid, test) = ranking_data();
        let model = train(&small_params(), &train_data, Some(&valid)).unwrap();
        let ours = mean_ndcg(&test, &scores_of(&model, &test), 10).unwrap();

        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let random_scores: Vec<f64> = (0..test.n_rows()).map(|_| rng.gen()).collect();
        let random = mean_ndcg(&test, &random_scores, 10).unwrap();
        // The best single feature, either direction, chosen on the test set itself.
        let mut single = f64::MIN;
        for f in 0..test.n_features() {
            for sign in [1.0, -1.0] {
                let scores: Vec<f64> = (0..test.n_rows())
                    .map(|i| sign * f64::from(test.row(i)[f]))
                    .map(|s| if s.is_nan() { 0.0 } else { s })
                    .collect();
                single = single.max(mean_ndcg(&test, &scores, 10).unwrap());
            }
        }
        let linear = mean_ndcg(&test, &linear_scores(&train_data, &test), 10).unwrap();
        eprintln!(
            "test NDCG@10: lambdamart {ours:.4} ({} trees), linear {linear:.4}, best single feature {single:.4}, random {random:.4}",
            model.n_trees()
        );
        assert!(ours > linear + 0.1, "lambdamart {ours} vs linear {linear}");
        assert!(linear > single, "linear {linear} vs best single feature {single}");
        assert!(single > random, "best single feature {single} vs random {random}");
        // The trees split most on the seven features relevance depends on.
        let importance = model.feature_importance();
        let mut order: Vec<usize> = (0..importance.len()).collect();
        order.sort_by(|&a, &b| importance[b].total_cmp(&importance[a]));
        let mut top: Vec<&str> = order[..7].iter().map(|&f| synthetic::RANKING_FEATURES[f]).collect();
        top.sort_unstable();
        eprintln!(
            "importance: {:?}",
            order.iter().map(|&f| (synthetic::RANKING_FEATURES[f], importance[f] as u64)).collect::<Vec<_>>()
        );
        let mut relevant = synthetic::RELEVANT_RANKING_FEATURES;
        relevant.sort_unstable();
        assert_eq!(top, relevant);
    }

    #[test]
    fn the_binary_objective_learns_xor_which_no_single_feature_orders() {
        let (train_data, test) = (xor_problem(4000, 1), xor_problem(2000, 2));
        let params = GbdtParams { objective: Objective::Binary, early_stopping_rounds: 0, ..small_params() };
        let model = train(&params, &train_data, None).unwrap();
        let labels: Vec<bool> = test.labels().iter().map(|&y| y == 1.0).collect();
        let learned = auc(&scores_of(&model, &test), &labels).unwrap();
        let linear = auc(&linear_scores(&train_data, &test), &labels).unwrap();
        eprintln!("xor test AUC: gbdt {learned:.4}, linear {linear:.4}");
        assert!(learned > 0.9, "{learned}");
        assert!((linear - 0.5).abs() < 0.05, "a linear model should be near chance, got {linear}");
        // Log loss on the training rows' labels: the base score is the base rate's log-odds.
        let rate = train_data.labels().iter().map(|&y| f64::from(y)).sum::<f64>() / 4000.0;
        assert!((model.base_score() - (rate / (1.0 - rate)).ln()).abs() < 1e-12);
        let probability = model.probability(test.row(0));
        assert!((probability - 1.0 / (1.0 + (-model.predict(test.row(0))).exp())).abs() < 1e-15);
    }

    fn model_bytes(model: &GbdtModel) -> Vec<u8> {
        let mut bytes = Vec::new();
        model.save(&mut bytes).unwrap();
        bytes
    }

    fn small_model() -> (GbdtModel, Dataset) {
        let params = GbdtParams { trees: 20, max_leaves: 8, min_data_in_leaf: 5, ..small_params() };
        let data = ranking_problem(40, 30, 4);
        (train(&params, &data, Some(&ranking_problem(10, 30, 5))).unwrap(), data)
    }

    #[test]
    fn training_is_deterministic_whatever_the_threads_and_the_seed_matters() {
        let data = ranking_problem(60, 30, 6);
        let params = GbdtParams { trees: 30, feature_fraction: 0.6, bin_sample: 500, ..small_params() };
        let a = model_bytes(&train(&params, &data, None).unwrap());
        let b = model_bytes(&train(&params, &data, None).unwrap());
        assert_eq!(a, b);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let one_thread = pool.install(|| model_bytes(&train(&params, &data, None).unwrap()));
        assert_eq!(a, one_thread, "one thread must give the same model");
        let other_seed = model_bytes(&train(&GbdtParams { seed: 7, ..params }, &data, None).unwrap());
        assert_ne!(a, other_seed, "another seed samples other features and bins");
    }

    #[test]
    fn save_and_load_keep_predictions_bit_for_bit() {
        let (model, data) = small_model();
        let bytes = model_bytes(&model);
        let loaded = GbdtModel::load(&mut bytes.as_slice()).unwrap();
        assert_eq!(loaded, model);
        assert_eq!(model_bytes(&loaded), bytes);
        let batch = loaded.predict_batch(data.rows());
        for (i, scored) in batch.iter().enumerate() {
            let row = data.row(i);
            assert_eq!(loaded.predict(row).to_bits(), model.predict(row).to_bits());
            assert_eq!(scored.to_bits(), model.predict(row).to_bits());
        }
        assert_eq!(loaded.history(), model.history());
        assert_eq!(loaded.feature_names(), data.feature_names());
        // Missing values everywhere still reach a leaf.
        assert!(loaded.predict(&[f32::NAN; 12]).is_finite());
    }

    #[test]
    fn contributions_sum_to_the_prediction() {
        let (model, data) = small_model();
        let mut noise_share = 0.0;
        let mut total_share = 0.0;
        for i in 0..data.n_rows() {
            let row = data.row(i);
            let contributions = model.contributions(row);
            assert_eq!(contributions.len(), 13);
            let sum: f64 = contributions.iter().sum();
            assert!((sum - model.predict(row)).abs() < 1e-9, "row {i}: {sum} vs {}", model.predict(row));
            noise_share += contributions[2].abs() + contributions[3].abs();
            total_share += contributions[..12].iter().map(|c| c.abs()).sum::<f64>();
        }
        // The bias is the same for every row; noise features explain little.
        assert_eq!(model.contributions(data.row(0))[12], model.contributions(data.row(1))[12]);
        assert!(noise_share < 0.1 * total_share, "noise features carry {noise_share} of {total_share}");
    }

    #[test]
    fn early_stopping_keeps_the_best_iteration() {
        let params = GbdtParams { trees: 300, learning_rate: 0.5, early_stopping_rounds: 10, ..small_params() };
        let (train_data, valid) = (ranking_problem(40, 30, 8), ranking_problem(20, 30, 9));
        let model = train(&params, &train_data, Some(&valid)).unwrap();
        let history = model.history();
        let best = history.validation.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0))).unwrap();
        assert!(history.validation.len() < 300, "a learning rate of 0.5 overfits 1,200 rows quickly");
        assert_eq!(history.validation.len(), best.0 + 1 + 10);
        assert_eq!((model.n_trees(), history.trees_kept), (best.0 + 1, best.0 + 1));
        assert_eq!(mean_ndcg(&valid, &scores_of(&model, &valid), 10), Some(*best.1));
        // Without early stopping every tree is kept and the history still recorded.
        let all =
            train(&GbdtParams { trees: 40, early_stopping_rounds: 0, ..params }, &train_data, Some(&valid)).unwrap();
        assert_eq!((all.n_trees(), all.history().validation.len()), (40, 40));
    }

    #[test]
    fn row_weights_move_the_model() {
        // Binary: positives weighted 4 times act as 4 copies: the base score is the log of
        // 4 times the odds, every probability is higher, and the order barely changes.
        let (train_data, test) = (xor_problem(3000, 10), xor_problem(1000, 11));
        let params = GbdtParams { objective: Objective::Binary, trees: 60, early_stopping_rounds: 0, ..small_params() };
        let plain = train(&params, &train_data, None).unwrap();
        let weights = train_data.labels().iter().map(|&y| if y == 1.0 { 4.0 } else { 1.0 }).collect();
        let weighted = train(&params, &train_data.clone().with_weights(weights).unwrap(), None).unwrap();
        assert!((weighted.base_score() - (plain.base_score() + 4f64.ln())).abs() < 1e-9);
        let mean = |m: &GbdtModel| (0..test.n_rows()).map(|i| m.probability(test.row(i))).sum::<f64>() / 1000.0;
        let (p_plain, p_weighted) = (mean(&plain), mean(&weighted));
        assert!(p_weighted > p_plain + 0.05, "mean probability {p_weighted} weighted vs {p_plain}");
        let labels: Vec<bool> = test.labels().iter().map(|&y| y == 1.0).collect();
        let auc_weighted = auc(&scores_of(&weighted, &test), &labels).unwrap();
        assert!(auc_weighted > 0.9, "{auc_weighted}");

        // Ranking: half the rows are relevant by feature a, half by b (a hidden coin says
        // which). Weighting the a-rows up makes the model rank by a.
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let (mut rows, mut labels, mut by_a) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..6000 {
            let (a, b, coin): (f32, f32, bool) = (rng.gen(), rng.gen(), rng.gen());
            rows.extend([a, b, rng.gen()]);
            labels.push(if (if coin { a } else { b }) > 0.7 { 2.0 } else { 0.0 });
            by_a.push(coin);
        }
        let names = ["a", "b", "noise"].map(String::from).to_vec();
        let data = Dataset::new(names, rows, labels).unwrap().with_group_sizes(&[30; 200]).unwrap();
        let params = GbdtParams { trees: 40, early_stopping_rounds: 0, ..small_params() };
        let a_over_b = |m: &GbdtModel| m.feature_importance()[0] / m.feature_importance()[1];
        let plain = a_over_b(&train(&params, &data, None).unwrap());
        let weights = by_a.iter().map(|&coin| if coin { 5.0 } else { 1.0 }).collect();
        let weighted = a_over_b(&train(&params, &data.with_weights(weights).unwrap(), None).unwrap());
        eprintln!("importance of a over b: {plain:.3} plain, {weighted:.3} weighted");
        assert!((0.5..2.0).contains(&plain), "{plain}");
        assert!(weighted > 2.0 * plain, "{weighted} vs {plain}");
    }

    #[test]
    fn every_parameter_problem_is_reported() {
        let params = GbdtParams {
            trees: 0,
            learning_rate: f64::NAN,
            max_leaves: 1,
            max_depth: 65,
            min_data_in_leaf: 0,
            min_sum_hessian: -1.0,
            min_split_gain: f64::INFINITY,
            lambda_l2: -0.5,
            max_bins: 256,
            bin_sample: 0,
            feature_fraction: 0.0,
            ..GbdtParams::default()
        };
        let keys: Vec<String> = params.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "gbdt.trees",
                "gbdt.learning_rate",
                "gbdt.max_leaves",
                "gbdt.max_depth",
                "gbdt.min_data_in_leaf",
                "gbdt.min_sum_hessian",
                "gbdt.min_split_gain",
                "gbdt.lambda_l2",
                "gbdt.max_bins",
                "gbdt.bin_sample",
                "gbdt.feature_fraction",
            ]
        );
        let data = ranking_problem(2, 10, 1);
        match train(&params, &data, None) {
            Err(Error::Invalid(e)) => {
                assert_eq!((e.code, e.field.as_str()), ("invalid_parameter", "gbdt.trees"));
                assert!(e.message.contains("expected 1..=100000, found 0"), "{e}");
                assert!(e.message.contains("gbdt.feature_fraction: expected a number in (0, 1], found 0"), "{e}");
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
        assert!(GbdtParams::default().problems().is_empty());
    }

    #[test]
    fn params_are_named_like_the_config_and_refuse_unknown_keys() {
        let params: GbdtParams = serde_json::from_str(r#"{"objective": "binary", "max_leaves": 7}"#).unwrap();
        assert_eq!((params.objective, params.max_leaves, params.trees), (Objective::Binary, 7, 500));
        let error = serde_json::from_str::<GbdtParams>(r#"{"num_leaves": 7}"#).unwrap_err();
        assert!(error.to_string().contains("num_leaves"), "{error}");
        let error = serde_json::from_str::<GbdtParams>(r#"{"objective": "lambda_rank"}"#).unwrap_err();
        assert!(error.to_string().contains("lambdarank"), "{error}");
    }

    #[test]
    fn training_checks_the_data_against_the_objective() {
        let check = |params: &GbdtParams, data: &Dataset, valid: Option<&Dataset>| match train(params, data, valid) {
            Err(Error::Invalid(e)) => (e.code, e.field),
            other => panic!("expected a validation error, got {other:?}"),
        };
        let ranking = ranking_problem(3, 10, 1);
        let binary = GbdtParams { objective: Objective::Binary, ..small_params() };
        assert_eq!(check(&binary, &ranking, None), ("invalid_label", "train.labels[0]".into()));
        let negative = Dataset::new(vec!["x".into()], vec![0.0, 1.0], vec![1.0, -1.0]).unwrap();
        assert_eq!(check(&small_params(), &negative, None), ("invalid_label", "train.labels[1]".into()));
        let one_group = Dataset::new(vec!["x".into()], vec![0.0; 10_001], vec![1.0; 10_001]).unwrap();
        assert_eq!(check(&small_params(), &one_group, None), ("group_too_large", "train.groups[0]".into()));
        let other_names = Dataset::new(vec!["y".into()], vec![0.0, 1.0], vec![1.0, 0.0]).unwrap();
        let x = Dataset::new(vec!["x".into()], vec![0.0, 1.0], vec![1.0, 0.0]).unwrap();
        assert_eq!(check(&small_params(), &x, Some(&other_names)), ("feature_mismatch", "valid.feature_names".into()));
        let irrelevant = Dataset::new(vec!["x".into()], vec![0.0, 1.0], vec![0.0, 0.0]).unwrap();
        assert_eq!(check(&small_params(), &x, Some(&irrelevant)), ("invalid_label", "valid.labels".into()));
        let empty = Dataset::new(vec!["x".into()], vec![], vec![]).unwrap();
        assert_eq!(check(&small_params(), &empty, None), ("empty_dataset", "train.rows".into()));
        let unweighted = x.clone().with_weights(vec![0.0, 0.0]).unwrap();
        assert_eq!(check(&small_params(), &unweighted, None), ("invalid_weight", "train.weights".into()));
    }

    #[test]
    fn damaged_artifacts_are_errors_not_panics() {
        let (model, _) = small_model();
        let bytes = model_bytes(&model);
        for cut in (0..bytes.len()).step_by(7) {
            assert!(GbdtModel::load(&mut &bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let at = flipped.len() / 2;
        flipped[at] ^= 0x10;
        assert!(matches!(GbdtModel::load(&mut flipped.as_slice()), Err(Error::Corrupt { .. })));

        // Well-formed containers with a damaged model inside (the checksum cannot help).
        let damage = |edit: &dyn Fn(&mut Artifact), expected: &str| {
            let mut artifact = model.to_artifact().unwrap();
            edit(&mut artifact);
            match GbdtModel::from_artifact(artifact) {
                Err(Error::Corrupt { message, .. }) => assert!(message.contains(expected), "{message}"),
                other => panic!("expected a corruption error containing {expected:?}, got {other:?}"),
            }
        };
        let u32s = |a: &mut Artifact, k: usize, edit: &dyn Fn(&mut Vec<u32>)| match &mut a.arrays[k] {
            Array::U32(v) => edit(v),
            Array::F32(_) => panic!("array {k} is f32"),
        };
        damage(&|a| a.name = "ftrl".into(), "expected a gbdt model, found \"ftrl\"");
        damage(&|a| u32s(a, 1, &|v| v[0] = 12), "expected a feature below 12");
        // A cycle: the second node's left child pointing back at the root.
        damage(&|a| u32s(a, 3, &|v| v[1] = 0), "before its parent");
        damage(&|a| u32s(a, 3, &|v| v[0] = LEAF_FOR_TEST | 1000), "out of range");
        damage(&|a| u32s(a, 5, &|v| v[0] = 2), "0/1 direction");
        damage(&|a| a.arrays.pop().map(|_| ()).unwrap_or(()), "leaf values: missing");
        damage(&|a| a.params["feature_names"] = serde_json::json!(["a"]), "expected 12 names");
        damage(&|a| a.params["max_bins"] = 0.into(), "gbdt.max_bins");
        damage(
            &|a| {
                if let Some(Array::F32(v)) = a.arrays.last_mut() {
                    v[0] = f32::NAN;
                }
            },
            "expected finite leaf values",
        );
    }

    const LEAF_FOR_TEST: u32 = 1 << 31;

    proptest::proptest! {
        #[test]
        fn any_damaged_tree_array_is_refused_or_walks_safely(array in 0usize..9, at in proptest::prelude::any::<proptest::sample::Index>(), value in proptest::prelude::any::<u32>()) {
            let (model, data) = small_model_cached();
            let mut artifact = model.to_artifact().unwrap();
            match &mut artifact.arrays[array] {
                Array::U32(v) if !v.is_empty() => { let i = at.index(v.len()); v[i] = value; }
                Array::F32(v) if !v.is_empty() => { let i = at.index(v.len()); v[i] = f32::from_bits(value); }
                _ => {}
            }
            if let Ok(loaded) = GbdtModel::from_artifact(artifact) {
                for i in 0..20 {
                    let _ = loaded.predict(data.row(i));
                    let _ = loaded.contributions(data.row(i));
                }
            }
        }
    }

    fn small_model_cached() -> &'static (GbdtModel, Dataset) {
        static MODEL: std::sync::OnceLock<(GbdtModel, Dataset)> = std::sync::OnceLock::new();
        MODEL.get_or_init(small_model)
    }
}
