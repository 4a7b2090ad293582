//! The in-memory index over the event log, rebuilt from the log when the store opens.
//!
//! Owns: the dense numbering of user and item ids (an interner; numbers are not persisted
//! and may differ between runs), the set of event-id hashes for idempotent re-delivery, a
//! compact row per interaction for training scans, each user's rows in arrival order, and
//! per-item counters by event type.
//!
//! Cost model: an appended event costs one hash-set insert (16-byte key), at most two
//! interner lookups, one 40-byte row and one `u32` in its user's list. 10M events take
//! about 0.6 GB. The containers that grow with every event (rows, id digests, entries,
//! names) grow in pieces ([`crate::growth`]): no append pays for moving what is stored, so
//! no doubling stalls the index lock.

use std::sync::Arc;

use crate::growth::{ChunkedVec, ShardedDigestSet, ShardedIdMap};
use crate::hashing::IdMap;

use crate::ids::UserId;
use crate::model::{Event, EventType};

/// Sentinel for "no item" in [`Interaction::item`].
pub const NO_ITEM: u32 = u32::MAX;

/// One stored event in compact form, as training and counters need it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interaction {
    pub user: u32,
    /// Dense item number, or [`NO_ITEM`] for searches and multi-item impressions.
    pub item: u32,
    pub event_type: EventType,
    /// Erased by a privacy request: skipped by every reader.
    pub erased: bool,
    pub timestamp: i64,
    pub value: f32,
    pub dwell_ms: u32,
    /// Packed [`super::log::LogPosition`] of the full record.
    pub position: u64,
}

/// Rows of the event index a scan visits per read lock: about a millisecond at normal
/// priority. Small, because a scan is often a training's low-priority thread
/// (`serving::background`): descheduled while it holds the lock, it makes a waiting writer
/// — and every reader queued behind that writer — wait with it (65,536 rows had held the
/// lock 100–430 ms at a million items).
pub const SCAN_PIECE: usize = 8_192;

/// Run `piece` over `0..rows` in consecutive ranges of [`SCAN_PIECE`] rows, so a caller can
/// take the index lock per range instead of for the whole scan.
pub fn in_pieces(rows: usize, mut piece: impl FnMut(std::ops::Range<usize>) -> crate::Result<()>) -> crate::Result<()> {
    let mut at = 0;
    while at < rows {
        let next = (at + SCAN_PIECE).min(rows);
        piece(at..next)?;
        at = next;
    }
    Ok(())
}

/// Dense numbering of string ids.
#[derive(Debug, Default)]
pub struct Interner {
    numbers: ShardedIdMap<u32>,
    names: ChunkedVec<Box<str>>,
}

impl Interner {
    pub fn get(&self, name: &str) -> Option<u32> {
        self.numbers.get(name).copied()
    }

    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(n) = self.numbers.get(name) {
            return *n;
        }
        let n = self.names.len() as u32;
        self.names.push(name.into());
        self.numbers.insert(name.into(), n);
        n
    }

    pub fn name(&self, number: u32) -> &str {
        &self.names[number as usize]
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// What the index knows about one user.
#[derive(Debug, Default, Clone)]
pub struct UserEntry {
    pub in_catalog: bool,
    pub follow_degree: u32,
    /// Row numbers of this user's live events, oldest first.
    pub rows: Vec<u32>,
}

/// The catalog facts of an item kept in memory for filtering: category levels and brand
/// as shared strings (one copy per distinct label), price, availability.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemMeta {
    pub category: Box<[Arc<str>]>,
    pub brand: Option<Arc<str>>,
    pub price: Option<f32>,
    pub available: bool,
    /// What a page shows: the title, and the Chinese title where the catalog has one.
    pub title: Option<Arc<str>>,
    pub title_zh: Option<Arc<str>>,
    /// The item's picture (a URL), where the catalog has one.
    pub image: Option<Arc<str>>,
}

impl ItemMeta {
    /// The title in `lang`: the Chinese one for `Lang::Zh` where the catalog has one.
    pub fn title_in(&self, lang: crate::input::Lang) -> Option<&str> {
        let zh = if lang == crate::input::Lang::Zh { self.title_zh.as_deref() } else { None };
        zh.or(self.title.as_deref())
    }

    /// What a page shows of the item, with the Chinese title for `Lang::Zh` where the
    /// catalog has one.
    pub fn card(&self, lang: crate::input::Lang) -> crate::model::ItemCard {
        crate::model::ItemCard {
            title: self.title_in(lang).map(str::to_string),
            brand: self.brand.as_deref().map(str::to_string),
            category: self.category.iter().map(|c| c.to_string()).collect(),
            // Prices are kept as f32 in memory: the shortest decimal that round-trips is
            // the catalog's own price (55.99, not 55.9900016784668).
            price: self.price.map(|p| p.to_string().parse::<f64>().unwrap_or(f64::from(p))),
            image: self.image.as_deref().map(str::to_string),
        }
    }

    /// Whether the item sits under this category path prefix (case-insensitive), e.g.
    /// `["Electronics"]` or `["Electronics", "Audio"]`.
    pub fn in_category(&self, prefix: &[&str]) -> bool {
        prefix.len() <= self.category.len()
            && prefix.iter().zip(self.category.iter()).all(|(a, b)| a.trim().eq_ignore_ascii_case(b))
    }
}

impl crate::input::ItemFilter {
    /// Whether an item passes (beside [`ItemMeta`]: `input`, a lower layer, cannot see it).
    /// An item without a catalog record (only known from events, or deleted) never does:
    /// only what the catalog holds is served. Attribute conditions are judged by the search
    /// index's facts; the facts kept here have no attributes, so a filter with attribute
    /// conditions passes nothing here.
    pub fn accepts(&self, meta: Option<&ItemMeta>) -> bool {
        let Some(meta) = meta else {
            return false;
        };
        if (self.available_only && !meta.available) || !self.attributes.is_empty() {
            return false;
        }
        let category = self.category.len() <= meta.category.len()
            && self.category.iter().zip(meta.category.iter()).all(|(a, b)| a.trim().eq_ignore_ascii_case(b));
        if !category {
            return false;
        }
        if !self.brands.is_empty()
            && !meta
                .brand
                .as_deref()
                .is_some_and(|b| self.brands.iter().any(|want| b.eq_ignore_ascii_case(want.trim())))
        {
            return false;
        }
        let price = meta.price.map(f64::from);
        !(self.min_price.is_some_and(|min| price.is_none_or(|p| p < min))
            || self.max_price.is_some_and(|max| price.is_none_or(|p| p > max)))
    }
}

/// What the index knows about one item.
#[derive(Debug, Default, Clone)]
pub struct ItemEntry {
    pub in_catalog: bool,
    /// Catalog facts; `None` for items only known from events.
    pub meta: Option<ItemMeta>,
    /// Live events by [`EventType`] discriminant.
    pub counts: [u32; EventType::ALL.len()],
}

impl ItemEntry {
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| u64::from(*c)).sum()
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct EventIndex {
    pub users: Interner,
    pub items: Interner,
    pub user_entries: ChunkedVec<UserEntry>,
    pub item_entries: ChunkedVec<ItemEntry>,
    pub rows: ChunkedVec<Interaction>,
    event_ids: ShardedDigestSet,
    pub live_events: u64,
    pub events_by_type: [u64; EventType::ALL.len()],
    /// Distinct category levels and brands, shared by every item's [`ItemMeta`].
    labels: IdMap<Box<str>, Arc<str>>,
}

/// 128-bit digest of an event id: collisions are negligible (~2^-64 at 10^10 events).
pub fn event_id_digest(id: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(id.as_bytes())
}

impl EventIndex {
    pub fn intern_user(&mut self, name: &str) -> u32 {
        let n = self.users.intern(name);
        if n as usize == self.user_entries.len() {
            self.user_entries.push(UserEntry::default());
        }
        n
    }

    pub fn intern_item(&mut self, name: &str) -> u32 {
        let n = self.items.intern(name);
        if n as usize == self.item_entries.len() {
            self.item_entries.push(ItemEntry::default());
        }
        n
    }

    fn label(&mut self, text: &str) -> Arc<str> {
        if let Some(label) = self.labels.get(text) {
            return label.clone();
        }
        let label: Arc<str> = Arc::from(text);
        self.labels.insert(text.into(), label.clone());
        label
    }

    /// Record an item's catalog facts (it is now in the catalog).
    pub fn set_item_facts(&mut self, facts: &super::catalog::ItemFacts<'_>) -> u32 {
        let n = self.intern_item(facts.id);
        let category = facts.category.iter().map(|level| self.label(level)).collect();
        let brand = facts.brand.map(|b| self.label(b));
        let entry = &mut self.item_entries[n as usize];
        entry.in_catalog = true;
        entry.meta = Some(ItemMeta {
            category,
            brand,
            price: facts.price.map(|p| p as f32),
            available: facts.available,
            title: facts.title.map(Arc::from),
            title_zh: facts.title_zh.map(Arc::from),
            image: facts.image.map(Arc::from),
        });
        n
    }

    /// The index's view of the catalog (item facts, catalog users, follow degrees), before
    /// the log is replayed into it.
    pub fn from_catalog(catalog: &super::catalog::Catalog) -> crate::Result<Self> {
        let mut index = Self::default();
        {
            let index = std::cell::RefCell::new(&mut index);
            catalog.scan_ids(
                |facts| {
                    index.borrow_mut().set_item_facts(&facts);
                },
                |user| {
                    let mut index = index.borrow_mut();
                    let n = index.intern_user(user);
                    index.user_entries[n as usize].in_catalog = true;
                },
                |user, other| {
                    let mut index = index.borrow_mut();
                    for u in [user, other] {
                        let n = index.intern_user(u);
                        index.user_entries[n as usize].follow_degree += 1;
                    }
                },
            )?;
        }
        Ok(index)
    }

    /// Apply one replayed log record found at `position` (packed).
    pub fn apply_record(&mut self, record: super::codec::LogRecord, position: u64) {
        match record {
            super::codec::LogRecord::Event(event) => {
                self.insert_event(&event, event_id_digest(event.id.as_str()), position);
            }
            super::codec::LogRecord::EraseUser { user, .. } => {
                self.erase_user_events(&user);
            }
            super::codec::LogRecord::KnownIds(digests) => self.remember_event_ids(&digests),
        }
    }

    /// Remember ids of events that were erased and compacted away.
    pub fn remember_event_ids(&mut self, digests: &[u128]) {
        self.event_ids.extend(digests.iter().copied());
    }

    /// Whether an event with this id digest is already stored.
    pub fn contains_event(&self, digest: u128) -> bool {
        self.event_ids.contains(digest)
    }

    /// Record an event. Returns false (and changes nothing) if its id was seen before.
    pub fn insert_event(&mut self, event: &Event, digest: u128, position: u64) -> bool {
        if !self.event_ids.insert(digest) {
            return false;
        }
        let user = self.intern_user(event.user.as_str());
        let item = match (&event.item, event.items.as_slice()) {
            (Some(item), _) => self.intern_item(item.as_str()),
            (None, [only]) => self.intern_item(only.as_str()),
            (None, _) => NO_ITEM,
        };
        // Items listed by impressions and searches become known items too.
        for listed in &event.items {
            self.intern_item(listed.as_str());
        }
        let row = self.rows.len() as u32;
        self.rows.push(Interaction {
            user,
            item,
            event_type: event.event_type,
            erased: false,
            timestamp: event.timestamp,
            value: event.value.unwrap_or(0.0) as f32,
            dwell_ms: event.dwell_ms.map_or(0, |d| d.min(u64::from(u32::MAX)) as u32),
            position,
        });
        self.user_entries[user as usize].rows.push(row);
        if item != NO_ITEM {
            self.item_entries[item as usize].counts[event.event_type as usize] += 1;
        }
        self.live_events += 1;
        self.events_by_type[event.event_type as usize] += 1;
        true
    }

    /// Erase every event of `user`; returns how many were erased. Their ids stay known so
    /// that a late re-delivery of an erased event is not stored again.
    pub fn erase_user_events(&mut self, user: &UserId) -> u64 {
        let Some(number) = self.users.get(user.as_str()) else {
            return 0;
        };
        let rows = std::mem::take(&mut self.user_entries[number as usize].rows);
        for row in &rows {
            let interaction = &mut self.rows[*row as usize];
            if interaction.erased {
                continue;
            }
            interaction.erased = true;
            if interaction.item != NO_ITEM {
                self.item_entries[interaction.item as usize].counts[interaction.event_type as usize] -= 1;
            }
            self.live_events -= 1;
            self.events_by_type[interaction.event_type as usize] -= 1;
        }
        rows.len() as u64
    }

    /// Items known from the catalog or from live events.
    pub fn known_items(&self) -> u64 {
        self.item_entries.iter().filter(|e| e.in_catalog || e.total() > 0).count() as u64
    }

    /// Items with live events but no catalog record: stored, never served until the
    /// catalog has them (events may arrive before their item; a deleted item lands here).
    pub fn items_without_record(&self) -> u64 {
        self.item_entries.iter().filter(|e| !e.in_catalog && e.total() > 0).count() as u64
    }

    /// Live event counts of an item, or `None` if the item is unknown.
    pub fn item_counts(&self, item: &str) -> Option<super::ItemCounts> {
        self.items.get(item).map(|n| super::ItemCounts::from_counts(&self.item_entries[n as usize].counts))
    }

    /// Live events by type name, every type listed.
    pub fn events_by_type_names(&self) -> std::collections::BTreeMap<String, u64> {
        EventType::ALL.iter().map(|t| (t.as_str().to_string(), self.events_by_type[*t as usize])).collect()
    }

    /// A user's most recent interactions with items, newest first.
    pub fn user_interactions(&self, user: &str, limit: usize) -> Vec<super::UserInteraction> {
        let Some(n) = self.users.get(user) else {
            return Vec::new();
        };
        self.user_entries[n as usize]
            .rows
            .iter()
            .rev()
            .map(|row| &self.rows[*row as usize])
            .filter(|row| row.item != NO_ITEM)
            .take(limit)
            .map(|row| super::UserInteraction {
                item: self.items.name(row.item).to_string(),
                event_type: row.event_type,
                timestamp: row.timestamp,
                value: row.value,
                dwell_ms: row.dwell_ms,
            })
            .collect()
    }

    /// The catalog facts of an item, if it has a catalog record.
    pub fn item_meta(&self, item: &str) -> Option<&ItemMeta> {
        self.items.get(item).and_then(|n| self.item_entries[n as usize].meta.as_ref())
    }

    /// Visit the most recent interactions with items, newest first, at most `max_rows`;
    /// `visit` returns false to stop.
    pub fn visit_recent(&self, max_rows: usize, visit: &mut dyn FnMut(&str, &Interaction) -> bool) {
        for row in self.rows.iter().rev().filter(|r| !r.erased && r.item != NO_ITEM).take(max_rows) {
            if !visit(self.items.name(row.item), row) {
                break;
            }
        }
    }

    /// Positions of every live event of these types, in arrival order.
    pub fn positions_of(&self, types: &[EventType]) -> Vec<u64> {
        let mut positions = Vec::new();
        self.positions_in(types, 0..self.rows.len(), &mut positions);
        positions
    }

    /// [`Self::positions_of`] among the rows numbered `range`, appended to `out`.
    pub fn positions_in(&self, types: &[EventType], range: std::ops::Range<usize>, out: &mut Vec<u64>) {
        for at in range.start..range.end.min(self.rows.len()) {
            let row = &self.rows[at];
            if !row.erased && types.contains(&row.event_type) {
                out.push(row.position);
            }
        }
    }

    /// Items known so far: the bound of [`Self::visit_item_meta_in`].
    pub fn item_count(&self) -> usize {
        self.item_entries.len()
    }

    /// Visit the catalog facts of every item numbered in `range` (clipped to those known)
    /// that has them.
    pub fn visit_item_meta_in(&self, range: std::ops::Range<usize>, visit: &mut dyn FnMut(&str, &ItemMeta)) {
        for n in range.start..range.end.min(self.item_entries.len()) {
            if let Some(meta) = &self.item_entries[n].meta {
                visit(self.items.name(n as u32), meta);
            }
        }
    }

    /// Visit every live interaction in arrival order with its user and item ids.
    pub fn visit_interactions(&self, visit: &mut dyn FnMut(&str, Option<&str>, &Interaction)) {
        self.visit_interactions_in(0..self.rows.len(), visit);
    }

    /// Rows stored so far (erased ones included): the bound of [`Self::visit_interactions_in`].
    pub fn row_count(&self) -> usize {
        self.rows.len()
    }

    /// [`Self::visit_interactions`] over the rows numbered `range` (in storage order).
    pub fn visit_interactions_in(
        &self,
        range: std::ops::Range<usize>,
        visit: &mut dyn FnMut(&str, Option<&str>, &Interaction),
    ) {
        for at in range.start..range.end.min(self.rows.len()) {
            let row = &self.rows[at];
            if !row.erased {
                let item = (row.item != NO_ITEM).then(|| self.items.name(row.item));
                visit(self.users.name(row.user), item, row);
            }
        }
    }

    /// The item left the catalog (its events stay).
    pub fn remove_item_facts(&mut self, item: &str) {
        if let Some(n) = self.items.get(item) {
            let entry = &mut self.item_entries[n as usize];
            entry.in_catalog = false;
            entry.meta = None;
        }
    }

    /// A user record was stored (`true`) or removed.
    pub fn set_user_in_catalog(&mut self, user: &str, in_catalog: bool) {
        if in_catalog {
            let n = self.intern_user(user);
            self.user_entries[n as usize].in_catalog = true;
        } else if let Some(n) = self.users.get(user) {
            self.user_entries[n as usize].in_catalog = false;
        }
    }

    /// A social edge between `user` and `other` was added (`true`) or removed.
    pub fn count_follow(&mut self, user: &str, other: &str, added: bool) {
        for u in [user, other] {
            if added {
                let n = self.intern_user(u);
                self.user_entries[n as usize].follow_degree += 1;
            } else if let Some(n) = self.users.get(u) {
                let entry = &mut self.user_entries[n as usize];
                entry.follow_degree = entry.follow_degree.saturating_sub(1);
            }
        }
    }

    /// Users known from the catalog, live events or social edges.
    pub fn known_users(&self) -> u64 {
        self.user_entries.iter().filter(|e| e.in_catalog || e.follow_degree > 0 || !e.rows.is_empty()).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{EventId, ItemId};

    fn view(id: &str, user: &str, item: &str) -> Event {
        Event::new(
            EventId::parse(id, "id").unwrap(),
            EventType::View,
            UserId::parse(user, "user").unwrap(),
            Some(ItemId::parse(item, "item").unwrap()),
            1,
        )
    }

    #[test]
    fn duplicate_ids_are_stored_once_and_erasure_updates_counters() {
        let mut index = EventIndex::default();
        let e1 = view("a", "u1", "i1");
        assert!(index.insert_event(&e1, event_id_digest("a"), 0));
        assert!(!index.insert_event(&e1, event_id_digest("a"), 0));
        assert!(index.insert_event(&view("b", "u2", "i1"), event_id_digest("b"), 0));
        assert_eq!(index.live_events, 2);
        assert_eq!(index.item_entries[0].counts[EventType::View as usize], 2);
        assert_eq!((index.known_users(), index.known_items()), (2, 1));
        assert_eq!(index.erase_user_events(&UserId::parse("u1", "u").unwrap()), 1);
        assert_eq!(index.live_events, 1);
        assert_eq!(index.item_entries[0].counts[EventType::View as usize], 1);
        assert_eq!(index.known_users(), 1);
        assert!(index.contains_event(event_id_digest("a")));
    }

    #[test]
    fn a_scan_in_pieces_visits_every_live_row_once_in_order() {
        let mut index = EventIndex::default();
        let rows = SCAN_PIECE + 3;
        for k in 0..rows {
            let id = format!("e{k}");
            index.insert_event(&view(&id, &format!("u{}", k % 7), "i1"), event_id_digest(&id), 0);
        }
        index.erase_user_events(&UserId::parse("u3", "u").unwrap());
        let mut whole = Vec::new();
        index.visit_interactions(&mut |user, _, row| whole.push((user.to_string(), row.position)));
        let mut ranges = Vec::new();
        let mut pieces = Vec::new();
        in_pieces(index.row_count(), |range| {
            ranges.push(range.clone());
            index.visit_interactions_in(range, &mut |user, _, row| pieces.push((user.to_string(), row.position)));
            Ok(())
        })
        .unwrap();
        assert_eq!(ranges, [0..SCAN_PIECE, SCAN_PIECE..rows]);
        assert_eq!(pieces, whole);
        assert_eq!(whole.len(), rows - (0..rows).filter(|k| k % 7 == 3).count());
    }
}
