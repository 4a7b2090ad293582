//! The online click model: FTRL-Proximal logistic regression ([`super::ftrl`]) updated from
//! the event stream while the server runs, between the ranker's trainings.
//!
//! Examples come from logged pages: a page that logged its feature rows registers its shown
//! items with [`OnlineClickModel::observe_page`]; clicks that carry the page's `request_id`
//! mark items with [`OnlineClickModel::observe_click`]. A page waits `window_ms` for its
//! clicks (delayed feedback), then [`OnlineClickModel::flush`] turns each of its items into
//! one example — clicked or not — and takes one FTRL step on it. Pages beyond `max_pending`
//! are flushed early, oldest first, so memory stays bounded.
//!
//! Features ([`click_features`]): the item, the page's surface, the slot, and every dense
//! ranker feature bucketed on an `asinh` scale, each crossed with nothing (a wide linear
//! model over one-hot buckets). Position is learned as a feature and predictions are made
//! at slot 1 ("position-bias aware learning", Guo et al. 2019): the slot explains what it
//! can of a click, so the rest of the weights describe the item and the context.
//!
//! The prediction is itself a ranker feature (`online_ctr`): feature rows log it as served,
//! so the gradient-boosted ranker learns how far to trust it, and between trainings it moves
//! with every click.
//!
//! Persistence: [`OnlineClickModel::save`] writes the model's artifact to a temporary file
//! and renames it over the previous one, so a crash leaves the old or the new state, never a
//! torn file. Pages still waiting for clicks are not persisted (at most `window_ms` of
//! examples is lost on a restart).

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::rank::ftrl::{Feature, FeatureHasher, FtrlModel, FtrlParams};
use crate::rank::schema::FEATURES;
use crate::{Error, Result};

/// Settings of the online click model (`[rank.online]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnlineConfig {
    /// Learn online at all.
    pub enabled: bool,
    /// How long a page waits for its clicks before its examples are learned (ms).
    pub window_ms: i64,
    /// Pages waiting at most; older ones are learned early.
    pub max_pending: usize,
    /// The learner (hashed into `2^bits` coordinates).
    pub ftrl: FtrlParams,
}

impl Default for OnlineConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_ms: 300_000,
            max_pending: 100_000,
            ftrl: FtrlParams { bits: 20, ..FtrlParams::default() },
        }
    }
}

impl OnlineConfig {
    /// Problems as (field, message), empty when valid.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if !(0..=86_400_000).contains(&self.window_ms) {
            problems.push(("window_ms".into(), format!("expected 0..=86400000, found {}", self.window_ms)));
        }
        if !(1..=10_000_000).contains(&self.max_pending) {
            problems.push(("max_pending".into(), format!("expected 1..=10000000, found {}", self.max_pending)));
        }
        problems.extend(self.ftrl.problems());
        problems
    }
}

/// One shown page waiting for its clicks.
struct PendingPage {
    request_id: String,
    shown_at: i64,
    /// (item, features) in slot order.
    items: Vec<(String, Vec<Feature>)>,
}

#[derive(Default)]
struct Pending {
    pages: VecDeque<PendingPage>,
    /// Request ids of the waiting pages.
    waiting: HashSet<String>,
    /// Clicked items per waiting request.
    clicks: HashMap<String, HashSet<String>>,
}

impl Pending {
    /// Take the oldest page and its clicks.
    fn pop(&mut self) -> Option<(PendingPage, HashSet<String>)> {
        let page = self.pages.pop_front()?;
        self.waiting.remove(&page.request_id);
        let clicks = self.clicks.remove(&page.request_id).unwrap_or_default();
        Some((page, clicks))
    }
}

/// What the model has learned so far, for stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct OnlineStats {
    pub examples: u64,
    pub clicks: u64,
    pub pending_pages: usize,
    /// Mean log loss of the last examples, each predicted before its own step
    /// (progressive validation), over an exponential window of about 10,000 examples.
    pub recent_log_loss: Option<f64>,
}

/// See the module docs.
pub struct OnlineClickModel {
    config: OnlineConfig,
    model: Mutex<(FtrlModel, OnlineStats)>,
    pending: Mutex<Pending>,
}

impl std::fmt::Debug for OnlineClickModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnlineClickModel").field("config", &self.config).finish_non_exhaustive()
    }
}

/// The bucket of a dense feature value: NaN apart, then `round(4·asinh(v))`, which
/// resolves small values finely and large ones (counts, prices) on a log scale.
fn bucket(value: f32) -> i32 {
    if value.is_nan() {
        i32::MIN
    } else {
        (4.0 * value.asinh()).round().clamp(-200.0, 200.0) as i32
    }
}

/// The click model's features of `item` shown on `surface` in `slot` (1-based) with the
/// ranker's dense `row` (in [`FEATURES`] order; the `online_ctr` entry itself is skipped).
pub fn click_features(surface: &str, slot: usize, item: &str, row: &[f32]) -> Vec<Feature> {
    let mut hasher = FeatureHasher::default();
    let mut features = Vec::with_capacity(row.len() + 3);
    features.push(hasher.categorical("item", item));
    features.push(hasher.categorical("surface", surface));
    features.push(hasher.categorical("slot", slot.min(50)));
    for (name, &value) in FEATURES.iter().zip(row) {
        if *name != ONLINE_FEATURE {
            features.push(hasher.categorical(name, bucket(value)));
        }
    }
    features
}

/// The ranker feature that carries this model's prediction.
pub const ONLINE_FEATURE: &str = "online_ctr";

/// The click rate a new model predicts before it has learned anything.
const START_RATE: f64 = 0.05;

/// The slot features are replaced with at prediction (position-bias aware learning).
const PREDICTION_SLOT: usize = 1;

impl OnlineClickModel {
    pub fn new(config: OnlineConfig) -> Result<Self> {
        let mut model = FtrlModel::new(config.ftrl.clone())?;
        // A new model starts at a typical page's click rate rather than at one half.
        model.start_intercept_at(START_RATE);
        Ok(Self { config, model: Mutex::new((model, OnlineStats::default())), pending: Mutex::new(Pending::default()) })
    }

    /// The model saved at `path` if there is one (and it was made with these parameters),
    /// else a new one.
    pub fn open(config: OnlineConfig, path: &Path) -> Result<Self> {
        let online = Self::new(config)?;
        match std::fs::File::open(path) {
            Ok(mut file) => {
                let model = FtrlModel::load(&mut file)?;
                if model.params() == &online.config.ftrl {
                    online.model.lock().0 = model;
                } else {
                    tracing::info!(path = %path.display(), "online click model parameters changed; starting afresh");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::from(e)),
        }
        Ok(online)
    }

    pub fn config(&self) -> &OnlineConfig {
        &self.config
    }

    /// The click probability of `item` with this `row` on `surface`, at slot 1.
    pub fn predict(&self, surface: &str, item: &str, row: &[f32]) -> f32 {
        let features = click_features(surface, PREDICTION_SLOT, item, row);
        self.model.lock().0.predict(&features) as f32
    }

    /// A page was shown: its items (in slot order) with their feature rows.
    pub fn observe_page(&self, request_id: &str, surface: &str, shown_at: i64, items: &[(String, Vec<f32>)]) {
        if !self.config.enabled || items.is_empty() {
            return;
        }
        let items = items
            .iter()
            .enumerate()
            .map(|(slot, (item, row))| (item.clone(), click_features(surface, slot + 1, item, row)))
            .collect();
        let overflow = {
            let mut pending = self.pending.lock();
            if !pending.waiting.insert(request_id.to_string()) {
                return; // the same page twice
            }
            pending.pages.push_back(PendingPage { request_id: request_id.to_string(), shown_at, items });
            let mut overflow = Vec::new();
            while pending.pages.len() > self.config.max_pending {
                overflow.extend(pending.pop());
            }
            overflow
        };
        self.learn(overflow);
    }

    /// A click on `item` from the page `request_id` (ignored unless that page is waiting).
    pub fn observe_click(&self, request_id: &str, item: &str) {
        let mut pending = self.pending.lock();
        if pending.waiting.contains(request_id) {
            pending.clicks.entry(request_id.to_string()).or_default().insert(item.to_string());
        }
    }

    /// Learn from every page shown at or before `now_ms - window_ms`; returns the number
    /// of examples learned.
    pub fn flush(&self, now_ms: i64) -> usize {
        let due = {
            let mut pending = self.pending.lock();
            let mut due = Vec::new();
            while pending.pages.front().is_some_and(|p| p.shown_at <= now_ms - self.config.window_ms) {
                due.extend(pending.pop());
            }
            due
        };
        self.learn(due)
    }

    fn learn(&self, pages: Vec<(PendingPage, HashSet<String>)>) -> usize {
        if pages.is_empty() {
            return 0;
        }
        let mut guard = self.model.lock();
        let (model, stats) = &mut *guard;
        let mut learned = 0;
        for (page, clicks) in pages {
            for (item, features) in &page.items {
                let clicked = clicks.contains(item);
                let p = model.update(features, clicked, 1.0).clamp(1e-7, 1.0 - 1e-7);
                let loss = -(if clicked { p } else { 1.0 - p }).ln();
                stats.recent_log_loss = Some(match stats.recent_log_loss {
                    Some(mean) => mean + (loss - mean) / 10_000f64.min(stats.examples as f64 + 1.0),
                    None => loss,
                });
                stats.examples += 1;
                stats.clicks += u64::from(clicked);
                learned += 1;
            }
        }
        learned
    }

    pub fn stats(&self) -> OnlineStats {
        let stats = self.model.lock().1;
        OnlineStats { pending_pages: self.pending.lock().pages.len(), ..stats }
    }

    /// Write the model to `path` (through a temporary file and a rename). A disk that
    /// refuses it is `disk_full` or `storage_unavailable`.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.write_to(path).map_err(|e| crate::store::refused_write(e, "the online click model"))
    }

    fn write_to(&self, path: &Path) -> Result<()> {
        let mut bytes = Vec::new();
        self.model.lock().0.save(&mut bytes)?;
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent)?;
        }
        let temporary: PathBuf = path.with_extension("tmp");
        {
            use std::io::Write;
            let mut file = fs_err::File::create(&temporary)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
        }
        fs_err::rename(&temporary, path)?;
        Ok(())
    }

    /// Check the model saved at `path` — its format version and checksum (the artifact
    /// format's) — without keeping it: `Ok(false)` when none is saved, the damage as an
    /// error otherwise (`souk verify`).
    pub fn verify_saved(path: &Path) -> Result<bool> {
        match std::fs::File::open(path) {
            Ok(file) => {
                FtrlModel::load(&mut std::io::BufReader::new(file)).map_err(|e| match e {
                    Error::Corrupt { message, .. } => Error::Corrupt { path: path.to_path_buf(), message },
                    other => other,
                })?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))),
        }
    }

    /// Where a data directory keeps the model.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        crate::store::DataDir::new(data_dir).online_model()
    }

    /// The model's file beside the feature logs in `dir` (`DATA_DIR/rank`).
    pub fn path_in_log_dir(dir: &Path) -> PathBuf {
        dir.join(crate::store::DataDir::ONLINE_MODEL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rank::features::FEATURE_COUNT;

    #[test]
    fn a_saved_model_is_checked_by_its_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let path = OnlineClickModel::path_in(dir.path());
        assert!(!OnlineClickModel::verify_saved(&path).unwrap(), "none saved yet");
        OnlineClickModel::new(OnlineConfig::default()).unwrap().save(&path).unwrap();
        assert!(OnlineClickModel::verify_saved(&path).unwrap());
        let mut bytes = fs_err::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        fs_err::write(&path, &bytes).unwrap();
        let error = OnlineClickModel::verify_saved(&path).unwrap_err();
        assert!(matches!(&error, Error::Corrupt { path: p, .. } if p == &path), "{error}");
    }

    fn row(quality: f32) -> Vec<f32> {
        let mut row = vec![0.0; FEATURE_COUNT];
        row[0] = quality;
        row
    }

    /// Items that are clicked more get a higher click probability, learned only from pages
    /// whose feedback window has closed, and position is learned apart from the item.
    #[test]
    fn learns_from_pages_after_their_window() {
        let config = OnlineConfig { window_ms: 1_000, ..OnlineConfig::default() };
        let online = OnlineClickModel::new(config).unwrap();
        let before = online.predict("recs", "good", &row(1.0));
        for page in 0..400 {
            let id = format!("r{page}");
            // Alternate the order so "good" is clicked from either slot.
            let items = if page % 2 == 0 {
                vec![("good".to_string(), row(1.0)), ("bad".to_string(), row(0.0))]
            } else {
                vec![("bad".to_string(), row(0.0)), ("good".to_string(), row(1.0))]
            };
            online.observe_page(&id, "recs", page * 10, &items);
            online.observe_click(&id, "good");
            if page % 3 == 0 {
                online.observe_click(&id, "bad");
            }
        }
        // A click for a page that is not waiting changes nothing.
        online.observe_click("unknown", "bad");
        assert_eq!(online.flush(1_000), 2, "only the page shown at 0 (two examples) is due at 1,000 ms");
        assert_eq!(online.stats().pending_pages, 399);
        let learned = online.flush(1_000_000);
        assert_eq!(learned, 399 * 2);
        let stats = online.stats();
        assert_eq!(stats.examples, 800);
        assert_eq!(stats.clicks, 400 + 134);
        assert_eq!(stats.pending_pages, 0);
        let good = online.predict("recs", "good", &row(1.0));
        let bad = online.predict("recs", "bad", &row(0.0));
        assert!(good > bad + 0.2, "good {good} bad {bad} (before {before})");
        assert!(stats.recent_log_loss.is_some_and(|l| l < std::f64::consts::LN_2), "{stats:?}");
    }

    #[test]
    fn pending_pages_are_bounded_and_the_model_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = OnlineClickModel::path_in(dir.path());
        let config = OnlineConfig { max_pending: 10, ..OnlineConfig::default() };
        let online = OnlineClickModel::new(config.clone()).unwrap();
        for page in 0..25 {
            online.observe_page(&format!("r{page}"), "search", 0, &[("a".to_string(), row(0.5))]);
            online.observe_click(&format!("r{page}"), "a");
        }
        assert_eq!(online.stats().pending_pages, 10);
        assert_eq!(online.stats().examples, 15);
        online.save(&path).unwrap();
        let reopened = OnlineClickModel::open(config.clone(), &path).unwrap();
        assert_eq!(reopened.predict("search", "a", &row(0.5)), online.predict("search", "a", &row(0.5)));
        // Other parameters: a fresh model rather than a misread one.
        let other = OnlineConfig { ftrl: FtrlParams { bits: 18, ..config.ftrl.clone() }, ..config };
        let fresh = OnlineClickModel::open(other, &path).unwrap();
        let fresh = fresh.predict("search", "a", &row(0.5));
        assert!((f64::from(fresh) - START_RATE).abs() < 1e-4, "{fresh}");
        assert!((fresh - online.predict("search", "a", &row(0.5))).abs() > 0.1);
    }

    #[test]
    fn buckets_separate_scales_and_missing_values() {
        assert_eq!(bucket(0.0), 0);
        assert_ne!(bucket(0.1), bucket(0.5));
        assert_ne!(bucket(1_000.0), bucket(2_000.0));
        assert_eq!(bucket(f32::NAN), i32::MIN);
        assert!(bucket(-3.0) < 0);
    }
}
