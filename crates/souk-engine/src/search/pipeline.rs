//! A search from request to response: keyword and vector matches, facets, filters, fusion
//! of the two lists, the personal touch, the learned ranking stage, sorting, business rules
//! and the page of hits.

use std::collections::HashMap;

use tantivy::query::{AllQuery, Query};

use super::explain::{Explain, RankingStage, RANKING_WINDOW};
use super::facts::{count_facets, Except, Facts, FilterKeys};
use super::index::{tantivy_error, SearchIndex};
use super::keyword::MatchCollector;
use super::query;
use super::request::{Fusion, Hit, SearchMode, SearchRequest, SearchResponse, Sort};
use super::vectors;
use crate::error::{Error, Result, ValidationError};
use crate::fusion;
use crate::rank::rerank::{rerank, Candidate, Effect};

impl SearchIndex {
    /// Run a search.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResponse> {
        self.search_ranked(request, None)
    }

    /// [`SearchIndex::search`] with a learned ranking stage over the best
    /// [`RANKING_WINDOW`] results (relevance order only; a sort by key ignores it).
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
        let mut keyword: Vec<(u32, f32)> = Vec::new();
        if use_keywords {
            match query::build(&self.analyzer, &self.synonyms, &self.fields.text, &searcher, &request.query) {
                None => keyword = searcher.search(&AllQuery, &MatchCollector).map_err(tantivy_error)?,
                Some(built) => {
                    keyword =
                        searcher.search(built.strict.as_ref() as &dyn Query, &MatchCollector).map_err(tantivy_error)?;
                    if keyword.is_empty() {
                        if let Some(relaxed) = &built.relaxed {
                            keyword = searcher
                                .search(relaxed.as_ref() as &dyn Query, &MatchCollector)
                                .map_err(tantivy_error)?;
                            response.relaxed = !keyword.is_empty();
                        }
                    }
                    response.ignored = built.ignored;
                    response.fuzzy = built.fuzzy;
                    response.expanded = built.expanded;
                }
            }
        }

        let table = self.facts.read();
        let popularity = self.popularity.read().clone();
        let pop = |facts: &Facts| popularity.get(&facts.id).copied().unwrap_or(0.0);

        // Vector matches, filtered inside the index walk.
        let mut semantic: Vec<(u32, f32)> = Vec::new();
        if let Some(vector) = vector_query {
            let space = self.existing_space(&request.space).ok_or_else(|| {
                Error::Invalid(ValidationError::new(
                    "unknown_vector_space",
                    "space",
                    format!("no item has vectors named {:?}", request.space),
                ))
            })?;
            if vector.len() != space.dim() {
                return Err(Error::Invalid(ValidationError::new(
                    "invalid_vector",
                    "vector",
                    format!("expected {} dimensions, found {}", space.dim(), vector.len()),
                )));
            }
            let query = vectors::unit(vector);
            let k = self.config.semantic_candidates.max(request.offset + request.limit);
            let accept = |id: &str| table.by_id(id).is_some_and(|f| keys.accepts(f, Except::Nothing));
            let found = space.search(&query, k, vectors::default_probe(space.len(), k), &accept);
            semantic = found.into_iter().filter_map(|(id, s)| table.by_id.get(&*id).map(|&slot| (slot, s))).collect();
        }

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
        let max_bm25 = keyword.first().map_or(0.0, |k| k.1);

        let mut candidates: HashMap<u32, Explain, ahash::RandomState> =
            HashMap::with_capacity_and_hasher(keyword.len() + semantic.len(), ahash::RandomState::new());
        for (rank, (slot, score)) in keyword.iter().enumerate() {
            let entry = candidates.entry(*slot).or_default();
            entry.bm25 = Some(*score);
            entry.keyword_rank = Some(rank + 1);
        }
        let (min_cos, max_cos) =
            semantic.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), (_, s)| (lo.min(*s), hi.max(*s)));
        for (rank, (slot, score)) in semantic.iter().enumerate() {
            let entry = candidates.entry(*slot).or_default();
            entry.vector = Some(*score);
            entry.vector_rank = Some(rank + 1);
            if entry.bm25.is_none() {
                // A keyword match below the ranked depth: its score is exact, its rank
                // counts as just past the depth.
                if let Some(score) = keyword_scores_of_semantic.get(slot) {
                    entry.bm25 = Some(*score);
                    entry.keyword_rank = Some(depth + 1);
                }
            }
        }
        for explain in candidates.values_mut() {
            explain.fusion = match response.mode {
                SearchMode::Keyword => explain.bm25.unwrap_or(0.0),
                SearchMode::Semantic => explain.vector.unwrap_or(0.0),
                SearchMode::Hybrid => match request.fusion {
                    Fusion::Rrf { k } => {
                        let term = |rank: Option<usize>| rank.map_or(0.0, |r| fusion::reciprocal_rank(f64::from(k), r));
                        (term(explain.keyword_rank) + term(explain.vector_rank)) as f32
                    }
                    Fusion::Weighted { alpha } => {
                        let kw = explain.bm25.map_or(0.0, |s| fusion::max_scaled(s, max_bm25));
                        let vec = explain.vector.map_or(0.0, |s| fusion::min_max(s, min_cos, max_cos));
                        alpha * kw + (1.0 - alpha) * vec
                    }
                },
            };
            explain.score = explain.fusion;
        }
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
            let window = self.config.rerank_window.max(page_end).min(ranked.len());
            let max = ranked.first().map_or(0.0, |r| r.1.score);
            for (slot, explain) in &mut ranked[..window] {
                let personal = table.get(*slot).map_or(0.0, |f| affinity.score(f));
                explain.personal = Some(personal);
                let base = if max > 0.0 { explain.fusion / max } else { 0.0 };
                explain.score = base + self.config.personal_weight * personal;
            }
            ranked[..window].sort_unstable_by(relevance);
        }

        // The learned ranker reorders the best results.
        if let Some(stage) = stage.filter(|_| request.sort == Sort::Relevance) {
            // Everything the rules may arrange is scored by the ranker, so they compare like
            // with like.
            let window = RANKING_WINDOW.max(self.config.rerank_window).max(page_end).min(ranked.len());
            let seen: Vec<(&str, &Explain)> = ranked[..window]
                .iter()
                .filter_map(|(slot, explain)| table.get(*slot).map(|f| (&*f.id, explain)))
                .collect();
            let scored = if seen.len() == window { stage.score(&seen)? } else { None };
            if let Some(scores) = scored.filter(|scores| scores.len() == window) {
                for ((_, explain), (score, contributions)) in ranked[..window].iter_mut().zip(scores) {
                    explain.ranker = Some(score);
                    explain.score = score;
                    explain.contributions = if request.explain { contributions } else { Vec::new() };
                }
                // Stable: equal scores keep the relevance order. Results past the window
                // keep their place after it.
                ranked[..window].sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
            }
        }

        let order = |f: &Facts, key: Sort| -> f64 {
            match key {
                Sort::PriceAsc => f.price.unwrap_or(f64::INFINITY),
                Sort::PriceDesc => -f.price.unwrap_or(f64::NEG_INFINITY),
                Sort::Newest => -(f.created_at.unwrap_or(i64::MIN) as f64),
                Sort::Popularity => -f64::from(pop(f)),
                Sort::Relevance => 0.0,
            }
        };
        if request.sort != Sort::Relevance {
            // Stable: equal keys keep relevance order.
            ranked.sort_by(|a, b| {
                let (fa, fb) = (table.get(a.0), table.get(b.0));
                let (ka, kb) = (
                    fa.map_or(f64::INFINITY, |f| order(f, request.sort)),
                    fb.map_or(f64::INFINITY, |f| order(f, request.sort)),
                );
                ka.total_cmp(&kb)
            });
        }
        // Business rules over the best results: pins and promotion slots are positions in
        // the whole list, so the arrangement is computed down to the page's end.
        let mut effects: HashMap<u32, Vec<Effect>> = HashMap::new();
        if !request.rules.is_empty() {
            let window = self.config.rerank_window.max(page_end).min(ranked.len());
            ranked.truncate(window);
            // A pinned item that did not match joins when it passes the filters.
            for pin in &request.rules.pin {
                let Some(&slot) = table.by_id.get(pin.item.as_str()) else { continue };
                if ranked.iter().any(|(s, _)| *s == slot)
                    || !table.get(slot).is_some_and(|f| keys.accepts(f, Except::Nothing))
                {
                    continue;
                }
                ranked.push((slot, Explain::default()));
            }
            let count = ranked.len();
            let candidates: Vec<Candidate> = ranked
                .iter()
                .enumerate()
                .filter_map(|(position, (slot, explain))| {
                    let facts = table.get(*slot)?;
                    // Sorted by a key, the order is the score: earlier is better.
                    let score = if request.sort == Sort::Relevance {
                        f64::from(explain.score)
                    } else {
                        (count - position) as f64
                    };
                    let mut candidate = Candidate::new(facts.id.to_string(), score);
                    candidate.category = facts.category.clone();
                    candidate.brand = facts.brand.clone();
                    candidate.price = facts.price;
                    candidate.available = facts.available;
                    candidate.attributes = facts.attributes.clone();
                    Some(candidate)
                })
                .collect();
            let mut by_id: HashMap<String, (u32, Explain)> = ranked
                .drain(..)
                .filter_map(|(slot, explain)| table.get(slot).map(|f| (f.id.to_string(), (slot, explain))))
                .collect();
            for out in rerank(&candidates, &request.rules, page_end) {
                if let Some((slot, mut explain)) = by_id.remove(&out.id) {
                    if request.sort == Sort::Relevance {
                        explain.score = out.score as f32;
                    }
                    effects.insert(slot, out.effects);
                    ranked.push((slot, explain));
                }
            }
        }
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
                    title: facts.title.clone(),
                    brand: facts.brand.clone(),
                    category: facts.category.clone(),
                    price: facts.price,
                    explain: request.explain.then_some(explain),
                    effects: effects.remove(&slot).unwrap_or_default(),
                })
            })
            .collect();
        Ok(response)
    }
}
