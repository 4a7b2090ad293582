//! Evaluation protocols: how [`EvalData`] is cut into a training matrix and test items.
//!
//! Every protocol works on distinct (user, item) pairs and produces a [`Split`] whose
//! training matrix has every item of the data set as a column, so a test item that never
//! occurs in training is still ranked (and counts as a miss unless the model finds it).
//! Randomness comes from one `ChaCha8Rng` seeded with the protocol's seed, consumed in user
//! (or item) index order, so a split is a pure function of (data, protocol, ratio, seed).

use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::data::{csr, EvalData, Listed};
use crate::error::{Result, ValidationError};
use crate::model::EventType;
use crate::recommend::Interactions;

/// Share of a held-out user's items that is test under `strong-generalization` (the rest is
/// folded in), as in Liang et al. 2018 ("Variational Autoencoders for Collaborative
/// Filtering", `test_prop = 0.2`).
pub const STRONG_GENERALIZATION_TEST_SHARE: f64 = 0.2;

/// A named evaluation protocol (`souk eval --protocol NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Per user, a seeded random `1 - ratio` share of the user's distinct items is test:
    /// `n_test = max(1, round(n * (1 - ratio)))` (round half to even, as Python's `round`)
    /// for users with at least 2 items; users with fewer keep everything in training.
    #[default]
    RandomSplit,
    /// One global time cut `t` at the `ratio` quantile of the pairs' last timestamps (the
    /// `ceil(ratio * n)`-th smallest). A pair whose first event is at or before `t` is
    /// training (the user already had the item at the cut, so it is history, not a
    /// prediction target); a pair whose events all come after `t` is test, for users who
    /// have training pairs. Pairs are the unit, so a training pair's weight sums all its
    /// events, including any after the cut.
    Temporal,
    /// Per user with at least 2 items, the item of the latest pair (last event time, ties
    /// by arrival) is test.
    LeaveLastOut,
    /// Liang et al. 2018: a seeded `1 - ratio` share of the users with at least 2 items is
    /// held out; the model trains on the other users only. Each held-out user's items are
    /// split at random into fold-in (80 %) and test (20 %, at least 1); the model scores
    /// them with `user = None` and the fold-in items as history, so it must fold them in.
    StrongGeneralization,
    /// A seeded `1 - ratio` share of the items (at least 1) is held out entirely; test =
    /// every pair with a held-out item, for users with at least one training pair. Models
    /// still score every item, but the ranking is over the held-out items only (the
    /// candidate set of the [`Split`]), so metrics measure how well a model ranks items it
    /// never saw in training.
    ColdItem,
    /// Exactly the split read by [`EvalData::from_split_dir`], to compare with another
    /// library on an identical split. Without a target event type, every pair of the
    /// training file is training and excluded from the user's ranking, and a pair listed
    /// in both files is training only. With a target (say `purchase`, as in the
    /// multi-behaviour protocols of NMTR, EHCF and GHCF), only training pairs with an event
    /// of that type are excluded from the ranking, and a test pair stays a test pair unless
    /// the training file has it with the target type: an item the user carted and then
    /// bought is trained on as a cart and must still be ranked as the purchase.
    SplitDir,
}

impl Protocol {
    pub const ALL: [Protocol; 6] = [
        Protocol::RandomSplit,
        Protocol::Temporal,
        Protocol::LeaveLastOut,
        Protocol::StrongGeneralization,
        Protocol::ColdItem,
        Protocol::SplitDir,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::RandomSplit => "random-split",
            Protocol::Temporal => "temporal",
            Protocol::LeaveLastOut => "leave-last-out",
            Protocol::StrongGeneralization => "strong-generalization",
            Protocol::ColdItem => "cold-item",
            Protocol::SplitDir => "split-dir",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = ValidationError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Protocol::ALL.into_iter().find(|p| p.as_str() == name).ok_or_else(|| {
            let names: Vec<_> = Protocol::ALL.iter().map(|p| p.as_str()).collect();
            ValidationError::new(
                "invalid_protocol",
                "protocol",
                format!("expected one of {}, found {name:?}", names.join(", ")),
            )
        })
    }
}

/// Sizes of a split, reported as the `dataset` object of an evaluation report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitCounts {
    /// Users and items of the data set (every item is a column of the training matrix).
    pub users: usize,
    pub items: usize,
    /// Training pairs (non-zeros of the training matrix).
    pub train: usize,
    /// Test pairs of the evaluated users.
    pub test: usize,
    /// Rows of the training matrix.
    pub train_users: usize,
    /// Users with at least one test item (the users metrics average over).
    pub eval_users: usize,
    /// Items ranked for each user (all items, or the held-out items under `cold-item`).
    pub candidate_items: usize,
}

/// A held-out user of `strong-generalization`: unknown to the model, scored from history.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldInUser {
    pub id: String,
    /// Fold-in items (item index, weight), sorted by item.
    pub history: Vec<(u32, f32)>,
    /// Test items, sorted.
    pub test: Vec<u32>,
}

/// Training data and test items of one protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub protocol: Protocol,
    /// What the model trains on; columns are all items of the data set.
    pub train: Interactions,
    /// Test items (training item indices, sorted) of each training row; empty for users
    /// who are not evaluated. A test item is never one of the row's excluded items.
    pub test: Vec<Vec<u32>>,
    /// Items left out of each training row's ranking (sorted), where they are not the
    /// row's training items: `None` = every training item is excluded. Set by `split-dir`
    /// with a target event type, where a row's carted items stay candidates (and may be
    /// test items).
    pub exclude: Option<Vec<Vec<u32>>>,
    /// Users unknown to the model (only `strong-generalization`).
    pub fold_in: Vec<FoldInUser>,
    /// Items to rank, sorted (`cold-item`, or a split directory with `candidates.tsv`);
    /// `None` = all items.
    pub candidates: Option<Vec<u32>>,
    pub counts: SplitCounts,
}

impl Split {
    fn new(
        protocol: Protocol,
        train: Interactions,
        test: Vec<Vec<u32>>,
        fold_in: Vec<FoldInUser>,
        candidates: Option<Vec<u32>>,
        data_users: usize,
    ) -> Self {
        let eval_users =
            test.iter().filter(|t| !t.is_empty()).count() + fold_in.iter().filter(|f| !f.test.is_empty()).count();
        let counts = SplitCounts {
            users: data_users,
            items: train.n_items(),
            train: train.nnz(),
            test: test.iter().map(Vec::len).sum::<usize>() + fold_in.iter().map(|f| f.test.len()).sum::<usize>(),
            train_users: train.n_users(),
            eval_users,
            candidate_items: candidates.as_ref().map_or(train.n_items(), Vec::len),
        };
        Split { protocol, train, test, exclude: None, fold_in, candidates, counts }
    }

    /// The items left out of training row `u`'s ranking, sorted.
    pub fn excluded(&self, u: usize) -> &[u32] {
        match &self.exclude {
            Some(exclude) => &exclude[u],
            None => self.train.row(u).0,
        }
    }
}

/// Cut `data` into a [`Split`] under `protocol`. `ratio` (in (0, 1)) is the training share
/// of pairs, time, users or items, depending on the protocol; `seed` seeds the random ones.
pub fn split(data: &EvalData, protocol: Protocol, ratio: f64, seed: u64) -> Result<Split> {
    split_with_target(data, protocol, ratio, seed, None)
}

/// [`split`] with a target event type: only training pairs of that type leave the ranking
/// (see [`Protocol::SplitDir`], the one protocol that takes a target).
pub fn split_with_target(
    data: &EvalData,
    protocol: Protocol,
    ratio: f64,
    seed: u64,
    target: Option<EventType>,
) -> Result<Split> {
    check_ratio(ratio)?;
    if let (Some(target), false) = (target, protocol == Protocol::SplitDir) {
        let message =
            format!("expected a target event type only with the split-dir protocol, found {target} with {protocol}");
        return Err(ValidationError::new("invalid_target", "target", message).into());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut split = match protocol {
        Protocol::RandomSplit => {
            let (train, test) = per_user_random(&data.interactions(), ratio, &mut rng);
            Split::new(protocol, train, test, Vec::new(), None, data.n_users())
        }
        Protocol::Temporal => temporal(data, ratio),
        Protocol::LeaveLastOut => leave_last_out(data),
        Protocol::StrongGeneralization => strong_generalization(data, ratio, &mut rng),
        Protocol::ColdItem => cold_item(data, ratio, &mut rng)?,
        Protocol::SplitDir => split_dir(data, target)?,
    };
    // Training keeps every social edge (edges are no interactions a test could hold out).
    split.train.social = data.social.clone();
    Ok(split)
}

/// A validation split carved out of training data only, for tuning hyper-parameters: the
/// `random-split` rule applied to `train`'s rows. The test set never takes part.
pub fn validation_split(train: &Interactions, ratio: f64, seed: u64) -> Result<Split> {
    check_ratio(ratio)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut fit, test) = per_user_random(train, ratio, &mut rng);
    fit.social = train.social.clone();
    Ok(Split::new(Protocol::RandomSplit, fit, test, Vec::new(), None, train.n_users()))
}

fn check_ratio(ratio: f64) -> Result<()> {
    if ratio.is_finite() && ratio > 0.0 && ratio < 1.0 {
        Ok(())
    } else {
        let message = format!("expected a number strictly between 0 and 1, found {ratio}");
        Err(ValidationError::new("invalid_ratio", "ratio", message).into())
    }
}

/// Test items of a user with `n` items: `max(1, round(n * (1 - ratio)))`, rounding half to
/// even exactly as Python's `round` does on the same f64.
pub fn test_count(n: usize, ratio: f64) -> usize {
    ((n as f64 * (1.0 - ratio)).round_ties_even() as usize).max(1)
}

/// The per-user random rule on a matrix: returns (training rows, test items per row).
fn per_user_random(matrix: &Interactions, ratio: f64, rng: &mut ChaCha8Rng) -> (Interactions, Vec<Vec<u32>>) {
    let mut rows = Vec::with_capacity(matrix.n_users());
    let mut tests = Vec::with_capacity(matrix.n_users());
    let mut order = Vec::new();
    for u in 0..matrix.n_users() {
        let (items, weights) = matrix.row(u);
        if items.len() < 2 {
            rows.push(items.iter().copied().zip(weights.iter().copied()).collect());
            tests.push(Vec::new());
            continue;
        }
        order.clear();
        order.extend(0..items.len());
        order.shuffle(rng);
        let n_test = test_count(items.len(), ratio);
        let mut test: Vec<u32> = order[..n_test].iter().map(|&k| items[k]).collect();
        test.sort_unstable();
        let mut row: Vec<(u32, f32)> = order[n_test..].iter().map(|&k| (items[k], weights[k])).collect();
        row.sort_unstable_by_key(|(item, _)| *item);
        rows.push(row);
        tests.push(test);
    }
    (csr(matrix.user_ids.clone(), matrix.item_ids.clone(), &rows), tests)
}

fn temporal(data: &EvalData, ratio: f64) -> Split {
    let mut times: Vec<i64> = data.pairs.iter().map(|p| p.last_timestamp).collect();
    times.sort_unstable();
    let cut = if times.is_empty() {
        i64::MAX
    } else {
        let rank = ((ratio * times.len() as f64).ceil() as usize).clamp(1, times.len());
        times[rank - 1]
    };
    let mut rows = vec![Vec::new(); data.n_users()];
    let mut tests = vec![Vec::new(); data.n_users()];
    for pair in &data.pairs {
        if pair.first_timestamp <= cut {
            rows[pair.user as usize].push((pair.item, pair.weight));
        } else {
            tests[pair.user as usize].push(pair.item);
        }
    }
    for (row, test) in rows.iter().zip(&mut tests) {
        if row.is_empty() {
            test.clear();
        }
    }
    let train = csr(data.user_ids.clone(), data.item_ids.clone(), &rows);
    Split::new(Protocol::Temporal, train, tests, Vec::new(), None, data.n_users())
}

fn leave_last_out(data: &EvalData) -> Split {
    let mut rows = vec![Vec::new(); data.n_users()];
    let mut tests = vec![Vec::new(); data.n_users()];
    for (u, range) in data.user_ranges().into_iter().enumerate() {
        let pairs = &data.pairs[range];
        let last = if pairs.len() >= 2 {
            pairs.iter().max_by_key(|p| (p.last_timestamp, p.last_arrival)).map(|p| p.item)
        } else {
            None
        };
        for pair in pairs {
            if Some(pair.item) == last {
                tests[u].push(pair.item);
            } else {
                rows[u].push((pair.item, pair.weight));
            }
        }
    }
    let train = csr(data.user_ids.clone(), data.item_ids.clone(), &rows);
    Split::new(Protocol::LeaveLastOut, train, tests, Vec::new(), None, data.n_users())
}

fn strong_generalization(data: &EvalData, ratio: f64, rng: &mut ChaCha8Rng) -> Split {
    let ranges = data.user_ranges();
    let mut eligible: Vec<usize> = (0..data.n_users()).filter(|&u| ranges[u].len() >= 2).collect();
    eligible.shuffle(rng);
    let n_held_out = if eligible.is_empty() { 0 } else { test_count(data.n_users(), ratio).min(eligible.len()) };
    let mut held_out = vec![false; data.n_users()];
    for &u in &eligible[..n_held_out] {
        held_out[u] = true;
    }
    let mut train_ids = Vec::new();
    let mut rows = Vec::new();
    let mut fold_in = Vec::new();
    let mut order = Vec::new();
    for (u, range) in ranges.into_iter().enumerate() {
        let pairs = &data.pairs[range];
        if !held_out[u] {
            train_ids.push(data.user_ids[u].clone());
            rows.push(pairs.iter().map(|p| (p.item, p.weight)).collect());
            continue;
        }
        order.clear();
        order.extend(0..pairs.len());
        order.shuffle(rng);
        let n_test = test_count(pairs.len(), 1.0 - STRONG_GENERALIZATION_TEST_SHARE);
        let mut test: Vec<u32> = order[..n_test].iter().map(|&k| pairs[k].item).collect();
        test.sort_unstable();
        let mut history: Vec<(u32, f32)> = order[n_test..].iter().map(|&k| (pairs[k].item, pairs[k].weight)).collect();
        history.sort_unstable_by_key(|(item, _)| *item);
        fold_in.push(FoldInUser { id: data.user_ids[u].clone(), history, test });
    }
    let tests = vec![Vec::new(); rows.len()];
    let train = csr(train_ids, data.item_ids.clone(), &rows);
    Split::new(Protocol::StrongGeneralization, train, tests, fold_in, None, data.n_users())
}

fn cold_item(data: &EvalData, ratio: f64, rng: &mut ChaCha8Rng) -> Result<Split> {
    if data.n_items() < 2 {
        let message = format!("expected at least 2 items to hold some out, found {}", data.n_items());
        return Err(ValidationError::new("too_few_items", "protocol", message).into());
    }
    let mut items: Vec<u32> = (0..data.n_items() as u32).collect();
    items.shuffle(rng);
    let n_cold = test_count(data.n_items(), ratio).min(data.n_items() - 1);
    let mut cold = vec![false; data.n_items()];
    for &i in &items[..n_cold] {
        cold[i as usize] = true;
    }
    let mut candidates = items[..n_cold].to_vec();
    candidates.sort_unstable();
    let mut rows = vec![Vec::new(); data.n_users()];
    let mut tests = vec![Vec::new(); data.n_users()];
    for pair in &data.pairs {
        if cold[pair.item as usize] {
            tests[pair.user as usize].push(pair.item);
        } else {
            rows[pair.user as usize].push((pair.item, pair.weight));
        }
    }
    for (row, test) in rows.iter().zip(&mut tests) {
        if row.is_empty() {
            test.clear();
        }
    }
    let train = csr(data.user_ids.clone(), data.item_ids.clone(), &rows);
    Ok(Split::new(Protocol::ColdItem, train, tests, Vec::new(), Some(candidates), data.n_users()))
}

fn split_dir(data: &EvalData, target: Option<EventType>) -> Result<Split> {
    let Some(listed) = &data.listed else {
        let message = "expected data read from a split directory (train.tsv and test.tsv), found other data";
        return Err(ValidationError::new("invalid_protocol", "protocol", message).into());
    };
    let mut rows = vec![Vec::new(); data.n_users()];
    let mut tests = vec![Vec::new(); data.n_users()];
    let mut exclude = target.map(|_| vec![Vec::new(); data.n_users()]);
    for (pair, &Listed { train, test }) in data.pairs.iter().zip(listed) {
        let user = pair.user as usize;
        let is_target = target.is_some_and(|t| pair.event_types.contains(t));
        if train {
            rows[user].push((pair.item, pair.weight));
        }
        match &mut exclude {
            Some(exclude) if train && is_target => exclude[user].push(pair.item),
            Some(_) if test => tests[user].push(pair.item),
            None if test && !train => tests[user].push(pair.item),
            _ => {}
        }
    }
    // With candidates (a cold-item split), only they are ranked and only they can be hits.
    if let Some(candidates) = &data.candidates {
        for test in &mut tests {
            test.retain(|i| candidates.binary_search(i).is_ok());
        }
    }
    let train = csr(data.user_ids.clone(), data.item_ids.clone(), &rows);
    let mut split = Split::new(Protocol::SplitDir, train, tests, Vec::new(), data.candidates.clone(), data.n_users());
    split.exclude = exclude;
    Ok(split)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::data::EvalDataBuilder;

    /// `users` users; user u has items 0..=u+1 at times u*100 + item.
    fn staircase(users: usize) -> EvalData {
        let mut b = EvalDataBuilder::default();
        for u in 0..users {
            for i in 0..u + 2 {
                b.add(&format!("u{u}"), &format!("i{i}"), (u * 100 + i) as i64, 1.0);
            }
        }
        b.build("staircase")
    }

    fn ids(split: &Split, u: usize) -> (Vec<&str>, Vec<&str>) {
        let train = split.train.row(u).0.iter().map(|&i| split.train.item_ids[i as usize].as_str()).collect();
        let test = split.test[u].iter().map(|&i| split.train.item_ids[i as usize].as_str()).collect();
        (train, test)
    }

    /// Invariants every split keeps: disjoint train/test per row, sorted lists, all items.
    fn check_invariants(data: &EvalData, split: &Split) {
        assert_eq!(split.train.n_items(), data.n_items());
        assert_eq!(split.test.len(), split.train.n_users());
        for u in 0..split.train.n_users() {
            let (items, _) = split.train.row(u);
            assert!(items.windows(2).all(|w| w[0] < w[1]));
            assert!(split.test[u].windows(2).all(|w| w[0] < w[1]));
            assert!(split.test[u].iter().all(|t| items.binary_search(t).is_err()));
        }
    }

    #[test]
    fn protocol_names_round_trip() {
        for p in Protocol::ALL {
            assert_eq!(p.to_string().parse::<Protocol>().unwrap(), p);
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
        }
        let err = "random".parse::<Protocol>().unwrap_err();
        assert_eq!(err.code, "invalid_protocol");
        assert!(err.message.contains("random-split"), "{}", err.message);
    }

    #[test]
    fn test_count_rounds_half_to_even_like_python() {
        // Python: max(1, int(round(n * (1 - 0.8)))).
        assert_eq!(test_count(2, 0.8), 1); // 0.4 -> 0 -> 1
        assert_eq!(test_count(5, 0.8), 1); // 1.0000000000000002 -> 1
        assert_eq!(test_count(10, 0.8), 2); // 1.9999999999999996 -> 2
        assert_eq!(test_count(25, 0.9), 2); // 2.4999999999999996 -> 2
        assert_eq!(test_count(5, 0.5), 2); // 2.5 -> 2 (half to even)
        assert_eq!(test_count(7, 0.5), 4); // 3.5 -> 4
    }

    #[test]
    fn random_split_follows_the_per_user_rule_and_is_seeded() {
        let data = staircase(12);
        let split = split(&data, Protocol::RandomSplit, 0.8, 42).unwrap();
        check_invariants(&data, &split);
        for u in 0..12 {
            let n = u + 2;
            assert_eq!(split.test[u].len(), test_count(n, 0.8), "user {u}");
            assert_eq!(split.train.row(u).0.len() + split.test[u].len(), n);
        }
        assert_eq!(split.counts.eval_users, 12);
        assert_eq!(split.counts.train + split.counts.test, data.pairs.len());
        assert_eq!(super::split(&data, Protocol::RandomSplit, 0.8, 42).unwrap(), split);
        assert_ne!(super::split(&data, Protocol::RandomSplit, 0.8, 7).unwrap().test, split.test);
    }

    #[test]
    fn random_split_keeps_single_item_users_in_training() {
        let mut b = EvalDataBuilder::default();
        b.add("solo", "a", 0, 1.0);
        b.add("pair", "a", 0, 1.0);
        b.add("pair", "b", 0, 1.0);
        let data = b.build("t");
        let split = split(&data, Protocol::RandomSplit, 0.8, 1).unwrap();
        assert_eq!(ids(&split, 0), (vec!["a"], vec![]));
        assert_eq!(split.test[1].len(), 1);
        assert_eq!(split.counts.eval_users, 1);
    }

    #[test]
    fn temporal_cuts_at_the_quantile_and_drops_items_seen_before() {
        let mut b = EvalDataBuilder::default();
        b.add("u1", "a", 1, 1.0);
        b.add("u1", "b", 2, 1.0);
        b.add("u2", "a", 3, 1.0);
        b.add("u1", "c", 5, 1.0);
        b.add("u1", "a", 6, 1.0); // a again after the cut: already had it, stays training
        b.add("u3", "c", 7, 1.0); // u3 has nothing before the cut: not evaluated
        let data = b.build("t");
        // Last timestamps 6, 2, 5, 3, 7 -> sorted 2 3 5 6 7; ratio 0.4 -> ceil(2.0) = 2nd = 3.
        let split = split(&data, Protocol::Temporal, 0.4, 0).unwrap();
        check_invariants(&data, &split);
        assert_eq!(ids(&split, 0), (vec!["a", "b"], vec!["c"]));
        assert_eq!(ids(&split, 1), (vec!["a"], vec![]));
        assert_eq!(ids(&split, 2), (vec![], vec![]));
        assert_eq!((split.counts.train, split.counts.test, split.counts.eval_users), (3, 1, 1));
    }

    #[test]
    fn leave_last_out_takes_the_latest_pair_ties_by_arrival() {
        let mut b = EvalDataBuilder::default();
        b.add("u1", "a", 5, 1.0);
        b.add("u1", "b", 9, 1.0);
        b.add("u1", "c", 9, 1.0); // same time as b, arrives later: the last one
        b.add("u1", "a", 1, 1.0); // old re-visit does not move a's last time
        b.add("u2", "a", 1, 1.0);
        let data = b.build("t");
        let split = split(&data, Protocol::LeaveLastOut, 0.5, 0).unwrap();
        check_invariants(&data, &split);
        assert_eq!(ids(&split, 0), (vec!["a", "b"], vec!["c"]));
        assert_eq!(ids(&split, 1), (vec!["a"], vec![]));
    }

    #[test]
    fn strong_generalization_holds_out_whole_users() {
        let data = staircase(20);
        let split = split(&data, Protocol::StrongGeneralization, 0.8, 3).unwrap();
        assert_eq!(split.fold_in.len(), 4); // round(20 * 0.2)
        assert_eq!(split.train.n_users(), 16);
        assert_eq!(split.train.n_items(), data.n_items());
        assert!(split.test.iter().all(Vec::is_empty));
        for user in &split.fold_in {
            assert!(!split.train.user_ids.contains(&user.id));
            let n = user.history.len() + user.test.len();
            assert_eq!(user.test.len(), test_count(n, 0.8));
            assert!(user.test.iter().all(|t| user.history.iter().all(|(h, _)| h != t)));
        }
        assert_eq!(split.counts.eval_users, 4);
        assert_eq!(
            split.counts.train + split.counts.test + split.fold_in.iter().map(|f| f.history.len()).sum::<usize>(),
            data.pairs.len()
        );
    }

    #[test]
    fn cold_item_holds_out_items_and_restricts_candidates() {
        let data = staircase(10); // items i0..i10
        let split = split(&data, Protocol::ColdItem, 0.7, 5).unwrap();
        check_invariants(&data, &split);
        let cold = split.candidates.clone().unwrap();
        assert_eq!(cold.len(), 3); // round(11 * 0.3) = round(3.3)
        for u in 0..split.train.n_users() {
            assert!(split.train.row(u).0.iter().all(|i| cold.binary_search(i).is_err()));
            assert!(split.test[u].iter().all(|i| cold.binary_search(i).is_ok()));
        }
        assert_eq!(split.counts.candidate_items, 3);
        assert!(split.counts.test > 0);
    }

    #[test]
    fn split_dir_needs_a_split_directory() {
        let err = split(&staircase(2), Protocol::SplitDir, 0.8, 0).unwrap_err();
        assert!(err.to_string().contains("split directory"), "{err}");
    }

    #[test]
    fn bad_ratios_are_rejected() {
        for ratio in [0.0, 1.0, -0.5, f64::NAN] {
            assert!(split(&staircase(2), Protocol::RandomSplit, ratio, 0).is_err());
        }
    }

    #[test]
    fn validation_split_only_sees_training_rows() {
        let data = staircase(8);
        let outer = split(&data, Protocol::RandomSplit, 0.8, 42).unwrap();
        let inner = validation_split(&outer.train, 0.8, 43).unwrap();
        for u in 0..outer.train.n_users() {
            let (outer_items, _) = outer.train.row(u);
            let (inner_items, _) = inner.train.row(u);
            assert!(inner_items.iter().chain(&inner.test[u]).all(|i| outer_items.contains(i)));
            assert!(inner.test[u].iter().all(|i| !outer.test[u].contains(i)));
            assert_eq!(inner_items.len() + inner.test[u].len(), outer_items.len());
        }
    }

    #[test]
    fn split_dir_with_a_target_excludes_only_target_pairs() {
        use crate::recommend::EventWeights;
        let dir = tempfile::tempdir().unwrap();
        // u1 bought a, carted b and c, and bought b and d later; c is carted and also in
        // the training file as a purchase, so it is no test item.
        let train = "u1\ta\tpurchase\nu1\tb\tadd_to_cart\nu1\tc\tadd_to_cart\nu1\tc\tpurchase\n";
        std::fs::write(dir.path().join("train.tsv"), train).unwrap();
        std::fs::write(dir.path().join("test.tsv"), "u1\tb\nu1\tc\nu1\td\n").unwrap();
        let data = EvalData::from_split_dir(dir.path(), &EventWeights::default()).unwrap();
        let target = Some(EventType::Purchase);
        let split = split_with_target(&data, Protocol::SplitDir, 0.8, 0, target).unwrap();
        assert_eq!(ids(&split, 0), (vec!["a", "b", "c"], vec!["b", "d"]));
        assert_eq!(split.train.row(0).1, [10.0, 4.0, 14.0]);
        assert_eq!(split.excluded(0), [0, 2]);
        assert_eq!((split.counts.train, split.counts.test, split.counts.eval_users), (3, 2, 1));

        let plain = super::split(&data, Protocol::SplitDir, 0.8, 0).unwrap();
        check_invariants(&data, &plain);
        assert_eq!(ids(&plain, 0), (vec!["a", "b", "c"], vec!["d"]));
        assert_eq!(plain.exclude, None);
        assert_eq!(plain.excluded(0), [0, 1, 2]);

        let err = split_with_target(&staircase(3), Protocol::RandomSplit, 0.8, 0, target).unwrap_err();
        assert!(err.to_string().contains("split-dir"), "{err}");
    }
}
