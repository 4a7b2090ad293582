//! `souk bench ann --space content`: the index behind the `content` recall source, on the
//! catalog's own content vectors (hashed catalog features, the text vector where the search
//! index holds one, the shop's own vectors: the rows serving builds), maximum inner
//! product. Queries are the content vectors of items evenly spaced over the catalog, each
//! excluding itself (what `similar` asks). The exact scan (blocked as a matrix product)
//! gives each query's `k`-th best score, and recall is ANN-benchmarks' k-nn recall: a result
//! counts when it scores at least that (a catalog has many items of identical content, and
//! any of a tie is a right answer). Per probe depth, the recall@k and queries per second on
//! one thread of the inverted file over the full rows (what served before) and of the index
//! through the rows' principal directions (what serves now) for each shape asked for, with
//! their build times and memory.

use std::time::Instant;

use anyhow::bail;
use serde_json::{json, Value};
use souk_engine::model::Item;
use souk_engine::recommend::content::ContentRows;
use souk_engine::recommend::ivf::{IvfIndex, TopK};
use souk_engine::recommend::projected::ProjectedIndex;
use souk_engine::search::vectors::VectorSpace;
use souk_engine::serving::content::{content_rows_of, ContentIndexShape, CONTENT_INDEX_EFFORT};

use crate::bench::harness::machine;
use crate::config::Config;
use crate::shared::open_store;

/// One index's search: the best of a query item's neighbours among those a skip lets
/// through.
type Search<'a> = dyn Fn(usize, &mut dyn FnMut(u32) -> bool) -> Vec<(u32, f32)> + 'a;

/// Queries scored against one block of rows at a time when computing the truth.
const TRUTH_BLOCK: usize = 4_096;

pub fn run(
    config: &Config,
    queries: usize,
    k: usize,
    probes: &[usize],
    shapes: &[ContentIndexShape],
    json_out: bool,
) -> anyhow::Result<()> {
    if probes.is_empty() || shapes.is_empty() {
        bail!("--probes, --directions and --extra-per-k need at least one value each");
    }
    let store = open_store(config)?;
    eprintln!("bench: reading the catalog");
    let mut items: Vec<Item> = Vec::new();
    store.scan_items(&mut |item| {
        items.push(item);
        Ok(())
    })?;
    let ids: Vec<String> = items.iter().map(|i| i.id.to_string()).collect();
    let text_path = config.data_dir.join("search").join("vectors").join("text.vec");
    let text = if text_path.exists() { Some(VectorSpace::open("text", &text_path, 0)?) } else { None };
    let content = content_rows_of(&items, &ids, text.as_ref());
    drop(items);
    let (n, dim) = (content.len(), content.dim);
    if n <= k + 1 {
        bail!("the catalog has {n} items: too few for --k {k}");
    }
    let with_content: Vec<usize> = (0..n).filter(|&i| content.has(i)).collect();
    let count = queries.clamp(1, with_content.len().max(1));
    let chosen: Vec<usize> = (0..count).map(|j| with_content[j * with_content.len() / count]).collect();

    eprintln!("bench: exact top {k} of {count} queries over {n} items × {dim}");
    let started = Instant::now();
    let kth = exact_kth(&content, &chosen, k);
    let exact_seconds = started.elapsed().as_secs_f64();

    let clusters = IvfIndex::clusters_for(n);
    let measure = |search: &Search<'_>| -> (f64, f64) {
        let started = Instant::now();
        let found: Vec<Vec<(u32, f32)>> = chosen.iter().map(|&q| search(q, &mut |i| i as usize == q)).collect();
        let seconds = started.elapsed().as_secs_f64();
        (recall_by_score(&kth, &found, k), chosen.len() as f64 / seconds)
    };
    let point = |probe: usize, extra: Option<usize>, (recall, qps): (f64, f64)| json!({"probe_items": probe, "extra": extra, "recall": recall, "queries_per_second": qps});
    let mut indexes = Vec::new();
    eprintln!("bench: building the inverted file over the full rows");
    let started = Instant::now();
    let full = IvfIndex::build_with(&content.rows, dim, clusters, 11, CONTENT_INDEX_EFFORT);
    let build = started.elapsed().as_secs_f64();
    let (index, rows) = (&full, &content);
    let full_search = |probe: usize| {
        move |q: usize, skip: &mut dyn FnMut(u32) -> bool| index.search(&rows.rows, rows.row(q), k, probe, skip)
    };
    measure(&full_search(probes[0])); // warm-up: the first pass pages the rows in
    let curve: Vec<Value> = probes.iter().map(|&probe| point(probe, None, measure(&full_search(probe)))).collect();
    indexes.push(json!({"kind": "ivf over the full rows, read from their array", "clusters": clusters,
        "build_seconds": build, "memory_bytes": full.memory_bytes(), "curve": curve}));
    drop(full);
    let mut directions: Vec<usize> = shapes.iter().map(|s| s.directions).collect();
    directions.dedup();
    for reduced in directions {
        eprintln!("bench: building the index through {reduced} principal directions");
        let started = Instant::now();
        let Some(projected) = ProjectedIndex::build(&content.rows, dim, reduced, clusters, 11, CONTENT_INDEX_EFFORT)
        else {
            bail!("the principal directions of the content rows could not be computed");
        };
        let build = started.elapsed().as_secs_f64();
        let (index, rows) = (&projected, &content);
        let projected_search = |probe: usize, extra: usize| {
            move |q: usize, skip: &mut dyn FnMut(u32) -> bool| {
                index.search(&rows.rows, rows.row(q), k, probe, extra, skip)
            }
        };
        measure(&projected_search(probes[0], shapes[0].extra(k))); // warm-up
        let mut curve = Vec::new();
        for shape in shapes.iter().filter(|s| s.directions == reduced) {
            let extra = shape.extra(k);
            for &probe in probes {
                curve.push(point(probe, Some(extra), measure(&projected_search(probe, extra))));
            }
        }
        indexes.push(json!({"kind": "ivf over the rows' principal directions (copy in cluster order), candidates scored on the full rows",
            "directions": reduced, "clusters": clusters, "build_seconds": build,
            "memory_bytes": projected.memory_bytes(), "curve": curve}));
    }
    let report = json!({
        "machine": machine(),
        "vectors": {"items": n, "dims": dim, "queries": count, "k": k, "metric": "inner product",
            "source": "the catalog's content vectors as serving builds them; queries: items evenly spaced over the catalog, each excluding itself"},
        "recall": "ANN-benchmarks' k-nn recall: a result counts when its inner product reaches the k-th exact one's (many catalog items have identical content, and any of a tie is right)",
        "exact_scan_queries_per_second": count as f64 / exact_seconds,
        "indexes": indexes,
        "rows_bytes": n * dim * 4,
        "note": "one thread, queries one at a time",
    });
    if json_out {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{n} items × {dim}, {count} queries");
        for index in report["indexes"].as_array().into_iter().flatten() {
            let name = index["directions"].as_u64().map_or("full rows".to_string(), |d| format!("{d} directions"));
            for point in index["curve"].as_array().into_iter().flatten() {
                print_point(&name, k, point);
            }
        }
    }
    Ok(())
}

/// The share of the results whose inner product reaches the k-th exact one (each query's
/// count capped at `k`): ties at the k-th score are all right answers.
fn recall_by_score(kth: &[f32], found: &[Vec<(u32, f32)>], k: usize) -> f64 {
    let hits: usize = kth
        .iter()
        .zip(found)
        .map(|(&kth, found)| found.iter().filter(|(_, s)| *s >= kth - 1e-4 * kth.abs().max(1.0)).count().min(k))
        .sum();
    hits as f64 / (kth.len() * k).max(1) as f64
}

fn print_point(name: &str, k: usize, point: &Value) {
    println!(
        "{name:<14} probe {:>7}  extra {:>5}  recall@{k} {:.4}  {:>8.0} queries/s",
        point["probe_items"],
        point["extra"],
        point["recall"].as_f64().unwrap_or(0.0),
        point["queries_per_second"].as_f64().unwrap_or(0.0)
    );
}

/// The `k`-th best exact inner product of each chosen row among all rows (itself
/// excluded), by blocks of rows multiplied with every query at once.
fn exact_kth(content: &ContentRows, chosen: &[usize], k: usize) -> Vec<f32> {
    use rayon::prelude::*;
    let dim = content.dim;
    let queries: Vec<f32> = chosen.iter().flat_map(|&q| content.row(q).iter().copied()).collect();
    let q = faer::MatRef::from_row_major_slice(&queries, chosen.len(), dim);
    let blocks: Vec<Vec<TopK>> = content
        .rows
        .par_chunks(TRUTH_BLOCK * dim)
        .enumerate()
        .map(|(b, block)| {
            let rows = faer::MatRef::from_row_major_slice(block, block.len() / dim, dim);
            let mut scores = faer::Mat::<f32>::zeros(rows.nrows(), chosen.len());
            faer::linalg::matmul::matmul(
                scores.as_mut(),
                faer::Accum::Replace,
                rows,
                q.transpose(),
                1.0f32,
                faer::Par::Seq,
            );
            chosen
                .iter()
                .enumerate()
                .map(|(j, &own)| {
                    let mut top = TopK::new(k);
                    for r in 0..rows.nrows() {
                        let i = b * TRUTH_BLOCK + r;
                        if i != own {
                            top.push(i as u32, scores[(r, j)]);
                        }
                    }
                    top
                })
                .collect()
        })
        .collect();
    let mut merged: Vec<TopK> = chosen.iter().map(|_| TopK::new(k)).collect();
    for block in blocks {
        for (top, found) in merged.iter_mut().zip(block) {
            for (i, s) in found.into_sorted() {
                top.push(i, s);
            }
        }
    }
    merged.into_iter().map(|top| top.into_sorted().last().map_or(f32::NEG_INFINITY, |(_, s)| *s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_counts_when_it_reaches_the_kth_exact_score() {
        // Query 1: the k-th best is 0.5; two results reach it (one a tie), one does not.
        // Query 2: every result reaches 0.1, but at most k count.
        let kth = [0.5, 0.1];
        let found = vec![vec![(1, 0.9), (2, 0.5), (3, 0.2)], vec![(4, 0.8), (5, 0.7), (6, 0.6), (7, 0.5)]];
        assert!((recall_by_score(&kth, &found, 3) - 5.0 / 6.0).abs() < 1e-12);
    }
}
