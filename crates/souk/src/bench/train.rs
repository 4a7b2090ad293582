//! `souk bench train`: each model's training time and peak memory on the data directory or
//! on a split's training half.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use souk_engine::eval::runner::peak_memory::Meter;
use souk_engine::recommend::{registry, Interactions, InteractionsBuilder};

use crate::config::Config;
use crate::shared::{model_list, model_params, open_store};

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Comma list of models (default: all).
    #[arg(long)]
    models: Option<String>,
    /// Train on DIR/train.tsv (user<TAB>item) instead of the data directory.
    #[arg(long)]
    split: Option<PathBuf>,
    /// Set a parameter, e.g. --param als.factors=128 (repeatable).
    #[arg(long = "param")]
    params: Vec<String>,
    /// Repetitions per model (the fastest is reported too).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Print the result as one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(config: &Config, args: &TrainArgs) -> anyhow::Result<()> {
    let report = bench_train(config, args.models.as_deref(), args.split.as_deref(), &args.params, args.repeat.max(1))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for r in report["results"].as_array().into_iter().flatten() {
            println!(
                "{:<12} train {:>8.3}s (fastest {:.3}s)  peak +{} MiB",
                r["model"].as_str().unwrap_or(""),
                r["train_seconds"].as_f64().unwrap_or(0.0),
                r["fastest_seconds"].as_f64().unwrap_or(0.0),
                r["peak_memory_bytes"].as_u64().unwrap_or(0) >> 20
            );
        }
    }
    Ok(())
}

/// Each model's training time and peak memory.
fn bench_train(
    config: &Config,
    models: Option<&str>,
    split: Option<&Path>,
    overrides: &[String],
    repeat: usize,
) -> anyhow::Result<Value> {
    let models = model_list(models)?;
    let configured = model_params(config, &models, overrides)?;
    let data = match split {
        Some(dir) => read_train_split(dir)?,
        None => Interactions::from_store(open_store(config)?.as_ref(), &config.weights)?,
    };
    let threads = rayon::current_num_threads();
    let mut results = Vec::new();
    for (name, params) in configured {
        let mut times = Vec::new();
        let mut peak = None;
        for _ in 0..repeat {
            let meter = Meter::start();
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

/// DIR/train.tsv (user<TAB>item, anything after a second tab ignored), each pair weighing 1.
fn read_train_split(dir: &Path) -> anyhow::Result<Interactions> {
    let path = dir.join("train.tsv");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut builder = InteractionsBuilder::default();
    for (number, line) in text.lines().enumerate() {
        let Some((user, item)) = line.split_once('\t') else {
            bail!("{}:{}: expected user<TAB>item", path.display(), number + 1);
        };
        builder.add(user, item.split('\t').next().unwrap_or(item), 1.0);
    }
    Ok(builder.build())
}
