//! Durable storage of the catalog, users, social edges and events.
//!
//! Callers see the [`Storage`] trait; [`EmbeddedStore`] implements it in one data
//! directory (the default), and `PgStore` (`postgres`, behind the `postgres` feature) in a
//! PostgreSQL database that several processes share. The embedded store keeps events in an
//! append-only checksummed log ([`log`]) with an in-memory index rebuilt on open
//! ([`index`]), and the catalog in SQLite ([`catalog`]); the PostgreSQL store keeps both in
//! tables and the same in-memory index, rebuilt from them on open and kept current by
//! tailing the database's change sequence.
//!
//! Invariants: only this module touches the data directory; a write is acknowledged (the
//! method returns `Ok`) only once it is on stable storage; every persisted format carries a
//! version that is checked on open; one process owns a data directory at a time.

pub mod artifacts;
pub mod catalog;
pub mod codec;
pub mod compact;
mod config;
#[cfg(test)]
mod contract_tests;
mod data_dir;
mod disk;
mod embedded;
pub mod index;
mod live_compact;
pub mod log;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod read_only;
mod sink;
pub mod snapshot;
mod timed_lock;
pub mod verify;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use config::StoreConfig;
pub use data_dir::{DataDir, DATA_FORMAT_VERSION};
pub(crate) use disk::refused_write;
pub use embedded::EmbeddedStore;
pub use index::{Interaction, ItemMeta};
pub use live_compact::CompactStep;
pub use log::IoFaults;
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
pub use sink::{SinkSummary, StoreSink};
pub use verify::VerifyReport;

use crate::error::Result;
use crate::ids::{ItemId, UserId};
use crate::model::{Event, EventType, Follow, Item, User};

/// What happened to a batch of events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendOutcome {
    /// Events in the batch, all now durably stored (new or seen before).
    pub accepted: u64,
    /// Of those, events whose id was already stored (re-deliveries), not stored again.
    pub duplicates: u64,
    /// Where those are in the batch (ascending): an event whose id was stored before, or
    /// repeats an earlier event of the same batch. What follows the store (the live
    /// session index, the exploration bandit, the online click model) skips them, so a
    /// re-delivered event counts once everywhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub duplicate_at: Vec<u32>,
}

impl AppendOutcome {
    /// The outcome of a batch of `total` events where `keep[i]` tells whether event `i` was
    /// stored (`false`: a duplicate).
    pub fn from_kept(keep: &[bool]) -> Self {
        let duplicate_at: Vec<u32> = keep.iter().enumerate().filter(|(_, k)| !**k).map(|(i, _)| i as u32).collect();
        Self { accepted: keep.len() as u64, duplicates: duplicate_at.len() as u64, duplicate_at }
    }

    /// The events of the batch that were stored now, in order (the batch as given to the
    /// store that answered with this outcome).
    pub fn stored<'a>(&'a self, batch: &'a [Event]) -> impl Iterator<Item = &'a Event> + 'a {
        let mut skip = self.duplicate_at.iter().peekable();
        batch.iter().enumerate().filter_map(move |(i, event)| {
            if skip.peek().is_some_and(|&&d| d as usize == i) {
                skip.next();
                None
            } else {
                Some(event)
            }
        })
    }
}

/// What erasing a user removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EraseReport {
    pub user_record: bool,
    pub events: u64,
    pub social_edges: u64,
}

/// A page served to a user under an experiment's arm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exposure {
    pub experiment: String,
    /// The served page's request id (clicks on the page carry it).
    pub request_id: String,
    pub user: UserId,
    pub arm: String,
    pub timestamp: i64,
}

/// Counts of what the store holds (`souk stats --json`, `GET /v1/stats`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Distinct items with a catalog record or at least one live event about them (items
    /// only listed by impressions or searches do not count).
    pub items: u64,
    /// Distinct users known from user records, events or social edges.
    pub users: u64,
    pub events: u64,
    pub events_by_type: BTreeMap<String, u64>,
    pub social_edges: u64,
    /// Items with a catalog record.
    pub catalog_items: u64,
    /// Items with live events but no catalog record (not served until the catalog has them).
    pub items_without_record: u64,
    /// Users with a user record.
    pub catalog_users: u64,
    pub storage: StorageStats,
}

/// Bytes on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageStats {
    pub backend: String,
    pub event_log_bytes: u64,
    pub catalog_bytes: u64,
}

/// What other processes sharing the store wrote since the last look (see
/// [`Storage::changes`]). Writes of this process are not repeated here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreChanges {
    /// Events other processes stored, in the store's order.
    pub events: Vec<Event>,
    /// Items whose catalog record was written or deleted.
    pub items: Vec<ItemId>,
    /// Users erased.
    pub erased_users: Vec<UserId>,
    /// Whether an experiment's document was written.
    pub experiments: bool,
    /// Whether an API key was written or deleted.
    pub api_keys: bool,
    /// Whether a model generation was published.
    pub models: bool,
}

impl StoreChanges {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.items.is_empty()
            && self.erased_users.is_empty()
            && !self.experiments
            && !self.api_keys
            && !self.models
    }
}

/// Live event counts of one item by type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemCounts {
    pub by_type: BTreeMap<String, u64>,
    pub total: u64,
}

impl ItemCounts {
    pub fn from_counts(counts: &[u32; EventType::ALL.len()]) -> Self {
        let by_type: BTreeMap<String, u64> =
            EventType::ALL.iter().map(|t| (t.as_str().to_string(), u64::from(counts[*t as usize]))).collect();
        let total = by_type.values().sum();
        Self { by_type, total }
    }
}

/// The storage seam: everything above the store talks to this trait only.
pub trait Storage: Send + Sync {
    /// Store a batch of validated events durably; ids already stored are skipped.
    fn append_events(&self, events: Vec<Event>) -> Result<AppendOutcome>;
    fn put_items(&self, items: Vec<Item>) -> Result<()>;
    fn get_item(&self, id: &ItemId) -> Result<Option<Item>>;
    /// Remove an item's catalog record (its past events stay). Returns whether it existed.
    fn delete_item(&self, id: &ItemId) -> Result<bool>;
    fn put_users(&self, users: Vec<User>) -> Result<()>;
    fn get_user(&self, id: &UserId) -> Result<Option<User>>;
    /// Erase a user: record, events and social edges.
    fn erase_user(&self, id: &UserId) -> Result<EraseReport>;
    fn put_follows(&self, follows: Vec<Follow>) -> Result<()>;
    fn delete_follow(&self, user: &UserId, other: &UserId) -> Result<bool>;
    fn follows_of(&self, user: &UserId) -> Result<Vec<Follow>>;
    /// Visit every social edge as (user, other): `user` follows `other` (training).
    fn scan_follows(&self, visit: &mut dyn FnMut(&str, &str)) -> Result<()>;
    /// Visit every catalog item in insertion order (rebuilding search indexes).
    fn scan_items(&self, visit: &mut dyn FnMut(Item) -> Result<()>) -> Result<()>;
    /// Visit every user record (attributes, stated preferences) in insertion order (training the
    /// demographic prior).
    fn scan_users(&self, visit: &mut dyn FnMut(User) -> Result<()>) -> Result<()>;
    /// A user's most recent events, newest first.
    fn user_events(&self, user: &UserId, limit: usize) -> Result<Vec<Event>>;
    /// Live event counts of an item, or `None` if the item is unknown.
    fn item_counts(&self, item: &ItemId) -> Result<Option<ItemCounts>>;
    fn stats(&self) -> Result<Stats>;
    /// Live events stored: [`Stats::events`] without counting the catalog's tables (a
    /// training asks for it while pages are served, and the counts hold the catalog).
    fn event_count(&self) -> Result<u64> {
        Ok(self.stats()?.events)
    }
    /// Visit every live interaction in arrival order with its user and item ids (item is
    /// `None` for searches and multi-item impressions). Used by training.
    fn scan_interactions(&self, visit: &mut dyn FnMut(&str, Option<&str>, &Interaction)) -> Result<()>;
    /// A user's most recent interactions with items, newest first, from memory (no IO):
    /// what real-time recommendation needs on every request.
    fn user_interactions(&self, user: &UserId, limit: usize) -> Result<Vec<UserInteraction>>;
    /// Catalog facts of items (`None` for unknown items or items without a record).
    fn items_meta(&self, items: &[&str]) -> Result<Vec<Option<ItemMeta>>>;
    /// Test items' catalog facts without copying them, under one lock (the candidate
    /// check of serving).
    fn items_match(&self, items: &[&str], test: &dyn Fn(Option<&ItemMeta>) -> bool) -> Result<Vec<bool>>;
    /// Visit the most recent interactions with items, newest first by arrival, at most
    /// `max_rows` of them; `visit` returns false to stop early.
    fn recent_interactions(&self, max_rows: usize, visit: &mut dyn FnMut(&str, &Interaction) -> bool) -> Result<()>;
    /// Visit every live event of these types in arrival order, read back from the log
    /// (training sets from impression logs).
    fn scan_events(&self, types: &[EventType], visit: &mut dyn FnMut(Event) -> Result<()>) -> Result<()>;
    /// Visit the catalog facts of every item that has them, from memory (no IO).
    fn scan_item_meta(&self, visit: &mut dyn FnMut(&str, &ItemMeta)) -> Result<()>;
    /// Create or replace an experiment's document (durable when this returns).
    fn put_experiment(&self, id: &str, doc: &str) -> Result<()>;
    /// Every experiment's (id, document).
    fn experiments(&self) -> Result<Vec<(String, String)>>;
    /// Record pages served under experiments (durable when this returns); a request id
    /// already recorded for an experiment is kept as it was.
    fn add_exposures(&self, exposures: &[Exposure]) -> Result<()>;
    /// An experiment's exposures, oldest first. Erasing a user erases theirs.
    fn exposures(&self, experiment: &str) -> Result<Vec<Exposure>>;
    /// A user's exposures in every experiment, oldest first.
    fn user_exposures(&self, user: &UserId) -> Result<Vec<Exposure>>;
    /// Create or replace an API key's document (durable when this returns).
    fn put_api_key(&self, id: &str, doc: &str) -> Result<()>;
    /// Every API key's (id, document).
    fn api_keys(&self) -> Result<Vec<(String, String)>>;
    /// Remove an API key; false when there was none.
    fn delete_api_key(&self, id: &str) -> Result<bool>;
    /// Why writes are failing (the last write the disk refused, until a write succeeds
    /// again: every write still tries), or `None` when they succeed.
    fn writes_refused(&self) -> Option<String> {
        None
    }
    /// [`Storage::writes_refused`], first checking (at most about once a second) whether
    /// the disk takes writes again, so that an idle store reports space returning without
    /// waiting for a client's write. May do a small write and sync: call it off the async
    /// runtime.
    fn check_writes(&self) -> Option<String> {
        self.writes_refused()
    }
    /// Bring this process's in-memory state up to date with what other processes sharing
    /// the store wrote, and hand over what changed since the last call. A store owned by
    /// one process (the embedded one) has nothing to report.
    fn changes(&self) -> Result<StoreChanges> {
        Ok(StoreChanges::default())
    }
    /// Block until another process may have written to the store, at most `timeout`;
    /// false when the time ran out. A store owned by one process just waits.
    fn wait_for_changes(&self, timeout: std::time::Duration) -> Result<bool> {
        std::thread::sleep(timeout);
        Ok(false)
    }
    /// Where model generations are shared with the other processes of the store; `None`
    /// for a store one process owns (its data directory is the only place).
    fn shared_models(&self) -> Option<&dyn artifacts::SharedModels> {
        None
    }
    /// Remove erased users' events from the disk now, while serving, if an erasure left
    /// some there; `None` when there was nothing to do (or the backend has nothing to do).
    fn compact_erased(&self) -> Result<Option<compact::CompactReport>> {
        Ok(None)
    }
}

/// One of a user's interactions with an item.
#[derive(Debug, Clone, PartialEq)]
pub struct UserInteraction {
    pub item: String,
    pub event_type: EventType,
    pub timestamp: i64,
    pub value: f32,
    pub dwell_ms: u32,
}
