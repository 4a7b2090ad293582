//! How recommendations are trained and served: the `[recommend]` configuration.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, ValidationError};
use crate::recommend::als::AlsParams;
use crate::recommend::blend::BlendParams;
use crate::recommend::demographic::DemographicParams;
use crate::recommend::ease::EaseParams;
use crate::recommend::graph::GraphParams;
use crate::recommend::infinite_ae::InfiniteAeParams;
use crate::recommend::itemknn::ItemKnnParams;
use crate::recommend::popularity::PopularityParams;
use crate::recommend::rp3beta::Rp3betaParams;
use crate::recommend::social::SocialParams;
use crate::recommend::{registry, Interactions, SourceKind};

/// How recommendations are trained and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecommendConfig {
    /// Collaborative models trained by `souk train` and used as recall sources (`als`,
    /// `ease`, `infinite_ae`, `rp3beta`, `blend`, `social`).
    pub models: Vec<String>,
    /// Train the `social` model too when the shop has social edges (and `models` does not
    /// name it already). Off by default: with its default weights it measured 2.6% below
    /// ALS alone on HetRec LastFM (BENCHMARKS.md), so a shop turns it on after measuring.
    pub social_with_edges: bool,
    /// Weight of each source in the fusion, by source name (`itemknn`, `popularity` and
    /// the model names).
    pub source_weights: BTreeMap<SourceKind, f64>,
    /// How many of a user's latest interactions make up their history.
    pub history_limit: usize,
    /// Items of history at which the sources that read it (the collaborative models,
    /// item-kNN, content, graph) reach their full fusion weight; below it they weigh
    /// `items / history_ramp` of it, so a shopper's first items do not push aside what the
    /// shop knows of everyone (popularity, the demographic prior, stated preferences).
    /// 0: full weight from the first item. The default, 10, was chosen on held-out
    /// shoppers (`souk eval --protocol new-user`, MovieLens-100K and a generated shop).
    pub history_ramp: usize,
    /// Candidates taken from each source before fusion.
    pub candidates_per_source: usize,
    /// Retrain in the background every this many seconds when new events arrived (0: only
    /// `souk train`).
    pub retrain_seconds: u64,
    pub als: AlsParams,
    pub ease: EaseParams,
    pub infinite_ae: InfiniteAeParams,
    pub blend: BlendParams,
    pub social: SocialParams,
    pub itemknn: ItemKnnParams,
    pub rp3beta: Rp3betaParams,
    pub popularity: PopularityParams,
    /// The prior for shoppers with little history, from shoppers sharing their attributes.
    pub demographic: DemographicParams,
    /// The item graph from the catalog's facts (the `graph` source).
    pub graph: GraphParams,
}

impl Default for RecommendConfig {
    fn default() -> Self {
        Self {
            models: vec!["als".into()],
            social_with_edges: false,
            source_weights: [
                (SourceKind::Als, 1.0),
                (SourceKind::Ease, 1.0),
                (SourceKind::InfiniteAe, 1.0),
                (SourceKind::Blend, 1.0),
                (SourceKind::Rp3beta, 1.0),
                (SourceKind::Social, 1.0),
                // Off until measured on a shop's own traffic: at 1.0 it fused friends' items
                // as strongly as ALS and cut the blend's NDCG@10 in the simulated-ranking
                // test shop (`eval::simulate`) from 0.458 to 0.353.
                (SourceKind::Friends, 0.0),
                (SourceKind::Itemknn, 0.8),
                (SourceKind::Session, 1.5),
                (SourceKind::Content, 0.5),
                // Off until measured on a shop's traffic: on MovieLens-100K it adds nothing
                // to the warm blend and trails content similarity on new items
                // (BENCHMARKS.md), at ~0.1 ms a page. Trained with every generation.
                (SourceKind::Graph, 0.0),
                (SourceKind::Popularity, 0.2),
                // Shoppers with under `NEW_SHOPPER_ITEMS` items only (see `recall`).
                (SourceKind::Demographic, 0.6),
                (SourceKind::Preferences, 0.6),
            ]
            .into_iter()
            .collect(),
            history_limit: 200,
            history_ramp: 10,
            candidates_per_source: 100,
            retrain_seconds: 0,
            als: AlsParams::default(),
            ease: EaseParams::default(),
            infinite_ae: InfiniteAeParams::default(),
            blend: BlendParams::default(),
            social: SocialParams::default(),
            itemknn: ItemKnnParams::default(),
            rp3beta: Rp3betaParams::default(),
            popularity: PopularityParams::default(),
            demographic: DemographicParams::default(),
            graph: GraphParams::default(),
        }
    }
}

impl RecommendConfig {
    /// The configured parameters of a model, as the registry takes them.
    pub fn params_for(&self, name: &str) -> Result<serde_json::Value> {
        let value = match name {
            "als" => serde_json::to_value(&self.als),
            "ease" => serde_json::to_value(&self.ease),
            "infinite_ae" => serde_json::to_value(&self.infinite_ae),
            "blend" => serde_json::to_value(&self.blend),
            "social" => serde_json::to_value(&self.social),
            "itemknn" => serde_json::to_value(&self.itemknn),
            "rp3beta" => serde_json::to_value(&self.rp3beta),
            "popularity" => serde_json::to_value(&self.popularity),
            other => {
                return Err(ValidationError::new(
                    "unknown_model",
                    "models",
                    format!("unknown model {other:?}; expected one of: {}", registry::MODELS.join(", ")),
                )
                .into())
            }
        };
        value.map_err(|e| Error::Internal(format!("encoding parameters: {e}")))
    }

    /// The collaborative models a training on `data` trains: the configured ones, and the
    /// social model when `data` has social edges (and `social_with_edges`).
    pub fn models_for(&self, data: &Interactions) -> Vec<String> {
        let mut names = self.models.clone();
        if self.social_with_edges && !data.social.is_empty() && !names.iter().any(|m| m == "social") {
            names.push("social".into());
        }
        names
    }

    /// Problems with this configuration, each with the offending key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for model in &self.models {
            if !registry::MODELS.contains(&model.as_str()) || model == "itemknn" || model == "popularity" {
                problems.push((
                    "recommend.models".into(),
                    format!("expected collaborative models among als, ease, infinite_ae, rp3beta, blend, social, found {model:?} (itemknn and popularity are always on)"),
                ));
            }
        }
        for (source, weight) in &self.source_weights {
            if !weight.is_finite() || *weight < 0.0 {
                problems.push((
                    format!("recommend.source_weights.{source}"),
                    format!("expected a non-negative number, found {weight}"),
                ));
            }
        }
        if let Err(e) = self.demographic.validate() {
            problems.push((format!("recommend.demographic.{}", e.field), e.message.clone()));
        }
        if let Err(e) = self.graph.validate() {
            problems.push(("recommend.graph".into(), e.to_string()));
        }
        if let Err(e) = self.social.validate(registry::MODELS) {
            problems.push(("recommend.social".into(), e.to_string()));
        }
        if !(1..=100_000).contains(&self.history_limit) {
            problems
                .push(("recommend.history_limit".into(), format!("expected 1..=100000, found {}", self.history_limit)));
        }
        if !(10..=100_000).contains(&self.candidates_per_source) {
            problems.push((
                "recommend.candidates_per_source".into(),
                format!("expected 10..=100000, found {}", self.candidates_per_source),
            ));
        }
        problems
    }
}
