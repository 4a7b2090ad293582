//! Each segment's item slots by document: what a keyword match's document is, without
//! decoding the `slot` column at every match.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use tantivy::index::SegmentId;
use tantivy::{Searcher, SegmentReader};

/// No slot: a document without one.
pub(super) const NO_SLOT: u32 = u32::MAX;

/// Each segment's slots by document, read from the `slot` column at a segment's first
/// search: a segment never changes, and at 1M items a match cost a column decode (7% of a
/// keyword search) where it now costs an array read.
#[derive(Debug, Default)]
pub(super) struct SlotMaps {
    maps: Mutex<HashMap<SegmentId, Arc<[u32]>>>,
}

impl SlotMaps {
    pub(super) fn of(&self, segment: &SegmentReader) -> tantivy::Result<Arc<[u32]>> {
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
