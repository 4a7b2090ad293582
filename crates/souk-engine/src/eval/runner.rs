//! Running an evaluation: split once, then per model (optionally tune on a validation split
//! carved from training data), train, time, evaluate, and report.

use std::fmt::Write as _;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::data::EvalData;
use super::evaluate::{evaluate, Metrics};
use super::protocol::{split_with_target, validation_split, Protocol, SplitCounts};
use crate::error::{Result, ValidationError};
use crate::model::EventType;
use crate::recommend::{Interactions, Recommender};

/// Trains one model: (model name, parameters, training data) → model.
pub type Trainer<'a> = &'a dyn Fn(&str, &Value, &Interactions) -> Result<Box<dyn Recommender>>;

/// How to evaluate (`souk eval --protocol NAME --ratio R --seed S --k 10,20`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    pub protocol: Protocol,
    /// Training share (of each user's items, of time, of users or of items).
    pub ratio: f64,
    pub seed: u64,
    /// Cut-offs; the first one also selects parameters when tuning (`ndcg@ks[0]`).
    pub ks: Vec<usize>,
    /// Training share of the validation split carved from training data when tuning.
    pub validation_ratio: f64,
    /// The event type the test items are (`split-dir` only): only training pairs of this
    /// type leave the ranking; `None` = every training pair does.
    pub target: Option<EventType>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            protocol: Protocol::RandomSplit,
            ratio: 0.8,
            seed: 42,
            ks: vec![10, 20],
            validation_ratio: 0.8,
            target: None,
        }
    }
}

impl EvalConfig {
    /// Every problem with this configuration, each with the offending key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (key, ratio) in [("ratio", self.ratio), ("validation_ratio", self.validation_ratio)] {
            if !(ratio.is_finite() && ratio > 0.0 && ratio < 1.0) {
                problems.push((key.to_string(), format!("expected a number strictly between 0 and 1, found {ratio}")));
            }
        }
        if self.ks.is_empty() {
            problems.push(("ks".to_string(), "expected at least one cut-off, found none".to_string()));
        }
        if self.ks.contains(&0) {
            problems.push(("ks".to_string(), "expected cut-offs of at least 1, found 0".to_string()));
        }
        problems
    }

    /// The name of the metric that picks parameters when tuning.
    pub fn selection_metric(&self) -> String {
        format!("ndcg@{}", self.ks.first().copied().unwrap_or(10))
    }
}

/// The `dataset` object of a report: the data set's name and the split's sizes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetSummary {
    pub name: String,
    #[serde(flatten)]
    pub counts: SplitCounts,
}

/// One grid point tried while tuning, scored on the validation split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TuningPoint {
    pub params: Value,
    pub train_seconds: f64,
    /// The selection metric ([`EvalConfig::selection_metric`]) on the validation split.
    pub score: f64,
}

/// One model's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelResult {
    pub model: String,
    pub params: Value,
    /// Wall-clock time of training on the full training split.
    pub train_seconds: f64,
    /// Wall-clock time of scoring and ranking every evaluated user.
    pub eval_seconds: f64,
    /// How far training raised the process's peak resident memory, in bytes; see
    /// [`peak_memory`] for what this can and cannot see. `None` where it is not readable.
    pub peak_memory_bytes: Option<u64>,
    /// Grid points tried on the validation split (empty without tuning).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tuning: Vec<TuningPoint>,
    /// Users the metrics average over.
    pub eval_users: usize,
    pub metrics: Metrics,
}

/// What `souk eval --json` prints: `{"protocol", "dataset", "results": [...]}` plus the
/// settings that produced it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    pub protocol: Protocol,
    pub dataset: DatasetSummary,
    pub ratio: f64,
    pub seed: u64,
    pub ks: Vec<usize>,
    /// The target event type of the split, if any ([`EvalConfig::target`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<EventType>,
    /// The metric that chose parameters when tuning, `None` without tuning.
    pub tuned_on: Option<String>,
    pub results: Vec<ModelResult>,
}

/// Evaluate each of `models` (a name and its parameter grid) on `data` under `config`.
///
/// Without `tune`, every grid point is trained on the training split and reported as its
/// own result (nothing is selected, so the test set never chooses parameters). With
/// `tune`, each grid point is trained on a validation split carved from the training split
/// only ([`validation_split`] with `validation_ratio` and `seed + 1`), the one with the
/// highest `ndcg@ks[0]` wins (the first on ties), and only it is retrained on the whole
/// training split, evaluated and reported. An empty grid means one point, `{}`.
pub fn run(
    data: &EvalData,
    config: &EvalConfig,
    trainer: Trainer<'_>,
    models: &[(String, Vec<Value>)],
    tune: bool,
) -> Result<EvalReport> {
    let problems = config.problems();
    if let Some((field, _)) = problems.first() {
        let message = problems.iter().map(|(k, m)| format!("{k}: {m}")).collect::<Vec<_>>().join("; ");
        return Err(ValidationError::new("invalid_eval_config", field.clone(), message).into());
    }
    let split = split_with_target(data, config.protocol, config.ratio, config.seed, config.target)?;
    let selection = config.selection_metric();
    let validation = if tune && models.iter().any(|(_, grid)| grid.len() > 1) {
        Some(validation_split(&split.train, config.validation_ratio, config.seed.wrapping_add(1))?)
    } else {
        None
    };
    let empty_grid = [Value::Object(Default::default())];
    let mut results = Vec::new();
    for (name, grid) in models {
        let grid = if grid.is_empty() { &empty_grid[..] } else { grid.as_slice() };
        let (points, tuning) = match &validation {
            Some(validation) if grid.len() > 1 => {
                let mut tried = Vec::with_capacity(grid.len());
                for params in grid {
                    let started = Instant::now();
                    let model = trainer(name, params, &validation.train)?;
                    let train_seconds = started.elapsed().as_secs_f64();
                    let score = evaluate(validation, model.as_ref(), &config.ks[..1]).get(&selection).unwrap_or(0.0);
                    tracing::info!(model = %name, params = %params, score, "tuning point");
                    tried.push(TuningPoint { params: params.clone(), train_seconds, score });
                }
                let mut best = 0;
                for (k, point) in tried.iter().enumerate() {
                    if point.score > tried[best].score {
                        best = k;
                    }
                }
                (vec![grid[best].clone()], tried)
            }
            _ => (grid.to_vec(), Vec::new()),
        };
        for params in points {
            let meter = peak_memory::Meter::start();
            let started = Instant::now();
            let model = trainer(name, &params, &split.train)?;
            let train_seconds = started.elapsed().as_secs_f64();
            let peak_memory_bytes = meter.finish();
            let started = Instant::now();
            let metrics = evaluate(&split, model.as_ref(), &config.ks);
            let eval_seconds = started.elapsed().as_secs_f64();
            tracing::info!(model = %name, params = %params, train_seconds, eval_seconds, "evaluated");
            results.push(ModelResult {
                model: name.clone(),
                params,
                train_seconds,
                eval_seconds,
                peak_memory_bytes,
                tuning: tuning.clone(),
                eval_users: metrics.users,
                metrics,
            });
        }
    }
    Ok(EvalReport {
        protocol: config.protocol,
        dataset: DatasetSummary { name: data.name.clone(), counts: split.counts.clone() },
        ratio: config.ratio,
        seed: config.seed,
        ks: config.ks.clone(),
        target: config.target,
        tuned_on: tune.then_some(selection),
        results,
    })
}

impl EvalReport {
    /// A plain-text table: one column per result, one row per metric.
    pub fn table(&self) -> String {
        let c = &self.dataset.counts;
        let mut out = format!(
            "protocol {}{} on {}: {} users, {} items, {} train, {} test pairs, {} evaluated users, {} candidate items\n",
            self.protocol,
            self.target.map_or(String::new(), |t| format!(" (target {t})")),
            if self.dataset.name.is_empty() { "(unnamed)" } else { &self.dataset.name },
            c.users,
            c.items,
            c.train,
            c.test,
            c.eval_users,
            c.candidate_items
        );
        let mut rows: Vec<(String, Vec<String>)> = vec![
            ("model".to_string(), self.results.iter().map(|r| r.model.clone()).collect()),
            ("params".to_string(), self.results.iter().map(|r| compact(&r.params)).collect()),
            ("train_seconds".to_string(), self.results.iter().map(|r| format!("{:.3}", r.train_seconds)).collect()),
            ("eval_seconds".to_string(), self.results.iter().map(|r| format!("{:.3}", r.eval_seconds)).collect()),
            (
                "peak_memory_mib".to_string(),
                self.results
                    .iter()
                    .map(|r| r.peak_memory_bytes.map_or("-".to_string(), |b| format!("{:.1}", b as f64 / 1048576.0)))
                    .collect(),
            ),
        ];
        if let Some(first) = self.results.first() {
            for (name, _) in first.metrics.iter() {
                let values = self
                    .results
                    .iter()
                    .map(|r| r.metrics.get(name).map_or("-".to_string(), |v| format!("{v:.4}")))
                    .collect();
                rows.push((name.to_string(), values));
            }
        }
        let label_width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        let mut widths = vec![0usize; self.results.len()];
        for (_, values) in &rows {
            for (w, v) in widths.iter_mut().zip(values) {
                *w = (*w).max(v.chars().count());
            }
        }
        for (label, values) in &rows {
            let _ = write!(out, "{label:<label_width$}");
            for (w, v) in widths.iter().zip(values) {
                let _ = write!(out, "  {v:>w$}");
            }
            out.push('\n');
        }
        out
    }
}

/// Parameters on one line, long ones shortened for the table.
fn compact(params: &Value) -> String {
    let text = params.to_string();
    if text.chars().count() <= 40 {
        text
    } else {
        format!("{}…", text.chars().take(39).collect::<String>())
    }
}

/// Peak resident memory during training, read cheaply from the kernel.
///
/// On Linux the meter reads `VmRSS` and `VmHWM` (the process's peak resident set) from the
/// process status before training, asks the kernel to reset the peak (writing `5` to the
/// process's `clear_refs`, allowed for one's own process), and reports `VmHWM` after
/// training minus `VmRSS` before: the most memory training held at once beyond what was
/// already resident, model included. Limitations: it is per process, so other threads'
/// allocations in the meantime count too; memory the allocator keeps but the OS has not
/// paged in does not; where the reset is refused it falls back to the growth of the old
/// peak, which is 0 when training stays below an earlier peak. Elsewhere it is `None`.
pub mod peak_memory {
    /// A measurement in progress.
    #[derive(Debug, Clone, Copy)]
    pub struct Meter {
        baseline: Option<u64>,
    }

    impl Meter {
        pub fn start() -> Self {
            let rss = read_status_kib("VmRSS:");
            let reset = reset_peak();
            let baseline = if reset { rss } else { read_status_kib("VmHWM:") };
            Meter { baseline }
        }

        /// Bytes of peak growth since [`Meter::start`].
        pub fn finish(self) -> Option<u64> {
            let peak = read_status_kib("VmHWM:")?;
            Some(peak.saturating_sub(self.baseline?) * 1024)
        }
    }

    #[cfg(target_os = "linux")]
    fn read_status_kib(key: &str) -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with(key))?;
        line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()
    }

    #[cfg(target_os = "linux")]
    fn reset_peak() -> bool {
        std::fs::write("/proc/self/clear_refs", "5").is_ok()
    }

    #[cfg(not(target_os = "linux"))]
    fn read_status_kib(_key: &str) -> Option<u64> {
        None
    }

    #[cfg(not(target_os = "linux"))]
    fn reset_peak() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::data::EvalDataBuilder;

    /// Test-only model: item `i` scores `bias[i]` for every user.
    struct Biased {
        bias: Vec<f32>,
    }

    impl Recommender for Biased {
        fn name(&self) -> &str {
            "biased"
        }

        fn score(&self, _user: Option<u32>, _history: &[(u32, f32)], scores: &mut [f32]) {
            scores.copy_from_slice(&self.bias);
        }
    }

    /// Every user has items 0..8 except one; items are liked in index order.
    fn data() -> EvalData {
        let mut b = EvalDataBuilder::default();
        for u in 0..12 {
            for i in 0..8 {
                if i != u % 8 {
                    b.add(&format!("u{u}"), &format!("i{i}"), (u * 10 + i) as i64, 1.0);
                }
            }
        }
        b.build("grid")
    }

    /// `direction` 1 ranks low item indices first, -1 high ones; anything else: all equal.
    fn trainer(name: &str, params: &Value, train: &Interactions) -> Result<Box<dyn Recommender>> {
        assert_eq!(name, "biased");
        let direction = params.get("direction").and_then(Value::as_f64).unwrap_or(0.0) as f32;
        let bias = (0..train.n_items()).map(|i| -direction * i as f32).collect();
        Ok(Box::new(Biased { bias }))
    }

    #[test]
    fn report_has_the_contract_shape() {
        let models = vec![("biased".to_string(), vec![serde_json::json!({"direction": 1})])];
        let report = run(&data(), &EvalConfig::default(), &trainer, &models, false).unwrap();
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["protocol"], "random-split");
        for key in ["users", "items", "train", "test"] {
            assert!(json["dataset"][key].is_u64(), "dataset.{key} in {json}");
        }
        assert_eq!(json["dataset"]["users"], 12);
        let result = &json["results"][0];
        assert_eq!(result["model"], "biased");
        assert_eq!(result["params"], serde_json::json!({"direction": 1}));
        assert!(result["train_seconds"].is_f64());
        for key in ["recall@10", "ndcg@10", "recall@20", "ndcg@20", "mrr", "auc", "coverage@10"] {
            assert!(result["metrics"][key].is_f64(), "metrics.{key} in {result}");
        }
        assert!(result.get("tuning").is_none());
        let table = report.table();
        assert!(table.contains("ndcg@10") && table.contains("biased") && table.contains("random-split"), "{table}");
    }

    #[test]
    fn tuning_picks_on_validation_and_reports_only_the_winner() {
        let grid =
            vec![serde_json::json!({"direction": -1}), serde_json::json!({"direction": 1}), serde_json::json!({})];
        let models = vec![("biased".to_string(), grid.clone())];
        let config = EvalConfig { ks: vec![3], ..EvalConfig::default() };
        let report = run(&data(), &config, &trainer, &models, true).unwrap();
        assert_eq!(report.tuned_on.as_deref(), Some("ndcg@3"));
        assert_eq!(report.results.len(), 1);
        let result = &report.results[0];
        assert_eq!(result.tuning.len(), 3);
        let best = result.tuning.iter().map(|p| p.score).fold(f64::MIN, f64::max);
        let winner = result.tuning.iter().find(|p| p.score == best).unwrap();
        assert_eq!(result.params, winner.params);

        // Without tuning every grid point is its own row, in grid order.
        let report = run(&data(), &config, &trainer, &models, false).unwrap();
        assert_eq!(report.results.iter().map(|r| r.params.clone()).collect::<Vec<_>>(), grid);
        assert_eq!(report.tuned_on, None);
        assert_eq!(report.table().lines().nth(1).unwrap().matches("biased").count(), 3);
    }

    #[test]
    fn bad_config_reports_every_problem() {
        let config = EvalConfig { ratio: 1.5, ks: vec![0], ..EvalConfig::default() };
        let err = run(&data(), &config, &trainer, &[], false).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("ratio") && text.contains("ks"), "{text}");
        let config: EvalConfig = serde_json::from_str(r#"{"protocol": "cold-item", "ks": [5]}"#).unwrap();
        assert_eq!((config.protocol, config.ratio), (Protocol::ColdItem, 0.8));
        assert!(serde_json::from_str::<EvalConfig>(r#"{"k": [5]}"#).is_err());
    }

    #[test]
    fn every_protocol_runs_end_to_end() {
        let models = vec![("biased".to_string(), vec![serde_json::json!({"direction": 1})])];
        for protocol in Protocol::ALL.into_iter().filter(|p| *p != Protocol::SplitDir) {
            let config = EvalConfig { protocol, ks: vec![2], ..EvalConfig::default() };
            let report = run(&data(), &config, &trainer, &models, false).unwrap();
            assert!(report.dataset.counts.eval_users > 0, "{protocol}");
            let m = &report.results[0].metrics;
            for (name, value) in m.iter() {
                assert!(value.is_finite() && value >= 0.0, "{protocol} {name} = {value}");
            }
        }
    }

    #[test]
    fn memory_meter_reads_something_on_linux() {
        let meter = peak_memory::Meter::start();
        let block = vec![1u8; 8 << 20];
        std::hint::black_box(&block);
        let grown = meter.finish();
        if cfg!(target_os = "linux") {
            assert!(grown.is_some());
        }
    }
}
