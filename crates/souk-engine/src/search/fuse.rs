//! Fusion of the sources' lists into one list of candidates, each with its per-source
//! scores and ranks and its fused score (keyword only, semantic only, or hybrid by
//! reciprocal rank or weighted scores).

use std::collections::HashMap;

use super::explain::Explain;
use super::recall::{MatchKind, Matches};
use super::request::{Fusion, SearchMode};
use crate::fusion;

type SlotMap<V> = HashMap<u32, V, ahash::RandomState>;

/// The union of the `lists` (each best first; an ordered one ranked down to `depth`) by
/// slot, scored by `mode` and `method`. `below_depth[l]` holds list `l`'s scores of the
/// members cut below the depth that another list found: their scores are exact, their
/// ranks count as just past the depth.
pub(super) fn fuse(
    lists: &[Matches],
    below_depth: &[SlotMap<f32>],
    depth: usize,
    mode: SearchMode,
    method: Fusion,
) -> SlotMap<Explain> {
    let size = lists.iter().map(|l| l.found.len()).sum();
    let mut candidates: SlotMap<Explain> = HashMap::with_capacity_and_hasher(size, ahash::RandomState::new());
    for list in lists {
        for (rank, (slot, score)) in list.found.iter().enumerate() {
            record(candidates.entry(*slot).or_default(), list.kind, *score, rank + 1);
        }
    }
    for (list, below) in lists.iter().zip(below_depth) {
        for (slot, score) in below {
            if let Some(explain) = candidates.get_mut(slot).filter(|e| rank_of(e, list.kind).is_none()) {
                record(explain, list.kind, *score, depth + 1);
            }
        }
    }
    let max_bm25 =
        lists.iter().find(|l| l.kind == MatchKind::Keyword).and_then(|l| l.found.first()).map_or(0.0, |k| k.1);
    let (min_cos, max_cos) = lists
        .iter()
        .filter(|l| l.kind == MatchKind::Vector)
        .flat_map(|l| l.found.iter())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), (_, s)| (lo.min(*s), hi.max(*s)));
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

/// Note a source's score and rank of a candidate.
fn record(explain: &mut Explain, kind: MatchKind, score: f32, rank: usize) {
    match kind {
        MatchKind::Keyword => {
            explain.bm25 = Some(score);
            explain.keyword_rank = Some(rank);
        }
        MatchKind::Vector => {
            explain.vector = Some(score);
            explain.vector_rank = Some(rank);
        }
    }
}

fn rank_of(explain: &Explain, kind: MatchKind) -> Option<usize> {
    match kind {
        MatchKind::Keyword => explain.keyword_rank,
        MatchKind::Vector => explain.vector_rank,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(kind: MatchKind, found: &[(u32, f32)]) -> Matches {
        Matches { kind, found: found.to_vec(), ready: true }
    }

    #[test]
    fn hybrid_rrf_sums_both_ranks_and_a_cut_keyword_match_ranks_past_the_depth() {
        let lists = [list(MatchKind::Keyword, &[(1, 9.0), (2, 5.0)]), list(MatchKind::Vector, &[(3, 0.9), (1, 0.5)])];
        let mut below: Vec<SlotMap<f32>> = vec![SlotMap::default(), SlotMap::default()];
        below[0].insert(3, 1.5);
        let fused = fuse(&lists, &below, 2, SearchMode::Hybrid, Fusion::Rrf { k: 60.0 });
        let rrf = |r: usize| fusion::reciprocal_rank(60.0, r) as f32;
        assert!((fused[&1].fusion - (rrf(1) + rrf(2))).abs() < 1e-6);
        assert_eq!((fused[&3].bm25, fused[&3].keyword_rank), (Some(1.5), Some(3)));
        assert!((fused[&3].fusion - (rrf(3) + rrf(1))).abs() < 1e-6);
        assert_eq!(fused[&2].vector_rank, None);
    }

    #[test]
    fn single_source_modes_score_by_that_source() {
        let lists = [list(MatchKind::Keyword, &[(1, 9.0), (2, 5.0)])];
        let fused = fuse(&lists, &[SlotMap::default()], 10, SearchMode::Keyword, Fusion::Rrf { k: 60.0 });
        assert_eq!((fused[&1].score, fused[&2].score), (9.0, 5.0));
        let lists = [list(MatchKind::Vector, &[(4, 0.7)])];
        let fused = fuse(&lists, &[SlotMap::default()], 10, SearchMode::Semantic, Fusion::Weighted { alpha: 0.5 });
        assert_eq!(fused[&4].score, 0.7);
    }

    #[test]
    fn weighted_fusion_scales_each_source() {
        let lists = [list(MatchKind::Keyword, &[(1, 10.0), (2, 5.0)]), list(MatchKind::Vector, &[(2, 0.8), (1, 0.4)])];
        let none = vec![SlotMap::default(), SlotMap::default()];
        let fused = fuse(&lists, &none, 10, SearchMode::Hybrid, Fusion::Weighted { alpha: 0.5 });
        // 1: keyword 1.0, vector 0.0; 2: keyword 0.5, vector 1.0.
        assert!((fused[&1].fusion - 0.5).abs() < 1e-6 && (fused[&2].fusion - 0.75).abs() < 1e-6);
    }
}
