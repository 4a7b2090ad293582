//! A replica over a shared store: what other processes write reaches this process's
//! caches (the store's own index follows inside the store; here the shop's: the live
//! session index, the search index, experiments and API keys).
//!
//! With a store one process owns (the embedded one) there is never anything to follow.

use std::sync::Arc;
use std::time::Duration;

use super::{experiments, keys, learning, Shop};
use crate::error::Result;
use crate::serving::ModelSet;

impl Shop {
    /// Apply what other processes sharing the store wrote since the last call: their events
    /// reach the live session index (the store's index, which recommendations, profiles and
    /// trending read, has them already), changed items are re-read into the search index
    /// (their vectors embedded in the background, as for a write here), erased users
    /// leave the session index, experiments and API keys are reloaded. Returns how many
    /// events and items changed.
    pub fn follow_store(&self) -> Result<usize> {
        let changes = self.store.changes()?;
        if changes.is_empty() {
            return Ok(0);
        }
        if !changes.events.is_empty() && self.sessions.is_built() {
            self.sessions.observe(&changes.events);
        }
        if !changes.erased_users.is_empty() {
            self.sessions.reset();
        }
        let search = self.search.current();
        if search.is_some() && !changes.items.is_empty() {
            let mut present = Vec::new();
            let mut gone = Vec::new();
            for id in &changes.items {
                match self.store.get_item(id)? {
                    Some(item) => present.push(item),
                    None => gone.push(id.as_str()),
                }
            }
            if let (Some(search), false) = (&search, gone.is_empty()) {
                search.delete_items(&gone)?;
            }
            if !present.is_empty() {
                self.index_items(present)?;
            }
        }
        if changes.experiments {
            *self.experiments.write() = experiments::load(self.store.as_ref())?;
        }
        if changes.api_keys {
            *self.keys.write() = keys::load(self.store.as_ref())?;
        }
        if changes.models {
            self.adopt_shared_models()?;
        }
        Ok(changes.events.len() + changes.items.len())
    }

    /// Wait until another process may have written (at most `wait`), then
    /// [`Shop::follow_store`]. A replica's follower thread calls this in a loop.
    pub fn follow_store_after(&self, wait: Duration) -> Result<usize> {
        self.store.wait_for_changes(wait)?;
        self.follow_store()
    }

    /// Serve the newest model generation published over a shared store, when it is not the
    /// one served: copied into this process's `models` directory, loaded and swapped in
    /// whole. Returns whether it swapped. Nothing to do without a shared store.
    pub fn adopt_shared_models(&self) -> Result<bool> {
        let (Some(shared), Some(artifacts)) = (self.store.shared_models(), &self.artifacts) else {
            return Ok(false);
        };
        let Some((number, checksums)) = shared.newest()? else {
            return Ok(false);
        };
        // A training here writes generations too, and publishes what it trains.
        let _training = self.training.lock();
        if let Some(current) = artifacts.current()? {
            if current.checksums().ok().as_deref() == Some(checksums.as_str()) {
                return Ok(false);
            }
        }
        let generation = shared.fetch(number, artifacts)?;
        let Some(set) = ModelSet::load(artifacts)? else {
            return Ok(false);
        };
        if let Some(search) = self.search.current() {
            search.set_popularity(learning::popularity_of(&set));
        }
        self.models.store(Some(Arc::new(set)));
        tracing::info!(generation = number, local = generation.name, "swapped to the shared model generation");
        Ok(true)
    }
}
