//! FTRL-Proximal as a ranker: logistic regression over the ranker's dense feature rows, each
//! feature given as its quantile bucket (one-hot: a piecewise-constant effect, so a
//! non-monotone feature still helps) plus its scaled value (a slope within the buckets);
//! a missing value is a bucket of its own.
//!
//! Pointwise: a row is positive when it was clicked (or better), weighted by its gain
//! (`2^grade − 1`: a purchase counts as seven clicks) times its importance weight (the
//! inverse examination propensity of a clicked row); a row shown and not clicked is a
//! negative of weight 1. Passes over the training rows (shuffled, seeded) until the
//! validation NDCG@10 stops rising. The learner is [`crate::rank::ftrl`] itself; this module
//! only encodes rows. Every feature's share of a score is exact: the margin is a sum over
//! features.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use super::scale::Scaler;
use super::validation_metric;
use crate::rank::ftrl::{Example, Feature, FeatureHasher, FtrlModel, FtrlParams};
use crate::rank::gbdt::{label_gain, Dataset};
use crate::recommend::artifact::{corrupt_artifact, Artifact};
use crate::Result;

/// The header artifact's name; the FTRL model's own artifact follows it in the same file.
pub const MODEL_NAME: &str = "ftrl_ranker";

/// Parameters of the FTRL ranker (`[rank.learners.ftrl]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FtrlRankerParams {
    pub alpha: f64,
    pub beta: f64,
    pub lambda1: f64,
    pub lambda2: f64,
    /// Quantile buckets per feature.
    pub buckets: usize,
    /// Most passes over the training rows (fewer when validation stops improving).
    pub max_epochs: u32,
    pub seed: u64,
}

impl Default for FtrlRankerParams {
    fn default() -> Self {
        Self { alpha: 0.05, beta: 1.0, lambda1: 0.5, lambda2: 1.0, buckets: 16, max_epochs: 8, seed: 42 }
    }
}

impl FtrlRankerParams {
    fn ftrl(&self) -> FtrlParams {
        FtrlParams {
            alpha: self.alpha,
            beta: self.beta,
            lambda1: self.lambda1,
            lambda2: self.lambda2,
            // A few dozen features of 17 buckets each: 2^18 coordinates keep collisions rare.
            bits: 18,
            epochs: 1,
            shuffle: true,
            seed: self.seed,
            intercept_from_base_rate: true,
        }
    }

    /// Problems with these settings, each with its key below `ftrl.`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = self.ftrl().problems();
        if !(2..=256).contains(&self.buckets) {
            problems.push(("ftrl.buckets".into(), format!("expected 2..=256, found {}", self.buckets)));
        }
        if !(1..=1000).contains(&self.max_epochs) {
            problems.push(("ftrl.max_epochs".into(), format!("expected 1..=1000, found {}", self.max_epochs)));
        }
        problems
    }
}

/// A trained FTRL ranker.
#[derive(Debug, Clone)]
pub struct FtrlRanker {
    feature_names: Vec<String>,
    scaler: Scaler,
    model: FtrlModel,
    /// Per feature, the digest of each bucket and then of "missing".
    bucket_hashes: Vec<Vec<u64>>,
    /// Per feature, the digest of its scaled value.
    value_hashes: Vec<u64>,
    /// Passes kept.
    epochs: u32,
    /// The model's weights read out per feature (what `predict` adds up): each bucket's
    /// and "missing"'s, and the slope of the scaled value; then the intercept.
    bucket_weights: Vec<Vec<f64>>,
    slopes: Vec<f64>,
    intercept: f64,
}

impl FtrlRanker {
    fn with_model(feature_names: Vec<String>, scaler: Scaler, model: FtrlModel, epochs: u32) -> FtrlRanker {
        let mut hasher = FeatureHasher::default();
        let bucket_hashes = feature_names
            .iter()
            .zip(&scaler.edges)
            .map(|(name, edges)| {
                let mut hashes: Vec<u64> = (0..=edges.len()).map(|b| hasher.categorical(name, b).hash).collect();
                hashes.push(hasher.categorical(name, "missing").hash);
                hashes
            })
            .collect();
        let value_hashes =
            feature_names.iter().map(|name| hasher.numeric(&format!("{name}#value"), 0.0).hash).collect();
        let mut ranker = FtrlRanker {
            feature_names,
            scaler,
            model,
            bucket_hashes,
            value_hashes,
            epochs,
            bucket_weights: Vec::new(),
            slopes: Vec::new(),
            intercept: 0.0,
        };
        ranker.read_weights();
        ranker
    }

    /// Replace the model and read its weights out.
    fn set_model(&mut self, model: FtrlModel) {
        self.model = model;
        self.read_weights();
    }

    fn read_weights(&mut self) {
        let weight = |hash| self.model.weight(&Feature { hash, value: 1.0 });
        self.bucket_weights =
            self.bucket_hashes.iter().map(|hashes| hashes.iter().map(|&h| weight(h)).collect()).collect();
        self.slopes = self.value_hashes.iter().map(|&h| weight(h)).collect();
        self.intercept = self.model.intercept();
    }

    /// The row's active features: per dense feature its bucket and (when present) value.
    fn features(&self, row: &[f32]) -> Vec<Feature> {
        let mut features = Vec::with_capacity(2 * row.len());
        for (f, &value) in row.iter().enumerate() {
            let hashes = &self.bucket_hashes[f];
            let bucket = self.scaler.bucket(f, value).unwrap_or(hashes.len() - 1);
            features.push(Feature { hash: hashes[bucket], value: 1.0 });
            if let Some(x) = self.scaler.scaled(f, value) {
                features.push(Feature { hash: self.value_hashes[f], value: x });
            }
        }
        features
    }

    /// Train on `train`, keeping the number of passes with the best NDCG@10 on `valid`.
    pub fn train(
        params: &FtrlRankerParams,
        train: &Dataset,
        valid: Option<&Dataset>,
        weighted: bool,
    ) -> Result<FtrlRanker> {
        crate::rank::ftrl::problems_to_error(&params.problems())?;
        let names = train.feature_names().to_vec();
        let scaler = Scaler::fit(train.rows(), train.n_features(), params.buckets);
        let mut ranker = FtrlRanker::with_model(names, scaler, FtrlModel::new(params.ftrl())?, 0);
        let examples: Vec<Example> = (0..train.n_rows())
            .map(|r| {
                let grade = train.labels()[r];
                let positive = grade > 0.0;
                let gain = if positive { label_gain(grade) as f32 } else { 1.0 };
                Example { features: ranker.features(train.row(r)), label: positive, weight: gain * train.weights()[r] }
            })
            .collect();
        let mut model = FtrlModel::train(params.ftrl(), &examples)?;
        let judge = |model: &FtrlModel, ranker: &mut FtrlRanker| -> f64 {
            let Some(valid) = valid else { return 0.0 };
            ranker.set_model(model.clone());
            let scores: Vec<f64> = (0..valid.n_rows()).map(|r| ranker.predict(valid.row(r))).collect();
            validation_metric(valid, &scores, weighted)
        };
        let mut best = (judge(&model, &mut ranker), model.clone(), 1);
        for epoch in 2..=params.max_epochs {
            model.fit(&examples);
            if valid.is_none() {
                best = (0.0, model.clone(), epoch);
                continue;
            }
            let score = judge(&model, &mut ranker);
            if score > best.0 {
                best = (score, model.clone(), epoch);
            } else if epoch >= best.2 + 2 {
                break;
            }
        }
        ranker.set_model(best.1);
        ranker.epochs = best.2;
        Ok(ranker)
    }

    /// The margin (log-odds of a click): higher ranks first.
    pub fn predict(&self, row: &[f32]) -> f64 {
        let mut margin = self.intercept;
        for (f, &value) in row.iter().enumerate() {
            let weights = &self.bucket_weights[f];
            margin += weights[self.scaler.bucket(f, value).unwrap_or(weights.len() - 1)];
            if let Some(x) = self.scaler.scaled(f, value) {
                margin += self.slopes[f] * f64::from(x);
            }
        }
        margin
    }

    /// Each feature's exact share of the margin (its bucket's weight plus its slope times
    /// its scaled value), in feature order, then the intercept.
    pub fn contributions(&self, row: &[f32]) -> Vec<f64> {
        let mut out = vec![0.0; row.len() + 1];
        out[row.len()] = self.intercept;
        for (f, &value) in row.iter().enumerate() {
            let weights = &self.bucket_weights[f];
            out[f] = weights[self.scaler.bucket(f, value).unwrap_or(weights.len() - 1)];
            if let Some(x) = self.scaler.scaled(f, value) {
                out[f] += self.slopes[f] * f64::from(x);
            }
        }
        out
    }

    pub fn epochs(&self) -> u32 {
        self.epochs
    }

    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    /// A header artifact (names, scaler) followed by the FTRL model's artifact.
    pub fn save(&self, writer: &mut dyn Write) -> Result<()> {
        let params = serde_json::json!({
            "n_features": self.feature_names.len(),
            "feature_names": self.feature_names,
            "epochs": self.epochs,
        });
        Artifact { name: MODEL_NAME.into(), params, arrays: self.scaler.to_arrays() }.write_to(writer)?;
        self.model.save(writer)
    }

    /// Read the rest of a file whose header artifact was `header`.
    pub fn load_after(header: Artifact, reader: &mut dyn Read) -> Result<FtrlRanker> {
        let n_features = header.shape("n_features")?;
        let epochs = header.shape("epochs")? as u32;
        let names: Vec<String> = serde_json::from_value(header.params["feature_names"].clone())
            .map_err(|e| corrupt_artifact(format!("params.feature_names: {e}")))?;
        if names.len() != n_features || n_features == 0 {
            return Err(corrupt_artifact(format!("params.feature_names: expected {n_features} names")));
        }
        let scaler = Scaler::from_arrays(&mut header.arrays.into_iter(), n_features)?;
        let model = FtrlModel::load(reader)?;
        Ok(FtrlRanker::with_model(names, scaler, model, epochs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rank::gbdt::synthetic::ranking_problem;

    #[test]
    fn the_weights_read_out_score_exactly_as_the_model_and_survive_a_reload() {
        let train = ranking_problem(200, 20, 8);
        let ranker = FtrlRanker::train(&FtrlRankerParams::default(), &train, None, false).unwrap();
        assert_eq!(ranker.epochs(), FtrlRankerParams::default().max_epochs);
        let mut bytes = Vec::new();
        ranker.save(&mut bytes).unwrap();
        let mut reader = bytes.as_slice();
        let header = Artifact::read_from(&mut reader).unwrap();
        let loaded = FtrlRanker::load_after(header, &mut reader).unwrap();
        for r in (0..train.n_rows()).step_by(37) {
            let row = train.row(r);
            let margin = ranker.model.margin(&ranker.features(row));
            assert!((ranker.predict(row) - margin).abs() < 1e-9, "{} vs {margin}", ranker.predict(row));
            assert_eq!(loaded.predict(row).to_bits(), ranker.predict(row).to_bits());
        }
        // A missing value scores as its own bucket, not as any present value's.
        let mut row = train.row(0).to_vec();
        row[0] = f32::NAN;
        let missing = ranker.predict(&row);
        assert!((missing - ranker.model.margin(&ranker.features(&row))).abs() < 1e-9);
    }
}
