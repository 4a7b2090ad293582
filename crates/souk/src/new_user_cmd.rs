//! `souk eval --protocol new-user`: the first pages of shoppers the models never saw, at
//! 0, 1, 3 and 5 events of history, from the data directory's events and user records.

use anyhow::bail;
use souk_engine::eval::new_user::{evaluate, render, NewUserConfig};

use crate::config::Config;
use crate::recommend_cmd::no_data;
use crate::shared::{open_store, EvalArgs};

pub fn eval_new_user(config: &Config, args: &EvalArgs, ks: Vec<usize>) -> anyhow::Result<()> {
    if args.split.is_some() || args.models.is_some() || args.tune || !args.params.is_empty() {
        bail!("--protocol new-user evaluates its fixed model list with the configured parameters: drop --split, --models, --tune and --param (set [recommend] in the configuration instead)");
    }
    // Evaluation only reads: a missing data directory is not created.
    if config.store.url.is_empty() && !config.data_dir.exists() {
        return Err(no_data(format!("no data directory at {}", config.data_dir.display())));
    }
    let store = open_store(config)?;
    let settings = NewUserConfig {
        ratio: args.ratio.unwrap_or(0.8),
        seed: args.seed,
        ks: ks.clone(),
        recommend: config.recommend.clone(),
        weights: config.weights.clone(),
    };
    let report = evaluate(store.as_ref(), &settings)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report, &ks));
    }
    Ok(())
}
