//! A small neural ranker: a multilayer perceptron (ReLU hidden layers) over the ranker's
//! dense feature rows — each feature scaled and flagged when missing ([`super::scale`]) —
//! trained on candle with a listwise loss.
//!
//! **Loss** (ListNet, Cao et al. 2007, top-one form): within a logged request the softmax of
//! the scores is pulled toward the distribution of the rows' gains (`2^grade − 1` times the
//! importance weight, so an inverse-propensity-weighted click counts for more); requests
//! without a positive row are left out. Requests of unequal length are padded and masked.
//! AdamW over mini-batches of requests (shuffled, seeded; weights initialised from the same
//! seed, so one dataset and one seed give one model); after each pass the validation
//! NDCG@10 is measured and the best pass is kept (early stopping).
//!
//! **Serving** does not go through candle: the trained weights are copied out and a row is
//! scored by a plain loop (a few thousand multiply-adds, about a microsecond), which is
//! what a per-row `predict` inside the page pipeline needs — a tensor graph per row would
//! cost more than the arithmetic.
//!
//! **Explanations** are occlusions: a feature's contribution is how much the score drops
//! when that feature alone is set to its training average (not additive: the network is
//! not linear).

use std::io::Write;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::scale::Scaler;
use super::validation_metric;
use crate::rank::gbdt::{label_gain, Dataset};
use crate::recommend::artifact::{corrupt_artifact, Array, Artifact};
use crate::{Error, Result};

/// The artifact's name.
pub const MODEL_NAME: &str = "mlp_ranker";

/// Parameters of the neural ranker (`[rank.learners.mlp]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlpParams {
    /// Widths of the hidden layers.
    pub hidden: Vec<usize>,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Logged requests per mini-batch.
    pub batch_requests: usize,
    /// Most passes over the training requests…
    pub max_epochs: u32,
    /// …stopping once this many passes in a row did not improve the validation NDCG.
    pub patience: u32,
    pub seed: u64,
}

impl Default for MlpParams {
    fn default() -> Self {
        Self {
            hidden: vec![32, 16],
            learning_rate: 0.003,
            weight_decay: 1e-4,
            batch_requests: 64,
            max_epochs: 40,
            patience: 4,
            seed: 42,
        }
    }
}

impl MlpParams {
    /// Problems with these settings, each with its key below `mlp.`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.hidden.is_empty() || self.hidden.len() > 4 || self.hidden.iter().any(|w| !(1..=1024).contains(w)) {
            problems.push((
                "mlp.hidden".into(),
                format!("expected 1 to 4 layer widths of 1..=1024, found {:?}", self.hidden),
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            problems.push(("mlp.learning_rate".into(), format!("expected 0 < x <= 1, found {}", self.learning_rate)));
        }
        if !(self.weight_decay.is_finite() && (0.0..1.0).contains(&self.weight_decay)) {
            problems.push(("mlp.weight_decay".into(), format!("expected 0 <= x < 1, found {}", self.weight_decay)));
        }
        if !(1..=65_536).contains(&self.batch_requests) {
            problems.push(("mlp.batch_requests".into(), format!("expected 1..=65536, found {}", self.batch_requests)));
        }
        if !(1..=10_000).contains(&self.max_epochs) {
            problems.push(("mlp.max_epochs".into(), format!("expected 1..=10000, found {}", self.max_epochs)));
        }
        if !(1..=1000).contains(&self.patience) {
            problems.push(("mlp.patience".into(), format!("expected 1..=1000, found {}", self.patience)));
        }
        problems
    }
}

/// One fully connected layer: `out = in · weights + bias`, weights row-major `[inputs, outputs]`.
#[derive(Debug, Clone, PartialEq)]
struct Dense {
    inputs: usize,
    outputs: usize,
    weights: Vec<f32>,
    bias: Vec<f32>,
}

/// A trained neural ranker.
#[derive(Debug, Clone, PartialEq)]
pub struct MlpRanker {
    feature_names: Vec<String>,
    scaler: Scaler,
    layers: Vec<Dense>,
    epochs: u32,
}

fn candle_error(e: candle_core::Error) -> Error {
    Error::Internal(format!("training the neural ranker: {e}"))
}

impl MlpRanker {
    /// Train on `train`, keeping the pass with the best NDCG@10 on `valid` (without one, the
    /// last of `max_epochs`).
    pub fn train(params: &MlpParams, train: &Dataset, valid: Option<&Dataset>, weighted: bool) -> Result<MlpRanker> {
        crate::rank::ftrl::problems_to_error(&params.problems())?;
        let n_features = train.n_features();
        let scaler = Scaler::fit(train.rows(), n_features, 2);
        let width = 2 * n_features;
        let device = Device::Cpu;
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);

        // Inputs of every training row, and each request's targets.
        let mut inputs = Vec::with_capacity(train.n_rows() * width);
        for r in 0..train.n_rows() {
            scaler.inputs(train.row(r), &mut inputs);
        }
        let targets: Vec<f32> = (0..train.n_rows())
            .map(|r| (label_gain(train.labels()[r]) * f64::from(train.weights()[r])) as f32)
            .collect();
        let mut requests: Vec<std::ops::Range<usize>> =
            train.groups().filter(|g| g.clone().any(|r| targets[r] > 0.0)).collect();

        // He-uniform initialisation from the seed.
        let mut sizes = vec![width];
        sizes.extend(&params.hidden);
        sizes.push(1);
        let mut vars = Vec::new();
        for pair in sizes.windows(2) {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let bound = (6.0 / fan_in as f64).sqrt() as f32;
            let weights: Vec<f32> = (0..fan_in * fan_out).map(|_| rng.gen_range(-bound..bound)).collect();
            let w = Var::from_tensor(&Tensor::from_vec(weights, (fan_in, fan_out), &device).map_err(candle_error)?)
                .map_err(candle_error)?;
            let b = Var::zeros(fan_out, DType::F32, &device).map_err(candle_error)?;
            vars.push((w, b));
        }
        let mut optimizer = AdamW::new(
            vars.iter().flat_map(|(w, b)| [w.clone(), b.clone()]).collect(),
            ParamsAdamW { lr: params.learning_rate, weight_decay: params.weight_decay, ..ParamsAdamW::default() },
        )
        .map_err(candle_error)?;
        let snapshot = |vars: &[(Var, Var)]| -> Result<Vec<Dense>> {
            vars.iter()
                .map(|(w, b)| {
                    let (inputs, outputs) = w.as_tensor().dims2().map_err(candle_error)?;
                    Ok(Dense {
                        inputs,
                        outputs,
                        weights: w.as_tensor().flatten_all().and_then(|t| t.to_vec1()).map_err(candle_error)?,
                        bias: b.as_tensor().to_vec1().map_err(candle_error)?,
                    })
                })
                .collect()
        };
        let names = train.feature_names().to_vec();
        let mut model = MlpRanker { feature_names: names, scaler, layers: snapshot(&vars)?, epochs: 0 };
        let mut best: Option<(f64, Vec<Dense>, u32)> = None;
        for epoch in 1..=params.max_epochs {
            requests.shuffle(&mut rng);
            for batch in requests.chunks(params.batch_requests) {
                let longest = batch.iter().map(|g| g.len()).max().unwrap_or(1);
                let mut x = vec![0.0f32; batch.len() * longest * width];
                let mut mask = vec![-1e4f32; batch.len() * longest];
                let mut target = vec![0.0f32; batch.len() * longest];
                for (b, group) in batch.iter().enumerate() {
                    let total: f32 = targets[group.clone()].iter().sum();
                    for (slot, r) in group.clone().enumerate() {
                        let at = b * longest + slot;
                        x[at * width..][..width].copy_from_slice(&inputs[r * width..][..width]);
                        mask[at] = 0.0;
                        target[at] = targets[r] / total;
                    }
                }
                let shape = (batch.len(), longest);
                let loss = (|| {
                    let mut h = Tensor::from_vec(x, (batch.len() * longest, width), &device)?;
                    for (l, (w, b)) in vars.iter().enumerate() {
                        h = h.matmul(w.as_tensor())?.broadcast_add(b.as_tensor())?;
                        if l + 1 < vars.len() {
                            h = h.relu()?;
                        }
                    }
                    let scores = (h.reshape(shape)? + Tensor::from_vec(mask, shape, &device)?)?;
                    let log_p = candle_nn::ops::log_softmax(&scores, D::Minus1)?;
                    let target = Tensor::from_vec(target, shape, &device)?;
                    (target * log_p)?.sum_all()?.neg()? / batch.len() as f64
                })()
                .map_err(candle_error)?;
                optimizer.backward_step(&loss).map_err(candle_error)?;
            }
            model.layers = snapshot(&vars)?;
            let Some(valid) = valid else {
                best = Some((0.0, model.layers.clone(), epoch));
                continue;
            };
            let scores: Vec<f64> = (0..valid.n_rows()).map(|r| model.predict(valid.row(r))).collect();
            let score = validation_metric(valid, &scores, weighted);
            if best.as_ref().is_none_or(|(b, _, _)| score > *b) {
                best = Some((score, model.layers.clone(), epoch));
            } else if best.as_ref().is_some_and(|(_, _, at)| epoch >= at + params.patience) {
                break;
            }
        }
        if let Some((_, layers, epoch)) = best {
            model.layers = layers;
            model.epochs = epoch;
        }
        Ok(model)
    }

    fn forward(&self, inputs: &[f32]) -> f64 {
        let mut h = inputs.to_vec();
        let mut next = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            next.clear();
            next.extend_from_slice(&layer.bias);
            for (i, &x) in h.iter().enumerate() {
                if x != 0.0 {
                    for (out, &w) in next.iter_mut().zip(&layer.weights[i * layer.outputs..][..layer.outputs]) {
                        *out += x * w;
                    }
                }
            }
            if l + 1 < self.layers.len() {
                next.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            std::mem::swap(&mut h, &mut next);
        }
        f64::from(h[0])
    }

    /// The score of one row: higher ranks first.
    pub fn predict(&self, row: &[f32]) -> f64 {
        let mut inputs = Vec::with_capacity(2 * row.len());
        self.scaler.inputs(row, &mut inputs);
        self.forward(&inputs)
    }

    /// Per feature, the score minus the score with that feature at its training average;
    /// then the score of a row at every average.
    pub fn contributions(&self, row: &[f32]) -> Vec<f64> {
        let score = self.predict(row);
        let mut out: Vec<f64> = (0..row.len())
            .map(|f| {
                let mut changed = row.to_vec();
                changed[f] = self.scaler.means[f];
                score - self.predict(&changed)
            })
            .collect();
        out.push(self.predict(&self.scaler.means));
        out
    }

    pub fn epochs(&self) -> u32 {
        self.epochs
    }

    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    pub fn to_artifact(&self) -> Artifact {
        let mut arrays = self.scaler.to_arrays();
        for layer in &self.layers {
            arrays.push(Array::F32(layer.weights.clone()));
            arrays.push(Array::F32(layer.bias.clone()));
        }
        let mut sizes = vec![self.layers[0].inputs];
        sizes.extend(self.layers.iter().map(|l| l.outputs));
        Artifact {
            name: MODEL_NAME.into(),
            params: serde_json::json!({
                "n_features": self.feature_names.len(),
                "feature_names": self.feature_names,
                "sizes": sizes,
                "epochs": self.epochs,
            }),
            arrays,
        }
    }

    pub fn save(&self, writer: &mut dyn Write) -> Result<()> {
        self.to_artifact().write_to(writer)
    }

    /// Rebuild from [`Self::to_artifact`]'s output, checking every shape.
    pub fn from_artifact(artifact: Artifact) -> Result<MlpRanker> {
        if artifact.name != MODEL_NAME {
            return Err(corrupt_artifact(format!("expected a {MODEL_NAME} model, found {:?}", artifact.name)));
        }
        let n_features = artifact.shape("n_features")?;
        let epochs = artifact.shape("epochs")? as u32;
        let names: Vec<String> = serde_json::from_value(artifact.params["feature_names"].clone())
            .map_err(|e| corrupt_artifact(format!("params.feature_names: {e}")))?;
        let sizes: Vec<usize> = serde_json::from_value(artifact.params["sizes"].clone())
            .map_err(|e| corrupt_artifact(format!("params.sizes: {e}")))?;
        if names.len() != n_features
            || n_features == 0
            || sizes.len() < 2
            || sizes[0] != 2 * n_features
            || sizes.last() != Some(&1)
            || sizes.iter().any(|&s| s == 0 || s > 4096)
        {
            return Err(corrupt_artifact(format!("params: {n_features} features, layer sizes {sizes:?}")));
        }
        let mut arrays = artifact.arrays.into_iter();
        let scaler = Scaler::from_arrays(&mut arrays, n_features)?;
        let mut layers = Vec::new();
        for (l, pair) in sizes.windows(2).enumerate() {
            let weights = Artifact::f32_array(&mut arrays, &format!("layer {l} weights"), pair[0] * pair[1])?;
            let bias = Artifact::f32_array(&mut arrays, &format!("layer {l} bias"), pair[1])?;
            if weights.iter().chain(&bias).any(|v| !v.is_finite()) {
                return Err(corrupt_artifact(format!("layer {l}: expected finite weights")));
            }
            layers.push(Dense { inputs: pair[0], outputs: pair[1], weights, bias });
        }
        Ok(MlpRanker { feature_names: names, scaler, layers, epochs })
    }
}
