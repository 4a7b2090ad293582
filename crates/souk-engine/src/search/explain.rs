//! Why a result ranks where it does: per-stage scores ([`Explain`]), the learned ranking
//! stage's interface and the query words a result contains.

use std::collections::HashSet;

use serde::Serialize;

use super::analyze::QueryUnit;
use super::facts::Facts;
use super::index::SearchIndex;
use crate::error::Result;

/// Per-stage scores of one result.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Explain {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bm25: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword_rank: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector_rank: Option<usize>,
    pub fusion: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personal: Option<f32>,
    /// The query's words found in the result's title, brand, category or attributes (as
    /// typed, normalised); matches through the description, synonyms or typo tolerance are
    /// not listed here (the response's `expanded` and `fuzzy` name those words).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matched: Vec<String>,
    /// The learned ranker's score, when a [`RankingStage`] ordered the result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranker: Option<f32>,
    /// The ranker's largest feature contributions to that score (with `explain`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contributions: Vec<(String, f64)>,
    pub score: f32,
}

/// A learned ranking stage between recall (keyword, vector, fusion, personal touch) and the
/// business rules: it sees the best results in relevance order and may score them.
pub trait RankingStage {
    /// Scores (higher first) for `candidates` — id and per-stage scores, best first — and,
    /// per candidate, the contributions to report; `None` keeps the order as it is (a stage
    /// that only records what it saw).
    fn score(&mut self, candidates: &[(&str, &Explain)]) -> Result<Option<Vec<StageScore>>>;
}

/// A [`RankingStage`]'s score of one candidate and its largest feature contributions.
pub type StageScore = (f32, Vec<(String, f64)>);

/// How many of the best results a [`RankingStage`] sees at least (also at least the page and
/// the rules' window, `search.rerank_window`).
pub const RANKING_WINDOW: usize = 100;

impl SearchIndex {
    /// The surfaces of `units` that `facts` (title, brand, category path, attribute values)
    /// contains: the whole term, all of its search-mode parts, or all of its characters
    /// and bigrams — the ways the keyword query matches a unit, short of synonyms and typos.
    pub(super) fn matched_words(&self, units: &[QueryUnit], facts: &Facts) -> Vec<String> {
        let (mut terms, mut grams) = (Vec::new(), Vec::new());
        for text in std::iter::once(facts.title.as_str())
            .chain(facts.brand.as_deref())
            .chain(facts.category.iter().map(String::as_str))
            .chain(facts.attributes.iter().map(|(_, value)| value.as_str()))
        {
            self.analyzer.index_terms(text, &mut terms, &mut grams);
        }
        let terms: HashSet<&str> = terms.iter().map(String::as_str).collect();
        let grams: HashSet<&str> = grams.iter().map(String::as_str).collect();
        let all_in = |wanted: &[String], set: &HashSet<&str>| {
            !wanted.is_empty() && wanted.iter().all(|w| set.contains(w.as_str()))
        };
        let mut matched: Vec<String> = Vec::new();
        for unit in units {
            let found =
                terms.contains(unit.term.as_str()) || all_in(&unit.parts, &terms) || all_in(&unit.grams, &grams);
            if found && !matched.contains(&unit.surface) {
                matched.push(unit.surface.clone());
            }
        }
        matched
    }
}
