//! Judging search quality on the generator's ground truth: every query has graded
//! relevance for every catalog item ([`crate::gen::Generator::search_cases`]), so NDCG is
//! computed against the ideal ranking of the whole catalog, not a sample.

use std::time::Instant;

use serde::Serialize;

use super::{Fusion, SearchIndex, SearchMode, SearchRequest, TextEmbedder, TEXT_SPACE};
use crate::error::Result;
use crate::gen::SearchCase;

/// Quality of one search configuration over a set of judged queries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Relevance {
    pub queries: usize,
    /// Graded NDCG@k with gains 2^grade − 1.
    pub ndcg: f64,
    /// Share of the top k with the right product type (grade ≥ 2).
    pub precision: f64,
    /// Reciprocal rank of the first exact match (grade 3).
    pub mrr: f64,
    /// Share of queries with no result at all.
    pub zero_results: f64,
    /// Mean milliseconds per query (query embedding included).
    pub mean_ms: f64,
}

/// The item index of a generator id (`i000042` is 42).
fn index_of(id: &str) -> Option<u32> {
    id.strip_prefix('i')?.parse().ok()
}

/// Run every case through `mode` and score the top `k`.
pub fn judge(
    index: &SearchIndex,
    cases: &[SearchCase],
    mode: SearchMode,
    fusion: Fusion,
    embedder: Option<&dyn TextEmbedder>,
    k: usize,
) -> Result<Relevance> {
    let discount = |rank: usize| 1.0 / ((rank + 2) as f64).log2();
    let gain = |grade: u8| f64::from((1u32 << grade) - 1);
    let (mut ndcg, mut precision, mut mrr, mut zero) = (0.0, 0.0, 0.0, 0usize);
    let started = Instant::now();
    for case in cases {
        let mut request = SearchRequest { mode, fusion, limit: k, ..SearchRequest::keyword(case.query.clone()) };
        if mode != SearchMode::Keyword {
            if let Some(embedder) = embedder.filter(|e| super::embedder_reads(*e, &case.query)) {
                request.query_vector = embedder.embed(&[case.query.as_str()], true)?.pop();
                request.space = TEXT_SPACE.to_string();
            }
        }
        let response = index.search(&request)?;
        if response.hits.is_empty() {
            zero += 1;
        }
        let grade_of = |id: &str| -> u8 {
            index_of(id)
                .and_then(|i| case.grades.binary_search_by_key(&i, |(item, _)| *item).ok())
                .map_or(0, |at| case.grades[at].1)
        };
        let grades: Vec<u8> = response.hits.iter().map(|h| grade_of(&h.id)).collect();
        let dcg: f64 = grades.iter().enumerate().map(|(r, g)| gain(*g) * discount(r)).sum();
        let mut ideal: Vec<u8> = case.grades.iter().map(|(_, g)| *g).collect();
        ideal.sort_unstable_by(|a, b| b.cmp(a));
        let idcg: f64 = ideal.iter().take(k).enumerate().map(|(r, g)| gain(*g) * discount(r)).sum();
        if idcg > 0.0 {
            ndcg += dcg / idcg;
        }
        precision += grades.iter().filter(|g| **g >= 2).count() as f64 / k as f64;
        if let Some(first) = grades.iter().position(|g| *g == 3) {
            mrr += 1.0 / (first + 1) as f64;
        }
    }
    let n = cases.len().max(1) as f64;
    Ok(Relevance {
        queries: cases.len(),
        ndcg: ndcg / n,
        precision: precision / n,
        mrr: mrr / n,
        zero_results: zero as f64 / n,
        mean_ms: started.elapsed().as_secs_f64() * 1000.0 / n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{GenConfig, Generator};
    use crate::search::SearchConfig;
    use crate::store::{EmbeddedStore, Storage, StoreConfig, StoreSink};

    #[test]
    fn keyword_search_is_judged_against_the_whole_catalog() {
        let generator = Generator::new(GenConfig { items: 2_000, users: 10, events: 0, seed: 3 }).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        {
            let mut sink = StoreSink::new(&store);
            generator.run(&mut sink, &mut |_| {}).unwrap();
            sink.finish().unwrap();
        }
        assert_eq!(store.stats().unwrap().catalog_items, 2_000);
        let index = SearchIndex::open(&dir.path().join("search"), SearchConfig::default(), &store).unwrap();
        for chinese in [false, true] {
            let cases = generator.search_cases(60, chinese, 1);
            assert!(cases.iter().all(|c| c.grades.windows(2).all(|w| w[0].0 < w[1].0)));
            let keyword = judge(&index, &cases, SearchMode::Keyword, Fusion::Rrf { k: 60.0 }, None, 10).unwrap();
            // Queries name the product type, so keyword search must find mostly the right
            // type; a broken analyzer (e.g. no Chinese segmentation) fails this.
            assert!(keyword.ndcg > 0.5 && keyword.precision > 0.6, "chinese={chinese}: {keyword:?}");
            assert!(keyword.zero_results < 0.05, "chinese={chinese}: {keyword:?}");
        }
    }
}
