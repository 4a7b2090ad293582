//! The catalog labels of the most popular items — brand and every category level,
//! lowercased — each with its items in popularity order: what the `preferences` source
//! looks a stated preference up in, instead of reading thousands of catalog records per
//! request.
//!
//! Built once per trained generation, at its first use (sets grown from it with fresh items
//! share it: fresh items have no popularity and sit after the indexed ones). It is a guide,
//! not the truth: the source still checks each candidate against the catalog, so a label
//! changed since only hides an item until the next training, and never shows a wrong one.

use std::collections::HashMap;

use crate::error::Result;
use crate::store::Storage;

/// See the module docs.
#[derive(Debug, Default)]
pub struct LabelIndex {
    /// Lowercased label → positions in the set's popularity order (ascending).
    by_label: HashMap<String, Vec<u32>>,
}

impl LabelIndex {
    /// The labels of the first `scan` items of `popularity_order` (ids by item index).
    pub fn build(store: &dyn Storage, item_ids: &[String], popularity_order: &[u32], scan: usize) -> Result<Self> {
        const PIECE: usize = 1024;
        let mut by_label: HashMap<String, Vec<u32>> = HashMap::new();
        let order = &popularity_order[..scan.min(popularity_order.len())];
        for (piece, items) in order.chunks(PIECE).enumerate() {
            let ids: Vec<&str> = items.iter().map(|&i| item_ids[i as usize].as_str()).collect();
            for (k, meta) in store.items_meta(&ids)?.into_iter().enumerate() {
                let Some(meta) = meta else { continue };
                let position = (piece * PIECE + k) as u32;
                let labels = meta.brand.iter().chain(meta.category.iter());
                for label in labels {
                    let list = by_label.entry(label.to_lowercase()).or_default();
                    // A brand equal to a category level: once.
                    if list.last() != Some(&position) {
                        list.push(position);
                    }
                }
            }
        }
        Ok(Self { by_label })
    }

    /// Positions in the popularity order of the items carrying any of `labels`
    /// (lowercased), ascending, each once.
    pub fn positions(&self, labels: &[&str]) -> Vec<u32> {
        let mut positions: Vec<u32> =
            labels.iter().filter_map(|label| self.by_label.get(*label)).flatten().copied().collect();
        positions.sort_unstable();
        positions.dedup();
        positions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EmbeddedStore;

    #[test]
    fn labels_find_the_popular_items_that_carry_them_in_popularity_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), &crate::store::StoreConfig::default()).unwrap();
        let item = |id: &str, brand: &str, category: &[&str]| {
            crate::input::parse_item(&serde_json::json!({"id": id, "title": id, "brand": brand, "category": category}))
                .unwrap()
        };
        store
            .put_items(vec![
                item("a", "Acme", &["Shoes", "Boots"]),
                item("b", "Other", &["Shoes"]),
                item("c", "ACME", &["Bags"]),
                item("d", "Shoes", &["Shoes"]),
            ])
            .unwrap();
        let ids: Vec<String> = ["a", "b", "c", "d", "gone"].iter().map(|s| s.to_string()).collect();
        // Popularity order: d, gone (not in the catalog), c, a, b.
        let order = [3u32, 4, 2, 0, 1];
        let index = LabelIndex::build(&store, &ids, &order, 10).unwrap();
        let items = |labels: &[&str]| -> Vec<&str> {
            index.positions(labels).into_iter().map(|p| ids[order[p as usize] as usize].as_str()).collect()
        };
        assert_eq!(items(&["acme"]), ["c", "a"]);
        assert_eq!(items(&["shoes"]), ["d", "a", "b"]);
        assert_eq!(items(&["boots", "bags"]), ["c", "a"]);
        assert_eq!(items(&["acme", "shoes"]), ["d", "c", "a", "b"]);
        assert!(items(&["Acme"]).is_empty(), "labels are asked lowercased");
        assert!(items(&["nothing"]).is_empty());
        // Only the first `scan` items of the order are indexed.
        let top = LabelIndex::build(&store, &ids, &order, 3).unwrap();
        assert_eq!(top.positions(&["shoes"]), [0]);
    }
}
