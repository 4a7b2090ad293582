//! What several subcommands and benchmarks use: opening the data directory and its search
//! index, generating a shop (into the store or as files), the `souk eval` arguments and the
//! model list with its parameters. Depends on the configuration and the engine only.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use souk_engine::gen::{GenConfig, Generator, GroundTruth};
use souk_engine::rank::profile::ProfileConfig;
use souk_engine::rank::ranker::FeatureLog;
use souk_engine::recommend::content::CONTENT_MODELS;
use souk_engine::recommend::registry;
use souk_engine::search::SearchIndex;
use souk_engine::serving::{ModelSet, RecommendConfig, Shop, ShopSettings};
use souk_engine::store::artifacts::ArtifactStore;
use souk_engine::store::DataDir;
use souk_engine::store::{EmbeddedStore, PgStore, Storage};
use souk_engine::{Record, RecordSink};

use crate::config::Config;

/// The system of record the configuration names: the embedded store in the data directory,
/// or the PostgreSQL database of `store.url` (the data directory then holds this process's
/// derived state only: search index, model generations, page logs).
pub fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Storage>> {
    if !config.store.url.is_empty() {
        let store = PgStore::open(&config.store.url).context("opening the PostgreSQL store (store.url)")?;
        return Ok(Arc::new(store));
    }
    let store = EmbeddedStore::open(&config.data_dir, &config.store)
        .with_context(|| format!("opening the data directory {}", config.data_dir.display()))?;
    Ok(Arc::new(store))
}

/// Open the search index of the data directory, reconciling it with the catalog.
/// The model set saved as the data directory's current generation, if any.
pub fn saved_models(config: &Config) -> anyhow::Result<Option<ModelSet>> {
    ModelSet::load(&ArtifactStore::new(&config.data_dir)).context("loading the trained models")
}

/// A shop over `store` as the configuration describes it, serving `models`, saving new
/// generations in the data directory and logging pages there; the search index is added
/// by who serves search.
pub fn open_shop(
    config: &Config,
    store: Arc<dyn Storage>,
    recommend: RecommendConfig,
    models: Option<ModelSet>,
) -> Shop {
    let artifacts = ArtifactStore::new(&config.data_dir);
    let settings = ShopSettings {
        recommend,
        weights: config.weights.clone(),
        rules: config.rerank.clone(),
        ranking: config.rank.clone(),
        profile: ProfileConfig::default(),
        search: config.search.clone(),
    };
    Shop::new(store, settings)
        .with_models(models)
        .with_artifacts(artifacts)
        .with_page_log(FeatureLog::in_data_dir(&config.data_dir))
}

pub fn open_search(config: &Config, store: &dyn Storage) -> anyhow::Result<Arc<SearchIndex>> {
    SearchIndex::open(&DataDir::new(&config.data_dir).search(), config.search.clone(), store)
        .context("opening the search index")
}

pub fn progress_bar(total: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Writes generated records as JSONL files, one per kind.
pub struct FileSink {
    items: std::io::BufWriter<std::fs::File>,
    users: std::io::BufWriter<std::fs::File>,
    follows: std::io::BufWriter<std::fs::File>,
    events: std::io::BufWriter<std::fs::File>,
}

impl FileSink {
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let open = |name: &str| -> anyhow::Result<_> {
            let path = dir.join(name);
            Ok(std::io::BufWriter::with_capacity(
                1 << 20,
                std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
            ))
        };
        Ok(Self {
            items: open("items.jsonl")?,
            users: open("users.jsonl")?,
            follows: open("follows.jsonl")?,
            events: open("events.jsonl")?,
        })
    }

    pub fn finish(mut self) -> anyhow::Result<()> {
        for writer in [&mut self.items, &mut self.users, &mut self.follows, &mut self.events] {
            writer.flush()?;
            writer.get_ref().sync_all()?;
        }
        Ok(())
    }
}

impl RecordSink for FileSink {
    fn put(&mut self, record: Record) -> souk_engine::Result<()> {
        let writer = match &record {
            Record::Item(_) => &mut self.items,
            Record::User(_) => &mut self.users,
            Record::Follow(_) => &mut self.follows,
            Record::Event(_) => &mut self.events,
        };
        serde_json::to_writer(&mut *writer, &souk_engine::input::record_to_json(&record))
            .map_err(|e| souk_engine::Error::Io(e.into()))?;
        writer.write_all(b"\n")?;
        Ok(())
    }
}

/// Generate a shop into `sink`, with a progress bar over events.
pub fn generate(
    generator: &Generator,
    events: usize,
    sink: &mut dyn RecordSink,
    quiet: bool,
) -> anyhow::Result<souk_engine::gen::GenSummary> {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        progress_bar(events as u64, "{spinner} generating [{bar:30}] {pos}/{len} events {per_sec} eta {eta}")
    };
    let summary = generator
        .run(sink, &mut |progress| {
            if progress.phase == souk_engine::gen::GenPhase::Events {
                bar.set_position(progress.done);
            }
        })
        .context("generating the shop")?;
    bar.finish_and_clear();
    Ok(summary)
}

pub fn write_ground_truth(generator: &Generator, path: &Path) -> anyhow::Result<()> {
    // Over a PostgreSQL store nothing else has made the data directory yet.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    generator.ground_truth()?.write_json(&mut writer).with_context(|| format!("writing {}", path.display()))?;
    writer.flush()?;
    Ok(())
}

/// The generator configuration of a data directory made by `souk gen`.
pub fn generated_shop(data_dir: &Path) -> anyhow::Result<GenConfig> {
    let path = DataDir::new(data_dir).ground_truth();
    let file = std::fs::File::open(&path)
        .with_context(|| format!("search evaluation needs a shop made by `souk gen` (no {} found)", path.display()))?;
    Ok(GroundTruth::read_json(std::io::BufReader::new(file), &path)?.config)
}

/// `souk eval` arguments (see the interface contract).
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// random-split, temporal, leave-last-out, strong-generalization, cold-item,
    /// search (search relevance on a shop made by `souk gen`), or open-bandit (the click
    /// model on an Open Bandit Dataset directory given with --path), ope (off-policy
    /// evaluation of --policy FILE on the log in --path), simulated-ranking (the learned
    /// ranker on simulated traffic over a generated shop), exploration (which policy fills
    /// exploration slots, on simulated shops), session-policy (a per-page mix policy learned
    /// by Q-learning on simulated sessions), new-user (held-out shoppers at 0, 1, 3 and 5
    /// events of history, with their attributes and stated preferences), next-item
    /// (session-based: --train and --test session logs), or sentiment (review sentiment
    /// from text: a head on the sentence encoder, on the labelled reviews in --path).
    #[arg(long, default_value = "random-split")]
    pub protocol: String,
    /// Training share (default 0.8; 0.7 of the rows by time for open-bandit).
    #[arg(long)]
    pub ratio: Option<f64>,
    /// With --protocol open-bandit or ope: the directory holding the impression log and
    /// item_context.csv (e.g. obd/random/all); with sentiment: a CSV of labelled reviews
    /// (header with `label` 1/0 and `review` or `text`, optionally `cat`).
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// With --protocol ope: the target policy, a csv file with the header
    /// round,position,item,probability (round = 0-based row of the log csv).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Random seed (the same seed gives the same data and figures).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Cut-offs, e.g. 10,20.
    #[arg(long, default_value = "10,20")]
    pub k: String,
    /// Comma list of models (the help lists the default set and the content models).
    #[arg(long, help = models_help())]
    pub models: Option<String>,
    /// Evaluate on exactly the split in DIR/train.tsv and DIR/test.tsv (user<TAB>item; a
    /// training line may add an event type, weighted by [weights]).
    #[arg(long)]
    pub split: Option<PathBuf>,
    /// With --split: the event type of the test items (e.g. purchase); only training
    /// pairs of this type are left out of the ranking, so carted items stay rankable.
    #[arg(long, value_name = "TYPE")]
    pub target: Option<String>,
    /// Tune each model on a validation split carved from the training data (never the
    /// test data), over its default grid, then report the chosen parameters.
    #[arg(long)]
    pub tune: bool,
    /// Set a parameter, e.g. --param als.factors=128 or, for open-bandit, ftrl.alpha=0.1,
    /// features.crosses=false, popularity-by-position.prior_strength=50 or
    /// open-bandit.validation_ratio=0.8, for ope ope.bootstrap_resamples=1000,
    /// ope.reward_model=popularity-by-position, ope.folds=5 (repeatable; a JSON value).
    #[arg(long = "param")]
    pub params: Vec<String>,
    /// With --protocol next-item: the training sessions (a session log, as `souk import
    /// --format sessions` reads).
    #[arg(long, value_name = "FILE")]
    pub train: Option<PathBuf>,
    /// With --protocol next-item: the test sessions to replay.
    #[arg(long, value_name = "FILE")]
    pub test: Option<PathBuf>,
    /// Judged queries per language (protocol search).
    #[arg(long, default_value_t = 300)]
    pub queries: usize,
    /// With --protocol sentiment: write the identical split (DIR/train.tsv, DIR/test.tsv)
    /// for a reference run.
    #[arg(long, value_name = "DIR")]
    pub write_split: Option<PathBuf>,
    /// With --protocol sentiment: save the trained head (JSON) to FILE.
    #[arg(long, value_name = "FILE")]
    pub save_head: Option<PathBuf>,
    /// Print the result as one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Each model's parameters: the configured ones with `--param model.key=value` overrides.
pub fn model_params(config: &Config, models: &[String], overrides: &[String]) -> anyhow::Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for model in models {
        let mut params = match model.as_str() {
            // ALS with the content map takes ALS's parameters; content-kNN has none.
            "als_content" => config.recommend.params_for("als")?,
            "content_knn" | "graph" | "blend_graph" => Value::Object(Default::default()),
            _ => config.recommend.params_for(model)?,
        };
        for text in overrides {
            let Some((key, value)) = text.split_once('=') else {
                bail!("--param expects model.key=value, found {text:?}");
            };
            let Some((name, field)) = key.split_once('.') else {
                bail!("--param expects model.key=value, found {text:?}");
            };
            if !registry::MODELS.contains(&name) && !CONTENT_MODELS.contains(&name) {
                bail!("--param {text:?}: unknown model {name:?}; expected one of {}", registry::MODELS.join(", "));
            }
            if name == model {
                let value: Value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
                params[field] = value;
            }
        }
        out.push((model.clone(), params));
    }
    Ok(out)
}

/// The models of a `--models` comma list (default: every registered model); the content
/// models (`als_content`, `content_knn`) only when named.
/// The help of `--models`, from the registry itself.
fn models_help() -> String {
    format!(
        "Comma list of models (default: all of {}; content models, on request: {})",
        registry::MODELS.join(", "),
        CONTENT_MODELS.join(", ")
    )
}

pub fn model_list(text: Option<&str>) -> anyhow::Result<Vec<String>> {
    let models: Vec<String> = match text {
        Some(text) => text.split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect(),
        None => registry::MODELS.iter().map(|m| m.to_string()).collect(),
    };
    for model in &models {
        if !registry::MODELS.contains(&model.as_str()) && !CONTENT_MODELS.contains(&model.as_str()) {
            let known: Vec<&str> = registry::MODELS.iter().chain(CONTENT_MODELS).copied().collect();
            bail!("unknown model {model:?}; expected one of {}", known.join(", "));
        }
    }
    if models.is_empty() {
        bail!("--models is empty");
    }
    Ok(models)
}
