//! Keeping the in-memory index a cache of the database: built on open from one consistent
//! snapshot, then advanced by tailing events and catalog changes by sequence number.
//!
//! Every write takes its sequence numbers under the lock of `souk_head` and commits before
//! the next writer gets them, so numbers become visible in order and "everything up to
//! `applied`" is a complete prefix. A process's own write is applied from memory when
//! nothing of others came in between (the common case); otherwise the tail reads
//! everything since `applied` back from the database, its own write included.

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;

use postgres::{IsolationLevel, Transaction};

use super::conn::PgResult;
use super::PgStore;
use crate::error::{Error, Result};
use crate::ids::{ItemId, UserId};
use crate::store::catalog::{ItemFacts, CATEGORY_SEPARATOR};
use crate::store::codec::{self, LogRecord};
use crate::store::index::{event_id_digest, EventIndex};
use crate::store::StoreChanges;

/// What a row of `souk_changes` says changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i16)]
pub(super) enum ChangeKind {
    /// An item's record was written (subject: the item id).
    ItemPut = 1,
    ItemDeleted = 2,
    UserPut = 3,
    /// A user's events, record and edges were erased (their edges get their own rows).
    UserErased = 4,
    /// A social edge was added (subject: user, separator, other).
    FollowAdded = 5,
    FollowRemoved = 6,
    Experiment = 7,
    ApiKey = 8,
    /// A model generation was published (subject: its number).
    Generation = 9,
}

impl ChangeKind {
    fn from_code(code: i16) -> Option<Self> {
        use ChangeKind::*;
        [ItemPut, ItemDeleted, UserPut, UserErased, FollowAdded, FollowRemoved, Experiment, ApiKey, Generation]
            .into_iter()
            .find(|kind| *kind as i16 == code)
    }
}

/// Joins the two users of an edge in a change's subject.
pub(super) const EDGE_SEPARATOR: char = '\u{1f}';

/// The tail's position and what it applied for others since the last hand-over.
#[derive(Debug, Default)]
pub(super) struct TailState {
    /// Every change with a sequence number up to this is in the index.
    pub applied: i64,
    pub pending: StoreChanges,
}

/// An item's catalog facts, owned (read from the database).
struct OwnedFacts {
    category: String,
    brand: Option<String>,
    price: Option<f64>,
    available: bool,
    title: Option<String>,
    title_zh: Option<String>,
    image: Option<String>,
}

impl OwnedFacts {
    fn from_row(row: &postgres::Row, from: usize) -> Self {
        Self {
            category: row.get(from),
            brand: row.get(from + 1),
            price: row.get(from + 2),
            available: row.get(from + 3),
            title: row.get(from + 4),
            title_zh: row.get(from + 5),
            image: row.get(from + 6),
        }
    }

    fn facts<'a>(&'a self, id: &'a str) -> ItemFacts<'a> {
        ItemFacts {
            id,
            category: if self.category.is_empty() {
                Vec::new()
            } else {
                self.category.split(CATEGORY_SEPARATOR).collect()
            },
            brand: self.brand.as_deref(),
            price: self.price,
            available: self.available,
            title: self.title.as_deref(),
            title_zh: self.title_zh.as_deref(),
            image: self.image.as_deref(),
        }
    }
}

pub(super) const FACT_COLUMNS: &str = "category, brand, price, available, title, title_zh, image";

fn corrupt(message: String) -> Error {
    Error::Corrupt { path: "postgresql table events".into(), message }
}

/// Decode an `events.record` value.
pub(super) fn decode_event(seq: i64, bytes: &[u8]) -> Result<crate::model::Event> {
    match codec::decode(bytes) {
        Ok(LogRecord::Event(event)) => Ok(event),
        Ok(_) => Err(corrupt(format!("event {seq} holds a record that is not an event"))),
        Err(e) => Err(corrupt(format!("event {seq}: {e}"))),
    }
}

fn snapshot<'a>(client: &'a mut postgres::Client, what: &str) -> Result<Transaction<'a>> {
    client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().or_pg(what)
}

/// Build the index from one snapshot: the catalog, then every event in sequence order.
/// Returns the index and the sequence number it reflects.
pub(super) fn load(client: &mut postgres::Client) -> Result<(EventIndex, i64)> {
    const WHAT: &str = "loading the store";
    let mut tx = snapshot(client, WHAT)?;
    let head: i64 = tx.query_one("SELECT last_seq FROM souk_head WHERE id = 1", &[]).or_pg(WHAT)?.get(0);
    let mut index = EventIndex::default();
    let sql = format!("SELECT id, {FACT_COLUMNS} FROM items ORDER BY seq");
    for row in tx.query(sql.as_str(), &[]).or_pg(WHAT)? {
        let id: &str = row.get(0);
        index.set_item_facts(&OwnedFacts::from_row(&row, 1).facts(id));
    }
    for row in tx.query("SELECT id FROM users ORDER BY seq", &[]).or_pg(WHAT)? {
        index.set_user_in_catalog(row.get(0), true);
    }
    for row in tx.query("SELECT user_id, other FROM follows", &[]).or_pg(WHAT)? {
        index.count_follow(row.get(0), row.get(1), true);
    }
    apply_events_since(&mut tx, &mut index, 0, &mut |_, _| {})?;
    tx.commit().or_pg(WHAT)?;
    Ok((index, head))
}

/// Stream every event after `from` into the index, in sequence order.
fn apply_events_since(
    tx: &mut Transaction<'_>,
    index: &mut EventIndex,
    from: i64,
    seen: &mut dyn FnMut(i64, crate::model::Event),
) -> Result<()> {
    const WHAT: &str = "reading events";
    use postgres::fallible_iterator::FallibleIterator;
    let mut rows = tx
        .query_raw(
            "SELECT seq, record FROM events WHERE seq > $1 ORDER BY seq",
            [&from as &(dyn postgres::types::ToSql + Sync)],
        )
        .or_pg(WHAT)?;
    while let Some(row) = rows.next().or_pg(WHAT)? {
        let seq: i64 = row.get(0);
        let event = decode_event(seq, row.get(1))?;
        if index.insert_event(&event, event_id_digest(event.id.as_str()), seq as u64) {
            seen(seq, event);
        }
    }
    Ok(())
}

impl PgStore {
    /// Apply this process's own write of sequence numbers `own` (committed): from memory
    /// with `local` when the index is right before it, else by reading everything new.
    pub(super) fn applied_own(&self, own: RangeInclusive<i64>, local: impl FnOnce(&mut EventIndex)) -> Result<()> {
        let mut tail = self.tail.lock();
        if tail.applied >= *own.end() {
            return Ok(()); // a tail that ran after the commit read it already
        }
        if tail.applied == own.start() - 1 {
            local(&mut self.index.write());
            tail.applied = *own.end();
            self.own_writes.lock().retain(|range| range.end() > own.end());
            return Ok(());
        }
        self.catch_up(&mut tail, Some(own))
    }

    /// Read and apply everything after `tail.applied`; changes outside `own` are kept for
    /// [`crate::store::Storage::changes`].
    pub(super) fn catch_up(&self, tail: &mut TailState, own: Option<RangeInclusive<i64>>) -> Result<()> {
        const WHAT: &str = "following the store";
        let mut client = self.pool.get()?;
        let mut tx = snapshot(&mut client, WHAT)?;
        let head: i64 = tx.query_one("SELECT last_seq FROM souk_head WHERE id = 1", &[]).or_pg(WHAT)?.get(0);
        if head <= tail.applied {
            return Ok(());
        }
        let from = tail.applied;
        let changes = tx
            .query("SELECT seq, kind, subject FROM souk_changes WHERE seq > $1 ORDER BY seq", &[&from])
            .or_pg(WHAT)?;
        let mut parsed = Vec::with_capacity(changes.len());
        let mut item_ids: Vec<String> = Vec::new();
        for row in &changes {
            let (seq, code, subject): (i64, i16, String) = (row.get(0), row.get(1), row.get(2));
            let kind = ChangeKind::from_code(code)
                .ok_or_else(|| corrupt(format!("change {seq} has an unknown kind {code}")))?;
            if kind == ChangeKind::ItemPut {
                item_ids.push(subject.clone());
            }
            parsed.push((seq, kind, subject));
        }
        let sql = format!("SELECT id, {FACT_COLUMNS} FROM items WHERE id = ANY($1)");
        let facts: HashMap<String, OwnedFacts> = tx
            .query(sql.as_str(), &[&item_ids])
            .or_pg(WHAT)?
            .iter()
            .map(|row| (row.get::<_, String>(0), OwnedFacts::from_row(row, 1)))
            .collect();
        let own_writes = self.own_writes.lock().clone();
        let mine = |seq: i64| {
            own.as_ref().is_some_and(|own| own.contains(&seq)) || own_writes.iter().any(|range| range.contains(&seq))
        };
        // Catalog changes first, then events: an event row's erasure deleted it, so the
        // snapshot holds only events that outlived every erasure in between; applying the
        // erasures first therefore removes nothing that stays.
        let mut index = self.index.write();
        let mut items = HashSet::new();
        for (seq, kind, subject) in &parsed {
            let pending = &mut tail.pending;
            match kind {
                ChangeKind::ItemPut | ChangeKind::ItemDeleted => {
                    match facts.get(subject.as_str()).filter(|_| *kind == ChangeKind::ItemPut) {
                        Some(owned) => {
                            index.set_item_facts(&owned.facts(subject));
                        }
                        None => index.remove_item_facts(subject),
                    }
                    if !mine(*seq) && items.insert(subject.clone()) {
                        if let Ok(id) = ItemId::parse(subject.clone(), "item") {
                            pending.items.push(id);
                        }
                    }
                }
                ChangeKind::UserPut => index.set_user_in_catalog(subject, true),
                ChangeKind::UserErased => {
                    let user = UserId::parse(subject.clone(), "user").map_err(|e| corrupt(e.to_string()))?;
                    index.erase_user_events(&user);
                    index.set_user_in_catalog(subject, false);
                    if !mine(*seq) {
                        pending.erased_users.push(user);
                    }
                }
                ChangeKind::FollowAdded | ChangeKind::FollowRemoved => {
                    if let Some((a, b)) = subject.split_once(EDGE_SEPARATOR) {
                        index.count_follow(a, b, *kind == ChangeKind::FollowAdded);
                    }
                }
                ChangeKind::Experiment => pending.experiments |= !mine(*seq),
                ChangeKind::ApiKey => pending.api_keys |= !mine(*seq),
                ChangeKind::Generation => pending.models |= !mine(*seq),
            }
        }
        // Events of this process's own write are not handed over: the write's caller has them.
        let pending = &mut tail.pending.events;
        apply_events_since(&mut tx, &mut index, from, &mut |seq, event| {
            if !mine(seq) {
                pending.push(event);
            }
        })?;
        drop(index);
        tx.commit().or_pg(WHAT)?;
        tail.applied = head;
        self.own_writes.lock().retain(|range| *range.end() > head);
        Ok(())
    }
}
