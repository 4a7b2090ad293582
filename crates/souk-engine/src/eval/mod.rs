//! Offline evaluation of recommenders (`souk eval`): protocols, full-ranking metrics, and
//! the runner that trains, times and reports models side by side.
//!
//! Owns: the data an evaluation runs on ([`EvalData`], distinct (user, item) pairs read from
//! the store or from a split directory), the protocols that cut it into training data and
//! test items ([`Protocol`], [`Split`], [`validation_split`]), the metric functions
//! ([`metrics`]), the evaluator ([`evaluate`]) and the runner and report ([`run`],
//! [`EvalReport`]). Never trains a model itself (the caller passes a trainer), never
//! writes files, and never lets the test set choose hyper-parameters: tuning sees a
//! validation split carved from training data only.
//!
//! Ranking is always *full*: every candidate item is scored and ranked (all items, minus
//! the user's training items; `cold-item` ranks the held-out items only). Metrics at each
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
pub mod metrics;
pub mod protocol;
pub mod runner;

pub use data::{EvalData, EvalDataBuilder, EvalPair};
pub use evaluate::{evaluate, Metrics};
pub use protocol::{split, validation_split, FoldInUser, Protocol, Split, SplitCounts};
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
        let data = EvalData::from_split_dir(&fixture("")).unwrap();
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
}
