//! `souk train` and `souk eval`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use souk_engine::eval::{self, EvalConfig, EvalData, Protocol};
use souk_engine::model::EventType;
use souk_engine::rank::ranker::FeatureLog;
use souk_engine::recommend::{registry, Interactions, Recommender};
use souk_engine::serving::ModelSet;
use souk_engine::store::artifacts::ArtifactStore;

use crate::commands::open_store;
use crate::config::Config;

/// `souk eval` arguments (see the interface contract).
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// random-split, temporal, leave-last-out, strong-generalization, cold-item,
    /// search (search relevance on a shop made by `souk gen`), or open-bandit (the click
    /// model on an Open Bandit Dataset directory given with --path), or simulated-ranking
    /// (the learned ranker on simulated traffic over a generated shop).
    #[arg(long, default_value = "random-split")]
    pub protocol: String,
    /// Training share (default 0.8; 0.7 of the rows by time for open-bandit).
    #[arg(long)]
    pub ratio: Option<f64>,
    /// With --protocol open-bandit: the directory holding the impression log and
    /// item_context.csv (e.g. obd/random/all).
    #[arg(long)]
    pub path: Option<PathBuf>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Cut-offs, e.g. 10,20.
    #[arg(long, default_value = "10,20")]
    pub k: String,
    /// Comma list of models (default: all of popularity, itemknn, rp3beta, als, ease).
    #[arg(long)]
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
    /// open-bandit.validation_ratio=0.8 (repeatable; a JSON value).
    #[arg(long = "param")]
    pub params: Vec<String>,
    /// Judged queries per language (protocol search).
    #[arg(long, default_value_t = 300)]
    pub queries: usize,
    #[arg(long)]
    pub json: bool,
}

fn parse_params(config: &Config, models: &[String], overrides: &[String]) -> anyhow::Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for model in models {
        let mut params = config.recommend.params_for(model)?;
        for text in overrides {
            let Some((key, value)) = text.split_once('=') else {
                bail!("--param expects model.key=value, found {text:?}");
            };
            let Some((name, field)) = key.split_once('.') else {
                bail!("--param expects model.key=value, found {text:?}");
            };
            if !registry::MODELS.contains(&name) {
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

fn model_list(text: Option<&str>) -> anyhow::Result<Vec<String>> {
    let models: Vec<String> = match text {
        Some(text) => text.split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect(),
        None => registry::MODELS.iter().map(|m| m.to_string()).collect(),
    };
    for model in &models {
        if !registry::MODELS.contains(&model.as_str()) {
            bail!("unknown model {model:?}; expected one of {}", registry::MODELS.join(", "));
        }
    }
    if models.is_empty() {
        bail!("--models is empty");
    }
    Ok(models)
}

pub fn eval(config: &Config, args: &EvalArgs) -> anyhow::Result<()> {
    if args.protocol == souk_engine::rank::open_bandit::PROTOCOL {
        return crate::rank_cmd::eval_open_bandit(args);
    }
    if args.protocol == souk_engine::eval::simulate::PROTOCOL {
        return crate::rank_cmd::eval_simulated(config, args);
    }
    if args.path.is_some() {
        bail!("--path is for --protocol open-bandit; use --split DIR for a train/test split");
    }
    let ks = args
        .k
        .split(',')
        .map(|k| {
            k.trim().parse::<usize>().with_context(|| format!("--k expects numbers like 10,20, found {:?}", args.k))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.protocol == "search" && args.split.is_none() {
        let k = ks.first().copied().unwrap_or(10);
        return crate::search_cmd::eval_search(config, args.queries.max(1), args.seed, k, args.json);
    }
    let protocol: Protocol = if args.split.is_some() {
        Protocol::SplitDir
    } else {
        args.protocol.parse().map_err(|e: souk_engine::ValidationError| anyhow::anyhow!(e.message))?
    };
    let target = match &args.target {
        None => None,
        Some(_) if args.split.is_none() => bail!("--target needs --split"),
        Some(name) => Some(name.parse::<EventType>().map_err(|()| {
            let names: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            anyhow::anyhow!("--target expects one of {}, found {name:?}", names.join(", "))
        })?),
    };
    let eval_config =
        EvalConfig { protocol, ratio: args.ratio.unwrap_or(0.8), seed: args.seed, ks, target, ..EvalConfig::default() };
    let problems = eval_config.problems();
    if !problems.is_empty() {
        bail!("{}", problems.iter().map(|(k, m)| format!("{k}: {m}")).collect::<Vec<_>>().join("; "));
    }
    let models = model_list(args.models.as_deref())?;
    let configured = parse_params(config, &models, &args.params)?;
    let grids: Vec<(String, Vec<Value>)> = configured
        .into_iter()
        .map(|(name, params)| {
            let grid = if args.tune { registry::default_grid(&name) } else { Vec::new() };
            (name, if grid.is_empty() { vec![params] } else { grid })
        })
        .collect();
    let data = match &args.split {
        Some(dir) => EvalData::from_split_dir(dir, &config.weights)
            .with_context(|| format!("reading the split in {}", dir.display()))?,
        None => {
            let store = open_store(config)?;
            EvalData::from_store(&store, &config.weights, config.data_dir.display().to_string())?
        }
    };
    let trainer = |name: &str, params: &Value, data: &Interactions| -> souk_engine::Result<Box<dyn Recommender>> {
        registry::train_model(name, params, data)
    };
    let report = eval::run(&data, &eval_config, &trainer, &grids, args.tune)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", report.table());
    }
    Ok(())
}

pub fn train(config: &Config, models: Option<&str>, json: bool) -> anyhow::Result<()> {
    let mut recommend = config.recommend.clone();
    if let Some(list) = models {
        recommend.models =
            model_list(Some(list))?.into_iter().filter(|m| m != "itemknn" && m != "popularity").collect();
    }
    let store = open_store(config)?;
    let started = Instant::now();
    let artifacts = ArtifactStore::new(&config.data_dir);
    let mut set = ModelSet::train(&store, &recommend, &config.weights).context("training")?;
    // The ranker learns from the impressions and feature rows served pages logged; the
    // one serving until now stays unless the new one beats it on the latest traffic.
    let (previous, previous_search) = match ModelSet::load(&artifacts) {
        Ok(Some(current)) => (current.ranker, current.search_ranker),
        _ => (None, None),
    };
    let log = FeatureLog::in_data_dir(&config.data_dir);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let ranker = set.train_ranker(&store, &log, &config.rank.gbdt, previous, now).context("training the ranker")?;
    let search_ranker = set
        .train_search_ranker(&store, &log.for_search(), &config.rank.gbdt, previous_search, now)
        .context("training the search ranker")?;
    let generation = set.save(&artifacts).context("saving the models")?;
    let seconds = started.elapsed().as_secs_f64();
    if json {
        println!(
            "{}",
            json!({"generation": generation, "seconds": seconds, "manifest": set.manifest, "ranker": ranker, "search_ranker": search_ranker})
        );
    } else {
        println!(
            "trained {} on {} interactions ({} users, {} items) in {seconds:.2}s; saved as models/{generation}",
            set.manifest
                .models
                .iter()
                .chain(std::iter::once(&"itemknn".to_string()))
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            set.manifest.interactions,
            set.manifest.users,
            set.manifest.items
        );
    }
    Ok(())
}

/// `souk bench train`: each model's training time and peak memory.
pub fn bench_train(
    config: &Config,
    models: Option<&str>,
    split: Option<&std::path::Path>,
    overrides: &[String],
    repeat: usize,
) -> anyhow::Result<Value> {
    let models = model_list(models)?;
    let configured = parse_params(config, &models, overrides)?;
    let data = match split {
        Some(dir) => {
            let path = dir.join("train.tsv");
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let mut builder = souk_engine::recommend::InteractionsBuilder::default();
            for (number, line) in text.lines().enumerate() {
                let Some((user, item)) = line.split_once('\t') else {
                    bail!("{}:{}: expected user<TAB>item", path.display(), number + 1);
                };
                builder.add(user, item.split('\t').next().unwrap_or(item), 1.0);
            }
            builder.build()
        }
        None => Interactions::from_store(&open_store(config)?, &config.weights)?,
    };
    let threads = rayon::current_num_threads();
    let mut results = Vec::new();
    for (name, params) in configured {
        let mut times = Vec::new();
        let mut peak = None;
        for _ in 0..repeat {
            let meter = eval::runner::peak_memory::Meter::start();
            let started = Instant::now();
            let model = registry::train_model(&name, &params, &data)?;
            times.push(started.elapsed().as_secs_f64());
            peak = meter.finish();
            drop(model);
        }
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        let fastest = times.iter().copied().fold(f64::INFINITY, f64::min);
        results.push(json!({"model": name, "params": params, "train_seconds": mean, "fastest_seconds": fastest, "runs": times, "peak_memory_bytes": peak}));
    }
    Ok(json!({
        "dataset": {"users": data.n_users(), "items": data.n_items(), "interactions": data.nnz(), "source": split.map_or_else(|| config.data_dir.display().to_string(), |d| d.display().to_string())},
        "threads": threads,
        "results": results,
    }))
}
