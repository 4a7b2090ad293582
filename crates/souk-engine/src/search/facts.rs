//! What search needs to know about each indexed item without touching the index: the
//! facts hits, sorting and the personal touch read, held in memory by slot (filters and
//! facets read the same facts in columns: `columns`).
//!
//! Every version of an item gets a fresh slot, so a slot's facts never change; the slot
//! is stored in the keyword index next to the item's terms.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::analyze::normalize;
use crate::model::Item;

/// Upper bounds of the price buckets; the last bucket is open-ended.
pub const PRICE_BUCKETS: [f64; 8] = [10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0];
/// Values per facet returned (the most frequent).
pub const FACET_VALUES: usize = 20;

/// An item's facts.
#[derive(Debug, Clone)]
pub struct Facts {
    pub id: Arc<str>,
    pub title: String,
    pub category: Vec<String>,
    /// Each level's normalised path from the root (affinity keys).
    pub category_key_paths: Vec<String>,
    pub brand: Option<String>,
    pub brand_key: Option<String>,
    pub price: Option<f64>,
    pub available: bool,
    pub created_at: Option<i64>,
    /// (name, value) with normalised keys; values of arrays are separate pairs.
    pub attributes: Vec<(String, String)>,
    /// Hash of the item's stored form: an unchanged item is not reindexed.
    pub hash: u64,
}

/// The text values of an attribute (array elements one by one); booleans only with
/// `booleans` (they filter, but say nothing as text).
pub(crate) fn attribute_values(value: &serde_json::Value, booleans: bool, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Number(n) => out.push(n.to_string()),
        serde_json::Value::Bool(b) if booleans => out.push(b.to_string()),
        serde_json::Value::Array(values) => values.iter().for_each(|v| attribute_values(v, booleans, out)),
        serde_json::Value::Bool(_) | serde_json::Value::Null | serde_json::Value::Object(_) => {}
    }
}

/// The hash that decides whether an item must be reindexed.
pub fn item_hash(item: &Item) -> u64 {
    let bytes = serde_json::to_vec(item).unwrap_or_default();
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

impl Facts {
    pub fn of(item: &Item) -> Self {
        let mut attributes = Vec::new();
        for (name, value) in &item.attributes {
            let mut values = Vec::new();
            attribute_values(value, true, &mut values);
            attributes.extend(values.into_iter().map(|v| (name.clone(), v)));
        }
        let category_keys: Vec<String> = item.category.iter().map(|c| normalize(c.trim())).collect();
        let paths = |levels: &[String]| -> Vec<String> {
            (0..levels.len()).map(|depth| levels[..=depth].join(" > ")).collect()
        };
        Self {
            id: Arc::from(item.id.as_str()),
            title: item.title.clone(),
            category: item.category.clone(),
            category_key_paths: paths(&category_keys),
            brand: item.brand.clone(),
            brand_key: item.brand.as_deref().map(|b| normalize(b.trim())),
            price: item.price,
            available: item.available,
            created_at: item.created_at,
            attributes,
            hash: item_hash(item),
        }
    }
}

/// One facet value and how many matching items have it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}

/// A price bucket: `[min, max)`, `max` absent for the last.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriceBucket {
    pub min: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    pub count: u64,
}

/// Facet counts over the matching items. Brand, price and attribute facets count with every
/// filter but their own (multi-select); categories count the children of the selected one.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Facets {
    /// Category paths one level below the category filter (top level without one).
    pub category: Vec<FacetCount>,
    pub brand: Vec<FacetCount>,
    pub price: Vec<PriceBucket>,
    pub attributes: BTreeMap<String, Vec<FacetCount>>,
}

/// A shopper's affinities from their behaviour: category levels and brands with weights
/// in (0, 1], the strongest being 1.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Affinity {
    pub categories: BTreeMap<String, f32>,
    pub brands: BTreeMap<String, f32>,
}

impl Affinity {
    /// Build from (facts, weight) of items the shopper interacted with (weights already
    /// carry event type and recency); negative weights (dislikes) count against.
    pub fn from_interactions<'a>(interactions: impl Iterator<Item = (&'a Facts, f32)>) -> Self {
        let mut categories: BTreeMap<String, f32> = BTreeMap::new();
        let mut brands: BTreeMap<String, f32> = BTreeMap::new();
        for (facts, weight) in interactions {
            // Deeper levels are more specific: the leaf counts fully, its parents less.
            let depth = facts.category_key_paths.len();
            for (level, path) in facts.category_key_paths.iter().enumerate() {
                let share = 0.5f32.powi((depth - 1 - level) as i32);
                *categories.entry(path.clone()).or_default() += weight * share;
            }
            if let Some(b) = &facts.brand_key {
                *brands.entry(b.clone()).or_default() += weight;
            }
        }
        let scale = |map: &mut BTreeMap<String, f32>| {
            map.retain(|_, w| *w > 0.0);
            let max = map.values().copied().fold(0f32, f32::max);
            if max > 0.0 {
                map.values_mut().for_each(|w| *w /= max);
            }
        };
        scale(&mut categories);
        scale(&mut brands);
        Self { categories, brands }
    }

    pub fn is_empty(&self) -> bool {
        self.categories.is_empty() && self.brands.is_empty()
    }

    /// How well an item fits, in [0, 1]: the best matching category level and the brand,
    /// averaged.
    pub fn score(&self, facts: &Facts) -> f32 {
        let mut category = 0f32;
        for path in &facts.category_key_paths {
            if let Some(w) = self.categories.get(path) {
                category = category.max(*w);
            }
        }
        let brand = facts.brand_key.as_ref().and_then(|b| self.brands.get(b)).copied().unwrap_or(0.0);
        (category + brand) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ItemId;

    fn item(id: &str, category: &[&str], brand: &str) -> Facts {
        let mut item = Item::new(ItemId::parse(id, "id").unwrap(), id);
        item.category = category.iter().map(|c| c.to_string()).collect();
        item.brand = Some(brand.to_string());
        Facts::of(&item)
    }

    #[test]
    fn affinity_prefers_the_leaf_and_brand() {
        let items = [item("a", &["Electronics", "Audio"], "Sony")];
        let affinity = Affinity::from_interactions(items.iter().map(|f| (f, 1.0)));
        let same = item("x", &["Electronics", "Audio"], "Sony");
        let sibling = item("y", &["Electronics", "Phones"], "Bose");
        let other = item("z", &["Home"], "Ikea");
        assert!(affinity.score(&same) > affinity.score(&sibling));
        assert!(affinity.score(&sibling) > affinity.score(&other));
        assert_eq!(affinity.score(&other), 0.0);
    }
}
