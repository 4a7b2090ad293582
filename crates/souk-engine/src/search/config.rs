//! The search settings (`[search]` in the configuration file) and their validation.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Search settings (`[search]` in the configuration file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// How often pending catalog changes are committed (made visible), in milliseconds.
    pub commit_interval_ms: u64,
    /// A synonyms file (`tv, television` or `cell phone => smartphone`, one rule a line);
    /// empty for none.
    pub synonyms: String,
    /// A file of extra jieba dictionary words (`word [frequency]` a line): brands, product
    /// words; empty for none. Changing it rebuilds the index.
    pub user_dictionary: String,
    /// `k` of reciprocal-rank fusion.
    pub rrf_k: f32,
    /// Keyword share in weighted fusion (0 = semantic only, 1 = keyword only).
    pub hybrid_alpha: f32,
    /// Nearest neighbours taken from the vector index per search.
    pub semantic_candidates: usize,
    /// Weight of the shopper's category and brand affinity when re-ranking.
    pub personal_weight: f32,
    /// How many of the best results the personal touch may reorder.
    pub rerank_window: usize,
    /// Query embeddings kept for repeated queries (least recently used dropped first);
    /// 0 embeds every query.
    pub query_cache: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            commit_interval_ms: 500,
            synonyms: String::new(),
            user_dictionary: String::new(),
            rrf_k: 60.0,
            hybrid_alpha: 0.5,
            semantic_candidates: 200,
            personal_weight: 0.3,
            rerank_window: 100,
            query_cache: 10_000,
        }
    }
}

impl SearchConfig {
    /// Problems with this configuration, each with the offending key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if !(10..=60_000).contains(&self.commit_interval_ms) {
            problems.push((
                "search.commit_interval_ms".into(),
                format!("expected 10..=60000, found {}", self.commit_interval_ms),
            ));
        }
        if !(self.rrf_k.is_finite() && self.rrf_k > 0.0) {
            problems.push(("search.rrf_k".into(), format!("expected a positive number, found {}", self.rrf_k)));
        }
        if !(0.0..=1.0).contains(&self.hybrid_alpha) {
            problems.push(("search.hybrid_alpha".into(), format!("expected 0..=1, found {}", self.hybrid_alpha)));
        }
        if !(1..=10_000).contains(&self.semantic_candidates) {
            problems.push((
                "search.semantic_candidates".into(),
                format!("expected 1..=10000, found {}", self.semantic_candidates),
            ));
        }
        if !(self.personal_weight.is_finite() && self.personal_weight >= 0.0) {
            problems.push((
                "search.personal_weight".into(),
                format!("expected a non-negative number, found {}", self.personal_weight),
            ));
        }
        for (key, path) in [("search.synonyms", &self.synonyms), ("search.user_dictionary", &self.user_dictionary)] {
            if !path.is_empty() && !Path::new(path).is_file() {
                problems.push((key.into(), format!("no such file: {path}")));
            }
        }
        problems
    }
}
