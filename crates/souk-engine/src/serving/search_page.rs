//! A search page: the query embedded for the text space (through the query-vector cache),
//! the shopper's affinities from their recent history, the search ranking stage when a
//! trained search ranker or the feature log asks for it, the search itself, and titles in
//! the page's language. What the page log needs comes back with the results.

use std::sync::Arc;

use super::page_log::Arm;
use super::search_ranking::SearchRanking;
use super::ModelSet;
use crate::error::Result;
use crate::ids::UserId;
use crate::input::Lang;
use crate::rank::online::OnlineClickModel;
use crate::recommend::EventWeights;
use crate::search::{
    embedder_reads, Affinity, QueryVectorCache, RankingStage, SearchIndex, SearchMode, SearchRequest, SearchResponse,
    TextEmbedder, TEXT_SPACE,
};
use crate::store::Storage;

/// How many of a shopper's latest interactions shape their search affinities.
pub const AFFINITY_HISTORY: usize = 200;
/// Half-life of an interaction's weight in the search affinities, in days.
pub const AFFINITY_HALF_LIFE_DAYS: f32 = 30.0;

/// What a search page is served with.
pub struct SearchServices<'a> {
    pub index: &'a SearchIndex,
    pub embedder: Option<&'a dyn TextEmbedder>,
    pub query_vectors: &'a QueryVectorCache,
    pub models: Option<&'a ModelSet>,
    pub weights: &'a EventWeights,
    /// How many interactions the search ranker's profile reads.
    pub history_limit: usize,
    pub online: Option<&'a OnlineClickModel>,
}

/// One search page to serve.
pub struct SearchPageRequest {
    pub request: SearchRequest,
    /// The shopper whose history personalises the page (absent: not personalised).
    pub user: Option<UserId>,
    /// Order with the trained search ranker when there is one.
    pub use_ranker: bool,
    /// This page is logged: compute the shown items' feature rows.
    pub log_features: bool,
    pub lang: Lang,
    pub now_ms: i64,
}

/// A served search page.
pub struct SearchPage {
    pub response: SearchResponse,
    /// The affinities that personalised it.
    pub affinity: Option<Affinity>,
    /// The shown items' feature rows (logged pages only).
    pub rows: Vec<(String, Vec<f32>)>,
    /// Which policy ordered it (logged pages only).
    pub arm: Option<Arm>,
}

/// Serve one search page.
pub fn search_page(services: &SearchServices<'_>, store: &dyn Storage, page: SearchPageRequest) -> Result<SearchPage> {
    let SearchPageRequest { mut request, user, use_ranker, log_features, lang, now_ms } = page;
    if request.mode != SearchMode::Keyword && request.query_vector.is_none() && request.space == TEXT_SPACE {
        request.query_vector = query_vector(services, &request.query)?;
    }
    let affinity = match &user {
        Some(user) => affinity_of(services, store, user, now_ms)?,
        None => None,
    };
    request.affinity = affinity.clone();
    // recall → the learned ranker (or, without one, rows recorded for it) → rules.
    let mut stage = match (services.models, &user) {
        (Some(set), Some(user))
            if SearchRanking::applies(set) && ((use_ranker && set.search_ranker.is_some()) || log_features) =>
        {
            let stage = SearchRanking::new(set, store, user.clone(), now_ms, services.history_limit, use_ranker);
            Some(stage.with_contributions(request.explain).with_online(services.online))
        }
        _ => None,
    };
    let mut response = services.index.search_ranked(&request, stage.as_mut().map(|s| s as &mut dyn RankingStage))?;
    super::describe_hits(store, &mut response.hits, lang)?;
    let (rows, arm) = match &stage {
        Some(stage) if log_features => {
            let shown: Vec<&str> = response.hits.iter().map(|h| h.id.as_str()).collect();
            (stage.rows_of(&shown), Some(if stage.ranks() { Arm::Ranker } else { Arm::Blend }))
        }
        _ => (Vec::new(), None),
    };
    Ok(SearchPage { response, affinity, rows, arm })
}

/// The query's text vector, when an embedder reads the query (cached per model and query).
fn query_vector(services: &SearchServices<'_>, query: &str) -> Result<Option<Vec<f32>>> {
    let Some(embedder) = services.embedder.filter(|e| embedder_reads(*e, query)) else {
        return Ok(None);
    };
    if let Some(vector) = services.query_vectors.get(embedder.id(), query) {
        return Ok(Some(vector.as_ref().clone()));
    }
    let vector = embedder.embed(&[query], true)?.pop();
    if let Some(v) = &vector {
        services.query_vectors.put(embedder.id(), query, Arc::new(v.clone()));
    }
    Ok(vector)
}

/// The shopper's affinities: their latest interactions, weighted by type and halved every
/// [`AFFINITY_HALF_LIFE_DAYS`] (recent behaviour counts more).
fn affinity_of(
    services: &SearchServices<'_>,
    store: &dyn Storage,
    user: &UserId,
    now_ms: i64,
) -> Result<Option<Affinity>> {
    let history = store.user_interactions(user, AFFINITY_HISTORY)?;
    let pairs: Vec<(String, f32)> = history
        .iter()
        .map(|h| {
            let age_days = ((now_ms - h.timestamp).max(0) as f64 / 86_400_000.0) as f32;
            let decay = 0.5f32.powf(age_days / AFFINITY_HALF_LIFE_DAYS);
            (h.item.clone(), services.weights.weight_of(h.event_type, h.value, h.dwell_ms) * decay)
        })
        .collect();
    let affinity = services.index.affinity(pairs.iter().map(|(i, w)| (i.as_str(), *w)));
    Ok((!affinity.is_empty()).then_some(affinity))
}
