//! Full-ranking evaluation of a trained model on a [`Split`].
//!
//! For every user with test items, the model scores all items; the candidates are all items
//! (or the split's candidate set) minus the user's training (or fold-in) items, or minus the
//! split's exclusion list where it has one ([`Split::exclude`]). The top
//! `max K` candidates are chosen with a selection (`select_nth_unstable_by`) and only those
//! are sorted; MRR and AUC need one more linear pass over the candidates, AUC with the
//! test items' scores sorted (O(n log R)). Ties in scores are broken by item index (lower
//! first), NaN scores rank last, so rankings are deterministic.
//!
//! Cost per user: one `Recommender::score` call into a per-worker buffer (reused, no
//! per-user allocation in the steady state) plus O(n_items · log R). Users are processed in
//! parallel with rayon in fixed chunks whose sums are added in chunk order, so the numbers
//! do not depend on thread scheduling.

use std::cmp::Ordering;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};

use rayon::prelude::*;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::metrics;
use super::protocol::Split;
use crate::recommend::Recommender;

/// Users per parallel task.
const CHUNK_USERS: usize = 64;

/// Metric values by name (`recall@10`, `ndcg@20`, `mrr`, …) in a fixed, readable order.
/// Serialises as a JSON object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// Users the accuracy metrics average over (those with at least one test item).
    pub users: usize,
    /// Users counted in `auc` (those with at least one non-test candidate as well).
    pub auc_users: usize,
    values: Vec<(String, f64)>,
}

impl Metrics {
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// (name, value) in report order: per K the accuracy metrics, then `mrr` and `auc`,
    /// then per K the list-level metrics.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.values.iter().map(|(n, v)| (n.as_str(), *v))
    }

    fn push(&mut self, name: String, value: f64) {
        self.values.push((name, value));
    }
}

impl Serialize for Metrics {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.values.len()))?;
        for (name, value) in &self.values {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// Per-K accuracy metrics, in the order they are summed and reported.
const PER_K: [&str; 6] = ["recall", "recall_total", "ndcg", "hr", "precision", "map"];

/// Evaluate `model` on `split` with full ranking at each K of `ks` (zeros and duplicates
/// are ignored). See the module documentation of [`crate::eval`] for the metrics.
pub fn evaluate(split: &Split, model: &dyn Recommender, ks: &[usize]) -> Metrics {
    let mut ks_unique: Vec<usize> = Vec::new();
    for &k in ks {
        if k > 0 && !ks_unique.contains(&k) {
            ks_unique.push(k);
        }
    }
    let ks = ks_unique;
    let k_max = ks.iter().copied().max().unwrap_or(0);
    let n_items = split.train.n_items();
    let users = evaluated_users(split);
    let recommended: Vec<AtomicU32> = (0..ks.len() * n_items).map(|_| AtomicU32::new(0)).collect();

    let chunks: Vec<ChunkSums> = users
        .par_chunks(CHUNK_USERS)
        .map_init(
            || Worker::new(n_items),
            |worker, chunk| {
                let mut sums = ChunkSums { values: vec![0.0; PER_K.len() * ks.len() + 1], auc: 0.0, auc_users: 0 };
                for user in chunk {
                    let ranking = worker.rank(split, model, user, k_max);
                    let hits = metrics::hit_list(&worker.top, user.test);
                    let relevant = user.test.len();
                    for (slot, &k) in ks.iter().enumerate() {
                        let values = [
                            metrics::recall(&hits, k, relevant),
                            metrics::recall_total(&hits, k, relevant),
                            metrics::ndcg(&hits, k, relevant),
                            metrics::hit_rate(&hits, k),
                            metrics::precision(&hits, k),
                            metrics::average_precision(&hits, k, relevant),
                        ];
                        for (m, value) in values.into_iter().enumerate() {
                            sums.values[slot * PER_K.len() + m] += value;
                        }
                        for &item in worker.top.iter().take(k) {
                            recommended[slot * n_items + item as usize].fetch_add(1, AtomicOrdering::Relaxed);
                        }
                    }
                    sums.values[PER_K.len() * ks.len()] += ranking.reciprocal_rank;
                    if let Some(auc) = ranking.auc {
                        sums.auc += auc;
                        sums.auc_users += 1;
                    }
                }
                sums
            },
        )
        .collect();

    let mut totals = vec![0.0; PER_K.len() * ks.len() + 1];
    let (mut auc_total, mut auc_users) = (0.0, 0usize);
    for chunk in &chunks {
        for (total, value) in totals.iter_mut().zip(&chunk.values) {
            *total += value;
        }
        auc_total += chunk.auc;
        auc_users += chunk.auc_users;
    }
    let mean = |sum: f64, count: usize| if count == 0 { 0.0 } else { sum / count as f64 };

    let mut out = Metrics { users: users.len(), auc_users, values: Vec::new() };
    for (slot, k) in ks.iter().enumerate() {
        for (m, name) in PER_K.iter().enumerate() {
            out.push(format!("{name}@{k}"), mean(totals[slot * PER_K.len() + m], users.len()));
        }
    }
    out.push("mrr".to_string(), mean(totals[PER_K.len() * ks.len()], users.len()));
    out.push("auc".to_string(), mean(auc_total, auc_users));

    // List-level metrics over the candidate items.
    let all_items: Vec<u32>;
    let candidates = match &split.candidates {
        Some(c) => c.as_slice(),
        None => {
            all_items = (0..n_items as u32).collect();
            &all_items
        }
    };
    let mut item_users = vec![0usize; n_items];
    for &item in &split.train.indices {
        item_users[item as usize] += 1;
    }
    let train_users = split.train.n_users();
    for (slot, k) in ks.iter().enumerate() {
        let counts: Vec<u64> = candidates
            .iter()
            .map(|&i| u64::from(recommended[slot * n_items + i as usize].load(AtomicOrdering::Relaxed)))
            .collect();
        let covered = counts.iter().filter(|c| **c > 0).count();
        let slots: u64 = counts.iter().sum();
        let information: f64 = candidates
            .iter()
            .zip(&counts)
            .map(|(&i, &c)| c as f64 * metrics::self_information(item_users[i as usize], train_users))
            .sum();
        out.push(format!("coverage@{k}"), mean(covered as f64, candidates.len()));
        out.push(format!("gini@{k}"), metrics::gini(&counts));
        out.push(format!("novelty@{k}"), if slots == 0 { 0.0 } else { information / slots as f64 });
    }
    out
}

struct ChunkSums {
    values: Vec<f64>,
    auc: f64,
    auc_users: usize,
}

/// Whom to score: a training row (history = the row) or a fold-in user.
struct EvalUser<'a> {
    row: Option<u32>,
    fold_in_history: &'a [(u32, f32)],
    test: &'a [u32],
}

fn evaluated_users(split: &Split) -> Vec<EvalUser<'_>> {
    let rows = split.test.iter().enumerate().filter(|(_, t)| !t.is_empty());
    let rows = rows.map(|(u, test)| EvalUser { row: Some(u as u32), fold_in_history: &[], test });
    let fold_in = split.fold_in.iter().filter(|f| !f.test.is_empty());
    let fold_in = fold_in.map(|f| EvalUser { row: None, fold_in_history: &f.history, test: &f.test });
    rows.chain(fold_in).collect()
}

/// What one user's full ranking gives beyond the top list.
#[derive(Debug, Clone, Copy, PartialEq)]
struct UserRanking {
    reciprocal_rank: f64,
    auc: Option<f64>,
}

/// NaN ranks last; -0 and +0 are the same score.
fn sanitize(score: f32) -> f32 {
    if score.is_nan() {
        f32::NEG_INFINITY
    } else {
        score + 0.0
    }
}

/// `Less` when `a` ranks before `b`: higher score first, then lower item index.
fn rank_order(a: &(f32, u32), b: &(f32, u32)) -> Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// Per-thread buffers, reused across users.
struct Worker {
    scores: Vec<f32>,
    history: Vec<(u32, f32)>,
    candidates: Vec<(f32, u32)>,
    positives: Vec<f32>,
    fold_in_items: Vec<u32>,
    top: Vec<u32>,
}

impl Worker {
    fn new(n_items: usize) -> Self {
        Worker {
            scores: vec![0.0; n_items],
            history: Vec::new(),
            candidates: Vec::with_capacity(n_items),
            positives: Vec::new(),
            fold_in_items: Vec::new(),
            top: Vec::new(),
        }
    }

    /// Score `user` with `model` and rank the candidates; leaves the top `k_max` in `top`.
    fn rank(&mut self, split: &Split, model: &dyn Recommender, user: &EvalUser<'_>, k_max: usize) -> UserRanking {
        self.history.clear();
        match user.row {
            Some(u) => {
                let (items, weights) = split.train.row(u as usize);
                self.history.extend(items.iter().copied().zip(weights.iter().copied()));
            }
            None => self.history.extend_from_slice(user.fold_in_history),
        }
        self.scores.fill(0.0);
        model.score(user.row, &self.history, &mut self.scores);
        // Training rows, exclusion lists and fold-in lists are all sorted by item.
        let mut fold_in_items = std::mem::take(&mut self.fold_in_items);
        let excluded = match user.row {
            Some(u) => split.excluded(u as usize),
            None => {
                fold_in_items.clear();
                fold_in_items.extend(user.fold_in_history.iter().map(|(item, _)| *item));
                fold_in_items.sort_unstable();
                &fold_in_items
            }
        };
        let ranking = self.rank_scores(excluded, split.candidates.as_deref(), user.test, k_max);
        self.fold_in_items = fold_in_items;
        ranking
    }

    /// The ranking part of [`Worker::rank`] on already computed `self.scores`.
    fn rank_scores(&mut self, excluded: &[u32], candidates: Option<&[u32]>, test: &[u32], k_max: usize) -> UserRanking {
        self.candidates.clear();
        self.positives.clear();
        let mut best_positive: Option<(f32, u32)> = None;
        debug_assert!(excluded.windows(2).all(|w| w[0] < w[1]), "exclusions must be sorted");
        let mut excluded = excluded.iter().copied().peekable();
        let mut test_iter = test.iter().copied().peekable();
        let scores = &self.scores;
        let mut visit = |item: u32| {
            while excluded.next_if(|&e| e < item).is_some() {}
            if excluded.peek() == Some(&item) {
                return;
            }
            let entry = (sanitize(scores[item as usize]), item);
            self.candidates.push(entry);
            while test_iter.next_if(|&t| t < item).is_some() {}
            if test_iter.peek() == Some(&item) {
                self.positives.push(entry.0);
                if best_positive.is_none_or(|best| rank_order(&entry, &best) == Ordering::Less) {
                    best_positive = Some(entry);
                }
            }
        };
        match candidates {
            Some(items) => items.iter().for_each(|&i| visit(i)),
            None => (0..scores.len() as u32).for_each(visit),
        }

        // MRR over the full ranking: rank of the best test item = 1 + candidates before it.
        let reciprocal_rank = best_positive.map_or(0.0, |best| {
            let before = self.candidates.iter().filter(|c| rank_order(c, &best) == Ordering::Less).count();
            1.0 / (before + 1) as f64
        });

        // AUC: for every candidate c, wins(c) = #positives above c + 1/2 #positives tied
        // with c. Summed over the negatives this is the AUC numerator; summed over the
        // positives themselves it is always P^2 / 2 (each pair of distinct positives adds 1,
        // each positive's tie with itself 1/2), so sum over negatives = total - P^2 / 2.
        let n_positive = self.positives.len();
        let n_negative = self.candidates.len() - n_positive;
        let auc = (n_positive > 0 && n_negative > 0).then(|| {
            self.positives.sort_unstable_by(f32::total_cmp);
            let positives = &self.positives;
            let total: f64 = self
                .candidates
                .iter()
                .map(|(score, _)| {
                    let below_or_tied = positives.partition_point(|p| p <= score);
                    let below = positives.partition_point(|p| p < score);
                    (n_positive - below_or_tied) as f64 + 0.5 * (below_or_tied - below) as f64
                })
                .sum();
            let wins = total - (n_positive * n_positive) as f64 / 2.0;
            wins / (n_positive as f64 * n_negative as f64)
        });

        // Top K by selection, then sort only those.
        let k = k_max.min(self.candidates.len());
        if k > 0 && k < self.candidates.len() {
            self.candidates.select_nth_unstable_by(k - 1, rank_order);
        }
        self.candidates[..k].sort_unstable_by(rank_order);
        self.top.clear();
        self.top.extend(self.candidates[..k].iter().map(|(_, item)| *item));
        UserRanking { reciprocal_rank, auc }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::eval::data::csr;
    use crate::eval::protocol::{FoldInUser, Protocol, SplitCounts};

    /// Test-only model: one fixed score vector per training row; fold-in users get
    /// `fold_in`.
    pub(crate) struct FixedScores {
        pub rows: Vec<Vec<f32>>,
        pub fold_in: Vec<f32>,
    }

    impl Recommender for FixedScores {
        fn name(&self) -> &str {
            "fixed"
        }

        fn score(&self, user: Option<u32>, _history: &[(u32, f32)], scores: &mut [f32]) {
            let source = user.map_or(&self.fold_in, |u| &self.rows[u as usize]);
            scores.copy_from_slice(source);
        }
    }

    fn split_of(train_rows: &[Vec<u32>], test: Vec<Vec<u32>>, n_items: usize) -> Split {
        let rows: Vec<Vec<(u32, f32)>> = train_rows.iter().map(|r| r.iter().map(|&i| (i, 1.0)).collect()).collect();
        let train = csr(
            (0..rows.len()).map(|u| format!("u{u}")).collect(),
            (0..n_items).map(|i| format!("i{i}")).collect(),
            &rows,
        );
        Split {
            protocol: Protocol::SplitDir,
            train,
            test,
            exclude: None,
            fold_in: Vec::new(),
            candidates: None,
            counts: SplitCounts::default(),
        }
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn hand_computed_two_users() {
        // 6 items. User 0 trained on item 0, test {2, 5}; scores rank 0 (excluded),
        // then 1, 2, 3, 4, 5: ranking = [1, 2, 3, 4, 5], hits at ranks 2 and 5.
        // User 1 trained on nothing, test {0}; scores all equal: ties by index,
        // ranking = [0, 1, ...], hit at rank 1.
        let split = split_of(&[vec![0], vec![]], vec![vec![2, 5], vec![0]], 6);
        let model = FixedScores { rows: vec![vec![9.0, 5.0, 4.0, 3.0, 2.0, 1.0], vec![1.0; 6]], fold_in: vec![] };
        let m = evaluate(&split, &model, &[2, 5]);
        assert_eq!(m.users, 2);
        // recall@2: user 0: 1 hit / min(2, 2) = 0.5; user 1: 1 / 1 = 1 -> mean 0.75.
        close(m.get("recall@2").unwrap(), 0.75);
        // recall_total@2 the same here (|test| <= 2).
        close(m.get("recall_total@2").unwrap(), 0.75);
        // ndcg@2: user 0: (1/log2 3) / (1 + 1/log2 3) = 0.386852807234542; user 1: 1.
        close(m.get("ndcg@2").unwrap(), (0.3868528072345416 + 1.0) / 2.0);
        // ndcg@5: user 0: (1/log2 3 + 1/log2 6) / (1 + 1/log2 3)
        //       = (0.630929753571457 + 0.386852807234542) / 1.630929753571457 = 0.624050520003838.
        close(m.get("ndcg@5").unwrap(), (0.6240505200038379 + 1.0) / 2.0);
        // precision@5: (2/5 + 1/5) / 2 = 0.3; hr@2 = 1.
        close(m.get("precision@5").unwrap(), 0.3);
        close(m.get("hr@2").unwrap(), 1.0);
        // map@5: user 0: (1/2 + 2/5) / min(5, 2) = 0.45; user 1: 1 -> 0.725.
        close(m.get("map@5").unwrap(), 0.725);
        // mrr: (1/2 + 1) / 2.
        close(m.get("mrr").unwrap(), 0.75);
        // auc: user 0: positives 4.0, 1.0 against negatives 5.0, 3.0, 2.0:
        //   4.0 beats 3.0 and 2.0 (2 of 3); 1.0 beats none -> 2/6 = 1/3.
        // user 1: positive 1.0 ties all 5 negatives -> 0.5. Mean 5/12.
        close(m.get("auc").unwrap(), 5.0 / 12.0);
        // coverage@2: user 0 recommends {1, 2}, user 1 {0, 1} -> 3 of 6 items.
        close(m.get("coverage@2").unwrap(), 0.5);
        // gini@2 over counts [1, 2, 1, 0, 0, 0]: sorted 0 0 0 1 1 2, weights -5 -3 -1 1 3 5;
        //   (1 + 3 + 10) / (6 * 4) = 14/24.
        close(m.get("gini@2").unwrap(), 14.0 / 24.0);
        // novelty@2: 2 training users; item 0 held by 1 user (1 bit), items 1, 2 by none
        //   (counted as one: 1 bit) -> every slot 1 bit.
        close(m.get("novelty@2").unwrap(), 1.0);
        let names: Vec<_> = m.iter().map(|(n, _)| n).collect();
        assert_eq!(&names[..3], ["recall@2", "recall_total@2", "ndcg@2"]);
        assert_eq!(names.len(), 2 * 6 + 2 + 2 * 3);
    }

    #[test]
    fn fold_in_users_and_candidate_sets() {
        // Candidates {3, 4, 5}; a fold-in user with history {0} and test {4}.
        let mut split = split_of(&[vec![1]], vec![vec![]], 6);
        split.candidates = Some(vec![3, 4, 5]);
        split.fold_in.push(FoldInUser { id: "new".into(), history: vec![(0, 1.0)], test: vec![4] });
        let model = FixedScores { rows: vec![vec![0.0; 6]], fold_in: vec![9.0, 8.0, 7.0, 1.0, 2.0, 3.0] };
        let m = evaluate(&split, &model, &[1]);
        assert_eq!(m.users, 1);
        // Ranking over {3, 4, 5}: 5 (3.0), 4 (2.0), 3 (1.0): hit at rank 2.
        close(m.get("hr@1").unwrap(), 0.0);
        close(m.get("mrr").unwrap(), 0.5);
        close(m.get("auc").unwrap(), 0.5);
        close(m.get("coverage@1").unwrap(), 1.0 / 3.0);
    }

    #[test]
    fn metrics_serialise_in_order_and_no_users_gives_zeros() {
        let split = split_of(&[vec![0]], vec![vec![]], 2);
        let model = FixedScores { rows: vec![vec![0.0; 2]], fold_in: vec![] };
        let m = evaluate(&split, &model, &[3, 3, 0]);
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.starts_with("{\"recall@3\":0.0,\"recall_total@3\":0.0"), "{json}");
        assert_eq!(m.users, 0);
    }

    /// Naive reference: sort every candidate, then the same per-list functions.
    fn naive(
        scores: &[f32],
        excluded: &[u32],
        candidates: Option<&[u32]>,
        test: &[u32],
        k_max: usize,
    ) -> (Vec<u32>, f64, Option<f64>) {
        let mut list: Vec<(f32, u32)> = (0..scores.len() as u32)
            .filter(|i| candidates.is_none_or(|c| c.contains(i)) && !excluded.contains(i))
            .map(|i| (if scores[i as usize].is_nan() { f32::NEG_INFINITY } else { scores[i as usize] }, i))
            .collect();
        list.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
        let ranked: Vec<u32> = list.iter().map(|(_, i)| *i).collect();
        let rr = metrics::reciprocal_rank(&metrics::hit_list(&ranked, test));
        let (pos, neg): (Vec<_>, Vec<_>) = list.iter().partition(|(_, i)| test.contains(i));
        let pos: Vec<f32> = pos.iter().map(|(s, _)| *s).collect();
        let neg: Vec<f32> = neg.iter().map(|(s, _)| *s).collect();
        (ranked.into_iter().take(k_max).collect(), rr, metrics::auc(&pos, &neg))
    }

    fn sorted_subset(flags: &[bool]) -> Vec<u32> {
        flags.iter().enumerate().filter(|(_, f)| **f).map(|(i, _)| i as u32).collect()
    }

    proptest! {
        #[test]
        fn top_k_path_matches_a_full_sort(
            raw in proptest::collection::vec((0u8..6, 0u8..8, any::<bool>()), 1..40),
            k_max in 1usize..12,
            restrict in any::<bool>(),
        ) {
            // Few distinct scores so ties are common; code 7 is NaN, code 6 is -0.0.
            let scores: Vec<f32> = raw.iter().map(|(_, s, _)| match s {
                7 => f32::NAN,
                6 => -0.0,
                s => f32::from(*s),
            }).collect();
            let excluded = sorted_subset(&raw.iter().map(|(r, _, _)| *r == 0).collect::<Vec<_>>());
            let test = sorted_subset(&raw.iter().map(|(r, _, _)| *r == 1 || *r == 2).collect::<Vec<_>>());
            let candidates = restrict.then(|| sorted_subset(&raw.iter().map(|(_, _, c)| *c).collect::<Vec<_>>()));
            let mut worker = Worker::new(scores.len());
            worker.scores.copy_from_slice(&scores);
            let fast = worker.rank_scores(&excluded, candidates.as_deref(), &test, k_max);
            let (top, rr, auc) = naive(&scores, &excluded, candidates.as_deref(), &test, k_max);
            prop_assert_eq!(&worker.top, &top);
            prop_assert_eq!(fast.reciprocal_rank, rr);
            match (fast.auc, auc) {
                (Some(a), Some(b)) => prop_assert!((a - b).abs() < 1e-12, "{} != {}", a, b),
                (a, b) => prop_assert_eq!(a, b),
            }
        }
    }
}
