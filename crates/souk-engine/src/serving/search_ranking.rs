//! The learned ranker on the search page: the [`RankingStage`] that search runs between
//! recall (keyword, vector, fusion, the personal touch) and the business rules.
//!
//! For a known shopper it builds the same feature rows as recommendations
//! ([`FeatureBuilder::row`]), with the search stages as recall signals
//! ([`search_signals`]: fused rank and score, keyword rank and BM25, vector rank and cosine,
//! and the factor model's score of the item for the shopper). With a search ranker in the
//! model set it scores the rows; either way it keeps them, so the page can log the rows of
//! what it showed for the next training ([`crate::rank::ranker::FeatureLog::search_in_data_dir`]).

use std::collections::HashMap;

use crate::rank::features::{FeatureBuilder, RecallSignals, Signal, FEATURE_COUNT};
use crate::rank::online::OnlineClickModel;
use crate::rank::profile::{ProfileConfig, UserProfile};
use crate::search::{Explain, RankingStage, StageScore};
use crate::serving::{factor_scores, ModelSet};
use crate::store::Storage;
use crate::{Result, UserId};

/// The surface name search pages give the online click model.
pub const SURFACE_SEARCH: &str = "search";

/// Contributions reported per result with `explain`.
const CONTRIBUTIONS: usize = 5;

/// The recall signals of a search result at `position` (0-based, in the order the ranker
/// sees), from its per-stage scores.
pub fn search_signals(position: usize, explain: &Explain, factor_score: Option<f32>) -> RecallSignals {
    RecallSignals {
        blend: Signal { rank: position as u32 + 1, score: explain.score },
        keyword: explain.keyword_rank.map(|rank| Signal { rank: rank as u32, score: explain.bm25.unwrap_or(0.0) }),
        vector: explain.vector_rank.map(|rank| Signal { rank: rank as u32, score: explain.vector.unwrap_or(0.0) }),
        factor_score,
        ..RecallSignals::default()
    }
}

/// See the module docs. Build one per request.
pub struct SearchRanking<'a> {
    set: &'a ModelSet,
    store: &'a dyn Storage,
    user: UserId,
    now_ms: i64,
    history_limit: usize,
    use_ranker: bool,
    explain: bool,
    online: Option<&'a OnlineClickModel>,
    rows: HashMap<String, Vec<f32>>,
}

impl<'a> SearchRanking<'a> {
    /// `use_ranker: false` only records rows (the page is then ordered as without a ranker).
    pub fn new(
        set: &'a ModelSet,
        store: &'a dyn Storage,
        user: UserId,
        now_ms: i64,
        history_limit: usize,
        use_ranker: bool,
    ) -> SearchRanking<'a> {
        SearchRanking {
            set,
            store,
            user,
            now_ms,
            history_limit,
            use_ranker,
            explain: false,
            online: None,
            rows: HashMap::new(),
        }
    }

    /// Fill the `online_ctr` feature from this online click model.
    pub fn with_online(mut self, online: Option<&'a OnlineClickModel>) -> Self {
        self.online = online;
        self
    }

    /// Also compute each result's top feature contributions (for `explain=true`).
    pub fn with_contributions(mut self, explain: bool) -> Self {
        self.explain = explain;
        self
    }

    /// Whether the model set can rank or record anything (it needs the feature context,
    /// which every training since the ranker's introduction writes).
    pub fn applies(set: &ModelSet) -> bool {
        set.features.is_some()
    }

    /// Whether a promoted search ranker orders the results.
    pub fn ranks(&self) -> bool {
        self.use_ranker && self.set.search_ranker.is_some()
    }

    /// The rows of `items` (those it saw), in that order, for the feature log.
    pub fn rows_of(&self, items: &[&str]) -> Vec<(String, Vec<f32>)> {
        items.iter().filter_map(|id| self.rows.get(*id).map(|row| (id.to_string(), row.clone()))).collect()
    }
}

impl RankingStage for SearchRanking<'_> {
    fn score(&mut self, candidates: &[(&str, &Explain)]) -> Result<Option<Vec<StageScore>>> {
        let Some(context) = self.set.features.as_ref() else { return Ok(None) };
        let ids: Vec<&str> = candidates.iter().map(|(id, _)| *id).collect();
        let metas = self.store.items_meta(&ids)?;
        let factors = factor_scores(self.set, self.store, &self.user, self.history_limit, &ids)?;
        let profile = UserProfile::load(
            self.store,
            &self.user,
            &context.prices,
            &self.set.manifest.weights,
            &ProfileConfig::default(),
            self.now_ms,
            false,
        )?;
        let builder = FeatureBuilder {
            prices: &context.prices,
            stats: &context.stats,
            online: self.online.map(|o| (o, SURFACE_SEARCH)),
        };
        let ranker = self.set.search_ranker.as_ref().filter(|_| self.use_ranker);
        let mut scores = Vec::with_capacity(if ranker.is_some() { candidates.len() } else { 0 });
        for (position, ((id, explain), meta)) in candidates.iter().zip(&metas).enumerate() {
            let signals = search_signals(position, explain, factors.get(position).copied().flatten());
            let mut row = vec![0f32; FEATURE_COUNT];
            builder.row(&profile, id, meta.as_ref(), &signals, self.now_ms, &mut row);
            if let Some(ranker) = ranker {
                let contributions =
                    if self.explain { ranker.top_contributions(&row, CONTRIBUTIONS) } else { Vec::new() };
                scores.push((ranker.model.predict(&row) as f32, contributions));
            }
            self.rows.insert(id.to_string(), row);
        }
        Ok(ranker.map(|_| scores))
    }
}
