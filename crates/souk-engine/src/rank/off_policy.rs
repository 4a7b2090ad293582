//! The `ope` evaluation protocol: the click rate a target policy would have had on an Open
//! Bandit Dataset log ([`super::obd`]), estimated from the log alone by IPW, SNIPW, the
//! direct method and doubly robust ([`crate::ope`]), each with a bootstrap interval.
//!
//! Each row of the log is one round, as in obp: the logged item in its slot, its click and
//! the logging policy's propensity; the target policy's probabilities come from a policy file
//! ([`EvaluationPolicy`]). The value is the policy's click rate per shown slot.
//!
//! The reward model `q̂(x, item, slot)` of DM and DR is fit on the log, cross-fitted: the rows
//! are dealt into `folds` seeded folds, and a row's predictions come from a model fit on the
//! other folds, so no row is predicted by a model that saw its click (with `folds = 1` one
//! model fits and predicts every row). Two models:
//!
//! - `ftrl` (default): FTRL-Proximal logistic regression ([`super::ftrl`]) over the click
//!   model's features ([`ObdFeatureConfig`]: item, slot, slot × item, each user feature and
//!   its cross with the item, the item's context, the user's affinity to the item) — the
//!   features the ranker learns clicks from, and contextual, so the model can say which
//!   users click which items. With clicks under 1% each cell of (user feature, item) sees
//!   few clicks; FTRL's L1/L2 keep the rare ones near the intercept.
//! - `popularity-by-position`: the click rate of each (item, slot) shrunk to the slot's by a
//!   Beta prior ([`super::position_popularity`]) — context-free, so exact for a context-free
//!   target policy when the cells are well estimated, but it cannot see users.
//!
//! Owns the protocol, its configuration and report; reads the files it is pointed at through
//! [`ObdLog`] and [`EvaluationPolicy`]. Cost: one model fit per fold, then one prediction per
//! row of the policy file kept (items × rounds), over threads.

use std::fmt::Write as _;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::ftrl::{problems_to_error, Example, FeatureHasher, FtrlModel, FtrlParams};
use super::obd::{ObdFeatureConfig, ObdLog};
use super::obd_policy::EvaluationPolicy;
use super::position_popularity::{PositionPopularity, PositionPopularityParams};
use crate::error::{Result, ValidationError};
use crate::ope::{self, BootstrapConfig, LoggedRound, PolicyEstimate};

/// The protocol's name, as `souk eval --protocol` takes it.
pub const PROTOCOL: &str = "ope";

/// The reward model of DM and DR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RewardModelKind {
    Ftrl,
    PopularityByPosition,
}

impl RewardModelKind {
    pub fn name(self) -> &'static str {
        match self {
            RewardModelKind::Ftrl => "ftrl",
            RewardModelKind::PopularityByPosition => "popularity-by-position",
        }
    }
}

/// Settings of the protocol and of its reward models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OffPolicyConfig {
    pub reward_model: RewardModelKind,
    /// Cross-fitting folds of the reward model (1: fit and predict on every row).
    pub folds: usize,
    /// Bootstrap resamples of the rounds for each interval (0: no intervals).
    pub bootstrap_resamples: usize,
    /// Coverage of the intervals.
    pub confidence: f64,
    /// Seed of the folds and of the bootstrap.
    pub seed: u64,
    pub ftrl: FtrlParams,
    pub features: ObdFeatureConfig,
    #[serde(rename = "popularity-by-position")]
    pub baseline: PositionPopularityParams,
}

impl Default for OffPolicyConfig {
    fn default() -> Self {
        Self {
            reward_model: RewardModelKind::Ftrl,
            folds: 3,
            bootstrap_resamples: 100,
            confidence: 0.95,
            seed: 42,
            ftrl: FtrlParams::default(),
            features: ObdFeatureConfig::default(),
            baseline: PositionPopularityParams::default(),
        }
    }
}

impl OffPolicyConfig {
    /// Every problem with this configuration, each with its key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if !(1..=20).contains(&self.folds) {
            problems.push(("folds".to_string(), format!("expected 1..=20, found {}", self.folds)));
        }
        if self.bootstrap_resamples > 100_000 {
            problems.push((
                "bootstrap_resamples".to_string(),
                format!("expected at most 100000, found {}", self.bootstrap_resamples),
            ));
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            problems.push((
                "confidence".to_string(),
                format!("expected a number strictly between 0 and 1, found {}", self.confidence),
            ));
        }
        problems.extend(self.ftrl.problems());
        problems.extend(self.baseline.problems());
        problems
    }
}

/// The reward model's description in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RewardModelSummary {
    pub name: &'static str,
    pub folds: usize,
}

/// What `souk eval --protocol ope` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffPolicyReport {
    pub protocol: &'static str,
    /// Rows of the log: each a round.
    pub rounds: usize,
    /// IPW, SNIPW, DM and DR, in that order.
    pub estimates: Vec<PolicyEstimate>,
    /// The logging policy's own value: the log's mean reward.
    pub logged_value: f64,
    /// Kish's effective sample size of the importance weights: how many on-policy rounds
    /// the reweighted log is worth (null when the policy never shows a logged item).
    pub effective_sample_size: Option<f64>,
    pub reward_model: RewardModelSummary,
    pub bootstrap_resamples: usize,
    pub confidence: f64,
    /// Rows the policy file held.
    pub policy_rows: usize,
}

/// The cross-fitting folds: row `i` is in fold `fold[i]`, folds as even as the rows allow.
fn folds(rows: usize, folds: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut fold = vec![0; rows];
    for (k, &row) in order.iter().enumerate() {
        fold[row] = k % folds;
    }
    fold
}

/// A fitted reward model: the click probability of `item` in `position` for the user of a row.
enum RewardModel {
    Ftrl(FtrlModel),
    Popularity(PositionPopularity),
}

impl RewardModel {
    fn fit(log: &ObdLog, rows: &[usize], config: &OffPolicyConfig) -> Result<Self> {
        Ok(match config.reward_model {
            RewardModelKind::Ftrl => {
                let mut hasher = FeatureHasher::default();
                let examples: Vec<Example> = rows
                    .iter()
                    .map(|&row| {
                        let mut features = Vec::with_capacity(24);
                        log.features(row, &config.features, &mut hasher, &mut features);
                        Example { features, label: log.impressions[row].click, weight: 1.0 }
                    })
                    .collect();
                RewardModel::Ftrl(FtrlModel::train(config.ftrl.clone(), &examples)?)
            }
            RewardModelKind::PopularityByPosition => RewardModel::Popularity(PositionPopularity::train(
                config.baseline.clone(),
                rows.iter().map(|&row| {
                    let i = &log.impressions[row];
                    (i.item, i.position, i.click)
                }),
            )?),
        })
    }

    /// `(q̂(x, logged item), Σ π(a)·q̂(x, a))` for row `row` at its logged slot.
    fn predict(
        &self,
        log: &ObdLog,
        policy: &EvaluationPolicy,
        row: usize,
        features: &ObdFeatureConfig,
        hasher: &mut FeatureHasher,
        buffer: &mut Vec<super::ftrl::Feature>,
    ) -> (f64, f64) {
        let impression = &log.impressions[row];
        let mut q = |item: u32| match self {
            RewardModel::Ftrl(model) => {
                buffer.clear();
                log.features_of(row, item, impression.position, features, hasher, buffer);
                model.predict(buffer)
            }
            RewardModel::Popularity(model) => model.predict(item, impression.position),
        };
        let logged = q(impression.item);
        let expected = policy.choices(row).iter().map(|&(item, p)| p * q(item)).sum();
        (logged, expected)
    }
}

/// The estimators' inputs, one per row: the log, the policy's probabilities, and the
/// cross-fitted reward model's predictions.
pub fn logged_rounds(log: &ObdLog, policy: &EvaluationPolicy, config: &OffPolicyConfig) -> Result<Vec<LoggedRound>> {
    problems_to_error(&config.problems())?;
    let n = log.impressions.len();
    if n < config.folds.max(1) {
        return Err(ValidationError::new(
            "split_too_small",
            "folds",
            format!("the log has {n} rows, fewer than the {} folds of the reward model", config.folds),
        )
        .into());
    }
    let mut predictions = vec![(0.0, 0.0); n];
    let fold_of = folds(n, config.folds, config.seed);
    for fold in 0..config.folds {
        // The rows a fold's model fits on, in time order; with one fold, every row.
        let fit_rows: Vec<usize> = (0..n).filter(|&r| config.folds == 1 || fold_of[r] != fold).collect();
        let model = RewardModel::fit(log, &fit_rows, config)?;
        let predict_rows: Vec<usize> = (0..n).filter(|&r| fold_of[r] == fold).collect();
        let predicted: Vec<(f64, f64)> = predict_rows
            .par_iter()
            .map_init(
                || (FeatureHasher::default(), Vec::with_capacity(24)),
                |(hasher, buffer), &row| model.predict(log, policy, row, &config.features, hasher, buffer),
            )
            .collect();
        for (&row, prediction) in predict_rows.iter().zip(predicted) {
            predictions[row] = prediction;
        }
    }
    Ok(log
        .impressions
        .iter()
        .zip(predictions)
        .enumerate()
        .map(|(row, (impression, (model_reward, model_value)))| LoggedRound {
            reward: if impression.click { 1.0 } else { 0.0 },
            logging_probability: impression.propensity,
            target_probability: policy.probability(row, impression.item),
            model_reward,
            model_value,
        })
        .collect())
}

/// Run the protocol: estimate the value of `policy` on `log`.
pub fn run(log: &ObdLog, policy: &EvaluationPolicy, config: &OffPolicyConfig) -> Result<OffPolicyReport> {
    let rounds = logged_rounds(log, policy, config)?;
    let bootstrap =
        BootstrapConfig { resamples: config.bootstrap_resamples, confidence: config.confidence, seed: config.seed };
    let logged_value =
        if rounds.is_empty() { 0.0 } else { rounds.iter().map(|r| r.reward).sum::<f64>() / rounds.len() as f64 };
    Ok(OffPolicyReport {
        protocol: PROTOCOL,
        rounds: rounds.len(),
        estimates: ope::estimate_all(&rounds, &bootstrap),
        logged_value,
        effective_sample_size: ope::effective_sample_size(&rounds),
        reward_model: RewardModelSummary { name: config.reward_model.name(), folds: config.folds },
        bootstrap_resamples: config.bootstrap_resamples,
        confidence: config.confidence,
        policy_rows: policy.rows_read,
    })
}

impl OffPolicyReport {
    /// The report as a plain-text table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let ess = self.effective_sample_size.map_or_else(|| "-".to_string(), |e| format!("{e:.0}"));
        let _ = writeln!(
            out,
            "{} rounds, logged value {:.6}, effective sample size {ess}, reward model {} ({} folds)",
            self.rounds, self.logged_value, self.reward_model.name, self.reward_model.folds
        );
        let _ = writeln!(
            out,
            "{:<10} {:>10}  {:.0}% interval ({} resamples)",
            "estimator",
            "value",
            100.0 * self.confidence,
            self.bootstrap_resamples
        );
        for e in &self.estimates {
            let value = e.value.map_or_else(|| "-".to_string(), |v| format!("{v:.6}"));
            let ci = e.ci.map_or_else(|| "-".to_string(), |[lo, hi]| format!("[{lo:.6}, {hi:.6}]"));
            let _ = writeln!(out, "{:<10} {value:>10}  {ci}", e.estimator.name());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::ope::Estimator;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/rank/obd")
    }

    /// A policy file from `(round, position, item, probability)` rows.
    fn policy(log: &ObdLog, rows: &[(usize, u32, u32, f64)]) -> EvaluationPolicy {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.csv");
        let mut text = String::from("round,position,item,probability\n");
        for (round, position, item, probability) in rows {
            text.push_str(&format!("{round},{position},{item},{probability}\n"));
        }
        std::fs::write(&path, text).unwrap();
        EvaluationPolicy::read(&path, log).unwrap()
    }

    /// The fixture's (file row, position, item) of every round, in file order.
    fn logged(log: &ObdLog) -> Vec<(usize, u32, u32)> {
        let mut rows: Vec<(usize, u32, u32)> =
            log.impressions.iter().map(|i| (i.row as usize, i.position, i.item)).collect();
        rows.sort_unstable();
        rows
    }

    fn value(report: &OffPolicyReport, estimator: Estimator) -> f64 {
        report.estimates.iter().find(|e| e.estimator == estimator).unwrap().value.unwrap()
    }

    fn small() -> OffPolicyConfig {
        OffPolicyConfig { ftrl: FtrlParams { bits: 12, ..FtrlParams::default() }, ..OffPolicyConfig::default() }
    }

    #[test]
    fn the_logging_policy_is_valued_at_the_logged_click_rate() {
        let log = ObdLog::read_dir(&fixture()).unwrap();
        // The fixture's logging policy: each of the 4 items with probability 0.25 in every slot.
        let rows: Vec<_> = logged(&log)
            .into_iter()
            .flat_map(|(round, position, _)| (0..4).map(move |item| (round, position, item, 0.25)))
            .collect();
        let report = run(&log, &policy(&log, &rows), &small()).unwrap();
        assert_eq!((report.protocol, report.rounds, report.policy_rows), ("ope", 14, 56));
        let mean = 4.0 / 14.0;
        assert!((report.logged_value - mean).abs() < 1e-12);
        for estimator in [Estimator::Ipw, Estimator::Snipw] {
            assert!((value(&report, estimator) - mean).abs() < 1e-12, "{estimator:?}");
        }
        assert!((report.effective_sample_size.unwrap() - 14.0).abs() < 1e-9);
        let dm = value(&report, Estimator::Dm);
        assert!(dm > 0.0 && dm < 1.0, "{dm}");
        for e in &report.estimates {
            let [lo, hi] = e.ci.unwrap();
            assert!(lo <= hi, "{e:?}");
        }
    }

    #[test]
    fn rounds_name_rows_of_the_file_not_of_time_order() {
        let log = ObdLog::read_dir(&fixture()).unwrap();
        // File row 5 (item 3 in slot 2, clicked) comes after file row 6 in time. The policy
        // shows the logged item surely in round 5 and never elsewhere.
        let rows: Vec<_> = logged(&log)
            .into_iter()
            .map(|(round, position, item)| (round, position, item, if round == 5 { 1.0 } else { 0.0 }))
            .collect();
        let report = run(&log, &policy(&log, &rows), &small()).unwrap();
        // One round with weight 1 / 0.25 and a click, over 14 rounds.
        assert!((value(&report, Estimator::Ipw) - 4.0 / 14.0).abs() < 1e-12);
        assert!((value(&report, Estimator::Snipw) - 1.0).abs() < 1e-12);
        assert!((report.effective_sample_size.unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_direct_method_averages_the_reward_model_over_the_policy() {
        let log = ObdLog::read_dir(&fixture()).unwrap();
        // Item 2 with probability 0.6 and item 0 with 0.4, in every round's slot.
        let rows: Vec<_> = logged(&log)
            .into_iter()
            .flat_map(|(round, position, _)| [(round, position, 2, 0.6), (round, position, 0, 0.4)])
            .collect();
        let config = OffPolicyConfig {
            reward_model: RewardModelKind::PopularityByPosition,
            folds: 1,
            baseline: PositionPopularityParams { prior_strength: 3.0 },
            ..small()
        };
        let report = run(&log, &policy(&log, &rows), &config).unwrap();
        let model = PositionPopularity::train(
            config.baseline.clone(),
            log.impressions.iter().map(|i| (i.item, i.position, i.click)),
        )
        .unwrap();
        let expected = log
            .impressions
            .iter()
            .map(|i| 0.6 * model.predict(2, i.position) + 0.4 * model.predict(0, i.position))
            .sum::<f64>()
            / 14.0;
        assert!((value(&report, Estimator::Dm) - expected).abs() < 1e-12);
        // DR adds the weighted residuals of the rounds whose logged item the policy shows.
        let residuals = log
            .impressions
            .iter()
            .map(|i| {
                let weight = match i.item {
                    2 => 0.6 / 0.25,
                    0 => 0.4 / 0.25,
                    _ => 0.0,
                };
                weight * (f64::from(u8::from(i.click)) - model.predict(i.item, i.position))
            })
            .sum::<f64>()
            / 14.0;
        assert!((value(&report, Estimator::Dr) - (expected + residuals)).abs() < 1e-12);
    }

    #[test]
    fn cross_fitting_predicts_each_row_from_the_other_folds() {
        let log = ObdLog::read_dir(&fixture()).unwrap();
        let rows: Vec<_> =
            logged(&log).into_iter().map(|(round, position, item)| (round, position, item, 1.0)).collect();
        let policy = policy(&log, &rows);
        let config = OffPolicyConfig {
            reward_model: RewardModelKind::PopularityByPosition,
            folds: 2,
            baseline: PositionPopularityParams { prior_strength: 1.0 },
            ..small()
        };
        let rounds = logged_rounds(&log, &policy, &config).unwrap();
        let fold_of = folds(14, 2, config.seed);
        assert_eq!(fold_of.iter().filter(|&&f| f == 0).count(), 7);
        for (row, round) in rounds.iter().enumerate() {
            let others = log
                .impressions
                .iter()
                .enumerate()
                .filter(|(r, _)| fold_of[*r] != fold_of[row])
                .map(|(_, i)| (i.item, i.position, i.click));
            let model = PositionPopularity::train(config.baseline.clone(), others).unwrap();
            let i = &log.impressions[row];
            assert!((round.model_reward - model.predict(i.item, i.position)).abs() < 1e-12, "row {row}");
            assert_eq!(round.model_reward, round.model_value, "the policy shows the logged item surely");
        }
        // FTRL, cross-fitted, runs and predicts probabilities.
        let rounds = logged_rounds(&log, &policy, &OffPolicyConfig { folds: 3, ..small() }).unwrap();
        assert!(rounds.iter().all(|r| r.model_reward > 0.0 && r.model_reward < 1.0));
        let error = logged_rounds(&log, &policy, &OffPolicyConfig { folds: 15, ..small() }).unwrap_err();
        assert!(error.to_string().contains("fewer than the 15 folds"), "{error}");
    }

    #[test]
    fn the_report_is_seeded_and_its_json_has_the_contract_shape() {
        let log = ObdLog::read_dir(&fixture()).unwrap();
        let rows: Vec<_> = logged(&log).into_iter().map(|(round, position, _)| (round, position, 3, 1.0)).collect();
        let policy = policy(&log, &rows);
        let report = run(&log, &policy, &small()).unwrap();
        assert_eq!(report, run(&log, &policy, &small()).unwrap());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["protocol"], "ope");
        assert_eq!(json["rounds"], 14);
        let names: Vec<&str> =
            json["estimates"].as_array().unwrap().iter().map(|e| e["estimator"].as_str().unwrap()).collect();
        assert_eq!(names, ["ipw", "snipw", "dm", "dr"]);
        for e in json["estimates"].as_array().unwrap() {
            assert!(e["value"].is_number() && e["ci"].as_array().unwrap().len() == 2, "{e}");
        }
        let table = report.table();
        assert!(table.contains("14 rounds") && table.contains("snipw"), "{table}");
    }

    #[test]
    fn bad_configurations_are_refused() {
        let config = OffPolicyConfig { folds: 0, confidence: 1.0, bootstrap_resamples: 1_000_000, ..small() };
        let keys: Vec<String> = config.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["folds", "bootstrap_resamples", "confidence"]);
        let parsed: std::result::Result<OffPolicyConfig, _> =
            serde_json::from_value(serde_json::json!({"reward_model": "gbdt"}));
        assert!(parsed.is_err());
    }
}
