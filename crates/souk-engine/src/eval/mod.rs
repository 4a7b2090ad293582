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
