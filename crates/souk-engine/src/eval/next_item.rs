//! The `next-item` protocol (`souk eval --protocol next-item --train FILE --test FILE`): the
//! session-based evaluation of session-rec's `evaluate_sessions`, on its files.
//!
//! The model learns the training file's sessions. Test clicks whose item never occurs in
//! the training file are dropped, then test sessions left with fewer than two clicks. Each
//! test session is replayed in time order: after each of its first `n - 1` clicks the model
//! ranks every training item given the prefix, and the next click's item is the one
//! relevant item. `hr@K` counts a hit when it ranks in the top K, `mrr@K` adds 1 / rank
//! (0 past K), `ndcg@K` adds 1 / log2(rank + 1); each averages over all predictions.
//!
//! Ranking is full: the relevant item's rank is one plus the number of training items
//! scored higher (equal scores rank by item order in the training file). An item the model
//! gives no score at all is never a hit, whatever its place among the unscored — session-rec
//! orders those arbitrarily, which can only flatter it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Result, ValidationError};
use crate::import::sessions::{read_clicks, SessionClick};
use crate::recommend::{SessionKnn, SessionKnnParams};

/// The protocol's name.
pub const PROTOCOL: &str = "next-item";

/// The model the protocol evaluates.
pub const MODEL: &str = "session-knn";

/// Sessions of a log in the model's item numbers: each session's items in time order, and
/// its clicks' times.
#[derive(Debug, Default)]
pub struct SessionLog {
    pub sessions: Vec<Vec<(u32, i64)>>,
}

/// Group clicks by session (sessions in order of first appearance), each session's clicks
/// sorted by time (ties keep file order), with items numbered by `number` (`None`: skip
/// the click).
fn group(clicks: &[SessionClick], mut number: impl FnMut(&str) -> Option<u32>) -> SessionLog {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut sessions: Vec<Vec<(u32, i64)>> = Vec::new();
    for click in clicks {
        let Some(item) = number(&click.item) else { continue };
        let k = *index.entry(click.session.as_str()).or_insert_with(|| {
            sessions.push(Vec::new());
            sessions.len() - 1
        });
        sessions[k].push((item, click.time_ms));
    }
    for session in &mut sessions {
        session.sort_by_key(|(_, t)| *t);
    }
    SessionLog { sessions }
}

/// Sizes of what was evaluated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NextItemDataset {
    pub train: String,
    pub test: String,
    pub train_sessions: usize,
    pub train_events: usize,
    /// Distinct training items: every one is ranked at every step.
    pub items: usize,
    /// Test sessions and clicks left after the filters.
    pub test_sessions: usize,
    pub test_events: usize,
    /// Predictions made (test clicks minus test sessions).
    pub predictions: usize,
}

/// One model's result, shaped like `souk eval`'s `results` entries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NextItemResult {
    pub model: String,
    pub params: SessionKnnParams,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    pub metrics: BTreeMap<String, f64>,
}

/// What `souk eval --protocol next-item --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NextItemReport {
    pub protocol: &'static str,
    pub dataset: NextItemDataset,
    pub ks: Vec<usize>,
    pub results: Vec<NextItemResult>,
}

/// Run the protocol on two session log files (see [`crate::import::sessions`]).
pub fn run_files(train: &Path, test: &Path, params: &SessionKnnParams, ks: &[usize]) -> Result<NextItemReport> {
    params.validate().map_err(|e| e.within(MODEL))?;
    let mut ks: Vec<usize> = ks.iter().copied().filter(|k| *k > 0).collect();
    ks.sort_unstable();
    ks.dedup();
    if ks.is_empty() {
        return Err(ValidationError::new("invalid_number", "k", "expected at least one cut-off above 0").into());
    }
    let train_clicks = read_clicks(train)?;
    let test_clicks = read_clicks(test)?;

    let started = Instant::now();
    let mut items: HashMap<String, u32> = HashMap::new();
    let train_log = group(&train_clicks, |id| {
        let next = items.len() as u32;
        Some(*items.entry(id.to_string()).or_insert(next))
    });
    let mut model = SessionKnn::new(SessionKnnParams { max_sessions: usize::MAX, ..params.clone() });
    for session in &train_log.sessions {
        let no = model.start_session(session.first().map_or(0, |(_, t)| *t));
        for &(item, time) in session {
            model.push(no, item, time);
        }
    }
    let train_seconds = started.elapsed().as_secs_f64();

    let mut test_log = group(&test_clicks, |id| items.get(id).copied());
    test_log.sessions.retain(|s| s.len() >= 2);
    let started = Instant::now();
    let max_k = *ks.last().unwrap_or(&20);
    // Per session: (predictions, per K: hits, reciprocal ranks, discounted gains).
    let sums = test_log
        .sessions
        .par_iter()
        .map(|session| {
            let mut sum = vec![[0f64; 3]; ks.len()];
            let prefix: Vec<u32> = session.iter().map(|(i, _)| *i).collect();
            for step in 1..session.len() {
                let (target, time) = session[step];
                let votes = model.scores(&prefix[..step], time, None);
                if let Some(rank) = rank_of(&votes, target, max_k) {
                    for (k, s) in ks.iter().zip(sum.iter_mut()) {
                        if rank <= *k {
                            s[0] += 1.0;
                            s[1] += 1.0 / rank as f64;
                            s[2] += 1.0 / (rank as f64 + 1.0).log2();
                        }
                    }
                }
            }
            (session.len() - 1, sum)
        })
        .reduce(
            || (0, vec![[0f64; 3]; ks.len()]),
            |(n, mut a), (m, b)| {
                for (x, y) in a.iter_mut().zip(b) {
                    for j in 0..3 {
                        x[j] += y[j];
                    }
                }
                (n + m, a)
            },
        );
    let (predictions, totals) = sums;
    let mut metrics = BTreeMap::new();
    let denominator = predictions.max(1) as f64;
    for (k, total) in ks.iter().zip(totals) {
        metrics.insert(format!("hr@{k}"), total[0] / denominator);
        metrics.insert(format!("mrr@{k}"), total[1] / denominator);
        metrics.insert(format!("ndcg@{k}"), total[2] / denominator);
    }
    let dataset = NextItemDataset {
        train: file_name(train),
        test: file_name(test),
        train_sessions: train_log.sessions.len(),
        train_events: train_log.sessions.iter().map(Vec::len).sum(),
        items: items.len(),
        test_sessions: test_log.sessions.len(),
        test_events: test_log.sessions.iter().map(Vec::len).sum(),
        predictions,
    };
    Ok(NextItemReport {
        protocol: PROTOCOL,
        dataset,
        ks,
        results: vec![NextItemResult {
            model: MODEL.to_string(),
            params: params.clone(),
            train_seconds,
            eval_seconds: started.elapsed().as_secs_f64(),
            metrics,
        }],
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The 1-based rank of `target` among the scored items when it is at most `max_k`; `None`
/// when it ranks lower or has no score. Equal scores rank by item number.
pub fn rank_of(votes: &HashMap<u32, f32>, target: u32, max_k: usize) -> Option<usize> {
    let score = *votes.get(&target).filter(|s| **s > 0.0)?;
    let mut rank = 1;
    for (&item, &s) in votes {
        if s > score || (s == score && item < target) {
            rank += 1;
            if rank > max_k {
                return None;
            }
        }
    }
    Some(rank)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_count_better_items_and_break_ties_by_item() {
        let votes: HashMap<u32, f32> = [(1, 0.5), (2, 0.9), (3, 0.5), (4, 0.1)].into_iter().collect();
        assert_eq!(rank_of(&votes, 2, 20), Some(1));
        assert_eq!(rank_of(&votes, 1, 20), Some(2));
        assert_eq!(rank_of(&votes, 3, 20), Some(3));
        assert_eq!(rank_of(&votes, 4, 20), Some(4));
        assert_eq!(rank_of(&votes, 4, 3), None);
        assert_eq!(rank_of(&votes, 9, 20), None, "no score, no hit");
    }

    /// A generated log with a planted pattern: after item `a` comes item `a + 1` in every
    /// session; the test sessions follow it, so the model must rank the next item high.
    #[test]
    fn a_planted_successor_is_found_and_unknown_test_items_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut train = String::from("SessionId\tItemId\tTime\n");
        let mut t = 1_000_000u64;
        for s in 0..300u32 {
            let start = s % 40;
            for k in 0..4 {
                t += 10;
                train.push_str(&format!("{s}\t{}\t{t}\n", start + k));
            }
        }
        let mut test = String::from("SessionId\tItemId\tTime\n");
        for s in 0..20u32 {
            for k in 0..3 {
                t += 10;
                test.push_str(&format!("t{s}\t{}\t{t}\n", s + k));
            }
            // An item training never saw: dropped before the replay.
            test.push_str(&format!("t{s}\tunknown\t{}\n", t + 1));
        }
        // A session left with one known click: dropped.
        test.push_str(&format!("lonely\t5\t{t}\nlonely\tnever-seen\t{t}\n"));
        std::fs::write(dir.path().join("train.txt"), train).unwrap();
        std::fs::write(dir.path().join("test.txt"), test).unwrap();
        let params = SessionKnnParams::default();
        let report = run_files(&dir.path().join("train.txt"), &dir.path().join("test.txt"), &params, &[3, 20]).unwrap();
        assert_eq!(report.dataset.test_sessions, 20);
        assert_eq!(report.dataset.predictions, 40);
        assert_eq!(report.dataset.items, 43);
        let metrics = &report.results[0].metrics;
        // The items already viewed score too (a shopper often comes back to them), so the
        // successor is among the first few, not always first.
        assert!(metrics["hr@3"] > 0.9 && metrics["hr@20"] >= metrics["hr@3"], "{metrics:?}");
        assert!(metrics["mrr@20"] >= metrics["mrr@3"] && metrics["mrr@3"] > 0.3, "{metrics:?}");
    }
}
