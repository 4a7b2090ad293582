//! Keyword retrieval: every keyword match of a query as (slot, BM25 score), words that
//! all match first, then some of them.

use std::sync::Arc;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::{AllQuery, Query};
use tantivy::{DocId, Score, Searcher, SegmentOrdinal, SegmentReader};

use super::index::{tantivy_error, SearchIndex};
use super::query;
use super::request::SearchResponse;
use super::slot_maps::{SlotMaps, NO_SLOT};
use crate::error::Result;

/// Collects every match as (slot, score).
struct MatchCollector<'a> {
    slot_maps: &'a SlotMaps,
}

struct SegmentMatches {
    slots: Arc<[u32]>,
    out: Vec<(u32, f32)>,
}

impl Collector for MatchCollector<'_> {
    type Fruit = Vec<(u32, f32)>;
    type Child = SegmentMatches;

    fn for_segment(&self, _: SegmentOrdinal, segment: &SegmentReader) -> tantivy::Result<SegmentMatches> {
        Ok(SegmentMatches { slots: self.slot_maps.of(segment)?, out: Vec::new() })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Vec<(u32, f32)>>) -> tantivy::Result<Vec<(u32, f32)>> {
        Ok(fruits.concat())
    }
}

impl SegmentCollector for SegmentMatches {
    type Fruit = Vec<(u32, f32)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if let Some(&slot) = self.slots.get(doc as usize).filter(|&&slot| slot != NO_SLOT) {
            self.out.push((slot, score));
        }
    }

    fn harvest(self) -> Vec<(u32, f32)> {
        self.out
    }
}

impl SearchIndex {
    /// The keyword matches of `query`: every item for a query without words, else the items
    /// matching every word, or when none does, some of them (`response.relaxed`). The
    /// response also learns the words ignored, matched with typo tolerance and expanded
    /// with synonyms.
    pub(super) fn keyword_matches(
        &self,
        searcher: &Searcher,
        query: &str,
        response: &mut SearchResponse,
    ) -> Result<Vec<(u32, f32)>> {
        let collector = MatchCollector { slot_maps: &self.slot_maps };
        let keyword = match query::build(&self.analyzer, &self.synonyms, &self.fields.text, searcher, query) {
            None => searcher.search(&AllQuery, &collector).map_err(tantivy_error)?,
            Some(built) => {
                let mut keyword =
                    searcher.search(built.strict.as_ref() as &dyn Query, &collector).map_err(tantivy_error)?;
                if keyword.is_empty() {
                    if let Some(relaxed) = &built.relaxed {
                        keyword = searcher.search(relaxed.as_ref() as &dyn Query, &collector).map_err(tantivy_error)?;
                        response.relaxed = !keyword.is_empty();
                    }
                }
                response.ignored = built.ignored;
                response.fuzzy = built.fuzzy;
                response.expanded = built.expanded;
                keyword
            }
        };
        Ok(keyword)
    }
}
