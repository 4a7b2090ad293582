//! The embedded store: one data directory, owned by one process.
//!
//! ```text
//! DIR/souk.lock          advisory lock held while open (holds the owner's pid)
//! DIR/FORMAT             {"format":"souk-data","version":1}
//! DIR/events/seg-*.log   the event log (see `log`)
//! DIR/catalog.sqlite3    items, users, social edges (see `catalog`)
//! ```
//!
//! Write path of an event batch: encode frames (no lock) → take the index write lock →
//! drop ids already stored → one `write` to the log → update the index → release → group
//! `fdatasync` → acknowledge. A write the disk refuses leaves nothing of its batch, on disk
//! or in memory: a failed `write` is cut back by the log; after a failed `fdatasync` the log
//! cuts off everything after its last durable point and the index is rebuilt from the log
//! (the cost of an open; only a failed sync pays it). The error is `disk_full` or
//! `storage_unavailable` (see `disk`); the next write tries the disk again.
//!
//! With the disk full, the store still opens to serve reads: the pid in the lock file, the
//! compaction of erased events and SQLite's shared-memory file are what an open of an
//! existing directory may write; the first two are skipped, the catalog is opened in
//! exclusive locking mode (its WAL index in memory), and `/health` says degraded until a
//! write succeeds.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::timed_lock::TimedLock;

use super::catalog::{Catalog, CatalogTable, ItemFacts};
use super::codec::LogRecord;
use super::data_dir::{check_format, lock_dir};
use super::disk::{self, track, Part, WriteHealth};
use super::index::{event_id_digest, in_pieces, EventIndex, Interaction};
use super::log::{self, EventLog, IoFaults, LogPosition, Ticket};
use super::DataDir;
use super::StoreConfig;
use super::{
    AppendOutcome, EraseReport, Exposure, ItemCounts, ItemMeta, Stats, Storage, StorageStats, UserInteraction,
};
use crate::error::{Error, Result};
use crate::ids::{ItemId, UserId};
use crate::model::{Event, EventType, Follow, Item, User};

/// See the module docs.
pub struct EmbeddedStore {
    dir: PathBuf,
    _lock: File,
    /// The live log. Replaced only by a compaction's swap, under the index write lock:
    /// whoever reads index positions takes the log in the same lock, and redeems a ticket
    /// with the log that issued it.
    pub(super) log: RwLock<Arc<EventLog>>,
    pub(super) index: TimedLock<EventIndex>,
    pub(super) catalog: Catalog,
    pub(super) health: WriteHealth,
    /// The log's [`EventLog::epoch`] the index reflects (changed under the index lock).
    pub(super) indexed_epoch: AtomicUsize,
    pub(super) segment_bytes: u64,
    pub(super) faults: Option<Arc<IoFaults>>,
    /// Held by the one compaction running while serving.
    pub(super) compacting: Mutex<()>,
    /// When [`Storage::check_writes`] last probed the disk.
    last_probe: Mutex<Option<std::time::Instant>>,
}

/// How often [`Storage::check_writes`] probes the disk while writes are refused, at most.
const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// What a probe writes and syncs: room for a typical batch of events.
const PROBE_BYTES: usize = 64 * 1024;

/// Catalog writes update, and catalog-wide lookups read, the in-memory index this many
/// records per lock, so neither holds the pages being served (or a write) for long.
const LOCKED_PIECE: usize = 4_096;

impl EmbeddedStore {
    /// Open or create the store in `dir`. Fails with [`Error::Locked`] if another process
    /// has it open.
    pub fn open(dir: &Path, config: &StoreConfig) -> Result<Self> {
        Self::open_with(dir, config, None)
    }

    /// [`EmbeddedStore::open`] with faults injected into the event log's writes and syncs
    /// (see [`IoFaults`]).
    pub fn open_with(dir: &Path, config: &StoreConfig, faults: Option<Arc<IoFaults>>) -> Result<Self> {
        fs_err::create_dir_all(dir)?;
        let lock = lock_dir(dir)?;
        check_format(dir)?;
        let health = WriteHealth::default();
        let catalog_path = DataDir::new(dir).catalog();
        let catalog = match Catalog::open(&catalog_path, false) {
            Err(e) if disk::is_storage_failure(&e) => {
                // Most likely SQLite's shared-memory file could not grow on a full disk.
                tracing::warn!(error = %e, "the catalog cannot open normally; opening it in exclusive locking mode (its WAL index in memory)");
                health.degrade(Part::Catalog, "opened in exclusive locking mode: the disk was full or failing".into());
                Catalog::open(&catalog_path, true)?
            }
            other => other?,
        };
        let mut index = EventIndex::from_catalog(&catalog)?;
        super::verify::finish_interrupted(dir)?;
        if let Err(e) = super::compact::prepare(dir, config.segment_bytes) {
            // Only a compaction that never reached its swap (the log is still in place) may
            // be abandoned; an interrupted swap is finished by the next open.
            if !disk::is_disk_full(&e) || !DataDir::new(dir).events().exists() {
                return Err(e);
            }
            // Erased events stay in the log (never served) until an open with space.
            tracing::warn!(error = %e, "no space to compact the event log; erased events stay on disk until an open with space");
            let _ = fs_err::remove_dir_all(dir.join("events.compact"));
            health.degrade(Part::Log, "could not compact erased events at open: the disk is full".into());
        }
        let started = std::time::Instant::now();
        let log = EventLog::open_with(
            &DataDir::new(dir).events(),
            config.segment_bytes,
            faults.clone(),
            |record, position| {
                index.apply_record(record, position.pack());
                Ok(())
            },
        )?;
        if let Some(reason) = log.broken() {
            health.degrade(Part::Log, reason);
        }
        tracing::debug!(dir = %dir.display(), events = index.live_events, elapsed_ms = started.elapsed().as_millis() as u64, "opened store");
        Ok(Self {
            dir: dir.to_path_buf(),
            _lock: lock,
            log: RwLock::new(Arc::new(log)),
            index: TimedLock::new(index),
            catalog,
            health,
            indexed_epoch: AtomicUsize::new(0),
            segment_bytes: config.segment_bytes,
            faults,
            compacting: Mutex::new(()),
            last_probe: Mutex::new(None),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Visit the index rows stored now in pieces, the read lock taken per piece (see
    /// `scan_interactions`); fails if a failed write rebuilt the index meanwhile (its rows
    /// are numbered afresh), and the caller scans again.
    fn scan_rows(&self, visit: impl FnMut(&EventIndex, std::ops::Range<usize>)) -> Result<()> {
        self.scan_pieces(EventIndex::row_count, visit)
    }

    /// [`EmbeddedStore::scan_rows`] over what `count` numbers (rows, items).
    fn scan_pieces(
        &self,
        count: impl Fn(&EventIndex) -> usize,
        mut visit: impl FnMut(&EventIndex, std::ops::Range<usize>),
    ) -> Result<()> {
        let (n, epoch) = (count(&self.index.read()), self.indexed_epoch.load(Ordering::Acquire));
        in_pieces(n, |range| {
            let index = self.index.read();
            if self.indexed_epoch.load(Ordering::Acquire) != epoch {
                return Err(Error::Internal("the event index was rebuilt during a scan; scan again".into()));
            }
            visit(&index, range);
            Ok(())
        })
    }

    /// Look `items` up in pieces of [`LOCKED_PIECE`]: a page's few items in one brief read
    /// (`TimedLock::read_brief`), a training's whole catalog in fair pieces (1.6 s under one
    /// lock at 1M).
    fn look_up<R>(&self, items: &[&str], look: impl Fn(&EventIndex, &str) -> R) -> Vec<R> {
        let brief = items.len() <= LOCKED_PIECE;
        let mut found = Vec::with_capacity(items.len());
        for piece in items.chunks(LOCKED_PIECE) {
            let index = if brief { self.index.read_brief() } else { self.index.read() };
            found.extend(piece.iter().map(|item| look(&index, item)));
        }
        found
    }

    /// Make the log writable again after a failed sync (it cuts off what is not durable)
    /// and forget what the index held of the cut records, by rebuilding the index from the
    /// catalog and the log — also when the log's own sync still fails. Holding the index
    /// lock keeps appends out meanwhile.
    pub(super) fn recover(&self, index: &mut EventIndex) -> Result<()> {
        let log = self.log();
        let result = if log.broken().is_some() { log.recover() } else { Ok(()) };
        let epoch = log.epoch();
        if epoch != self.indexed_epoch.load(Ordering::Acquire) {
            let started = std::time::Instant::now();
            let mut fresh = EventIndex::from_catalog(&self.catalog)?;
            log.replay(|record, position| {
                fresh.apply_record(record, position.pack());
                Ok(())
            })?;
            *index = fresh;
            self.indexed_epoch.store(epoch, Ordering::Release);
            tracing::warn!(
                events = index.live_events,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "rebuilt the event index after a failed write"
            );
        }
        result
    }

    /// A write to the log failed: recover at once (so nothing of it stays visible), and
    /// turn the error into its coded form.
    pub(super) fn log_failed(&self, index: &mut EventIndex, error: Error, what: &str) -> Error {
        if let Err(e) = self.recover(index) {
            tracing::error!(error = %e, "could not cut the event log back yet; the next write tries again");
        }
        self.refuse(error, what)
    }

    /// A write failed before it reached the log, or the log could not be recovered.
    fn refuse(&self, error: Error, what: &str) -> Error {
        track::<()>(&self.health, Part::Log, what, Err(error)).unwrap_err()
    }

    /// The live log (see the field's docs for when it may change).
    pub(super) fn log(&self) -> Arc<EventLog> {
        self.log.read().clone()
    }

    /// Wait until `ticket`, issued by `log`, is durable; on failure nothing written since the last durable
    /// point stays (see the module docs).
    pub(super) fn sync_log(&self, log: &EventLog, ticket: Ticket, what: &str) -> Result<()> {
        match log.sync_to(ticket) {
            Ok(()) => {
                self.health.succeeded(Part::Log);
                Ok(())
            }
            Err(e) => Err(self.log_failed(&mut self.index.write(), e, what)),
        }
    }

    /// Run a catalog write, tracking its health (SQLite rolls a failed transaction back).
    fn catalog_write<T>(&self, what: &str, result: Result<T>) -> Result<T> {
        track(&self.health, Part::Catalog, what, result)
    }
}

impl Storage for EmbeddedStore {
    fn append_events(&self, events: Vec<Event>) -> Result<AppendOutcome> {
        const WHAT: &str = "the batch of events";
        if events.is_empty() {
            return Ok(AppendOutcome::default());
        }
        let digests: Vec<u128> = events.iter().map(|e| event_id_digest(e.id.as_str())).collect();
        let mut frames = Vec::with_capacity(events.len() * 96);
        let mut starts = Vec::with_capacity(events.len());
        for event in &events {
            starts.push(frames.len());
            log::frame_event(event, &mut frames);
        }
        let (log, ticket, keep) = {
            let mut index = self.index.write();
            self.recover(&mut index).map_err(|e| self.refuse(e, WHAT))?;
            let log = self.log();
            let mut in_batch = HashSet::with_capacity(events.len());
            let keep: Vec<bool> = digests.iter().map(|d| !index.contains_event(*d) && in_batch.insert(*d)).collect();
            let kept = keep.iter().filter(|k| **k).count();
            if kept == 0 {
                // Every id is already stored, and therefore already durable.
                return Ok(AppendOutcome::from_kept(&keep));
            }
            let mut positions = Vec::with_capacity(kept);
            let appended = if kept == events.len() {
                log.append(&frames, &starts, &mut positions)
            } else {
                let mut filtered = Vec::with_capacity(frames.len());
                let mut filtered_starts = Vec::with_capacity(kept);
                for (i, start) in starts.iter().enumerate() {
                    if keep[i] {
                        let stop = starts.get(i + 1).copied().unwrap_or(frames.len());
                        filtered_starts.push(filtered.len());
                        filtered.extend_from_slice(&frames[*start..stop]);
                    }
                }
                log.append(&filtered, &filtered_starts, &mut positions)
            };
            let ticket = appended.map_err(|e| self.log_failed(&mut index, e, WHAT))?;
            let mut positions = positions.into_iter();
            for (i, event) in events.iter().enumerate() {
                if keep[i] {
                    let position = positions.next().map(LogPosition::pack).unwrap_or_default();
                    index.insert_event(event, digests[i], position);
                }
            }
            (log, ticket, keep)
        };
        self.sync_log(&log, ticket, WHAT)?;
        Ok(AppendOutcome::from_kept(&keep))
    }

    fn put_items(&self, items: Vec<Item>) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        self.catalog_write("the items", self.catalog.put_items(&items))?;
        for piece in items.chunks(LOCKED_PIECE) {
            let mut index = self.index.write();
            for item in piece {
                index.set_item_facts(&ItemFacts::of(item));
            }
        }
        Ok(())
    }

    fn get_item(&self, id: &ItemId) -> Result<Option<Item>> {
        self.catalog.get_item(id)
    }

    fn scan_items(&self, visit: &mut dyn FnMut(Item) -> Result<()>) -> Result<()> {
        self.catalog.scan_items(visit)
    }

    fn scan_users(&self, visit: &mut dyn FnMut(User) -> Result<()>) -> Result<()> {
        self.catalog.scan_users(visit)
    }

    fn delete_item(&self, id: &ItemId) -> Result<bool> {
        let existed = self.catalog_write("the deletion", self.catalog.delete_item(id))?;
        self.index.write().remove_item_facts(id.as_str());
        Ok(existed)
    }

    fn put_users(&self, users: Vec<User>) -> Result<()> {
        if users.is_empty() {
            return Ok(());
        }
        self.catalog_write("the users", self.catalog.put_users(&users))?;
        for piece in users.chunks(LOCKED_PIECE) {
            let mut index = self.index.write();
            for user in piece {
                index.set_user_in_catalog(user.id.as_str(), true);
            }
        }
        Ok(())
    }

    fn get_user(&self, id: &UserId) -> Result<Option<User>> {
        self.catalog.get_user(id)
    }

    fn erase_user(&self, id: &UserId) -> Result<EraseReport> {
        const WHAT: &str = "the erasure";
        // The tombstone goes first: once it is durable, a crash at any later point still
        // ends with the user's events erased when the log is replayed. A failed write of
        // the tombstone leaves the user as they were (the index is rebuilt without it).
        let mut frames = Vec::new();
        log::frame(
            &LogRecord::EraseUser { user: id.clone(), timestamp: chrono::Utc::now().timestamp_millis() },
            &mut frames,
        );
        let (log, ticket, events) = {
            let mut index = self.index.write();
            self.recover(&mut index).map_err(|e| self.refuse(e, WHAT))?;
            let log = self.log();
            let ticket =
                log.append(&frames, &[0], &mut Vec::new()).map_err(|e| self.log_failed(&mut index, e, WHAT))?;
            (log, ticket, index.erase_user_events(id))
        };
        self.sync_log(&log, ticket, WHAT)?;
        // The events are gone from memory now and from disk at the next open. A retry of a
        // failed erasure finishes what this one could not.
        track(&self.health, Part::Log, WHAT, super::compact::request(&self.dir))?;
        let (user_record, edges) = self.catalog_write(WHAT, self.catalog.erase_user(id))?;
        let mut index = self.index.write();
        index.set_user_in_catalog(id.as_str(), false);
        for (a, b) in &edges {
            index.count_follow(a.as_str(), b.as_str(), false);
        }
        Ok(EraseReport { user_record, events, social_edges: edges.len() as u64 })
    }

    fn put_follows(&self, follows: Vec<Follow>) -> Result<()> {
        if follows.is_empty() {
            return Ok(());
        }
        let new = self.catalog_write("the follows", self.catalog.put_follows(&follows))?;
        for (piece, new) in follows.chunks(LOCKED_PIECE).zip(new.chunks(LOCKED_PIECE)) {
            let mut index = self.index.write();
            for (follow, is_new) in piece.iter().zip(new) {
                if *is_new {
                    index.count_follow(follow.user.as_str(), follow.other.as_str(), true);
                }
            }
        }
        Ok(())
    }

    fn delete_follow(&self, user: &UserId, other: &UserId) -> Result<bool> {
        let existed = self.catalog_write("the deletion", self.catalog.delete_follow(user, other))?;
        if existed {
            self.index.write().count_follow(user.as_str(), other.as_str(), false);
        }
        Ok(existed)
    }

    fn follows_of(&self, user: &UserId) -> Result<Vec<Follow>> {
        self.catalog.follows_of(user)
    }

    fn scan_follows(&self, visit: &mut dyn FnMut(&str, &str)) -> Result<()> {
        self.catalog.scan_follows(visit)
    }

    fn user_events(&self, user: &UserId, limit: usize) -> Result<Vec<Event>> {
        let (log, positions): (_, Vec<u64>) = {
            let index = self.index.read_brief();
            let Some(n) = index.users.get(user.as_str()) else {
                return Ok(Vec::new());
            };
            let positions = index.user_entries[n as usize]
                .rows
                .iter()
                .rev()
                .take(limit)
                .map(|row| index.rows[*row as usize].position)
                .collect();
            (self.log(), positions)
        };
        let mut events = Vec::with_capacity(positions.len());
        for packed in positions {
            match log.read_at(LogPosition::unpack(packed))? {
                LogRecord::Event(event) => events.push(event),
                LogRecord::EraseUser { .. } | LogRecord::KnownIds(_) => {
                    return Err(Error::Corrupt {
                        path: self.dir.join("events"),
                        message: "index points at a non-event record".into(),
                    })
                }
            }
        }
        Ok(events)
    }

    fn item_counts(&self, item: &ItemId) -> Result<Option<ItemCounts>> {
        Ok(self.index.read_brief().item_counts(item.as_str()))
    }

    fn stats(&self) -> Result<Stats> {
        let social_edges = self.catalog.count(CatalogTable::Follows)?;
        let catalog_items = self.catalog.count(CatalogTable::Items)?;
        let catalog_users = self.catalog.count(CatalogTable::Users)?;
        let index = self.index.read();
        Ok(Stats {
            items: index.known_items(),
            users: index.known_users(),
            events: index.live_events,
            events_by_type: index.events_by_type_names(),
            social_edges,
            catalog_items,
            items_without_record: index.items_without_record(),
            catalog_users,
            storage: StorageStats {
                backend: "embedded".into(),
                event_log_bytes: self.log().size_bytes(),
                catalog_bytes: self.catalog.size_bytes(),
            },
        })
    }

    fn event_count(&self) -> Result<u64> {
        Ok(self.index.read_brief().live_events)
    }

    fn user_interactions(&self, user: &UserId, limit: usize) -> Result<Vec<UserInteraction>> {
        Ok(self.index.read_brief().user_interactions(user.as_str(), limit))
    }

    fn items_meta(&self, items: &[&str]) -> Result<Vec<Option<ItemMeta>>> {
        Ok(self.look_up(items, |index, item| index.item_meta(item).cloned()))
    }

    fn items_match(&self, items: &[&str], test: &dyn Fn(Option<&ItemMeta>) -> bool) -> Result<Vec<bool>> {
        Ok(self.look_up(items, |index, item| test(index.item_meta(item))))
    }

    fn recent_interactions(&self, max_rows: usize, visit: &mut dyn FnMut(&str, &Interaction) -> bool) -> Result<()> {
        self.index.read().visit_recent(max_rows, visit);
        Ok(())
    }

    fn scan_events(&self, types: &[EventType], visit: &mut dyn FnMut(Event) -> Result<()>) -> Result<()> {
        let log = self.log();
        let mut positions = Vec::new();
        self.scan_rows(|index, range| index.positions_in(types, range, &mut positions))?;
        for packed in positions {
            match log.read_at(LogPosition::unpack(packed))? {
                LogRecord::Event(event) => visit(event)?,
                LogRecord::EraseUser { .. } | LogRecord::KnownIds(_) => {
                    return Err(Error::Corrupt {
                        path: self.dir.join("events"),
                        message: "index points at a non-event record".into(),
                    })
                }
            }
        }
        Ok(())
    }

    fn scan_item_meta(&self, visit: &mut dyn FnMut(&str, &ItemMeta)) -> Result<()> {
        // In pieces, like the rows (items are numbered once, renumbered only by a rebuild).
        self.scan_pieces(EventIndex::item_count, |index, range| index.visit_item_meta_in(range, visit))
    }

    fn put_experiment(&self, id: &str, doc: &str) -> Result<()> {
        self.catalog_write("the experiment", self.catalog.put_experiment(id, doc))
    }

    fn experiments(&self) -> Result<Vec<(String, String)>> {
        self.catalog.experiments()
    }

    fn add_exposures(&self, exposures: &[Exposure]) -> Result<()> {
        if exposures.is_empty() {
            return Ok(());
        }
        self.catalog_write("the exposures", self.catalog.add_exposures(exposures))
    }

    fn exposures(&self, experiment: &str) -> Result<Vec<Exposure>> {
        self.catalog.exposures(experiment)
    }

    fn user_exposures(&self, user: &UserId) -> Result<Vec<Exposure>> {
        self.catalog.user_exposures(user)
    }

    fn put_api_key(&self, id: &str, doc: &str) -> Result<()> {
        self.catalog_write("the key", self.catalog.put_api_key(id, doc))
    }

    fn api_keys(&self) -> Result<Vec<(String, String)>> {
        self.catalog.api_keys()
    }

    fn delete_api_key(&self, id: &str) -> Result<bool> {
        self.catalog_write("the deletion", self.catalog.delete_api_key(id))
    }

    fn writes_refused(&self) -> Option<String> {
        self.health.reason()
    }

    fn check_writes(&self) -> Option<String> {
        let reason = self.health.reason()?;
        {
            let mut last = self.last_probe.lock();
            if last.is_some_and(|at| at.elapsed() < PROBE_EVERY) {
                return Some(reason);
            }
            *last = Some(std::time::Instant::now());
        }
        // What the next append would do first (make the log writable again), then a write
        // and a sync beside the log.
        let probed = {
            let mut index = self.index.write();
            self.recover(&mut index).and_then(|()| self.log().probe_writes(PROBE_BYTES))
        };
        match probed {
            Ok(()) => {
                // As a successful write of each part would: the disk takes writes again.
                self.health.succeeded(Part::Log);
                self.health.succeeded(Part::Catalog);
                self.health.reason()
            }
            Err(e) => {
                tracing::debug!(error = %e, "the disk still refuses writes");
                Some(reason)
            }
        }
    }

    fn compact_erased(&self) -> Result<Option<super::compact::CompactReport>> {
        EmbeddedStore::compact_erased(self)
    }

    /// The rows stored when the scan starts, in pieces with the index lock released between
    /// them: in one piece, a training's scan held it 5.7 s at 20M events, and every write
    /// waited that long (and every read queued behind the waiting write). Rows erased while
    /// the scan runs may still be visited, as if the erasure came after it.
    fn scan_interactions(&self, visit: &mut dyn FnMut(&str, Option<&str>, &Interaction)) -> Result<()> {
        self.scan_rows(|index, range| index.visit_interactions_in(range, visit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::EventId;

    fn view(id: &str, user: &str, item: &str, ts: i64) -> Event {
        Event::new(
            EventId::parse(id, "id").unwrap(),
            EventType::View,
            UserId::parse(user, "user").unwrap(),
            Some(ItemId::parse(item, "item").unwrap()),
            ts,
        )
    }

    fn open(dir: &Path) -> EmbeddedStore {
        EmbeddedStore::open(dir, &StoreConfig::default()).unwrap()
    }

    #[test]
    fn an_io_error_names_the_path_it_happened_at() {
        let dir = tempfile::tempdir().unwrap();
        // The lock file's place is taken by a directory: opening it fails.
        fs_err::create_dir_all(dir.path().join("souk.lock")).unwrap();
        let error = EmbeddedStore::open(dir.path(), &StoreConfig::default()).err().expect("the open must fail");
        assert!(error.to_string().contains("souk.lock"), "{error}");
    }

    #[test]
    fn a_second_open_of_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = open(dir.path());
        let second = EmbeddedStore::open(dir.path(), &StoreConfig::default());
        assert!(matches!(second, Err(Error::Locked { .. })));
    }

    fn log_bytes(dir: &Path) -> Vec<u8> {
        let mut bytes = Vec::new();
        for entry in fs_err::read_dir(dir.join("events")).unwrap() {
            bytes.extend(fs_err::read(entry.unwrap().path()).unwrap());
        }
        bytes
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    #[test]
    fn erased_events_leave_the_disk_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let secret = UserId::parse("secret-shopper", "u").unwrap();
        {
            let store = open(dir.path());
            store
                .append_events(vec![
                    view("e-secret-1", "secret-shopper", "i1", 1),
                    view("e-other", "u2", "i1", 2),
                    view("e-secret-2", "secret-shopper", "i2", 3),
                ])
                .unwrap();
            store.erase_user(&secret).unwrap();
            // The user comes back after the erasure: new events are theirs to keep.
            store.append_events(vec![view("e-after", "secret-shopper", "i3", 4)]).unwrap();
            assert!(contains(&log_bytes(dir.path()), "e-secret-1"), "still on disk before compaction");
            assert!(dir.path().join(super::super::compact::MARKER).exists());
        }
        let store = open(dir.path());
        let bytes = log_bytes(dir.path());
        assert!(!contains(&bytes, "e-secret-1") && !contains(&bytes, "e-secret-2"), "erased events remain on disk");
        assert!(contains(&bytes, "e-other") && contains(&bytes, "e-after"));
        assert!(!dir.path().join(super::super::compact::MARKER).exists());
        let stats = store.stats().unwrap();
        assert_eq!(stats.events, 2);
        assert_eq!(store.user_events(&secret, 10).unwrap().len(), 1);
        // Erased ids stay known: a late re-delivery is not stored again.
        assert_eq!(store.append_events(vec![view("e-secret-1", "secret-shopper", "i1", 1)]).unwrap().duplicates, 1);
        drop(store);
        let store = open(dir.path());
        assert_eq!(store.stats().unwrap().events, 2);
        assert_eq!(store.append_events(vec![view("e-secret-2", "secret-shopper", "i2", 3)]).unwrap().duplicates, 1);
    }

    #[test]
    fn an_interrupted_compaction_is_undone_or_cleaned_up() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open(dir.path());
            store.append_events(vec![view("a", "u1", "i1", 1), view("b", "u2", "i1", 2)]).unwrap();
        }
        // A crash between the two renames, before the new log was complete.
        fs_err::rename(dir.path().join("events"), dir.path().join("events.old")).unwrap();
        fs_err::create_dir_all(dir.path().join("events.compact")).unwrap();
        let store = open(dir.path());
        assert_eq!(store.stats().unwrap().events, 2);
        assert!(!dir.path().join("events.old").exists() && !dir.path().join("events.compact").exists());
    }
}
