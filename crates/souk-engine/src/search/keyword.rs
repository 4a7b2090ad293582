//! Keyword retrieval: every keyword match of a query as (slot, BM25 score), words that
//! all match first, then some of them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::index::SegmentId;
use tantivy::query::{AllQuery, Query};
use tantivy::{DocId, Score, Searcher, SegmentOrdinal, SegmentReader};

use super::index::{tantivy_error, SearchIndex};
use super::query;
use super::request::SearchResponse;
use crate::error::Result;

/// No slot: a document without one.
const NO_SLOT: u32 = u32::MAX;

/// Each segment's slots by document, read from the `slot` column at a segment's first
/// search: a segment never changes, and at 1M items a match cost a column decode (7% of a
/// keyword search) where it now costs an array read.
#[derive(Debug, Default)]
pub(super) struct SlotMaps {
    maps: Mutex<HashMap<SegmentId, Arc<[u32]>>>,
}

impl SlotMaps {
    fn of(&self, segment: &SegmentReader) -> tantivy::Result<Arc<[u32]>> {
        let id = segment.segment_id();
        if let Some(map) = self.maps.lock().get(&id) {
            return Ok(map.clone());
        }
        let column = segment.fast_fields().u64("slot")?;
        let map: Arc<[u32]> = (0..segment.max_doc())
            .map(|doc| column.first(doc).and_then(|slot| u32::try_from(slot).ok()).unwrap_or(NO_SLOT))
            .collect();
        self.maps.lock().insert(id, map.clone());
        Ok(map)
    }

    /// Forget the segments `searcher` no longer has (merged away).
    pub(super) fn keep_only(&self, searcher: &Searcher) {
        let live: HashSet<SegmentId> = searcher.segment_readers().iter().map(SegmentReader::segment_id).collect();
        self.maps.lock().retain(|id, _| live.contains(id));
    }

    #[cfg(test)]
    pub(super) fn cached(&self) -> Vec<SegmentId> {
        self.maps.lock().keys().copied().collect()
    }
}

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
