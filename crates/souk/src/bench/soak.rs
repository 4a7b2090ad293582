//! `souk bench soak`: a long mixed load against `souk serve` on a generated, trained shop —
//! event ingest, search, recommendations, similar items and catalog writes from a fixed
//! number of clients — reporting throughput and latency per route per minute, the server's
//! resident memory and stored events over time, and the stalls: moments when requests were
//! slow, grouped by overlap so that one pause that hits every route shows as one episode.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::{json, Value};

use crate::bench::harness::{latency_summary, machine, percentile, Scratch, Server};

#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Minutes of load.
    #[arg(long, default_value_t = 5.0)]
    minutes: f64,
    /// Concurrent clients, each sending one request after another.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Catalog items of the generated shop.
    #[arg(long, default_value_t = 5_000)]
    items: usize,
    /// Shoppers of the generated shop.
    #[arg(long, default_value_t = 2_000)]
    users: usize,
    /// Events of the generated shop before the soak.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Events per ingest request.
    #[arg(long, default_value_t = 20)]
    batch: usize,
    /// A request slower than this (ms) is part of a stall.
    #[arg(long, default_value_t = 250.0)]
    stall_ms: f64,
    /// Retrain in the background every this many seconds during the soak (0: never), as
    /// `recommend.retrain_seconds` does.
    #[arg(long, default_value_t = 0)]
    retrain_seconds: u64,
    /// Scratch directory; the generated, trained shop is kept there and copied per run.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Print the result as one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// What the clients ask for, with the share of requests each gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Ingest,
    Search,
    Recommend,
    Similar,
    CatalogWrite,
}

const ROUTES: [(Route, u32); 5] =
    [(Route::Search, 30), (Route::Recommend, 30), (Route::Ingest, 25), (Route::Similar, 10), (Route::CatalogWrite, 5)];

impl Route {
    fn name(self) -> &'static str {
        match self {
            Route::Ingest => "POST /v1/events",
            Route::Search => "GET /v1/search",
            Route::Recommend => "GET /v1/users/{id}/recommendations",
            Route::Similar => "GET /v1/items/{id}/similar",
            Route::CatalogWrite => "PUT /v1/items/{id}",
        }
    }

    fn pick(roll: u32) -> Route {
        let total: u32 = ROUTES.iter().map(|(_, share)| share).sum();
        let mut roll = roll % total;
        for (route, share) in ROUTES {
            if roll < share {
                return route;
            }
            roll -= share;
        }
        Route::Search
    }
}

/// One answered (or failed) request.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Start, in milliseconds since the soak began.
    start_ms: f64,
    latency_ms: f64,
    route: Route,
    ok: bool,
}

/// The server's memory and stored events at one moment.
#[derive(Debug, Clone, Copy)]
struct Gauge {
    second: f64,
    rss_bytes: u64,
    events: Option<u64>,
}

/// xorshift64*: a seeded, dependency-free stream of request choices per client.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

pub fn run(args: SoakArgs) -> anyhow::Result<()> {
    let scratch = Scratch::new(args.work_dir.clone())?;
    let report = soak(scratch.path(), &args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn soak(dir: &Path, args: &SoakArgs) -> anyhow::Result<Value> {
    let exe = std::env::current_exe().context("finding the souk executable")?;
    let shop = dir.join(format!("soak-shop-{}-{}-{}", args.items, args.users, args.events));
    let setup = super::recommend::prepare_shop(&exe, &shop, args.items, args.users, args.events)?;
    // Every run starts from the same trained shop: the soak writes into a copy.
    let data_dir = dir.join("soak-run");
    let _ = std::fs::remove_dir_all(&data_dir);
    copy_dir(&shop, &data_dir)?;
    let queries = super::search::bench_queries(&data_dir, 2_000)?;
    let retrain = args.retrain_seconds.to_string();
    let mut server = Server::start_with_env(&exe, &data_dir, &[("SOUK__RECOMMEND__RETRAIN_SECONDS", &retrain)])?;
    let pid = server.pid().to_string();
    let base = server.base.clone();
    let clients = args.clients.max(1);
    let duration = Duration::from_secs_f64(args.minutes.max(0.0) * 60.0);
    eprintln!("bench: soak of {:.1} minutes, {clients} clients", args.minutes);
    let started = Instant::now();
    let stop = started + duration;
    let (samples, gauges) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let (base, queries) = (&base, &queries);
                scope.spawn(move || client(c, base, queries, args, started, stop))
            })
            .collect();
        let gauges = watch(&pid, &base, started, stop);
        let samples: Vec<Sample> = handles.into_iter().filter_map(|h| h.join().ok()).flatten().collect();
        (samples, gauges)
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut gauges = gauges;
    // The last gauge: memory and stored events once the load has stopped.
    let events = ureq::get(&format!("{base}/v1/stats")).call().ok().and_then(|r| r.into_json::<Value>().ok());
    if let Some(rss_bytes) = rss_bytes(&pid) {
        let events = events.and_then(|stats| stats["events"].as_u64());
        gauges.push(Gauge { second: seconds, rss_bytes, events });
    }
    server.stop();
    Ok(summarise(args, clients, seconds, setup, &samples, &gauges))
}

/// One client's requests until `stop`.
fn client(c: usize, base: &str, queries: &[String], args: &SoakArgs, started: Instant, stop: Instant) -> Vec<Sample> {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let mut samples = Vec::new();
    let mut revision = 0u64;
    while Instant::now() < stop {
        let route = Route::pick(rng.next() as u32);
        let user = format!("u{:06}", rng.below(args.users));
        let item = format!("i{:06}", rng.below(args.items));
        let begun = Instant::now();
        let result = match route {
            Route::Search => {
                let query = &queries[rng.below(queries.len())];
                agent.get(&format!("{base}/v1/search")).query("q", query).query("user", &user).query("n", "10").call()
            }
            Route::Recommend => agent.get(&format!("{base}/v1/users/{user}/recommendations?n=10")).call(),
            Route::Similar => agent.get(&format!("{base}/v1/items/{item}/similar?n=10")).call(),
            Route::Ingest => {
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                let events: Vec<Value> = (0..args.batch.max(1))
                    .map(|_| {
                        let kind = ["view", "view", "view", "click", "add_to_cart", "purchase"][rng.below(6)];
                        json!({"type": kind, "user": format!("u{:06}", rng.below(args.users)),
                            "item": format!("i{:06}", rng.below(args.items)), "timestamp": now_ms})
                    })
                    .collect();
                agent.post(&format!("{base}/v1/events")).send_json(Value::Array(events))
            }
            Route::CatalogWrite => {
                revision += 1;
                let price = 5.0 + rng.below(20_000) as f64 / 100.0;
                agent.put(&format!("{base}/v1/items/{item}")).send_json(json!({
                    "title": format!("Soak item {item} revision {c}-{revision}"),
                    "category": "Soak > Revisions", "brand": "Soak", "price": price}))
            }
        };
        let ok = match result {
            Ok(response) => response.into_string().is_ok(),
            Err(_) => false,
        };
        let start_ms = begun.duration_since(started).as_secs_f64() * 1e3;
        samples.push(Sample { start_ms, latency_ms: begun.elapsed().as_secs_f64() * 1e3, route, ok });
    }
    samples
}

/// Every second until `stop`, the server's resident memory; every ten, its stored events.
fn watch(pid: &str, base: &str, started: Instant, stop: Instant) -> Vec<Gauge> {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
    let mut gauges = Vec::new();
    let mut tick = 0u64;
    while Instant::now() < stop {
        let events = tick
            .is_multiple_of(10)
            .then(|| agent.get(&format!("{base}/v1/stats")).call().ok()?.into_json::<Value>().ok()?["events"].as_u64())
            .flatten();
        if let Some(rss_bytes) = rss_bytes(pid) {
            gauges.push(Gauge { second: started.elapsed().as_secs_f64(), rss_bytes, events });
        }
        tick += 1;
        std::thread::sleep(Duration::from_secs(tick).saturating_sub(started.elapsed()));
    }
    gauges
}

/// Resident memory of a process now, from /proc (Linux), in bytes.
fn rss_bytes(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn summarise(
    args: &SoakArgs,
    clients: usize,
    seconds: f64,
    setup: Value,
    samples: &[Sample],
    gauges: &[Gauge],
) -> Value {
    // A last minute of under a second (the clients finishing) joins the one before.
    let minutes = ((seconds - 1.0) / 60.0).ceil().max(1.0) as usize;
    let mut per_minute = Vec::new();
    for minute in 0..minutes {
        let from = minute as f64 * 60_000.0;
        let to = if minute + 1 == minutes { f64::INFINITY } else { (minute + 1) as f64 * 60_000.0 };
        let in_minute: Vec<&Sample> = samples.iter().filter(|s| s.start_ms >= from && s.start_ms < to).collect();
        let span = ((seconds * 1e3).min(to) - from).max(1.0) / 1e3;
        let mut routes = serde_json::Map::new();
        for (route, _) in ROUTES {
            let mut latencies: Vec<f64> =
                in_minute.iter().filter(|s| s.route == route && s.ok).map(|s| s.latency_ms).collect();
            latencies.sort_by(f64::total_cmp);
            let errors = in_minute.iter().filter(|s| s.route == route && !s.ok).count();
            routes.insert(
                route.name().into(),
                json!({"requests": latencies.len(), "errors": errors, "p50": percentile(&latencies, 0.5),
                    "p99": percentile(&latencies, 0.99), "max": latencies.last().copied().unwrap_or(0.0)}),
            );
        }
        let gauge = gauges.iter().rfind(|g| g.second * 1e3 < to);
        let events = gauges.iter().rfind(|g| g.second * 1e3 < to && g.events.is_some()).and_then(|g| g.events);
        per_minute.push(json!({
            "minute": minute + 1,
            "requests_per_second": in_minute.iter().filter(|s| s.ok).count() as f64 / span,
            "routes": routes,
            "rss_bytes": gauge.map(|g| g.rss_bytes),
            "rss_max_bytes": gauges.iter().filter(|g| g.second * 1e3 >= from && g.second * 1e3 < to).map(|g| g.rss_bytes).max(),
            "events": events,
        }));
    }
    let mut routes = serde_json::Map::new();
    for (route, share) in ROUTES {
        let mut latencies: Vec<f64> =
            samples.iter().filter(|s| s.route == route && s.ok).map(|s| s.latency_ms).collect();
        let errors = samples.iter().filter(|s| s.route == route && !s.ok).count();
        routes.insert(
            route.name().into(),
            json!({"share": share, "requests": latencies.len(), "errors": errors,
                "requests_per_second": latencies.len() as f64 / seconds.max(1e-9),
                "latency_ms": latency_summary(&mut latencies)}),
        );
    }
    json!({
        "machine": machine(),
        "shop": {"items": args.items, "users": args.users, "events": args.events, "seed": 42},
        "setup": setup,
        "clients": clients,
        "ingest_batch": args.batch,
        "retrain_seconds": args.retrain_seconds,
        "seconds": seconds,
        "requests": samples.iter().filter(|s| s.ok).count(),
        "errors": samples.iter().filter(|s| !s.ok).count(),
        "requests_per_second": samples.iter().filter(|s| s.ok).count() as f64 / seconds.max(1e-9),
        "routes": routes,
        "per_minute": per_minute,
        "rss": rss_summary(gauges),
        "stalls": stalls(samples, args.stall_ms),
        "note": "clients run on the same machine as the server and share its cores",
    })
}

/// Resident memory after the first minute (warm-up) against the end, and per stored event.
fn rss_summary(gauges: &[Gauge]) -> Value {
    let warm = gauges.iter().find(|g| g.second >= 60.0).or(gauges.first());
    let last = gauges.last();
    let events_at = |g: &Gauge| gauges.iter().filter(|e| e.second <= g.second).rev().find_map(|e| e.events);
    match (warm, last) {
        (Some(warm), Some(last)) => {
            let grown = last.rss_bytes as f64 - warm.rss_bytes as f64;
            let added = match (events_at(warm), events_at(last)) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                _ => None,
            };
            json!({"after_warm_up_bytes": warm.rss_bytes, "at_end_bytes": last.rss_bytes,
                "max_bytes": gauges.iter().map(|g| g.rss_bytes).max(), "grown_bytes": grown,
                "events_added_meanwhile": added,
                "grown_bytes_per_added_event": added.filter(|&a| a > 0).map(|a| grown / a as f64),
                "every_10_s": gauges.iter().step_by(10).map(|g| json!([g.second.round(), g.rss_bytes])).collect::<Vec<_>>()})
        }
        _ => json!(null),
    }
}

/// Slow requests (over `stall_ms`) grouped into episodes of overlapping time: the worst
/// twenty episodes, each with its start, its span, the routes it hit and its slowest request.
fn stalls(samples: &[Sample], stall_ms: f64) -> Value {
    let mut slow: Vec<&Sample> = samples.iter().filter(|s| s.latency_ms > stall_ms).collect();
    slow.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
    let mut episodes: Vec<Vec<&Sample>> = Vec::new();
    let mut end = f64::NEG_INFINITY;
    for sample in slow {
        if sample.start_ms > end || episodes.is_empty() {
            episodes.push(Vec::new());
        }
        end = end.max(sample.start_ms + sample.latency_ms);
        if let Some(episode) = episodes.last_mut() {
            episode.push(sample);
        }
    }
    let count = episodes.len();
    episodes.sort_by(|a, b| max_latency(b).total_cmp(&max_latency(a)));
    let worst: Vec<Value> = episodes
        .iter()
        .take(20)
        .map(|episode| {
            let start = episode.iter().map(|s| s.start_ms).fold(f64::INFINITY, f64::min);
            let finish = episode.iter().map(|s| s.start_ms + s.latency_ms).fold(0.0, f64::max);
            let mut routes: Vec<&str> = episode.iter().map(|s| s.route.name()).collect();
            routes.sort_unstable();
            routes.dedup();
            json!({"at_second": start / 1e3, "span_ms": finish - start, "requests": episode.len(),
                "routes": routes, "max_latency_ms": max_latency(episode)})
        })
        .collect();
    json!({"threshold_ms": stall_ms, "episodes": count, "worst": worst})
}

fn max_latency(episode: &[&Sample]) -> f64 {
    episode.iter().map(|s| s.latency_ms).fold(0.0, f64::max)
}

fn print_table(report: &Value) {
    println!(
        "soak: {:.0} s, {} clients, {:.0} requests/s, {} errors",
        report["seconds"].as_f64().unwrap_or(0.0),
        report["clients"],
        report["requests_per_second"].as_f64().unwrap_or(0.0),
        report["errors"]
    );
    let short = ["ingest", "search", "recommend", "similar", "catalog"];
    let mut header = format!("{:>6} {:>8} {:>9} {:>10}", "minute", "req/s", "RSS MiB", "events");
    for name in short {
        header.push_str(&format!(" {:>17}", format!("{name} p50/p99")));
    }
    println!("{header}");
    for minute in report["per_minute"].as_array().into_iter().flatten() {
        let mib = minute["rss_bytes"].as_f64().unwrap_or(0.0) / (1024.0 * 1024.0);
        let mut line = format!(
            "{:>6} {:>8.0} {:>9.0} {:>10}",
            minute["minute"],
            minute["requests_per_second"].as_f64().unwrap_or(0.0),
            mib,
            minute["events"]
        );
        for (route, _) in [ROUTES[2], ROUTES[0], ROUTES[1], ROUTES[3], ROUTES[4]] {
            let r = &minute["routes"][route.name()];
            line.push_str(&format!(
                " {:>17}",
                format!("{:.1}/{:.1}", r["p50"].as_f64().unwrap_or(0.0), r["p99"].as_f64().unwrap_or(0.0))
            ));
        }
        println!("{line}");
    }
    println!("rss: {}", report["rss"]);
    println!("stalls over {} ms: {} episodes", report["stalls"]["threshold_ms"], report["stalls"]["episodes"]);
    for episode in report["stalls"]["worst"].as_array().into_iter().flatten().take(10) {
        println!("  {episode}");
    }
}

/// Copy a data directory (files and folders; the server is not running on it).
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).with_context(|| format!("copying to {}", target.display()))?;
        }
    }
    Ok(())
}
