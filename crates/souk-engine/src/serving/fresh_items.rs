//! Catalog items the models never saw, in the model set's item space.
//!
//! A set is trained on the items that have interactions. Items without any — in the
//! catalog at training time with no events yet, or stored since — join the set's item
//! space after them ([`ModelSet::with_fresh_items`]): a new set that shares the trained
//! models (`Arc`) and copies only the item tables (ids, digests, the id map, popularity:
//! `O(items)` per catalog write that brings new items, a few milliseconds per 100,000
//! items), swapped in whole like a trained one. A fresh item gets the factor model's
//! coordinates from the set's [`ContentMap`] applied to its content vector, so the factor
//! source scores it like any other item; the `content` source and similar items find it
//! by content. The next training learns it from its events, if it has any by then. Past
//! 20,000 fresh items their factors are searched through an inverted-file index.

use std::sync::Arc;

use super::{ModelSet, Source};
use crate::error::Result;
use crate::recommend::als::AlsModel;
use crate::recommend::content::{ContentMap, ContentRows};
use crate::recommend::ivf::{exact_search, BuildEffort};
use crate::recommend::live_index::LiveIndex;

/// Fresh items' rows scored exactly per request through their index, at least.
const FRESH_PROBE_ITEMS: usize = 2_000;

impl ModelSet {
    /// The id of item `i` of the set's item space.
    pub fn item_id(&self, i: u32) -> &str {
        self.item_ids[i as usize].as_str()
    }

    /// Whether item `i` is one the models were trained on.
    pub fn is_trained(&self, i: u32) -> bool {
        (i as usize) < self.trained_items
    }

    /// The set's first factor model (the one the content map targets).
    pub fn factor_model(&self) -> Option<&AlsModel> {
        self.models.iter().find_map(|(_, source)| match source {
            Source::Als { model, .. } => Some(model.as_ref()),
            Source::Dense(_) => None,
        })
    }

    /// Item `i`'s coordinates in the first factor model: learned for trained items, mapped
    /// from content for fresh ones (`None` without a factor model, or for a fresh item
    /// without content).
    pub fn factors_of(&self, i: u32) -> Option<&[f32]> {
        let model = self.factor_model()?;
        let f = model.params.factors;
        if self.is_trained(i) {
            return model.item_factors.get(i as usize * f..(i as usize + 1) * f);
        }
        let k = i as usize - self.trained_items;
        let factors = self.fresh_factors.get(k * f..(k + 1) * f)?;
        factors.iter().any(|x| *x != 0.0).then_some(factors)
    }

    /// The fresh items a factor model scores for `user_vector`, best first: (item, score)
    /// of the `k` best that `skip` does not reject. An exact scan over fresh items only.
    pub fn fresh_scores(&self, user_vector: &[f32], k: usize, skip: &dyn Fn(u32) -> bool) -> Vec<(u32, f32)> {
        let Some(model) = self.factor_model() else { return Vec::new() };
        let f = model.params.factors;
        if user_vector.len() != f || f == 0 {
            return Vec::new();
        }
        let trained = self.trained_items as u32;
        let rows = &self.fresh_factors;
        // Items without content have zero factors: never proposed (told by their flag,
        // not by reading the row: the search would otherwise read each admitted row again,
        // at a random place).
        let mut skip = |j: u32| self.fresh_blank.get(j as usize).is_none_or(|&blank| blank) || skip(trained + j);
        let best = match &self.fresh_index {
            Some(index) => index.search(rows, f, user_vector, k, FRESH_PROBE_ITEMS.max(4 * k), &mut skip),
            None => exact_search(rows, f, user_vector, k, &mut skip),
        };
        best.into_iter().map(|(j, s)| (trained + j, s)).collect()
    }

    /// Fit the content map on the trained items' content (`rows`, aligned with the trained
    /// items) and the first factor model's item factors. No factor model, or too little
    /// content: no map.
    pub fn train_content_map(&mut self, rows: &ContentRows) -> Result<()> {
        let Some(model) = self.factor_model() else {
            self.content_map = None;
            return Ok(());
        };
        let map = ContentMap::train(rows, &model.item_factors, model.params.factors)?;
        if let Some(map) = &map {
            tracing::info!(
                lambda = map.lambda,
                validation = ?map.validation,
                baseline_mse = map.baseline_mse,
                "trained the content map"
            );
        }
        self.content_map = map.map(Arc::new);
        Ok(())
    }

    /// This set with `items` (id, content vector) joined after its items; ids it already
    /// holds are skipped. `catalog_merged` marks a set that holds every catalog item.
    pub fn with_fresh_items(&self, items: &[(String, Option<Vec<f32>>)], catalog_merged: bool) -> ModelSet {
        let factors = self.factor_model().map_or(0, |m| m.params.factors);
        let mut item_ids = self.item_ids.clone();
        let mut item_index = self.item_index.clone();
        let mut item_digests = self.item_digests.clone();
        let mut popularity = self.popularity.clone();
        let mut popularity_order = self.popularity_order.clone();
        let mut fresh_factors = self.fresh_factors.clone();
        let mut fresh_blank = self.fresh_blank.clone();
        for (id, content) in items {
            if item_index.contains_key(id) {
                continue;
            }
            let i = item_ids.len() as u32;
            item_index.insert(id.clone(), i);
            item_ids.push(id.clone());
            item_digests.push(xxhash_rust::xxh3::xxh3_64(id.as_bytes()));
            popularity.push(0.0);
            popularity_order.push(i);
            let mapped = match (&self.content_map, content) {
                (Some(map), Some(content)) if content.len() == map.dim_in && map.dim_out == factors => {
                    map.predict(content)
                }
                _ => vec![0.0; factors],
            };
            fresh_blank.push(mapped.iter().all(|x| *x == 0.0));
            fresh_factors.extend(mapped);
        }
        let fresh_index = match &self.fresh_index {
            Some(index) if !index.worn(fresh_factors.len() / factors.max(1)) => Some(index.clone()),
            _ if factors == 0 => None,
            // A copy in cluster order: fresh items are scored on every page that has a shopper
            // vector (3× the rows per second of reading them from `fresh_factors`).
            _ => LiveIndex::build(&fresh_factors, factors, 42, BuildEffort::default())
                .map(|index| Arc::new(index.with_copy(&fresh_factors))),
        };
        ModelSet {
            serial: super::model_set::next_serial(),
            manifest: self.manifest.clone(),
            item_digests,
            item_ids,
            item_index,
            user_index: self.user_index.clone(),
            models: self.models.clone(),
            knn: self.knn.clone(),
            trained_items: self.trained_items,
            content_map: self.content_map.clone(),
            fresh_factors,
            fresh_blank,
            labels: self.labels.clone(),
            fresh_index,
            catalog_merged: catalog_merged || self.catalog_merged,
            popularity,
            popularity_order,
            demographic: self.demographic.clone(),
            graph: self.graph.clone(),
            ranker: self.ranker.clone(),
            search_ranker: self.search_ranker.clone(),
            features: self.features.clone(),
        }
    }
}
