//! Fusion of the keyword and vector lists into one list of candidates, each with its
//! per-stage scores and its fused score (keyword only, semantic only, or hybrid by
//! reciprocal rank or weighted scores).

use std::collections::HashMap;

use super::explain::Explain;
use super::request::{Fusion, SearchMode};
use crate::fusion;

/// The union of `keyword` (best first, ranked down to `depth`) and `semantic` (best
/// first) by slot, scored by `mode` and `method`. `keyword_scores_of_semantic` holds the
/// keyword scores of semantic matches, also those below the ranked depth.
pub(super) fn fuse(
    keyword: &[(u32, f32)],
    semantic: &[(u32, f32)],
    keyword_scores_of_semantic: &HashMap<u32, f32, ahash::RandomState>,
    depth: usize,
    mode: SearchMode,
    method: Fusion,
) -> HashMap<u32, Explain, ahash::RandomState> {
    let max_bm25 = keyword.first().map_or(0.0, |k| k.1);

    let mut candidates: HashMap<u32, Explain, ahash::RandomState> =
        HashMap::with_capacity_and_hasher(keyword.len() + semantic.len(), ahash::RandomState::new());
    for (rank, (slot, score)) in keyword.iter().enumerate() {
        let entry = candidates.entry(*slot).or_default();
        entry.bm25 = Some(*score);
        entry.keyword_rank = Some(rank + 1);
    }
    let (min_cos, max_cos) =
        semantic.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), (_, s)| (lo.min(*s), hi.max(*s)));
    for (rank, (slot, score)) in semantic.iter().enumerate() {
        let entry = candidates.entry(*slot).or_default();
        entry.vector = Some(*score);
        entry.vector_rank = Some(rank + 1);
        if entry.bm25.is_none() {
            // A keyword match below the ranked depth: its score is exact, its rank
            // counts as just past the depth.
            if let Some(score) = keyword_scores_of_semantic.get(slot) {
                entry.bm25 = Some(*score);
                entry.keyword_rank = Some(depth + 1);
            }
        }
    }
    for explain in candidates.values_mut() {
        explain.fusion = match mode {
            SearchMode::Keyword => explain.bm25.unwrap_or(0.0),
            SearchMode::Semantic => explain.vector.unwrap_or(0.0),
            SearchMode::Hybrid => match method {
                Fusion::Rrf { k } => {
                    let term = |rank: Option<usize>| rank.map_or(0.0, |r| fusion::reciprocal_rank(f64::from(k), r));
                    (term(explain.keyword_rank) + term(explain.vector_rank)) as f32
                }
                Fusion::Weighted { alpha } => {
                    let kw = explain.bm25.map_or(0.0, |s| fusion::max_scaled(s, max_bm25));
                    let vec = explain.vector.map_or(0.0, |s| fusion::min_max(s, min_cos, max_cos));
                    alpha * kw + (1.0 - alpha) * vec
                }
            },
        };
        explain.score = explain.fusion;
    }
    candidates
}
