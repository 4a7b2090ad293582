//! Offline evaluation of recommenders (`souk eval`): protocols, full-ranking metrics, and
//! the runner that trains, times and reports models side by side.
//!
//! Owns: the data an evaluation runs on ([`EvalData`], distinct (user, item) pairs read from
//! the store or from a split directory), the protocols that cut it into training data and
//! test items ([`Protocol`], [`Split`], [`validation_split`]), the metric functions
//! ([`metrics`]), the evaluator ([`evaluate`]) and the runner and report ([`run`],
//! [`EvalReport`]). Never trains a model itself (the caller passes a trainer), never
//! writes files (but the split a reference run reads, when asked), and never lets the
//! test set choose hyper-parameters: tuning sees a
//! validation split carved from training data only.
//!
//! Ranking is always *full*: every candidate item is scored and ranked (all items, minus
//! the user's training items; `cold-item` ranks the held-out items only; `split-dir` with a
//! target event type leaves out only the training items of that type, so a carted item can
//! be the purchase to find). Metrics at each
//! K — `recall@K` (hits / min(K, |test|)), `recall_total@K` (hits / |test|), `ndcg@K`,
//! `hr@K`, `precision@K`, `map@K` — then `mrr` (over the full ranking, no cut-off) and
//! `auc` (per user over all non-training candidates, ties count 1/2), then the list-level
//! `coverage@K`, `gini@K` and `novelty@K`. Accuracy metrics average over users with at
//! least one test item; [`metrics`] gives the exact definitions.
//!
//! The per-user random protocol and the recall and NDCG definitions follow the reference
//! protocol that Souk is compared against (per user a seeded random `1 - ratio` share of
//! the user's distinct items is test; Liang et al. 2018's recall); the metric code is
//! checked against ranx on a fixture in `testdata/eval/`.

pub mod data;
pub mod evaluate;
pub mod experiments;
pub mod exploration;
pub mod metrics;
pub mod new_user;
pub mod next_item;
pub mod protocol;
pub mod runner;
pub mod sentiment;
pub mod session_policy;
pub mod simulate;

pub use data::{EvalData, EvalDataBuilder, EvalPair, EventTypeSet, Listed};
pub use evaluate::{evaluate, Metrics};
pub use protocol::{split, split_with_target, validation_split, FoldInUser, Protocol, Split, SplitCounts};
pub use runner::{run, DatasetSummary, EvalConfig, EvalReport, ModelResult, Trainer, TuningPoint};

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::*;
    use crate::recommend::Recommender;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/eval").join(name)
    }

    /// Test-only model: a score table per user (training row) and item.
    struct Table {
        rows: Vec<Vec<f32>>,
    }

    impl Recommender for Table {
        fn name(&self) -> &str {
            "table"
        }

        fn score(&self, user: Option<u32>, _history: &[(u32, f32)], scores: &mut [f32]) {
            scores.copy_from_slice(&self.rows[user.expect("every fixture user is a training row") as usize]);
        }
    }

    /// Souk's metrics on the fixture against ranx's numbers (see `testdata/eval/README.md`).
    #[test]
    fn metrics_match_ranx() {
        let data = EvalData::from_split_dir(&fixture(""), &Default::default()).unwrap();
        let split = split(&data, Protocol::SplitDir, 0.8, 0).unwrap();
        assert_eq!((split.train.n_users(), split.train.n_items()), (30, 50));
        let users: HashMap<&str, usize> =
            split.train.user_ids.iter().enumerate().map(|(k, u)| (u.as_str(), k)).collect();
        let items: HashMap<&str, usize> =
            split.train.item_ids.iter().enumerate().map(|(k, i)| (i.as_str(), k)).collect();
        let mut rows = vec![vec![f32::NAN; 50]; 30];
        let scores = std::fs::read_to_string(fixture("scores.tsv")).unwrap();
        for line in scores.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            rows[users[fields[0]]][items[fields[1]]] = fields[2].parse().unwrap();
        }
        assert!(rows.iter().flatten().all(|s| s.is_finite()));
        let metrics = evaluate(&split, &Table { rows }, &[5, 10, 20]);

        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixture("expected_ranx.json")).unwrap()).unwrap();
        assert_eq!(expected["users"], metrics.users);
        let mut pairs = vec![("mrr".to_string(), "mrr".to_string())];
        for k in [5, 10, 20] {
            pairs.push((format!("ndcg@{k}"), format!("ndcg@{k}")));
            pairs.push((format!("recall_total@{k}"), format!("recall@{k}")));
            pairs.push((format!("precision@{k}"), format!("precision@{k}")));
            pairs.push((format!("hr@{k}"), format!("hit_rate@{k}")));
        }
        // Every user has at most 8 test items: at K >= 8 the min(K, R) denominators are R.
        for k in [10, 20] {
            pairs.push((format!("recall@{k}"), format!("recall@{k}")));
            pairs.push((format!("map@{k}"), format!("map@{k}")));
        }
        for (souk, ranx) in pairs {
            let ours = metrics.get(&souk).unwrap();
            let theirs = expected["metrics"][&ranx].as_f64().unwrap();
            assert!((ours - theirs).abs() < 1e-9, "souk {souk} = {ours}, ranx {ranx} = {theirs}");
        }
        // Where R > K for some users the definitions differ, and so must the numbers.
        assert!(metrics.get("recall@5").unwrap() > expected["metrics"]["recall@5"].as_f64().unwrap());
    }

    /// `candidates.tsv` restricts the ranking to its items (one of them named by no pair
    /// still competes) and the test items to them.
    #[test]
    fn a_split_directory_with_candidates_ranks_only_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train.tsv"), "u1\ta\nu1\tb\nu2\tb\n").unwrap();
        std::fs::write(dir.path().join("test.tsv"), "u1\tc\nu2\ta\nu2\tc\n").unwrap();
        std::fs::write(dir.path().join("candidates.tsv"), "c\nd\n\n").unwrap();
        let data = EvalData::from_split_dir(dir.path(), &Default::default()).unwrap();
        assert_eq!(data.item_ids, ["a", "b", "c", "d"]);
        let split = split(&data, Protocol::SplitDir, 0.8, 0).unwrap();
        assert_eq!(split.candidates.as_deref(), Some(&[2, 3][..]));
        assert_eq!(split.test, [vec![2], vec![2]], "a is no candidate: no test item");
        // Every user scores d above c: no hit at 1, a hit at 2.
        let model = Table { rows: vec![vec![9.0, 8.0, 1.0, 2.0]; 2] };
        let metrics = evaluate(&split, &model, &[1, 2]);
        assert_eq!((metrics.users, metrics.get("hr@1"), metrics.get("hr@2")), (2, Some(0.0), Some(1.0)));
    }

    /// A carted item bought later is the test purchase: with the purchase target it stays a
    /// candidate (and a hit for a model that scores it first); without, it is a training
    /// item, left out of the ranking and of the test set, so it cannot be a hit.
    #[test]
    fn a_carted_item_can_be_the_test_purchase_only_with_a_target() {
        let dir = tempfile::tempdir().unwrap();
        let train = "u1\ta\tpurchase\nu1\tb\tadd_to_cart\nu2\tb\tpurchase\nu2\tc\tadd_to_cart\n";
        std::fs::write(dir.path().join("train.tsv"), train).unwrap();
        std::fs::write(dir.path().join("test.tsv"), "u1\tb\nu2\tc\n").unwrap();
        let data = EvalData::from_split_dir(dir.path(), &Default::default()).unwrap();
        assert_eq!(data.item_ids, ["a", "b", "c"]);
        // Every user scores a, then b, then c.
        let model = Table { rows: vec![vec![3.0, 2.0, 1.0]; 2] };

        let target = Some(crate::model::EventType::Purchase);
        let with_target = split_with_target(&data, Protocol::SplitDir, 0.8, 0, target).unwrap();
        // Carts are trained on, purchases are left out of the ranking, test keeps b and c.
        assert_eq!(with_target.train.nnz(), 4);
        assert_eq!(with_target.test, [vec![1], vec![2]]);
        assert_eq!((with_target.excluded(0), with_target.excluded(1)), (&[0][..], &[1][..]));
        let metrics = evaluate(&with_target, &model, &[1]);
        assert_eq!(metrics.users, 2);
        // u1 ranks [b, c]: b is a hit at 1; u2 ranks [a, c]: c at 2 -> hr@1 = 1/2.
        assert_eq!(metrics.get("hr@1"), Some(0.5));
        assert_eq!(metrics.get("ndcg@1"), Some(0.5));

        let without = split(&data, Protocol::SplitDir, 0.8, 0).unwrap();
        assert!(without.test.iter().all(Vec::is_empty));
        assert_eq!(evaluate(&without, &model, &[1]).users, 0);
        assert_eq!(without.excluded(0), [0, 1]);

        // The same lines untyped: the carted pairs are plain training pairs, never test.
        let untyped = train.lines().map(|l| l.rsplit_once('\t').unwrap().0.to_string() + "\n").collect::<String>();
        std::fs::write(dir.path().join("train.tsv"), untyped).unwrap();
        let data = EvalData::from_split_dir(dir.path(), &Default::default()).unwrap();
        assert!(split(&data, Protocol::SplitDir, 0.8, 0).unwrap().test.iter().all(Vec::is_empty));
        // A target on untyped lines excludes nothing and tests every test line.
        let split = split_with_target(&data, Protocol::SplitDir, 0.8, 0, target).unwrap();
        assert_eq!((split.excluded(0), split.test[0].as_slice()), (&[][..], &[1][..]));
    }
}
