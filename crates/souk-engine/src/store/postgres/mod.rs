//! The PostgreSQL store: the system of record shared by several `souk serve` processes
//! (`store.url = "postgres://…"`).
//!
//! Everything durable lives in the database (see [`schema`] for the tables); each process
//! keeps the same in-memory [`EventIndex`] as the embedded store — built from one snapshot
//! when it opens, then kept current by tailing the database's change sequence
//! ([`tail`]). Reads that the embedded store answers from memory are answered from memory
//! here too (a user's latest interactions, item facts, counters); reads of whole records
//! (a user's events, items, follows, experiments) go to the database by index.
//!
//! Must never: write outside a transaction that takes its sequence numbers from
//! `souk_head` (replicas would miss it), or keep state that the database cannot rebuild.

mod conn;
mod models;
mod schema;
mod tail;
#[doc(hidden)]
pub mod test_db;
mod writes;

use std::collections::HashSet;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use postgres::fallible_iterator::FallibleIterator;

pub use schema::{PG_FORMAT_VERSION, TRAINING_LOCK};

use self::conn::{PgResult, Pool};
use self::tail::{decode_event, TailState};
use self::writes::DocumentTable;
use super::disk::WriteHealth;
use super::index::{in_pieces, EventIndex, Interaction};
use super::{
    AppendOutcome, EraseReport, Exposure, ItemCounts, ItemMeta, Stats, Storage, StorageStats, StoreChanges,
    UserInteraction,
};
use crate::error::{Error, Result};
use crate::ids::{ItemId, UserId};
use crate::model::{Event, EventType, Follow, FollowKind, Item, User};

/// See the module docs.
pub struct PgStore {
    pool: Pool,
    index: RwLock<EventIndex>,
    /// Taken before `index` by whoever advances the index (writes and the tail).
    tail: Mutex<TailState>,
    /// Month partitions of `events` known to exist.
    partitions: Mutex<HashSet<String>>,
    /// Sequence numbers of this process's writes committed (or committing) but perhaps not
    /// yet applied: the tail applies them without handing them over.
    own_writes: Mutex<Vec<std::ops::RangeInclusive<i64>>>,
    /// The `LISTEN` connection, opened on first wait.
    listener: Mutex<Option<postgres::Client>>,
    health: WriteHealth,
}

fn corrupt(what: &str, message: String) -> Error {
    Error::Corrupt { path: format!("postgresql table {what}").into(), message }
}

impl PgStore {
    /// Connect, migrate the schema (or refuse a newer one) and build the in-memory index
    /// from the database.
    pub fn open(url: &str) -> Result<Self> {
        let pool = Pool::new(url)?;
        let started = std::time::Instant::now();
        let (index, head) = {
            let mut client = pool.get()?;
            schema::migrate(&mut client)?;
            tail::load(&mut client)?
        };
        tracing::info!(
            url = pool.shown(),
            events = index.live_events,
            seq = head,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "opened the PostgreSQL store"
        );
        Ok(Self {
            pool,
            index: RwLock::new(index),
            tail: Mutex::new(TailState { applied: head, pending: StoreChanges::default() }),
            partitions: Mutex::new(HashSet::new()),
            own_writes: Mutex::new(Vec::new()),
            listener: Mutex::new(None),
            health: WriteHealth::default(),
        })
    }

    /// The sequence number of the last change this process's index reflects.
    pub fn applied_seq(&self) -> i64 {
        self.tail.lock().applied
    }

    /// The shared number of the newest published model generation (tests and tools).
    pub fn newest_generation(&self) -> Result<Option<u64>> {
        Ok(crate::store::artifacts::SharedModels::newest(self)?.map(|(number, _)| number))
    }

    /// A connection of its own to the same database (for session-level advisory locks,
    /// which last as long as it does).
    pub fn dedicated_client(&self) -> Result<postgres::Client> {
        self.pool.connect()
    }

    fn read_documents(&self, table: DocumentTable) -> Result<Vec<(String, String)>> {
        let sql = format!("SELECT id, doc FROM {} ORDER BY id", table.name());
        let rows = self.pool.get()?.query(sql.as_str(), &[]).or_pg("reading documents")?;
        Ok(rows.into_iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    fn exposures_where(&self, column: &str, value: &str) -> Result<Vec<Exposure>> {
        let sql =
            format!("SELECT experiment, request_id, user_id, arm, ts FROM exposures WHERE {column} = $1 ORDER BY seq");
        let rows = self.pool.get()?.query(sql.as_str(), &[&value]).or_pg("reading exposures")?;
        rows.into_iter()
            .map(|row| {
                Ok(Exposure {
                    experiment: row.get(0),
                    request_id: row.get(1),
                    user: UserId::parse(row.get::<_, String>(2), "user")
                        .map_err(|e| corrupt("exposures", e.to_string()))?,
                    arm: row.get(3),
                    timestamp: row.get(4),
                })
            })
            .collect()
    }

    fn document<T: serde::de::DeserializeOwned>(&self, table: &str, id: &str) -> Result<Option<T>> {
        let sql = format!("SELECT doc FROM {table} WHERE id = $1");
        let row = self.pool.get()?.query_opt(sql.as_str(), &[&id]).or_pg("reading the catalog")?;
        row.map(|row| serde_json::from_str(row.get::<_, &str>(0)).map_err(|e| corrupt(table, format!("{id}: {e}"))))
            .transpose()
    }

    /// Visit the JSON documents of `sql`'s `(id, doc)` rows, in one transaction (a consistent
    /// view), streamed; a document that does not parse is corruption of `table`.
    fn scan_documents<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        table: &str,
        visit: &mut dyn FnMut(T) -> Result<()>,
    ) -> Result<()> {
        let what = format!("reading {table}");
        let mut client = self.pool.get()?;
        let mut tx = client.transaction().or_pg(&what)?;
        let mut rows = tx.query_raw(sql, std::iter::empty::<&str>()).or_pg(&what)?;
        while let Some(row) = rows.next().or_pg(&what)? {
            let value: T = serde_json::from_str(row.get::<_, &str>(1))
                .map_err(|e| corrupt(table, format!("{}: {e}", row.get::<_, &str>(0))))?;
            visit(value)?;
        }
        drop(rows);
        tx.commit().or_pg(&what)
    }
}

impl Storage for PgStore {
    fn append_events(&self, events: Vec<Event>) -> Result<AppendOutcome> {
        self.append(events)
    }

    fn put_items(&self, items: Vec<Item>) -> Result<()> {
        self.write_items(items)
    }

    fn get_item(&self, id: &ItemId) -> Result<Option<Item>> {
        self.document("items", id.as_str())
    }

    fn delete_item(&self, id: &ItemId) -> Result<bool> {
        self.remove_item(id)
    }

    fn put_users(&self, users: Vec<User>) -> Result<()> {
        self.write_users(users)
    }

    fn get_user(&self, id: &UserId) -> Result<Option<User>> {
        self.document("users", id.as_str())
    }

    fn erase_user(&self, id: &UserId) -> Result<EraseReport> {
        self.erase(id)
    }

    fn put_follows(&self, follows: Vec<Follow>) -> Result<()> {
        self.write_follows(follows)
    }

    fn delete_follow(&self, user: &UserId, other: &UserId) -> Result<bool> {
        self.remove_follow(user, other)
    }

    fn follows_of(&self, user: &UserId) -> Result<Vec<Follow>> {
        let rows = self
            .pool
            .get()?
            .query("SELECT other, kind, created_at FROM follows WHERE user_id = $1 ORDER BY other", &[&user.as_str()])
            .or_pg("reading follows")?;
        rows.into_iter()
            .map(|row| {
                let kind: String = row.get(1);
                Ok(Follow {
                    user: user.clone(),
                    other: UserId::parse(row.get::<_, String>(0), "other")
                        .map_err(|e| corrupt("follows", e.to_string()))?,
                    kind: kind
                        .parse::<FollowKind>()
                        .map_err(|()| corrupt("follows", format!("unknown kind {kind:?}")))?,
                    created_at: row.get(2),
                })
            })
            .collect()
    }

    fn scan_follows(&self, visit: &mut dyn FnMut(&str, &str)) -> Result<()> {
        let rows = self
            .pool
            .get()?
            .query("SELECT user_id, other FROM follows ORDER BY user_id, other", &[])
            .or_pg("reading follows")?;
        for row in rows {
            visit(row.get::<_, &str>(0), row.get::<_, &str>(1));
        }
        Ok(())
    }

    fn scan_items(&self, visit: &mut dyn FnMut(Item) -> Result<()>) -> Result<()> {
        self.scan_documents("SELECT id, doc FROM items ORDER BY seq", "items", visit)
    }

    fn scan_users(&self, visit: &mut dyn FnMut(User) -> Result<()>) -> Result<()> {
        self.scan_documents("SELECT id, doc FROM users ORDER BY seq", "users", visit)
    }

    fn user_events(&self, user: &UserId, limit: usize) -> Result<Vec<Event>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .pool
            .get()?
            .query(
                "SELECT seq, record FROM events WHERE user_id = $1 ORDER BY seq DESC LIMIT $2",
                &[&user.as_str(), &limit],
            )
            .or_pg("reading a user's events")?;
        rows.iter().map(|row| decode_event(row.get(0), row.get(1))).collect()
    }

    fn item_counts(&self, item: &ItemId) -> Result<Option<ItemCounts>> {
        Ok(self.index.read().item_counts(item.as_str()))
    }

    fn stats(&self) -> Result<Stats> {
        let row = self
            .pool
            .get()?
            .query_one(
                "SELECT (SELECT count(*) FROM follows), (SELECT count(*) FROM items), (SELECT count(*) FROM users),
                        (SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::int8 FROM pg_partition_tree('events'))
                          + pg_total_relation_size('event_ids') + pg_total_relation_size('souk_changes'),
                        (SELECT coalesce(sum(pg_total_relation_size(t::regclass)), 0)::int8
                         FROM unnest(ARRAY['items', 'users', 'follows', 'experiments', 'exposures', 'api_keys']) t)",
                &[],
            )
            .or_pg("counting")?;
        let count = |i: usize| row.get::<_, i64>(i).max(0) as u64;
        let index = self.index.read();
        Ok(Stats {
            items: index.known_items(),
            users: index.known_users(),
            events: index.live_events,
            events_by_type: index.events_by_type_names(),
            social_edges: count(0),
            catalog_items: count(1),
            items_without_record: index.items_without_record(),
            catalog_users: count(2),
            storage: StorageStats { backend: "postgresql".into(), event_log_bytes: count(3), catalog_bytes: count(4) },
        })
    }

    fn scan_interactions(&self, visit: &mut dyn FnMut(&str, Option<&str>, &Interaction)) -> Result<()> {
        // In pieces, as the embedded store does: the tail's writes wait for no long scan.
        let rows = self.index.read().row_count();
        in_pieces(rows, |range| {
            self.index.read().visit_interactions_in(range, visit);
            Ok(())
        })
    }

    fn event_count(&self) -> Result<u64> {
        Ok(self.index.read().live_events)
    }

    fn user_interactions(&self, user: &UserId, limit: usize) -> Result<Vec<UserInteraction>> {
        Ok(self.index.read().user_interactions(user.as_str(), limit))
    }

    fn items_meta(&self, items: &[&str]) -> Result<Vec<Option<ItemMeta>>> {
        // In pieces, as the embedded store does.
        let mut meta = Vec::with_capacity(items.len());
        for piece in items.chunks(super::index::SCAN_PIECE) {
            let index = self.index.read();
            meta.extend(piece.iter().map(|item| index.item_meta(item).cloned()));
        }
        Ok(meta)
    }

    fn items_match(&self, items: &[&str], test: &dyn Fn(Option<&ItemMeta>) -> bool) -> Result<Vec<bool>> {
        let index = self.index.read();
        Ok(items.iter().map(|item| test(index.item_meta(item))).collect())
    }

    fn recent_interactions(&self, max_rows: usize, visit: &mut dyn FnMut(&str, &Interaction) -> bool) -> Result<()> {
        self.index.read().visit_recent(max_rows, visit);
        Ok(())
    }

    fn scan_events(&self, types: &[EventType], visit: &mut dyn FnMut(Event) -> Result<()>) -> Result<()> {
        const WHAT: &str = "reading events";
        let codes: Vec<i16> = types.iter().map(|t| *t as i16).collect();
        let mut client = self.pool.get()?;
        let mut tx = client.transaction().or_pg(WHAT)?;
        let mut rows = tx
            .query_raw(
                "SELECT seq, record FROM events WHERE type = ANY($1) ORDER BY seq",
                [&codes as &(dyn postgres::types::ToSql + Sync)],
            )
            .or_pg(WHAT)?;
        while let Some(row) = rows.next().or_pg(WHAT)? {
            visit(decode_event(row.get(0), row.get(1))?)?;
        }
        drop(rows);
        tx.commit().or_pg(WHAT)
    }

    fn scan_item_meta(&self, visit: &mut dyn FnMut(&str, &ItemMeta)) -> Result<()> {
        let items = self.index.read().item_count();
        in_pieces(items, |range| {
            self.index.read().visit_item_meta_in(range, visit);
            Ok(())
        })
    }

    fn put_experiment(&self, id: &str, doc: &str) -> Result<()> {
        self.put_document(DocumentTable::Experiments, id, doc)
    }

    fn experiments(&self) -> Result<Vec<(String, String)>> {
        self.read_documents(DocumentTable::Experiments)
    }

    fn add_exposures(&self, exposures: &[Exposure]) -> Result<()> {
        if exposures.is_empty() {
            return Ok(());
        }
        self.insert_exposures(exposures)
    }

    fn exposures(&self, experiment: &str) -> Result<Vec<Exposure>> {
        self.exposures_where("experiment", experiment)
    }

    fn user_exposures(&self, user: &UserId) -> Result<Vec<Exposure>> {
        self.exposures_where("user_id", user.as_str())
    }

    fn put_api_key(&self, id: &str, doc: &str) -> Result<()> {
        self.put_document(DocumentTable::ApiKeys, id, doc)
    }

    fn api_keys(&self) -> Result<Vec<(String, String)>> {
        self.read_documents(DocumentTable::ApiKeys)
    }

    fn delete_api_key(&self, id: &str) -> Result<bool> {
        self.delete_document(DocumentTable::ApiKeys, id)
    }

    fn writes_refused(&self) -> Option<String> {
        self.health.reason()
    }

    fn changes(&self) -> Result<StoreChanges> {
        let mut tail = self.tail.lock();
        self.catch_up(&mut tail, None)?;
        Ok(std::mem::take(&mut tail.pending))
    }

    fn shared_models(&self) -> Option<&dyn crate::store::artifacts::SharedModels> {
        Some(self)
    }

    fn wait_for_changes(&self, timeout: Duration) -> Result<bool> {
        let mut listener = self.listener.lock();
        if listener.as_ref().is_none_or(|client| client.is_closed()) {
            let mut client = self.pool.connect()?;
            client.batch_execute(&format!("LISTEN {}", schema::CHANNEL)).or_pg("listening for changes")?;
            *listener = Some(client);
            // Changes between the last look and the LISTEN would not wake anyone.
            return Ok(true);
        }
        let Some(client) = listener.as_mut() else {
            return Ok(false);
        };
        let mut notifications = client.notifications();
        let woke = notifications.timeout_iter(timeout).next().or_pg("listening for changes")?.is_some();
        // Several writes may have notified: one look covers them all.
        while notifications.iter().next().or_pg("listening for changes")?.is_some() {}
        Ok(woke)
    }
}

#[cfg(test)]
mod tests;
