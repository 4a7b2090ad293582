//! The learned ranker in serving: what it needs, how it learns from the shop's own logs, and
//! when a new one may replace the one serving.
//!
//! - **Feature log.** When a list is served, the feature rows of the items shown are
//!   appended to `DATA_DIR/rank/features.jsonl` under the response's request id, exactly as
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
//!   them replaces LambdaMART only when its NDCG@10 on the later window is higher. Every
//!   learner's figure is in the report.
//! - **Promotion gate.** On the later window, the new model's order of each logged list must
//!   beat the order that was shown, and the current ranker's order when there is one, by
//!   DCG@10 with each logged grade divided by its slot's examination probability
//!   ([`GateMeasure::IpwDcg`]; NDCG@10 when exploration logged too little to estimate it).
//!   Otherwise the current ranker keeps serving. NDCG@10 is reported beside it.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::model::EventType;
use crate::rank::features::{ItemStats, FEATURES, FEATURE_COUNT};
use crate::rank::gbdt::{Dataset, GbdtParams};
use crate::rank::join::{examination_propensities, join_impressions, LabeledImpression};
use crate::rank::learners::{Learner, LearnerSettings, RankModel};
use crate::rank::metrics::{dcg_of_order, ndcg_of_order};
use crate::rank::online::OnlineConfig;
use crate::rank::profile::PriceIndex;
use crate::store::Storage;
use crate::{Error, Result};

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
            log_max_mb: 64,
            log_files: 4,
            log_max_age_hours: 24 * 7,
            sentiment_head: String::new(),
            review_texts_per_training: super::review_sentiment::DEFAULT_BUDGET,
            gbdt: GbdtParams::default(),
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

/// Identifies the feature schema; rows logged under another are not trained on.
pub fn schema() -> u64 {
    xxhash_rust::xxh3::xxh3_64(FEATURES.join(",").as_bytes())
}

#[derive(Serialize, Deserialize)]
struct LoggedRow {
    schema: u64,
    request: String,
    item: String,
    /// `null` for a missing value.
    features: Vec<Option<f32>>,
}

/// Append-only log of served feature rows, rotated by size: `features.jsonl` is the
/// current file, `features.jsonl.1` the one before, up to `files − 1` rotated files; a file
/// whose last write is older than `max_age` is deleted (checked at most once a minute, by
/// the appends and by [`FeatureLog::prune`]).
pub struct FeatureLog {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
    /// Rotate when the current file reaches this many bytes…
    max_bytes: u64,
    /// …keeping this many files in all…
    files: usize,
    /// …none older than this.
    max_age: Duration,
    /// When the files' ages were last checked.
    pruned: Mutex<Option<Instant>>,
}

/// How often the appends check the files' ages.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

impl std::fmt::Debug for FeatureLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureLog").field("path", &self.path).finish()
    }
}

impl FeatureLog {
    /// The recommendation pages' log under a data directory (created on first append).
    pub fn in_data_dir(data_dir: &Path) -> FeatureLog {
        let defaults = RankConfig::default();
        FeatureLog {
            path: crate::store::DataDir::new(data_dir).feature_log(),
            file: Mutex::new(None),
            max_bytes: defaults.log_max_mb << 20,
            files: defaults.log_files,
            max_age: Duration::from_secs(defaults.log_max_age_hours * 3_600),
            pruned: Mutex::new(None),
        }
    }

    /// Rotate at `max_bytes`, keeping `files` files.
    pub fn with_limits(mut self, max_bytes: u64, files: usize) -> FeatureLog {
        self.max_bytes = max_bytes.max(1);
        self.files = files.max(1);
        self
    }

    /// Delete files whose last write is older than `max_age`.
    pub fn with_max_age(mut self, max_age: Duration) -> FeatureLog {
        self.max_age = max_age;
        self
    }

    /// Delete every file of this log whose last write is older than the age limit; returns
    /// how many went. The current file goes too when nothing was logged for that long.
    pub fn prune(&self) -> Result<usize> {
        let mut file = self.file.lock();
        *self.pruned.lock() = Some(Instant::now());
        let now = std::time::SystemTime::now();
        let mut removed = 0;
        for n in 0..self.files.max(1) {
            let path = self.rotated(n);
            let modified = match std::fs::metadata(&path).and_then(|m| m.modified()) {
                Ok(modified) => modified,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))),
            };
            if now.duration_since(modified).unwrap_or_default() > self.max_age {
                if n == 0 {
                    *file = None;
                }
                fs_err::remove_file(&path)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// [`FeatureLog::prune`], unless the ages were checked within the last minute.
    pub fn prune_if_due(&self) -> Result<usize> {
        if self.pruned.lock().is_none_or(|at| at.elapsed() >= PRUNE_INTERVAL) {
            self.prune()
        } else {
            Ok(0)
        }
    }

    /// The `n`-th rotated file (0: the current one).
    fn rotated(&self, n: usize) -> PathBuf {
        if n == 0 {
            return self.path.clone();
        }
        let mut name = self.path.as_os_str().to_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// Shift every file one place older, deleting the oldest (the current file is closed).
    fn rotate(&self) -> Result<()> {
        let oldest = self.rotated(self.files - 1);
        if self.files == 1 {
            return Ok(fs_err::remove_file(oldest)?);
        }
        match std::fs::remove_file(&oldest) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        for n in (0..self.files - 1).rev() {
            let from = self.rotated(n);
            if from.exists() {
                fs_err::rename(&from, self.rotated(n + 1))?;
            }
        }
        Ok(())
    }

    /// The search pages' log under a data directory: their rows describe other recall
    /// stages (keyword, vector), so the search ranker learns from them alone.
    pub fn search_in_data_dir(data_dir: &Path) -> FeatureLog {
        FeatureLog::in_data_dir(data_dir).for_search()
    }

    /// The search pages' log in the same directory as this one.
    pub fn for_search(&self) -> FeatureLog {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        FeatureLog {
            path: dir.join(crate::store::DataDir::SEARCH_FEATURE_LOG),
            file: Mutex::new(None),
            max_bytes: self.max_bytes,
            files: self.files,
            max_age: self.max_age,
            pruned: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append the rows of one response. Written without fsync: a crash loses at most the
    /// newest training rows, never stored events. A disk that refuses the rows is
    /// `disk_full` or `storage_unavailable`; a partly written line is skipped by the reader,
    /// and the next append starts on a line of its own.
    pub fn append(&self, request: &str, rows: &[(String, Vec<f32>)]) -> Result<()> {
        self.write_rows(request, rows).map_err(|e| crate::store::refused_write(e, "the feature rows"))
    }

    fn write_rows(&self, request: &str, rows: &[(String, Vec<f32>)]) -> Result<()> {
        let mut text = Vec::new();
        for (item, features) in rows {
            let row = LoggedRow {
                schema: schema(),
                request: request.to_string(),
                item: item.clone(),
                features: features.iter().map(|v| v.is_finite().then_some(*v)).collect(),
            };
            serde_json::to_writer(&mut text, &row).map_err(|e| Error::Internal(format!("encoding features: {e}")))?;
            text.push(b'\n');
        }
        self.prune_if_due()?;
        let mut file = self.file.lock();
        if file.is_none() {
            if let Some(parent) = self.path.parent() {
                fs_err::create_dir_all(parent)?;
            }
            let mut opened =
                fs_err::OpenOptions::new().create(true).read(true).append(true).open(&self.path)?.into_parts().0;
            // A line torn by a crash is closed, so the next row starts on its own line.
            let length = opened.metadata()?.len();
            if length > 0 {
                use std::io::{Read, Seek, SeekFrom};
                let mut last = [0u8; 1];
                opened.seek(SeekFrom::Start(length - 1))?;
                opened.read_exact(&mut last)?;
                if last[0] != b'\n' {
                    opened.write_all(b"\n")?;
                }
            }
            *file = Some(opened);
        }
        if let Some(open) = file.as_mut() {
            open.write_all(&text)?;
            if open.metadata()?.len() >= self.max_bytes {
                *file = None;
                self.rotate()?;
            }
        }
        Ok(())
    }

    /// Every row of the current schema by (request, item). A torn or foreign line (a crash
    /// mid-write, an older schema) is skipped.
    pub fn read(&self) -> Result<HashMap<(String, String), Vec<f32>>> {
        let mut rows = HashMap::new();
        let expected = schema();
        // Oldest first, so a newer row of the same page and item wins.
        for n in (0..self.files).rev() {
            let file = match std::fs::File::open(self.rotated(n)) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            for line in BufReader::new(file).lines() {
                let line = line?;
                let Ok(row) = serde_json::from_str::<LoggedRow>(&line) else { continue };
                if row.schema != expected || row.features.len() != FEATURE_COUNT {
                    continue;
                }
                rows.insert((row.request, row.item), row.features.into_iter().map(|v| v.unwrap_or(f32::NAN)).collect());
            }
        }
        Ok(rows)
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

/// Which of the learners' models serves: LambdaMART's (the first) unless another's gate
/// measure on the later window is higher; among those, the highest (the earliest on a tie).
pub fn choose_learner(scores: &[LearnerScore]) -> usize {
    let mut best = 0;
    for (i, score) in scores.iter().enumerate().skip(1) {
        if score.gate > scores[best].gate {
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
    let chosen = choose_learner(&scores);
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
        let score = |learner, gate| LearnerScore { learner, ndcg: 0.0, gate, size: 1, train_seconds: 0.0 };
        // LambdaMART alone, or challengers no better (a tie keeps LambdaMART).
        assert_eq!(choose_learner(&[score(Learner::LambdaMart, 0.5)]), 0);
        let tied = [score(Learner::LambdaMart, 0.5), score(Learner::Ftrl, 0.5), score(Learner::Mlp, 0.49)];
        assert_eq!(choose_learner(&tied), 0);
        // The best challenger above LambdaMART.
        let better = [score(Learner::LambdaMart, 0.5), score(Learner::Ftrl, 0.52), score(Learner::Mlp, 0.55)];
        assert_eq!(choose_learner(&better), 2);
        let first = [score(Learner::LambdaMart, 0.5), score(Learner::Ftrl, 0.55), score(Learner::Mlp, 0.55)];
        assert_eq!(choose_learner(&first), 1);
        // Reports written before challengers existed read as LambdaMART's.
        let old = r#"{"trained_at_ms":1,"requests":2,"requests_with_clicks":2,"rows":4,"propensities":null,
            "holdout_requests":1,"ndcg_model":0.5,"ndcg_logged":0.4,"ndcg_current":null,"trees":3,"promoted":true}"#;
        let report: RankerReport = serde_json::from_str(old).unwrap();
        assert_eq!(report.learner, Learner::LambdaMart);
        assert!(report.learners.is_empty());
    }

    #[test]
    fn the_feature_log_rotates_by_size_and_keeps_only_its_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = FeatureLog::in_data_dir(dir.path()).with_limits(4_096, 3);
        let row = vec![0.25f32; FEATURE_COUNT];
        for request in 0..400 {
            log.append(&format!("r{request}"), &[("a".into(), row.clone())]).unwrap();
        }
        let files: Vec<(String, u64)> = std::fs::read_dir(log.path().parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().to_string_lossy().to_string(), e.metadata().unwrap().len()))
            .collect();
        assert_eq!(files.len(), 3, "{files:?}");
        let one_row = serde_json::to_vec(&LoggedRow {
            schema: schema(),
            request: "r399".into(),
            item: "a".into(),
            features: row.iter().map(|v| Some(*v)).collect(),
        })
        .unwrap()
        .len() as u64
            + 1;
        assert!(files.iter().all(|(_, bytes)| *bytes < 4_096 + one_row), "{files:?}");
        // The newest pages are read back (from every kept file); the oldest were pruned.
        let rows = log.read().unwrap();
        assert!(rows.contains_key(&("r399".to_string(), "a".to_string())));
        assert!(!rows.contains_key(&("r0".to_string(), "a".to_string())));
        let kept = rows.len() as u64;
        assert!(kept > 2 * 4_096 / one_row && kept <= 3 * (4_096 / one_row + 1), "{kept}");
        // The search log beside it rotates the same way.
        assert_eq!(log.for_search().max_bytes, 4_096);
    }

    #[test]
    fn feature_log_files_older_than_the_age_limit_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let day = Duration::from_secs(86_400);
        let log = FeatureLog::in_data_dir(dir.path()).with_limits(2_048, 3).with_max_age(day);
        let row = vec![0.5f32; FEATURE_COUNT];
        for request in 0..60 {
            log.append(&format!("r{request}"), &[("a".into(), row.clone())]).unwrap();
        }
        let rotated = log.rotated(1);
        assert!(rotated.exists() && log.path().exists());
        let age = |path: &Path, ago: Duration| {
            let file = std::fs::File::options().write(true).open(path).unwrap();
            file.set_modified(std::time::SystemTime::now() - ago).unwrap();
        };
        // A rotated file last written two days ago goes; one written within the day stays.
        age(&rotated, 2 * day);
        age(&log.rotated(2), day / 2);
        assert_eq!(log.prune().unwrap(), 1);
        assert!(!rotated.exists() && log.rotated(2).exists() && log.path().exists());
        // Nothing logged for longer than the limit: the current file goes too, and the
        // next append starts it afresh.
        age(log.path(), 3 * day);
        age(&log.rotated(2), 3 * day);
        assert_eq!(log.prune().unwrap(), 2);
        assert!(!log.path().exists() && !log.rotated(2).exists());
        log.append("fresh", &[("a".into(), row.clone())]).unwrap();
        let rows = log.read().unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows.contains_key(&("fresh".to_string(), "a".to_string())));
        // The age limit is configured with the sizes, and checked.
        let problems = RankConfig { log_max_age_hours: 0, ..RankConfig::default() }.problems();
        assert!(problems.iter().any(|(key, _)| key == "rank.log_max_age_hours"), "{problems:?}");
    }

    #[test]
    fn the_feature_log_round_trips_rows_and_skips_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = FeatureLog::in_data_dir(dir.path());
        assert!(log.read().unwrap().is_empty());
        let mut row = vec![0.5f32; FEATURE_COUNT];
        row[3] = f32::NAN;
        log.append("r1", &[("a".into(), row.clone()), ("b".into(), vec![1.0; FEATURE_COUNT])]).unwrap();
        // A crash mid-line, and a row of another schema.
        let mut file = std::fs::OpenOptions::new().append(true).open(log.path()).unwrap();
        file.write_all(b"{\"schema\":1,\"request\":\"r2\",\"item\":\"c\",\"features\":[]}\n{\"schema\":").unwrap();
        drop(file);
        // A new writer (after the crash) starts on a fresh line.
        let reopened = FeatureLog::in_data_dir(dir.path());
        reopened.append("r3", &[("d".into(), vec![2.0; FEATURE_COUNT])]).unwrap();
        let rows = log.read().unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[&("r3".to_string(), "d".to_string())][0], 2.0);
        let a = &rows[&("r1".to_string(), "a".to_string())];
        assert!(a[3].is_nan());
        assert_eq!(a[0], 0.5);
    }
}
