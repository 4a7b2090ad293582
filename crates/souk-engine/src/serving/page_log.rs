//! The page log: which served pages are logged, the randomised `explore` arm, and what a
//! logged page writes — the events (a search and its impression, or an impression) and the
//! feature rows of the items shown, in the order shown — for the rankers and the online
//! click model to learn from. One policy for every surface; [`PageWriter`] writes logged
//! pages off the request path, in order, on one background thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::Rng;

use crate::error::Result;
use crate::ids::{EventId, ItemId, UserId};
use crate::model::{Event, EventType};
use crate::rank::online::OnlineClickModel;
use crate::rank::ranker::{FeatureLog, RankConfig};
use crate::store::{Exposure, Storage};

/// Where a page was served (the online click model keeps one model per surface).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Recommendations,
    Search,
}

impl Surface {
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Recommendations => super::SURFACE_RECOMMENDATIONS,
            Surface::Search => super::search_ranking::SURFACE_SEARCH,
        }
    }
}

/// Which policy ordered a page (stored on its impression; joins learn per arm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm {
    /// The hand-weighted fusion of the recall sources.
    Blend,
    /// The learned ranker.
    Ranker,
    /// A random permutation of the page (position bias is estimated from it).
    Explore,
    /// Trending items, before any model is trained.
    Trending,
}

impl Arm {
    pub fn as_str(self) -> &'static str {
        match self {
            Arm::Blend => "blend",
            Arm::Ranker => "ranker",
            Arm::Explore => crate::rank::ranker::ARM_EXPLORE,
            Arm::Trending => "trending",
        }
    }
}

/// Which pages are logged and which are explored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogPolicy {
    /// Share of pages whose feature rows are logged.
    pub log_share: f64,
    /// Share of logged pages served in a random order.
    pub explore_share: f64,
}

impl LogPolicy {
    pub fn of(config: &RankConfig) -> Self {
        Self {
            log_share: if config.log_features { config.log_share } else { 0.0 },
            explore_share: config.explore_share,
        }
    }

    /// Whether to log this page.
    pub fn sample(&self) -> bool {
        self.sample_with(&mut rand::thread_rng())
    }

    pub fn sample_with(&self, rng: &mut impl Rng) -> bool {
        self.log_share > 0.0 && rng.gen::<f64>() < self.log_share
    }

    /// With probability `explore_share`, shuffle the page and return the explore arm;
    /// otherwise leave it and return `arm`. Either way also the logging policy's
    /// propensity of each item at its final position (see [`LogPolicy::propensities`]).
    pub fn explore<T>(&self, items: &mut Vec<T>, arm: Arm) -> (Arm, Vec<f64>) {
        self.explore_with(items, arm, &[], &mut rand::thread_rng())
    }

    /// [`LogPolicy::explore`] of a page whose items were themselves drawn: `drawn[k]` is
    /// the probability that the item ranked `k` was put at `k`, and that it was on the page
    /// at all (empty: every item certain, `(1, 1)`).
    pub fn explore_drawn<T>(&self, items: &mut Vec<T>, arm: Arm, drawn: &[(f64, f64)]) -> (Arm, Vec<f64>) {
        self.explore_with(items, arm, drawn, &mut rand::thread_rng())
    }

    pub fn explore_with<T>(
        &self,
        items: &mut Vec<T>,
        arm: Arm,
        drawn: &[(f64, f64)],
        rng: &mut impl Rng,
    ) -> (Arm, Vec<f64>) {
        let n = items.len();
        if self.explore_share > 0.0 && rng.gen::<f64>() < self.explore_share {
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(rng);
            let mut slots: Vec<Option<T>> = items.drain(..).map(Some).collect();
            items.extend(order.iter().map(|&from| slots[from].take().expect("a permutation")));
            (Arm::Explore, self.propensities(&order, drawn))
        } else {
            (arm, self.propensities(&(0..n).collect::<Vec<_>>(), drawn))
        }
    }

    /// The probability that the logging policy — the ranked order with probability
    /// 1 − ε, a uniform shuffle otherwise (ε = `explore_share`) — puts at position `k` the
    /// item ranked `from = ranked_at[k]`: (1 − ε)·[from = k]·a + ε·b / n, where `a` is the
    /// probability that the item was ranked at `from` and `b` that it was on the page
    /// (`drawn[from]`; both 1 for an item the ranking put there for certain). The same
    /// policy serves every logged page, so explored and unexplored pages carry the same
    /// formula, and an off-policy estimate can weight any of them.
    pub fn propensities(&self, ranked_at: &[usize], drawn: &[(f64, f64)]) -> Vec<f64> {
        let n = ranked_at.len() as f64;
        let share = self.explore_share.clamp(0.0, 1.0);
        ranked_at
            .iter()
            .enumerate()
            .map(|(k, &from)| {
                let (at, on_page) = drawn.get(from).copied().unwrap_or((1.0, 1.0));
                let ranked = if from == k { (1.0 - share) * at } else { 0.0 };
                ranked + share * on_page / n
            })
            .collect()
    }
}

/// What one logged page writes.
#[derive(Debug, Clone)]
pub struct PageRecord {
    pub request_id: String,
    pub surface: Surface,
    pub timestamp: i64,
    /// The search (for search pages) and the impression (when anything was shown).
    pub events: Vec<Event>,
    /// The shown items' feature rows, in the order shown.
    pub rows: Vec<(String, Vec<f32>)>,
}

/// A served page as the log sees it.
#[derive(Debug, Clone, Copy)]
pub struct Served<'a> {
    pub surface: Surface,
    pub request_id: &'a str,
    pub user: &'a UserId,
    /// The items shown, in page order.
    pub shown: &'a [&'a str],
    pub arm: Option<Arm>,
    /// The logging policy's propensity of each shown item at its position (parallel to
    /// `shown`; empty when the page was not ordered by a known policy).
    pub propensities: &'a [f64],
    /// The query of a search page.
    pub query: Option<&'a str>,
}

/// The record of a served page; `rows` are the feature rows the page computed (any order;
/// items without a row are left out of the rows).
pub fn record(page: Served<'_>, rows: &[(String, Vec<f32>)], now_ms: i64) -> PageRecord {
    let Served { surface, request_id, user, shown, arm, propensities, query } = page;
    let parsed: Vec<(ItemId, Option<f64>)> = shown
        .iter()
        .enumerate()
        .filter_map(|(k, id)| ItemId::parse(*id, "id").ok().map(|id| (id, propensities.get(k).copied())))
        .collect();
    let complete = parsed.iter().all(|(_, p)| p.is_some_and(|p| p > 0.0 && p <= 1.0));
    let item_propensities: Vec<f64> =
        if complete { parsed.iter().filter_map(|(_, p)| *p).collect() } else { Vec::new() };
    let items: Vec<ItemId> = parsed.into_iter().map(|(id, _)| id).collect();
    let mut events = Vec::with_capacity(2);
    if let (Some(query), Ok(id)) = (query, EventId::parse(format!("{request_id}:search"), "id")) {
        let mut search = Event::new(id, EventType::Search, user.clone(), None, now_ms);
        search.query = Some(query.to_string());
        search.items = items.clone();
        search.request_id = Some(request_id.to_string());
        events.push(search);
    }
    if !items.is_empty() {
        if let Ok(id) = EventId::parse(format!("{request_id}:impression"), "id") {
            let mut impression = Event::new(id, EventType::Impression, user.clone(), None, now_ms);
            impression.items = items;
            impression.propensities = item_propensities;
            impression.request_id = Some(request_id.to_string());
            impression.arm = arm.map(|a| a.as_str().to_string());
            events.push(impression);
        }
    }
    let by_item: std::collections::HashMap<&str, &Vec<f32>> = rows.iter().map(|(id, row)| (id.as_str(), row)).collect();
    let rows = shown.iter().filter_map(|id| by_item.get(id).map(|row| (id.to_string(), (*row).clone()))).collect();
    PageRecord { request_id: request_id.to_string(), surface, timestamp: now_ms, events, rows }
}

impl PageRecord {
    /// Let the online click model wait for this page's clicks (at once, before the write).
    pub fn observe(&self, online: &OnlineClickModel) {
        if !self.rows.is_empty() {
            online.observe_page(&self.request_id, self.surface.as_str(), self.timestamp, &self.rows);
        }
    }

    /// Write the feature rows (when a log is given and there are any) and the events.
    /// Blocking IO: run it off the request path.
    pub fn write(self, store: &dyn Storage, log: Option<&FeatureLog>) -> Result<()> {
        if let Some(log) = log.filter(|_| !self.rows.is_empty()) {
            log.append(&self.request_id, &self.rows)?;
        }
        if !self.events.is_empty() {
            store.append_events(self.events)?;
        }
        Ok(())
    }
}

/// A fresh request id for a served page (`r-` and 16 hex digits).
pub fn new_request_id() -> String {
    format!("r-{:016x}", rand::thread_rng().gen::<u64>())
}

/// The wall clock in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Logged pages waiting for the writer, at most (more are dropped and counted: logging
/// never delays a page, and never grows memory without bound).
pub const WRITER_QUEUE: usize = 4_096;

/// What the page writer has done since it started.
#[derive(Debug, Default)]
pub struct PageLogStats {
    /// Pages written (their events and feature rows).
    pub written: AtomicU64,
    /// Of those, search pages.
    pub searches: AtomicU64,
    /// Pages dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Pages (and exposures) whose write failed (logged as errors).
    pub failed: AtomicU64,
    /// Experiment exposures recorded.
    pub exposures: AtomicU64,
}

/// What the writer writes: a logged page (to this feature log), or an experiment's
/// exposure (written in batches: one catalog transaction for every exposure waiting).
enum Job {
    Page(PageRecord, Option<Arc<FeatureLog>>),
    Exposure(Exposure),
}

/// Exposures written in one transaction, at most.
const EXPOSURE_BATCH: usize = 512;

/// Writes logged pages on one background thread, in the order they were queued. Dropping
/// the writer waits until every queued page is written.
pub struct PageWriter {
    sender: Option<SyncSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    stats: Arc<PageLogStats>,
}

impl PageWriter {
    pub fn new(store: Arc<dyn Storage>) -> Self {
        let (sender, receiver) = sync_channel::<Job>(WRITER_QUEUE);
        let stats = Arc::new(PageLogStats::default());
        let counts = stats.clone();
        let thread = std::thread::Builder::new()
            .name("souk-page-log".into())
            .spawn(move || {
                let mut exposures = Vec::new();
                while let Ok(first) = receiver.recv() {
                    let mut job = Some(first);
                    while let Some(next) = job.take() {
                        match next {
                            Job::Page(record, log) => write_page(store.as_ref(), record, log, &counts),
                            Job::Exposure(exposure) => exposures.push(exposure),
                        }
                        if exposures.len() < EXPOSURE_BATCH {
                            job = receiver.try_recv().ok();
                        }
                    }
                    if !exposures.is_empty() {
                        match store.add_exposures(&exposures) {
                            Ok(()) => counts.exposures.fetch_add(exposures.len() as u64, Ordering::Relaxed),
                            Err(e) => {
                                tracing::error!(error = %e, count = exposures.len(), "recording experiment exposures failed");
                                counts.failed.fetch_add(exposures.len() as u64, Ordering::Relaxed)
                            }
                        };
                        exposures.clear();
                    }
                }
            })
            .map_err(|e| tracing::error!(error = %e, "could not start the page log writer; pages are not logged"))
            .ok();
        Self { sender: thread.as_ref().map(|_| sender), thread, stats }
    }

    /// Queue a page for writing (to `log` for its feature rows); dropped and counted when
    /// the queue is full.
    pub fn submit(&self, record: PageRecord, log: Option<Arc<FeatureLog>>) {
        self.queue(Job::Page(record, log));
    }

    /// Queue an experiment's exposure (a page served under one of its arms).
    pub fn submit_exposure(&self, exposure: Exposure) {
        self.queue(Job::Exposure(exposure));
    }

    fn queue(&self, job: Job) {
        let Some(sender) = &self.sender else {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if sender.try_send(job).is_err() {
            let dropped = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "the page log writer is behind; pages were not logged");
            }
        }
    }

    pub fn stats(&self) -> &PageLogStats {
        &self.stats
    }
}

fn write_page(store: &dyn Storage, record: PageRecord, log: Option<Arc<FeatureLog>>, counts: &PageLogStats) {
    let search = record.surface == Surface::Search;
    match record.write(store, log.as_deref()) {
        Ok(()) => {
            counts.written.fetch_add(1, Ordering::Relaxed);
            if search {
                counts.searches.fetch_add(1, Ordering::Relaxed);
            }
        }
        Err(e) => {
            counts.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "logging a served page failed");
        }
    }
}

impl Drop for PageWriter {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn a_search_page_records_the_search_and_its_impression_with_rows_in_page_order() {
        let user = UserId::parse("u1", "user").unwrap();
        let rows = vec![("b".to_string(), vec![2.0]), ("a".to_string(), vec![1.0])];
        let served = Served {
            surface: Surface::Search,
            request_id: "r-1",
            user: &user,
            shown: &["a", "b", "c"],
            arm: Some(Arm::Ranker),
            propensities: &[0.9, 0.05, 0.05],
            query: Some("shoes"),
        };
        let page = record(served, &rows, 42);
        assert_eq!(page.events.len(), 2);
        assert_eq!(page.events[0].event_type, EventType::Search);
        assert_eq!(page.events[0].query.as_deref(), Some("shoes"));
        let impression = &page.events[1];
        assert_eq!(impression.event_type, EventType::Impression);
        assert_eq!(impression.arm.as_deref(), Some("ranker"));
        assert_eq!(impression.id.as_str(), "r-1:impression");
        assert_eq!(impression.items.iter().map(ItemId::as_str).collect::<Vec<_>>(), vec!["a", "b", "c"]);
        assert_eq!(impression.propensities, vec![0.9, 0.05, 0.05]);
        assert_eq!(page.rows, vec![("a".to_string(), vec![1.0]), ("b".to_string(), vec![2.0])]);
        // A recommendation page has no search event; an empty page no impression.
        let served = Served {
            surface: Surface::Recommendations,
            request_id: "r-2",
            user: &user,
            shown: &[],
            arm: None,
            propensities: &[],
            query: None,
        };
        let page = record(served, &[], 42);
        assert!(page.events.is_empty());
    }

    #[test]
    fn the_writer_stores_every_queued_page_before_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Storage> =
            Arc::new(crate::store::EmbeddedStore::open(dir.path(), &crate::store::StoreConfig::default()).unwrap());
        let log = Arc::new(FeatureLog::in_data_dir(dir.path()));
        let user = UserId::parse("u1", "user").unwrap();
        let writer = PageWriter::new(store.clone());
        for page in 0..50 {
            let request_id = format!("r-{page}");
            let served = Served {
                surface: if page % 2 == 0 { Surface::Search } else { Surface::Recommendations },
                request_id: &request_id,
                user: &user,
                shown: &["a", "b"],
                arm: Some(Arm::Blend),
                propensities: &[],
                query: (page % 2 == 0).then_some("shoes"),
            };
            let mut row = vec![0.0; crate::rank::features::FEATURE_COUNT];
            row[0] = page as f32;
            let rows = vec![("a".to_string(), row)];
            writer.submit(record(served, &rows, 1_000 + page), Some(log.clone()));
        }
        drop(writer);
        let stats = store.stats().unwrap();
        assert_eq!(stats.events_by_type.get("impression"), Some(&50), "{stats:?}");
        assert_eq!(stats.events_by_type.get("search"), Some(&25), "{stats:?}");
        let logged = log.read().unwrap();
        assert_eq!(logged.len(), 50);
        for page in 0..50 {
            assert_eq!(logged[&(format!("r-{page}"), "a".to_string())][0], page as f32);
        }
    }

    #[test]
    fn every_position_of_the_mixture_policy_sums_to_one() {
        // Over all items, a position is filled with probability one; over all positions, an
        // item is shown with probability one (the page shows every ranked item).
        let policy = LogPolicy { log_share: 1.0, explore_share: 0.2 };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let n = 6;
        let mut page: Vec<usize> = (0..n).collect();
        let (_, propensities) = policy.explore_with(&mut page, Arm::Ranker, &[], &mut rng);
        let full: Vec<Vec<f64>> =
            (0..n).map(|item| (0..n).map(|k| if item == k { 0.8 } else { 0.0 } + 0.2 / n as f64).collect()).collect();
        for k in 0..n {
            assert!((full.iter().map(|row| row[k]).sum::<f64>() - 1.0).abs() < 1e-12);
            assert!((full[page[k]][k] - propensities[k]).abs() < 1e-12);
        }
        assert!(full.iter().all(|row| (row.iter().sum::<f64>() - 1.0).abs() < 1e-12));
        // Without exploration the ranked order is certain.
        let certain = LogPolicy { log_share: 1.0, explore_share: 0.0 };
        assert_eq!(certain.propensities(&[0, 1, 2], &[]), vec![1.0, 1.0, 1.0]);
        // A drawn item at rank 1 (there with 0.3, on the page with 0.6).
        let drawn = [(1.0, 1.0), (0.3, 0.6), (1.0, 1.0)];
        let p = policy.propensities(&[1, 0, 2], &drawn);
        assert!((p[0] - 0.2 * 0.6 / 3.0).abs() < 1e-12, "{p:?}");
        assert!((p[1] - 0.2 / 3.0).abs() < 1e-12, "{p:?}");
        assert!((p[2] - (0.8 + 0.2 / 3.0)).abs() < 1e-12, "{p:?}");
        let p = policy.propensities(&[0, 1, 2], &drawn);
        assert!((p[1] - (0.8 * 0.3 + 0.2 * 0.6 / 3.0)).abs() < 1e-12, "{p:?}");
    }

    #[test]
    fn request_ids_are_distinct() {
        let ids: std::collections::HashSet<String> = (0..1_000).map(|_| new_request_id()).collect();
        assert_eq!(ids.len(), 1_000);
        assert!(ids.iter().all(|id| id.len() == 18 && id.starts_with("r-")));
    }

    #[test]
    fn sampling_and_exploring_follow_their_shares() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let policy = LogPolicy { log_share: 0.25, explore_share: 0.5 };
        let logged = (0..4_000).filter(|_| policy.sample_with(&mut rng)).count();
        assert!((800..1_200).contains(&logged), "{logged}");
        let mut explored = 0;
        for _ in 0..2_000 {
            let mut page: Vec<u32> = (0..10).collect();
            let (arm, propensities) = policy.explore_with(&mut page, Arm::Blend, &[], &mut rng);
            // Each item's propensity is the mixture's: 0.5 + 0.05 where the ranked order put it, 0.05 elsewhere.
            for (k, p) in propensities.iter().enumerate() {
                let expected = if page[k] == k as u32 { 0.55 } else { 0.05 };
                assert!((p - expected).abs() < 1e-12, "{k}: {p}");
            }
            if arm == Arm::Explore {
                explored += 1;
                let mut sorted = page.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..10).collect::<Vec<_>>(), "a permutation");
            } else {
                assert_eq!(page, (0..10).collect::<Vec<_>>(), "untouched");
            }
        }
        assert!((850..1_150).contains(&explored), "{explored}");
        let off = LogPolicy::of(&RankConfig { log_features: false, ..RankConfig::default() });
        assert!(!(0..100).any(|_| off.sample_with(&mut rng)));
    }
}
