//! The model registry: every model by name, trained from JSON parameters, with a small
//! tuning grid each, and saved/loaded as a versioned [`Artifact`].
//!
//! Owns the mapping name → (parameters type, trainer, loader). Callers (the CLI, the
//! evaluator, the server) never name a concrete model type.

use std::io::{Read, Write};

use serde_json::{json, Value};

use super::artifact::Artifact;
use super::data::Interactions;
use super::kernels::params_from_json;
use super::{als, blend, ease, infinite_ae, itemknn, popularity, rp3beta, social, Recommender};
use crate::{Error, Result, ValidationError};

/// Names accepted by [`train_model`], [`default_grid`] and [`load_model`].
pub const MODELS: &[&str] = &["popularity", "itemknn", "rp3beta", "als", "ease", "infinite_ae", "blend", "social"];

fn unknown(name: &str) -> Error {
    Error::Invalid(ValidationError::new(
        "unknown_model",
        "models",
        format!("unknown model {name:?}; expected one of {}", MODELS.join(", ")),
    ))
}

/// Train model `name` with `params`, a JSON object of that model's parameters (missing
/// keys take their defaults, unknown keys are refused; `null` means all defaults).
pub fn train_model(name: &str, params: &Value, data: &Interactions) -> Result<Box<dyn Recommender>> {
    let params = if params.is_null() { &json!({}) } else { params };
    Ok(match name {
        "popularity" => Box::new(popularity::train(data, &params_from_json(name, params)?)?),
        "itemknn" => Box::new(itemknn::train(data, &params_from_json(name, params)?)?),
        "rp3beta" => Box::new(rp3beta::train(data, &params_from_json(name, params)?)?),
        "als" => Box::new(als::train(data, &params_from_json(name, params)?)?),
        "ease" => Box::new(ease::train(data, &params_from_json(name, params)?)?),
        "infinite_ae" => Box::new(infinite_ae::train(data, &params_from_json(name, params)?)?),
        "blend" => Box::new(blend::train(data, &params_from_json(name, params)?, MODELS, &train_model)?),
        "social" => Box::new(social::train(data, &params_from_json(name, params)?, MODELS, &train_model)?),
        _ => return Err(unknown(name)),
    })
}

/// A small hyper-parameter grid for tuning `name` on a validation split (empty for an
/// unknown model). Each entry is a parameters object for [`train_model`].
pub fn default_grid(name: &str) -> Vec<Value> {
    match name {
        "popularity" => vec![json!({})],
        "itemknn" => {
            [50, 100, 200].iter().flat_map(|k| [0.0, 10.0].map(|s| json!({ "neighbours": k, "shrink": s }))).collect()
        }
        "rp3beta" => [0.5, 1.0]
            .iter()
            .flat_map(|a| [0.2, 0.4, 0.6, 0.8].map(|b| json!({ "alpha": a, "beta": b, "neighbours": 200 })))
            .collect(),
        "als" => [64, 128]
            .iter()
            .flat_map(|f| {
                [1.0, 10.0, 25.0, 50.0]
                    .iter()
                    .flat_map(move |r| [1.0, 10.0].map(|a| json!({ "factors": f, "regularization": r, "alpha": a })))
            })
            .collect(),
        "ease" => {
            let plain = [50.0, 200.0, 500.0, 1000.0]
                .iter()
                .flat_map(|l| [0.0, 0.15].map(|b| json!({ "lambda": l, "popularity_exponent": b })));
            // The user-weighted dropout autoencoder (see `ease::EaseParams::user_exponent`).
            let dlae = [100.0, 300.0].iter().flat_map(|l| {
                [0.5, 0.75].iter().flat_map(move |g| {
                    [0.4, 0.6].map(|p| {
                        json!({ "lambda": l, "user_exponent": g, "dropout": p, "dlae": true, "popularity_exponent": 0.1 })
                    })
                })
            });
            plain.chain(dlae).collect()
        }
        "infinite_ae" => [1.0, 2.0, 3.0, 5.0].map(|l| json!({ "lambda": l })).to_vec(),
        // The DLAE part fixed (its own grid's best on MovieLens-100K); ALS's confidence and
        // the share of each part tuned.
        "blend" => [0.3, 0.5]
            .iter()
            .flat_map(|w| {
                [1.0, 5.0].map(|alpha| {
                    json!({ "parts": [
                        { "model": "ease", "params": blend::dlae_params(), "weight": 1.0 - w },
                        { "model": "als", "params": { "factors": 128, "regularization": 50.0, "alpha": alpha }, "weight": w },
                    ] })
                })
            })
            .collect(),
        // The base fixed at its default (ALS as LastFM's validation split chose it); the
        // weights of the friends' taste and of their items tuned.
        "social" => [0.0, 0.5]
            .iter()
            .flat_map(|b| [1.0, 3.0, 8.0].map(|g| json!({ "friend_taste": b, "friend_items": g })))
            .collect(),
        _ => Vec::new(),
    }
}

/// Write `model` as an artifact (see [`super::artifact`] for the layout).
pub fn save_model(model: &dyn Recommender, writer: &mut dyn Write) -> Result<()> {
    let artifact =
        model.to_artifact().ok_or_else(|| Error::Internal(format!("model {} cannot be saved", model.name())))?;
    artifact.write_to(writer)
}

/// Read a model written by [`save_model`].
pub fn load_model(reader: &mut dyn Read) -> Result<Box<dyn Recommender>> {
    model_from_artifact(Artifact::read_from(reader)?)
}

/// The model an artifact holds (see [`load_model`]).
pub(crate) fn model_from_artifact(artifact: Artifact) -> Result<Box<dyn Recommender>> {
    Ok(match artifact.name.as_str() {
        "popularity" => Box::new(popularity::PopularityModel::from_artifact(artifact)?),
        "itemknn" => Box::new(itemknn::ItemKnnModel::from_artifact(artifact)?),
        "rp3beta" => Box::new(rp3beta::Rp3betaModel::from_artifact(artifact)?),
        "als" => Box::new(als::AlsModel::from_artifact(artifact)?),
        "ease" => Box::new(ease::EaseModel::from_artifact(artifact)?),
        "infinite_ae" => Box::new(infinite_ae::InfiniteAeModel::from_artifact(artifact)?),
        "blend" => Box::new(blend::BlendModel::from_artifact(artifact, &model_from_artifact)?),
        "social" => Box::new(social::SocialModel::from_artifact(artifact, &model_from_artifact)?),
        other => return Err(super::artifact::corrupt_artifact(format!("unknown model {other:?} in artifact"))),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::recommend::als::tests::synthetic;

    fn small_params(name: &str) -> Value {
        match name {
            "als" => json!({ "factors": 4, "iterations": 3 }),
            "itemknn" => json!({ "neighbours": 5, "shrink": 1.0, "binary": false }),
            "ease" => json!({ "lambda": 5.0, "dropout": 0.1 }),
            "infinite_ae" => json!({ "lambda": 0.5, "depth": 2 }),
            "social" => json!({ "base": "als", "base_params": { "factors": 4, "iterations": 3 } }),
            "blend" => json!({ "parts": [
                { "model": "ease", "params": { "lambda": 5.0, "dlae": true, "dropout": 0.2 }, "weight": 0.6 },
                { "model": "als", "params": { "factors": 4, "iterations": 3 }, "weight": 0.4 },
            ] }),
            _ => json!(null),
        }
    }

    fn all_scores(model: &dyn Recommender, data: &Interactions) -> Vec<Vec<f32>> {
        let mut out = Vec::new();
        for u in 0..data.n_users() {
            let history = data.history(u);
            for user in [Some(u as u32), None] {
                let mut scores = vec![0.0; data.n_items()];
                model.score(user, &history, &mut scores);
                out.push(scores);
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        #[test]
        fn save_then_load_gives_identical_scores(seed in 0u64..1000, users in 4usize..30, items in 4usize..30) {
            let data = synthetic(users, items, 5, seed);
            for name in MODELS {
                let model = train_model(name, &small_params(name), &data).unwrap();
                let mut bytes = Vec::new();
                save_model(model.as_ref(), &mut bytes).unwrap();
                let loaded = load_model(&mut bytes.as_slice()).unwrap();
                prop_assert_eq!(loaded.name(), *name);
                prop_assert_eq!(all_scores(model.as_ref(), &data), all_scores(loaded.as_ref(), &data));
            }
        }
    }

    #[test]
    fn every_model_has_a_grid_and_trains_with_defaults() {
        let data = synthetic(20, 16, 4, 9);
        for name in MODELS {
            let grid = default_grid(name);
            assert!(!grid.is_empty(), "{name}");
            for params in grid.iter().take(2) {
                train_model(name, params, &data).unwrap();
            }
            let model = train_model(name, &Value::Null, &data).unwrap();
            assert_eq!(model.name(), *name);
        }
    }

    #[test]
    fn unknown_models_and_fields_are_refused() {
        let data = synthetic(4, 4, 2, 1);
        match train_model("svd", &json!({}), &data) {
            Err(Error::Invalid(v)) => assert_eq!(v.field, "models"),
            other => panic!("expected an invalid-model error, got {:?}", other.map(|m| m.name().to_string())),
        }
        let err = train_model("als", &json!({ "factor": 8 }), &data).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("factor")));
        assert!(train_model("ease", &json!([1, 2]), &data).is_err());
    }

    #[test]
    fn damaged_artifacts_are_errors() {
        let data = synthetic(6, 6, 3, 2);
        let model = train_model("itemknn", &Value::Null, &data).unwrap();
        let mut bytes = Vec::new();
        save_model(model.as_ref(), &mut bytes).unwrap();
        bytes[0] = b'X';
        assert!(load_model(&mut bytes.as_slice()).is_err());
    }
}
