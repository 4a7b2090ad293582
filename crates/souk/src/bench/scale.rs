//! `souk bench scale`: the life of a large shop on one machine, phase by phase, each phase
//! its own process with its own wall time and peak memory (the kernel's accounting, see
//! [`run_measured`]): generate the shop as files (streaming), import them, train the default
//! model set, build the keyword index, embed a timed share of the catalog (when a text
//! embedder is configured; the whole catalog's time is extrapolated from it), then serve:
//! recommendations and keyword search under concurrency, and recommendations again while a
//! retraining runs in the same server.
//!
//! Phases whose output a kept `--work-dir` already holds are reused (said in the report), so
//! a run that stopped can be resumed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use souk_engine::gen::{GenConfig, Generator};

use crate::bench::harness::{
    latency_summary, load, machine, paced_load, percentile, run_measured, warm_up, Load, Scratch, Server,
};

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Catalog items of the generated shop.
    #[arg(long, default_value_t = 1_000_000)]
    items: usize,
    /// Shoppers of the generated shop.
    #[arg(long, default_value_t = 1_000_000)]
    users: usize,
    /// Events of the generated shop.
    #[arg(long, default_value_t = 20_000_000)]
    events: usize,
    /// Concurrent clients of each load.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds of each measured load (after a warm-up).
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// A sentence-embedding model folder (as `embed.model_path` takes): the catalog
    /// embedding is timed with it. Only that phase uses it, so the server measured after it
    /// does not embed in the background.
    #[arg(long)]
    embed_model: Option<String>,
    /// Seconds of catalog embedding to time (with --embed-model); 0 skips it.
    #[arg(long, default_value_t = 120.0)]
    embed_seconds: f64,
    /// Skip the load during a retraining (the longest part).
    #[arg(long)]
    no_retrain: bool,
    /// The load beside the retraining, as a share of the recommendation throughput measured
    /// just before: sent at that fixed rate (open loop), first without and then during the
    /// retraining, and the two p99 compared.
    #[arg(long, default_value_t = 0.5)]
    retrain_load: f64,
    /// Scratch directory; the shop's files and data directory are kept there and reused.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Print the result as one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ScaleArgs) -> anyhow::Result<()> {
    let scratch = Scratch::new(args.work_dir.clone())?;
    let report = scale(scratch.path(), &args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    for phase in report["phases"].as_array().into_iter().flatten() {
        println!(
            "{:<28} {:>9.1} s  peak {:>6} MiB{}",
            phase["phase"].as_str().unwrap_or(""),
            phase["seconds"].as_f64().unwrap_or(0.0),
            phase["peak_rss_bytes"].as_u64().unwrap_or(0) >> 20,
            if phase["reused"].as_bool() == Some(true) { "  (reused)" } else { "" }
        );
    }
    for load in report["serving"].as_array().into_iter().flatten() {
        let l = &load["latency_ms"];
        println!(
            "{:<28} {:>7.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} errors)",
            load["load"].as_str().unwrap_or(""),
            load["requests_per_second"].as_f64().unwrap_or(0.0),
            l["p50"].as_f64().unwrap_or(0.0),
            l["p99"].as_f64().unwrap_or(0.0),
            l["max"].as_f64().unwrap_or(0.0),
            load["errors"]
        );
    }
    println!("server peak {} MiB", report["server_peak_rss_bytes"].as_u64().unwrap_or(0) >> 20);
    Ok(())
}

fn scale(dir: &Path, args: &ScaleArgs) -> anyhow::Result<Value> {
    let exe = std::env::current_exe().context("finding the souk executable")?;
    let shop = GenConfig { items: args.items, users: args.users, events: args.events, seed: 42 };
    let name = format!("{}-{}-{}", args.items, args.users, args.events);
    let files = dir.join(format!("files-{name}"));
    let data_dir = dir.join(format!("data-{name}"));
    let mut phases = Vec::new();

    let (i, u, e) = (args.items.to_string(), args.users.to_string(), args.events.to_string());
    let out = files.to_string_lossy().into_owned();
    phases.push(phase("generate (files)", files.join("ground_truth.json").exists(), || {
        let _ = std::fs::remove_dir_all(&files);
        let gen = ["gen", "--out", &out, "--items", &i, "--users", &u, "--events", &e, "--seed", "42", "--json"];
        run_measured(&exe, &data_dir, &gen, &[])
    })?);
    let imported = data_dir.join("scale-imported");
    phases.push(phase("import", imported.exists(), || {
        let _ = std::fs::remove_dir_all(&data_dir);
        let paths: Vec<String> = ["items", "users", "follows", "events"]
            .iter()
            .map(|f| files.join(format!("{f}.jsonl")).to_string_lossy().into_owned())
            .collect();
        let mut import = vec!["import", "--format", "jsonl", "--json"];
        import.extend(paths.iter().map(String::as_str));
        let measured = run_measured(&exe, &data_dir, &import, &[])?;
        std::fs::write(&imported, &measured.stdout)?;
        Ok(measured)
    })?);
    phases.push(phase("train", data_dir.join("models").join("CURRENT").exists(), || {
        run_measured(&exe, &data_dir, &["train", "--json"], &[])
    })?);
    phases.push(phase("keyword index", data_dir.join("search").join("META.json").exists(), || {
        run_measured(&exe, &data_dir, &["index", "--json"], &[])
    })?);
    let embedding = embed_share(&exe, &data_dir, args)?;

    let mut server = Server::start(&exe, &data_dir)?;
    let base = server.base.clone();
    let agent = ureq::AgentBuilder::new().build();
    let users = args.users.max(1);
    let recommend = |c: usize, k: usize| {
        let user = (c * 7_919 % users + k * 104_729) % users;
        format!("{base}/v1/users/u{user:06}/recommendations?n=10")
    };
    let mut serving = Vec::new();
    warm_up(&agent, &|k| recommend(0, k));
    eprintln!("bench: recommendations, {} clients for {}s", args.clients, args.seconds);
    let quiet = load(args.clients, args.seconds, &recommend);
    let capacity = quiet.latencies.len() as f64 / quiet.seconds.max(1e-9);
    serving.push(summary("recommendations", quiet));
    let queries = queries(shop, 2_000)?;
    let encode = |q: &str| serde_urlencoded::to_string([("q", q)]).unwrap_or_default();
    let search = |c: usize, k: usize| {
        let q = (c * 211 % queries.len() + k) % queries.len();
        format!("{base}/v1/search?{}&mode=keyword&n=10", encode(&queries[q]))
    };
    warm_up(&agent, &|k| search(0, k));
    eprintln!("bench: keyword search, {} clients for {}s", args.clients, args.seconds);
    serving.push(summary("keyword search", load(args.clients, args.seconds, &search)));
    // A failure here (the server killed for memory, say) is a finding, reported with the rest.
    let retrain = if args.no_retrain {
        json!({"not_measured": "skipped (--no-retrain)"})
    } else {
        let rate = (capacity * args.retrain_load).max(1.0);
        eprintln!("bench: recommendations at {rate:.0} req/s, then the same while a retraining runs");
        let before = paced_load(args.clients, args.seconds, rate, &recommend);
        let before_p99 = percentile_of(&before.latencies, 0.99);
        serving.push(summary(&format!("recommendations at {rate:.0} req/s"), before));
        match during_retraining(&agent, &base, args, rate, &recommend) {
            Ok((during, mut retrain)) => {
                let during_p99 = percentile_of(&during.latencies, 0.99);
                serving.push(summary(&format!("recommendations at {rate:.0} req/s (retraining)"), during));
                retrain["load_requests_per_second"] = json!(rate);
                retrain["p99_ratio"] = json!(during_p99 / before_p99.max(1e-9));
                retrain
            }
            Err(e) => json!({"not_measured": format!("{e:#}")}),
        }
    };
    let server_peak = server.peak_rss_bytes();
    server.stop();
    Ok(json!({
        "machine": machine(),
        "shop": shop,
        "phases": phases,
        "embedding": embedding,
        "serving": serving,
        "retraining": retrain,
        "hybrid_search": "not measured here: it needs the whole catalog embedded (see embedding for the time that takes); the vector search's cost at this size is measured by souk bench ann",
        "server_peak_rss_bytes": server_peak,
        "note": "each phase is its own process (peak memory: the kernel's maximum resident set of that process); clients run on the same machine as the server and share its cores",
    }))
}

/// Run a phase unless `reused` (its output is there from an earlier run).
fn phase(
    name: &str,
    reused: bool,
    run: impl FnOnce() -> anyhow::Result<crate::bench::harness::Measured>,
) -> anyhow::Result<Value> {
    if reused {
        eprintln!("bench: {name}: reusing the earlier run's output");
        return Ok(json!({"phase": name, "reused": true}));
    }
    eprintln!("bench: {name}");
    let measured = run()?;
    let output = measured.json().unwrap_or(Value::Null);
    Ok(json!({"phase": name, "reused": false, "seconds": measured.seconds,
        "peak_rss_bytes": measured.peak_rss_bytes, "output": output}))
}

fn summary(name: &str, mut measured: Load) -> Value {
    json!({
        "load": name,
        "requests": measured.latencies.len(),
        "errors": measured.errors,
        "seconds": measured.seconds,
        "requests_per_second": measured.latencies.len() as f64 / measured.seconds.max(1e-9),
        "latency_ms": latency_summary(&mut measured.latencies),
    })
}

/// Judged queries of the generated shop, English and Chinese alternating.
fn queries(shop: GenConfig, count: usize) -> anyhow::Result<Vec<String>> {
    let generator = Generator::new(shop)?;
    let english = generator.search_cases(count.div_ceil(2), false, 7);
    let chinese = generator.search_cases(count.div_ceil(2), true, 7);
    let queries: Vec<String> = english.into_iter().zip(chinese).flat_map(|(a, b)| [a.query, b.query]).collect();
    if queries.is_empty() {
        bail!("the generated shop has no search cases");
    }
    Ok(queries)
}

/// Embed the catalog for `embed_seconds` (resumable: the next run goes on from there) and
/// extrapolate the whole catalog's time from the rate.
fn embed_share(exe: &Path, data_dir: &Path, args: &ScaleArgs) -> anyhow::Result<Value> {
    let Some(model) = args.embed_model.as_deref().filter(|_| args.embed_seconds > 0.0) else {
        return Ok(json!({"skipped": "no --embed-model, or --embed-seconds 0"}));
    };
    let vectors = data_dir.join("search").join("vectors").join("text.vec");
    let before = embedded_items(&vectors)?;
    eprintln!("bench: embedding the catalog for {} s", args.embed_seconds);
    let mut child = std::process::Command::new(exe)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["index", "--embed", "--json"])
        .env("SOUK__EMBED__MODEL_PATH", model)
        .env("SOUK__LOG__LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("starting the embedding")?;
    let started = Instant::now();
    while started.elapsed().as_secs_f64() < args.embed_seconds {
        if child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    let after = embedded_items(&vectors)?;
    let rate = (after.saturating_sub(before)) as f64 / seconds;
    Ok(json!({
        "seconds": seconds,
        "items_embedded": after.saturating_sub(before),
        "items_per_second": rate,
        "catalog_hours_at_this_rate": if rate > 0.0 { args.items as f64 / rate / 3600.0 } else { f64::INFINITY },
        "note": "timed share of `souk index --embed` (stopped after the time; what it wrote stays and a later run resumes)",
    }))
}

fn embedded_items(vectors: &Path) -> anyhow::Result<usize> {
    if !vectors.exists() {
        return Ok(0);
    }
    Ok(souk_engine::search::vectors::VectorSpace::open("text", vectors, 0)?.len())
}

/// Recommendations at `rate` per second while `POST /v1/train?wait=false` retrains in the
/// same server: paced loads of two seconds one after another until the training job ends.
fn during_retraining(
    agent: &ureq::Agent,
    base: &str,
    args: &ScaleArgs,
    rate: f64,
    recommend: &(dyn Fn(usize, usize) -> String + Sync),
) -> anyhow::Result<(Load, Value)> {
    let job: Value = agent.post(&format!("{base}/v1/train?wait=false")).call()?.into_json()?;
    let id = job["id"].as_str().context("the training job's id")?.to_string();
    let started = Instant::now();
    let mut all = Load { latencies: Vec::new(), errors: 0, seconds: 0.0 };
    let finished = loop {
        let part = paced_load(args.clients, 2.0, rate, recommend);
        all.latencies.extend(part.latencies);
        all.errors += part.errors;
        all.seconds += part.seconds;
        let job: Value = agent.get(&format!("{base}/v1/jobs/{id}")).call()?.into_json()?;
        match job["state"].as_str() {
            Some("done") => break job,
            Some("failed") => bail!("the retraining failed: {}", job["message"]),
            _ => {}
        }
    };
    Ok((all, json!({"job": finished, "seconds": started.elapsed().as_secs_f64()})))
}

/// The `q` quantile of unsorted milliseconds (0 for none).
fn percentile_of(latencies: &[f64], q: f64) -> f64 {
    let mut sorted = latencies.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile(&sorted, q)
}
