//! The data an evaluation runs on: distinct (user, item) pairs with string ids, time and
//! weight.
//!
//! The unit of every protocol is the distinct (user, item) pair, as in the usual top-N
//! protocols (a user who bought an item twice has one positive, not two). Repeated events
//! of a pair are summed into one weight; only pairs with a positive sum are kept (a view
//! followed by a dislike is no positive). Each pair keeps the time of its first and last
//! event, the arrival number of its last event, which the temporal protocols use, and the
//! set of its event types, which lets a protocol treat one type as the target (a purchase
//! test split whose carted items stay rankable).

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::model::EventType;
use crate::recommend::{EventWeights, Interactions, SocialEdges};
use crate::store::Storage;

/// One distinct (user, item) pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalPair {
    pub user: u32,
    pub item: u32,
    /// Time of the pair's first event (Unix milliseconds for stored events).
    pub first_timestamp: i64,
    /// Time of the pair's last event.
    pub last_timestamp: i64,
    /// Arrival number of the pair's last event: breaks ties between equal timestamps.
    pub last_arrival: u64,
    /// Sum of the weights of the pair's events: > 0, except for a pair listed only in a
    /// split directory's test file, which has no training events and weighs 0.
    pub weight: f32,
    /// Types of the pair's (training) events; empty for untyped split-directory lines.
    pub event_types: EventTypeSet,
}

/// A set of [`EventType`]s, one bit per type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct EventTypeSet(u16);

impl EventTypeSet {
    pub fn insert(&mut self, event_type: EventType) {
        self.0 |= 1 << event_type as u8;
    }

    pub fn contains(self, event_type: EventType) -> bool {
        self.0 & (1 << event_type as u8) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<EventType> for EventTypeSet {
    fn from_iter<I: IntoIterator<Item = EventType>>(types: I) -> Self {
        let mut set = EventTypeSet::default();
        types.into_iter().for_each(|t| set.insert(t));
        set
    }
}

/// In which files of a split directory a pair was listed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Listed {
    pub train: bool,
    pub test: bool,
}

/// Interactions to evaluate on: distinct positive pairs sorted by (user, item).
///
/// Users and items are numbered in order of first appearance among the kept pairs (the
/// order in which the usual Python tools number them), so `user_ids[p.user]` is the id of
/// pair `p`'s user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalData {
    /// Name of the data set, shown in reports.
    pub name: String,
    pub user_ids: Vec<String>,
    pub item_ids: Vec<String>,
    /// One entry per distinct pair, sorted by (user, item).
    pub pairs: Vec<EvalPair>,
    /// For data read by [`EvalData::from_split_dir`]: in which files each pair (same order
    /// as `pairs`) was listed; the split-dir protocol decides from this and the target
    /// event type which pairs are training and which are test. `None` for every other
    /// source.
    pub listed: Option<Vec<Listed>>,
    /// For a split directory with `candidates.tsv`: the only items to rank (item indices,
    /// sorted) — a cold-item split given from outside. `None`: every item.
    pub candidates: Option<Vec<u32>>,
    /// Social edges between users (by id): the store's follows, or a split directory's
    /// `social.tsv`. Every protocol's training matrix carries them.
    pub social: SocialEdges,
}

impl EvalData {
    pub fn n_users(&self) -> usize {
        self.user_ids.len()
    }

    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }

    /// Every live interaction in the store weighted by `weights`; events with weight 0
    /// (searches, impressions, short views) are skipped.
    pub fn from_store(store: &dyn Storage, weights: &EventWeights, name: impl Into<String>) -> Result<Self> {
        let mut builder = EvalDataBuilder::default();
        store.scan_interactions(&mut |user, item, row| {
            if let Some(item) = item {
                let weight = weights.weight(row);
                if weight != 0.0 {
                    builder.add_typed(user, item, row.timestamp, weight, row.event_type);
                }
            }
        })?;
        let mut data = builder.build(name);
        data.social = crate::recommend::data::social_edges_of(store)?;
        Ok(data)
    }

    /// The split another library used: `dir/train.tsv` and `dir/test.tsv`, one
    /// `user<TAB>item` pair per line (blank lines skipped, no header), with the data set's
    /// own ids. A training line may name an event type in a third column
    /// (`user<TAB>item<TAB>add_to_cart`, the names of [`EventType`]); it then weighs as
    /// `weights` says (a `rating` line has no value, so it counts as a rating at the
    /// threshold; a type weighing 0 is skipped), and a line without one weighs 1. Lines of
    /// one pair sum. Columns after the second are ignored in the test file, after the third
    /// in the training file. Items and users that appear only in the test file still get an
    /// index. Use it with [`crate::eval::Protocol::SplitDir`], which also says what a pair
    /// listed in both files is. When `dir/social.tsv` exists, its lines are social edges,
    /// `user<TAB>other` (user follows, befriends or trusts other; further columns ignored):
    /// the training data carries them for the models that use them.
    pub fn from_split_dir(dir: &Path, weights: &EventWeights) -> Result<Self> {
        let mut builder = EvalDataBuilder::default();
        let mut line_number = 0i64;
        for (file, is_test) in [("train.tsv", false), ("test.tsv", true)] {
            let path = dir.join(file);
            let text = fs_err::read_to_string(&path)?;
            for (index, line) in text.lines().enumerate() {
                let line = line.trim_end_matches('\r');
                if line.trim().is_empty() {
                    continue;
                }
                let parse_error =
                    |message: String| Error::Parse { path: path.clone(), line: index as u64 + 1, message };
                let mut columns = line.split('\t');
                let (Some(user), Some(item)) = (columns.next(), columns.next()) else {
                    return Err(parse_error(format!("expected `user<TAB>item`, found {line:?}")));
                };
                line_number += 1;
                let typed = if is_test { None } else { columns.next() };
                match typed {
                    None => builder.add_listed(user, item, line_number, if is_test { 0.0 } else { 1.0 }, None, is_test),
                    Some(name) => {
                        let event_type: EventType = name.parse().map_err(|()| {
                            let names: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                            parse_error(format!(
                                "expected an event type ({}) in the third column, found {name:?}",
                                names.join(", ")
                            ))
                        })?;
                        let weight = weights.weight_of(event_type, weights.rating_threshold, 0);
                        if weight != 0.0 {
                            builder.add_listed(user, item, line_number, weight, Some(event_type), false);
                        }
                    }
                }
            }
        }
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut data = builder.build(name);
        let candidates = dir.join("candidates.tsv");
        if candidates.exists() {
            data.restrict_to(&fs_err::read_to_string(&candidates)?);
        }
        let social = dir.join("social.tsv");
        if social.exists() {
            data.social = read_social(&social)?;
        }
        Ok(data)
    }

    /// Rank only the items listed in `text` (one id per line, in its first column; blank
    /// lines skipped); a listed item no pair names joins the items (it is ranked, with no
    /// training interaction).
    fn restrict_to(&mut self, text: &str) {
        let mut index: HashMap<String, u32> =
            self.item_ids.iter().enumerate().map(|(i, id)| (id.clone(), i as u32)).collect();
        let mut candidates = Vec::new();
        for line in text.lines() {
            let Some(id) = line.trim_end_matches('\r').split('\t').next().filter(|id| !id.trim().is_empty()) else {
                continue;
            };
            let next = self.item_ids.len() as u32;
            let i = *index.entry(id.to_string()).or_insert_with(|| {
                self.item_ids.push(id.to_string());
                next
            });
            candidates.push(i);
        }
        candidates.sort_unstable();
        candidates.dedup();
        self.candidates = Some(candidates);
    }

    /// All pairs with a positive weight as a user × item matrix (every user a row, every
    /// item a column).
    pub fn interactions(&self) -> Interactions {
        let mut rows = vec![Vec::new(); self.n_users()];
        for pair in self.pairs.iter().filter(|p| p.weight > 0.0) {
            rows[pair.user as usize].push((pair.item, pair.weight));
        }
        csr(self.user_ids.clone(), self.item_ids.clone(), &rows)
    }

    /// The range of `pairs` that belongs to each user (`pairs` is sorted by user).
    pub(crate) fn user_ranges(&self) -> Vec<std::ops::Range<usize>> {
        let mut starts = vec![0usize; self.n_users() + 1];
        for pair in &self.pairs {
            starts[pair.user as usize + 1] += 1;
        }
        for u in 0..self.n_users() {
            starts[u + 1] += starts[u];
        }
        starts.windows(2).map(|w| w[0]..w[1]).collect()
    }
}

/// A split directory's social edges: `user<TAB>other` per line (blank lines skipped).
fn read_social(path: &Path) -> Result<SocialEdges> {
    let text = fs_err::read_to_string(path)?;
    let mut edges = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let mut columns = line.split('\t');
        let (Some(user), Some(other)) = (columns.next(), columns.next()) else {
            return Err(Error::Parse {
                path: path.to_path_buf(),
                line: index as u64 + 1,
                message: format!("expected `user<TAB>other`, found {line:?}"),
            });
        };
        edges.push((user.to_string(), other.to_string(), 1.0));
    }
    Ok(SocialEdges::new(edges))
}

/// Builds an [`Interactions`] matrix from per-user rows of (item, weight) pairs, each row
/// sorted by item.
pub(crate) fn csr(user_ids: Vec<String>, item_ids: Vec<String>, rows: &[Vec<(u32, f32)>]) -> Interactions {
    let mut indptr = Vec::with_capacity(rows.len() + 1);
    indptr.push(0);
    let nnz = rows.iter().map(Vec::len).sum();
    let mut indices = Vec::with_capacity(nnz);
    let mut values = Vec::with_capacity(nnz);
    for row in rows {
        debug_assert!(row.windows(2).all(|w| w[0].0 < w[1].0), "rows must be sorted by item");
        for &(item, weight) in row {
            indices.push(item);
            values.push(weight);
        }
        indptr.push(indices.len());
    }
    Interactions { user_ids, item_ids, indptr, indices, values, social: Default::default() }
}

#[derive(Debug)]
struct RawPair {
    user: u32,
    item: u32,
    first_timestamp: i64,
    last_timestamp: i64,
    last_arrival: u64,
    weight: f32,
    event_types: EventTypeSet,
    listed: Listed,
}

/// Accumulates events (user, item, timestamp, weight) in arrival order into distinct pairs.
#[derive(Debug, Default)]
pub struct EvalDataBuilder {
    users: HashMap<String, u32>,
    items: HashMap<String, u32>,
    user_ids: Vec<String>,
    item_ids: Vec<String>,
    /// Pairs in order of their first event.
    pairs: Vec<RawPair>,
    pair_index: HashMap<(u32, u32), usize>,
    arrivals: u64,
    marked: bool,
}

impl EvalDataBuilder {
    /// Add one event; events must come in arrival order.
    pub fn add(&mut self, user: &str, item: &str, timestamp: i64, weight: f32) {
        self.add_event(user, item, timestamp, weight, None, None);
    }

    /// Add one event of a known type; events must come in arrival order.
    pub fn add_typed(&mut self, user: &str, item: &str, timestamp: i64, weight: f32, event_type: EventType) {
        self.add_event(user, item, timestamp, weight, Some(event_type), None);
    }

    fn add_listed(
        &mut self,
        user: &str,
        item: &str,
        timestamp: i64,
        weight: f32,
        event_type: Option<EventType>,
        is_test: bool,
    ) {
        self.marked = true;
        self.add_event(user, item, timestamp, weight, event_type, Some(is_test));
    }

    fn add_event(
        &mut self,
        user: &str,
        item: &str,
        timestamp: i64,
        weight: f32,
        event_type: Option<EventType>,
        is_test: Option<bool>,
    ) {
        let user = intern(&mut self.users, &mut self.user_ids, user);
        let item = intern(&mut self.items, &mut self.item_ids, item);
        let arrival = self.arrivals;
        self.arrivals += 1;
        let slot = *self.pair_index.entry((user, item)).or_insert_with(|| {
            self.pairs.push(RawPair {
                user,
                item,
                first_timestamp: timestamp,
                last_timestamp: timestamp,
                last_arrival: arrival,
                weight: 0.0,
                event_types: EventTypeSet::default(),
                listed: Listed::default(),
            });
            self.pairs.len() - 1
        });
        let pair = &mut self.pairs[slot];
        pair.weight += weight;
        if let Some(event_type) = event_type {
            pair.event_types.insert(event_type);
        }
        pair.first_timestamp = pair.first_timestamp.min(timestamp);
        if timestamp >= pair.last_timestamp {
            pair.last_timestamp = timestamp;
            pair.last_arrival = arrival;
        }
        match is_test {
            Some(true) => pair.listed.test = true,
            Some(false) => pair.listed.train = true,
            None => {}
        }
    }

    /// Keep positive pairs (and pairs listed in a test file), number users and items by
    /// first appearance among them, sort.
    pub fn build(self, name: impl Into<String>) -> EvalData {
        let mut user_map = vec![u32::MAX; self.user_ids.len()];
        let mut item_map = vec![u32::MAX; self.item_ids.len()];
        let mut user_ids = Vec::new();
        let mut item_ids = Vec::new();
        let mut kept: Vec<(EvalPair, Listed)> = Vec::with_capacity(self.pairs.len());
        for raw in self.pairs.iter().filter(|p| p.weight > 0.0 || p.listed.test) {
            let user = renumber(&mut user_map, &mut user_ids, &self.user_ids, raw.user);
            let item = renumber(&mut item_map, &mut item_ids, &self.item_ids, raw.item);
            let pair = EvalPair {
                user,
                item,
                first_timestamp: raw.first_timestamp,
                last_timestamp: raw.last_timestamp,
                last_arrival: raw.last_arrival,
                weight: raw.weight,
                event_types: raw.event_types,
            };
            // A training line whose weights sum to 0 or less is no training pair.
            let listed = Listed { train: raw.listed.train && raw.weight > 0.0, test: raw.listed.test };
            kept.push((pair, listed));
        }
        kept.sort_unstable_by_key(|(p, _)| (p.user, p.item));
        let listed = self.marked.then(|| kept.iter().map(|(_, listed)| *listed).collect());
        let pairs = kept.into_iter().map(|(p, _)| p).collect();
        EvalData {
            name: name.into(),
            user_ids,
            item_ids,
            pairs,
            listed,
            candidates: None,
            social: SocialEdges::default(),
        }
    }
}

fn intern(map: &mut HashMap<String, u32>, ids: &mut Vec<String>, id: &str) -> u32 {
    if let Some(index) = map.get(id) {
        return *index;
    }
    let index = ids.len() as u32;
    map.insert(id.to_string(), index);
    ids.push(id.to_string());
    index
}

fn renumber(map: &mut [u32], new_ids: &mut Vec<String>, old_ids: &[String], old: u32) -> u32 {
    let slot = &mut map[old as usize];
    if *slot == u32::MAX {
        *slot = new_ids.len() as u32;
        new_ids.push(old_ids[old as usize].clone());
    }
    *slot
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_distinct_positive_pairs() {
        let mut b = EvalDataBuilder::default();
        b.add("u1", "x", 5, -1.0); // x only ever disliked: dropped with its id
        b.add("u1", "a", 10, 1.0);
        b.add("u2", "b", 3, 2.0);
        b.add("u1", "a", 7, 1.0); // earlier timestamp arriving later
        b.add("u1", "a", 10, 1.0); // tie on the last timestamp: later arrival wins
        let data = b.build("t");
        assert_eq!(data.user_ids, ["u1", "u2"]);
        assert_eq!(data.item_ids, ["a", "b"]);
        assert_eq!(data.pairs.len(), 2);
        let a = data.pairs[0];
        assert_eq!((a.user, a.item, a.weight), (0, 0, 3.0));
        assert_eq!((a.first_timestamp, a.last_timestamp, a.last_arrival), (7, 10, 4));
        assert_eq!(data.listed, None);
        assert!(data.pairs.iter().all(|p| p.event_types.is_empty()));
        let m = data.interactions();
        assert_eq!((m.n_users(), m.n_items(), m.nnz()), (2, 2, 2));
        assert_eq!(m.history(1), vec![(1, 2.0)]);
        assert_eq!(data.user_ranges(), vec![0..1, 1..2]);
    }

    #[test]
    fn store_events_are_weighted_and_items_without_positive_weight_vanish() {
        use crate::ids::{EventId, ItemId, UserId};
        use crate::model::{Event, EventType};
        use crate::store::{EmbeddedStore, StoreConfig};

        let event = |id: &str, kind: EventType, user: &str, item: &str, ts: i64| {
            Event::new(
                EventId::parse(id, "id").unwrap(),
                kind,
                UserId::parse(user, "user").unwrap(),
                Some(ItemId::parse(item, "item").unwrap()),
                ts,
            )
        };
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        store
            .append_events(vec![
                event("e1", EventType::View, "u1", "a", 1_000),
                event("e2", EventType::Purchase, "u1", "a", 3_000),
                event("e3", EventType::Impression, "u1", "b", 4_000), // weight 0: skipped
                event("e4", EventType::View, "u2", "c", 2_000),
                event("e5", EventType::Dislike, "u2", "c", 5_000), // 1 - 10 < 0: dropped
                event("e6", EventType::Click, "u2", "a", 6_000),
            ])
            .unwrap();
        let data = EvalData::from_store(&store, &EventWeights::default(), "shop").unwrap();
        assert_eq!(
            (data.name.as_str(), data.user_ids.clone(), data.item_ids.clone()),
            ("shop", vec!["u1".to_string(), "u2".to_string()], vec!["a".to_string()])
        );
        let summary: Vec<_> =
            data.pairs.iter().map(|p| (p.user, p.item, p.weight, p.first_timestamp, p.last_timestamp)).collect();
        assert_eq!(summary, [(0, 0, 11.0, 1_000, 3_000), (1, 0, 2.0, 6_000, 6_000)]);
        let types = [EventType::View, EventType::Purchase].into_iter().collect();
        assert_eq!(data.pairs[0].event_types, types);
        assert!(data.pairs[1].event_types.contains(EventType::Click));
    }

    #[test]
    fn split_dir_marks_test_pairs_and_keeps_test_only_items() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train.tsv"), "u1\ta\nu1\tb\r\n\nu2\ta\tview\textra\n").unwrap();
        std::fs::write(dir.path().join("test.tsv"), "u1\tc\nu2\tb\nu1\ta\n").unwrap();
        let data = EvalData::from_split_dir(dir.path(), &EventWeights::default()).unwrap();
        assert_eq!(data.item_ids, ["a", "b", "c"]);
        let marked: Vec<_> = data
            .pairs
            .iter()
            .zip(data.listed.as_ref().unwrap())
            .map(|(p, l)| {
                (data.user_ids[p.user as usize].as_str(), data.item_ids[p.item as usize].as_str(), l.train, l.test)
            })
            .collect();
        assert_eq!(
            marked,
            [
                ("u1", "a", true, true),
                ("u1", "b", true, false),
                ("u1", "c", false, true),
                ("u2", "a", true, false),
                ("u2", "b", false, true)
            ]
        );
        // Untyped training lines weigh 1 (the test line adds nothing); test-only pairs 0.
        assert_eq!(data.pairs.iter().map(|p| p.weight).collect::<Vec<_>>(), [1.0, 1.0, 0.0, 1.0, 0.0]);
        assert_eq!(data.interactions().nnz(), 3);
    }

    #[test]
    fn split_dir_reports_bad_lines_with_position() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train.tsv"), "u1\ta\nu1 b\n").unwrap();
        std::fs::write(dir.path().join("test.tsv"), "").unwrap();
        let weights = EventWeights::default();
        let err = EvalData::from_split_dir(dir.path(), &weights).unwrap_err();
        let Error::Parse { line, message, .. } = err else { panic!("expected a parse error, got {err}") };
        assert_eq!(line, 2);
        assert!(message.contains("user<TAB>item"), "{message}");
        assert!(EvalData::from_split_dir(&dir.path().join("missing"), &weights).is_err());

        std::fs::write(dir.path().join("train.tsv"), "u1\ta\tpurchase\nu1\tb\tbasket\n").unwrap();
        let err = EvalData::from_split_dir(dir.path(), &weights).unwrap_err();
        assert!(err.to_string().contains("train.tsv:2:"), "{err}");
        let Error::Parse { line, message, .. } = err else { panic!("expected a parse error, got {err}") };
        assert_eq!(line, 2);
        assert!(message.contains("\"basket\"") && message.contains("add_to_cart"), "{message}");
    }

    #[test]
    fn split_dir_event_types_weigh_as_configured_and_sum_per_pair() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("train.tsv"),
            "u1\ta\tpurchase\nu1\ta\tadd_to_cart\nu1\tb\tadd_to_cart\nu1\tc\nu1\td\timpression\nu2\tb\trating\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("test.tsv"), "u1\tb\tpurchase-ignored\n").unwrap();
        let weights = EventWeights { add_to_cart: 2.5, rating_threshold: 3.0, ..EventWeights::default() };
        let data = EvalData::from_split_dir(dir.path(), &weights).unwrap();
        // d (an impression, weight 0) is skipped and gets no index.
        assert_eq!(data.item_ids, ["a", "b", "c"]);
        let summary: Vec<_> = data.pairs.iter().map(|p| (p.user, p.item, p.weight)).collect();
        assert_eq!(summary, [(0, 0, 12.5), (0, 1, 2.5), (0, 2, 1.0), (1, 1, 5.0)]);
        let cart = EventTypeSet::from_iter([EventType::AddToCart]);
        let types: Vec<_> = data.pairs.iter().map(|p| p.event_types).collect();
        assert_eq!(types[0], [EventType::Purchase, EventType::AddToCart].into_iter().collect());
        assert_eq!((types[1], types[2]), (cart, EventTypeSet::default()));
        assert_eq!(data.listed.as_ref().unwrap()[1], Listed { train: true, test: true });
    }
}
