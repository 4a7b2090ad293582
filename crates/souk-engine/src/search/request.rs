//! What a search asks and answers: mode, fusion method, sort order, the request, its hits
//! and the response.

use serde::{Deserialize, Serialize};

use super::explain::Explain;
use super::facts::{Affinity, Facets};
use super::vectors::TEXT_SPACE;
use crate::input::ItemFilter;
use crate::rank::rerank::{Effect, Rules};

/// Which matches a search uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    Keyword,
    Semantic,
    Hybrid,
}

/// How keyword and semantic rankings are combined.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "method")]
pub enum Fusion {
    /// Reciprocal-rank fusion: Σ 1 / (k + rank).
    Rrf { k: f32 },
    /// alpha × BM25 / max BM25 + (1 − alpha) × min-max normalised cosine.
    Weighted { alpha: f32 },
}

/// Result order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    Relevance,
    PriceAsc,
    PriceDesc,
    Newest,
    Popularity,
}

impl std::str::FromStr for Sort {
    type Err = ();

    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        match s {
            "relevance" => Ok(Sort::Relevance),
            "price_asc" => Ok(Sort::PriceAsc),
            "price_desc" => Ok(Sort::PriceDesc),
            "newest" => Ok(Sort::Newest),
            "popularity" => Ok(Sort::Popularity),
            _ => Err(()),
        }
    }
}

/// A search.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: String,
    pub mode: SearchMode,
    pub fusion: Fusion,
    /// The query embedded by the caller (semantic and hybrid), unit length or not.
    pub query_vector: Option<Vec<f32>>,
    /// The vector space to search ([`TEXT_SPACE`] or a user-supplied vector name).
    pub space: String,
    pub filters: ItemFilter,
    pub sort: Sort,
    pub offset: usize,
    pub limit: usize,
    pub facets: bool,
    pub explain: bool,
    /// The shopper's affinities, for the personal touch.
    pub affinity: Option<Affinity>,
    /// Re-ranking rules (configured merged with the request's), already validated.
    pub rules: Rules,
}

impl SearchRequest {
    pub fn keyword(query: impl Into<String>) -> Self {
        Self {
            query: query.into(),
            mode: SearchMode::Keyword,
            fusion: Fusion::Rrf { k: 60.0 },
            query_vector: None,
            space: TEXT_SPACE.to_string(),
            filters: ItemFilter::default(),
            sort: Sort::Relevance,
            offset: 0,
            limit: 10,
            facets: false,
            explain: false,
            affinity: None,
            rules: Rules::default(),
        }
    }
}

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub id: String,
    pub score: f32,
    /// What a page shows of the item: from the index's facts here; the serving layer fills
    /// it from the catalog in the page's language, with the picture.
    #[serde(flatten)]
    pub card: crate::model::ItemCard,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Explain>,
    /// What re-ranking rules did to the item; empty when none applied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<Effect>,
}

/// The answer to a search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResponse {
    /// Matching items after filters.
    pub total: usize,
    pub hits: Vec<Hit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facets: Option<Facets>,
    /// The mode actually used (hybrid falls back to keyword without a query vector).
    pub mode: SearchMode,
    /// No item matched every word, so items matching some words are shown.
    pub relaxed: bool,
    /// Words left out of matching (function words, words no item contains).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
    /// Words matched with typo tolerance.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fuzzy: Vec<String>,
    /// Words expanded with synonyms.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expanded: Vec<String>,
}
