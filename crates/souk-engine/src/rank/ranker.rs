//! The learned ranker in serving: what it needs, how it learns from the shop's own logs, and
//! when a new one may replace the one serving.
//!
//! - **Feature log** ([`super::feature_log`]). When a list is served, the feature rows of
//!   the items shown are appended under the response's request id, exactly as
//!   [`super::features::FeatureBuilder`] computed them for ranking. Training reads them
//!   back, so a model learns from the features it will be given.
//! - **Training** ([`train_from_logs`]): the store's impressions joined to the clicks, carts
//!   and purchases that followed ([`super::join`]), with their logged rows; graded labels;
//!   clicked rows weighted by the inverse examination propensity when the randomised
//!   `explore` arm logged enough traffic (else unweighted, and the report says so). The
//!   logged requests are split by time: the earlier 80% train (their last eighth for early
//!   stopping), the later 20% judge.
//! - **Learners.** LambdaMART always trains; the challengers of `[rank.learners]` (FTRL,
//!   a small neural network: [`super::learners`]) train on the same rows, and the best of
//!   them replaces LambdaMART only when the gate's measure (below) on the later window is
//!   higher. Every learner's figures are in the report.
//! - **Promotion gate.** On the later window, the new model's order of each logged list must
//!   beat the order that was shown, and the current ranker's order when there is one, by
//!   DCG@10 with each logged grade divided by its slot's examination probability
//!   ([`GateMeasure::IpwDcg`]; NDCG@10 when exploration logged too little to estimate it).
//!   Otherwise the current ranker keeps serving. NDCG@10 is reported beside it.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::model::EventType;
pub use crate::rank::feature_log::{schema, FeatureLog};
use crate::rank::feature_log::{DEFAULT_LOG_FILES, DEFAULT_LOG_MAX_AGE_HOURS, DEFAULT_LOG_MAX_MB};
use crate::rank::features::{ItemStats, FEATURES, FEATURE_COUNT};
use crate::rank::gbdt::{Dataset, GbdtParams};
use crate::rank::join::{examination_propensities, join_impressions, LabeledImpression};
use crate::rank::learners::{Learner, LearnerSettings, RankModel};
use crate::rank::metrics::{dcg_of_order, ndcg_of_order};
use crate::rank::online::OnlineConfig;
use crate::rank::profile::PriceIndex;
use crate::store::Storage;
use crate::Result;

/// Candidates the ranker orders per request, at least.
pub const RANK_WINDOW: usize = 100;
/// The arm of randomised traffic.
pub const ARM_EXPLORE: &str = "explore";
/// Clicks, carts and purchases within a day of an impression are credited to it.
pub const ATTRIBUTION_WINDOW_MS: i64 = 86_400_000;
/// Fewest logged requests with a click to train on.
pub const MIN_REQUESTS: usize = 200;

/// The `[rank]` section: the learned ranker's logging, exploration and learner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RankConfig {
    /// Log the feature rows and impressions of recommendation pages served to known users,
    /// so a ranker can learn from them (needs a training to have run once).
    pub log_features: bool,
    /// Share of those pages logged (a random sample): logging costs a feature row per
    /// shown item and an impression event.
    pub log_share: f64,
    /// Share of logged pages shown in a shuffled order (the `explore` arm), from which
    /// position bias is estimated. 0 turns exploration off (clicks are then unweighted).
    pub explore_share: f64,
    /// Exploration slots on logged pages: new and long-tail items chosen by Thompson
    /// sampling (`[rank.explore]`).
    pub explore: super::explore::ExploreSettings,
    pub gbdt: GbdtParams,
    /// The learners that challenge LambdaMART at each training.
    pub learners: LearnerSettings,
    /// The online click model, learning from logged pages between trainings.
    pub online: OnlineConfig,
    /// A feature log file is rotated when it reaches this many MiB…
    pub log_max_mb: u64,
    /// …and this many files are kept per log (the current one and the newest rotated ones;
    /// the oldest is deleted): a log never takes more than `log_max_mb × log_files` MiB.
    pub log_files: usize,
    /// A feature log file whose newest row is older than this many hours is deleted (the
    /// current one too, when nothing was logged for that long): rows older than it are of
    /// no use to training (clicks are joined within a day) and leave the disk.
    pub log_max_age_hours: u64,
    /// A review-sentiment head (JSON, from `souk eval --protocol sentiment --save-head`)
    /// for the shop's review texts; empty: learned from the shop's own rated reviews.
    pub sentiment_head: String,
    /// New review texts embedded and scored per training (the rest wait for the next).
    pub review_texts_per_training: usize,
}

impl Default for RankConfig {
    fn default() -> Self {
        Self {
            log_features: true,
            log_share: 0.1,
            explore_share: 0.05,
            explore: super::explore::ExploreSettings::default(),
            log_max_mb: DEFAULT_LOG_MAX_MB,
            log_files: DEFAULT_LOG_FILES,
            log_max_age_hours: DEFAULT_LOG_MAX_AGE_HOURS,
            sentiment_head: String::new(),
            review_texts_per_training: super::review_sentiment::DEFAULT_BUDGET,
            // Early stopping on the unbiased measure of the gate (see `GateMeasure`): on
            // simulated traffic LambdaMART's NDCG@10 rose from 0.5792 to 0.6140 (BENCHMARKS).
            gbdt: GbdtParams { eval_weighted: true, ..GbdtParams::default() },
            learners: LearnerSettings::default(),
            online: OnlineConfig::default(),
        }
    }
}

impl RankConfig {
    /// Problems with these settings, each with the offending key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems: Vec<(String, String)> =
            self.gbdt.problems().into_iter().map(|(k, m)| (format!("rank.{k}"), m)).collect();
        if !(0.0..=1.0).contains(&self.log_share) {
            problems.push(("rank.log_share".into(), format!("expected 0..=1, found {}", self.log_share)));
        }
        if !(0.0..=1.0).contains(&self.explore_share) {
            problems.push(("rank.explore_share".into(), format!("expected 0..=1, found {}", self.explore_share)));
        }
        problems.extend(self.learners.problems().into_iter().map(|(k, m)| (format!("rank.{k}"), m)));
        problems.extend(self.online.problems().into_iter().map(|(k, m)| (format!("rank.online.{k}"), m)));
        problems.extend(self.explore.problems().into_iter().map(|(k, m)| (format!("rank.explore.{k}"), m)));
        if !(1..=65_536).contains(&self.log_max_mb) {
            problems.push(("rank.log_max_mb".into(), format!("expected 1..=65536, found {}", self.log_max_mb)));
        }
        if !(1..=100).contains(&self.log_files) {
            problems.push(("rank.log_files".into(), format!("expected 1..=100, found {}", self.log_files)));
        }
        if !(1..=87_600).contains(&self.log_max_age_hours) {
            problems.push((
                "rank.log_max_age_hours".into(),
                format!("expected 1..=87600, found {}", self.log_max_age_hours),
            ));
        }
        if self.review_texts_per_training > 10_000_000 {
            problems.push((
                "rank.review_texts_per_training".into(),
                format!("expected 0..=10000000, found {}", self.review_texts_per_training),
            ));
        }
        problems
    }
}

/// What one training run found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankerReport {
    pub trained_at_ms: i64,
    /// Logged requests with feature rows, and how many had a click.
    pub requests: usize,
    pub requests_with_clicks: usize,
    pub rows: usize,
    /// Examination per slot from the `explore` arm; `None` when it logged too little (rows
    /// were then not reweighted).
    pub propensities: Option<Vec<f64>>,
    pub holdout_requests: usize,
    /// NDCG@10 on the later window: the new model, the order shown, the current ranker.
    pub ndcg_model: f64,
    pub ndcg_logged: f64,
    pub ndcg_current: Option<f64>,
    /// The new model's size: trees for LambdaMART, passes over the rows for the others.
    pub trees: usize,
    /// Whether the new model passed the gate and serves.
    pub promoted: bool,
    /// The learner of the new model: LambdaMART unless a challenger beat it.
    #[serde(default)]
    pub learner: Learner,
    /// Every learner trained, with its figures on the later window.
    #[serde(default)]
    pub learners: Vec<LearnerScore>,
    /// What the gate compares on the later window, and its values for the new model, the
    /// order shown and the current ranker.
    #[serde(default)]
    pub gate_measure: GateMeasure,
    #[serde(default)]
    pub gate_model: f64,
    #[serde(default)]
    pub gate_logged: f64,
    #[serde(default)]
    pub gate_current: Option<f64>,
}

/// What the promotion gate compares on the later window's logged lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateMeasure {
    /// DCG@10 per list with each logged grade divided by the examination probability of
    /// the slot it was shown in (from the `explore` arm), not normalised. Clicks are
    /// position-biased toward the order shown; this undoes it without bias. NDCG does not:
    /// dividing by each list's own ideal DCG cancels the weights on a list with one click,
    /// so NDCG over logged lists favours the order shown and the models that copy it.
    IpwDcg,
    /// NDCG@10 per list, labels as gains: when the `explore` arm logged too little to
    /// estimate examination.
    #[default]
    Ndcg,
}

/// One learner's model at a training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnerScore {
    pub learner: Learner,
    /// NDCG@10 on the later window.
    pub ndcg: f64,
    /// The gate's measure on the later window (what chooses the learner).
    #[serde(default)]
    pub gate: f64,
    /// Trees, or passes over the rows.
    pub size: usize,
    pub train_seconds: f64,
}

/// Which of the learners' models serves, given each one's gate measure on the later window
/// (LambdaMART's first): LambdaMART unless another's is higher; among those, the highest
/// (the earliest on a tie).
pub fn choose_learner(gates: &[f64]) -> usize {
    let mut best = 0;
    for (i, gate) in gates.iter().enumerate().skip(1) {
        if *gate > gates[best] {
            best = i;
        }
    }
    best
}

/// What feature rows are computed from besides the request: item statistics and the
/// catalog's prices, as of the last training.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FeatureContext {
    pub stats: ItemStats,
    pub prices: PriceIndex,
    /// The shop's review texts scored for sentiment (their pseudo-ratings are in `stats`).
    #[serde(default)]
    pub reviews: super::review_sentiment::ReviewSentiments,
}

impl FeatureContext {
    /// Count every logged event and read the catalog's prices.
    pub fn from_store(store: &dyn Storage) -> Result<FeatureContext> {
        let mut stats = ItemStats::new();
        store.scan_events(
            &[
                EventType::Impression,
                EventType::Click,
                EventType::View,
                EventType::AddToCart,
                EventType::Purchase,
                EventType::Favorite,
                EventType::Rating,
            ],
            &mut |event| {
                stats.observe(&event);
                Ok(())
            },
        )?;
        Ok(FeatureContext { stats, prices: PriceIndex::from_store(store)?, reviews: Default::default() })
    }
}

/// A trained ranker.
#[derive(Debug, Clone)]
pub struct Ranker {
    pub model: RankModel,
    pub report: RankerReport,
}

impl Ranker {
    /// The model's top `k` feature contributions to one row's score (see
    /// [`RankModel::contributions`]), largest magnitude first.
    pub fn top_contributions(&self, row: &[f32], k: usize) -> Vec<(String, f64)> {
        let contributions = self.model.contributions(row);
        let mut named: Vec<(String, f64)> =
            FEATURES.iter().map(|f| f.to_string()).zip(contributions.into_iter().take(FEATURE_COUNT)).collect();
        named.retain(|(_, c)| *c != 0.0);
        named.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        named.truncate(k);
        named
    }
}

/// Train a ranker from the store's impression logs and the feature log, and judge it
/// against the order shown and the `current` ranker. `Ok(None)` when there is too little
/// logged traffic (fewer than [`MIN_REQUESTS`] requests with a click).
pub fn train_from_logs(
    store: &dyn Storage,
    log: &FeatureLog,
    params: &GbdtParams,
    learners: &LearnerSettings,
    current: Option<&Ranker>,
    now_ms: i64,
) -> Result<Option<Ranker>> {
    let features = log.read()?;
    if features.is_empty() {
        return Ok(None);
    }
    // Only the events that can label a logged row are kept: impressions and clicks of the
    // logged requests, carts and purchases of their shoppers (attributed to an impression
    // shown before them, so a shopper is known by the time they arrive). Keeping every
    // event held 11M of them at 20M stored: gigabytes, during a retraining while serving.
    let requests: HashSet<&str> = features.keys().map(|(request, _)| request.as_str()).collect();
    let mut shoppers: HashSet<String> = HashSet::new();
    let mut events = Vec::new();
    store.scan_events(
        &[EventType::Impression, EventType::Click, EventType::AddToCart, EventType::Purchase],
        &mut |event| {
            let keep = match event.event_type {
                EventType::Impression | EventType::Click => {
                    event.request_id.as_deref().is_some_and(|request| requests.contains(request))
                }
                _ => shoppers.contains(event.user.as_str()),
            };
            if keep {
                if event.event_type == EventType::Impression && !shoppers.contains(event.user.as_str()) {
                    shoppers.insert(event.user.as_str().to_string());
                }
                events.push(event);
            }
            Ok(())
        },
    )?;
    let labeled: Vec<LabeledImpression> = join_impressions(&events, ATTRIBUTION_WINDOW_MS)
        .into_iter()
        .filter(|r| features.contains_key(&(r.request_id.clone(), r.item.clone())))
        .collect();
    // Requests in time order, each with its rows in slot order.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut by_request: HashMap<&str, usize> = HashMap::new();
    for (r, row) in labeled.iter().enumerate() {
        let group = *by_request.entry(row.request_id.as_str()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[group].push(r);
    }
    groups.retain(|g| g.len() >= 2 && g.iter().any(|&r| labeled[r].clicked));
    if groups.len() < MIN_REQUESTS {
        return Ok(None);
    }
    let propensities = examination_propensities(&labeled, ARM_EXPLORE, 10, 0.05)
        .filter(|_| labeled.iter().filter(|r| r.arm.as_deref() == Some(ARM_EXPLORE) && r.clicked).count() >= 100);
    let holdout_start = groups.len() - groups.len() / 5;
    let valid_start = holdout_start - holdout_start / 8;
    let dataset = |groups: &[Vec<usize>]| -> Result<Dataset> {
        let (mut rows, mut labels, mut weights, mut sizes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for group in groups {
            sizes.push(group.len() as u32);
            for &r in group {
                let row = &labeled[r];
                rows.extend_from_slice(&features[&(row.request_id.clone(), row.item.clone())]);
                labels.push(f32::from(row.grade()));
                let propensity = propensities
                    .as_ref()
                    .and_then(|p| p.get(row.position as usize).copied())
                    .filter(|_| row.clicked)
                    .unwrap_or(1.0);
                weights.push((1.0 / propensity) as f32);
            }
        }
        let names = FEATURES.iter().map(|f| f.to_string()).collect();
        Ok(Dataset::new(names, rows, labels)?.with_weights(weights)?.with_group_sizes(&sizes)?)
    };
    let train = dataset(&groups[..valid_start])?;
    let valid = dataset(&groups[valid_start..holdout_start])?;
    let mut models = Vec::new();
    for learner in std::iter::once(Learner::LambdaMart).chain(learners.challengers.iter().copied()) {
        let started = Instant::now();
        let model = RankModel::train(learner, params, learners, &train, Some(&valid))?;
        models.push((model, started.elapsed().as_secs_f64()));
    }

    // Per list: the order shown, each learner's, the current ranker's — judged by NDCG@10
    // (labels as gains) and by the gate's measure (see `GateMeasure`).
    let measure = if propensities.is_some() { GateMeasure::IpwDcg } else { GateMeasure::Ndcg };
    let mut totals = vec![[0.0f64; 2]; models.len() + 2];
    for group in &groups[holdout_start..] {
        let gains: Vec<f64> = group.iter().map(|&r| f64::from(labeled[r].grade())).collect();
        let weighted: Vec<f64> = match &propensities {
            Some(p) => group
                .iter()
                .map(|&r| {
                    let slot = labeled[r].position as usize;
                    let examined = p.get(slot).or(p.last()).copied().unwrap_or(1.0);
                    f64::from(labeled[r].grade()) / examined
                })
                .collect(),
            None => gains.clone(),
        };
        let rows: Vec<&Vec<f32>> =
            group.iter().map(|&r| &features[&(labeled[r].request_id.clone(), labeled[r].item.clone())]).collect();
        let order_by = |model: &RankModel| {
            let scores: Vec<f64> = rows.iter().map(|r| model.predict(r)).collect();
            let mut order: Vec<usize> = (0..group.len()).collect();
            order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b)));
            order
        };
        let mut orders: Vec<Vec<usize>> = vec![(0..group.len()).collect()];
        orders.extend(models.iter().map(|(model, _)| order_by(model)));
        orders.extend(current.map(|c| order_by(&c.model)));
        for (order, total) in orders.iter().zip(&mut totals) {
            total[0] += ndcg_of_order(order, &gains, 10);
            total[1] += match measure {
                GateMeasure::IpwDcg => dcg_of_order(order, &weighted, 10),
                GateMeasure::Ndcg => ndcg_of_order(order, &gains, 10),
            };
        }
    }
    let holdout = (groups.len() - holdout_start) as f64;
    let mean = |t: [f64; 2]| (t[0] / holdout, t[1] / holdout);
    let scores: Vec<LearnerScore> = models
        .iter()
        .zip(&totals[1..])
        .map(|((model, seconds), total)| LearnerScore {
            learner: model.learner(),
            ndcg: mean(*total).0,
            gate: mean(*total).1,
            size: model.size(),
            train_seconds: *seconds,
        })
        .collect();
    let chosen = choose_learner(&scores.iter().map(|s| s.gate).collect::<Vec<_>>());
    let (ndcg_model, gate_model) = (scores[chosen].ndcg, scores[chosen].gate);
    let (ndcg_logged, gate_logged) = mean(totals[0]);
    let (ndcg_current, gate_current) = match current {
        Some(_) => {
            let (ndcg, gate) = mean(totals[models.len() + 1]);
            (Some(ndcg), Some(gate))
        }
        None => (None, None),
    };
    let model = models.swap_remove(chosen).0;
    let promoted = gate_model > gate_logged && gate_current.is_none_or(|c| gate_model > c);
    Ok(Some(Ranker {
        report: RankerReport {
            trained_at_ms: now_ms,
            requests: by_request.len(),
            requests_with_clicks: groups.len(),
            rows: labeled.len(),
            propensities,
            holdout_requests: holdout as usize,
            ndcg_model,
            ndcg_logged,
            ndcg_current,
            trees: model.size(),
            promoted,
            learner: model.learner(),
            learners: scores,
            gate_measure: measure,
            gate_model,
            gate_logged,
            gate_current,
        },
        model,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenger_serves_only_when_it_beats_lambdamart_on_the_later_window() {
        // LambdaMART (first) alone, or challengers no better (a tie keeps LambdaMART).
        assert_eq!(choose_learner(&[0.5]), 0);
        assert_eq!(choose_learner(&[0.5, 0.5, 0.49]), 0);
        // The best challenger above LambdaMART.
        assert_eq!(choose_learner(&[0.5, 0.52, 0.55]), 2);
        assert_eq!(choose_learner(&[0.5, 0.55, 0.55]), 1);
        // Reports written before challengers existed read as LambdaMART's.
        let old = r#"{"trained_at_ms":1,"requests":2,"requests_with_clicks":2,"rows":4,"propensities":null,
            "holdout_requests":1,"ndcg_model":0.5,"ndcg_logged":0.4,"ndcg_current":null,"trees":3,"promoted":true}"#;
        let report: RankerReport = serde_json::from_str(old).unwrap();
        assert_eq!(report.learner, Learner::LambdaMart);
        assert!(report.learners.is_empty());
    }

    #[test]
    fn the_feature_logs_limits_are_checked() {
        let problems = RankConfig { log_max_age_hours: 0, ..RankConfig::default() }.problems();
        assert!(problems.iter().any(|(key, _)| key == "rank.log_max_age_hours"), "{problems:?}");
        let problems = RankConfig { log_files: 0, log_max_mb: 0, ..RankConfig::default() }.problems();
        assert!(problems.iter().any(|(key, _)| key == "rank.log_files"), "{problems:?}");
        assert!(problems.iter().any(|(key, _)| key == "rank.log_max_mb"), "{problems:?}");
    }
}
