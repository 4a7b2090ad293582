//! `souk bench search`: index build time (with and without embeddings), latency under
//! concurrency per mode against `souk serve` on a generated shop, and how soon a catalog
//! write is searchable.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use souk_engine::gen::Generator;

use crate::bench::harness::{
    latency_summary, load, machine, percentile, run_child, run_child_json, warm_up, Scratch, Server,
};
use crate::config::Config;
use crate::shared::generated_shop;

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Catalog items of the generated shop.
    #[arg(long, default_value_t = 100_000)]
    items: usize,
    /// Events of the generated shop (searches are judged on the catalog).
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Seconds of measured load per mode (after a warm-up).
    #[arg(long, default_value_t = 15.0)]
    seconds: f64,
    /// Comma list of keyword, semantic, hybrid (semantic and hybrid need
    /// embed.model_path).
    #[arg(long, default_value = "keyword,semantic,hybrid")]
    modes: String,
    /// Results per request.
    #[arg(long, default_value_t = 10)]
    n: usize,
    /// Scratch directory; the generated shop and its index are kept there and reused.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Print the result as one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// The shop and the load of one run.
struct Plan<'a> {
    items: usize,
    events: usize,
    clients: usize,
    seconds: f64,
    modes: &'a [String],
    n: usize,
}

pub fn run(config: &Config, args: SearchArgs) -> anyhow::Result<()> {
    let SearchArgs { items, events, clients, seconds, modes, n, work_dir, json } = args;
    let scratch = Scratch::new(work_dir)?;
    let modes: Vec<String> = modes.split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect();
    for mode in &modes {
        if !matches!(mode.as_str(), "keyword" | "semantic" | "hybrid") {
            bail!("--modes expects keyword, semantic or hybrid, found {mode:?}");
        }
    }
    let plan = Plan { items, events, clients: clients.max(1), seconds, modes: &modes, n };
    let report = search_latency(config, scratch.path(), &plan)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("index build: {}", report["index"]);
        for r in report["results"].as_array().into_iter().flatten() {
            let l = &r["latency_ms"];
            println!(
                "{:<8} {:>7.0} requests/s, latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} errors)",
                r["mode"].as_str().unwrap_or(""),
                r["requests_per_second"].as_f64().unwrap_or(0.0),
                l["p50"].as_f64().unwrap_or(0.0),
                l["p90"].as_f64().unwrap_or(0.0),
                l["p99"].as_f64().unwrap_or(0.0),
                l["max"].as_f64().unwrap_or(0.0),
                r["errors"]
            );
        }
    }
    Ok(())
}

fn search_latency(config: &Config, dir: &Path, plan: &Plan) -> anyhow::Result<Value> {
    let Plan { items, events, clients, seconds, modes, n } = *plan;
    let exe = std::env::current_exe().context("finding the souk executable")?;
    let data_dir = dir.join(format!("search-shop-{items}-{events}"));
    let model_dir = config.embed.model_path.clone();
    let embed_env: Vec<(&str, &str)> =
        if model_dir.is_empty() { Vec::new() } else { vec![("SOUK__EMBED__MODEL_PATH", model_dir.as_str())] };
    let wants_vectors = modes.iter().any(|m| m != "keyword");
    if wants_vectors && model_dir.is_empty() {
        bail!("semantic and hybrid search need a text embedder: set embed.model_path (or --modes keyword)");
    }
    if !data_dir.join("ground_truth.json").exists() {
        let _ = std::fs::remove_dir_all(&data_dir);
        eprintln!("bench: generating {items} items and {events} events");
        let (i, e) = (items.to_string(), events.to_string());
        run_child(
            &exe,
            &data_dir,
            &["gen", "--items", &i, "--users", "2000", "--events", &e, "--seed", "42", "--json"],
        )?;
    }
    let index = build_index(&exe, &data_dir, wants_vectors, &embed_env)?;
    let mut server = Server::start_with_env(&exe, &data_dir, &embed_env)?;
    let base = server.base.clone();
    let queries = bench_queries(&data_dir, 2_000)?;
    // An English-only model (a MiniLM folder) is not asked about Chinese queries: semantic
    // mode runs the English ones (hybrid runs all, Chinese ones on keywords alone).
    let english: Vec<String> = queries.iter().filter(|q| q.is_ascii()).cloned().collect();
    let english_only = std::path::Path::new(&model_dir).is_dir();
    let agent = ureq::AgentBuilder::new().build();
    let mut results = Vec::new();
    for mode in modes {
        let queries = if mode == "semantic" && english_only { &english } else { &queries };
        let label = if queries.len() == english.len() && english_only {
            "English only (the model reads no Chinese)"
        } else {
            "English and Chinese"
        };
        results.push(mode_latency(&agent, &base, mode, queries, label, plan));
    }
    let visible = write_to_searchable(&agent, &base)?;
    let server_peak = server.peak_rss_bytes();
    server.stop();
    Ok(json!({
        "machine": machine(),
        "shop": {"items": items, "events": events, "seed": 42},
        "index": index,
        "write_to_searchable_ms": {"p50": percentile(&visible, 0.5), "max": visible.last().copied().unwrap_or(0.0), "writes": visible.len()},
        "clients": clients,
        "seconds_per_mode": seconds,
        "n": n,
        "queries": "judged generator queries, English and Chinese alternating",
        "results": results,
        "server_peak_rss_bytes": server_peak,
        "note": "clients run on the same machine as the server and share its cores",
    }))
}

/// Build the keyword index from scratch, then (for semantic or hybrid modes) embed the
/// items, resuming where an earlier run stopped; the figures of both.
fn build_index(exe: &Path, data_dir: &Path, wants_vectors: bool, embed_env: &[(&str, &str)]) -> anyhow::Result<Value> {
    let _ = std::fs::remove_dir_all(data_dir.join("search").join("keyword"));
    let _ = std::fs::remove_file(data_dir.join("search").join("META.json"));
    eprintln!("bench: building the keyword index");
    let keyword = run_child_json(exe, data_dir, &["index", "--json"], &[])?;
    let mut index = json!({"keyword_build_seconds": keyword["build_seconds"], "items": keyword["items"]});
    if wants_vectors {
        let vectors = data_dir.join("search").join("vectors").join("text.vec");
        let reused = vectors.exists();
        eprintln!("bench: embedding items (resumes where an earlier run stopped)");
        let embedded = run_child_json(exe, data_dir, &["index", "--embed", "--json"], embed_env)?;
        index["embedding"] = embedded;
        index["embedding_resumed"] = json!(reused);
    }
    Ok(index)
}

/// Warm up, then measure one search mode; `label` says which queries were asked.
fn mode_latency(agent: &ureq::Agent, base: &str, mode: &str, queries: &[String], label: &str, plan: &Plan) -> Value {
    let Plan { clients, seconds, n, .. } = *plan;
    let encode = |q: &str| serde_urlencoded::to_string([("q", q)]).unwrap_or_default();
    warm_up(agent, &|k| format!("{base}/v1/search?{}&mode={mode}&n={n}", encode(&queries[k % queries.len()])));
    eprintln!("bench: {mode}: {clients} clients for {seconds}s");
    // Each client starts at its own query, then takes them in order.
    let mut measured = load(clients, seconds, &|c, k| {
        let q = (c * 211 % queries.len() + k) % queries.len();
        format!("{base}/v1/search?{}&mode={mode}&n={n}", encode(&queries[q]))
    });
    json!({
        "mode": mode,
        "queries": label,
        "requests": measured.latencies.len(),
        "errors": measured.errors,
        "requests_per_second": measured.latencies.len() as f64 / measured.seconds,
        "latency_ms": latency_summary(&mut measured.latencies),
    })
}

/// How soon a catalog write is searchable: PUT a new item, poll until it is found; the
/// milliseconds of 20 writes, sorted.
fn write_to_searchable(agent: &ureq::Agent, base: &str) -> anyhow::Result<Vec<f64>> {
    let mut visible = Vec::new();
    for k in 0..20 {
        let word = format!("zqxbench{k}x{}", std::process::id());
        let item = json!({"title": format!("Bench item {word}"), "brand": "Bench"});
        let t = Instant::now();
        agent.put(&format!("{base}/v1/items/bench-{word}")).send_json(item).context("putting a bench item")?;
        loop {
            let found: Value = agent.get(&format!("{base}/v1/search?q={word}&mode=keyword")).call()?.into_json()?;
            if found["total"].as_u64() > Some(0) {
                visible.push(t.elapsed().as_secs_f64() * 1e3);
                break;
            }
            if t.elapsed().as_secs() > 30 {
                bail!("a new item was not searchable after 30 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let _ = agent.delete(&format!("{base}/v1/items/bench-{word}")).call();
    }
    visible.sort_by(f64::total_cmp);
    Ok(visible)
}

/// Queries for load tests: judged queries of a generated shop, both languages mixed.
pub(super) fn bench_queries(data_dir: &Path, count: usize) -> anyhow::Result<Vec<String>> {
    let generator = Generator::new(generated_shop(data_dir)?)?;
    let mut queries: Vec<String> = Vec::with_capacity(count);
    for (a, b) in generator.search_cases(count.div_ceil(2), false, 7).into_iter().zip(generator.search_cases(
        count.div_ceil(2),
        true,
        7,
    )) {
        queries.push(a.query);
        queries.push(b.query);
    }
    Ok(queries)
}
