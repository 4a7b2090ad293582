//! `souk bench recommend`: recommendation latency under concurrency against `souk serve` on
//! a generated, trained shop.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde_json::{json, Value};

use crate::bench::harness::{latency_summary, load, machine, run_child, warm_up, Scratch, Server};

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
    /// Print the result as one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: RecommendArgs) -> anyhow::Result<()> {
    let RecommendArgs { items, users, events, clients, seconds, n, work_dir, json } = args;
    let scratch = Scratch::new(work_dir)?;
    let report = recommend_latency(scratch.path(), items, users, events, clients.max(1), seconds, n)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
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

fn recommend_latency(
    dir: &Path,
    items: usize,
    users: usize,
    events: usize,
    clients: usize,
    seconds: f64,
    n: usize,
) -> anyhow::Result<Value> {
    let exe = std::env::current_exe().context("finding the souk executable")?;
    let data_dir = dir.join(format!("shop-{items}-{users}-{events}"));
    let setup = prepare_shop(&exe, &data_dir, items, users, events)?;
    let mut server = Server::start(&exe, &data_dir)?;
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
    Ok(json!({
        "machine": machine(),
        "shop": {"items": items, "users": users, "events": events, "seed": 42},
        "setup": setup,
        "clients": clients,
        "n": n,
        "seconds": measured.seconds,
        "requests": measured.latencies.len(),
        "errors": measured.errors,
        "requests_per_second": measured.latencies.len() as f64 / measured.seconds,
        "latency_ms": latency_summary(&mut measured.latencies),
        "server_peak_rss_bytes": server_peak,
        "note": "clients run on the same machine as the server and share its cores",
    }))
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
