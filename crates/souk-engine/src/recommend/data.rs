//! Training data: a weighted user × item matrix in compressed sparse row form.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::EventType;
use crate::store::{Interaction, Storage};

/// How much each event type says about a user's interest in an item. Configurable, so a
/// shop decides what matters (view < click < cart < purchase; dislikes negative).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventWeights {
    pub view: f32,
    pub click: f32,
    pub add_to_cart: f32,
    pub remove_from_cart: f32,
    pub purchase: f32,
    pub favorite: f32,
    /// Weight of a rating event (any value); see `rating_threshold`.
    pub rating: f32,
    pub review: f32,
    pub dislike: f32,
    /// A view counts only if its dwell time is at least this (0 = every view; views
    /// without a dwell time always count).
    pub min_view_dwell_ms: u32,
    /// Ratings below this value are ignored (0 = every rating counts).
    pub rating_threshold: f32,
}

impl Default for EventWeights {
    fn default() -> Self {
        Self {
            view: 1.0,
            click: 2.0,
            add_to_cart: 4.0,
            remove_from_cart: -2.0,
            purchase: 10.0,
            favorite: 5.0,
            rating: 5.0,
            review: 3.0,
            dislike: -10.0,
            min_view_dwell_ms: 0,
            rating_threshold: 0.0,
        }
    }
}

impl EventWeights {
    /// The weight of one stored interaction (0 for events that say nothing about an item).
    pub fn weight(&self, row: &Interaction) -> f32 {
        self.weight_of(row.event_type, row.value, row.dwell_ms)
    }

    /// The weight of an event of this type, value and dwell time.
    pub fn weight_of(&self, event_type: EventType, value: f32, dwell_ms: u32) -> f32 {
        match event_type {
            EventType::View if self.min_view_dwell_ms > 0 && dwell_ms > 0 && dwell_ms < self.min_view_dwell_ms => 0.0,
            EventType::View => self.view,
            EventType::Click => self.click,
            EventType::AddToCart => self.add_to_cart,
            EventType::RemoveFromCart => self.remove_from_cart,
            EventType::Purchase => self.purchase,
            EventType::Favorite => self.favorite,
            EventType::Rating if value < self.rating_threshold => 0.0,
            EventType::Rating => self.rating,
            EventType::Review => self.review,
            EventType::Dislike => self.dislike,
            EventType::Search | EventType::Impression => 0.0,
        }
    }

    /// Problems with these weights, each with the offending key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (key, value) in [
            ("view", self.view),
            ("click", self.click),
            ("add_to_cart", self.add_to_cart),
            ("remove_from_cart", self.remove_from_cart),
            ("purchase", self.purchase),
            ("favorite", self.favorite),
            ("rating", self.rating),
            ("review", self.review),
            ("dislike", self.dislike),
            ("rating_threshold", self.rating_threshold),
        ] {
            if !value.is_finite() {
                problems.push((format!("weights.{key}"), format!("expected a finite number, found {value}")));
            }
        }
        problems
    }
}

/// A user × item matrix of summed event weights (CSR by user), with the original ids.
/// Only positive sums are kept: a user who viewed and then disliked an item has no
/// positive interaction with it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Interactions {
    pub user_ids: Vec<String>,
    pub item_ids: Vec<String>,
    /// Row `u` is `indices[indptr[u]..indptr[u + 1]]`, sorted by item.
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
    /// The social edges between users (by id) that models may use (see
    /// [`super::social`]); empty on a shop without them.
    pub social: SocialEdges,
}

impl Interactions {
    pub fn n_users(&self) -> usize {
        self.user_ids.len()
    }

    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// The items and weights of user `u`'s row.
    pub fn row(&self, u: usize) -> (&[u32], &[f32]) {
        let range = self.indptr[u]..self.indptr[u + 1];
        (&self.indices[range.clone()], &self.values[range])
    }

    /// User `u`'s row as (item, weight) pairs.
    pub fn history(&self, u: usize) -> Vec<(u32, f32)> {
        let (items, values) = self.row(u);
        items.iter().copied().zip(values.iter().copied()).collect()
    }

    /// The same matrix in CSR by item (rows = items, columns = users).
    pub fn transpose(&self) -> Interactions {
        let n_items = self.n_items();
        let mut counts = vec![0usize; n_items + 1];
        for &i in &self.indices {
            counts[i as usize + 1] += 1;
        }
        for i in 0..n_items {
            counts[i + 1] += counts[i];
        }
        let indptr = counts.clone();
        let mut next = counts;
        let mut indices = vec![0u32; self.nnz()];
        let mut values = vec![0f32; self.nnz()];
        for u in 0..self.n_users() {
            let (items, weights) = self.row(u);
            for (i, w) in items.iter().zip(weights) {
                let slot = next[*i as usize];
                indices[slot] = u as u32;
                values[slot] = *w;
                next[*i as usize] += 1;
            }
        }
        Interactions {
            user_ids: self.item_ids.clone(),
            item_ids: self.user_ids.clone(),
            indptr,
            indices,
            values,
            social: SocialEdges::default(),
        }
    }

    /// Read every live interaction from the store, weighted by `weights`, and every social
    /// edge (weight 1 each, whatever its kind).
    pub fn from_store(store: &dyn Storage, weights: &EventWeights) -> crate::Result<Self> {
        let mut builder = InteractionsBuilder::default();
        store.scan_interactions(&mut |user, item, row| {
            if let Some(item) = item {
                let w = weights.weight(row);
                if w != 0.0 {
                    builder.add(user, item, w);
                }
            }
        })?;
        let mut interactions = builder.build();
        interactions.social = social_edges_of(store)?;
        Ok(interactions)
    }
}

/// Every social edge in the store, weight 1 each.
pub fn social_edges_of(store: &dyn Storage) -> crate::Result<SocialEdges> {
    let mut edges = Vec::new();
    store.scan_follows(&mut |user, other| edges.push((user.to_string(), other.to_string(), 1.0)))?;
    Ok(SocialEdges::new(edges))
}

/// Accumulates (user, item, weight) triples; duplicates are summed.
#[derive(Debug, Default)]
pub struct InteractionsBuilder {
    users: HashMap<String, u32>,
    items: HashMap<String, u32>,
    user_ids: Vec<String>,
    item_ids: Vec<String>,
    triples: Vec<(u32, u32, f32)>,
}

impl InteractionsBuilder {
    /// Make sure an item exists as a column even without interactions (e.g. catalog items).
    pub fn add_item(&mut self, item: &str) -> u32 {
        if let Some(i) = self.items.get(item) {
            return *i;
        }
        let i = self.item_ids.len() as u32;
        self.items.insert(item.to_string(), i);
        self.item_ids.push(item.to_string());
        i
    }

    /// Make sure a user exists as a row.
    pub fn add_user(&mut self, user: &str) -> u32 {
        if let Some(u) = self.users.get(user) {
            return *u;
        }
        let u = self.user_ids.len() as u32;
        self.users.insert(user.to_string(), u);
        self.user_ids.push(user.to_string());
        u
    }

    pub fn add(&mut self, user: &str, item: &str, weight: f32) {
        let u = self.add_user(user);
        let i = self.add_item(item);
        self.triples.push((u, i, weight));
    }

    /// Sum duplicates, keep positive sums, sort rows.
    pub fn build(mut self) -> Interactions {
        self.triples.sort_unstable_by_key(|(u, i, _)| (*u, *i));
        let mut indptr = vec![0usize; self.user_ids.len() + 1];
        let mut indices = Vec::with_capacity(self.triples.len());
        let mut values = Vec::with_capacity(self.triples.len());
        let mut k = 0;
        while k < self.triples.len() {
            let (u, i, _) = self.triples[k];
            let mut sum = 0.0f32;
            while k < self.triples.len() && self.triples[k].0 == u && self.triples[k].1 == i {
                sum += self.triples[k].2;
                k += 1;
            }
            if sum > 0.0 {
                indices.push(i);
                values.push(sum);
                indptr[u as usize + 1] += 1;
            }
        }
        for u in 0..self.user_ids.len() {
            indptr[u + 1] += indptr[u];
        }
        Interactions {
            user_ids: self.user_ids,
            item_ids: self.item_ids,
            indptr,
            indices,
            values,
            social: SocialEdges::default(),
        }
    }
}

/// Directed social edges by user id: `(user, other, weight)`, `user` follows / befriends /
/// trusts `other`. Shared by the clones of a training matrix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SocialEdges {
    pub edges: Arc<Vec<(String, String, f32)>>,
}

impl SocialEdges {
    pub fn new(edges: Vec<(String, String, f32)>) -> Self {
        Self { edges: Arc::new(edges) }
    }

    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }

    pub fn len(&self) -> usize {
        self.edges.len()
    }

    /// Every edge touching `user` removed (what erasing a user leaves for training).
    pub fn without_user(&self, user: &str) -> SocialEdges {
        SocialEdges::new(self.edges.iter().filter(|(a, b, _)| a != user && b != user).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_sum_and_non_positive_sums_drop() {
        let mut b = InteractionsBuilder::default();
        b.add("u1", "a", 1.0);
        b.add("u1", "a", 3.0);
        b.add("u1", "b", 1.0);
        b.add("u1", "b", -10.0);
        b.add("u2", "b", 2.0);
        b.add_item("c");
        let m = b.build();
        assert_eq!((m.n_users(), m.n_items(), m.nnz()), (2, 3, 2));
        assert_eq!(m.history(0), vec![(0, 4.0)]);
        assert_eq!(m.history(1), vec![(1, 2.0)]);
        let t = m.transpose();
        assert_eq!(t.history(1), vec![(1, 2.0)]);
        assert_eq!(t.history(2), vec![]);
        assert_eq!(t.transpose(), m);
    }
}
