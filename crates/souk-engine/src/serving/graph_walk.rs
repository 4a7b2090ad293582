//! The `graph` recall source: items sharing catalog entities with the shopper's recent
//! items — a director, an actor, a brand, a category, a tag — weighted by relation and
//! rarity (`recommend::graph`), each reason naming the history item and the entity shared
//! ("same director as X").

use std::cell::RefCell;

use super::recall::{Recall, RecallSource};
use super::{History, ModelSet, Reason, SourceKind};
use crate::error::Result;
use crate::hashing::IdMap;
use crate::recommend::graph::{ItemGraph, Walked};

/// How many of the most recent history items the walk starts from.
const RECENT_ITEMS: usize = 10;

/// The `graph` source of one request (its walk kept for the reasons).
pub struct GraphSource<'a> {
    set: &'a ModelSet,
    history: &'a History,
    graph: &'a ItemGraph,
    walked: RefCell<IdMap<u32, Walked>>,
}

impl<'a> GraphSource<'a> {
    pub fn new(set: &'a ModelSet, history: &'a History, graph: &'a ItemGraph) -> Self {
        Self { set, history, graph, walked: RefCell::default() }
    }
}

impl RecallSource for GraphSource<'_> {
    fn kind(&self) -> SourceKind {
        SourceKind::Graph
    }

    fn recall(&self, recall: &Recall<'_>) -> Result<Vec<(u32, f32)>> {
        let history = self.history;
        let start: Vec<(u32, f32)> = history
            .recent
            .iter()
            .take(RECENT_ITEMS)
            .map(|&j| (j, history.pairs.binary_search_by_key(&j, |(i, _)| *i).map_or(0.0, |k| history.pairs[k].1)))
            .filter(|(_, weight)| *weight > 0.0)
            .collect();
        let walked = self.graph.walk(&start, self.graph.params.serve_items_per_entity);
        let mut ranked: Vec<(u32, f32)> = walked
            .iter()
            .filter(|(i, w)| w.score > 0.0 && !(recall.rejected)(**i))
            .map(|(i, w)| (*i, w.score))
            .collect();
        ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        *self.walked.borrow_mut() = walked;
        recall.accepted(ranked)
    }

    fn explain(&self, item: u32, reason: &mut Reason) {
        let walked = self.walked.borrow();
        let Some(w) = walked.get(&item) else { return };
        let (relation, entity) = self.graph.entity(w.entity);
        reason.relation = Some(relation.to_string());
        reason.entity = Some(entity.to_string());
        reason.because = Some(self.set.item_ids[w.via as usize].clone());
        reason.because_event = self.history.last_event.get(&w.via).copied();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::gen::GenConfig;
    use crate::ids::UserId;
    use crate::input::ItemFilter;
    use crate::model::EventType;
    use crate::recommend::graph::facts_of;
    use crate::serving::{recommend, user_history, Exclusions, RecommendConfig, RecommendRequest};
    use crate::store::{EmbeddedStore, Storage};

    fn shop(dir: &std::path::Path) -> (EmbeddedStore, ModelSet) {
        crate::serving::test_shop::trained_shop(dir, GenConfig { items: 200, users: 60, events: 4_000, seed: 5 })
    }

    /// The catalog facts of an item, by id.
    fn facts(store: &EmbeddedStore, id: &str) -> Vec<(String, String)> {
        facts_of(&store.get_item(&crate::ids::ItemId::parse(id, "item").unwrap()).unwrap().unwrap())
    }

    #[test]
    fn proposes_items_sharing_an_entity_with_the_history_within_exclusions_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let (store, set) = shop(dir.path());
        let graph = set.graph.as_ref().expect("the generated catalog's facts make a graph");
        let user = UserId::parse("u000004", "user").unwrap();
        let history = user_history(&set, &store, &user, 200, Exclusions::default()).unwrap();
        let source = GraphSource::new(&set, &history, graph);
        let rejected = |i: u32| i.is_multiple_of(3);
        let filter = ItemFilter { available_only: true, ..ItemFilter::default() };
        let recall = Recall::new(&set, &store, &history, &filter, &rejected, 20);
        let list = source.recall(&recall).unwrap();
        assert!(!list.is_empty());
        assert!(list.windows(2).all(|w| w[0].1 >= w[1].1), "best first: {list:?}");
        let recent: HashSet<&str> =
            history.recent.iter().take(RECENT_ITEMS).map(|&j| set.item_ids[j as usize].as_str()).collect();
        for (i, _) in &list {
            let id = set.item_ids[*i as usize].as_str();
            assert!(!rejected(*i) && !recent.contains(id), "{id}");
            let meta = store.items_meta(&[id]).unwrap().pop().flatten().unwrap();
            assert!(meta.available, "{id}");
            // The reason names a recent item and an entity both items have.
            let mut reason = Reason { source: SourceKind::Graph, ..Reason::default() };
            source.explain(*i, &mut reason);
            let because = reason.because.clone().unwrap();
            assert!(recent.contains(because.as_str()), "{because} is not among the recent items");
            let shared = (reason.relation.clone().unwrap(), reason.entity.clone().unwrap());
            assert!(facts(&store, id).contains(&shared), "{id} lacks {shared:?}");
            assert!(facts(&store, &because).contains(&shared), "{because} lacks {shared:?}");
            assert!(reason.because_event.is_some());
        }
    }

    #[test]
    fn pages_from_the_graph_alone_keep_the_cursor_and_say_what_is_shared() {
        let dir = tempfile::tempdir().unwrap();
        let (store, set) = shop(dir.path());
        let config = RecommendConfig {
            source_weights: SourceKind::ALL
                .into_iter()
                .map(|k| (k, if k == SourceKind::Graph { 1.0 } else { 0.0 }))
                .collect(),
            ..RecommendConfig::default()
        };
        let user = UserId::parse("u000007", "user").unwrap();
        let seen: HashSet<String> = store
            .user_interactions(&user, 10_000)
            .unwrap()
            .into_iter()
            .filter(|i| !matches!(i.event_type, EventType::Search | EventType::Impression))
            .map(|i| i.item)
            .collect();
        let mut shown = HashSet::new();
        let mut request = RecommendRequest::new(user, 5);
        for _ in 0..3 {
            let page = recommend(&set, &store, &config, &request).unwrap();
            assert!(!page.items.is_empty());
            for item in &page.items {
                assert!(shown.insert(item.id.clone()), "{} shown twice", item.id);
                assert!(!seen.contains(&item.id), "{} was seen and is excluded", item.id);
                let reason = item.reasons.iter().find(|r| r.source == SourceKind::Graph).unwrap();
                let because = reason.because.as_deref().unwrap();
                assert!(seen.contains(because), "{because} is not the shopper's");
                let shared = (reason.relation.clone().unwrap(), reason.entity.clone().unwrap());
                assert!(facts(&store, &item.id).contains(&shared) && facts(&store, because).contains(&shared));
            }
            request.cursor = page.next_cursor;
        }
    }

    #[test]
    fn the_graph_is_saved_with_its_generation() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, set) = shop(dir.path());
        let artifacts = crate::store::artifacts::ArtifactStore::new(dir.path());
        set.save(&artifacts).unwrap();
        let loaded = ModelSet::load(&artifacts).unwrap().unwrap();
        assert_eq!(loaded.graph.as_deref(), set.graph.as_deref());
        assert!(loaded.manifest.train_seconds.contains_key("graph"));
    }
}
