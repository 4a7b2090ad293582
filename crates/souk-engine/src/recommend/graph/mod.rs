//! The item graph: catalog items joined through the entities they share — a film's
//! director, actors and genres from a knowledge graph (`kg.RELATION` attributes, see
//! `import::recbole`), and for any shop its brand, category path, tags and short attribute
//! values — and the `graph` model that recommends along it.
//!
//! An entity is a (relation, value) pair; only entities shared by two items or more (and
//! not by all) can join items and are kept. An item is a unit vector built in two steps:
//! per relation, its entities weighted by inverse document frequency `ln(N / df(e))` at unit
//! length (so forty actors weigh what one director does, as a relation); then the relation
//! blocks times the relations' weights, at unit length. `sim(i, j)` is the cosine, i.e. the
//! per-relation cosines weighted by `w(r)²`; a shopper's score of an item is the sum of its
//! cosines to the history, each weighted by the interaction (times `(1 + n_i)^β`, see
//! [`GraphParams::popularity_exponent`]). The relation weights are learned from the
//! training interactions: pairs of items one shopper consumed against pairs drawn at
//! random by popularity (seeded samples), each described by its per-relation cosines; a
//! logistic regression gives each relation its coefficient `β_r` and `w(r)² = max(0, β_r)`
//! — a relation no more common among co-consumed pairs than among random ones, given the
//! others, joins nothing.
//!
//! Serving walks the graph sparsely ([`ItemGraph::walk`]): from each recent item through
//! its entities to the items listing them, the most popular first and at most
//! `serve_items_per_entity` of them per entity, keeping per candidate the history item and
//! the entity that contributed most — the reason ("same director as X").

use serde::{Deserialize, Serialize};

use super::artifact::{corrupt_artifact as corrupt, Array, Artifact};
use super::data::Interactions;
use super::kernels::invalid;
use super::Recommender;
use crate::hashing::IdMap;
use crate::Result;

mod facts;
mod weights;

pub use facts::{facts_of, GraphFacts, KG_PREFIX};

/// Parameters of [`ItemGraph::train`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphParams {
    /// Co-consumed pairs drawn per user to learn the relation weights (as many random
    /// pairs again). At least 1.
    pub pairs_per_user: usize,
    /// Users sampled for the relation weights (evenly spaced rows). At least 1.
    pub max_users: usize,
    /// Items reached through one entity when serving, most popular first. At least 1.
    pub serve_items_per_entity: usize,
    /// `β` in `score · (1 + n_i)^β`, `n_i` the item's users in training: the graph alone
    /// knows nothing of what shoppers take, and similar but unknown items are rarely what
    /// they take next. In [0, 2].
    pub popularity_exponent: f32,
    pub seed: u64,
}

impl Default for GraphParams {
    fn default() -> Self {
        Self { pairs_per_user: 20, max_users: 10_000, serve_items_per_entity: 50, popularity_exponent: 0.0, seed: 42 }
    }
}

impl GraphParams {
    pub fn validate(&self) -> Result<()> {
        for (field, value) in [
            ("graph.pairs_per_user", self.pairs_per_user),
            ("graph.max_users", self.max_users),
            ("graph.serve_items_per_entity", self.serve_items_per_entity),
        ] {
            if value == 0 {
                return Err(invalid(field, "expected at least 1, found 0"));
            }
        }
        super::kernels::check_range("graph.popularity_exponent", self.popularity_exponent, 0.0, 2.0)
    }
}

/// A trained item graph (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct ItemGraph {
    pub params: GraphParams,
    n_items: usize,
    relations: Vec<String>,
    /// Learned weight of each relation.
    relation_weights: Vec<f32>,
    /// Per kept entity: its relation and its value.
    entity_relation: Vec<u32>,
    entity_values: Vec<String>,
    /// Each item's entities (ascending) and their values in the item's unit vector.
    item_ptr: Vec<u32>,
    item_entities: Vec<u32>,
    item_values: Vec<f32>,
    /// Each entity's items, most popular first, and the entity's value in each item's
    /// unit vector.
    entity_ptr: Vec<u32>,
    entity_items: Vec<u32>,
    entity_item_values: Vec<f32>,
    /// `(1 + n_i)^β` of each item (see [`GraphParams::popularity_exponent`]).
    boost: Vec<f32>,
}

/// What [`ItemGraph::walk`] knows of a candidate: its score, and the history item and
/// entity that contributed most to it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Walked {
    pub score: f32,
    pub via: u32,
    pub entity: u32,
    best: f32,
}

impl ItemGraph {
    /// Build the graph over `facts` (one list per item of `data`, by item index; see
    /// [`facts_of`]), learning the relation weights from `data`'s interactions.
    pub fn train(data: &Interactions, facts: &[Vec<(String, String)>], params: &GraphParams) -> Result<Self> {
        if facts.len() != data.n_items() {
            return Err(invalid("graph", format!("{} fact lists for {} items", facts.len(), data.n_items())));
        }
        let mut interned = GraphFacts::new(facts.len());
        for (i, item_facts) in facts.iter().enumerate() {
            interned.set(i, item_facts.clone());
        }
        Self::from_facts(data, interned, params)
    }

    /// Build the graph over interned `facts` of `data`'s items.
    pub fn from_facts(data: &Interactions, facts: GraphFacts, params: &GraphParams) -> Result<Self> {
        params.validate()?;
        let n_items = data.n_items();
        if facts.items.len() != n_items {
            return Err(invalid("graph", format!("facts of {} items for {n_items} items", facts.items.len())));
        }
        let GraphFacts { relations, entity_of, df, items: raw, .. } = facts;
        let mut entity_key: Vec<(u32, String)> = vec![(0, String::new()); df.len()];
        for ((r, value), e) in entity_of {
            entity_key[e as usize] = (r, value);
        }
        let mut popularity = vec![0u32; n_items];
        for &i in &data.indices {
            popularity[i as usize] += 1;
        }
        // Kept entities: shared by two items or more, not by every item.
        let mut kept: Vec<u32> = vec![u32::MAX; entity_key.len()];
        let (mut entity_relation, mut entity_values, mut idf) = (Vec::new(), Vec::new(), Vec::new());
        for (e, (r, value)) in entity_key.into_iter().enumerate() {
            let weight = (n_items as f32 / df[e].max(1) as f32).ln();
            if df[e] >= 2 && weight > 0.0 {
                kept[e] = entity_relation.len() as u32;
                entity_relation.push(r);
                entity_values.push(value);
                idf.push(weight);
            }
        }
        // Each item's relation blocks: its entities of a relation, idf-weighted, at unit
        // length (so forty actors weigh what one director does, as a relation).
        let blocks: Vec<Vec<(u32, f32)>> = raw
            .iter()
            .map(|entities| {
                let mut mine: Vec<(u32, f32)> = entities
                    .iter()
                    .map(|&e| kept[e as usize])
                    .filter(|&k| k != u32::MAX)
                    .map(|k| (k, idf[k as usize]))
                    .collect();
                let mut norms = vec![0f32; relations.len()];
                for &(k, v) in &mine {
                    norms[entity_relation[k as usize] as usize] += v * v;
                }
                for (k, v) in &mut mine {
                    *v /= norms[entity_relation[*k as usize] as usize].sqrt();
                }
                mine.sort_unstable_by_key(|(k, _)| *k);
                mine
            })
            .collect();
        let relation_weights =
            weights::learn_relation_weights(data, &blocks, &entity_relation, relations.len(), params);
        tracing::debug!(
            weights = ?relations.iter().zip(&relation_weights).collect::<Vec<_>>(),
            entities = idf.len(),
            "item graph relation weights"
        );
        // Each item's unit vector: its blocks times the relations' weights, at unit length.
        let (mut item_ptr, mut item_entities, mut item_values) = (vec![0u32], Vec::new(), Vec::new());
        let mut entity_lists: Vec<Vec<(u32, f32)>> = vec![Vec::new(); idf.len()];
        let mut present = vec![false; relations.len()];
        for (i, block) in blocks.iter().enumerate() {
            present.fill(false);
            for &(k, _) in block {
                present[entity_relation[k as usize] as usize] = true;
            }
            let norm: f32 =
                present.iter().zip(&relation_weights).filter(|(p, _)| **p).map(|(_, w)| w * w).sum::<f32>().sqrt();
            for &(k, v) in block {
                let w = relation_weights[entity_relation[k as usize] as usize];
                if w > 0.0 {
                    let value = w * v / norm;
                    item_entities.push(k);
                    item_values.push(value);
                    entity_lists[k as usize].push((i as u32, value));
                }
            }
            item_ptr.push(item_entities.len() as u32);
        }
        let boost: Vec<f32> = popularity.iter().map(|&n| (1.0 + n as f32).powf(params.popularity_exponent)).collect();
        let (mut entity_ptr, mut entity_items, mut entity_item_values) = (vec![0u32], Vec::new(), Vec::new());
        for mut list in entity_lists {
            list.sort_unstable_by(|a, b| popularity[b.0 as usize].cmp(&popularity[a.0 as usize]).then(a.0.cmp(&b.0)));
            entity_items.extend(list.iter().map(|(i, _)| *i));
            entity_item_values.extend(list.iter().map(|(_, v)| *v));
            entity_ptr.push(entity_items.len() as u32);
        }
        Ok(Self {
            params: params.clone(),
            n_items,
            relations,
            relation_weights,
            entity_relation,
            entity_values,
            item_ptr,
            item_entities,
            item_values,
            entity_ptr,
            entity_items,
            entity_item_values,
            boost,
        })
    }

    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// Whether no entity of a weighted relation joins two items (the graph proposes nothing).
    pub fn is_empty(&self) -> bool {
        self.item_entities.is_empty()
    }

    /// Entities kept (shared by two items or more, but not by all).
    pub fn n_entities(&self) -> usize {
        self.entity_values.len()
    }

    /// Each relation with its learned weight.
    pub fn relation_weights(&self) -> impl Iterator<Item = (&str, f32)> {
        self.relations.iter().map(String::as_str).zip(self.relation_weights.iter().copied())
    }

    /// An entity's relation and value.
    pub fn entity(&self, e: u32) -> (&str, &str) {
        (self.relations[self.entity_relation[e as usize] as usize].as_str(), self.entity_values[e as usize].as_str())
    }

    /// An item's entities and their values in its unit vector (nothing beyond the graph).
    fn entities_of(&self, i: u32) -> (&[u32], &[f32]) {
        let i = i as usize;
        if i >= self.n_items {
            return (&[], &[]);
        }
        let range = self.item_ptr[i] as usize..self.item_ptr[i + 1] as usize;
        (&self.item_entities[range.clone()], &self.item_values[range])
    }

    /// An entity's items, most popular first, and its value in each item's unit vector.
    fn items_of(&self, e: u32) -> (&[u32], &[f32]) {
        let range = self.entity_ptr[e as usize] as usize..self.entity_ptr[e as usize + 1] as usize;
        (&self.entity_items[range.clone()], &self.entity_item_values[range])
    }

    /// The cosine of two items' entity vectors.
    pub fn similarity(&self, a: u32, b: u32) -> f32 {
        let ((x, xv), (y, yv)) = (self.entities_of(a), self.entities_of(b));
        let mut dot = 0f32;
        for_shared(x, y, |&e| e, |&e| e, |p, q| dot += xv[p] * yv[q]);
        dot
    }

    /// Walk from `history` ((item, weight) pairs) through each item's entities to at most
    /// `per_entity` items per entity (the most popular), summing cosine contributions;
    /// every candidate but the history's own items, with the history item and entity that
    /// contributed most. Items beyond the graph's are ignored.
    pub fn walk(&self, history: &[(u32, f32)], per_entity: usize) -> IdMap<u32, Walked> {
        let mut out: IdMap<u32, Walked> = IdMap::default();
        out.reserve(history.len() * per_entity * 4);
        for &(j, h) in history {
            let (entities, values) = self.entities_of(j);
            for (&e, &v) in entities.iter().zip(values) {
                let (items, item_values) = self.items_of(e);
                for (&i, &u) in items.iter().zip(item_values).take(per_entity) {
                    let add = h * v * u * self.boost[i as usize];
                    let entry =
                        out.entry(i).or_insert(Walked { score: 0.0, via: j, entity: e, best: f32::NEG_INFINITY });
                    entry.score += add;
                    if add > entry.best {
                        *entry = Walked { score: entry.score, via: j, entity: e, best: add };
                    }
                }
            }
        }
        for &(j, _) in history {
            out.remove(&j);
        }
        out
    }

    pub fn to_artifact(&self) -> Result<Artifact> {
        let mut params = serde_json::to_value(&self.params)
            .map_err(|e| crate::Error::Internal(format!("encoding the item graph: {e}")))?;
        params["n_items"] = self.n_items.into();
        params["relations"] = self.relations.iter().map(|r| serde_json::Value::from(r.as_str())).collect();
        params["entity_values"] = self.entity_values.iter().map(|v| serde_json::Value::from(v.as_str())).collect();
        params["listed"] = self.item_entities.len().into();
        Ok(Artifact {
            name: "graph".into(),
            params,
            arrays: vec![
                Array::F32(self.relation_weights.clone()),
                Array::U32(self.entity_relation.clone()),
                Array::U32(self.item_ptr.clone()),
                Array::U32(self.item_entities.clone()),
                Array::F32(self.item_values.clone()),
                Array::U32(self.entity_ptr.clone()),
                Array::U32(self.entity_items.clone()),
                Array::F32(self.entity_item_values.clone()),
                Array::F32(self.boost.clone()),
            ],
        })
    }

    pub fn from_artifact(artifact: Artifact) -> Result<Self> {
        if artifact.name != "graph" {
            return Err(corrupt(format!("expected an item graph, found {:?}", artifact.name)));
        }
        let n_items = artifact.shape("n_items")?;
        let listed = artifact.shape("listed")?;
        let strings = |key: &str| -> Result<Vec<String>> {
            artifact
                .params
                .get(key)
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .ok_or_else(|| corrupt(format!("params.{key}: expected a list of strings")))
        };
        let relations = strings("relations")?;
        let entity_values = strings("entity_values")?;
        let params: GraphParams = artifact.model_params(&["n_items", "relations", "entity_values", "listed"])?;
        let n_entities = entity_values.len();
        let mut arrays = artifact.arrays.into_iter();
        let relation_weights = Artifact::f32_array(&mut arrays, "relation_weights", relations.len())?;
        let entity_relation = Artifact::u32_array(&mut arrays, "entity_relation", n_entities)?;
        let item_ptr = Artifact::u32_array(&mut arrays, "item_ptr", n_items + 1)?;
        let item_entities = Artifact::u32_array(&mut arrays, "item_entities", listed)?;
        let item_values = Artifact::f32_array(&mut arrays, "item_values", listed)?;
        let entity_ptr = Artifact::u32_array(&mut arrays, "entity_ptr", n_entities + 1)?;
        let entity_items = Artifact::u32_array(&mut arrays, "entity_items", listed)?;
        let entity_item_values = Artifact::f32_array(&mut arrays, "entity_item_values", listed)?;
        let boost = Artifact::f32_array(&mut arrays, "boost", n_items)?;
        let monotone = |ptr: &[u32]| ptr.first() == Some(&0) && ptr.windows(2).all(|w| w[0] <= w[1]);
        if !monotone(&item_ptr) || !monotone(&entity_ptr) || item_ptr[n_items] as usize != listed {
            return Err(corrupt("item graph offsets are not a partition of the listed entities"));
        }
        if entity_ptr[n_entities] as usize != listed
            || item_entities.iter().any(|&e| e as usize >= n_entities)
            || entity_items.iter().any(|&i| i as usize >= n_items)
            || entity_relation.iter().any(|&r| r as usize >= relations.len())
        {
            return Err(corrupt("item graph refers to an entity, item or relation it does not have"));
        }
        Ok(Self {
            params,
            n_items,
            relations,
            relation_weights,
            entity_relation,
            entity_values,
            item_ptr,
            item_entities,
            item_values,
            entity_ptr,
            entity_items,
            entity_item_values,
            boost,
        })
    }
}

/// Call `f(p, q)` for each position pair where `x[p]` and `y[q]` have the same key (both
/// lists ascending by key).
fn for_shared<A, B>(x: &[A], y: &[B], kx: impl Fn(&A) -> u32, ky: impl Fn(&B) -> u32, mut f: impl FnMut(usize, usize)) {
    let (mut p, mut q) = (0, 0);
    while p < x.len() && q < y.len() {
        match kx(&x[p]).cmp(&ky(&y[q])) {
            std::cmp::Ordering::Less => p += 1,
            std::cmp::Ordering::Greater => q += 1,
            std::cmp::Ordering::Equal => {
                f(p, q);
                p += 1;
                q += 1;
            }
        }
    }
}

impl Recommender for ItemGraph {
    fn name(&self) -> &str {
        "graph"
    }

    /// The sum of each item's cosines to the history (every item the graph reaches).
    fn score(&self, _user: Option<u32>, history: &[(u32, f32)], scores: &mut [f32]) {
        scores.fill(0.0);
        for &(j, h) in history {
            let (entities, values) = self.entities_of(j);
            for (&e, &v) in entities.iter().zip(values) {
                let (items, item_values) = self.items_of(e);
                for (&i, &u) in items.iter().zip(item_values) {
                    if let Some(s) = scores.get_mut(i as usize) {
                        *s += h * v * u * self.boost[i as usize];
                    }
                }
            }
        }
    }

    fn to_artifact(&self) -> Option<Artifact> {
        ItemGraph::to_artifact(self).ok()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::model::Item;
    use crate::recommend::InteractionsBuilder;

    fn item(id: &str, json: serde_json::Value) -> Item {
        let mut value = json;
        value["id"] = id.into();
        if value.get("title").is_none() {
            value["title"] = id.into();
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn facts_name_brand_category_prefixes_tags_and_short_attributes() {
        let film = item(
            "f1",
            serde_json::json!({"brand": "Pixar", "category": ["Film", "Animation"], "tags": ["Comedy"],
                "attributes": {"kg.film.film.directed_by": "m.9", "kg.film.film.actor": ["m.1", "m.2"],
                               "year": 1995, "rating": 4.5, "url": "https://example.com/a/very/long/path/to/a/poster.png"}}),
        );
        let facts = facts_of(&film);
        let has = |r: &str, v: &str| facts.iter().any(|(a, b)| a == r && b == v);
        assert!(has("brand", "pixar") && has("category", "film") && has("category", "film > animation"));
        assert!(has("tag", "comedy") && has("film.film.directed_by", "m.9") && has("film.film.actor", "m.2"));
        assert!(has("year", "1995"));
        assert!(!facts.iter().any(|(r, _)| r == "rating" || r == "url"), "measurements and long values: {facts:?}");
    }

    /// Items 0..6; each user consumed items sharing a director; genres are shared at random.
    fn films() -> (Interactions, Vec<Vec<(String, String)>>) {
        let director = |d: &str| ("directed_by".to_string(), d.to_string());
        let genre = |g: &str| ("genre".to_string(), g.to_string());
        let facts = vec![
            vec![director("a"), genre("drama")],
            vec![director("a"), genre("comedy")],
            vec![director("b"), genre("drama")],
            vec![director("b"), genre("comedy")],
            vec![director("c"), genre("drama")],
            vec![director("c"), genre("comedy")],
            vec![director("only-one"), genre("drama")],
        ];
        let mut b = InteractionsBuilder::default();
        for i in 0..7 {
            b.add_item(&format!("i{i}"));
        }
        for u in 0..60 {
            let pair = (u % 3) * 2;
            b.add(&format!("u{u}"), &format!("i{pair}"), 1.0);
            b.add(&format!("u{u}"), &format!("i{}", pair + 1), 1.0);
        }
        (b.build(), facts)
    }

    #[test]
    fn relations_that_predict_co_consumption_weigh_and_the_others_do_not() {
        let (data, facts) = films();
        let order: Vec<usize> = data.item_ids.iter().map(|id| id[1..].parse().unwrap()).collect();
        let facts: Vec<_> = order.iter().map(|&k| facts[k].clone()).collect();
        let graph = ItemGraph::train(&data, &facts, &GraphParams::default()).unwrap();
        let weights: HashMap<&str, f32> = graph.relation_weights().collect();
        assert!(weights["directed_by"] > 0.5, "{weights:?}");
        assert_eq!(weights["genre"], 0.0, "co-consumed pairs never share a genre: {weights:?}");
        // Directors a, b, c and both genres are shared; the one-film director is not.
        assert_eq!(graph.n_entities(), 5);
        let index = |id: &str| data.item_ids.iter().position(|x| x == id).unwrap() as u32;
        assert!((graph.similarity(index("i0"), index("i1")) - 1.0).abs() < 1e-5);
        assert_eq!(graph.similarity(index("i0"), index("i2")), 0.0);
        // Scoring from i2 finds i3 (same director) alone.
        let mut scores = vec![0f32; data.n_items()];
        graph.score(None, &[(index("i2"), 1.0)], &mut scores);
        let best = scores.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0 as u32;
        assert_eq!(best, index("i3"));
        assert_eq!(scores.iter().filter(|s| **s > 0.0).count(), 2, "i2 and i3: {scores:?}");
        // The walk says why, and leaves the history out.
        let walked = graph.walk(&[(index("i2"), 1.0)], 10);
        assert_eq!(walked.len(), 1);
        let w = walked[&index("i3")];
        assert_eq!((w.via, graph.entity(w.entity)), (index("i2"), ("directed_by", "b")));
        assert!((w.score - scores[index("i3") as usize]).abs() < 1e-6);
    }

    #[test]
    fn the_walk_keeps_the_strongest_contribution_and_caps_each_entity() {
        let (data, facts) = films();
        let order: Vec<usize> = data.item_ids.iter().map(|id| id[1..].parse().unwrap()).collect();
        // Every film also of one studio (shared by all: weight 0 by idf).
        let facts: Vec<_> = order
            .iter()
            .map(|&k| {
                let mut f = facts[k].clone();
                f.push(("studio".into(), "s".into()));
                f
            })
            .collect();
        let graph = ItemGraph::train(&data, &facts, &GraphParams::default()).unwrap();
        let index = |id: &str| data.item_ids.iter().position(|x| x == id).unwrap() as u32;
        let walked = graph.walk(&[(index("i0"), 1.0), (index("i2"), 2.0)], 10);
        let mut found: Vec<u32> = walked.keys().copied().collect();
        found.sort();
        let mut expected = vec![index("i1"), index("i3")];
        expected.sort();
        assert_eq!(found, expected, "the studio joins nothing (every item has it)");
        assert_eq!(graph.walk(&[(index("i0"), 1.0)], 1).len(), 0, "the cap reaches i0 itself, the most popular");
    }

    #[test]
    fn facts_given_one_item_at_a_time_and_replaced_make_the_same_graph() {
        let (data, facts) = films();
        let mut interned = GraphFacts::new(facts.len());
        // Item 0 first told something else, then its real facts; the others in reverse.
        interned.set(0, vec![("directed_by".into(), "b".into()), ("studio".into(), "x".into())]);
        for (i, item_facts) in facts.iter().enumerate().rev() {
            interned.set(i, item_facts.clone());
        }
        interned.set(99, vec![("directed_by".into(), "a".into())]);
        let one_by_one = ItemGraph::from_facts(&data, interned, &GraphParams::default()).unwrap();
        let whole = ItemGraph::train(&data, &facts, &GraphParams::default()).unwrap();
        assert_eq!(one_by_one.relation_weights().collect::<Vec<_>>().len(), 3, "directed_by, studio, genre");
        for a in 0..facts.len() as u32 {
            for b in 0..facts.len() as u32 {
                assert!((one_by_one.similarity(a, b) - whole.similarity(a, b)).abs() < 1e-6, "{a} {b}");
            }
        }
        assert_eq!(one_by_one.n_entities(), whole.n_entities(), "the replaced facts left nothing behind");
    }

    #[test]
    fn round_trips_through_its_artifact_and_refuses_a_corrupt_one() {
        let (data, facts) = films();
        let graph = ItemGraph::train(&data, &facts, &GraphParams::default()).unwrap();
        let mut bytes = Vec::new();
        graph.to_artifact().unwrap().write_to(&mut bytes).unwrap();
        let back = ItemGraph::from_artifact(Artifact::read_from(&mut bytes.as_slice()).unwrap()).unwrap();
        assert_eq!(back, graph);
        let mut artifact = graph.to_artifact().unwrap();
        if let Array::U32(items) = &mut artifact.arrays[6] {
            assert_eq!(items.len(), graph.entity_items.len());
            items[0] = 99;
        }
        assert!(ItemGraph::from_artifact(artifact).is_err());
        let mut artifact = graph.to_artifact().unwrap();
        artifact.name = "als".into();
        assert!(ItemGraph::from_artifact(artifact).is_err());
        assert!(ItemGraph::train(&data, &facts[..3], &GraphParams::default()).is_err());
        assert!(ItemGraph::train(&data, &facts, &GraphParams { pairs_per_user: 0, ..GraphParams::default() }).is_err());
    }
}
