//! Serving recommendations: a trained [`ModelSet`] plus the live store answer "for you",
//! "similar items" and "trending", with reasons.
//!
//! Real time without retraining: every request reads the user's latest interactions from
//! the store's memory and scores from that history (collaborative models fold it in), so
//! an event ingested a moment ago changes the next answer. Heavy models are retrained in
//! the background and swapped in whole.
//!
//! Pipeline of `recommend`: history → each source's top candidates (collaborative models,
//! item-kNN on the recent history, popularity) → exclusions and filters → reciprocal-rank
//! fusion weighted per source → cursor (skip what earlier pages showed) → reasons.
//! Cost: one dense score vector per source (items × 4 bytes) and a partial sort.
//!
//! The top of the engine: it composes models (`recommend`), ranking (`rank`), rules
//! (`rank::rerank`) and search (`search_ranking`, the search page's ranking stage); only
//! `eval` sits above it.

pub mod page_log;
pub mod recall;
pub mod search_page;
pub mod search_ranking;
pub mod training;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, Write};
use std::sync::Arc;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, ValidationError};
use crate::fusion;
use crate::hashing::{DigestSet, IdMap};
use crate::ids::UserId;
use crate::input::Lang;
use crate::model::EventType;
use crate::rank::features::{FeatureBuilder, RecallSignals, FEATURE_COUNT};
use crate::rank::gbdt::{GbdtModel, GbdtParams};
use crate::rank::online::OnlineClickModel;
use crate::rank::profile::{ProfileConfig, ProfileInputs, UserProfile};
use crate::rank::ranker::{train_from_logs, FeatureContext, FeatureLog, Ranker, RankerReport, RANK_WINDOW};
use crate::rank::rerank::{rerank, Candidate, Effect, Pin, Promotion, Rules};
use crate::recommend::als::{AlsModel, AlsParams};
use crate::recommend::artifact::Artifact;
use crate::recommend::blend::BlendParams;
use crate::recommend::ease::EaseParams;
use crate::recommend::infinite_ae::InfiniteAeParams;
use crate::recommend::itemknn::{self, ItemKnnModel, ItemKnnParams};
use crate::recommend::ivf::{IvfIndex, TopK};
use crate::recommend::popularity::PopularityParams;
use crate::recommend::rp3beta::Rp3betaParams;
use crate::recommend::{registry, EventWeights, Interactions, Recommender};
use crate::store::artifacts::ArtifactStore;
use crate::store::{ItemMeta, Storage};
use recall::Recall;

/// Version of the model-set manifest.
pub const MODEL_SET_FORMAT_VERSION: u32 = 1;

/// How recommendations are trained and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecommendConfig {
    /// Collaborative models trained by `souk train` and used as recall sources (`als`,
    /// `ease`, `infinite_ae`, `rp3beta`, `blend`).
    pub models: Vec<String>,
    /// Weight of each source in the fusion, by source name (`itemknn`, `popularity` and
    /// the model names).
    pub source_weights: BTreeMap<String, f64>,
    /// How many of a user's latest interactions make up their history.
    pub history_limit: usize,
    /// Candidates taken from each source before fusion.
    pub candidates_per_source: usize,
    /// Retrain in the background every this many seconds when new events arrived (0: only
    /// `souk train`).
    pub retrain_seconds: u64,
    pub als: AlsParams,
    pub ease: EaseParams,
    pub infinite_ae: InfiniteAeParams,
    pub blend: BlendParams,
    pub itemknn: ItemKnnParams,
    pub rp3beta: Rp3betaParams,
    pub popularity: PopularityParams,
}

impl Default for RecommendConfig {
    fn default() -> Self {
        Self {
            models: vec!["als".into()],
            source_weights: [
                ("als", 1.0),
                ("ease", 1.0),
                ("infinite_ae", 1.0),
                ("blend", 1.0),
                ("rp3beta", 1.0),
                ("itemknn", 0.8),
                ("popularity", 0.2),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            history_limit: 200,
            candidates_per_source: 100,
            retrain_seconds: 0,
            als: AlsParams::default(),
            ease: EaseParams::default(),
            infinite_ae: InfiniteAeParams::default(),
            blend: BlendParams::default(),
            itemknn: ItemKnnParams::default(),
            rp3beta: Rp3betaParams::default(),
            popularity: PopularityParams::default(),
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

    /// Problems with this configuration, each with the offending key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for model in &self.models {
            if !registry::MODELS.contains(&model.as_str()) || model == "itemknn" || model == "popularity" {
                problems.push((
                    "recommend.models".into(),
                    format!("expected collaborative models among als, ease, infinite_ae, rp3beta, blend, found {model:?} (itemknn and popularity are always on)"),
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

/// What the model set was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSetManifest {
    pub format_version: u32,
    pub trained_at_ms: i64,
    pub events: u64,
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    pub models: Vec<String>,
    pub train_seconds: BTreeMap<String, f64>,
    pub weights: EventWeights,
}

/// Everything serving needs from training, swapped as one value.
pub struct ModelSet {
    pub manifest: ModelSetManifest,
    pub item_ids: Vec<String>,
    /// `xxh3_64` of each item id, by item index: exclusion and cursor checks compare
    /// digests without reading the id strings (scattered reads that were most of the
    /// candidate search's time).
    pub item_digests: Vec<u64>,
    pub item_index: IdMap<String, u32>,
    pub user_index: IdMap<String, u32>,
    /// Collaborative sources, by name.
    pub models: Vec<(String, Source)>,
    pub knn: ItemKnnModel,
    /// Users per item in training (popularity, and the cold-start fallback).
    pub popularity: Vec<f32>,
    /// Items by descending popularity.
    pub popularity_order: Vec<u32>,
    /// The learned ranker, once one has passed the promotion gate.
    pub ranker: Option<Arc<Ranker>>,
    /// The search page's learned ranker (trained from search pages' logs), likewise.
    pub search_ranker: Option<Arc<Ranker>>,
    /// What feature rows are computed from (after a ranker training ran, even one that
    /// found too little traffic): rows are then logged for the next training.
    pub features: Option<Arc<FeatureContext>>,
}

/// A collaborative source as served.
pub enum Source {
    /// Factor model: candidates come from an inverted-file index over the item factors.
    Als { model: Box<AlsModel>, index: IvfIndex },
    /// Any other model: scores every item.
    Dense(Box<dyn Recommender>),
}

impl Source {
    /// Serve a factor model through an inverted-file index over its item factors.
    pub fn als(model: AlsModel) -> Source {
        let index =
            IvfIndex::build(&model.item_factors, model.params.factors, IvfIndex::clusters_for(model.n_items), 42);
        Source::Als { model: Box::new(model), index }
    }

    fn as_recommender(&self) -> &dyn Recommender {
        match self {
            Source::Als { model, .. } => model.as_ref(),
            Source::Dense(model) => model.as_ref(),
        }
    }
}

/// Items by descending score (ties by item number).
fn order_by(scores: &[f32]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..scores.len() as u32).collect();
    order.sort_unstable_by(|a, b| scores[*b as usize].total_cmp(&scores[*a as usize]).then(a.cmp(b)));
    order
}

fn index_of(ids: &[String]) -> IdMap<String, u32> {
    ids.iter().enumerate().map(|(i, id)| (id.clone(), i as u32)).collect()
}

impl ModelSet {
    /// Train every configured source on the store's current interactions.
    pub fn train(store: &dyn Storage, config: &RecommendConfig, weights: &EventWeights) -> Result<ModelSet> {
        let started = std::time::Instant::now();
        let events = store.stats()?.events;
        let data = Interactions::from_store(store, weights)?;
        if data.nnz() == 0 {
            return Err(Error::Conflict("no interactions to train on: import or ingest events first".into()));
        }
        let mut train_seconds = BTreeMap::new();
        let mut models = Vec::new();
        for name in &config.models {
            let t = std::time::Instant::now();
            let source = if name == "als" {
                Source::als(crate::recommend::als::train(&data, &config.als)?)
            } else {
                Source::Dense(registry::train_model(name, &config.params_for(name)?, &data)?)
            };
            train_seconds.insert(name.clone(), t.elapsed().as_secs_f64());
            models.push((name.clone(), source));
        }
        let t = std::time::Instant::now();
        let knn = itemknn::train(&data, &config.itemknn)?;
        train_seconds.insert("itemknn".into(), t.elapsed().as_secs_f64());
        let mut popularity = vec![0f32; data.n_items()];
        for &i in &data.indices {
            popularity[i as usize] += 1.0;
        }
        tracing::info!(
            users = data.n_users(),
            items = data.n_items(),
            interactions = data.nnz(),
            seconds = started.elapsed().as_secs_f64(),
            "trained model set"
        );
        Ok(ModelSet {
            manifest: ModelSetManifest {
                format_version: MODEL_SET_FORMAT_VERSION,
                trained_at_ms: chrono::Utc::now().timestamp_millis(),
                events,
                users: data.n_users(),
                items: data.n_items(),
                interactions: data.nnz(),
                models: config.models.clone(),
                train_seconds,
                weights: weights.clone(),
            },
            item_index: index_of(&data.item_ids),
            user_index: index_of(&data.user_ids),
            item_digests: digests_of(&data.item_ids),
            item_ids: data.item_ids,
            models,
            knn,
            popularity_order: order_by(&popularity),
            popularity,
            ranker: None,
            search_ranker: None,
            features: None,
        })
    }

    /// Write the set as a new artifact generation and make it live.
    pub fn save(&self, artifacts: &ArtifactStore) -> Result<String> {
        let mut generation = artifacts.begin()?;
        let json = |e: serde_json::Error| Error::Internal(format!("encoding the manifest: {e}"));
        serde_json::to_writer_pretty(generation.create("manifest.json")?, &self.manifest).map_err(json)?;
        for (file, ids) in [("items.txt", &self.item_ids), ("users.txt", &self.user_ids_sorted())] {
            let mut writer = generation.create(file)?;
            for id in ids.iter() {
                writeln!(writer, "{id}")?;
            }
            writer.flush()?;
        }
        for (name, model) in &self.models {
            let mut writer = generation.create(&format!("{name}.model"))?;
            registry::save_model(model.as_recommender(), &mut writer)?;
            writer.flush()?;
        }
        let mut writer = generation.create("itemknn.model")?;
        registry::save_model(&self.knn, &mut writer)?;
        writer.flush()?;
        let mut writer = generation.create("popularity.f32")?;
        for p in &self.popularity {
            writer.write_all(&p.to_le_bytes())?;
        }
        writer.flush()?;
        for (ranker, model_file, report_file) in [
            (&self.ranker, RANKER_MODEL, RANKER_REPORT),
            (&self.search_ranker, SEARCH_RANKER_MODEL, SEARCH_RANKER_REPORT),
        ] {
            let Some(ranker) = ranker else { continue };
            let mut writer = generation.create(model_file)?;
            ranker.model.save(&mut writer)?;
            writer.flush()?;
            let mut writer = generation.create(report_file)?;
            serde_json::to_writer_pretty(&mut writer, &ranker.report).map_err(json)?;
            writer.flush()?;
        }
        if let Some(context) = &self.features {
            let mut writer = generation.create(FEATURE_CONTEXT)?;
            serde_json::to_writer(&mut writer, context.as_ref()).map_err(json)?;
            writer.flush()?;
        }
        Ok(generation.commit()?.name)
    }

    /// Train a ranker from the logs and keep it if it passes the promotion gate; otherwise
    /// keep `previous` (the ranker serving until now). Returns the new ranker's report, or
    /// `None` when the logs hold too little traffic to train on.
    pub fn train_ranker(
        &mut self,
        store: &dyn Storage,
        log: &FeatureLog,
        params: &GbdtParams,
        previous: Option<Arc<Ranker>>,
        now_ms: i64,
    ) -> Result<Option<RankerReport>> {
        self.features = Some(Arc::new(FeatureContext::from_store(store)?));
        let (ranker, report) = train_gated(store, log, params, previous, now_ms)?;
        self.ranker = ranker;
        Ok(report)
    }

    /// The same for the search page, from its own feature log (search pages' rows). Call
    /// after [`ModelSet::train_ranker`], which counts the feature context both share.
    pub fn train_search_ranker(
        &mut self,
        store: &dyn Storage,
        log: &FeatureLog,
        params: &GbdtParams,
        previous: Option<Arc<Ranker>>,
        now_ms: i64,
    ) -> Result<Option<RankerReport>> {
        if self.features.is_none() {
            self.features = Some(Arc::new(FeatureContext::from_store(store)?));
        }
        let (ranker, report) = train_gated(store, log, params, previous, now_ms)?;
        self.search_ranker = ranker;
        Ok(report)
    }

    fn user_ids_sorted(&self) -> Vec<String> {
        let mut users: Vec<(&String, &u32)> = self.user_index.iter().collect();
        users.sort_by_key(|(_, u)| **u);
        users.into_iter().map(|(id, _)| id.clone()).collect()
    }

    /// Load the live generation, if one was trained.
    pub fn load(artifacts: &ArtifactStore) -> Result<Option<ModelSet>> {
        let Some(generation) = artifacts.current()? else {
            return Ok(None);
        };
        let corrupt = |message: String| Error::Corrupt { path: format!("models/{}", generation.name).into(), message };
        let manifest: ModelSetManifest = serde_json::from_reader(generation.open("manifest.json")?)
            .map_err(|e| corrupt(format!("manifest.json: {e}")))?;
        if manifest.format_version != MODEL_SET_FORMAT_VERSION {
            return Err(Error::FormatVersion {
                path: format!("models/{}/manifest.json", generation.name).into(),
                found: manifest.format_version,
                expected: MODEL_SET_FORMAT_VERSION,
            });
        }
        let read_ids = |file: &str| -> Result<Vec<String>> {
            generation.open(file)?.lines().collect::<std::io::Result<Vec<_>>>().map_err(Error::from)
        };
        let item_ids = read_ids("items.txt")?;
        let user_ids = read_ids("users.txt")?;
        let mut models = Vec::new();
        for name in &manifest.models {
            let file = format!("{name}.model");
            let source = if name == "als" {
                Source::als(AlsModel::from_artifact(Artifact::read_from(&mut generation.open(&file)?)?)?)
            } else {
                Source::Dense(registry::load_model(&mut generation.open(&file)?)?)
            };
            models.push((name.clone(), source));
        }
        let knn = ItemKnnModel::from_artifact(crate::recommend::artifact::Artifact::read_from(
            &mut generation.open("itemknn.model")?,
        )?)?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut generation.open("popularity.f32")?, &mut bytes)?;
        let popularity: Vec<f32> =
            bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if popularity.len() != item_ids.len() || item_ids.len() != manifest.items {
            return Err(corrupt(format!(
                "{} items in items.txt, {} popularity values, {} in the manifest",
                item_ids.len(),
                popularity.len(),
                manifest.items
            )));
        }
        let load_ranker = |model_file: &str, report_file: &str| -> Result<Option<Arc<Ranker>>> {
            if !generation.exists(model_file) {
                return Ok(None);
            }
            let model = GbdtModel::load(&mut generation.open(model_file)?)?;
            let report: RankerReport = serde_json::from_reader(generation.open(report_file)?)
                .map_err(|e| corrupt(format!("{report_file}: {e}")))?;
            Ok(Some(Arc::new(Ranker { model, report })))
        };
        let ranker = load_ranker(RANKER_MODEL, RANKER_REPORT)?;
        let search_ranker = load_ranker(SEARCH_RANKER_MODEL, SEARCH_RANKER_REPORT)?;
        let features = if generation.exists(FEATURE_CONTEXT) {
            let context: FeatureContext = serde_json::from_reader(generation.open(FEATURE_CONTEXT)?)
                .map_err(|e| corrupt(format!("{FEATURE_CONTEXT}: {e}")))?;
            Some(Arc::new(context))
        } else {
            None
        };
        Ok(Some(ModelSet {
            item_index: index_of(&item_ids),
            user_index: index_of(&user_ids),
            item_digests: digests_of(&item_ids),
            item_ids,
            manifest,
            models,
            knn,
            popularity_order: order_by(&popularity),
            popularity,
            ranker,
            search_ranker,
            features,
        }))
    }
}

/// The surface name recommendation pages give the online click model.
pub const SURFACE_RECOMMENDATIONS: &str = "recs";

/// Train a ranker from `log`; the one to serve is the new one if it passed the promotion
/// gate, else `previous`. Also returns the new one's report (`None`: too little traffic).
fn train_gated(
    store: &dyn Storage,
    log: &FeatureLog,
    params: &GbdtParams,
    previous: Option<Arc<Ranker>>,
    now_ms: i64,
) -> Result<(Option<Arc<Ranker>>, Option<RankerReport>)> {
    let trained = train_from_logs(store, log, params, previous.as_deref(), now_ms)?;
    let report = trained.as_ref().map(|r| r.report.clone());
    let serving = match trained {
        Some(ranker) if ranker.report.promoted => Some(Arc::new(ranker)),
        _ => previous,
    };
    Ok((serving, report))
}

const RANKER_MODEL: &str = "ranker.gbdt";
const RANKER_REPORT: &str = "ranker.json";
const SEARCH_RANKER_MODEL: &str = "search_ranker.gbdt";
const SEARCH_RANKER_REPORT: &str = "search_ranker.json";
const FEATURE_CONTEXT: &str = "features.json";

/// Which of a user's items never to recommend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusions {
    /// Every item the user interacted with (viewed, clicked, bought…).
    pub seen: bool,
    pub purchased: bool,
    pub disliked: bool,
}

impl Default for Exclusions {
    fn default() -> Self {
        Self { seen: true, purchased: true, disliked: true }
    }
}

/// Catalog filters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemFilter {
    /// Category path prefix, e.g. `["Electronics", "Audio"]`.
    pub category: Option<Vec<String>>,
    pub brand: Option<String>,
    pub min_price: Option<f64>,
    pub max_price: Option<f64>,
    /// Leave out items marked unavailable (default true).
    pub available_only: bool,
}

impl ItemFilter {
    /// Whether an item passes. An item without a catalog record (only known from events, or
    /// deleted) never does: only what the catalog holds is served.
    pub fn accepts(&self, meta: Option<&ItemMeta>) -> bool {
        let Some(meta) = meta else {
            return false;
        };
        if self.available_only && !meta.available {
            return false;
        }
        if let Some(category) = &self.category {
            let levels: Vec<&str> = category.iter().map(String::as_str).collect();
            if !meta.in_category(&levels) {
                return false;
            }
        }
        if let Some(brand) = &self.brand {
            if !meta.brand.as_deref().is_some_and(|b| b.eq_ignore_ascii_case(brand.trim())) {
                return false;
            }
        }
        let price = meta.price.map(f64::from);
        if self.min_price.is_some_and(|min| price.is_none_or(|p| p < min)) {
            return false;
        }
        if self.max_price.is_some_and(|max| price.is_none_or(|p| p > max)) {
            return false;
        }
        true
    }
}

/// Why an item was recommended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// The source that proposed it: a model name, `itemknn`, `popularity` or `trending`.
    pub source: String,
    /// Its rank in that source (1-based).
    pub rank: usize,
    /// The source's own score.
    pub score: f32,
    /// "Because you …": the item of the user's history it is most similar to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because: Option<String>,
    /// What the user did with `because` (view, purchase…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because_event: Option<EventType>,
    /// The title of `because` (filled by [`describe`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub because_title: Option<String>,
}

/// One recommended item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Recommended {
    pub id: String,
    /// What a page shows of the item (filled by [`describe`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    /// Fused score (weighted reciprocal rank), after boosts.
    pub score: f64,
    pub reasons: Vec<Reason>,
    /// What re-ranking rules did to the item (boost, pin, diversity…); empty when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<Effect>,
    /// The learned ranker's view, when one ranked the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranker: Option<RankerScore>,
}

/// How the learned ranker placed an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankerScore {
    pub score: f64,
    /// The item's rank and score in the hand blend the ranker reordered.
    pub blend_rank: usize,
    pub blend_score: f64,
    /// The features that moved the score most (with `explain`), largest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contributions: Vec<(String, f64)>,
}

/// A request for a user's recommendations.
#[derive(Debug, Clone, Default)]
pub struct RecommendRequest {
    pub user: String,
    pub n: usize,
    pub cursor: Option<Cursor>,
    pub filter: ItemFilter,
    pub exclude: Exclusions,
    /// Re-ranking rules (the configured ones merged with the request's), already validated.
    pub rules: Rules,
    /// Order the blend's best candidates with the set's learned ranker (when it has one).
    pub use_ranker: bool,
    /// Compute the feature rows of the returned items (for the feature log) even without
    /// a ranker, when the set has a feature context.
    pub log_features: bool,
    /// Return the ranker's top feature contributions per item.
    pub explain: bool,
    /// The time affinities decay to (Unix ms); 0: the user's newest interaction.
    pub now_ms: i64,
    /// The online click model, whose prediction is the `online_ctr` feature.
    pub online: Option<Arc<OnlineClickModel>>,
}

/// Candidates the re-ranking rules see, at least (more when a page is larger).
pub const RERANK_WINDOW: usize = 200;

/// Rules as they apply to a page that starts after `offset` items were shown: pins and
/// promotion slots are positions in the whole list, so a later page sees them shifted,
/// and those already passed are dropped.
fn rules_for_page(rules: &Rules, offset: usize) -> Rules {
    let mut page = rules.clone();
    page.pin = rules
        .pin
        .iter()
        .filter(|p| p.position > offset)
        .map(|p| Pin { item: p.item.clone(), position: p.position - offset })
        .collect();
    page.promotions = rules
        .promotions
        .iter()
        .filter_map(|promotion| {
            let positions: Vec<usize> =
                promotion.positions.iter().filter(|p| **p > offset).map(|p| p - offset).collect();
            (!positions.is_empty()).then(|| Promotion { positions, when: promotion.when.clone() })
        })
        .collect();
    page
}

/// A page of recommendations.
#[derive(Debug, Clone)]
pub struct RecommendPage {
    pub items: Vec<Recommended>,
    pub next_cursor: Option<Cursor>,
    /// The history the answer was computed from (most recent first), for explanations.
    pub history_size: usize,
    /// The ranker's feature row of each returned item, for the feature log (empty without
    /// a ranker).
    pub features: Vec<(String, Vec<f32>)>,
}

/// Pagination state carried by the client: digests of every item already shown, so no
/// later page repeats one even if the ranking moved in between (events arrive, models
/// swap). Stateless on the server; grows by 4 bytes per shown item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    shown: Vec<u32>,
}

const CURSOR_VERSION: u8 = 1;
/// Most items a cursor may carry (then the client starts over).
pub const MAX_CURSOR_ITEMS: usize = 5_000;

fn item_digest(id: &str) -> u32 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes()) as u32
}

fn digests_of(ids: &[String]) -> Vec<u64> {
    ids.iter().map(|id| xxhash_rust::xxh3::xxh3_64(id.as_bytes())).collect()
}

impl Cursor {
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(1 + 4 * self.shown.len());
        bytes.push(CURSOR_VERSION);
        for d in &self.shown {
            bytes.extend_from_slice(&d.to_le_bytes());
        }
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn decode(text: &str) -> Result<Cursor, ValidationError> {
        let invalid =
            || ValidationError::new("invalid_cursor", "cursor", "expected a cursor returned by an earlier page");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| invalid())?;
        let (&version, rest) = bytes.split_first().ok_or_else(invalid)?;
        if version != CURSOR_VERSION || rest.len() % 4 != 0 || rest.len() / 4 > MAX_CURSOR_ITEMS {
            return Err(invalid());
        }
        Ok(Cursor { shown: rest.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect() })
    }

    pub fn contains(&self, id: &str) -> bool {
        self.shown.contains(&item_digest(id))
    }
}

/// Whether an interaction of this type puts its item on the exclusion list.
fn excludes(exclude: Exclusions, event_type: EventType) -> bool {
    match event_type {
        EventType::Purchase => exclude.purchased || exclude.seen,
        EventType::Dislike => exclude.disliked || exclude.seen,
        EventType::Search | EventType::Impression => false,
        _ => exclude.seen,
    }
}

/// The user's history in the model's item space, newest first, with the exclusion set.
pub struct History {
    /// (model item, summed weight), positive sums only.
    pub pairs: Vec<(u32, f32)>,
    /// Most recent event per model item (for "because you …").
    pub last_event: HashMap<u32, EventType>,
    /// Recency order of model items (newest first).
    pub recent: Vec<u32>,
    /// Digests of the ids of items the request excludes.
    pub excluded: DigestSet<u64>,
}

fn user_history(set: &ModelSet, store: &dyn Storage, user: &str, limit: usize, exclude: Exclusions) -> Result<History> {
    let user_id = UserId::parse(user, "user")?;
    let weights = &set.manifest.weights;
    let mut sums: HashMap<u32, f32> = HashMap::new();
    let mut last_event = HashMap::new();
    let mut recent = Vec::new();
    let mut excluded = DigestSet::default();
    for interaction in store.user_interactions(&user_id, limit)? {
        let digest = xxhash_rust::xxh3::xxh3_64(interaction.item.as_bytes());
        if excludes(exclude, interaction.event_type) {
            excluded.insert(digest);
        }
        let Some(&i) = set.item_index.get(&interaction.item) else {
            continue;
        };
        let w = weights.weight_of(interaction.event_type, interaction.value, interaction.dwell_ms);
        *sums.entry(i).or_default() += w;
        if let std::collections::hash_map::Entry::Vacant(e) = last_event.entry(i) {
            e.insert(interaction.event_type);
            recent.push(i);
        }
    }
    let mut pairs: Vec<(u32, f32)> = sums.into_iter().filter(|(_, w)| *w > 0.0).collect();
    pairs.sort_unstable_by_key(|(i, _)| *i);
    recent.retain(|i| pairs.binary_search_by_key(i, |(j, _)| *j).is_ok());
    Ok(History { pairs, last_event, recent, excluded })
}

/// The user's preference vector: their live history folded into the first factor model of
/// the set (model name and factors), or `None` without such a model or history.
pub fn preference_vector(
    set: &ModelSet,
    store: &dyn Storage,
    user: &str,
    history_limit: usize,
) -> Result<Option<(String, Vec<f32>)>> {
    let history = user_history(set, store, user, history_limit, Exclusions::default())?;
    if history.pairs.is_empty() {
        return Ok(None);
    }
    Ok(set.models.iter().find_map(|(name, source)| match source {
        Source::Als { model, .. } => Some((name.clone(), model.fold_in(&history.pairs))),
        Source::Dense(_) => None,
    }))
}

/// The first factor model's score of each item for the user (their live history folded
/// in): the collaborative opinion of candidates another stage recalled. `None` for items
/// the model does not know, and for every item without a factor model or history.
pub fn factor_scores(
    set: &ModelSet,
    store: &dyn Storage,
    user: &str,
    history_limit: usize,
    items: &[&str],
) -> Result<Vec<Option<f32>>> {
    let Some(model) = first_factor_model(set) else {
        return Ok(vec![None; items.len()]);
    };
    let history = user_history(set, store, user, history_limit, Exclusions::default())?;
    if history.pairs.is_empty() {
        return Ok(vec![None; items.len()]);
    }
    Ok(scores_of_vector(set, model, &model.fold_in(&history.pairs), items))
}

/// The first factor model of the set, whose fold-in is the user's preference vector.
fn first_factor_model(set: &ModelSet) -> Option<&AlsModel> {
    set.models.iter().find_map(|(_, source)| match source {
        Source::Als { model, .. } => Some(model.as_ref()),
        Source::Dense(_) => None,
    })
}

/// Each item's factors against a folded-in user vector (`None` for unknown items).
fn scores_of_vector(set: &ModelSet, model: &AlsModel, user_vector: &[f32], items: &[&str]) -> Vec<Option<f32>> {
    let f = model.params.factors;
    items
        .iter()
        .map(|id| {
            let &i = set.item_index.get(*id)?;
            let factors = model.item_factors.get(i as usize * f..(i as usize + 1) * f)?;
            Some(factors.iter().zip(user_vector).map(|(a, b)| a * b).sum())
        })
        .collect()
}

/// A re-ranking candidate from an item's catalog facts (tags and attributes are not among
/// the facts kept in memory, so conditions on them match nothing here).
pub fn candidate_of(id: String, score: f64, meta: Option<&ItemMeta>) -> Candidate {
    let mut candidate = Candidate::new(id, score);
    if let Some(meta) = meta {
        candidate.category = meta.category.iter().map(|c| c.to_string()).collect();
        candidate.brand = meta.brand.as_ref().map(|b| b.to_string());
        candidate.price = meta.price.map(f64::from);
        candidate.available = meta.available;
    }
    candidate
}

/// Items scored by a factor model are searched over this many items at least (the rest of
/// the catalog is pruned by the inverted-file index).
pub const ALS_PROBE_ITEMS: usize = 8_000;

/// Top `k` items of a dense score vector, skipping those `skip` rejects; best first.
/// One pass with an admission threshold: most items cost one comparison.
fn top_k(scores: &[f32], k: usize, mut skip: impl FnMut(u32) -> bool) -> Vec<(u32, f32)> {
    let mut top = TopK::new(k);
    for (i, &s) in scores.iter().enumerate() {
        if top.admits(s) && !skip(i as u32) {
            top.push(i as u32, s);
        }
    }
    top.into_sorted()
}

/// Answer a "for you" request: history → recall sources → fusion → the learned ranker
/// (and the feature rows of a logged page) → re-ranking rules → the page (reasons, cursor).
pub fn recommend(
    set: &ModelSet,
    store: &dyn Storage,
    config: &RecommendConfig,
    request: &RecommendRequest,
) -> Result<RecommendPage> {
    let history = user_history(set, store, &request.user, config.history_limit, request.exclude)?;
    let cursor = request.cursor.clone().unwrap_or_default();
    let shown: DigestSet<u32> = cursor.shown.iter().copied().collect();
    // Exclusions and earlier pages are checked first, without the store.
    // (`item_digest` is the low half of the id's xxh3_64.)
    let rejected = |i: u32| -> bool {
        let digest = set.item_digests[i as usize];
        history.excluded.contains(&digest) || shown.contains(&(digest as u32))
    };
    let recall = Recall {
        set,
        store,
        history: &history,
        filter: &request.filter,
        rejected: &rejected,
        want: config.candidates_per_source.max(request.n * 3),
    };
    let folds = recall::fold_ins(set, &history);
    let mut lists = Vec::new();
    for source in recall::recall_sources(set, &history, &folds) {
        lists.push((source.name().to_string(), source.recall(&recall)?));
    }
    let mut ranked = fuse(&lists, &config.source_weights);
    // The first factor model's fold-in is the ranker's factor-score feature.
    let folded = set.models.iter().zip(&folds).find_map(|((_, source), fold)| match (source, fold) {
        (Source::Als { model, .. }, Some(vector)) => Some((model.as_ref(), vector.as_slice())),
        _ => None,
    });
    let Ranked { mut rows, scores: mut ranker_scores } = rank_stage(set, store, request, folded, &mut ranked)?;
    let mut effects = rules_stage(&recall, request, cursor.shown.len(), &mut ranked)?;

    let mut next = cursor.clone();
    let mut features = Vec::new();
    let items = ranked
        .into_iter()
        .map(|(i, score, mut reasons)| {
            explain_because(set, &history, i, &mut reasons);
            let id = set.item_ids[i as usize].clone();
            next.shown.push(item_digest(&id));
            if let Some(row) = rows.remove(&i) {
                features.push((id.clone(), row));
            }
            Recommended {
                id,
                score,
                reasons,
                effects: effects.remove(&i).unwrap_or_default(),
                ranker: ranker_scores.remove(&i),
                ..Recommended::default()
            }
        })
        .collect::<Vec<_>>();
    let next_cursor = (!items.is_empty() && next.shown.len() <= MAX_CURSOR_ITEMS).then_some(next);
    Ok(RecommendPage { items, next_cursor, history_size: history.pairs.len(), features })
}

/// A candidate on its way through the stages: model item, score, reasons.
type Scored = (u32, f64, Vec<Reason>);

/// Weighted reciprocal-rank fusion of the sources' lists (`fusion`), keeping each source's
/// reason; best first. A source weighted 0 takes no part.
fn fuse(lists: &[(String, Vec<(u32, f32)>)], weights: &BTreeMap<String, f64>) -> Vec<Scored> {
    let mut fused: HashMap<u32, (f64, Vec<Reason>)> = HashMap::new();
    for (name, list) in lists {
        let weight = weights.get(name).copied().unwrap_or(1.0);
        if weight == 0.0 {
            continue;
        }
        for (rank, (i, s)) in list.iter().enumerate() {
            let entry = fused.entry(*i).or_insert_with(|| (0.0, Vec::new()));
            entry.0 += weight * fusion::reciprocal_rank(fusion::RRF_K, rank + 1);
            entry.1.push(Reason { source: name.clone(), rank: rank + 1, score: *s, ..Reason::default() });
        }
    }
    let mut ranked: Vec<Scored> = fused.into_iter().map(|(i, (s, r))| (i, s, r)).collect();
    ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
}

/// What the ranking stage leaves for the page: each candidate's feature row (logged or
/// ranked pages) and the ranker's view of each item.
#[derive(Default)]
struct Ranked {
    rows: HashMap<u32, Vec<f32>>,
    scores: HashMap<u32, RankerScore>,
}

/// The learned ranker reorders the blend's best candidates; a logged page (or a ranked
/// one) also gets each candidate's feature row.
fn rank_stage(
    set: &ModelSet,
    store: &dyn Storage,
    request: &RecommendRequest,
    folded: Option<(&AlsModel, &[f32])>,
    ranked: &mut Vec<Scored>,
) -> Result<Ranked> {
    let mut rows: HashMap<u32, Vec<f32>> = HashMap::new();
    let mut ranker_scores: HashMap<u32, RankerScore> = HashMap::new();
    let ranker = set.ranker.as_ref().filter(|_| request.use_ranker);
    let Some(context) = set.features.as_ref().filter(|_| ranker.is_some() || request.log_features) else {
        return Ok(Ranked::default());
    };
    ranked.truncate(RANK_WINDOW.max(request.n * 3));
    let ids: Vec<&str> = ranked.iter().map(|(i, _, _)| set.item_ids[*i as usize].as_str()).collect();
    let metas = store.items_meta(&ids)?;
    let factors = match folded {
        Some((model, user_vector)) => scores_of_vector(set, model, user_vector, &ids),
        None => vec![None; ids.len()],
    };
    let user_id = UserId::parse(request.user.as_str(), "user")?;
    let interactions = store.user_interactions(&user_id, ProfileConfig::default().history_limit)?;
    let now = if request.now_ms > 0 { request.now_ms } else { interactions.first().map_or(0, |i| i.timestamp) };
    let item_ids: Vec<&str> = interactions.iter().map(|i| i.item.as_str()).collect();
    let history_metas = store.items_meta(&item_ids)?;
    let profile = UserProfile::build(&ProfileInputs {
        user: &request.user,
        interactions: &interactions,
        metas: &history_metas,
        items: &HashMap::new(),
        prices: &context.prices,
        weights: &set.manifest.weights,
        config: &ProfileConfig::default(),
        now,
    });
    let builder = FeatureBuilder {
        prices: &context.prices,
        stats: &context.stats,
        online: request.online.as_deref().map(|o| (o, SURFACE_RECOMMENDATIONS)),
    };
    for (position, ((i, score, reasons), meta)) in ranked.iter_mut().zip(&metas).enumerate() {
        let mut signals = RecallSignals::from_reasons(
            position as u32 + 1,
            *score,
            reasons.iter().map(|r| (r.source.as_str(), r.rank, r.score)),
        );
        signals.factor_score = factors[position];
        let mut row = vec![0f32; FEATURE_COUNT];
        builder.row(&profile, &set.item_ids[*i as usize], meta.as_ref(), &signals, now, &mut row);
        if let Some(ranker) = ranker {
            let predicted = ranker.model.predict(&row);
            let contributions = if request.explain { ranker.top_contributions(&row, 5) } else { Vec::new() };
            let blend_rank = position + 1;
            ranker_scores.insert(*i, RankerScore { score: predicted, blend_rank, blend_score: *score, contributions });
            *score = predicted;
        }
        rows.insert(*i, row);
    }
    if ranker.is_some() {
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    }
    Ok(Ranked { rows, scores: ranker_scores })
}

/// The re-ranking rules arrange the page (the window above it, so that pins and diversity
/// have room); `offset` items were shown on earlier pages. A pinned item recall did not
/// propose joins when the models know it and it passes exclusions, cursor and filters.
/// Returns what the rules did to each item.
fn rules_stage(
    recall: &Recall<'_>,
    request: &RecommendRequest,
    offset: usize,
    ranked: &mut Vec<Scored>,
) -> Result<HashMap<u32, Vec<Effect>>> {
    let mut effects: HashMap<u32, Vec<Effect>> = HashMap::new();
    if request.rules.is_empty() {
        ranked.truncate(request.n);
        return Ok(effects);
    }
    let set = recall.set;
    let rules = rules_for_page(&request.rules, offset);
    ranked.truncate(RERANK_WINDOW.max(request.n * 3));
    for pin in &rules.pin {
        let Some(&i) = set.item_index.get(&pin.item) else { continue };
        if ranked.iter().any(|(j, _, _)| *j == i) || (recall.rejected)(i) {
            continue;
        }
        if recall::take_accepted(set, recall.store, &request.filter, [(i, 0.0)], 1)?.is_empty() {
            continue;
        }
        let floor = ranked.last().map_or(0.0, |r| r.1.min(0.0));
        ranked.push((i, floor, vec![Reason { source: "pin".into(), rank: pin.position, ..Reason::default() }]));
    }
    let ids: Vec<&str> = ranked.iter().map(|(i, _, _)| set.item_ids[*i as usize].as_str()).collect();
    let metas = recall.store.items_meta(&ids)?;
    let candidates: Vec<Candidate> = ranked
        .iter()
        .zip(metas)
        .map(|((i, score, _), meta)| candidate_of(set.item_ids[*i as usize].clone(), *score, meta.as_ref()))
        .collect();
    let mut by_id: HashMap<&str, (u32, Vec<Reason>)> =
        ranked.iter().map(|(i, _, reasons)| (set.item_ids[*i as usize].as_str(), (*i, reasons.clone()))).collect();
    let mut reordered = Vec::with_capacity(request.n);
    for out in rerank(&candidates, &rules, request.n) {
        if let Some((i, reasons)) = by_id.remove(out.id.as_str()) {
            effects.insert(i, out.effects);
            reordered.push((i, out.score, reasons));
        }
    }
    *ranked = reordered;
    Ok(effects)
}

/// "Because you …": the history item most similar to item `i` (by item-kNN) is cited by
/// every reason but popularity's.
fn explain_because(set: &ModelSet, history: &History, i: u32, reasons: &mut [Reason]) {
    let because = history
        .recent
        .iter()
        .map(|&j| (j, set.knn.similarity(j, i)))
        .filter(|(_, s)| *s > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((j, _)) = because {
        for reason in reasons.iter_mut().filter(|r| r.source != "popularity") {
            reason.because = Some(set.item_ids[j as usize].clone());
            reason.because_event = history.last_event.get(&j).copied();
        }
    }
}

/// Fill in what a page shows of each item (title — the Chinese one with `Lang::Zh` where the
/// catalog has it —, brand, category path, price) and the title of every item a reason
/// cites, with one lookup of the catalog facts in memory.
pub fn describe(store: &dyn Storage, items: &mut [Recommended], lang: Lang) -> Result<()> {
    let mut ids: Vec<String> = items.iter().map(|r| r.id.clone()).collect();
    ids.extend(items.iter().flat_map(|r| r.reasons.iter().filter_map(|x| x.because.clone())));
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let metas = store.items_meta(&refs)?;
    let by_id: HashMap<&str, &ItemMeta> =
        refs.iter().zip(&metas).filter_map(|(id, meta)| meta.as_ref().map(|m| (*id, m))).collect();
    let title = |meta: &ItemMeta| {
        let zh = if lang == Lang::Zh { meta.title_zh.as_deref() } else { None };
        zh.or(meta.title.as_deref()).map(str::to_string)
    };
    let titles: HashMap<&str, Option<String>> = by_id.iter().map(|(id, meta)| (*id, title(meta))).collect();
    for item in items.iter_mut() {
        if let Some(meta) = by_id.get(item.id.as_str()) {
            item.title = titles.get(item.id.as_str()).cloned().flatten();
            item.brand = meta.brand.as_deref().map(str::to_string);
            item.category = meta.category.iter().map(|c| c.to_string()).collect();
            // Prices are kept as f32 in memory: the shortest decimal that round-trips is
            // the catalog's own price (55.99, not 55.9900016784668).
            item.price = meta.price.map(|p| p.to_string().parse::<f64>().unwrap_or(f64::from(p)));
        }
        for reason in &mut item.reasons {
            reason.because_title = reason.because.as_deref().and_then(|b| titles.get(b).cloned().flatten());
        }
    }
    Ok(())
}

/// Search results' titles in the page's language: with `Lang::Zh`, the Chinese title where
/// the catalog has one (the index holds the catalog's own title).
pub fn describe_hits(store: &dyn Storage, hits: &mut [crate::search::Hit], lang: Lang) -> Result<()> {
    if lang != Lang::Zh {
        return Ok(());
    }
    let ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
    let metas = store.items_meta(&ids)?;
    for (hit, meta) in hits.iter_mut().zip(metas) {
        if let Some(zh) = meta.and_then(|m| m.title_zh) {
            hit.title = zh.to_string();
        }
    }
    Ok(())
}

/// Items similar to `item`, best first: its item-kNN neighbours, then — when those are
/// fewer than `n`, or the item has no interactions yet — catalog items that share its
/// category path (deepest first) or brand, by popularity. `None` when the catalog does not
/// hold the item (unknown or deleted).
pub fn similar(
    set: Option<&ModelSet>,
    store: &dyn Storage,
    item: &str,
    n: usize,
    filter: &ItemFilter,
) -> Result<Option<Vec<Recommended>>> {
    let Some(target) = store.items_meta(&[item])?.pop().flatten() else {
        return Ok(None);
    };
    let mut out: Vec<Recommended> = Vec::new();
    if let Some((set, &i)) = set.and_then(|set| set.item_index.get(item).map(|i| (set, i))) {
        let (neighbours, sims) = set.knn.neighbours_of(i);
        let ids: Vec<&str> = neighbours.iter().map(|j| set.item_ids[*j as usize].as_str()).collect();
        let metas = store.items_meta(&ids)?;
        out = neighbours
            .iter()
            .zip(sims)
            .zip(metas)
            .filter(|((j, _), meta)| **j != i && filter.accepts(meta.as_ref()))
            .map(|((j, s), _)| similar_item(set.item_ids[*j as usize].clone(), f64::from(*s), "itemknn", item))
            .collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        out.truncate(n);
    }
    if out.len() < n {
        let taken: HashSet<String> = out.iter().map(|r| r.id.clone()).collect();
        let mut alike: Vec<(u32, f32, String)> = Vec::new();
        store.scan_item_meta(&mut |id, meta| {
            let affinity = catalog_affinity(&target, meta);
            if affinity > 0 && id != item && !taken.contains(id) && filter.accepts(Some(meta)) {
                let popularity =
                    set.and_then(|set| set.item_index.get(id).map(|j| set.popularity[*j as usize])).unwrap_or(0.0);
                alike.push((affinity, popularity, id.to_string()));
            }
        })?;
        alike.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)).then_with(|| a.2.cmp(&b.2)));
        // Below every kNN neighbour, in the fallback's own order.
        let floor = out.last().map_or(0.0, |r| r.score.min(0.0));
        let room = n - out.len();
        for (k, (_, _, id)) in alike.into_iter().take(room).enumerate() {
            out.push(similar_item(id, floor - (k + 1) as f64 * 1e-6, "catalog", item));
        }
    }
    for (rank, r) in out.iter_mut().enumerate() {
        r.reasons[0].rank = rank + 1;
    }
    Ok(Some(out))
}

/// How much two items have in common in the catalog: two points per shared category level
/// (from the top), one for the same brand; 0 for nothing.
fn catalog_affinity(a: &ItemMeta, b: &ItemMeta) -> u32 {
    let levels = a.category.iter().zip(b.category.iter()).take_while(|(x, y)| x.eq_ignore_ascii_case(y)).count();
    let brand = match (&a.brand, &b.brand) {
        (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => 1,
        _ => 0,
    };
    2 * levels as u32 + brand
}

fn similar_item(id: String, score: f64, source: &str, because: &str) -> Recommended {
    Recommended {
        id,
        score,
        reasons: vec![Reason {
            source: source.into(),
            rank: 0,
            score: score as f32,
            because: Some(because.to_string()),
            because_event: None,
            because_title: None,
        }],
        effects: Vec::new(),
        ranker: None,
        ..Recommended::default()
    }
}

/// The shop's clock: the 99th percentile of the given timestamps (`None` without any).
fn shop_clock(stamps: &mut [i64]) -> Option<i64> {
    if stamps.is_empty() {
        return None;
    }
    let k = ((stamps.len() - 1) as f64 * 0.99).round() as usize;
    Some(*stamps.select_nth_unstable(k).1)
}

/// ln(e^a + e^b) without overflow or underflow.
fn ln_add_exp(a: f64, b: f64) -> f64 {
    let (high, low) = if a >= b { (a, b) } else { (b, a) };
    if low == f64::NEG_INFINITY {
        return high;
    }
    high + (low - high).exp().ln_1p()
}

/// How many recent interactions trending looks at.
pub const TRENDING_WINDOW_ROWS: usize = 200_000;

/// Recommendations before any model is trained: trending items, with the same exclusions,
/// filters and cursor as [`recommend`].
pub fn recommend_without_models(
    store: &dyn Storage,
    weights: &EventWeights,
    request: &RecommendRequest,
) -> Result<(Vec<Recommended>, Option<Cursor>)> {
    let user = UserId::parse(request.user.as_str(), "user")?;
    let mut excluded = DigestSet::default();
    for interaction in store.user_interactions(&user, 100_000)? {
        if excludes(request.exclude, interaction.event_type) {
            excluded.insert(xxhash_rust::xxh3::xxh3_64(interaction.item.as_bytes()));
        }
    }
    let cursor = request.cursor.clone().unwrap_or_default();
    // With rules, they arrange a wider window (as with models).
    let depth = if request.rules.is_empty() { request.n } else { RERANK_WINDOW.max(request.n * 3) };
    let wanted = depth + excluded.len() + cursor.shown.len();
    let allowed = |id: &str| !excluded.contains(&xxhash_rust::xxh3::xxh3_64(id.as_bytes())) && !cursor.contains(id);
    let mut items: Vec<Recommended> =
        trending(store, weights, 24.0 * 3.6e6, TRENDING_WINDOW_ROWS, wanted, &request.filter)?
            .into_iter()
            .filter(|r| allowed(&r.id))
            .take(depth)
            .collect();
    if !request.rules.is_empty() {
        let rules = rules_for_page(&request.rules, cursor.shown.len());
        // Pinned items join when the catalog has them and they pass the filters.
        let floor = items.last().map_or(0.0, |r| r.score.min(0.0));
        for pin in &rules.pin {
            if items.iter().any(|r| r.id == pin.item) || !allowed(&pin.item) {
                continue;
            }
            let meta = store.items_meta(&[pin.item.as_str()])?.pop().flatten();
            if meta.is_some() && request.filter.accepts(meta.as_ref()) {
                items.push(Recommended {
                    id: pin.item.clone(),
                    score: floor,
                    reasons: vec![Reason {
                        source: "pin".into(),
                        rank: pin.position,
                        score: 0.0,
                        because: None,
                        because_event: None,
                        because_title: None,
                    }],
                    effects: Vec::new(),
                    ranker: None,
                    ..Recommended::default()
                });
            }
        }
        let ids: Vec<&str> = items.iter().map(|r| r.id.as_str()).collect();
        let metas = store.items_meta(&ids)?;
        let candidates: Vec<Candidate> =
            items.iter().zip(&metas).map(|(r, meta)| candidate_of(r.id.clone(), r.score, meta.as_ref())).collect();
        let mut by_id: HashMap<String, Recommended> = items.drain(..).map(|r| (r.id.clone(), r)).collect();
        for out in rerank(&candidates, &rules, request.n) {
            if let Some(mut item) = by_id.remove(&out.id) {
                item.score = out.score;
                item.effects = out.effects;
                items.push(item);
            }
        }
    }
    items.truncate(request.n);
    let mut next = cursor;
    for (rank, item) in items.iter_mut().enumerate() {
        item.reasons[0].rank = rank + 1;
        next.shown.push(item_digest(&item.id));
    }
    let next_cursor = (!items.is_empty() && next.shown.len() <= MAX_CURSOR_ITEMS).then_some(next);
    Ok((items, next_cursor))
}

/// Trending items: event weights decayed exponentially with age (half-life), over at most
/// `max_rows` recent interactions. Ages count back from the shop's own clock — the 99th
/// percentile of those interactions' timestamps — so a shop imported from the past is
/// measured against its own traffic, and a handful of newer events (one posted today)
/// count like any event at the clock instead of decaying everything else to nothing.
/// Sums are kept as logarithms, so no score underflows however old the traffic.
pub fn trending(
    store: &dyn Storage,
    weights: &EventWeights,
    half_life_ms: f64,
    max_rows: usize,
    n: usize,
    filter: &ItemFilter,
) -> Result<Vec<Recommended>> {
    let mut stamps: Vec<i64> = Vec::new();
    store.recent_interactions(max_rows, &mut |_, row| {
        stamps.push(row.timestamp);
        true
    })?;
    let Some(clock) = shop_clock(&mut stamps) else {
        return Ok(Vec::new());
    };
    let decay = std::f64::consts::LN_2 / half_life_ms;
    // Per item: ln of the decayed weighted count.
    let mut totals: HashMap<String, f64> = HashMap::new();
    store.recent_interactions(max_rows, &mut |item, row| {
        let w = f64::from(weights.weight(row));
        if w > 0.0 {
            let age = (clock - row.timestamp).max(0) as f64;
            let term = w.ln() - age * decay;
            let total = totals.entry(item.to_string()).or_insert(f64::NEG_INFINITY);
            *total = ln_add_exp(*total, term);
        }
        true
    })?;
    let mut ranked: Vec<(String, f64)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut out = Vec::new();
    for chunk in ranked.chunks(256) {
        let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
        for ((id, ln_score), meta) in chunk.iter().zip(store.items_meta(&ids)?) {
            if out.len() < n && filter.accepts(meta.as_ref()) {
                // The decayed count itself where it is representable; its logarithm's
                // order is kept by the smallest positive value below that.
                let score = ln_score.exp().max(f64::MIN_POSITIVE);
                out.push(Recommended {
                    id: id.clone(),
                    score,
                    reasons: vec![Reason {
                        source: "trending".into(),
                        rank: out.len() + 1,
                        score: (score as f32).max(f32::MIN_POSITIVE),
                        because: None,
                        because_event: None,
                        because_title: None,
                    }],
                    effects: Vec::new(),
                    ranker: None,
                    ..Recommended::default()
                });
            }
        }
        if out.len() >= n {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{EventId, ItemId};
    use crate::model::{Event, Item};
    use crate::store::{EmbeddedStore, StoreConfig};

    const DAY: i64 = 24 * 3_600_000;

    fn view(n: usize, item: &str, timestamp: i64) -> Event {
        Event::new(
            EventId::parse(format!("e{n}"), "id").unwrap(),
            EventType::View,
            UserId::parse(format!("u{}", n % 50), "user").unwrap(),
            Some(ItemId::parse(item, "item").unwrap()),
            timestamp,
        )
    }

    #[test]
    fn trending_runs_on_the_shops_clock_and_no_score_underflows() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        let items = ["steady", "early", "today", "ancient"];
        store.put_items(items.iter().map(|id| Item::new(ItemId::parse(*id, "id").unwrap(), *id)).collect()).unwrap();
        // A month of traffic imported from the past, oldest first.
        let start = 1_600_000_000_000i64;
        let mut events = vec![view(0, "ancient", start - 400 * DAY)];
        for k in 0..600usize {
            let t = start + (k as i64) * DAY / 20;
            events.push(view(k + 1, if k < 40 { "early" } else { "steady" }, t));
        }
        // Then one event posted today, a year after the import.
        events.push(view(10_000, "today", start + 400 * DAY));
        store.append_events(events).unwrap();
        let top = trending(&store, &EventWeights::default(), DAY as f64, 100_000, 10, &ItemFilter::default()).unwrap();
        let ids: Vec<&str> = top.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids[0], "steady", "{ids:?}");
        assert_eq!(ids.last(), Some(&"ancient"), "{ids:?}");
        assert_eq!(ids.len(), 4);
        assert!(top.iter().all(|r| r.score > 0.0 && r.reasons[0].score > 0.0), "{top:?}");
        assert!(top.windows(2).all(|w| w[0].score >= w[1].score));
        // The one new event counts as one event at the clock: below a month of steady traffic.
        let today = top.iter().find(|r| r.id == "today").unwrap();
        assert!(today.score <= 1.0 + 1e-9 && top[0].score > 5.0, "{top:?}");
    }

    #[test]
    fn the_shops_clock_ignores_a_few_outliers() {
        let mut stamps: Vec<i64> = (0..1_000).collect();
        stamps.push(1_000_000_000);
        assert!(shop_clock(&mut stamps).unwrap() < 1_000);
        assert_eq!(shop_clock(&mut []), None);
        assert!((ln_add_exp(-1000.0, -1000.0) - (-1000.0 + std::f64::consts::LN_2)).abs() < 1e-12);
    }
}

#[cfg(test)]
mod stage_tests {
    use super::*;

    #[test]
    fn fusion_keeps_every_sources_reason_and_drops_a_source_weighted_zero() {
        let lists = vec![
            ("als".to_string(), vec![(1, 0.9), (2, 0.8)]),
            ("itemknn".to_string(), vec![(2, 3.0), (3, 1.0)]),
            ("popularity".to_string(), vec![(4, 10.0)]),
        ];
        let weights: BTreeMap<String, f64> = [("popularity".to_string(), 0.0)].into_iter().collect();
        let fused = fuse(&lists, &weights);
        let order: Vec<u32> = fused.iter().map(|(i, _, _)| *i).collect();
        assert_eq!(order, vec![2, 1, 3], "agreement first; popularity weighted 0 takes no part");
        let reasons: Vec<(&str, usize)> = fused[0].2.iter().map(|r| (r.source.as_str(), r.rank)).collect();
        assert_eq!(reasons, vec![("als", 2), ("itemknn", 1)]);
        assert!((fused[0].1 - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-12);
    }
}
