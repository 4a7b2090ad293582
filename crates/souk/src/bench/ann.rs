//! `souk bench ann`: the inverted-file index that serves the factor model's candidates,
//! measured ANN-benchmarks style on the live model's own vectors — the item factors as the
//! base, shoppers' factors as the queries, maximum inner product. The exact top `k` of every
//! query (a full scan) is the truth; for each probe depth the recall@k and the queries per
//! second on one thread; the build time and the index's memory. The vectors and the truth
//! are written as `.fvecs` / `.ivecs` (the texmex format ANN-benchmarks reads) so a
//! reference library runs on the identical input (`bench/ann_reference.py`).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use souk_engine::recommend::ivf::{exact_search, IvfIndex};
use souk_engine::recommend::{AlsModel, Artifact};
use souk_engine::serving::content::ContentIndexShape;
use souk_engine::store::artifacts::ArtifactStore;

use crate::bench::harness::machine;
use crate::config::Config;

#[derive(Debug, Args)]
pub struct AnnArgs {
    /// Queries (the factors of shoppers evenly spaced over the model's users).
    #[arg(long, default_value_t = 1_000)]
    queries: usize,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Comma list of probe depths (items scored exactly per query).
    #[arg(long, default_value = "1000,2000,4000,8000,16000,32000,64000")]
    probes: String,
    /// Where the vectors, queries and truth are written for the reference library
    /// (required with `--space factors`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the result as one JSON document instead of text.
    #[arg(long)]
    json: bool,
    /// Which vectors: `factors` (the ALS model's, for the collaborative candidates) or
    /// `content` (the catalog's content vectors, for the `content` source and `similar`).
    #[arg(long, default_value = "factors", value_parser = ["factors", "content"])]
    space: String,
    /// With `--space content`: comma list of the principal directions the index searches
    /// through (default: what serving uses).
    #[arg(long)]
    directions: Option<String>,
    /// With `--space content`: comma list of the candidates scored on the full rows beyond
    /// `k`, as a multiple of `k` (default: what serving uses).
    #[arg(long)]
    extra_per_k: Option<String>,
}

pub fn run(config: &Config, args: &AnnArgs) -> anyhow::Result<()> {
    let probes: Vec<usize> = args
        .probes
        .split(',')
        .map(|p| p.trim().parse::<usize>().with_context(|| format!("--probes expects numbers, found {p:?}")))
        .collect::<anyhow::Result<_>>()?;
    if args.space == "content" {
        let serving = souk_engine::serving::content::CONTENT_INDEX;
        let list = |text: &Option<String>, default: usize| -> anyhow::Result<Vec<usize>> {
            match text {
                None => Ok(vec![default]),
                Some(text) => text
                    .split(',')
                    .map(|p| p.trim().parse::<usize>().with_context(|| format!("expected numbers, found {p:?}")))
                    .collect(),
            }
        };
        let directions = list(&args.directions, serving.directions).context("--directions")?;
        let extras = list(&args.extra_per_k, serving.extra_per_k).context("--extra-per-k")?;
        let shapes: Vec<ContentIndexShape> = directions
            .iter()
            .flat_map(|&directions| {
                extras.iter().map(move |&extra_per_k| ContentIndexShape { directions, extra_per_k })
            })
            .collect();
        return super::ann_content::run(config, args.queries, args.k.max(1), &probes, &shapes, args.json);
    }
    let Some(out) = &args.out else { bail!("--out: where to write the vectors for the reference library") };
    let model = live_als(&config.data_dir)?;
    let dims = model.params.factors;
    let (n, k) = (model.n_items, args.k.max(1));
    if n <= k {
        bail!("the model has {n} items: too few for --k {k}");
    }
    // Shoppers evenly spaced over the model's numbering (which follows first appearance).
    let count = args.queries.clamp(1, model.n_users.max(1));
    let users: Vec<usize> = (0..count).map(|j| j * model.n_users / count).collect();
    let queries: Vec<&[f32]> = users.iter().map(|&u| &model.user_factors[u * dims..(u + 1) * dims]).collect();

    eprintln!("bench: exact top {k} of {} queries over {n} items", queries.len());
    let started = Instant::now();
    let truth: Vec<Vec<u32>> = queries
        .iter()
        .map(|q| exact_search(&model.item_factors, dims, q, k, &mut |_| false).into_iter().map(|(i, _)| i).collect())
        .collect();
    let exact_qps = queries.len() as f64 / started.elapsed().as_secs_f64();

    std::fs::create_dir_all(out)?;
    write_fvecs(&out.join("base.fvecs"), model.item_factors.chunks_exact(dims))?;
    write_fvecs(&out.join("queries.fvecs"), queries.iter().copied())?;
    write_ivecs(&out.join("truth.ivecs"), &truth)?;

    eprintln!("bench: building the index");
    let started = Instant::now();
    let index =
        IvfIndex::build(&model.item_factors, dims, IvfIndex::clusters_for(n), 42).with_copy(&model.item_factors);
    let build_seconds = started.elapsed().as_secs_f64();

    let mut curve = Vec::new();
    for &probe in &probes {
        let started = Instant::now();
        let found: Vec<Vec<u32>> = queries
            .iter()
            .map(|q| index.search(&model.item_factors, q, k, probe, |_| false).into_iter().map(|(i, _)| i).collect())
            .collect();
        let seconds = started.elapsed().as_secs_f64();
        curve.push(json!({"probe_items": probe, "recall": recall(&truth, &found), "queries_per_second": queries.len() as f64 / seconds}));
    }
    let report = json!({
        "machine": machine(),
        "vectors": {"items": n, "dims": dims, "queries": queries.len(), "k": k, "metric": "inner product",
            "source": "the live model's ALS item factors; queries: evenly spaced shoppers' factors"},
        "exact_scan_queries_per_second": exact_qps,
        "index": {"kind": "ivf", "clusters": IvfIndex::clusters_for(n), "build_seconds": build_seconds,
            "memory_bytes": index.memory_bytes(), "vectors_bytes": n * dims * 4,
            "memory_note": "the index's structures and its copy of the vectors in cluster order (as serving builds it)"},
        "curve": curve,
        "at_recall": {"0.9": first_at(&curve, 0.9), "0.95": first_at(&curve, 0.95)},
        "files": out,
        "note": "one thread, queries one at a time (as ANN-benchmarks runs them)",
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{n} items × {dims}, {} queries, exact scan {exact_qps:.0} queries/s; index built in {build_seconds:.2} s",
            queries.len()
        );
        for point in &curve {
            println!(
                "probe {:>7}  recall@{k} {:.4}  {:>8.0} queries/s",
                point["probe_items"],
                point["recall"].as_f64().unwrap_or(0.0),
                point["queries_per_second"].as_f64().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}

/// The ALS model of the data directory's live generation.
fn live_als(data_dir: &Path) -> anyhow::Result<AlsModel> {
    let generation =
        ArtifactStore::new(data_dir).current()?.context("the data directory has no trained models: run souk train")?;
    if !generation.exists("als.model") {
        bail!("the live model generation has no ALS model");
    }
    Ok(AlsModel::from_artifact(Artifact::read_from(&mut generation.open("als.model")?)?)?)
}

/// Mean share of the true top `k` found.
fn recall(truth: &[Vec<u32>], found: &[Vec<u32>]) -> f64 {
    let mut hits = 0usize;
    let mut total = 0usize;
    for (t, f) in truth.iter().zip(found) {
        total += t.len();
        hits += t.iter().filter(|i| f.contains(i)).count();
    }
    hits as f64 / total.max(1) as f64
}

/// The fastest point of the curve at or above `target` recall.
fn first_at(curve: &[Value], target: f64) -> Value {
    curve
        .iter()
        .filter(|p| p["recall"].as_f64().unwrap_or(0.0) >= target)
        .max_by(|a, b| {
            a["queries_per_second"].as_f64().unwrap_or(0.0).total_cmp(&b["queries_per_second"].as_f64().unwrap_or(0.0))
        })
        .cloned()
        .unwrap_or(Value::Null)
}

/// texmex `.fvecs`: per vector, its dimension (i32, little-endian) and its values (f32).
fn write_fvecs<'a>(path: &Path, rows: impl Iterator<Item = &'a [f32]>) -> anyhow::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?);
    for row in rows {
        out.write_all(&(row.len() as i32).to_le_bytes())?;
        for x in row {
            out.write_all(&x.to_le_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// texmex `.ivecs`: per row, its length (i32) and its values (i32).
fn write_ivecs(path: &Path, rows: &[Vec<u32>]) -> anyhow::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?);
    for row in rows {
        out.write_all(&(row.len() as i32).to_le_bytes())?;
        for &x in row {
            out.write_all(&(x as i32).to_le_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_counts_the_true_neighbours_found() {
        let truth = vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]];
        let found = vec![vec![4, 3, 9, 10], vec![5, 6, 7, 8]];
        assert!((recall(&truth, &found) - 0.75).abs() < 1e-12);
    }

    #[test]
    fn the_fastest_point_at_a_recall_is_chosen() {
        let curve = vec![
            json!({"probe_items": 1, "recall": 0.85, "queries_per_second": 900.0}),
            json!({"probe_items": 2, "recall": 0.91, "queries_per_second": 500.0}),
            json!({"probe_items": 4, "recall": 0.97, "queries_per_second": 200.0}),
        ];
        assert_eq!(first_at(&curve, 0.9)["probe_items"], 2);
        assert_eq!(first_at(&curve, 0.95)["probe_items"], 4);
        assert_eq!(first_at(&curve, 0.99), Value::Null);
    }

    #[test]
    fn vectors_files_are_texmex() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.fvecs");
        write_fvecs(&path, [[1.0f32, 2.0].as_slice(), [3.0, 4.0].as_slice()].into_iter()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 2 * (4 + 8));
        assert_eq!(i32::from_le_bytes(bytes[0..4].try_into().unwrap()), 2);
        assert_eq!(f32::from_le_bytes(bytes[16..20].try_into().unwrap()), 3.0);
    }
}
