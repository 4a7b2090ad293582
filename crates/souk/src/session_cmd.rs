//! `souk eval --protocol next-item`: session-based next-item evaluation on two session log
//! files (session-rec's protocol), with the session-kNN model.

use anyhow::{bail, Context};
use serde_json::{Map, Value};
use souk_engine::eval::next_item::{self, MODEL};
use souk_engine::recommend::SessionKnnParams;

use crate::shared::EvalArgs;

/// The session-kNN parameters: defaults with `--param session-knn.key=value` overrides.
fn params(overrides: &[String]) -> anyhow::Result<SessionKnnParams> {
    let mut fields = Map::new();
    for text in overrides {
        let Some((key, value)) = text.split_once('=') else {
            bail!("--param expects model.key=value, found {text:?}");
        };
        let Some(field) = key.strip_prefix(MODEL).and_then(|k| k.strip_prefix('.')) else {
            bail!("--param {text:?}: --protocol next-item evaluates {MODEL}; expected {MODEL}.key=value");
        };
        let value: Value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        fields.insert(field.to_string(), value);
    }
    let mut params = serde_json::to_value(SessionKnnParams::default())?;
    if let Value::Object(map) = &mut params {
        map.extend(fields);
    }
    serde_json::from_value(params).context("--param for session-knn")
}

pub fn eval_next_item(args: &EvalArgs, ks: &[usize]) -> anyhow::Result<()> {
    let (Some(train), Some(test)) = (&args.train, &args.test) else {
        bail!("--protocol next-item needs --train FILE and --test FILE (session logs)");
    };
    let params = params(&args.params)?;
    let report = next_item::run_files(train, test, &params, ks)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let d = &report.dataset;
    println!(
        "protocol next-item: train {} ({} sessions, {} events, {} items), test {} ({} sessions, {} predictions)",
        d.train, d.train_sessions, d.train_events, d.items, d.test, d.test_sessions, d.predictions
    );
    for result in &report.results {
        println!("{} (train {:.2} s, eval {:.2} s)", result.model, result.train_seconds, result.eval_seconds);
        for (name, value) in &result.metrics {
            println!("  {name:<10} {value:.4}");
        }
    }
    Ok(())
}
