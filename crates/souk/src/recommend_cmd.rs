//! `souk train` and `souk eval`.

use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use souk_engine::eval::{self, EvalConfig, EvalData, Protocol};
use souk_engine::model::EventType;
use souk_engine::recommend::blend::{self, BlendParams, BlendPart};
use souk_engine::recommend::graph;
use souk_engine::recommend::{content, registry, AlsParams, GraphParams, Interactions, ItemGraph, Recommender};
use souk_engine::serving::content::content_rows_of;
use souk_engine::serving::shop::TrainReport;

use crate::config::Config;
use crate::shared::{model_list, model_params, open_shop, open_store, saved_models, EvalArgs};

/// `souk eval` with a recommendation protocol (or a split directory): every model ranks all
/// items for each test user, cut off at each of `ks`.
pub fn eval(config: &Config, args: &EvalArgs, ks: Vec<usize>) -> anyhow::Result<()> {
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
    let configured = model_params(config, &models, &args.params)?;
    let grids: Vec<(String, Vec<Value>)> = configured
        .into_iter()
        .map(|(name, params)| {
            // ALS with the content map tunes on ALS's grid.
            let grid_of = if name == "als_content" { "als" } else { name.as_str() };
            let grid = if args.tune { registry::default_grid(grid_of) } else { Vec::new() };
            (name, if grid.is_empty() { vec![params] } else { grid })
        })
        .collect();
    let data = match &args.split {
        Some(dir) => EvalData::from_split_dir(dir, &config.weights)
            .with_context(|| format!("reading the split in {}", dir.display()))?,
        None => {
            // Evaluation only reads: a missing data directory is not created.
            if config.store.url.is_empty() && !config.data_dir.exists() {
                return Err(no_data(format!("no data directory at {}", config.data_dir.display())));
            }
            let store = open_store(config)?;
            let data = EvalData::from_store(store.as_ref(), &config.weights, config.data_dir.display().to_string())?;
            if data.pairs.is_empty() {
                return Err(no_data(format!("{} holds no interactions to evaluate on", config.data_dir.display())));
            }
            data
        }
    };
    // Content models read the data directory's catalog (titles, brands, categories,
    // tags, attributes, the shop's own vectors): hashed catalog features, no text vectors.
    let catalog = if models.iter().any(|m| content::CONTENT_MODELS.contains(&m.as_str())) {
        let store = open_store(config)?;
        let mut items = Vec::new();
        souk_engine::store::Storage::scan_items(store.as_ref(), &mut |item| {
            items.push(item);
            Ok(())
        })?;
        if items.is_empty() {
            bail!("content models need a catalog: the data directory holds no items");
        }
        items
    } else {
        Vec::new()
    };
    let facts_of = |data: &Interactions| {
        let position: std::collections::HashMap<&str, &souk_engine::Item> =
            catalog.iter().map(|item| (item.id.as_str(), item)).collect();
        data.item_ids
            .iter()
            .map(|id| position.get(id.as_str()).map(|item| graph::facts_of(item)).unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let invalid = |model: &str, e: serde_json::Error| {
        souk_engine::Error::Invalid(souk_engine::ValidationError::new("invalid_parameter", model, e.to_string()))
    };
    let train_graph = |params: &Value, data: &Interactions| -> souk_engine::Result<Box<dyn Recommender>> {
        let params: GraphParams = serde_json::from_value(params.clone()).map_err(|e| invalid("graph", e))?;
        Ok(Box::new(ItemGraph::train(data, &facts_of(data), &params)?))
    };
    let trainer = |name: &str, params: &Value, data: &Interactions| -> souk_engine::Result<Box<dyn Recommender>> {
        let rows = || content_rows_of(&catalog, &data.item_ids, None);
        match name {
            "graph" => train_graph(params, data),
            "blend_graph" => {
                // The default blend, with the item graph as one more part.
                let mut params = params.clone();
                let graph_params = params.as_object_mut().and_then(|p| p.remove("graph")).unwrap_or(Value::Null);
                let weight: f32 = match params.as_object_mut().and_then(|p| p.remove("graph_weight")) {
                    Some(w) => serde_json::from_value(w).map_err(|e| invalid("blend_graph.graph_weight", e))?,
                    None => 0.1,
                };
                if params.as_object().is_some_and(|p| !p.is_empty()) {
                    return Err(souk_engine::Error::Invalid(souk_engine::ValidationError::new(
                        "invalid_parameter",
                        "blend_graph",
                        format!("unknown parameters {params}; expected graph_weight and graph"),
                    )));
                }
                let mut blend = BlendParams::default();
                blend.parts.push(BlendPart { model: "graph".into(), params: graph_params, weight });
                let mut allowed: Vec<&str> = registry::MODELS.to_vec();
                allowed.push("graph");
                let part = |name: &str, params: &Value, data: &Interactions| match name {
                    "graph" => train_graph(&if params.is_null() { json!({}) } else { params.clone() }, data),
                    _ => registry::train_model(name, params, data),
                };
                Ok(Box::new(blend::train(data, &blend, &allowed, &part)?))
            }
            "content_knn" => Ok(Box::new(content::ContentKnn::new(rows()))),
            "als_content" => {
                let params: AlsParams = serde_json::from_value(params.clone()).map_err(|e| {
                    souk_engine::Error::Invalid(souk_engine::ValidationError::new(
                        "invalid_parameter",
                        "als_content",
                        e.to_string(),
                    ))
                })?;
                Ok(Box::new(content::AlsContent::train(data, &params, &rows())?))
            }
            _ => registry::train_model(name, params, data),
        }
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
    // The rankers learn from the impressions and feature rows served pages logged; the
    // ones serving until now stay unless the new ones beat them on the latest traffic.
    // An unreadable current generation is replaced, not an obstacle.
    let serving = saved_models(config).ok().flatten();
    let shop = open_shop(config, store, recommend, serving);
    let TrainReport { generation, manifest, ranker, search_ranker } = shop.train().context("training")?;
    let generation = generation.unwrap_or_default();
    let seconds = started.elapsed().as_secs_f64();
    if json {
        println!(
            "{}",
            json!({"generation": generation, "seconds": seconds, "manifest": manifest, "ranker": ranker, "search_ranker": search_ranker})
        );
    } else {
        println!(
            "trained {} on {} interactions ({} users, {} items) in {seconds:.2}s; saved as models/{generation}",
            manifest
                .models
                .iter()
                .chain(std::iter::once(&"itemknn".to_string()))
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            manifest.interactions,
            manifest.users,
            manifest.items
        );
    }
    Ok(())
}

/// Nothing to evaluate on (exit 8, `no_data`): import or ingest events first.
pub(crate) fn no_data(what: String) -> anyhow::Error {
    souk_engine::Error::Coded { code: "no_data", message: format!("{what}: import or ingest events first") }.into()
}
