//! The model set: every recall source trained together, saved as one generation and
//! swapped whole; its configuration and manifest.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hashing::IdMap;
use crate::rank::learners::RankModel;
use crate::rank::ranker::{train_from_logs, FeatureContext, FeatureLog, RankConfig, Ranker, RankerReport};
use crate::recommend::als::AlsModel;
use crate::recommend::artifact::Artifact;
use crate::recommend::content::ContentMap;
use crate::recommend::demographic::DemographicPrior;
use crate::recommend::graph::{self, ItemGraph};
use crate::recommend::itemknn::{self, ItemKnnModel};
use crate::recommend::ivf::IvfIndex;
use crate::recommend::live_index::LiveIndex;
use crate::recommend::{registry, EventWeights, Interactions, Recommender};
use crate::store::artifacts::ArtifactStore;
use crate::store::Storage;

use super::label_index::LabelIndex;
use super::*;

/// Version of the model-set manifest.
pub const MODEL_SET_FORMAT_VERSION: u32 = 1;

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

/// A number no other model set of this process has.
pub(super) fn next_serial() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Everything serving needs from training, swapped as one value.
pub struct ModelSet {
    /// This value's own number in the process (each set, trained, loaded or grown, has its
    /// own): what caches of facts about a set are keyed by.
    pub serial: u64,
    pub manifest: ModelSetManifest,
    pub item_ids: Vec<String>,
    /// `xxh3_64` of each item id, by item index: exclusion and cursor checks compare
    /// digests without reading the id strings (scattered reads that were most of the
    /// candidate search's time).
    pub item_digests: Vec<u64>,
    pub item_index: IdMap<String, u32>,
    pub user_index: Arc<IdMap<String, u32>>,
    /// Collaborative sources, by name (shared with the sets that extend this one).
    pub models: Arc<Vec<(String, Source)>>,
    pub knn: Arc<ItemKnnModel>,
    /// Items `0..trained_items` are the models' items; those after them are catalog items
    /// the models never saw (no interactions at training, or added since), served through
    /// the content map and the content source ([`ModelSet::with_fresh_items`]).
    pub trained_items: usize,
    /// Ridge map from content vectors to the first factor model's item factors (trained
    /// with the set when it has a factor model and the catalog has content).
    pub content_map: Option<Arc<ContentMap>>,
    /// Mapped factors of the items after `trained_items` (`factors` values each; zeros
    /// where an item had no content), for the factor model's scores.
    pub fresh_factors: Vec<f32>,
    /// Per item after `trained_items`: its mapped factors are all zero (no content).
    pub fresh_blank: Vec<bool>,
    /// The popular items' catalog labels, built at first use and shared by the sets grown
    /// from this one (see [`LabelIndex`]).
    pub labels: Arc<OnceLock<LabelIndex>>,
    /// An index over `fresh_factors` once there are many (shared by the sets that grow
    /// from one another; rows added since are scanned exactly).
    pub fresh_index: Option<Arc<LiveIndex>>,
    /// Whether every catalog item without interactions has joined (see
    /// [`ModelSet::with_fresh_items`]); sets are trained and loaded without them.
    pub catalog_merged: bool,
    /// Users per item in training (popularity, and the cold-start fallback).
    pub popularity: Vec<f32>,
    /// Items by descending popularity.
    pub popularity_order: Vec<u32>,
    /// The prior over the trained items for shoppers with little history, from shoppers
    /// who share their attributes (when the shop's users have attributes).
    pub demographic: Option<Arc<DemographicPrior>>,
    /// The trained items joined through the entities their catalog facts share (when any
    /// entity joins two of them): the `graph` source.
    pub graph: Option<Arc<ItemGraph>>,
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
            IvfIndex::build(&model.item_factors, model.params.factors, IvfIndex::clusters_for(model.n_items), 42)
                .with_copy(&model.item_factors);
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
pub(super) fn order_by(scores: &[f32]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..scores.len() as u32).collect();
    order.sort_unstable_by(|a, b| scores[*b as usize].total_cmp(&scores[*a as usize]).then(a.cmp(b)));
    order
}

pub(super) fn index_of(ids: &[String]) -> IdMap<String, u32> {
    ids.iter().enumerate().map(|(i, id)| (id.clone(), i as u32)).collect()
}

impl ModelSet {
    /// Train every configured source on the store's current interactions.
    pub fn train(store: &dyn Storage, config: &RecommendConfig, weights: &EventWeights) -> Result<ModelSet> {
        Self::train_with_progress(store, config, weights, &|_, _| {})
    }

    /// [`ModelSet::train`], telling `progress` the share done (0..=1) and the step now
    /// running: reading the interactions, then each model in turn.
    pub fn train_with_progress(
        store: &dyn Storage,
        config: &RecommendConfig,
        weights: &EventWeights,
        progress: &dyn Fn(f64, &str),
    ) -> Result<ModelSet> {
        let started = std::time::Instant::now();
        let events = store.event_count()?;
        progress(0.0, "reading interactions");
        let data = Interactions::from_store(store, weights)?;
        if data.nnz() == 0 {
            return Err(Error::Coded {
                code: "no_data",
                message: "no interactions to train on: import or ingest events first".into(),
            });
        }
        let mut train_seconds = BTreeMap::new();
        let mut models = Vec::new();
        let names = config.models_for(&data);
        // Reading counts as one step, item-kNN as the last one.
        let steps = names.len() as f64 + 2.0;
        for (done, name) in names.iter().enumerate() {
            progress((1.0 + done as f64) / steps, &format!("training {name}"));
            let t = std::time::Instant::now();
            let source = if name == "als" {
                Source::als(crate::recommend::als::train(&data, &config.als)?)
            } else {
                Source::Dense(registry::train_model(name, &config.params_for(name)?, &data)?)
            };
            train_seconds.insert(name.clone(), t.elapsed().as_secs_f64());
            models.push((name.clone(), source));
        }
        progress((steps - 1.0) / steps, "training itemknn");
        let t = std::time::Instant::now();
        let knn = itemknn::train(&data, &config.itemknn)?;
        train_seconds.insert("itemknn".into(), t.elapsed().as_secs_f64());
        let t = std::time::Instant::now();
        let demographic = DemographicPrior::from_store(store, &data, &config.demographic)?;
        if demographic.is_some() {
            train_seconds.insert("demographic".into(), t.elapsed().as_secs_f64());
        }
        let t = std::time::Instant::now();
        let graph = graph_of(store, &data, &config.graph)?;
        if graph.is_some() {
            train_seconds.insert("graph".into(), t.elapsed().as_secs_f64());
        }
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
            serial: next_serial(),
            manifest: ModelSetManifest {
                format_version: MODEL_SET_FORMAT_VERSION,
                trained_at_ms: chrono::Utc::now().timestamp_millis(),
                events,
                users: data.n_users(),
                items: data.n_items(),
                interactions: data.nnz(),
                models: names,
                train_seconds,
                weights: weights.clone(),
            },
            item_index: index_of(&data.item_ids),
            user_index: Arc::new(index_of(&data.user_ids)),
            item_digests: digests_of(&data.item_ids),
            trained_items: data.item_ids.len(),
            item_ids: data.item_ids,
            models: Arc::new(models),
            knn: Arc::new(knn),
            content_map: None,
            fresh_factors: Vec::new(),
            fresh_blank: Vec::new(),
            labels: Arc::default(),
            fresh_index: None,
            catalog_merged: false,
            popularity_order: order_by(&popularity),
            popularity,
            demographic: demographic.map(Arc::new),
            graph: graph.map(Arc::new),
            ranker: None,
            search_ranker: None,
            features: None,
        })
    }

    /// Write the set as a new artifact generation and make it live. A disk that refuses
    /// the write is answered `disk_full` or `storage_unavailable`; the serving set stays.
    pub fn save(&self, artifacts: &ArtifactStore) -> Result<String> {
        self.write_generation(artifacts).map_err(|e| crate::store::refused_write(e, "the trained model set"))
    }

    fn write_generation(&self, artifacts: &ArtifactStore) -> Result<String> {
        let mut generation = artifacts.begin()?;
        let json = |e: serde_json::Error| Error::Internal(format!("encoding the manifest: {e}"));
        serde_json::to_writer_pretty(generation.create("manifest.json")?, &self.manifest).map_err(json)?;
        let trained = &self.item_ids[..self.trained_items];
        for (file, ids) in [("items.txt", trained), ("users.txt", self.user_ids_sorted().as_slice())] {
            let mut writer = generation.create(file)?;
            for id in ids.iter() {
                writeln!(writer, "{id}")?;
            }
            writer.flush()?;
        }
        for (name, model) in self.models.iter() {
            let mut writer = generation.create(&format!("{name}.model"))?;
            registry::save_model(model.as_recommender(), &mut writer)?;
            writer.flush()?;
        }
        let mut writer = generation.create("itemknn.model")?;
        registry::save_model(self.knn.as_ref(), &mut writer)?;
        writer.flush()?;
        let mut writer = generation.create("popularity.f32")?;
        for p in &self.popularity[..self.trained_items] {
            writer.write_all(&p.to_le_bytes())?;
        }
        writer.flush()?;
        if let Some(map) = &self.content_map {
            let mut writer = generation.create(CONTENT_MAP)?;
            map.to_artifact()?.write_to(&mut writer)?;
            writer.flush()?;
        }
        if let Some(prior) = &self.demographic {
            let mut writer = generation.create(DEMOGRAPHIC)?;
            prior.to_artifact()?.write_to(&mut writer)?;
            writer.flush()?;
        }
        if let Some(graph) = &self.graph {
            let mut writer = generation.create(GRAPH)?;
            graph.to_artifact()?.write_to(&mut writer)?;
            writer.flush()?;
        }
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
        rank: &RankConfig,
        previous: Option<Arc<Ranker>>,
        now_ms: i64,
    ) -> Result<Option<RankerReport>> {
        self.features = Some(Arc::new(FeatureContext::from_store(store)?));
        let (ranker, report) = train_gated(store, log, rank, previous, now_ms)?;
        self.ranker = ranker;
        Ok(report)
    }

    /// The same for the search page, from its own feature log (search pages' rows). Call
    /// after [`ModelSet::train_ranker`], which counts the feature context both share.
    pub fn train_search_ranker(
        &mut self,
        store: &dyn Storage,
        log: &FeatureLog,
        rank: &RankConfig,
        previous: Option<Arc<Ranker>>,
        now_ms: i64,
    ) -> Result<Option<RankerReport>> {
        if self.features.is_none() {
            self.features = Some(Arc::new(FeatureContext::from_store(store)?));
        }
        let (ranker, report) = train_gated(store, log, rank, previous, now_ms)?;
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
            let model = RankModel::load(&mut generation.open(model_file)?)?;
            let report: RankerReport = serde_json::from_reader(generation.open(report_file)?)
                .map_err(|e| corrupt(format!("{report_file}: {e}")))?;
            Ok(Some(Arc::new(Ranker { model, report })))
        };
        let content_map = if generation.exists(CONTENT_MAP) {
            Some(Arc::new(ContentMap::from_artifact(Artifact::read_from(&mut generation.open(CONTENT_MAP)?)?)?))
        } else {
            None
        };
        let demographic = if generation.exists(DEMOGRAPHIC) {
            let prior = DemographicPrior::from_artifact(Artifact::read_from(&mut generation.open(DEMOGRAPHIC)?)?)?;
            if prior.n_items() != item_ids.len() {
                return Err(corrupt(format!(
                    "{DEMOGRAPHIC}: {} items, {} in items.txt",
                    prior.n_items(),
                    item_ids.len()
                )));
            }
            Some(Arc::new(prior))
        } else {
            None
        };
        let graph = if generation.exists(GRAPH) {
            let graph = ItemGraph::from_artifact(Artifact::read_from(&mut generation.open(GRAPH)?)?)?;
            if graph.n_items() != item_ids.len() {
                return Err(corrupt(format!("{GRAPH}: {} items, {} in items.txt", graph.n_items(), item_ids.len())));
            }
            Some(Arc::new(graph))
        } else {
            None
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
            serial: next_serial(),
            item_index: index_of(&item_ids),
            user_index: Arc::new(index_of(&user_ids)),
            item_digests: digests_of(&item_ids),
            trained_items: item_ids.len(),
            item_ids,
            manifest,
            models: Arc::new(models),
            knn: Arc::new(knn),
            content_map,
            fresh_factors: Vec::new(),
            fresh_blank: Vec::new(),
            labels: Arc::default(),
            fresh_index: None,
            catalog_merged: false,
            popularity_order: order_by(&popularity),
            popularity,
            demographic,
            graph,
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
pub(super) fn train_gated(
    store: &dyn Storage,
    log: &FeatureLog,
    rank: &RankConfig,
    previous: Option<Arc<Ranker>>,
    now_ms: i64,
) -> Result<(Option<Arc<Ranker>>, Option<RankerReport>)> {
    let trained = train_from_logs(store, log, &rank.gbdt, &rank.learners, previous.as_deref(), now_ms)?;
    let report = trained.as_ref().map(|r| r.report.clone());
    let serving = match trained {
        Some(ranker) if ranker.report.promoted => Some(Arc::new(ranker)),
        _ => previous,
    };
    Ok((serving, report))
}

/// The ranker's model, of whichever learner won (the name predates the challengers).
pub(super) const RANKER_MODEL: &str = "ranker.gbdt";
pub(super) const RANKER_REPORT: &str = "ranker.json";
pub(super) const SEARCH_RANKER_MODEL: &str = "search_ranker.gbdt";
pub(super) const SEARCH_RANKER_REPORT: &str = "search_ranker.json";
pub(super) const FEATURE_CONTEXT: &str = "features.json";
pub(super) const CONTENT_MAP: &str = "content_map.model";
pub(super) const DEMOGRAPHIC: &str = "demographic.model";
pub(super) const GRAPH: &str = "graph.model";

/// The item graph over `data`'s items from the store's catalog facts; `None` when no
/// entity joins two items (or none of a relation that predicts co-consumption).
fn graph_of(store: &dyn Storage, data: &Interactions, params: &graph::GraphParams) -> Result<Option<ItemGraph>> {
    let index: IdMap<&str, u32> = data.item_ids.iter().enumerate().map(|(i, id)| (id.as_str(), i as u32)).collect();
    let mut facts = graph::GraphFacts::new(data.n_items());
    store.scan_items(&mut |item| {
        if let Some(&i) = index.get(item.id.as_str()) {
            facts.set(i as usize, graph::facts_of(&item));
        }
        Ok(())
    })?;
    let graph = ItemGraph::from_facts(data, facts, params)?;
    Ok((!graph.is_empty()).then_some(graph))
}
