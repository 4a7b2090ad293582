//! [`LiveContent`]: every catalog item's content vector in memory (`serving::content` says
//! what a vector is made of), built from the store on first use, followed through catalog
//! writes, and rebuilt beside the serving copy; and the `content` recall source over them
//! ([`ContentSource`]).
//!
//! A rebuild (at a training: frequencies over today's catalog, the embedder's layout) reads
//! the store and builds a whole new state without holding the serving one's lock; catalog
//! changes that arrive meanwhile go to the serving state and to a journal, replayed on the
//! new state at the swap. Requests never wait for a rebuild — at a million items it takes
//! most of a minute, and a reset-then-rebuild-on-next-use had stalled every request that
//! long.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::content::{
    catalog_features, content_vector, layout_of, ContentLayout, FeatureFrequencies, CONTENT_INDEX,
    CONTENT_INDEX_EFFORT, CONTENT_PROBE_ITEMS,
};
use super::recall::{Recall, RecallSource};
use super::{ModelSet, SourceKind};
use crate::error::Result;
use crate::model::Item;
use crate::recommend::content::ContentRows;
use crate::recommend::ivf::exact_search;
use crate::recommend::live_index::LiveIndex;
use crate::search::vectors::VectorSpace;
use crate::store::Storage;

/// What one item's content vector is made of: its id, catalog features and own vectors.
type ContentParts = (String, Vec<(u64, f32)>, BTreeMap<String, Vec<f32>>);

/// Every stored item, one by one, to a visitor (`Storage::scan_items`).
type ScanItems<'a> = dyn FnMut(&mut dyn FnMut(Item) -> Result<()>) -> Result<()> + 'a;

/// A catalog change a rebuild in progress replays on its new state.
enum Change {
    Upsert(ContentParts),
    Forget(String),
}

/// Every catalog item's content vector, live; see the module docs.
#[derive(Default)]
pub struct LiveContent {
    state: RwLock<Option<State>>,
    /// Held by the one build running (first use or rebuild).
    building: Mutex<()>,
    /// While a build runs: the catalog changes since it started. Pushed to under the
    /// `state` write lock, and taken under it at the swap, so no change falls between.
    journal: Mutex<Option<Vec<Change>>>,
}

impl std::fmt::Debug for LiveContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveContent").field("items", &self.state.read().as_ref().map(|s| s.ids.len())).finish()
    }
}

struct State {
    layout: ContentLayout,
    frequencies: FeatureFrequencies,
    ids: Vec<Arc<str>>,
    index: HashMap<Arc<str>, u32>,
    alive: Vec<bool>,
    rows: Vec<f32>,
    /// Over `rows`, for catalogs too large to scan per request.
    nearest: Option<LiveIndex>,
    /// Each row's item in one model set (see [`RowItems`]).
    row_items: Mutex<Option<Arc<RowItems>>>,
}

/// The item of each content row in one model set, found by id once per row and then
/// read by row number: the content source's candidates need no id lookups.
struct RowItems {
    serial: u64,
    /// [`ROW_UNKNOWN`] until looked up; [`ROW_ABSENT`] for rows the set does not hold.
    items: Vec<AtomicU32>,
}

const ROW_UNKNOWN: u32 = u32::MAX;
const ROW_ABSENT: u32 = u32::MAX - 1;

impl State {
    /// The row → item cache for `set` (a new one, all unknown, when the set changed).
    fn row_items(&self, set: &ModelSet) -> Arc<RowItems> {
        let mut slot = self.row_items.lock();
        match slot.as_ref() {
            Some(cached) if cached.serial == set.serial => cached.clone(),
            _ => {
                let fresh = Arc::new(RowItems {
                    serial: set.serial,
                    items: (0..self.ids.len()).map(|_| AtomicU32::new(ROW_UNKNOWN)).collect(),
                });
                *slot = Some(fresh.clone());
                fresh
            }
        }
    }

    /// Row `row`'s item in `set`, through `cache` (rows added after it was made are looked
    /// up each time).
    fn item_of(&self, set: &ModelSet, cache: &RowItems, row: u32) -> Option<u32> {
        let look_up = || set.item_index.get(&*self.ids[row as usize]).copied();
        let Some(slot) = cache.items.get(row as usize) else { return look_up() };
        match slot.load(AtomicOrdering::Relaxed) {
            ROW_UNKNOWN => {
                let found = look_up();
                slot.store(found.unwrap_or(ROW_ABSENT), AtomicOrdering::Relaxed);
                found
            }
            ROW_ABSENT => None,
            item => Some(item),
        }
    }
}

impl State {
    /// A state over every item `scan` visits.
    fn build(scan: &mut ScanItems<'_>, text: Option<&VectorSpace>) -> Result<State> {
        let started = std::time::Instant::now();
        // What the vectors are made of, item by item: the items themselves (titles,
        // descriptions) are not kept — at a million they took over a gigabyte.
        let mut parts: Vec<ContentParts> = Vec::new();
        scan(&mut |item| {
            let features = catalog_features(&item);
            parts.push((item.id.as_str().to_string(), features, item.vectors));
            Ok(())
        })?;
        let mut state = State {
            frequencies: FeatureFrequencies::of(parts.iter().map(|(_, features, _)| features.as_slice())),
            layout: layout_of(parts.iter().map(|(_, _, own)| own), text),
            ids: Vec::with_capacity(parts.len()),
            index: HashMap::with_capacity(parts.len()),
            alive: Vec::with_capacity(parts.len()),
            rows: Vec::new(),
            nearest: None,
            row_items: Mutex::new(None),
        };
        state.rows.reserve_exact(parts.len() * state.layout.dim());
        for (id, features, own) in &parts {
            state.upsert_parts(id, features, own, text);
        }
        let items = parts.len();
        drop(parts);
        state.index();
        tracing::info!(
            items,
            dim = state.layout.dim(),
            seconds = started.elapsed().as_secs_f64(),
            "built the item content vectors"
        );
        Ok(state)
    }

    /// Take in a catalog change.
    fn apply(&mut self, change: &Change, text: Option<&VectorSpace>) {
        match change {
            Change::Upsert((id, features, own)) => self.upsert_parts(id, features, own, text),
            Change::Forget(id) => {
                if let Some(&i) = self.index.get(id.as_str()) {
                    self.alive[i as usize] = false;
                }
            }
        }
    }

    /// Store (or replace) one item's content vector.
    fn upsert_parts(
        &mut self,
        id: &str,
        features: &[(u64, f32)],
        own: &BTreeMap<String, Vec<f32>>,
        text: Option<&VectorSpace>,
    ) {
        let dim = self.layout.dim();
        let vector = text.filter(|t| t.dim() == self.layout.text_dim).and_then(|t| t.vector_of(id));
        let i = match self.index.get(id) {
            Some(&i) => i as usize,
            None => {
                let id: Arc<str> = Arc::from(id);
                self.index.insert(id.clone(), self.ids.len() as u32);
                self.ids.push(id);
                self.alive.push(true);
                self.rows.resize(self.rows.len() + dim, 0.0);
                self.ids.len() - 1
            }
        };
        self.alive[i] = true;
        let row = &mut self.rows[i * dim..(i + 1) * dim];
        content_vector(&self.layout, &self.frequencies, features, vector.as_deref(), own, row);
        if let Some(index) = &mut self.nearest {
            index.changed(i);
        }
    }

    /// (Re)build the nearest-neighbour index over the rows.
    fn index(&mut self) {
        let started = std::time::Instant::now();
        let shape = CONTENT_INDEX;
        self.nearest = LiveIndex::build_projected(
            &self.rows,
            self.layout.dim(),
            shape.directions,
            shape.extra_per_k,
            11,
            CONTENT_INDEX_EFFORT,
        );
        if self.nearest.is_some() {
            tracing::info!(
                items = self.ids.len(),
                seconds = started.elapsed().as_secs_f64(),
                "indexed the item content vectors"
            );
        }
    }
}

impl LiveContent {
    fn ensure_built(&self, store: &dyn Storage, text: Option<&VectorSpace>) -> Result<()> {
        if self.state.read().is_some() {
            return Ok(());
        }
        let _building = self.building.lock();
        if self.state.read().is_some() {
            return Ok(());
        }
        self.build_and_swap(&mut |visit| store.scan_items(visit), text)
    }

    /// Build a new state from the store beside the serving one (which keeps answering and
    /// following catalog writes meanwhile), then swap it in: a new layout (e.g. once an
    /// embedder is attached), new frequencies at a training.
    pub fn rebuild(&self, store: &dyn Storage, text: Option<&VectorSpace>) -> Result<()> {
        let _building = self.building.lock();
        self.build_and_swap(&mut |visit| store.scan_items(visit), text)
    }

    /// With `building` held: journal, build, replay, swap.
    fn build_and_swap(&self, scan: &mut ScanItems<'_>, text: Option<&VectorSpace>) -> Result<()> {
        *self.journal.lock() = Some(Vec::new());
        let built = State::build(scan, text);
        let mut guard = self.state.write();
        let changes = self.journal.lock().take().unwrap_or_default();
        let mut state = built?;
        for change in &changes {
            state.apply(change, text);
        }
        if state.nearest.as_ref().is_some_and(|index| index.worn(state.ids.len())) {
            state.index();
        }
        let old = guard.replace(state);
        drop(guard);
        // Freed outside the lock (a million ids and rows).
        drop(old);
        Ok(())
    }

    /// Take in a change: into the serving state, and the journal of a build in progress.
    fn record(&self, changes: Vec<Change>, text: Option<&VectorSpace>) {
        let mut guard = self.state.write();
        if let Some(state) = guard.as_mut() {
            for change in &changes {
                state.apply(change, text);
            }
            if state.nearest.as_ref().is_some_and(|index| index.worn(state.ids.len())) {
                state.index();
            }
        }
        if let Some(journal) = self.journal.lock().as_mut() {
            journal.extend(changes);
        }
    }

    /// Follow stored items (new or changed).
    pub fn observe(&self, items: &[Item], text: Option<&VectorSpace>) {
        let changes = items
            .iter()
            .map(|item| Change::Upsert((item.id.as_str().to_string(), catalog_features(item), item.vectors.clone())))
            .collect();
        self.record(changes, text);
    }

    /// Follow a deleted item.
    pub fn forget(&self, id: &str) {
        self.record(vec![Change::Forget(id.to_string())], None);
    }

    /// The content vector of a catalog item.
    pub fn vector_of(&self, store: &dyn Storage, text: Option<&VectorSpace>, id: &str) -> Result<Option<Vec<f32>>> {
        self.ensure_built(store, text)?;
        let guard = self.state.read();
        let Some(state) = guard.as_ref() else { return Ok(None) };
        let dim = state.layout.dim();
        Ok(state
            .index
            .get(id)
            .filter(|&&i| state.alive[i as usize])
            .map(|&i| state.rows[i as usize * dim..(i as usize + 1) * dim].to_vec())
            .filter(|v| v.iter().any(|x| *x != 0.0)))
    }

    /// Content rows aligned with `ids` (zero rows for items without content).
    pub fn rows_for(&self, store: &dyn Storage, text: Option<&VectorSpace>, ids: &[String]) -> Result<ContentRows> {
        self.ensure_built(store, text)?;
        let guard = self.state.read();
        let Some(state) = guard.as_ref() else { return Ok(ContentRows::default()) };
        let dim = state.layout.dim();
        let mut rows = ContentRows::new(dim, ids.len());
        for (k, id) in ids.iter().enumerate() {
            if let Some(&i) = state.index.get(id.as_str()).filter(|&&i| state.alive[i as usize]) {
                rows.row_mut(k).copy_from_slice(&state.rows[i as usize * dim..(i as usize + 1) * dim]);
            }
        }
        Ok(rows)
    }

    /// Every live catalog item's id.
    pub fn ids(&self, store: &dyn Storage, text: Option<&VectorSpace>) -> Result<Vec<Arc<str>>> {
        self.ensure_built(store, text)?;
        let guard = self.state.read();
        let Some(state) = guard.as_ref() else { return Ok(Vec::new()) };
        Ok(state.ids.iter().zip(&state.alive).filter(|(_, a)| **a).map(|(id, _)| id.clone()).collect())
    }

    /// The `k` live items nearest to `query` (a content vector), best first, among those
    /// `accept` lets through (as what it maps their ids to), then up to the search's margin
    /// more (spares for the caller's own filters, which then need not ask twice as many);
    /// only positive similarities.
    pub fn nearest<T>(
        &self,
        store: &dyn Storage,
        text: Option<&VectorSpace>,
        query: &[f32],
        k: usize,
        accept: &mut dyn FnMut(&str) -> Option<T>,
    ) -> Result<Vec<(T, f32)>> {
        self.ensure_built(store, text)?;
        let guard = self.state.read();
        let Some(state) = guard.as_ref() else { return Ok(Vec::new()) };
        Ok(state.nearest_rows(query, k, &mut |row| accept(&state.ids[row as usize])))
    }

    /// [`LiveContent::nearest`] as items of `set` (rows it does not hold are passed over),
    /// `accept` judging those.
    pub fn nearest_items(
        &self,
        store: &dyn Storage,
        text: Option<&VectorSpace>,
        set: &ModelSet,
        query: &[f32],
        k: usize,
        accept: &mut dyn FnMut(u32) -> bool,
    ) -> Result<Vec<(u32, f32)>> {
        self.ensure_built(store, text)?;
        let guard = self.state.read();
        let Some(state) = guard.as_ref() else { return Ok(Vec::new()) };
        let cache = state.row_items(set);
        Ok(state.nearest_rows(query, k, &mut |row| state.item_of(set, &cache, row).filter(|&i| accept(i))))
    }
}

impl State {
    /// See [`LiveContent::nearest`]; `accept` maps a row to what is returned.
    fn nearest_rows<T>(&self, query: &[f32], k: usize, accept: &mut dyn FnMut(u32) -> Option<T>) -> Vec<(T, f32)> {
        let dim = self.layout.dim();
        if query.len() != dim {
            return Vec::new();
        }
        // The search itself checks only liveness; `accept` then runs on the best few, with
        // a margin for the rejected, widened if it was not enough.
        let mut skip = |i: u32| !self.alive[i as usize];
        let mut margin = 8 + k / 8;
        loop {
            let fetch = k + margin;
            let found = match &self.nearest {
                Some(index) => {
                    index.search(&self.rows, dim, query, fetch, CONTENT_PROBE_ITEMS.max(4 * fetch), &mut skip)
                }
                None => exact_search(&self.rows, dim, query, fetch, &mut skip),
            };
            // Fewer than asked, or down to unrelated items: widening finds nothing better.
            let exhausted = found.len() < fetch || found.last().is_some_and(|(_, s)| *s <= 0.0);
            let accepted: Vec<(T, f32)> =
                found.into_iter().filter(|(_, s)| *s > 0.0).filter_map(|(i, s)| Some((accept(i)?, s))).collect();
            if accepted.len() >= k || exhausted || margin >= self.ids.len() {
                return accepted;
            }
            margin *= 8;
        }
    }
}

/// How many of the most recent history items the content source starts from.
const CONTENT_RECENT_ITEMS: usize = 10;

/// The `content` recall source: catalog items whose content is nearest to the shopper's
/// recent items (each weighted by recency, 1 / (1 + position)), items the models have not
/// learned yet included.
pub struct ContentSource<'a> {
    pub live: &'a LiveContent,
    pub text: Option<&'a VectorSpace>,
}

impl RecallSource for ContentSource<'_> {
    fn kind(&self) -> SourceKind {
        SourceKind::Content
    }

    fn recall(&self, recall: &Recall<'_>) -> Result<Vec<(u32, f32)>> {
        let set = recall.set;
        let mut profile: Vec<f32> = Vec::new();
        for (position, &j) in recall.history.recent.iter().take(CONTENT_RECENT_ITEMS).enumerate() {
            let Some(vector) = self.live.vector_of(recall.store, self.text, set.item_id(j))? else { continue };
            profile.resize(vector.len(), 0.0);
            let weight = 1.0 / (1.0 + position as f32);
            for (p, x) in profile.iter_mut().zip(vector) {
                *p += weight * x;
            }
        }
        if profile.is_empty() {
            return Ok(Vec::new());
        }
        let history: std::collections::HashSet<u32> = recall.history.recent.iter().copied().collect();
        // `nearest` returns spares past what is asked: the catalog filters start from those.
        recall.fetched_then_accepted_from(recall.want, &|wanted| {
            let mut accept = |i: u32| !history.contains(&i) && !(recall.rejected)(i);
            self.live.nearest_items(recall.store, self.text, set, &profile, wanted, &mut accept)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_items_are_the_nearest_ids_in_each_model_set() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::gen::GenConfig { items: 300, users: 80, events: 3_000, seed: 5 };
        let (store, set) = crate::serving::test_shop::trained_shop(dir.path(), config);
        let live = LiveContent::default();
        let query = live.vector_of(&store, None, set.item_id(0)).unwrap().expect("content");
        let by_id = |set: &ModelSet| -> Vec<(u32, f32)> {
            live.nearest(&store, None, &query, 20, &mut |id| set.item_index.get(id).copied().filter(|i| i % 2 == 0))
                .unwrap()
        };
        let by_row = |set: &ModelSet| -> Vec<(u32, f32)> {
            live.nearest_items(&store, None, set, &query, 20, &mut |i| i % 2 == 0).unwrap()
        };
        let expected = by_id(&set);
        assert!(expected.len() >= 20, "{expected:?}");
        assert_eq!(by_row(&set), expected);
        assert_eq!(by_row(&set), expected, "the second time, from the rows' cached items");
        // Another set numbers items otherwise: the cache follows the set asked about.
        let mut renumbered = set.with_fresh_items(&[], false);
        let shift = |i: u32| (i + 1) % set.item_ids.len() as u32;
        renumbered.item_index = set.item_index.iter().map(|(id, &i)| (id.clone(), shift(i))).collect();
        assert_ne!(renumbered.serial, set.serial);
        let expected = by_id(&renumbered);
        assert_eq!(by_row(&renumbered), expected);
        assert_eq!(by_row(&set), by_id(&set));
    }

    fn item(id: &str, title: &str) -> Item {
        crate::input::parse_item(&serde_json::json!({"id": id, "title": title, "brand": "acme"})).unwrap()
    }

    fn live_ids(live: &LiveContent) -> Vec<String> {
        let guard = live.state.read();
        let state = guard.as_ref().expect("built");
        let mut ids: Vec<String> =
            state.ids.iter().zip(&state.alive).filter(|(_, a)| **a).map(|(id, _)| id.to_string()).collect();
        ids.sort();
        ids
    }

    fn scan_of(items: Vec<Item>) -> impl FnMut(&mut dyn FnMut(Item) -> Result<()>) -> Result<()> {
        move |visit| items.iter().cloned().try_for_each(&mut *visit)
    }

    #[test]
    fn a_rebuild_serves_the_old_state_meanwhile_and_replays_the_changes_it_did_not_read() {
        let live = LiveContent::default();
        let _one = live.building.lock();
        live.build_and_swap(&mut scan_of(vec![item("a", "red shoe"), item("b", "blue shoe")]), None).unwrap();
        assert_eq!(live_ids(&live), ["a", "b"]);
        let before = live.state.read().as_ref().unwrap().rows.clone();

        // The store as the rebuild reads it: a and b. While it reads, c is stored and b
        // deleted (each followed at once by the serving state), and a is changed.
        let mut visited = 0;
        let mut scan = |visit: &mut dyn FnMut(Item) -> Result<()>| {
            for stored in [item("a", "red shoe"), item("b", "blue shoe")] {
                visit(stored)?;
                visited += 1;
                if visited == 1 {
                    // Requests are answered from the serving state, without waiting.
                    let serving = live.state.try_read().expect("the serving state is not locked by the rebuild");
                    assert_eq!(serving.as_ref().unwrap().ids.len(), 2);
                    drop(serving);
                    live.observe(&[item("c", "green boot")], None);
                    live.forget("b");
                    live.observe(&[item("a", "red sandal")], None);
                    assert_eq!(live_ids(&live), ["a", "c"], "the serving state follows writes during the rebuild");
                }
            }
            Ok(())
        };
        live.build_and_swap(&mut scan, None).unwrap();
        assert_eq!(live_ids(&live), ["a", "c"], "the changes made while the store was read are in the new state");
        assert!(live.journal.lock().is_none(), "no journal outlives its rebuild");
        let guard = live.state.read();
        let state = guard.as_ref().unwrap();
        let dim = state.layout.dim();
        let a = state.index["a"] as usize;
        assert_ne!(&state.rows[a * dim..(a + 1) * dim], &before[..dim], "a's changed title is in its vector");
    }

    #[test]
    fn changes_before_any_build_wait_for_it_and_a_failed_rebuild_keeps_serving() {
        let live = LiveContent::default();
        live.observe(&[item("x", "lamp")], None);
        assert!(live.state.read().is_none(), "nothing to follow before the first build");
        assert!(live.journal.lock().is_none());
        let _one = live.building.lock();
        live.build_and_swap(&mut scan_of(vec![item("x", "lamp"), item("y", "desk")]), None).unwrap();
        assert_eq!(live_ids(&live), ["x", "y"]);

        let mut failing = |_: &mut dyn FnMut(Item) -> Result<()>| -> Result<()> {
            Err(crate::error::Error::Internal("the store could not be read".into()))
        };
        assert!(live.build_and_swap(&mut failing, None).is_err());
        assert_eq!(live_ids(&live), ["x", "y"], "the serving state stays");
        assert!(live.journal.lock().is_none());
    }
}
