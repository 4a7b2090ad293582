//! An item's catalog facts as entities, and their interning for the graph's build.

use std::collections::HashMap;

use crate::model::Item;

/// Attributes holding knowledge-graph facts (`kg.RELATION`).
pub const KG_PREFIX: &str = "kg.";
/// Attribute values longer than this (URLs, descriptions) are no entities.
const MAX_VALUE_CHARS: usize = 40;
/// An item's entities as (relation, value) pairs, values lower-cased: see the module docs.
/// Knowledge-graph attributes give their relation without the `kg.` prefix; a category
/// path gives each of its prefixes (`audio`, `audio > headphones`) under `category`.
pub fn facts_of(item: &Item) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let clean = |value: &str| value.trim().to_lowercase();
    if let Some(brand) = item.brand.as_deref().filter(|b| !b.trim().is_empty()) {
        out.push(("brand".to_string(), clean(brand)));
    }
    let mut path = String::new();
    for level in &item.category {
        if !path.is_empty() {
            path.push_str(" > ");
        }
        path.push_str(&clean(level));
        out.push(("category".to_string(), path.clone()));
    }
    for tag in &item.tags {
        out.push(("tag".to_string(), clean(tag)));
    }
    let scalar = |value: &serde_json::Value| match value {
        serde_json::Value::String(s) => Some(clean(s)),
        // Whole numbers (a year, a size) are entities; measurements are not.
        serde_json::Value::Number(n) => n.as_i64().map(|n| n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    for (name, value) in &item.attributes {
        let relation = name.strip_prefix(KG_PREFIX).unwrap_or(name);
        let values: Vec<String> = match value {
            serde_json::Value::Array(values) => values.iter().filter_map(scalar).collect(),
            other => scalar(other).into_iter().collect(),
        };
        for value in values.into_iter().filter(|v| !v.is_empty() && v.chars().count() <= MAX_VALUE_CHARS) {
            out.push((relation.to_string(), value));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Items' facts, interned as they come (one copy of each relation and entity value), for
/// [`ItemGraph::from_facts`]: a catalog of a million items is read one item at a time.
#[derive(Debug, Default)]
pub struct GraphFacts {
    pub(super) relations: Vec<String>,
    relation_of: HashMap<String, u32>,
    pub(super) entity_of: HashMap<(u32, String), u32>,
    pub(super) df: Vec<u32>,
    /// Each item's entities, ascending.
    pub(super) items: Vec<Vec<u32>>,
}

impl GraphFacts {
    /// No facts yet for `n_items` items.
    pub fn new(n_items: usize) -> Self {
        Self { items: vec![Vec::new(); n_items], ..Self::default() }
    }

    /// Item `i`'s facts (see [`facts_of`]), replacing any given before. Out of range: ignored.
    pub fn set(&mut self, i: usize, facts: Vec<(String, String)>) {
        if i >= self.items.len() {
            return;
        }
        for &e in &self.items[i] {
            self.df[e as usize] -= 1;
        }
        let mut entities = Vec::with_capacity(facts.len());
        for (relation, value) in facts {
            let r = match self.relation_of.get(&relation) {
                Some(&r) => r,
                None => {
                    self.relations.push(relation.clone());
                    let r = self.relations.len() as u32 - 1;
                    self.relation_of.insert(relation, r);
                    r
                }
            };
            let next = self.df.len() as u32;
            let e = *self.entity_of.entry((r, value)).or_insert(next);
            if e == next {
                self.df.push(0);
            }
            entities.push(e);
        }
        entities.sort_unstable();
        entities.dedup();
        for &e in &entities {
            self.df[e as usize] += 1;
        }
        self.items[i] = entities;
    }
}
