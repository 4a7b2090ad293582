//! What search needs to know about each indexed item without touching the index: the
//! facts filters, facets, sorting and the personal touch read, held in memory by slot.
//!
//! Every version of an item gets a fresh slot, so a slot's facts never change; the slot
//! is stored in the keyword index next to the item's terms.

use crate::input::ItemFilter;
use std::collections::{BTreeMap, HashMap};
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
    /// Normalised category levels (for case-insensitive filters).
    pub category_keys: Vec<String>,
    /// Each level's path from the root, as shown (`Electronics > Audio`).
    pub category_paths: Vec<String>,
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
    /// Small-integer ids of the facet values, given when the item enters the table.
    pub(crate) facet_ids: FacetIds,
}

/// An item's facet values as ids of the table's [`FacetNames`].
#[derive(Debug, Clone, Default)]
pub(crate) struct FacetIds {
    /// Per category level, the id of its path from the root.
    category_paths: Vec<u32>,
    brand: Option<u32>,
    /// Per (name, value) attribute pair.
    attributes: Vec<u32>,
}

/// Strings numbered in order of first sight.
#[derive(Debug, Default)]
struct Interner {
    ids: HashMap<String, u32, ahash::RandomState>,
    names: Vec<String>,
}

impl Interner {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }
}

/// The facet values of every item the table has held, numbered so that counting facets
/// adds to arrays instead of hashing strings for every match.
#[derive(Debug, Default)]
pub(crate) struct FacetNames {
    category_paths: Interner,
    brands: Interner,
    /// `name` U+001F `value`.
    attributes: Interner,
    attribute_parts: Vec<(String, String)>,
}

impl FacetNames {
    /// Give `facts` the ids of its values (numbering values not seen before).
    pub(crate) fn assign(&mut self, facts: &mut Facts) {
        let category_paths = facts.category_paths.iter().map(|p| self.category_paths.id(p)).collect();
        let brand = facts.brand.as_deref().map(|b| self.brands.id(b));
        let mut attributes = Vec::with_capacity(facts.attributes.len());
        for (name, value) in &facts.attributes {
            let before = self.attributes.names.len();
            let id = self.attributes.id(&format!("{name}\u{1f}{value}"));
            if self.attributes.names.len() > before {
                self.attribute_parts.push((name.clone(), value.clone()));
            }
            attributes.push(id);
        }
        facts.facet_ids = FacetIds { category_paths, brand, attributes };
    }
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
            category_paths: paths(&item.category),
            category_key_paths: paths(&category_keys),
            category_keys,
            brand: item.brand.clone(),
            brand_key: item.brand.as_deref().map(|b| normalize(b.trim())),
            price: item.price,
            available: item.available,
            created_at: item.created_at,
            attributes,
            hash: item_hash(item),
            facet_ids: FacetIds::default(),
        }
    }

    fn attribute(&self, name: &str, value_key: &str) -> bool {
        self.attributes.iter().any(|(n, v)| n == name && normalize(v) == value_key)
    }
}

/// The filter keys, normalised once per request.
#[derive(Debug, Clone, Default)]
pub(crate) struct FilterKeys {
    category: Vec<String>,
    brands: Vec<String>,
    price_min: Option<f64>,
    price_max: Option<f64>,
    available_only: bool,
    attributes: BTreeMap<String, Vec<String>>,
}

/// Which filter a facet ignores (multi-select facets count as if their own selection were
/// not made).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Except {
    Nothing,
    Category,
    Brand,
    Price,
    Attribute,
}

impl FilterKeys {
    pub fn new(filters: &ItemFilter) -> Self {
        let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in &filters.attributes {
            attributes.entry(name.clone()).or_default().push(normalize(value.trim()));
        }
        Self {
            category: filters.category.iter().map(|c| normalize(c.trim())).collect(),
            brands: filters.brands.iter().map(|b| normalize(b.trim())).collect(),
            price_min: filters.min_price,
            price_max: filters.max_price,
            available_only: filters.available_only,
            attributes,
        }
    }

    pub fn category_depth(&self) -> usize {
        self.category.len()
    }

    pub fn accepts(&self, facts: &Facts, except: Except) -> bool {
        self.verdicts(facts).accepts(except)
    }

    /// No filter but availability.
    fn is_unfiltered(&self) -> bool {
        self.category.is_empty()
            && self.brands.is_empty()
            && self.price_min.is_none()
            && self.price_max.is_none()
            && self.attributes.is_empty()
    }

    /// Which filters an item passes, each judged once (facet counting asks the same item
    /// about every filter but one, four times).
    pub(crate) fn verdicts(&self, facts: &Facts) -> Verdicts {
        let available = !self.available_only || facts.available;
        if self.is_unfiltered() {
            return Verdicts { available, category: true, brand: true, price: true, attribute: true };
        }
        let category = self.category.len() <= facts.category_keys.len()
            && self.category.iter().zip(&facts.category_keys).all(|(a, b)| a == b);
        let brand = self.brands.is_empty() || facts.brand_key.as_ref().is_some_and(|b| self.brands.contains(b));
        let price = match facts.price {
            _ if self.price_min.is_none() && self.price_max.is_none() => true,
            None => false,
            Some(price) => {
                !(self.price_min.is_some_and(|min| price < min) || self.price_max.is_some_and(|max| price > max))
            }
        };
        let attribute = self.attributes.iter().all(|(name, values)| values.iter().any(|v| facts.attribute(name, v)));
        Verdicts { available, category, brand, price, attribute }
    }
}

/// One item's pass or fail per filter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Verdicts {
    available: bool,
    category: bool,
    brand: bool,
    price: bool,
    attribute: bool,
}

impl Verdicts {
    /// Whether the item passes every filter but `except`.
    pub(crate) fn accepts(self, except: Except) -> bool {
        self.available
            && (self.category || except == Except::Category)
            && (self.brand || except == Except::Brand)
            && (self.price || except == Except::Price)
            && (self.attribute || except == Except::Attribute)
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

fn top_counts(mut counts: Vec<(String, u64)>) -> Vec<FacetCount> {
    counts.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts.truncate(FACET_VALUES);
    counts.into_iter().map(|(value, count)| FacetCount { value, count }).collect()
}

/// Count facets over `matches` (facts of every matching item, before filtering).
pub(crate) fn count_facets(matches: &[&Facts], keys: &FilterKeys, names: &FacetNames) -> Facets {
    let depth = keys.category_depth();
    // Counted into arrays by facet id: facet counting touches every match.
    let mut category = vec![0u64; names.category_paths.names.len()];
    let mut brand = vec![0u64; names.brands.names.len()];
    let mut price = vec![0u64; PRICE_BUCKETS.len() + 1];
    let mut attributes = vec![0u64; names.attributes.names.len()];
    for facts in matches {
        let verdicts = keys.verdicts(facts);
        let ids = &facts.facet_ids;
        // Children of the selected category: counted with every filter, its own included.
        if let Some(&path) = ids.category_paths.get(depth) {
            if verdicts.accepts(Except::Nothing) {
                category[path as usize] += 1;
            }
        }
        if let Some(b) = ids.brand {
            if verdicts.accepts(Except::Brand) {
                brand[b as usize] += 1;
            }
        }
        if let Some(p) = facts.price {
            if verdicts.accepts(Except::Price) {
                price[PRICE_BUCKETS.iter().position(|&max| p < max).unwrap_or(PRICE_BUCKETS.len())] += 1;
            }
        }
        if !ids.attributes.is_empty() && verdicts.accepts(Except::Attribute) {
            for &a in &ids.attributes {
                attributes[a as usize] += 1;
            }
        }
    }
    let price = price
        .into_iter()
        .enumerate()
        .filter(|(_, count)| *count > 0)
        .map(|(i, count)| PriceBucket {
            min: if i == 0 { 0.0 } else { PRICE_BUCKETS[i - 1] },
            max: PRICE_BUCKETS.get(i).copied(),
            count,
        })
        .collect();
    let mut by_name: BTreeMap<&str, Vec<(&str, u64)>> = BTreeMap::new();
    for (id, &count) in attributes.iter().enumerate().filter(|(_, c)| **c > 0) {
        let (name, value) = &names.attribute_parts[id];
        by_name.entry(name).or_default().push((value, count));
    }
    let named = |counts: &[u64], interner: &Interner| -> Vec<(String, u64)> {
        counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(id, c)| (interner.names[id].clone(), *c)).collect()
    };
    Facets {
        category: top_counts(named(&category, &names.category_paths)),
        brand: top_counts(named(&brand, &names.brands)),
        price,
        attributes: by_name
            .into_iter()
            .map(|(name, counts)| {
                (name.to_string(), top_counts(counts.into_iter().map(|(v, c)| (v.to_string(), c)).collect()))
            })
            .collect(),
    }
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

    fn item(id: &str, category: &[&str], brand: &str, price: f64, color: &str) -> Facts {
        let mut item = Item::new(ItemId::parse(id, "id").unwrap(), id);
        item.category = category.iter().map(|c| c.to_string()).collect();
        item.brand = Some(brand.to_string());
        item.price = Some(price);
        item.attributes.insert("color".into(), serde_json::json!(color));
        let mut facts = Facts::of(&item);
        NAMES.with(|names| names.borrow_mut().assign(&mut facts));
        facts
    }

    thread_local! {
        static NAMES: std::cell::RefCell<FacetNames> = std::cell::RefCell::new(FacetNames::default());
    }

    #[test]
    fn facets_count_disjunctively_and_filters_combine() {
        let items = [
            item("a", &["Electronics", "Audio"], "Sony", 40.0, "Black"),
            item("b", &["Electronics", "Audio"], "Bose", 300.0, "White"),
            item("c", &["Electronics", "Phones"], "Sony", 900.0, "Black"),
            item("d", &["Home", "Kitchen"], "Sony", 15.0, "Red"),
        ];
        let matches: Vec<&Facts> = items.iter().collect();
        let filters =
            ItemFilter { category: vec!["electronics".into()], brands: vec!["SONY".into()], ..ItemFilter::default() };
        let keys = FilterKeys::new(&filters);
        let accepted: Vec<&str> = matches.iter().filter(|f| keys.accepts(f, Except::Nothing)).map(|f| &*f.id).collect();
        assert_eq!(accepted, vec!["a", "c"]);
        let facets = NAMES.with(|names| count_facets(&matches, &keys, &names.borrow()));
        // Brand counts ignore the brand filter but keep the category filter.
        assert_eq!(
            facets.brand,
            vec![FacetCount { value: "Sony".into(), count: 2 }, FacetCount { value: "Bose".into(), count: 1 }]
        );
        // Categories one level below the filter, counted with the brand filter.
        assert_eq!(
            facets.category,
            vec![
                FacetCount { value: "Electronics > Audio".into(), count: 1 },
                FacetCount { value: "Electronics > Phones".into(), count: 1 }
            ]
        );
        assert_eq!(facets.price.iter().map(|b| b.count).sum::<u64>(), 2);
        assert_eq!(facets.attributes["color"], vec![FacetCount { value: "Black".into(), count: 2 }]);
    }

    #[test]
    fn price_and_attribute_filters() {
        let items = [item("a", &["X"], "B", 40.0, "Black"), item("b", &["X"], "B", 300.0, "White")];
        let filters = ItemFilter {
            max_price: Some(100.0),
            attributes: vec![("color".into(), "black".into()), ("color".into(), "red".into())],
            ..ItemFilter::default()
        };
        let keys = FilterKeys::new(&filters);
        assert!(keys.accepts(&items[0], Except::Nothing));
        assert!(!keys.accepts(&items[1], Except::Nothing));
    }

    #[test]
    fn affinity_prefers_the_leaf_and_brand() {
        let items = [item("a", &["Electronics", "Audio"], "Sony", 40.0, "Black")];
        let affinity = Affinity::from_interactions(items.iter().map(|f| (f, 1.0)));
        let same = item("x", &["Electronics", "Audio"], "Sony", 1.0, "Red");
        let sibling = item("y", &["Electronics", "Phones"], "Bose", 1.0, "Red");
        let other = item("z", &["Home"], "Ikea", 1.0, "Red");
        assert!(affinity.score(&same) > affinity.score(&sibling));
        assert!(affinity.score(&sibling) > affinity.score(&other));
        assert_eq!(affinity.score(&other), 0.0);
    }
}
