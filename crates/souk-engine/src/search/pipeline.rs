//! A search from request to response: keyword and vector matches, facets, filters, fusion
//! of the two lists, the personal touch, the learned ranking stage, sorting, business rules
//! and the page of hits.

use std::collections::{HashMap, HashSet};

use super::columns::{FacetCounter, Keyed, SlotFilter};
use super::explain::{Explain, RankingStage};
use super::fuse::fuse;
use super::index::SearchIndex;
use super::order::sort_by_key;
use super::recall::{self, Matches, RecallContext};
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
        let table = self.facts.read();
        let filter = SlotFilter::new(&request.filters, &table.columns);

        // Recall: each source's candidates.
        let cx = RecallContext { index: self, searcher: &searcher, request, table: &table, filter: &filter };
        let mut lists: Vec<Matches> = Vec::new();
        for source in recall::sources_for(response.mode, vector_query.map(Vec::as_slice)) {
            lists.push(recall::run(source.as_ref(), &cx, &mut response)?);
        }

        // Facets over every candidate (each facet ignoring its own filter, each item once),
        // and the filters on the sources that did not filter inside their walk, in one pass
        // over each source's matches; what passes is keyed for ordering.
        let mut counter = request.facets.then(|| FacetCounter::new(&table.columns, &filter, lists.len() > 1));
        let mut keyed: Vec<Option<Vec<Keyed>>> = Vec::with_capacity(lists.len());
        for list in &mut lists {
            if list.ready {
                if let Some(counter) = counter.as_mut() {
                    counter.count(list.found.iter().map(|(slot, _)| *slot), &filter);
                }
                keyed.push(None);
            } else {
                let kept = table.columns.judge(&list.found, &filter, counter.as_mut());
                list.found = kept.iter().map(|k| (k.slot, k.score)).collect();
                keyed.push(Some(kept));
            }
        }
        response.facets = counter.map(FacetCounter::finish);
        // The total counts the union of the match sets: every list but the largest goes
        // into a map (they are the short ones), the largest is checked against it.
        let largest = (0..lists.len()).max_by_key(|&l| lists[l].found.len()).unwrap_or(0);
        let mut others: HashMap<u32, usize, ahash::RandomState> = HashMap::default();
        for (l, list) in lists.iter().enumerate().filter(|(l, _)| *l != largest) {
            for (slot, _) in &list.found {
                *others.entry(*slot).or_default() |= 1 << l.min(63);
            }
        }
        // (With one list, nothing is shared: no lookups.)
        let largest_only = lists.get(largest).map_or(0, |list| {
            if others.is_empty() {
                list.found.len()
            } else {
                list.found.iter().filter(|(slot, _)| !others.contains_key(slot)).count()
            }
        });
        response.total = others.len() + largest_only;
        let largest_slots: HashSet<u32, ahash::RandomState> =
            if lists.iter().enumerate().any(|(l, list)| l != largest && !list.ready) {
                lists[largest].found.iter().map(|(slot, _)| *slot).collect()
            } else {
                HashSet::default()
            };
        // Whether list `l` shares `slot` with another list.
        let shared = |l: usize, slot: &u32| match others.get(slot) {
            _ if l != largest && largest_slots.contains(slot) => true,
            Some(lists_of) => *lists_of & !(1 << l.min(63)) != 0,
            None => false,
        };

        // Only the best `depth` of a source's unordered matches need an exact order (the
        // page, the window the personal touch may reorder, the ranks fusion reads); sorting
        // by another key orders every match. Scores of the matches cut below the depth that
        // another source found are kept for fusion.
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
        let popularity_of = |slot: u32| table.columns.popularity(slot);
        let id_of = |slot: u32| table.get(slot).map(|f| &*f.id);
        // Score, popularity and the ids' first bytes from the keys; the whole ids only
        // where those tie.
        let source_order = |a: &Keyed, b: &Keyed| a.order(b).then_with(|| id_of(a.slot).cmp(&id_of(b.slot)));
        let lists_len = lists.len();
        let mut below_depth: Vec<HashMap<u32, f32, ahash::RandomState>> = Vec::with_capacity(lists_len);
        for (l, (list, keys)) in lists.iter_mut().zip(keyed).enumerate() {
            let mut below = HashMap::default();
            if let Some(mut keys) = keys {
                if lists_len > 1 {
                    below = list.found.iter().filter(|(slot, _)| shared(l, slot)).copied().collect();
                }
                if !by_key && keys.len() > depth {
                    keys.select_nth_unstable_by(depth, source_order);
                    keys.truncate(depth);
                }
                keys.sort_unstable_by(source_order);
                list.found = keys.into_iter().map(|k| (k.slot, k.score)).collect();
            }
            below_depth.push(below);
        }

        let candidates = fuse(&lists, &below_depth, depth, response.mode, request.fusion);
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
            sort_by_key(&mut ranked, request.sort, &table);
        }
        // Business rules over the best results.
        let mut effects = self.apply_rules(&mut ranked, request, &table, &filter, page_end);
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
