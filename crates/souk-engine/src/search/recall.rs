//! Search recall sources: each finds a search's candidates its own way — keyword matches in
//! the inverted index, nearest neighbours in a vector space — and the pipeline facets,
//! filters, orders and fuses whatever they return (`pipeline`, `fuse`). A new way of
//! finding candidates is one more [`SearchSource`] in [`sources_for`], not a branch in the
//! pipeline.

use tantivy::Searcher;

use super::columns::SlotFilter;
use super::index::{FactsTable, SearchIndex};
use super::request::{SearchMode, SearchRequest, SearchResponse};
use crate::error::Result;

/// What found a candidate; fusion reads each kind's score and rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MatchKind {
    /// BM25 over the analysed text.
    Keyword,
    /// Cosine in the request's vector space.
    Vector,
}

/// One source's candidates: (slot, score).
#[derive(Debug)]
pub(super) struct Matches {
    pub kind: MatchKind,
    pub found: Vec<(u32, f32)>,
    /// `found` is already best first and passed the request's filters (a source that
    /// filters inside its walk); otherwise the pipeline filters it after counting facets,
    /// then orders the best of it.
    pub ready: bool,
}

/// What a source reads.
pub(super) struct RecallContext<'a> {
    pub index: &'a SearchIndex,
    pub searcher: &'a Searcher,
    pub request: &'a SearchRequest,
    pub table: &'a FactsTable,
    pub filter: &'a SlotFilter,
}

/// One way of finding a search's candidates.
pub(super) trait SearchSource {
    fn kind(&self) -> MatchKind;
    /// Whether its candidates come best first and already filtered (see [`Matches::ready`]).
    fn ready(&self) -> bool {
        false
    }
    /// Its candidates, (slot, score); it may tell the response what it did to the query
    /// (relaxed, ignored, corrected, expanded words).
    fn recall(&self, cx: &RecallContext<'_>, response: &mut SearchResponse) -> Result<Vec<(u32, f32)>>;
}

/// Run `source`.
pub(super) fn run(source: &dyn SearchSource, cx: &RecallContext<'_>, response: &mut SearchResponse) -> Result<Matches> {
    Ok(Matches { kind: source.kind(), found: source.recall(cx, response)?, ready: source.ready() })
}

/// Keyword matches of the query (every item for a query without words).
pub(super) struct KeywordSource;

impl SearchSource for KeywordSource {
    fn kind(&self) -> MatchKind {
        MatchKind::Keyword
    }

    fn recall(&self, cx: &RecallContext<'_>, response: &mut SearchResponse) -> Result<Vec<(u32, f32)>> {
        cx.index.keyword_matches(cx.searcher, &cx.request.query, response)
    }
}

/// The nearest neighbours of a query vector, filtered inside the index walk.
pub(super) struct VectorSource<'a> {
    pub vector: &'a [f32],
}

impl SearchSource for VectorSource<'_> {
    fn kind(&self) -> MatchKind {
        MatchKind::Vector
    }

    fn ready(&self) -> bool {
        true
    }

    fn recall(&self, cx: &RecallContext<'_>, _response: &mut SearchResponse) -> Result<Vec<(u32, f32)>> {
        cx.index.vector_matches(cx.request, self.vector, cx.table, cx.filter)
    }
}

/// The sources of a search in `mode` (the mode it runs in: hybrid without a vector runs as
/// keyword), keyword first.
pub(super) fn sources_for<'a>(mode: SearchMode, vector: Option<&'a [f32]>) -> Vec<Box<dyn SearchSource + 'a>> {
    let mut sources: Vec<Box<dyn SearchSource + 'a>> = Vec::new();
    if mode != SearchMode::Semantic {
        sources.push(Box::new(KeywordSource));
    }
    if let Some(vector) = vector.filter(|_| mode != SearchMode::Keyword) {
        sources.push(Box::new(VectorSource { vector }));
    }
    sources
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_has_its_sources() {
        let v = [1.0f32, 0.0];
        let kinds = |mode, vector| sources_for(mode, vector).iter().map(|s| s.kind()).collect::<Vec<_>>();
        assert_eq!(kinds(SearchMode::Keyword, Some(&v)), [MatchKind::Keyword]);
        assert_eq!(kinds(SearchMode::Semantic, Some(&v)), [MatchKind::Vector]);
        assert_eq!(kinds(SearchMode::Hybrid, Some(&v)), [MatchKind::Keyword, MatchKind::Vector]);
        assert_eq!(kinds(SearchMode::Hybrid, None), [MatchKind::Keyword]);
    }
}
