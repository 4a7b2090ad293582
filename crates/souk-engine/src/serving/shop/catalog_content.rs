//! The shop's item content: the live content vectors follow catalog writes, and the
//! serving model set takes in catalog items it was not trained on — every item without
//! interactions once per set, and each new item as its catalog write returns — with
//! factors mapped from content (`serving::fresh_items`).

use std::sync::Arc;

use super::Shop;
use crate::error::Result;
use crate::model::Item;
use crate::recommend::content::ContentRows;
use crate::search::vectors::VectorSpace;
use crate::search::TEXT_SPACE;
use crate::serving::ModelSet;

impl Shop {
    /// The text vectors content vectors read: the search index's `text` space, when the
    /// shop has an embedder.
    pub(super) fn text_space(&self) -> Option<Arc<VectorSpace>> {
        self.embedder.as_ref()?;
        self.search.current()?.existing_space(TEXT_SPACE)
    }

    /// Content rows of `ids` (for training the content map).
    pub(super) fn content_rows(&self, ids: &[String]) -> Result<ContentRows> {
        let text = self.text_space();
        self.content.rows_for(self.store(), text.as_deref(), ids)
    }

    /// The serving set, with every catalog item it was not trained on joined (done once
    /// per set, at its first use).
    pub(super) fn serving_models(&self) -> Option<Arc<ModelSet>> {
        let set = self.models.load_full()?;
        if set.catalog_merged {
            return Some(set);
        }
        match self.merge_catalog() {
            Ok(merged) => merged.or(Some(set)),
            Err(e) => {
                tracing::warn!(error = %e, "joining catalog items without interactions to the model set failed");
                Some(set)
            }
        }
    }

    fn merge_catalog(&self) -> Result<Option<Arc<ModelSet>>> {
        let _writing = self.extending.lock();
        let Some(set) = self.models.load_full() else { return Ok(None) };
        if set.catalog_merged {
            return Ok(Some(set));
        }
        let merged = Arc::new(self.catalog_joined(&set)?);
        self.models.store(Some(merged.clone()));
        Ok(Some(merged))
    }

    /// Serve a newly trained set, with the catalog joined before it serves: the first
    /// request after a training then does not wait for the join (at a million items, the
    /// whole catalog's ids). Under the lock catalog writes extend the serving set with, so
    /// an item stored meanwhile is either in the join or extends the new set after it.
    pub(super) fn swap_in(&self, set: ModelSet) {
        let _writing = self.extending.lock();
        let merged = match self.catalog_joined(&set) {
            Ok(merged) => merged,
            Err(e) => {
                // Served unjoined; the first request joins it (`serving_models`).
                tracing::warn!(error = %e, "joining catalog items without interactions to the new model set failed");
                set
            }
        };
        self.models.store(Some(Arc::new(merged)));
    }

    /// `set` with every catalog item it does not hold joined.
    fn catalog_joined(&self, set: &ModelSet) -> Result<ModelSet> {
        let text = self.text_space();
        let ids: Vec<String> = self
            .content
            .ids(self.store(), text.as_deref())?
            .into_iter()
            .filter(|id| !set.item_index.contains_key(&**id))
            .map(|id| id.to_string())
            .collect();
        let merged = self.extended(set, &ids, true)?;
        tracing::info!(items = ids.len(), "catalog items without interactions joined the model set");
        Ok(merged)
    }

    /// `set` with `ids` joined, each with its content vector.
    fn extended(&self, set: &ModelSet, ids: &[String], catalog_merged: bool) -> Result<ModelSet> {
        let text = self.text_space();
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            items.push((id.clone(), self.content.vector_of(self.store(), text.as_deref(), id)?));
        }
        Ok(set.with_fresh_items(&items, catalog_merged))
    }

    /// After a catalog write: the stored items' content vectors, and the serving set takes
    /// in those it does not hold, so they are recommendable and similar at once.
    pub(super) fn follow_catalog_write(&self, items: &[Item]) -> Result<()> {
        let text = self.text_space();
        self.content.observe(items, text.as_deref());
        let _writing = self.extending.lock();
        let Some(set) = self.models.load_full() else { return Ok(()) };
        let new: Vec<String> = items
            .iter()
            .map(|item| item.id.as_str())
            .filter(|id| !set.item_index.contains_key(*id))
            .map(str::to_string)
            .collect();
        if !new.is_empty() {
            let extended = self.extended(&set, &new, false)?;
            self.models.store(Some(Arc::new(extended)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::gen::{GenConfig, Generator};
    use crate::ids::{ItemId, UserId};
    use crate::input::Lang;
    use crate::recommend::kernels::dot;
    use crate::recommend::SourceKind;
    use crate::serving::shop::{RecommendAsk, ShopSettings};
    use crate::serving::ItemFilter;
    use crate::store::{EmbeddedStore, Storage, StoreConfig, StoreSink};

    /// A generated shop, trained after `before_training` ran on its store.
    fn trained_shop_with(dir: &std::path::Path, before_training: &dyn Fn(&EmbeddedStore)) -> Shop {
        let store = EmbeddedStore::open(dir, &StoreConfig::default()).unwrap();
        let generator = Generator::new(GenConfig { items: 400, users: 120, events: 12_000, seed: 21 }).unwrap();
        let mut sink = StoreSink::new(&store);
        generator.run(&mut sink, &mut |_| {}).unwrap();
        sink.finish().unwrap();
        before_training(&store);
        let shop = Shop::new(Arc::new(store), ShopSettings::default());
        shop.train().unwrap();
        shop
    }

    fn trained_shop(dir: &std::path::Path) -> Shop {
        trained_shop_with(dir, &|_| {})
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt()).max(f32::MIN_POSITIVE)
    }

    /// The acceptance test of new items: no events, no training — right after the catalog
    /// write returns, the item is in its neighbour's similar list, has similar items of its
    /// own, has factors mapped near its twin's, and a shopper who liked its twin is
    /// recommended it by the factor model.
    #[test]
    fn a_new_item_is_similar_and_recommendable_as_soon_as_it_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let shop = trained_shop(dir.path());
        let set = shop.models().unwrap();
        assert!(set.catalog_merged);
        assert!(set.content_map.is_some(), "ALS and a catalog with content: a map");
        // The most popular item, its heaviest viewer, and a twin of it under a new id.
        let twin_of = set.popularity_order[0];
        let twin_id = set.item_id(twin_of).to_string();
        let original = shop.store().get_item(&ItemId::parse(&twin_id, "id").unwrap()).unwrap().unwrap();
        let mut fresh = original.clone();
        fresh.id = ItemId::parse("fresh-twin", "id").unwrap();
        fresh.title = format!("{} (new edition)", original.title);
        assert!(!set.item_index.contains_key("fresh-twin"));
        shop.put_items(vec![fresh.clone()]).unwrap();

        // In its twin's similar list, by content.
        let similar = shop.similar(&twin_id, 10, &ItemFilter::default(), Lang::En).unwrap().unwrap();
        let listed = similar.items.iter().find(|i| i.id == "fresh-twin").expect("the new item is similar to its twin");
        assert!(listed.reasons.iter().any(|r| r.source == SourceKind::Content), "{:?}", listed.reasons);
        // Its own similar items: its twin first, by content.
        let own = shop.similar("fresh-twin", 10, &ItemFilter::default(), Lang::En).unwrap().unwrap();
        assert_eq!(own.items[0].id, twin_id);
        assert_eq!(own.items[0].reasons[0].source, SourceKind::Content);
        assert!(own.items.iter().all(|i| i.id != "fresh-twin"));

        // Mapped factors nearer its twin's than most items' are.
        let set = shop.models().unwrap();
        let i = set.item_index["fresh-twin"];
        assert!(!set.is_trained(i));
        let mapped = set.factors_of(i).expect("mapped factors").to_vec();
        let twin = set.factors_of(twin_of).unwrap();
        let mut others: Vec<f32> = (0..set.trained_items as u32)
            .filter(|&j| j != twin_of)
            .map(|j| cosine(&mapped, set.factors_of(j).unwrap()))
            .collect();
        others.sort_by(f32::total_cmp);
        let to_twin = cosine(&mapped, twin);
        assert!(
            to_twin > others[others.len() * 3 / 4],
            "{to_twin} against the upper quartile {}",
            others[others.len() * 3 / 4]
        );

        // Recommended by the factor model to the shoppers who interacted with its twin
        // (among the items of its brand, so the check does not hinge on one page's cut).
        let mut viewers: HashMap<String, usize> = HashMap::new();
        shop.store()
            .scan_interactions(&mut |user, item, _| {
                if item == Some(twin_id.as_str()) {
                    *viewers.entry(user.to_string()).or_default() += 1;
                }
            })
            .unwrap();
        assert!(!viewers.is_empty());
        let mut by_factor = 0;
        for user in viewers.keys() {
            let mut ask = RecommendAsk::new(UserId::parse(user, "user").unwrap(), 20);
            ask.filter.brands = fresh.brand.iter().cloned().collect();
            let page = shop.recommend(ask).unwrap();
            if let Some(item) = page.items.iter().find(|i| i.id == "fresh-twin") {
                if item.reasons.iter().any(|r| r.source == SourceKind::Als) {
                    by_factor += 1;
                }
            }
        }
        assert!(by_factor * 2 >= viewers.len(), "{by_factor} of {} viewers", viewers.len());
        // Deleted: gone from similar lists.
        shop.delete_item(&fresh.id).unwrap();
        let similar = shop.similar(&twin_id, 10, &ItemFilter::default(), Lang::En).unwrap().unwrap();
        assert!(similar.items.iter().all(|i| i.id != "fresh-twin"));
    }

    /// The content map is saved with the generation: a restart serves new items the same.
    #[test]
    fn the_content_map_is_stored_with_the_generation() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        let generator = Generator::new(GenConfig { items: 200, users: 60, events: 5_000, seed: 9 }).unwrap();
        let mut sink = StoreSink::new(&store);
        generator.run(&mut sink, &mut |_| {}).unwrap();
        sink.finish().unwrap();
        let artifacts = crate::store::artifacts::ArtifactStore::new(dir.path());
        let shop = Shop::new(Arc::new(store), ShopSettings::default()).with_artifacts(artifacts.clone());
        shop.train().unwrap();
        let trained = shop.models().unwrap();
        let loaded = ModelSet::load(&artifacts).unwrap().unwrap();
        assert!(trained.content_map.is_some());
        assert_eq!(loaded.content_map.as_deref(), trained.content_map.as_deref());
        assert_eq!((loaded.item_ids.len(), loaded.trained_items), (trained.trained_items, trained.trained_items));
    }

    #[test]
    fn items_without_interactions_at_training_join_the_set_and_answer_similar_by_content() {
        let dir = tempfile::tempdir().unwrap();
        // A catalog item stored before the training, with no events.
        let shop = trained_shop_with(dir.path(), &|store| {
            let mut first = None;
            store
                .scan_items(&mut |item| {
                    first.get_or_insert(item);
                    Ok(())
                })
                .unwrap();
            let mut quiet = first.unwrap();
            quiet.id = ItemId::parse("quiet-one", "id").unwrap();
            store.put_items(vec![quiet]).unwrap();
        });
        let set = shop.models().unwrap();
        let mut catalog = 0;
        shop.store().scan_item_meta(&mut |_, _| catalog += 1).unwrap();
        assert_eq!(set.item_ids.len(), catalog, "every catalog item is in the set's item space");
        let i = set.item_index["quiet-one"];
        assert!(!set.is_trained(i) && set.factors_of(i).is_some());
        let page = shop.similar("quiet-one", 5, &ItemFilter::default(), Lang::En).unwrap().unwrap();
        assert_eq!(page.items.len(), 5);
        assert_eq!(page.items[0].reasons[0].source, SourceKind::Content);
    }
}
