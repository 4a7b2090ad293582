//! The `open-bandit` evaluation protocol: how well a click model predicts the clicks of
//! later impressions from earlier ones, on an Open Bandit Dataset log ([`super::obd`]).
//!
//! Time-ordered, like serving: the earliest `ratio` of the rows (by timestamp) train, the
//! rest test, nothing crosses the cut. Two models: FTRL-Proximal logistic regression
//! ([`super::ftrl`]) over the features of [`ObdFeatureConfig`], and the popularity-by-
//! position baseline ([`super::position_popularity`]). Each reports AUC, log loss and
//! calibration ([`ClickMetrics`]) on the test rows.
//!
//! With tuning, each model's grid is scored on a validation cut carved from the training
//! rows the same way (the earliest `validation_ratio` of them fit, the rest judge, by AUC,
//! then log loss); the chosen parameters are refit on all training rows. The test rows are
//! never seen before the final scoring.
//!
//! A test set may hold few clicks (ten in the public sample's `random/all`), so the report
//! also gives each AUC's standard error and a paired bootstrap interval of the AUC difference
//! between the two models: when that interval holds 0, the test rows cannot tell them apart.
//!
//! Owns the protocol, the grids and the report; reads nothing from disk itself.

use std::fmt::Write as _;
use std::ops::Range;
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ftrl::{problems_to_error, FeatureHasher, FtrlModel, FtrlParams};
use super::metrics::{paired_auc_bootstrap, AucDifference, ClickMetrics};
use super::obd::{format_timestamp, ObdFeatureConfig, ObdLog};
use super::position_popularity::{self, PositionPopularity, PositionPopularityParams};
use crate::error::{Error, Result, ValidationError};

/// The protocol's name, as `souk eval --protocol` takes it.
pub const PROTOCOL: &str = "open-bandit";

/// Settings of the protocol and of both models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenBanditConfig {
    /// Share of the rows, earliest first, that train.
    pub ratio: f64,
    /// When tuning: share of the training rows, earliest first, that fit each grid point;
    /// the rest of the training rows judge it.
    pub validation_ratio: f64,
    pub ftrl: FtrlParams,
    pub features: ObdFeatureConfig,
    #[serde(rename = "popularity-by-position")]
    pub baseline: PositionPopularityParams,
    /// Resamples of the paired bootstrap of the AUC difference (0 = none).
    pub bootstrap_resamples: usize,
    /// Seed of the bootstrap.
    pub seed: u64,
}

impl Default for OpenBanditConfig {
    fn default() -> Self {
        Self {
            ratio: 0.7,
            validation_ratio: 0.7,
            ftrl: FtrlParams::default(),
            features: ObdFeatureConfig::default(),
            baseline: PositionPopularityParams::default(),
            bootstrap_resamples: 2000,
            seed: 42,
        }
    }
}

impl OpenBanditConfig {
    /// Every problem with this configuration, each with its key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (key, ratio) in [("ratio", self.ratio), ("validation_ratio", self.validation_ratio)] {
            if !(ratio.is_finite() && ratio > 0.0 && ratio < 1.0) {
                problems.push((key.to_string(), format!("expected a number strictly between 0 and 1, found {ratio}")));
            }
        }
        if self.bootstrap_resamples > 1_000_000 {
            problems.push((
                "bootstrap_resamples".to_string(),
                format!("expected at most 1000000, found {}", self.bootstrap_resamples),
            ));
        }
        problems.extend(self.ftrl.problems());
        problems.extend(self.baseline.problems());
        problems
    }
}

/// The FTRL grid tried when tuning: learning rate, L1, L2 (up to strong: clicks are rare,
/// so most coordinates see a handful), passes, and whether the cross features help. `beta` stays at the paper's 1 and `bits` where configured: with a few
/// thousand distinct features, 2^22 buckets leave collisions negligible.
pub fn ftrl_grid(base: &FtrlParams, features: &ObdFeatureConfig) -> Vec<(FtrlParams, ObdFeatureConfig)> {
    let mut grid = Vec::new();
    for alpha in [0.03, 0.1, 0.3, 1.0] {
        for lambda1 in [0.0, 1.0, 3.0] {
            for lambda2 in [0.0, 1.0, 10.0, 100.0] {
                for epochs in [1, 3] {
                    for crosses in [true, false] {
                        let params = FtrlParams { alpha, lambda1, lambda2, epochs, ..base.clone() };
                        grid.push((params, ObdFeatureConfig { crosses, ..features.clone() }));
                    }
                }
            }
        }
    }
    grid
}

/// The baseline's grid: prior strengths from nearly raw per-cell rates to nearly the slot's.
pub fn baseline_grid() -> Vec<PositionPopularityParams> {
    [1.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 10000.0]
        .into_iter()
        .map(|prior_strength| PositionPopularityParams { prior_strength })
        .collect()
}

/// Sizes of the time split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitSummary {
    pub ratio: f64,
    pub train_rows: usize,
    pub train_clicks: usize,
    pub test_rows: usize,
    pub test_clicks: usize,
    /// Timestamp of the first test row.
    pub test_from: String,
    /// The validation cut inside the training rows (when tuning).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationSummary>,
}

/// Sizes of the validation cut carved from the training rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationSummary {
    pub ratio: f64,
    pub fit_rows: usize,
    pub rows: usize,
    pub clicks: usize,
}

/// The `dataset` object of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetSummary {
    pub name: String,
    pub rows: usize,
    pub clicks: usize,
    pub ctr: f64,
    pub items: usize,
    pub positions: usize,
    pub user_features: usize,
    pub split: SplitSummary,
}

/// One grid point, scored on the validation rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TuningPoint {
    pub params: Value,
    pub validation: ClickMetrics,
}

/// One model's result on the test rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelResult {
    pub model: String,
    pub params: Value,
    /// Wall-clock time to build the model from the training rows (features included).
    pub train_seconds: f64,
    /// Hashed coordinates with a non-zero weight (FTRL only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonzero_weights: Option<usize>,
    pub metrics: ClickMetrics,
    /// Grid points tried on the validation rows (empty without tuning).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tuning: Vec<TuningPoint>,
}

/// What `souk eval --protocol open-bandit --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenBanditReport {
    pub protocol: &'static str,
    pub dataset: DatasetSummary,
    pub tuned: bool,
    pub results: Vec<ModelResult>,
    /// AUC of the first result minus the second's, with its paired bootstrap interval
    /// (absent when the test rows hold one class only or the bootstrap is off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auc_difference: Option<AucDifference>,
}

fn to_json<T: Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::Internal(format!("encoding parameters: {e}")))
}

fn ftrl_params_json(params: &FtrlParams, features: &ObdFeatureConfig) -> Result<Value> {
    let mut value = to_json(params)?;
    value["features"] = to_json(features)?;
    Ok(value)
}

fn labels(log: &ObdLog, rows: Range<usize>) -> Vec<bool> {
    log.impressions[rows].iter().map(|i| i.click).collect()
}

/// Train FTRL on `train` rows of the log.
pub fn train_ftrl(
    log: &ObdLog,
    train: Range<usize>,
    params: &FtrlParams,
    features: &ObdFeatureConfig,
) -> Result<FtrlModel> {
    FtrlModel::train(params.clone(), &log.examples(train, features))
}

/// FTRL's click probabilities for `rows`.
pub fn predict_ftrl(log: &ObdLog, rows: Range<usize>, model: &FtrlModel, features: &ObdFeatureConfig) -> Vec<f64> {
    let mut hasher = FeatureHasher::default();
    let mut buffer = Vec::new();
    rows.map(|row| {
        buffer.clear();
        log.features(row, features, &mut hasher, &mut buffer);
        model.predict(&buffer)
    })
    .collect()
}

fn train_baseline(log: &ObdLog, train: Range<usize>, params: &PositionPopularityParams) -> Result<PositionPopularity> {
    PositionPopularity::train(params.clone(), log.impressions[train].iter().map(|i| (i.item, i.position, i.click)))
}

fn predict_baseline(log: &ObdLog, rows: Range<usize>, model: &PositionPopularity) -> Vec<f64> {
    log.impressions[rows].iter().map(|i| model.predict(i.item, i.position)).collect()
}

/// Best first: higher AUC (an undefined AUC ranks last), then lower log loss, then the
/// earlier grid point.
fn better(a: &ClickMetrics, b: &ClickMetrics) -> bool {
    let auc = |m: &ClickMetrics| m.auc.unwrap_or(f64::NEG_INFINITY);
    match auc(a).total_cmp(&auc(b)) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => a.log_loss < b.log_loss,
    }
}

/// The index of the best scored point.
fn best(points: &[ClickMetrics]) -> usize {
    let mut chosen = 0;
    for (i, m) in points.iter().enumerate().skip(1) {
        if better(m, &points[chosen]) {
            chosen = i;
        }
    }
    chosen
}

/// Run the protocol on `log`.
pub fn run(log: &ObdLog, config: &OpenBanditConfig, tune: bool) -> Result<OpenBanditReport> {
    problems_to_error(&config.problems())?;
    let rows = log.impressions.len();
    let cut = log.time_cut(0..rows, config.ratio);
    if cut == 0 || cut == rows {
        return Err(ValidationError::new(
            "split_too_small",
            "ratio",
            format!("expected rows on both sides of the time split, found {rows} rows with {cut} before the cut"),
        )
        .into());
    }
    let (train, test) = (0..cut, cut..rows);
    let test_labels = labels(log, test.clone());

    let validation = if tune {
        let fit_end = log.time_cut(train.clone(), config.validation_ratio);
        if fit_end == 0 || fit_end == cut {
            return Err(ValidationError::new(
                "split_too_small",
                "validation_ratio",
                format!(
                    "expected training rows on both sides of the validation cut, found {cut} with {fit_end} before it"
                ),
            )
            .into());
        }
        Some(fit_end)
    } else {
        None
    };

    // FTRL: tune on the validation cut, then fit on all training rows.
    let (mut ftrl_params, mut features) = (config.ftrl.clone(), config.features.clone());
    let mut ftrl_tuning = Vec::new();
    if let Some(fit_end) = validation {
        let judged = labels(log, fit_end..cut);
        let grid = ftrl_grid(&config.ftrl, &config.features);
        let scored = grid
            .par_iter()
            .map(|(params, features)| {
                let model = train_ftrl(log, 0..fit_end, params, features)?;
                ClickMetrics::compute(&predict_ftrl(log, fit_end..cut, &model, features), &judged)
            })
            .collect::<Result<Vec<_>>>()?;
        let chosen = best(&scored);
        (ftrl_params, features) = grid[chosen].clone();
        for ((params, features), validation) in grid.iter().zip(scored) {
            ftrl_tuning.push(TuningPoint { params: ftrl_params_json(params, features)?, validation });
        }
    }
    let started = Instant::now();
    let model = train_ftrl(log, train.clone(), &ftrl_params, &features)?;
    let train_seconds = started.elapsed().as_secs_f64();
    let ftrl_predictions = predict_ftrl(log, test.clone(), &model, &features);
    let metrics = ClickMetrics::compute(&ftrl_predictions, &test_labels)?;
    tracing::debug!(auc = ?metrics.auc, log_loss = metrics.log_loss, train_seconds, "ftrl evaluated");
    let ftrl = ModelResult {
        model: super::ftrl::MODEL_NAME.to_string(),
        params: ftrl_params_json(&ftrl_params, &features)?,
        train_seconds,
        nonzero_weights: Some(model.nonzero_weights()),
        metrics,
        tuning: ftrl_tuning,
    };

    // The baseline, the same way.
    let mut baseline_params = config.baseline.clone();
    let mut baseline_tuning = Vec::new();
    if let Some(fit_end) = validation {
        let judged = labels(log, fit_end..cut);
        let grid = baseline_grid();
        let scored = grid
            .iter()
            .map(|params| {
                let model = train_baseline(log, 0..fit_end, params)?;
                ClickMetrics::compute(&predict_baseline(log, fit_end..cut, &model), &judged)
            })
            .collect::<Result<Vec<_>>>()?;
        baseline_params = grid[best(&scored)].clone();
        for (params, validation) in grid.iter().zip(scored) {
            baseline_tuning.push(TuningPoint { params: to_json(params)?, validation });
        }
    }
    let started = Instant::now();
    let baseline = train_baseline(log, train.clone(), &baseline_params)?;
    let train_seconds = started.elapsed().as_secs_f64();
    let baseline_predictions = predict_baseline(log, test.clone(), &baseline);
    let metrics = ClickMetrics::compute(&baseline_predictions, &test_labels)?;
    let baseline = ModelResult {
        model: position_popularity::MODEL_NAME.to_string(),
        params: to_json(&baseline_params)?,
        train_seconds,
        nonzero_weights: None,
        metrics,
        tuning: baseline_tuning,
    };

    let clicks = log.clicks(0..rows);
    let mut items: Vec<u32> = log.impressions.iter().map(|i| i.item).collect();
    items.sort_unstable();
    items.dedup();
    let mut positions: Vec<u32> = log.impressions.iter().map(|i| i.position).collect();
    positions.sort_unstable();
    positions.dedup();
    let dataset = DatasetSummary {
        name: log.log_path.display().to_string(),
        rows,
        clicks,
        ctr: clicks as f64 / rows as f64,
        items: items.len(),
        positions: positions.len(),
        user_features: log.user_features.len(),
        split: SplitSummary {
            ratio: config.ratio,
            train_rows: cut,
            train_clicks: log.clicks(train),
            test_rows: rows - cut,
            test_clicks: log.clicks(test),
            test_from: format_timestamp(log.impressions[cut].timestamp),
            validation: validation.map(|fit_end| ValidationSummary {
                ratio: config.validation_ratio,
                fit_rows: fit_end,
                rows: cut - fit_end,
                clicks: log.clicks(fit_end..cut),
            }),
        },
    };
    let auc_difference = match config.bootstrap_resamples {
        0 => None,
        resamples => {
            paired_auc_bootstrap(&ftrl_predictions, &baseline_predictions, &test_labels, resamples, config.seed)
        }
    };
    Ok(OpenBanditReport { protocol: PROTOCOL, dataset, tuned: tune, results: vec![ftrl, baseline], auc_difference })
}

fn optional(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"))
}

impl OpenBanditReport {
    /// A readable summary: the split, then one row per model.
    pub fn table(&self) -> String {
        let d = &self.dataset;
        let s = &d.split;
        let mut out = format!(
            "protocol {} on {}: {} impressions, {} clicks (CTR {:.4}%), {} items, {} positions\n\
             time split: train {} rows ({} clicks), test {} rows ({} clicks) from {}\n",
            self.protocol,
            d.name,
            d.rows,
            d.clicks,
            100.0 * d.ctr,
            d.items,
            d.positions,
            s.train_rows,
            s.train_clicks,
            s.test_rows,
            s.test_clicks,
            s.test_from
        );
        if let Some(v) = &s.validation {
            let _ = writeln!(
                out,
                "tuned on a validation cut of the training rows: fit {} rows, judge {} rows ({} clicks)",
                v.fit_rows, v.rows, v.clicks
            );
        }
        let header = ["model", "auc", "auc_se", "log_loss", "mean_pred", "observed", "calib", "train_s"];
        let rows: Vec<[String; 8]> = self
            .results
            .iter()
            .map(|r| {
                let m = &r.metrics;
                [
                    r.model.clone(),
                    optional(m.auc),
                    optional(m.auc_std_error),
                    format!("{:.5}", m.log_loss),
                    format!("{:.5}", m.mean_predicted),
                    format!("{:.5}", m.observed_ctr),
                    optional(m.calibration_ratio()),
                    format!("{:.3}", r.train_seconds),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut text = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                if i == 0 {
                    let _ = write!(text, "{cell:<w$}");
                } else {
                    let _ = write!(text, "  {cell:>w$}");
                }
            }
            text
        };
        let _ = writeln!(out, "{}", line(&header.map(str::to_string)));
        for row in &rows {
            let _ = writeln!(out, "{}", line(row));
        }
        if let (Some(d), [first, second, ..]) = (&self.auc_difference, self.results.as_slice()) {
            let _ = writeln!(
                out,
                "auc {} - {}: {:+.4} (95% paired bootstrap interval {:+.4} to {:+.4}; {} higher in {:.1}% of {} resamples)",
                first.model,
                second.model,
                d.difference,
                d.ci95[0],
                d.ci95[1],
                first.model,
                100.0 * d.share_first_better,
                d.samples
            );
        }
        for r in &self.results {
            let _ = writeln!(out, "{} params: {}", r.model, r.params);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn fixture() -> ObdLog {
        ObdLog::read_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/rank/obd")).unwrap()
    }

    #[test]
    fn runs_on_the_fixture_with_the_report_shape() {
        let log = fixture();
        let config = OpenBanditConfig { ftrl: FtrlParams { bits: 10, ..FtrlParams::default() }, ..Default::default() };
        let report = run(&log, &config, false).unwrap();
        let split = &report.dataset.split;
        assert_eq!((split.train_rows, split.test_rows), (10, 4));
        assert_eq!((split.train_clicks, split.test_clicks), (3, 1));
        assert_eq!(split.test_from, "2030-01-01 00:00:11.000000 UTC");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["protocol"], "open-bandit");
        assert_eq!(json["dataset"]["rows"], 14);
        assert_eq!(json["results"][0]["model"], "ftrl");
        assert_eq!(json["results"][0]["params"]["bits"], 10);
        assert_eq!(json["results"][0]["params"]["features"]["crosses"], true);
        assert_eq!(json["results"][1]["model"], "popularity-by-position");
        for result in json["results"].as_array().unwrap() {
            for key in ["auc", "log_loss", "mean_predicted", "observed_ctr"] {
                assert!(result["metrics"][key].is_number(), "{key} missing in {result}");
            }
            assert_eq!(result["metrics"]["observed_ctr"], 0.25);
        }
        assert!(report.table().contains("popularity-by-position"));
        let difference = report.auc_difference.clone().unwrap();
        let aucs: Vec<f64> = report.results.iter().map(|r| r.metrics.auc.unwrap()).collect();
        assert!((difference.difference - (aucs[0] - aucs[1])).abs() < 1e-12);
        assert!(difference.ci95[0] <= difference.ci95[1]);
        assert_eq!(json["auc_difference"]["samples"].as_u64(), Some(difference.samples as u64));
    }

    #[test]
    fn tuning_never_sees_the_test_rows() {
        let log = fixture();
        let config = OpenBanditConfig { ftrl: FtrlParams { bits: 10, ..FtrlParams::default() }, ..Default::default() };
        let report = run(&log, &config, true).unwrap();
        let validation = report.dataset.split.validation.clone().unwrap();
        // 10 training rows: 7 fit, 3 judge; the test rows (10..14) are outside both.
        assert_eq!((validation.fit_rows, validation.rows, validation.clicks), (7, 3, 1));
        assert_eq!(report.results[0].tuning.len(), ftrl_grid(&config.ftrl, &config.features).len());
        assert_eq!(report.results[1].tuning.len(), baseline_grid().len());
        for result in &report.results {
            let scores: Vec<ClickMetrics> = result.tuning.iter().map(|t| t.validation.clone()).collect();
            assert_eq!(
                result.params,
                result.tuning[best(&scores)].params,
                "{} did not keep its best point",
                result.model
            );
        }

        // Other clicks in the test rows: the same validation scores and choices, other test metrics.
        let mut flipped = log.clone();
        for impression in &mut flipped.impressions[10..] {
            impression.click = !impression.click;
        }
        let other = run(&flipped, &config, true).unwrap();
        for (a, b) in report.results.iter().zip(&other.results) {
            assert_eq!(a.tuning, b.tuning);
            assert_eq!(a.params, b.params);
            assert_ne!(a.metrics, b.metrics);
        }
    }

    #[test]
    fn selection_prefers_auc_then_log_loss() {
        let m = |auc: Option<f64>, log_loss: f64| ClickMetrics {
            auc,
            auc_std_error: None,
            log_loss,
            mean_predicted: 0.1,
            observed_ctr: 0.1,
        };
        assert_eq!(best(&[m(Some(0.6), 0.3), m(Some(0.7), 0.9), m(Some(0.7), 0.5), m(None, 0.1)]), 2);
        assert_eq!(best(&[m(None, 0.3), m(None, 0.2)]), 1);
    }

    #[test]
    fn bad_settings_are_all_reported() {
        let log = fixture();
        let config = OpenBanditConfig {
            ratio: 1.0,
            ftrl: FtrlParams { alpha: -1.0, ..FtrlParams::default() },
            baseline: PositionPopularityParams { prior_strength: f64::NAN },
            ..Default::default()
        };
        let message = run(&log, &config, false).unwrap_err().to_string();
        for key in ["ratio", "ftrl.alpha", "popularity-by-position.prior_strength"] {
            assert!(message.contains(key), "{key} not in {message}");
        }
    }

    #[test]
    fn config_keys_are_checked() {
        let error = serde_json::from_value::<OpenBanditConfig>(serde_json::json!({"ftrl": {"alhpa": 1}})).unwrap_err();
        assert!(error.to_string().contains("alhpa"), "{error}");
        let config: OpenBanditConfig =
            serde_json::from_value(serde_json::json!({"popularity-by-position": {"prior_strength": 5.0}})).unwrap();
        assert_eq!(config.baseline.prior_strength, 5.0);
    }
}
