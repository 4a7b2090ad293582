//! `souk bench recommend`: recommendation latency under concurrency against `souk serve` on
//! a generated, trained shop.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde_json::{json, Value};

use souk_engine::ids::UserId;
use souk_engine::serving::shop::RecommendAsk;

use crate::bench::harness::{latency_summary, load, machine, run_child, warm_up, Scratch, Server};
use crate::config::Config;
use crate::shared::{open_shop, open_store, saved_models};

#[derive(Debug, Args)]
pub struct RecommendArgs {
    /// Catalog items of the generated shop.
    #[arg(long, default_value_t = 100_000)]
    items: usize,
    /// Shoppers of the generated shop.
    #[arg(long, default_value_t = 50_000)]
    users: usize,
    /// Events of the generated shop.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds of measured load (after a warm-up).
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Items per request.
    #[arg(long, default_value_t = 10)]
    n: usize,
    /// Scratch directory; the generated, trained shop is kept there and reused.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Also time this many pages asked in this process, one after another on one thread
    /// (no server, no HTTP, no client sharing the cores): the engine's own time per page,
    /// steadier than the throughput under load for comparing two builds.
    #[arg(long, default_value_t = 0)]
    in_process: usize,
    /// Only the in-process pages (needs `--in-process`): no server is started.
    #[arg(long, requires = "in_process")]
    no_server: bool,
    /// Print the result as one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(config: &Config, args: RecommendArgs) -> anyhow::Result<()> {
    let RecommendArgs { items, users, events, clients, seconds, n, work_dir, in_process, no_server, json } = args;
    let scratch = Scratch::new(work_dir)?;
    let exe = std::env::current_exe().context("finding the souk executable")?;
    let data_dir = scratch.path().join(format!("shop-{items}-{users}-{events}"));
    let setup = prepare_shop(&exe, &data_dir, items, users, events)?;
    let mut report = json!({"machine": machine(), "shop": {"items": items, "users": users, "events": events, "seed": 42}, "setup": setup, "n": n});
    if !no_server {
        recommend_latency(&exe, &data_dir, users, clients.max(1), seconds, n, &mut report)?;
    }
    if in_process > 0 {
        report["in_process"] = pages_in_process(config, &data_dir, users, in_process, n)?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    if let Some(pages) = report.get("in_process") {
        let l = &pages["latency_ms"];
        println!(
            "recommend in process: {} pages, {:.0} pages/s on one thread, p50 {:.3} ms, p99 {:.3} ms",
            pages["pages"],
            pages["pages_per_second"].as_f64().unwrap_or(0.0),
            l["p50"].as_f64().unwrap_or(0.0),
            l["p99"].as_f64().unwrap_or(0.0)
        );
    }
    if !no_server {
        let l = &report["latency_ms"];
        println!(
            "recommend: {:.0} requests/s, latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} clients, {} errors)",
            report["requests_per_second"].as_f64().unwrap_or(0.0),
            l["p50"].as_f64().unwrap_or(0.0), l["p90"].as_f64().unwrap_or(0.0), l["p99"].as_f64().unwrap_or(0.0), l["max"].as_f64().unwrap_or(0.0),
            clients, report["errors"]
        );
    }
    Ok(())
}

/// `pages` "for you" pages of `n` items asked of the shop in `data_dir` in this process,
/// one after another, users in the same stride as the load's clients; the time of each.
fn pages_in_process(config: &Config, data_dir: &Path, users: usize, pages: usize, n: usize) -> anyhow::Result<Value> {
    let config = Config { data_dir: data_dir.to_path_buf(), ..config.clone() };
    let store = open_store(&config)?;
    let models = saved_models(&config)?.context("the shop has no trained models")?;
    let shop = open_shop(&config, store, config.recommend.clone(), Some(models));
    let user_at = |k: usize| UserId::parse(format!("u{:06}", k * 104_729 % users.max(1)), "user");
    // Warm-up: the content index and the caches a server builds at its first requests.
    for k in 0..pages.min(200) {
        shop.recommend(RecommendAsk::new(user_at(k + pages)?, n))?;
    }
    let mut latencies = Vec::with_capacity(pages);
    let started = Instant::now();
    for k in 0..pages {
        let ask = RecommendAsk::new(user_at(k)?, n);
        let one = Instant::now();
        shop.recommend(ask)?;
        latencies.push(one.elapsed().as_secs_f64() * 1000.0);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(json!({
        "pages": pages,
        "seconds": seconds,
        "pages_per_second": pages as f64 / seconds,
        "latency_ms": latency_summary(&mut latencies),
        "note": "one thread in the benchmark's process; no HTTP",
    }))
}

/// The load test: `clients` clients asking `souk serve` on `data_dir` for `seconds`; its
/// figures, added to `report`.
fn recommend_latency(
    exe: &Path,
    data_dir: &Path,
    users: usize,
    clients: usize,
    seconds: f64,
    n: usize,
    report: &mut Value,
) -> anyhow::Result<()> {
    let mut server = Server::start(exe, data_dir)?;
    let base = server.base.clone();
    let agent = ureq::AgentBuilder::new().build();
    warm_up(&agent, &|k| format!("{base}/v1/users/u{:06}/recommendations?n={n}", k * 7919 % users));
    eprintln!("bench: {clients} clients for {seconds}s");
    // A different start per client, then a stride that walks through all users.
    let mut measured = load(clients, seconds, &|c, k| {
        let user = (c * 7_919 % users.max(1) + k * 104_729) % users.max(1);
        format!("{base}/v1/users/u{user:06}/recommendations?n={n}")
    });
    let server_peak = server.peak_rss_bytes();
    server.stop();
    let figures = json!({
        "clients": clients,
        "seconds": measured.seconds,
        "requests": measured.latencies.len(),
        "errors": measured.errors,
        "requests_per_second": measured.latencies.len() as f64 / measured.seconds,
        "latency_ms": latency_summary(&mut measured.latencies),
        "server_peak_rss_bytes": server_peak,
        "note": "clients run on the same machine as the server and share its cores",
    });
    if let (Some(report), Value::Object(figures)) = (report.as_object_mut(), figures) {
        report.extend(figures);
    }
    Ok(())
}

/// Generate and train the shop unless an earlier run left it trained; what that took.
pub(super) fn prepare_shop(
    exe: &Path,
    data_dir: &Path,
    items: usize,
    users: usize,
    events: usize,
) -> anyhow::Result<Value> {
    let ready = data_dir.join("models").join("CURRENT").exists();
    let mut setup = json!({"reused": ready});
    if !ready {
        let _ = std::fs::remove_dir_all(data_dir);
        eprintln!("bench: generating {items} items, {users} users, {events} events");
        let started = Instant::now();
        let (i, u, e) = (items.to_string(), users.to_string(), events.to_string());
        run_child(exe, data_dir, &["gen", "--items", &i, "--users", &u, "--events", &e, "--seed", "42", "--json"])?;
        setup["gen_seconds"] = json!(started.elapsed().as_secs_f64());
        eprintln!("bench: training");
        let started = Instant::now();
        run_child(exe, data_dir, &["train"])?;
        setup["train_seconds"] = json!(started.elapsed().as_secs_f64());
    }
    Ok(setup)
}
