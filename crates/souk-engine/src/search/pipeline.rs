//! A search from request to response: keyword and vector matches, facets, filters, fusion
//! of the two lists, the personal touch, the learned ranking stage, sorting, business rules
//! and the page of hits.

use std::collections::HashMap;

use super::explain::{Explain, RankingStage};
use super::facts::{count_facets, Except, Facts, FilterKeys};
use super::fuse::fuse;
use super::index::SearchIndex;
use super::order::sort_by_key;
use super::request::{Hit, SearchMode, SearchRequest, SearchResponse, Sort};
use crate::error::{Error, Result, ValidationError};

impl SearchIndex {
    /// Run a search.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResponse> {
        self.search_ranked(request, None)
    }

    /// [`SearchIndex::search`] with a learned ranking stage over the best
    /// [`RANKING_WINDOW`](super::RANKING_WINDOW) results (relevance order only; a sort by
    /// key ignores it).
    pub fn search_ranked(
        &self,
        request: &SearchRequest,
        stage: Option<&mut dyn RankingStage>,
    ) -> Result<SearchResponse> {
        let keys = FilterKeys::new(&request.filters);
        let searcher = self.reader.searcher();
        let mut response = SearchResponse {
            total: 0,
            hits: Vec::new(),
            facets: None,
            mode: request.mode,
            relaxed: false,
            ignored: Vec::new(),
            fuzzy: Vec::new(),
            expanded: Vec::new(),
        };
        let blank = request.query.trim().is_empty();
        let vector_query = match (&request.query_vector, request.mode) {
            (_, SearchMode::Keyword) => None,
            (Some(v), _) if !blank || request.mode == SearchMode::Semantic => Some(v),
            (None, SearchMode::Semantic) => {
                return Err(Error::Invalid(ValidationError::new(
                    "semantic_unavailable",
                    "mode",
                    "semantic search needs a query vector: configure a text embedder or send `vector`",
                )))
            }
            _ => None,
        };
        if request.mode == SearchMode::Hybrid && vector_query.is_none() {
            response.mode = SearchMode::Keyword;
        }
        let use_keywords = response.mode != SearchMode::Semantic;

        // Keyword matches.
        let mut keyword: Vec<(u32, f32)> =
            if use_keywords { self.keyword_matches(&searcher, &request.query, &mut response)? } else { Vec::new() };

        let table = self.facts.read();
        let popularity = self.popularity.read().clone();
        let pop = |facts: &Facts| popularity.get(&facts.id).copied().unwrap_or(0.0);

        // Vector matches, filtered inside the index walk.
        let semantic: Vec<(u32, f32)> = match vector_query {
            Some(vector) => self.vector_matches(request, vector, &table, &keys)?,
            None => Vec::new(),
        };

        // Facets over every candidate (each facet ignoring its own filter).
        if request.facets {
            let mut all: Vec<&Facts> =
                keyword.iter().filter_map(|(slot, _)| table.get(*slot).map(|f| f.as_ref())).collect();
            if !semantic.is_empty() {
                let keyword_slots: std::collections::HashSet<u32, ahash::RandomState> =
                    keyword.iter().map(|(s, _)| *s).collect();
                all.extend(
                    semantic
                        .iter()
                        .filter(|(s, _)| !keyword_slots.contains(s))
                        .filter_map(|(s, _)| table.get(*s).map(|f| f.as_ref())),
                );
            }
            response.facets = Some(count_facets(&all, &keys, &table.names));
        }
        keyword.retain(|(slot, _)| table.get(*slot).is_some_and(|f| keys.accepts(f, Except::Nothing)));

        // Semantic candidates passed the filters inside the index walk; the total counts
        // the union of both match sets.
        let in_semantic: HashMap<u32, usize, ahash::RandomState> =
            semantic.iter().enumerate().map(|(rank, (s, _))| (*s, rank)).collect();
        let mut keyword_scores_of_semantic: HashMap<u32, f32, ahash::RandomState> = HashMap::default();
        for (slot, score) in &keyword {
            if in_semantic.contains_key(slot) {
                keyword_scores_of_semantic.insert(*slot, *score);
            }
        }
        response.total = keyword.len() + semantic.len() - keyword_scores_of_semantic.len();

        // Only the best `depth` keyword matches need an exact order (the page, the window
        // the personal touch may reorder, the ranks fusion reads); sorting by another key
        // orders every match.
        let by_key = request.sort != Sort::Relevance;
        let personal = request.affinity.as_ref().filter(|a| !a.is_empty() && self.config.personal_weight > 0.0);
        let page_end = request.offset + request.limit;
        let mut depth = page_end;
        if personal.is_some() {
            depth = depth.max(self.config.rerank_window);
        }
        if response.mode == SearchMode::Hybrid {
            depth = depth.max(self.config.semantic_candidates).max(1_000);
        }
        let popularity_of = |slot: u32| table.get(slot).map_or(0.0, |f| pop(f));
        let id_of = |slot: u32| table.get(slot).map(|f| f.id.clone());
        let keyword_order = |a: &(u32, f32), b: &(u32, f32)| {
            b.1.total_cmp(&a.1)
                .then_with(|| popularity_of(b.0).total_cmp(&popularity_of(a.0)))
                .then_with(|| id_of(a.0).cmp(&id_of(b.0)))
        };
        if !by_key && keyword.len() > depth {
            keyword.select_nth_unstable_by(depth, keyword_order);
            keyword.truncate(depth);
        }
        keyword.sort_unstable_by(keyword_order);

        let candidates = fuse(&keyword, &semantic, &keyword_scores_of_semantic, depth, response.mode, request.fusion);
        let mut ranked: Vec<(u32, Explain)> = candidates.into_iter().collect();
        let relevance = |a: &(u32, Explain), b: &(u32, Explain)| {
            b.1.score
                .total_cmp(&a.1.score)
                .then_with(|| popularity_of(b.0).total_cmp(&popularity_of(a.0)))
                .then_with(|| id_of(a.0).cmp(&id_of(b.0)))
        };
        ranked.sort_unstable_by(relevance);

        // The personal touch: reorder the best results by the shopper's affinities.
        if let Some(affinity) = personal {
            self.personal_touch(&mut ranked, affinity, &table, page_end, relevance);
        }

        // The learned ranker reorders the best results.
        if let Some(stage) = stage.filter(|_| request.sort == Sort::Relevance) {
            self.rank_with_stage(&mut ranked, stage, &table, page_end, request.explain)?;
        }

        if request.sort != Sort::Relevance {
            sort_by_key(&mut ranked, request.sort, &table, &popularity);
        }
        // Business rules over the best results.
        let mut effects = self.apply_rules(&mut ranked, request, &table, &keys, page_end);
        let units = if request.explain && !blank { self.analyzer.query_units(&request.query) } else { Vec::new() };
        response.hits = ranked
            .into_iter()
            .skip(request.offset)
            .take(request.limit)
            .filter_map(|(slot, mut explain)| {
                let facts = table.get(slot)?;
                if !units.is_empty() {
                    explain.matched = self.matched_words(&units, facts);
                }
                Some(Hit {
                    id: facts.id.to_string(),
                    score: explain.score,
                    card: crate::model::ItemCard {
                        title: Some(facts.title.clone()),
                        brand: facts.brand.clone(),
                        category: facts.category.clone(),
                        price: facts.price,
                        image: None,
                    },
                    explain: request.explain.then_some(explain),
                    effects: effects.remove(&slot).unwrap_or_default(),
                })
            })
            .collect();
        Ok(response)
    }
}
