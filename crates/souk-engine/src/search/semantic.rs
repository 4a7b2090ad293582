//! Vector retrieval: a search's nearest neighbours in its vector space, filtered inside the
//! index walk.

use super::columns::{Except, SlotFilter};
use super::index::{FactsTable, SearchIndex};
use super::request::SearchRequest;
use super::vectors;
use crate::error::{Error, Result, ValidationError};

impl SearchIndex {
    /// The items nearest to `vector` in the request's space as (slot, cosine), best first,
    /// each passing the filters.
    pub(super) fn vector_matches(
        &self,
        request: &SearchRequest,
        vector: &[f32],
        table: &FactsTable,
        filter: &SlotFilter,
    ) -> Result<Vec<(u32, f32)>> {
        let space = self.existing_space(&request.space).ok_or_else(|| {
            Error::Invalid(ValidationError::new(
                "unknown_vector_space",
                "space",
                format!("no item has vectors named {:?}", request.space),
            ))
        })?;
        if vector.len() != space.dim() {
            return Err(Error::Invalid(ValidationError::new(
                "dimension_mismatch",
                "vector",
                format!("expected {} dimensions, found {}", space.dim(), vector.len()),
            )));
        }
        let query = vectors::unit(vector);
        let k = self.config.semantic_candidates.max(request.offset + request.limit);
        let accept =
            |id: &str| table.by_id.get(id).is_some_and(|&slot| filter.accepts(&table.columns, slot, Except::Nothing));
        let found = space.search(&query, k, vectors::default_probe(space.len(), k), &accept);
        Ok(found.into_iter().filter_map(|(id, s)| table.by_id.get(&*id).map(|&slot| (slot, s))).collect())
    }
}
