//! FTRL-Proximal logistic regression over sparse hashed features: the click model.
//!
//! Follows McMahan et al. 2013, "Ad Click Prediction: a View from the Trenches" (KDD),
//! Algorithm 1: per-coordinate learning rates `alpha / (beta + sqrt(n_i))`, L1 that yields
//! exact zeros (a coordinate whose accumulated gradient `|z_i|` stays within `lambda1` has
//! weight 0 and costs nothing at serving), and L2 (`lambda2`). Weights are never stored:
//! they are a closed-form function of the two per-coordinate accumulators `z` and `n`
//! (equation 2 of the paper, solved per coordinate).
//!
//! Features are hashed (the "hashing trick"): [`FeatureHasher`] turns `name=value` strings
//! into xxh3 digests, and the model keeps the low `bits` bits of each, so the model has a
//! fixed size of `2^bits` coordinates whatever the vocabulary. The intercept is one more
//! coordinate, outside the hashed space and exempt from L1: with click rates well under 1%
//! an L1 pull of the intercept toward 0 (probability 0.5) would only do harm.
//!
//! One departure from the paper, on by default ([`FtrlParams::intercept_from_base_rate`]):
//! batch training starts the intercept at the log-odds of the training click rate instead of
//! 0. From 0 (p = 0.5) the per-coordinate rate needs on the order of `(logit(ctr) / alpha)^2`
//! examples to bring the intercept down to a 0.4% click rate — about 12,000 at alpha 0.05 —
//! and until it gets there every feature's `z` absorbs the same misfit, so weights learn
//! "was seen early" instead of "was clicked".
//!
//! Owns: the model, its parameters and their validation, the artifact form. Knows nothing of
//! where features come from (see [`super::obd`]). Never touches files: saving and loading go
//! through a reader or writer and the engine's model artifact ([`crate::recommend::artifact`]).
//!
//! Cost model: `predict` touches one `(z, n)` pair (8 bytes) per feature and takes one square
//! root per feature; `update` touches the same pairs twice and takes three square roots per
//! feature. Neither allocates. Memory is `8 * (2^bits + 1)` bytes (32 MiB at the default 22).

use std::fmt::{Display, Write as _};
use std::io::{Read, Write};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, ValidationError};
use crate::recommend::artifact::{corrupt_artifact, Array, Artifact};

/// The model's name in its artifact.
pub const MODEL_NAME: &str = "ftrl";

/// Largest `bits`: the intercept's index `2^bits` must fit the artifact's u32 indices, and
/// 2^30 coordinates (8 GiB of accumulators) is far beyond any feature space we hash.
pub const MAX_BITS: u32 = 30;

/// Margins are clamped to this before the sigmoid so `exp` cannot overflow; σ(±35) is
/// within 1e-15 of 0 or 1, beyond any probability a click model needs to express.
const MAX_MARGIN: f64 = 35.0;

/// Parameters of the FTRL-Proximal learner (names as in the paper).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FtrlParams {
    /// Learning-rate scale: coordinate i steps with `alpha / (beta + sqrt(n_i))`.
    pub alpha: f64,
    /// Learning-rate smoothing for rarely seen coordinates; the paper finds 1 good enough.
    /// Positive, so a coordinate's weight is defined before its first gradient.
    pub beta: f64,
    /// L1 strength: coordinates whose `|z_i| <= lambda1` have weight exactly 0.
    pub lambda1: f64,
    /// L2 strength.
    pub lambda2: f64,
    /// The model has `2^bits` hashed coordinates (plus the intercept).
    pub bits: u32,
    /// Passes over the training examples.
    pub epochs: u32,
    /// Shuffle the examples before each pass (seeded). Off by default: online learning in
    /// the order events happened is what FTRL is made for, and keeps time order.
    pub shuffle: bool,
    /// Seed of the shuffle.
    pub seed: u64,
    /// Start the intercept at the log-odds of the training click rate (see the module docs).
    pub intercept_from_base_rate: bool,
}

impl Default for FtrlParams {
    fn default() -> Self {
        Self {
            alpha: 0.1,
            beta: 1.0,
            lambda1: 1.0,
            lambda2: 1.0,
            bits: 22,
            epochs: 1,
            shuffle: false,
            seed: 42,
            intercept_from_base_rate: true,
        }
    }
}

impl FtrlParams {
    /// Every problem with these parameters, each with its key (`ftrl.alpha`, …).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            problems.push(("ftrl.alpha".into(), format!("expected a positive number, found {}", self.alpha)));
        }
        if !(self.beta.is_finite() && self.beta > 0.0) {
            problems.push(("ftrl.beta".into(), format!("expected a positive number, found {}", self.beta)));
        }
        for (key, value) in [("lambda1", self.lambda1), ("lambda2", self.lambda2)] {
            if !(value.is_finite() && value >= 0.0) {
                problems.push((format!("ftrl.{key}"), format!("expected a non-negative number, found {value}")));
            }
        }
        if !(1..=MAX_BITS).contains(&self.bits) {
            problems.push(("ftrl.bits".into(), format!("expected 1..={MAX_BITS}, found {}", self.bits)));
        }
        if !(1..=1000).contains(&self.epochs) {
            problems.push(("ftrl.epochs".into(), format!("expected 1..=1000, found {}", self.epochs)));
        }
        problems
    }

    /// `Ok` when [`Self::problems`] is empty, else one error listing them all.
    pub fn validate(&self) -> Result<(), ValidationError> {
        problems_to_error(&self.problems())
    }
}

/// Turn `(key, message)` problems into one error naming the first key and listing all.
pub(crate) fn problems_to_error(problems: &[(String, String)]) -> Result<(), ValidationError> {
    let Some((first_key, first_message)) = problems.first() else {
        return Ok(());
    };
    let mut message = first_message.clone();
    for (key, text) in &problems[1..] {
        let _ = write!(message, "; {key}: {text}");
    }
    Err(ValidationError::new("invalid_parameter", first_key.clone(), message))
}

/// One active feature of an example: the xxh3 digest of its name (and value, for a
/// categorical feature) and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feature {
    pub hash: u64,
    pub value: f32,
}

/// Makes [`Feature`]s from names and values without allocating per feature (one reused
/// buffer). The same strings always give the same digests, in every process.
#[derive(Debug, Default)]
pub struct FeatureHasher {
    buffer: String,
}

impl FeatureHasher {
    /// A one-hot feature: the digest of `name=value`, with value 1.
    pub fn categorical(&mut self, name: &str, value: impl Display) -> Feature {
        self.buffer.clear();
        let _ = write!(self.buffer, "{name}={value}");
        Feature { hash: xxhash_rust::xxh3::xxh3_64(self.buffer.as_bytes()), value: 1.0 }
    }

    /// A real-valued feature: the digest of `name`, with the given value.
    pub fn numeric(&mut self, name: &str, value: f32) -> Feature {
        Feature { hash: xxhash_rust::xxh3::xxh3_64(name.as_bytes()), value }
    }
}

/// One training example.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub features: Vec<Feature>,
    pub label: bool,
    /// Importance weight: multiplies the example's gradient (e.g. an inverse propensity).
    pub weight: f32,
}

/// A trained (or training) FTRL-Proximal model.
#[derive(Debug, Clone, PartialEq)]
pub struct FtrlModel {
    params: FtrlParams,
    /// Per-coordinate `z_i` (accumulated adjusted gradients); the last one is the intercept.
    z: Vec<f32>,
    /// Per-coordinate `n_i` (accumulated squared gradients).
    n: Vec<f32>,
    mask: u64,
}

fn sigmoid(margin: f64) -> f64 {
    1.0 / (1.0 + (-margin.clamp(-MAX_MARGIN, MAX_MARGIN)).exp())
}

impl FtrlModel {
    /// An untrained model (every weight 0, predicting 0.5).
    pub fn new(params: FtrlParams) -> Result<Self> {
        params.validate()?;
        let len = (1usize << params.bits) + 1;
        let mask = (1u64 << params.bits) - 1;
        Ok(Self { params, z: vec![0.0; len], n: vec![0.0; len], mask })
    }

    /// Train a new model on `examples` ([`FtrlParams::epochs`] passes, shuffled per pass
    /// with [`FtrlParams::seed`] if asked, the intercept started at the base rate if asked).
    /// The same examples and parameters always give the same model.
    pub fn train(params: FtrlParams, examples: &[Example]) -> Result<Self> {
        let mut model = Self::new(params)?;
        if let Some((i, e)) = examples.iter().enumerate().find(|(_, e)| !(e.weight.is_finite() && e.weight >= 0.0)) {
            return Err(ValidationError::new(
                "invalid_weight",
                format!("examples[{i}].weight"),
                format!("expected a finite non-negative importance weight, found {}", e.weight),
            )
            .into());
        }
        if model.params.intercept_from_base_rate {
            // Weighted click rate, Jeffreys-smoothed so no clicks (or only clicks) stays finite.
            let total: f64 = examples.iter().map(|e| f64::from(e.weight)).sum();
            let clicked: f64 = examples.iter().filter(|e| e.label).map(|e| f64::from(e.weight)).sum();
            model.start_intercept_at((clicked + 0.5) / (total + 1.0));
        }
        model.fit(examples);
        Ok(model)
    }

    /// Set the intercept of an untrained model so it predicts `probability` for an example
    /// with no features; training then moves it as usual. Does nothing to a model that has
    /// already learned its intercept, or for a probability outside (0, 1).
    pub fn start_intercept_at(&mut self, probability: f64) {
        let i = self.intercept_index();
        if self.n[i] != 0.0 || !(probability > 0.0 && probability < 1.0) {
            return;
        }
        let log_odds = (probability / (1.0 - probability)).ln().clamp(-MAX_MARGIN, MAX_MARGIN);
        // With n = 0 the weight is -z / (beta / alpha + lambda2) (no L1 on the intercept).
        self.z[i] = (-log_odds * (self.params.beta / self.params.alpha + self.params.lambda2)) as f32;
    }

    /// Continue training on `examples` with this model's epochs and shuffle settings.
    pub fn fit(&mut self, examples: &[Example]) {
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(self.params.seed);
        for _ in 0..self.params.epochs {
            if self.params.shuffle {
                order.shuffle(&mut rng);
            }
            for &i in &order {
                let example = &examples[i];
                self.update(&example.features, example.label, f64::from(example.weight));
            }
        }
    }

    pub fn params(&self) -> &FtrlParams {
        &self.params
    }

    fn intercept_index(&self) -> usize {
        self.z.len() - 1
    }

    fn index(&self, feature: &Feature) -> usize {
        (feature.hash & self.mask) as usize
    }

    /// The weight of coordinate `i`: the closed-form FTRL-Proximal solution for one
    /// coordinate (McMahan et al. 2013, Algorithm 1).
    fn weight_at(&self, i: usize) -> f64 {
        let z = f64::from(self.z[i]);
        let lambda1 = if i == self.intercept_index() { 0.0 } else { self.params.lambda1 };
        if z.abs() <= lambda1 {
            return 0.0;
        }
        let n = f64::from(self.n[i]);
        -(z - z.signum() * lambda1) / ((self.params.beta + n.sqrt()) / self.params.alpha + self.params.lambda2)
    }

    /// The model's weight for `feature` (0 when L1 zeroed it or it was never seen).
    pub fn weight(&self, feature: &Feature) -> f64 {
        self.weight_at(self.index(feature))
    }

    /// The intercept.
    pub fn intercept(&self) -> f64 {
        self.weight_at(self.intercept_index())
    }

    /// `w · x` including the intercept.
    pub fn margin(&self, features: &[Feature]) -> f64 {
        let mut margin = self.intercept();
        for feature in features {
            margin += self.weight_at(self.index(feature)) * f64::from(feature.value);
        }
        margin
    }

    /// The click probability of an example.
    pub fn predict(&self, features: &[Feature]) -> f64 {
        sigmoid(self.margin(features))
    }

    /// One online step on an example with importance `weight` (1 for plain logistic
    /// loss). A weight that is not a finite positive number leaves the model unchanged.
    /// Returns the prediction made before the step, which is what progressive validation
    /// scores.
    pub fn update(&mut self, features: &[Feature], label: bool, weight: f64) -> f64 {
        let p = self.predict(features);
        // Gradient of the weighted log loss with respect to the margin.
        let gradient = weight * (p - if label { 1.0 } else { 0.0 });
        if !(weight.is_finite() && weight > 0.0) || gradient == 0.0 {
            return p;
        }
        let intercept = self.intercept_index();
        self.step(intercept, gradient);
        for feature in features {
            let i = self.index(feature);
            self.step(i, gradient * f64::from(feature.value));
        }
        p
    }

    /// Per-coordinate update of Algorithm 1: `sigma` makes `z` track the proximal centre.
    fn step(&mut self, i: usize, g: f64) {
        if g == 0.0 {
            return;
        }
        let w = self.weight_at(i);
        let n = f64::from(self.n[i]);
        let sigma = ((n + g * g).sqrt() - n.sqrt()) / self.params.alpha;
        self.z[i] = (f64::from(self.z[i]) + g - sigma * w) as f32;
        self.n[i] = (n + g * g) as f32;
    }

    /// How many hashed coordinates have a non-zero weight (the intercept not counted).
    pub fn nonzero_weights(&self) -> usize {
        (0..self.intercept_index()).filter(|&i| self.z[i] != 0.0 && self.weight_at(i) != 0.0).count()
    }

    /// The model as data. Only touched coordinates are stored (indices, `z`, `n`), so an
    /// artifact is as large as what was learned, not `2^bits`.
    pub fn to_artifact(&self) -> Result<Artifact> {
        let touched: Vec<u32> =
            (0..self.z.len()).filter(|&i| self.n[i] != 0.0 || self.z[i] != 0.0).map(|i| i as u32).collect();
        let z = touched.iter().map(|&i| self.z[i as usize]).collect();
        let n = touched.iter().map(|&i| self.n[i as usize]).collect();
        let mut params =
            serde_json::to_value(&self.params).map_err(|e| Error::Internal(format!("encoding params: {e}")))?;
        params["touched"] = touched.len().into();
        Ok(Artifact {
            name: MODEL_NAME.into(),
            params,
            arrays: vec![Array::U32(touched), Array::F32(z), Array::F32(n)],
        })
    }

    /// Rebuild a model from [`Self::to_artifact`]'s output, checking that it is whole.
    pub fn from_artifact(artifact: Artifact) -> Result<Self> {
        if artifact.name != MODEL_NAME {
            return Err(corrupt_artifact(format!("expected a {MODEL_NAME} model, found {:?}", artifact.name)));
        }
        let touched = artifact.shape("touched")?;
        let params: FtrlParams = artifact.model_params(&["touched"])?;
        params.validate().map_err(|e| corrupt_artifact(format!("params: {e}")))?;
        let mut arrays = artifact.arrays.into_iter();
        let indices = Artifact::u32_array(&mut arrays, "indices", touched)?;
        let z = Artifact::f32_array(&mut arrays, "z", touched)?;
        let n = Artifact::f32_array(&mut arrays, "n", touched)?;
        let mut model = Self::new(params)?;
        let mut previous: Option<u32> = None;
        for ((&i, z), n) in indices.iter().zip(z).zip(n) {
            if previous.is_some_and(|p| p >= i) || i as usize >= model.z.len() {
                return Err(corrupt_artifact(format!(
                    "indices: expected increasing values below {}, found {i} after {previous:?}",
                    model.z.len()
                )));
            }
            if !(z.is_finite() && n.is_finite() && n >= 0.0) {
                return Err(corrupt_artifact(format!("coordinate {i}: expected finite z and n >= 0, found {z}, {n}")));
            }
            model.z[i as usize] = z;
            model.n[i as usize] = n;
            previous = Some(i);
        }
        Ok(model)
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

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;
    use crate::rank::metrics::auc;

    /// A synthetic logistic world: `relevant` features with known weights, `irrelevant`
    /// ones with weight 0; each example turns on each feature with probability 0.3.
    struct World {
        relevant: Vec<f64>,
        irrelevant: usize,
        intercept: f64,
    }

    impl World {
        fn feature(hasher: &mut FeatureHasher, k: usize) -> Feature {
            hasher.categorical("f", k)
        }

        fn sample(&self, count: usize, seed: u64) -> (Vec<Example>, Vec<f64>) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut hasher = FeatureHasher::default();
            let mut examples = Vec::with_capacity(count);
            let mut truth = Vec::with_capacity(count);
            for _ in 0..count {
                let mut features = Vec::new();
                let mut margin = self.intercept;
                for k in 0..self.relevant.len() + self.irrelevant {
                    if rng.gen_bool(0.3) {
                        features.push(Self::feature(&mut hasher, k));
                        margin += self.relevant.get(k).copied().unwrap_or(0.0);
                    }
                }
                let p = sigmoid(margin);
                examples.push(Example { features, label: rng.gen_bool(p), weight: 1.0 });
                truth.push(p);
            }
            (examples, truth)
        }
    }

    fn world() -> World {
        World { relevant: vec![1.5, -1.2, 0.9, -0.8, 0.6, 2.0, -1.8, 1.1], irrelevant: 12, intercept: -1.0 }
    }

    fn labels(examples: &[Example]) -> Vec<bool> {
        examples.iter().map(|e| e.label).collect()
    }

    #[test]
    fn recovers_a_synthetic_logistic_model() {
        let world = world();
        let (train, _) = world.sample(30_000, 1);
        let (test, truth) = world.sample(10_000, 2);
        let params =
            FtrlParams { alpha: 0.1, lambda1: 0.0, lambda2: 0.0, bits: 16, epochs: 2, ..FtrlParams::default() };
        let model = FtrlModel::train(params, &train).unwrap();
        let predicted: Vec<f64> = test.iter().map(|e| model.predict(&e.features)).collect();
        let best = auc(&truth, &labels(&test)).unwrap();
        let learned = auc(&predicted, &labels(&test)).unwrap();
        assert!(best > 0.8, "the synthetic world should be learnable, its own AUC is {best}");
        assert!(learned > best - 0.01, "learned AUC {learned} is not near the generating model's {best}");
        // The weights themselves are recovered, sign and rough size.
        let mut hasher = FeatureHasher::default();
        for (k, &truth) in world.relevant.iter().enumerate() {
            let w = model.weight(&World::feature(&mut hasher, k));
            assert!((w - truth).abs() < 0.25, "feature {k}: learned {w}, true {truth}");
        }
        assert!((model.intercept() - world.intercept).abs() < 0.25, "intercept {}", model.intercept());
    }

    #[test]
    fn l1_zeroes_exactly_the_irrelevant_features() {
        let world = world();
        let (train, _) = world.sample(30_000, 3);
        let mut hasher = FeatureHasher::default();
        let irrelevant: Vec<Feature> = (world.relevant.len()..world.relevant.len() + world.irrelevant)
            .map(|k| World::feature(&mut hasher, k))
            .collect();
        let relevant: Vec<Feature> = (0..world.relevant.len()).map(|k| World::feature(&mut hasher, k)).collect();

        // alpha 0.3 lets the intercept settle within a few hundred examples; with a slow
        // intercept every feature shares its early misfit and L1 must be far stronger.
        let params = FtrlParams { alpha: 0.3, lambda2: 0.0, bits: 16, ..FtrlParams::default() };
        let dense = FtrlModel::train(FtrlParams { lambda1: 0.0, ..params.clone() }, &train).unwrap();
        let nonzero = irrelevant.iter().filter(|f| dense.weight(f) != 0.0).count();
        assert_eq!(nonzero, irrelevant.len(), "without L1 every irrelevant feature keeps some weight");

        // The gradient sums of the irrelevant features stay below 90 here, the relevant
        // features' above 220: lambda1 = 150 separates them.
        let sparse = FtrlModel::train(FtrlParams { lambda1: 150.0, ..params }, &train).unwrap();
        for (k, f) in irrelevant.iter().enumerate() {
            assert_eq!(sparse.weight(f), 0.0, "irrelevant feature {k} kept weight {}", sparse.weight(f));
        }
        for (k, f) in relevant.iter().enumerate() {
            let (w, truth) = (sparse.weight(f), world.relevant[k]);
            assert!(w.signum() == truth.signum() && (w - truth).abs() < 0.3, "relevant feature {k}: {w}, true {truth}");
        }
        assert_eq!(sparse.nonzero_weights(), relevant.len());
    }

    #[test]
    fn training_is_deterministic_for_a_seed_and_the_seed_matters_when_shuffling() {
        let (train, _) = world().sample(3_000, 4);
        let params = FtrlParams { shuffle: true, epochs: 2, bits: 12, seed: 7, ..FtrlParams::default() };
        let a = FtrlModel::train(params.clone(), &train).unwrap();
        let b = FtrlModel::train(params.clone(), &train).unwrap();
        assert_eq!(a, b);
        let c = FtrlModel::train(FtrlParams { seed: 8, ..params }, &train).unwrap();
        assert_ne!(a, c, "a different seed should visit the examples in another order");
    }

    #[test]
    fn the_intercept_starts_at_the_base_rate() {
        // 1 click in 200 examples with no features: the intercept starts at the smoothed
        // rate (1.5 / 201) and a pass leaves it near the observed one.
        let examples: Vec<Example> =
            (0..200).map(|k| Example { features: Vec::new(), label: k == 100, weight: 1.0 }).collect();
        let mut fresh = FtrlModel::new(FtrlParams::default()).unwrap();
        fresh.start_intercept_at(1.5 / 201.0);
        assert!((fresh.predict(&[]) - 1.5 / 201.0).abs() < 1e-6, "{}", fresh.predict(&[]));
        let warm = FtrlModel::train(FtrlParams::default(), &examples).unwrap();
        assert!((warm.predict(&[]) - 0.005).abs() < 0.004, "{}", warm.predict(&[]));
        // From 0 the same pass is nowhere near: the reason for the warm start.
        let cold_params = FtrlParams { intercept_from_base_rate: false, ..FtrlParams::default() };
        let cold = FtrlModel::train(cold_params, &examples).unwrap();
        assert!(cold.predict(&[]) > 0.05, "{}", cold.predict(&[]));
        // Training has already set it: a second call changes nothing.
        let mut again = warm.clone();
        again.start_intercept_at(0.5);
        assert_eq!(again, warm);
    }

    #[test]
    fn importance_weight_scales_the_step() {
        let mut hasher = FeatureHasher::default();
        let features = [hasher.categorical("item", 3)];
        let params = FtrlParams { alpha: 0.05, lambda1: 0.0, intercept_from_base_rate: false, ..FtrlParams::default() };
        let mut untouched = FtrlModel::new(params.clone()).unwrap();
        for weight in [0.0, -1.0, f64::NAN] {
            untouched.update(&features, true, weight);
        }
        assert_eq!(untouched, FtrlModel::new(params.clone()).unwrap(), "weights 0, -1, NaN must not change the model");
        let bad = [Example { features: features.to_vec(), label: true, weight: -2.0 }];
        let error = FtrlModel::train(params.clone(), &bad).unwrap_err();
        assert!(error.to_string().contains("examples[0].weight: expected a finite non-negative"), "{error}");
        let mut light = FtrlModel::new(params.clone()).unwrap();
        let mut heavy = FtrlModel::new(params).unwrap();
        light.update(&features, true, 1.0);
        heavy.update(&features, true, 5.0);
        let (p_light, p_heavy) = (light.predict(&features), heavy.predict(&features));
        assert!(p_light > 0.5 && p_heavy > p_light, "expected 0.5 < {p_light} < {p_heavy}");
    }

    #[test]
    fn save_and_load_give_identical_predictions() {
        let (train, _) = world().sample(2_000, 5);
        let model = FtrlModel::train(FtrlParams { bits: 14, ..FtrlParams::default() }, &train).unwrap();
        let mut bytes = Vec::new();
        model.save(&mut bytes).unwrap();
        // Sparse storage: far smaller than the 2^14 dense coordinates.
        assert!(bytes.len() < 2_000, "artifact is {} bytes", bytes.len());
        let loaded = FtrlModel::load(&mut bytes.as_slice()).unwrap();
        assert_eq!(loaded, model);
        for example in train.iter().take(200) {
            assert_eq!(loaded.predict(&example.features).to_bits(), model.predict(&example.features).to_bits());
        }
    }

    #[test]
    fn a_checksum_mismatch_is_refused() {
        let (train, _) = world().sample(500, 6);
        let model = FtrlModel::train(FtrlParams { bits: 12, ..FtrlParams::default() }, &train).unwrap();
        let mut bytes = Vec::new();
        model.save(&mut bytes).unwrap();
        // Flip one bit inside the last stored n value, just before the checksum.
        let at = bytes.len() - 5;
        bytes[at] ^= 0x01;
        match FtrlModel::load(&mut bytes.as_slice()) {
            Err(Error::Corrupt { message, .. }) => assert!(message.contains("checksum mismatch"), "{message}"),
            other => panic!("expected a checksum error, got {other:?}"),
        }
    }

    #[test]
    fn another_models_artifact_is_refused() {
        let artifact = Artifact { name: "als".into(), params: serde_json::json!({}), arrays: vec![] };
        let error = FtrlModel::from_artifact(artifact).unwrap_err();
        assert!(error.to_string().contains("expected a ftrl model, found \"als\""), "{error}");
    }

    #[test]
    fn out_of_range_indices_are_refused() {
        let model = FtrlModel::new(FtrlParams { bits: 4, ..FtrlParams::default() }).unwrap();
        let mut artifact = model.to_artifact().unwrap();
        artifact.params["touched"] = 1.into();
        artifact.arrays = vec![Array::U32(vec![17]), Array::F32(vec![1.0]), Array::F32(vec![1.0])];
        let error = FtrlModel::from_artifact(artifact).unwrap_err();
        assert!(error.to_string().contains("expected increasing values below 17, found 17"), "{error}");
    }

    #[test]
    fn every_parameter_problem_is_reported() {
        let params =
            FtrlParams { alpha: 0.0, beta: 0.0, lambda1: f64::NAN, bits: 0, epochs: 0, ..FtrlParams::default() };
        let keys: Vec<String> = params.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["ftrl.alpha", "ftrl.beta", "ftrl.lambda1", "ftrl.bits", "ftrl.epochs"]);
        let error = FtrlModel::new(params).unwrap_err();
        assert!(matches!(error, Error::Invalid(ref e) if e.field == "ftrl.alpha" && e.message.contains("ftrl.epochs")));
        assert!(FtrlParams::default().problems().is_empty());
    }

    #[test]
    fn params_refuse_unknown_keys() {
        let error = serde_json::from_str::<FtrlParams>(r#"{"alpha": 0.1, "lamda1": 2}"#).unwrap_err();
        assert!(error.to_string().contains("lamda1"), "{error}");
    }

    #[test]
    fn feature_digests_are_pinned() {
        // Pinned digests: a change here silently invalidates every saved model.
        let mut hasher = FeatureHasher::default();
        let feature = hasher.categorical("item", 14);
        assert_eq!(format!("{:#018x}", feature.hash), "0x299852f422f1fd3e");
        assert_eq!(feature.value, 1.0);
        assert_eq!(format!("{:#018x}", hasher.numeric("user-item_affinity", 2.0).hash), "0x7524ec537c091563");
    }
}
