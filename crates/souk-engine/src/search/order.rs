//! Ordering the fused results: the personal touch, the learned ranking stage and sorting
//! by a key (price, newness, popularity).

use std::cmp::Ordering;

use super::explain::{Explain, RankingStage, RANKING_WINDOW};
use super::facts::{Affinity, Facts};
use super::index::{FactsTable, SearchIndex};
use super::request::Sort;
use crate::error::Result;

impl SearchIndex {
    /// The personal touch: reorder the best results by the shopper's affinities, then by
    /// `relevance`.
    pub(super) fn personal_touch(
        &self,
        ranked: &mut [(u32, Explain)],
        affinity: &Affinity,
        table: &FactsTable,
        page_end: usize,
        relevance: impl Fn(&(u32, Explain), &(u32, Explain)) -> Ordering,
    ) {
        let window = self.config.rerank_window.max(page_end).min(ranked.len());
        let max = ranked.first().map_or(0.0, |r| r.1.score);
        for (slot, explain) in &mut ranked[..window] {
            let personal = table.get(*slot).map_or(0.0, |f| affinity.score(f));
            explain.personal = Some(personal);
            let base = if max > 0.0 { explain.fusion / max } else { 0.0 };
            explain.score = base + self.config.personal_weight * personal;
        }
        ranked[..window].sort_unstable_by(relevance);
    }

    /// The learned ranker reorders the best results; `with_contributions` keeps the
    /// ranker's feature contributions in each result's explanation.
    pub(super) fn rank_with_stage(
        &self,
        ranked: &mut [(u32, Explain)],
        stage: &mut dyn RankingStage,
        table: &FactsTable,
        page_end: usize,
        with_contributions: bool,
    ) -> Result<()> {
        // Everything the rules may arrange is scored by the ranker, so they compare like
        // with like.
        let window = RANKING_WINDOW.max(self.config.rerank_window).max(page_end).min(ranked.len());
        let seen: Vec<(&str, &Explain)> =
            ranked[..window].iter().filter_map(|(slot, explain)| table.get(*slot).map(|f| (&*f.id, explain))).collect();
        let scored = if seen.len() == window { stage.score(&seen)? } else { None };
        if let Some(scores) = scored.filter(|scores| scores.len() == window) {
            for ((_, explain), (score, contributions)) in ranked[..window].iter_mut().zip(scores) {
                explain.ranker = Some(score);
                explain.score = score;
                explain.contributions = if with_contributions { contributions } else { Vec::new() };
            }
            // Stable: equal scores keep the relevance order. Results past the window
            // keep their place after it.
            ranked[..window].sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
        }
        Ok(())
    }
}

/// Sort `ranked` by `key` (not [`Sort::Relevance`]); stable, so equal keys keep relevance
/// order.
pub(super) fn sort_by_key(ranked: &mut [(u32, Explain)], key: Sort, table: &FactsTable) {
    let order = |slot: u32, f: &Facts| -> f64 {
        match key {
            Sort::PriceAsc => f.price.unwrap_or(f64::INFINITY),
            Sort::PriceDesc => -f.price.unwrap_or(f64::NEG_INFINITY),
            Sort::Newest => -(f.created_at.unwrap_or(i64::MIN) as f64),
            Sort::Popularity => -f64::from(table.columns.popularity(slot)),
            Sort::Relevance => 0.0,
        }
    };
    let key_of = |slot: u32| table.get(slot).map_or(f64::INFINITY, |f| order(slot, f));
    ranked.sort_by(|a, b| key_of(a.0).total_cmp(&key_of(b.0)));
}
