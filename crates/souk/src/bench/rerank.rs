//! `souk bench rerank`: business rules and diversity over scored candidates, timed per call
//! in this process, against a plain sort of the same candidates.

use std::time::Instant;

use clap::Args;
use serde_json::{json, Value};
use souk_engine::rank::rerank::{bench_candidates, rerank};

use crate::bench::harness::latency_summary;

#[derive(Debug, Args)]
pub struct RerankArgs {
    /// Candidates per call.
    #[arg(long, default_value_t = 200)]
    candidates: usize,
    /// Items on the page.
    #[arg(long, default_value_t = 20)]
    n: usize,
    /// Timed calls.
    #[arg(long, default_value_t = 20_000)]
    iterations: usize,
    /// Random seed (the same seed gives the same data and figures).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print the result as one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &RerankArgs) -> anyhow::Result<()> {
    let &RerankArgs { candidates, n, iterations, seed, json } = args;
    let report = rerank_latency(candidates, n, iterations.max(1), seed);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let (r, s) = (&report["rerank_ms"], &report["sort_ms"]);
        println!(
            "rerank {} candidates → {} items: p50 {:.4} ms, p99 {:.4} ms, max {:.4} ms; plain sort p50 {:.4} ms ({:.1}× a sort at p50)",
            candidates, n,
            r["p50"].as_f64().unwrap_or(0.0), r["p99"].as_f64().unwrap_or(0.0), r["max"].as_f64().unwrap_or(0.0),
            s["p50"].as_f64().unwrap_or(0.0), report["ratio_p50"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(())
}

/// Time `rerank` on the seeded workload, and a plain score sort of the same candidates as
/// the reference, alternating so both see the same machine state.
fn rerank_latency(candidates: usize, n: usize, iterations: usize, seed: u64) -> Value {
    let (workload, rules) = bench_candidates(candidates, seed);
    let mut reranked = Vec::with_capacity(iterations);
    let mut sorted = Vec::with_capacity(iterations);
    let mut kept = 0usize;
    for _ in 0..iterations {
        let started = Instant::now();
        let out = rerank(&workload, &rules, n);
        reranked.push(started.elapsed().as_secs_f64() * 1e3);
        kept += out.len();
        // The reference: order the same candidates by score and copy the page's ids.
        let started = Instant::now();
        let mut order: Vec<usize> = (0..workload.len()).collect();
        order.sort_by(|a, b| workload[*b].score.total_cmp(&workload[*a].score));
        let input: Vec<String> = order.iter().take(n).map(|&i| workload[i].id.clone()).collect();
        sorted.push(started.elapsed().as_secs_f64() * 1e3);
        kept += input.len();
    }
    let rerank_ms = latency_summary(&mut reranked);
    let sort_ms = latency_summary(&mut sorted);
    let ratio = rerank_ms["p50"].as_f64().unwrap_or(0.0) / sort_ms["p50"].as_f64().unwrap_or(1.0).max(1e-9);
    json!({"candidates": candidates, "n": n, "iterations": iterations, "seed": seed,
        "rules": serde_json::to_value(&rules).unwrap_or_default(),
        "rerank_ms": rerank_ms, "sort_ms": sort_ms, "ratio_p50": ratio, "items_out": kept})
}
