//! `souk index` (build the search index and embeddings) and `souk eval --protocol search`
//! (relevance on the generator's ground truth).

use std::time::Instant;

use anyhow::bail;
use serde_json::json;
use souk_engine::gen::Generator;
use souk_engine::search::relevance::judge;
use souk_engine::search::{Fusion, SearchIndex, SearchMode, TextEmbedder};
use souk_engine::store::Storage;

use crate::config::Config;
use crate::embed_cmd::load_embedder;
use crate::shared::{generated_shop, open_search, open_store};

/// Embed every catalog item that lacks a current vector, with a progress bar.
pub fn embed_all(
    config: &Config,
    index: &SearchIndex,
    store: &dyn Storage,
    embedder: &dyn TextEmbedder,
    show_progress: bool,
) -> anyhow::Result<usize> {
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("embedding {bar:40} {pos}/{len} items ({per_sec}, eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    if !show_progress {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut before = None;
    let done = index.embed_missing(store, embedder, config.embed.batch_size, &mut |p| {
        before.get_or_insert(p.done);
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
    })?;
    bar.finish_and_clear();
    Ok(done.done - before.unwrap_or(done.done))
}

/// `souk index`: open (build or reconcile) the search index, then embed what is missing.
pub fn index(config: &Config, embed: bool, json_out: bool) -> anyhow::Result<()> {
    let store = open_store(config)?;
    let started = Instant::now();
    let index = open_search(config, store.as_ref())?;
    let build_seconds = started.elapsed().as_secs_f64();
    let mut report = json!({"items": index.stats().items, "build_seconds": build_seconds});
    if embed {
        let Some(embedder) = load_embedder(&config.embed)? else {
            bail!("--embed needs a text embedder: set embed.model_path");
        };
        let started = Instant::now();
        let embedded = embed_all(config, &index, store.as_ref(), embedder.as_ref(), !json_out)?;
        report["embedded"] = json!(embedded);
        report["embed_seconds"] = json!(started.elapsed().as_secs_f64());
        report["embedder"] = json!(embedder.id());
        if embedded > 0 {
            report["sentences_per_second"] = json!(embedded as f64 / started.elapsed().as_secs_f64());
        }
    }
    index.commit()?;
    report["vector_spaces"] = json!(index.stats().vector_spaces);
    if json_out {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("search index: {report}");
    }
    Ok(())
}

/// `souk eval --protocol search`: graded NDCG@k of keyword, semantic and hybrid search in
/// English and Chinese on queries with known relevance.
pub fn eval_search(config: &Config, queries: usize, seed: u64, k: usize, json_out: bool) -> anyhow::Result<()> {
    let shop = generated_shop(&config.data_dir)?;
    let generator = Generator::new(shop)?;
    let store = open_store(config)?;
    let index = open_search(config, store.as_ref())?;
    let embedder = load_embedder(&config.embed)?;
    if let Some(embedder) = &embedder {
        embed_all(config, &index, store.as_ref(), embedder.as_ref(), !json_out)?;
    }
    index.commit()?;
    let rrf = Fusion::Rrf { k: config.search.rrf_k };
    let weighted = Fusion::Weighted { alpha: config.search.hybrid_alpha };
    let mut setups: Vec<(&str, SearchMode, Fusion)> = vec![("keyword", SearchMode::Keyword, rrf)];
    if embedder.is_some() {
        setups.push(("semantic", SearchMode::Semantic, rrf));
        setups.push(("hybrid-rrf", SearchMode::Hybrid, rrf));
        setups.push(("hybrid-weighted", SearchMode::Hybrid, weighted));
    } else {
        eprintln!("souk: no text embedder configured (embed.model_path): evaluating keyword search only");
    }
    let mut results = Vec::new();
    for (language, chinese) in [("en", false), ("zh", true)] {
        let cases = generator.search_cases(queries, chinese, seed);
        let reads = embedder.as_ref().is_some_and(|e| !chinese || e.multilingual());
        for (name, mode, fusion) in &setups {
            if *mode == SearchMode::Semantic && !reads {
                eprintln!("souk: the text embedder reads no Chinese: no semantic row for zh");
                continue;
            }
            let r = judge(&index, &cases, *mode, *fusion, embedder.as_deref(), k)?;
            results.push(json!({
                "model": name,
                "language": language,
                "params": {"fusion": fusion, "embedder": embedder.as_ref().map(|e| e.id().to_string()),
                    "vectors_used": *mode != SearchMode::Keyword && reads},
                "metrics": {
                    format!("ndcg@{k}"): r.ndcg,
                    format!("precision@{k}"): r.precision,
                    "mrr": r.mrr,
                    "zero_results": r.zero_results,
                    "mean_ms": r.mean_ms,
                },
            }));
        }
    }
    let report = json!({
        "protocol": "search",
        "dataset": {"data_dir": config.data_dir.display().to_string(), "items": shop.items, "shop_seed": shop.seed,
            "queries_per_language": queries, "query_seed": seed,
            "grades": "3 product type with the constraint, 2 product type, 1 same subcategory with the constraint"},
        "results": results,
    });
    if json_out {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{:<16} {:<4} {:>9} {:>9} {:>7} {:>7} {:>8}",
            "search",
            "lang",
            format!("ndcg@{k}"),
            "prec",
            "mrr",
            "zero",
            "ms/q"
        );
        for r in report["results"].as_array().into_iter().flatten() {
            let m = &r["metrics"];
            println!(
                "{:<16} {:<4} {:>9.4} {:>9.4} {:>7.4} {:>7.3} {:>8.2}",
                r["model"].as_str().unwrap_or(""),
                r["language"].as_str().unwrap_or(""),
                m[format!("ndcg@{k}")].as_f64().unwrap_or(0.0),
                m[format!("precision@{k}")].as_f64().unwrap_or(0.0),
                m["mrr"].as_f64().unwrap_or(0.0),
                m["zero_results"].as_f64().unwrap_or(0.0),
                m["mean_ms"].as_f64().unwrap_or(0.0),
            );
        }
    }
    Ok(())
}
