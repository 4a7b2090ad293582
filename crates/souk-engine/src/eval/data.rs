//! The data an evaluation runs on: distinct (user, item) pairs with string ids, time and
//! weight.
//!
//! The unit of every protocol is the distinct (user, item) pair, as in the usual top-N
//! protocols (a user who bought an item twice has one positive, not two). Repeated events
//! of a pair are summed into one weight; only pairs with a positive sum are kept (a view
//! followed by a dislike is no positive). Each pair keeps the time of its first and last
//! event and the arrival number of its last event, which the temporal protocols use.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::recommend::{EventWeights, Interactions};
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
    /// Sum of the weights of the pair's events (> 0).
    pub weight: f32,
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
    /// For data read by [`EvalData::from_split_dir`]: whether each pair (same order as
    /// `pairs`) is a test pair of that fixed split. `None` for every other source.
    pub fixed_test: Option<Vec<bool>>,
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
                    builder.add(user, item, row.timestamp, weight);
                }
            }
        })?;
        Ok(builder.build(name))
    }

    /// The split another library used: `dir/train.tsv` and `dir/test.tsv`, one
    /// `user<TAB>item` pair per line (further columns are ignored, blank lines skipped, no
    /// header), with the data set's own ids. Every pair weighs 1; items and users that
    /// appear only in the test file still get an index. A pair listed in both files is a
    /// training pair. Use it with [`crate::eval::Protocol::SplitDir`].
    pub fn from_split_dir(dir: &Path) -> Result<Self> {
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
                let mut columns = line.split('\t');
                let (Some(user), Some(item)) = (columns.next(), columns.next()) else {
                    return Err(Error::Parse {
                        path: path.clone(),
                        line: index as u64 + 1,
                        message: format!("expected `user<TAB>item`, found {line:?}"),
                    });
                };
                line_number += 1;
                builder.add_marked(user, item, line_number, 1.0, is_test);
            }
        }
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(builder.build(name))
    }

    /// All pairs as a user × item matrix (every user a row, every item a column).
    pub fn interactions(&self) -> Interactions {
        let mut rows = vec![Vec::new(); self.n_users()];
        for pair in &self.pairs {
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
    Interactions { user_ids, item_ids, indptr, indices, values }
}

#[derive(Debug)]
struct RawPair {
    user: u32,
    item: u32,
    first_timestamp: i64,
    last_timestamp: i64,
    last_arrival: u64,
    weight: f32,
    in_train_file: bool,
    in_test_file: bool,
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
        self.add_event(user, item, timestamp, weight, None);
    }

    fn add_marked(&mut self, user: &str, item: &str, timestamp: i64, weight: f32, is_test: bool) {
        self.marked = true;
        self.add_event(user, item, timestamp, weight, Some(is_test));
    }

    fn add_event(&mut self, user: &str, item: &str, timestamp: i64, weight: f32, is_test: Option<bool>) {
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
                in_train_file: false,
                in_test_file: false,
            });
            self.pairs.len() - 1
        });
        let pair = &mut self.pairs[slot];
        pair.weight += weight;
        pair.first_timestamp = pair.first_timestamp.min(timestamp);
        if timestamp >= pair.last_timestamp {
            pair.last_timestamp = timestamp;
            pair.last_arrival = arrival;
        }
        match is_test {
            Some(true) => pair.in_test_file = true,
            Some(false) => pair.in_train_file = true,
            None => {}
        }
    }

    /// Keep positive pairs, number users and items by first appearance among them, sort.
    pub fn build(self, name: impl Into<String>) -> EvalData {
        let mut user_map = vec![u32::MAX; self.user_ids.len()];
        let mut item_map = vec![u32::MAX; self.item_ids.len()];
        let mut user_ids = Vec::new();
        let mut item_ids = Vec::new();
        let mut kept: Vec<(EvalPair, bool)> = Vec::with_capacity(self.pairs.len());
        for raw in self.pairs.iter().filter(|p| p.weight > 0.0) {
            let user = renumber(&mut user_map, &mut user_ids, &self.user_ids, raw.user);
            let item = renumber(&mut item_map, &mut item_ids, &self.item_ids, raw.item);
            let pair = EvalPair {
                user,
                item,
                first_timestamp: raw.first_timestamp,
                last_timestamp: raw.last_timestamp,
                last_arrival: raw.last_arrival,
                weight: raw.weight,
            };
            kept.push((pair, raw.in_test_file && !raw.in_train_file));
        }
        kept.sort_unstable_by_key(|(p, _)| (p.user, p.item));
        let fixed_test = self.marked.then(|| kept.iter().map(|(_, test)| *test).collect());
        EvalData {
            name: name.into(),
            user_ids,
            item_ids,
            pairs: kept.into_iter().map(|(p, _)| p).collect(),
            fixed_test,
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
        assert_eq!(data.fixed_test, None);
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
    }

    #[test]
    fn split_dir_marks_test_pairs_and_keeps_test_only_items() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train.tsv"), "u1\ta\nu1\tb\r\n\nu2\ta\textra\n").unwrap();
        std::fs::write(dir.path().join("test.tsv"), "u1\tc\nu2\tb\nu1\ta\n").unwrap();
        let data = EvalData::from_split_dir(dir.path()).unwrap();
        assert_eq!(data.item_ids, ["a", "b", "c"]);
        let marked: Vec<_> = data
            .pairs
            .iter()
            .zip(data.fixed_test.as_ref().unwrap())
            .map(|(p, t)| (data.user_ids[p.user as usize].as_str(), data.item_ids[p.item as usize].as_str(), *t))
            .collect();
        // (u1, a) is in both files: a training pair.
        assert_eq!(
            marked,
            [("u1", "a", false), ("u1", "b", false), ("u1", "c", true), ("u2", "a", false), ("u2", "b", true)]
        );
    }

    #[test]
    fn split_dir_reports_bad_lines_with_position() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train.tsv"), "u1\ta\nu1 b\n").unwrap();
        std::fs::write(dir.path().join("test.tsv"), "").unwrap();
        let err = EvalData::from_split_dir(dir.path()).unwrap_err();
        let Error::Parse { line, message, .. } = err else { panic!("expected a parse error, got {err}") };
        assert_eq!(line, 2);
        assert!(message.contains("user<TAB>item"), "{message}");
        assert!(EvalData::from_split_dir(&dir.path().join("missing")).is_err());
    }
}
