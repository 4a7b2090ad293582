//! A weighted blend of other models' standardised scores.
//!
//! Models that learn differently make different mistakes: a linear item-item model (EASE or
//! the user-weighted DLAE) and a low-rank factor model (ALS) disagree on many users' tails.
//! Raw scores live on unrelated scales, so each part's scores are standardised per request
//! (z-scores over the catalog: `(s − mean) / std`) and summed with the configured weights.
//! Standardising per user keeps one part from dominating a user only because its scores
//! happen to be spread wider for them.
//!
//! Owns the parts' training (through the trainer the registry hands it), their combination, and a composite
//! artifact: the parts' artifacts one after the other, their names, parameters, weights and
//! array counts in the blend's parameters.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::artifact::Artifact;
use super::data::Interactions;
use super::kernels::invalid;
use super::Recommender;
use crate::Result;

/// One model of a blend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlendPart {
    /// A registry name (not `blend`).
    pub model: String,
    /// That model's parameters (`null` or missing keys: its defaults).
    #[serde(default)]
    pub params: Value,
    /// Weight of its standardised scores, > 0.
    pub weight: f32,
}

/// Parameters of [`train`]. Default: the user-weighted DLAE (the best linear model on
/// MovieLens-100K's validation split) and ALS, half and half.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlendParams {
    pub parts: Vec<BlendPart>,
}

/// The DLAE part of the default blend and of the registry grid.
pub(crate) fn dlae_params() -> Value {
    json!({ "lambda": 300.0, "user_exponent": 0.75, "dropout": 0.4, "dlae": true, "popularity_exponent": 0.1 })
}

impl Default for BlendParams {
    fn default() -> Self {
        Self {
            parts: vec![
                BlendPart { model: "ease".into(), params: dlae_params(), weight: 0.5 },
                // α 5: on both MovieLens-100K validation splits within 0.003 of the best, where
                // α 1 was 0.013 behind on one of them.
                BlendPart {
                    model: "als".into(),
                    params: json!({ "factors": 128, "regularization": 50.0, "alpha": 5.0 }),
                    weight: 0.5,
                },
            ],
        }
    }
}

impl BlendParams {
    /// Check the parts against `models`, the names a part may take.
    pub fn validate(&self, models: &[&str]) -> Result<()> {
        if self.parts.is_empty() {
            return Err(invalid("blend.parts", "a blend needs at least one part"));
        }
        for part in &self.parts {
            if part.model == "blend" || !models.contains(&part.model.as_str()) {
                return Err(invalid(
                    "blend.parts",
                    format!("{:?} cannot be part of a blend; expected another registry model", part.model),
                ));
            }
            if !(part.weight > 0.0 && part.weight.is_finite()) {
                return Err(invalid("blend.parts", format!("weight {} of {} must be > 0", part.weight, part.model)));
            }
        }
        Ok(())
    }
}

/// A trained blend.
pub struct BlendModel {
    pub params: BlendParams,
    parts: Vec<(Box<dyn Recommender>, f32)>,
}

/// Trains one part by model name and parameters (the registry's `train_model`).
pub type TrainPart<'a> = &'a dyn Fn(&str, &Value, &Interactions) -> Result<Box<dyn Recommender>>;
/// Loads one part from its artifact (the registry's `model_from_artifact`).
pub type LoadPart<'a> = &'a dyn Fn(Artifact) -> Result<Box<dyn Recommender>>;

/// Train every part with `train_part`; `models` are the names a part may take.
pub fn train(
    data: &Interactions,
    params: &BlendParams,
    models: &[&str],
    train_part: TrainPart<'_>,
) -> Result<BlendModel> {
    params.validate(models)?;
    let parts = params
        .parts
        .iter()
        .map(|part| Ok((train_part(&part.model, &part.params, data)?, part.weight)))
        .collect::<Result<Vec<_>>>()?;
    Ok(BlendModel { params: params.clone(), parts })
}

/// `scores` standardised in place: mean 0, standard deviation 1 (all zeros when constant).
pub(crate) fn standardise(scores: &mut [f32]) {
    let n = scores.len().max(1) as f64;
    let mean = scores.iter().map(|&s| f64::from(s)).sum::<f64>() / n;
    let variance = scores.iter().map(|&s| (f64::from(s) - mean).powi(2)).sum::<f64>() / n;
    let std = variance.sqrt();
    for s in scores.iter_mut() {
        *s = if std > 0.0 { ((f64::from(*s) - mean) / std) as f32 } else { 0.0 };
    }
}

impl BlendModel {
    pub fn from_artifact(artifact: Artifact, load_part: LoadPart<'_>) -> Result<Self> {
        let corrupt = |m: &str| super::artifact::corrupt_artifact(format!("blend: {m}"));
        let parts_meta = artifact.params.get("parts").and_then(Value::as_array).ok_or_else(|| corrupt("no parts"))?;
        let mut arrays = artifact.arrays.into_iter();
        let mut parts = Vec::with_capacity(parts_meta.len());
        let mut params = BlendParams { parts: Vec::new() };
        for meta in parts_meta {
            let name = meta.get("name").and_then(Value::as_str).ok_or_else(|| corrupt("a part has no name"))?;
            let weight = meta.get("weight").and_then(Value::as_f64).ok_or_else(|| corrupt("a part has no weight"))?;
            let count =
                meta.get("arrays").and_then(Value::as_u64).ok_or_else(|| corrupt("a part has no array count"))?;
            let part_params = meta.get("params").cloned().unwrap_or(Value::Null);
            let part_arrays: Vec<_> = arrays.by_ref().take(count as usize).collect();
            if part_arrays.len() != count as usize {
                return Err(corrupt("fewer arrays than its parts name"));
            }
            let part = Artifact { name: name.to_string(), params: part_params.clone(), arrays: part_arrays };
            if name == "blend" {
                return Err(corrupt("a blend inside a blend"));
            }
            parts.push((load_part(part)?, weight as f32));
            params.parts.push(BlendPart {
                model: name.to_string(),
                params: meta.get("trained_with").cloned().unwrap_or(Value::Null),
                weight: weight as f32,
            });
        }
        if arrays.next().is_some() {
            return Err(corrupt("more arrays than its parts name"));
        }
        Ok(BlendModel { params, parts })
    }
}

impl Recommender for BlendModel {
    fn name(&self) -> &str {
        "blend"
    }

    /// Cost: the parts' costs, plus one pass over the catalog per part.
    fn score(&self, user: Option<u32>, history: &[(u32, f32)], scores: &mut [f32]) {
        scores.iter_mut().for_each(|s| *s = 0.0);
        let mut part_scores = vec![0f32; scores.len()];
        for (model, weight) in &self.parts {
            model.score(user, history, &mut part_scores);
            standardise(&mut part_scores);
            for (total, s) in scores.iter_mut().zip(&part_scores) {
                *total += weight * s;
            }
        }
    }

    fn to_artifact(&self) -> Option<Artifact> {
        let mut metas = Vec::with_capacity(self.parts.len());
        let mut arrays = Vec::new();
        for ((model, weight), spec) in self.parts.iter().zip(&self.params.parts) {
            let artifact = model.to_artifact()?;
            metas.push(json!({
                "name": artifact.name,
                "params": artifact.params,
                "trained_with": spec.params,
                "weight": weight,
                "arrays": artifact.arrays.len(),
            }));
            arrays.extend(artifact.arrays);
        }
        Some(Artifact { name: self.name().into(), params: json!({ "parts": metas }), arrays })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::als::tests::synthetic;
    use crate::recommend::registry::{self, MODELS};

    #[test]
    fn scores_are_the_weighted_sum_of_standardised_parts() {
        let data = synthetic(30, 20, 5, 3);
        let parts = vec![
            BlendPart { model: "ease".into(), params: json!({ "lambda": 5.0 }), weight: 0.7 },
            BlendPart { model: "popularity".into(), params: Value::Null, weight: 0.3 },
        ];
        let blend = train(&data, &BlendParams { parts }, MODELS, &registry::train_model).unwrap();
        let ease = registry::train_model("ease", &json!({ "lambda": 5.0 }), &data).unwrap();
        let popularity = registry::train_model("popularity", &Value::Null, &data).unwrap();
        for u in 0..data.n_users() {
            let history = data.history(u);
            let mut got = vec![0f32; data.n_items()];
            blend.score(Some(u as u32), &history, &mut got);
            let mut a = vec![0f32; data.n_items()];
            let mut b = vec![0f32; data.n_items()];
            ease.score(Some(u as u32), &history, &mut a);
            popularity.score(Some(u as u32), &history, &mut b);
            standardise(&mut a);
            standardise(&mut b);
            for k in 0..got.len() {
                assert!((got[k] - (0.7 * a[k] + 0.3 * b[k])).abs() < 1e-5, "user {u}, item {k}");
            }
        }
        // Standardised: mean 0, standard deviation 1.
        let mut v = vec![1.0, 2.0, 3.0, 6.0];
        standardise(&mut v);
        assert!(v.iter().sum::<f32>().abs() < 1e-6);
        assert!((v.iter().map(|x| x * x).sum::<f32>() / 4.0 - 1.0).abs() < 1e-5);
        let mut flat = vec![2.0; 3];
        standardise(&mut flat);
        assert_eq!(flat, vec![0.0; 3]);
    }

    #[test]
    fn bad_parts_are_refused_with_the_field() {
        let data = synthetic(6, 6, 2, 1);
        for parts in [
            vec![],
            vec![BlendPart { model: "blend".into(), params: Value::Null, weight: 1.0 }],
            vec![BlendPart { model: "svd".into(), params: Value::Null, weight: 1.0 }],
            vec![BlendPart { model: "als".into(), params: Value::Null, weight: 0.0 }],
        ] {
            match train(&data, &BlendParams { parts }, MODELS, &registry::train_model) {
                Err(crate::Error::Invalid(v)) => assert_eq!(v.field, "blend.parts"),
                Err(other) => panic!("expected a validation error, got {other:?}"),
                Ok(_) => panic!("expected a validation error"),
            }
        }
    }
}
