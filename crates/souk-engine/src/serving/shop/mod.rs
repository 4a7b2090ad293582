//! The engine's one entry point: a [`Shop`] owns the store, the live model set, the search
//! index, the page log and the online click model, and answers everything a front end asks
//! — ingest, catalog changes, recommendations, similar items, trending, search, profiles,
//! training, online learning. The HTTP server and the CLI parse, call a `Shop` method and
//! convert what comes back; every policy (which pages are logged and explored, how rules
//! merge, when a model set is swapped) is decided here.
//!
//! Every method blocks (storage IO, CPU-bound ranking): an async caller runs it on a
//! blocking thread. Files: `pages` (the served pages), `learning` (training and the online
//! click model); this file holds construction and the catalog and event writes.

mod catalog_content;
mod experiments;
pub mod export;
mod insights;
pub mod keys;
mod learning;
mod pages;
mod replica;
mod reviews;
mod search_slot;

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use parking_lot::Mutex;

use super::exploration::Exploration;
use super::live_content::LiveContent;
use super::page_log::{PageLogStats, PageWriter, Surface};
use super::pipeline::PipelineConfig;
use super::{LiveSessions, ModelSet, RecommendConfig};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::model::{Event, EventType, Follow, Item, User};
use crate::rank::online::{OnlineClickModel, OnlineStats};
use crate::rank::profile::{PriceIndex, ProfileConfig, UserProfile};
use crate::rank::ranker::{FeatureLog, RankConfig};
use crate::rank::rerank::Rules;
use crate::recommend::EventWeights;
use crate::search::{QueryVectorCache, SearchConfig, SearchIndex, TextEmbedder};
use crate::store::artifacts::ArtifactStore;
use crate::store::{AppendOutcome, Storage};

pub use experiments::Assignment;
pub use insights::{Activity, Shopper, SUGGESTER_TTL};
pub use learning::TrainReport;

pub use pages::{RecommendAsk, SearchAsk, SearchServed, ServedPage, TrendingAsk};
pub use search_slot::SearchOpener;

/// How long a price index is reused before it is rebuilt from the catalog.
pub const PRICE_INDEX_TTL: Duration = Duration::from_secs(60);

/// How a shop trains and serves.
#[derive(Debug, Clone, Default)]
pub struct ShopSettings {
    pub recommend: RecommendConfig,
    pub weights: EventWeights,
    /// Re-ranking rules applied to every page (a request adds its own).
    pub rules: Rules,
    /// The learned rankers, the page log's shares and the online click model.
    pub ranking: RankConfig,
    pub profile: ProfileConfig,
    pub search: SearchConfig,
}

/// The feature logs of logged pages and the online click model that learns from them.
struct PageLogs {
    recommendations: Arc<FeatureLog>,
    search: Arc<FeatureLog>,
    online: Option<Online>,
    /// The exploration slots' state.
    exploration: Option<Arc<Exploration>>,
}

/// The online click model, where it is saved, and how many learning rounds are unsaved.
struct Online {
    model: Arc<OnlineClickModel>,
    path: PathBuf,
    unsaved: Mutex<usize>,
}

/// A shop: see the module documentation.
pub struct Shop {
    store: Arc<dyn Storage>,
    settings: ShopSettings,
    models: ArcSwapOption<ModelSet>,
    artifacts: Option<ArtifactStore>,
    search: search_slot::SearchSlot,
    embedder: Option<Arc<dyn TextEmbedder>>,
    query_vectors: QueryVectorCache,
    prices: Mutex<Option<(Instant, Arc<PriceIndex>)>>,
    logs: Option<PageLogs>,
    writer: PageWriter,
    /// Held while a training runs: one at a time.
    training: Mutex<()>,
    /// Trainings and other long work, with their progress and recent history.
    jobs: super::jobs::Jobs,
    /// Titles and logged queries for suggestions, rebuilt now and then.
    suggester: insights::SuggesterCache,
    /// Every experiment (the store holds them; lifecycle changes write there first).
    experiments: parking_lot::RwLock<Vec<super::experiment::Experiment>>,
    /// API keys by the hash of their secret (the store holds them).
    keys: parking_lot::RwLock<std::collections::HashMap<String, keys::ApiKey>>,
    /// Sessions and baskets, updated on ingest (the `session` source, bought together).
    sessions: Arc<LiveSessions>,
    /// Every catalog item's content vector, updated by catalog writes.
    content: Arc<LiveContent>,
    /// Held while the serving set takes in catalog items (one extension at a time).
    extending: Mutex<()>,
}

/// A user as a profile page shows them.
pub struct UserOverview {
    pub profile: UserProfile,
    /// Their stored record (attributes, stated preferences).
    pub user: Option<User>,
    pub follows: Vec<Follow>,
    /// The live preference vector of the serving factor model: (model, values).
    pub vector: Option<(String, Vec<f32>)>,
    /// What their review texts say (scored at the last training).
    pub review_texts: Option<crate::rank::review_sentiment::TextSentiment>,
}

impl Shop {
    /// A shop over `store` with no trained models, no search index and no page log.
    pub fn new(store: Arc<dyn Storage>, settings: ShopSettings) -> Self {
        let experiments = experiments::load(store.as_ref()).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the stored experiments are unreadable; serving without experiments");
            Vec::new()
        });
        let stored_keys = keys::load(store.as_ref()).unwrap_or_else(|e| {
            // No key authenticates then: requests that need one are refused, not let in.
            tracing::error!(error = %e, "the stored API keys are unreadable; only the master key is accepted");
            Default::default()
        });
        Self {
            experiments: parking_lot::RwLock::new(experiments),
            keys: parking_lot::RwLock::new(stored_keys),
            writer: PageWriter::new(store.clone()),
            query_vectors: QueryVectorCache::new(settings.search.query_cache),
            store,
            settings,
            models: ArcSwapOption::empty(),
            artifacts: None,
            search: Default::default(),
            embedder: None,
            prices: Mutex::new(None),
            logs: None,
            training: Mutex::new(()),
            sessions: Arc::new(LiveSessions::with_defaults()),
            content: Arc::new(LiveContent::default()),
            extending: Mutex::new(()),
            jobs: Default::default(),
            suggester: Default::default(),
        }
    }

    /// Serve this model set until the next training.
    pub fn with_models(self, models: Option<ModelSet>) -> Self {
        self.models.store(models.map(Arc::new));
        self
    }

    /// Save trained model sets under this artifact store.
    pub fn with_artifacts(mut self, artifacts: ArtifactStore) -> Self {
        self.artifacts = Some(artifacts);
        self
    }

    /// Serve search from this index (and, with an embedder, semantic and hybrid search).
    pub fn with_search(mut self, index: Arc<SearchIndex>, embedder: Option<Arc<dyn TextEmbedder>>) -> Self {
        if let Some(set) = self.models.load().as_deref() {
            index.set_popularity(learning::popularity_of(set));
        }
        self.search.set(index);
        self.embedder = embedder;
        self
    }

    /// Serve search from the index `open` gives, trying it at the first search and then at
    /// most once per `retry` until it opens (the index could not open at start: a full
    /// disk). Search answers `search_unavailable` meanwhile.
    pub fn with_search_opener(
        mut self,
        open: SearchOpener,
        embedder: Option<Arc<dyn TextEmbedder>>,
        retry: std::time::Duration,
    ) -> Self {
        self.search.set_opener(open, retry);
        self.embedder = embedder;
        self
    }

    /// The search index, opened now if it was pending (see [`Shop::with_search_opener`]).
    fn search_index(&self) -> Option<Arc<SearchIndex>> {
        self.search.get(&|index| {
            if let Some(set) = self.models.load().as_deref() {
                index.set_popularity(learning::popularity_of(set));
            }
        })
    }

    /// Log served pages' feature rows to `log` (search pages' beside it) for the rankers to
    /// learn from, and — when `[rank.online]` is enabled — keep the online click model,
    /// saved beside the log.
    pub fn with_page_log(mut self, log: FeatureLog) -> Self {
        let config = &self.settings.ranking;
        let log = log
            .with_limits(config.log_max_mb << 20, config.log_files)
            .with_max_age(std::time::Duration::from_secs(config.log_max_age_hours * 3_600));
        let path = OnlineClickModel::path_in_log_dir(log.path().parent().unwrap_or(std::path::Path::new(".")));
        let online = config.online.enabled.then(|| {
            let model = OnlineClickModel::open(config.online.clone(), &path).unwrap_or_else(|e| {
                tracing::error!(error = %e, path = %path.display(), "the saved online click model is unreadable; starting afresh");
                OnlineClickModel::new(config.online.clone()).expect("validated online click model settings")
            });
            Online { model: Arc::new(model), path, unsaved: Mutex::new(0) }
        });
        let exploration = {
            let dir = log.path().parent().unwrap_or(std::path::Path::new("."));
            let path = Exploration::path_in_log_dir(dir);
            let open = Exploration::open(config.explore.clone(), Some(path.clone()));
            Some(Arc::new(open.unwrap_or_else(|e| {
                tracing::error!(error = %e, path = %path.display(), "the saved exploration counts are unreadable; starting afresh");
                let _ = fs_err::rename(&path, path.with_extension("json.damaged"));
                Exploration::open(config.explore.clone(), Some(path)).expect("no saved counts to read")
            })))
        };
        self.logs =
            Some(PageLogs { search: Arc::new(log.for_search()), recommendations: Arc::new(log), online, exploration });
        self
    }

    pub fn store(&self) -> &dyn Storage {
        self.store.as_ref()
    }

    pub fn settings(&self) -> &ShopSettings {
        &self.settings
    }

    /// The model set serving now (`None` before the first training), with every catalog
    /// item in its item space.
    pub fn models(&self) -> Option<Arc<ModelSet>> {
        self.serving_models()
    }

    pub fn has_search(&self) -> bool {
        self.search.current().is_some()
    }

    pub fn has_embedder(&self) -> bool {
        self.embedder.is_some()
    }

    /// What the page log's writer has done.
    pub fn page_log_stats(&self) -> &PageLogStats {
        self.writer.stats()
    }

    /// The online click model's counters (zero without one).
    pub fn online_stats(&self) -> OnlineStats {
        self.online().map(|o| o.model.stats()).unwrap_or_default()
    }

    /// The feature log of a surface's logged pages (with a page log).
    pub fn feature_log(&self, surface: Surface) -> Option<&FeatureLog> {
        self.logs.as_ref().map(|logs| match surface {
            Surface::Recommendations => logs.recommendations.as_ref(),
            Surface::Search => logs.search.as_ref(),
        })
    }

    /// The online click model and where it is saved (with a page log and `[rank.online]`).
    pub fn online_model(&self) -> Option<(Arc<OnlineClickModel>, PathBuf)> {
        self.online().map(|o| (o.model.clone(), o.path.clone()))
    }

    fn online(&self) -> Option<&Online> {
        self.logs.as_ref().and_then(|l| l.online.as_ref())
    }

    pub(crate) fn exploration(&self) -> Option<&Arc<Exploration>> {
        self.logs.as_ref().and_then(|l| l.exploration.as_ref())
    }

    /// The configured rules merged with a pipeline's and then a request's (the later take
    /// the positions they name), validated; errors name the field under `rules`.
    pub fn rules_for(&self, pipeline: &PipelineConfig, request: &Rules) -> Result<Rules> {
        request.validate().map_err(|e| Error::Invalid(e.within("rules")))?;
        let base = if pipeline.rules.is_empty() {
            Cow::Borrowed(&self.settings.rules)
        } else {
            Cow::Owned(Rules::merge(&self.settings.rules, &pipeline.rules))
        };
        Ok(Rules::merge(&base, request))
    }

    /// Store a batch of events (all or nothing; durable when this returns). The live
    /// session index and co-purchase counts follow it at once; clicks on logged pages teach
    /// the online click model once their window closes.
    pub fn ingest(&self, events: Vec<Event>) -> Result<AppendOutcome> {
        // Clicks on logged pages, by their place in the batch.
        let clicks: Vec<(usize, &Event)> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.event_type == EventType::Click && e.request_id.is_some() && e.item.is_some())
            .collect();
        let for_online: Vec<(usize, String, String)> = match self.online() {
            Some(_) => clicks
                .iter()
                .filter_map(|(i, e)| Some((*i, e.request_id.clone()?, e.item.as_ref()?.as_str().to_string())))
                .collect(),
            None => Vec::new(),
        };
        let for_exploration: Option<Vec<(usize, Event)>> =
            self.exploration().map(|_| clicks.iter().map(|(i, e)| (*i, (*e).clone())).collect());
        // The live session index follows the batch once it is stored (before it is built,
        // building reads the batch from the store).
        let for_sessions = self.sessions.is_built().then(|| events.clone());
        let outcome = self.store.append_events(events)?;
        // Only what was stored now: a re-delivered event counts once.
        let fresh = |i: usize| outcome.duplicate_at.binary_search(&(i as u32)).is_err();
        if let (Some(exploration), Some(clicks)) = (self.exploration(), for_exploration) {
            let clicks: Vec<Event> = clicks.into_iter().filter(|(i, _)| fresh(*i)).map(|(_, e)| e).collect();
            exploration.observe(&clicks);
        }
        if let Some(events) = for_sessions {
            let events: Vec<Event> =
                events.into_iter().enumerate().filter(|(i, _)| fresh(*i)).map(|(_, e)| e).collect();
            self.sessions.observe(&events);
        }
        if let Some(online) = self.online() {
            for (_, request_id, item) in for_online.iter().filter(|(i, _, _)| fresh(*i)) {
                online.model.observe_click(request_id, item);
            }
        }
        Ok(outcome)
    }

    /// Store items in the catalog and the search index (vectors are checked first, so a
    /// refused batch stores nothing). Keyword search sees them at the index's next commit;
    /// their text vectors follow on a background thread as fast as the embedder runs (and
    /// at the next start if that is cut short). Their content vectors are updated at once
    /// (and again when their text vectors arrive), and items the serving model set does not
    /// hold join it before this returns: recommendable and similar at once.
    pub fn put_items(&self, items: Vec<Item>) -> Result<()> {
        let search = self.search.current();
        if let Some(search) = &search {
            search.check_vectors(&items)?;
        }
        self.store.put_items(items.clone())?;
        self.index_items(items)
    }

    /// Put items in the search index and queue their text vectors (in the background).
    fn index_items(&self, items: Vec<Item>) -> Result<()> {
        let search = self.search.current();
        if let Some(search) = &search {
            search.index_items(items.clone())?;
        }
        if let Err(e) = self.follow_catalog_write(&items) {
            tracing::warn!(error = %e, "the content of stored items could not be followed");
        }
        if let Some(search) = &search {
            if let Some(embedder) = self.embedder.clone() {
                let search = search.clone();
                let content = self.content.clone();
                let job = self.jobs.queue(super::jobs::JobKind::Embed, false, format!("{} items", items.len()));
                std::thread::spawn(move || {
                    if let Some(job) = &job {
                        job.start(format!("embedding {} items", items.len()));
                    }
                    let outcome = search.embed_items(&items, embedder.as_ref());
                    if outcome.is_ok() {
                        content.observe(&items, search.existing_space(crate::search::TEXT_SPACE).as_deref());
                    }
                    match (outcome, job) {
                        (Ok(_), Some(job)) => job.done(format!("{} items embedded", items.len())),
                        (Err(e), job) => {
                            tracing::error!(error = %e, "embedding items failed");
                            if let Some(job) = job {
                                job.fail(e.to_string());
                            }
                        }
                        (Ok(_), None) => {}
                    }
                });
            }
        }
        Ok(())
    }

    /// Remove an item from the catalog and the search index (its past events stay, for
    /// learning); false when the catalog did not hold it.
    pub fn delete_item(&self, id: &crate::ItemId) -> Result<bool> {
        let existed = self.store.delete_item(id)?;
        self.content.forget(id.as_str());
        if let Some(search) = self.search.current() {
            search.delete_items(&[id.as_str()])?;
        }
        Ok(existed)
    }

    /// The catalog's price distribution per category, rebuilt (memory only) when older
    /// than [`PRICE_INDEX_TTL`].
    pub fn price_index(&self) -> Result<Arc<PriceIndex>> {
        let mut cached = self.prices.lock();
        if let Some((built, index)) = cached.as_ref() {
            if built.elapsed() < PRICE_INDEX_TTL {
                return Ok(index.clone());
            }
        }
        let index = Arc::new(PriceIndex::from_store(self.store())?);
        *cached = Some((Instant::now(), index.clone()));
        Ok(index)
    }

    /// Erase a user: their record, events, social edges and exposures at once (the store);
    /// their sessions and baskets leave the live session index at once (it is rebuilt from
    /// the store on next use); every stored model generation trained on them goes at the
    /// next training, which [`Shop::erasure_pending`] asks for.
    pub fn erase_user(&self, user: &UserId) -> Result<crate::store::EraseReport> {
        let report = self.store().erase_user(user)?;
        self.sessions.reset();
        if let Some(artifacts) = &self.artifacts {
            artifacts.mark_erasure().map_err(|e| crate::store::refused_write(e, "the erasure"))?;
        }
        Ok(report)
    }

    /// What the shop knows of a user; `None` when it knows nothing (no record, no follows,
    /// no events).
    pub fn user_overview(&self, user: &UserId, now_ms: i64) -> Result<Option<UserOverview>> {
        let prices = self.price_index()?;
        let store = self.store();
        let profile =
            UserProfile::load(store, user, &prices, &self.settings.weights, &self.settings.profile, now_ms, true)?;
        let vector = match self.models() {
            Some(set) => super::preference_vector(&set, store, user, self.settings.recommend.history_limit)?,
            None => None,
        };
        let record = store.get_user(user)?;
        let follows = store.follows_of(user)?;
        if record.is_none() && follows.is_empty() && profile.activity.events == 0 {
            return Ok(None);
        }
        let review_texts = self.user_review_sentiment(user.as_str());
        Ok(Some(UserOverview { profile, user: record, follows, vector, review_texts }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use std::collections::HashMap;

    use super::pages::ServedPage;
    use super::*;
    use crate::gen::{GenConfig, Generator};
    use crate::recommend::SourceKind;
    use crate::serving::jobs::{JobKind, JobState};
    use crate::serving::{ItemFilter, RecommendSurface};
    use crate::store::{EmbeddedStore, StoreConfig, StoreSink};

    /// A generated shop without models, logging every page (none explored).
    fn shop(dir: &std::path::Path) -> Shop {
        shop_of(dir, GenConfig { items: 150, users: 40, events: 3_000, seed: 8 })
    }

    fn shop_of(dir: &std::path::Path, config: GenConfig) -> Shop {
        let store = EmbeddedStore::open(dir, &StoreConfig::default()).unwrap();
        let generator = Generator::new(config).unwrap();
        let mut sink = StoreSink::new(&store);
        generator.run(&mut sink, &mut |_| {}).unwrap();
        sink.finish().unwrap();
        let ranking = RankConfig { log_share: 1.0, explore_share: 0.0, ..RankConfig::default() };
        Shop::new(Arc::new(store), ShopSettings { ranking, ..ShopSettings::default() })
            .with_artifacts(ArtifactStore::new(dir))
            .with_page_log(FeatureLog::in_data_dir(dir))
    }

    fn user(id: &str) -> UserId {
        UserId::parse(id, "user").unwrap()
    }

    #[test]
    fn a_shop_serves_trending_until_it_trains_then_its_models_and_logs_their_pages() {
        let dir = tempfile::tempdir().unwrap();
        let shop = shop(dir.path());
        assert!(shop.has_untrained_events().unwrap());
        let before = shop.recommend(super::pages::RecommendAsk::new(user("u000003"), 5)).unwrap();
        assert_eq!(before.trained_at_ms, None);
        assert_eq!(before.items.len(), 5);
        assert!(before.items.iter().all(|i| i.reasons[0].source == SourceKind::Trending && i.card.title.is_some()));

        let impressions = || shop.store().stats().unwrap().events_by_type.get("impression").copied().unwrap_or(0);
        let generated = impressions();
        let report = shop.train().unwrap();
        assert!(report.generation.is_some(), "saved under the artifact store");
        // The training was a job: done, its message naming the generation.
        let jobs = shop.jobs();
        assert_eq!(jobs.len(), 1);
        let job = shop.job(&jobs[0].id).unwrap();
        assert_eq!((job.kind, job.state, job.progress), (JobKind::Train, JobState::Done, 1.0));
        assert!(job.message.starts_with(report.generation.as_deref().unwrap()), "{}", job.message);
        assert!(job.started_at.unwrap() <= job.finished_at.unwrap());
        assert!(!shop.has_untrained_events().unwrap());
        let page = shop.recommend(super::pages::RecommendAsk::new(user("u000003"), 5)).unwrap();
        assert_eq!(page.trained_at_ms, Some(report.manifest.trained_at_ms));
        assert_ne!(page.request_id, before.request_id);
        // The page is logged (every page, here): its impression reaches the store and its
        // feature rows the log, in the background.
        let stats = shop.page_log_stats();
        for _ in 0..2_000 {
            if stats.written.load(Ordering::Relaxed) >= 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(stats.written.load(Ordering::Relaxed), 1, "only the trained page had feature rows");
        let rows = shop.feature_log(Surface::Recommendations).unwrap().read().unwrap();
        let logged: Vec<&String> = rows.keys().filter(|(r, _)| *r == page.request_id).map(|(_, i)| i).collect();
        assert_eq!(logged.len(), page.items.len());
        assert_eq!(impressions(), generated + 1);
    }

    #[test]
    fn a_pipeline_configuration_changes_the_sources_the_rules_and_the_explore_share() {
        let dir = tempfile::tempdir().unwrap();
        let shop = shop(dir.path());
        shop.train().unwrap();
        let ask = || super::pages::RecommendAsk::new(user("u000007"), 8);
        let sources = |page: &ServedPage| -> std::collections::BTreeSet<SourceKind> {
            page.items.iter().flat_map(|i| i.reasons.iter().map(|r| r.source)).collect()
        };
        let default = shop.recommend(ask()).unwrap();
        assert!(sources(&default).contains(&SourceKind::Als), "{:?}", sources(&default));
        // Only popularity, from JSON as an experiment arm would carry it.
        let popular: PipelineConfig = serde_json::from_str(
            r#"{"sources":{"als":0,"itemknn":0,"session":0,"content":0},"ranker":false,"explore_slots":[]}"#,
        )
        .unwrap();
        let page = shop.recommend_with(ask(), &popular).unwrap();
        assert_eq!(sources(&page), [SourceKind::Popularity].into_iter().collect());
        // With its exploration slot, a logged page shows one pick at position 8.
        let exploring = PipelineConfig { explore_slots: None, ..popular.clone() };
        let page = shop.recommend_with(ask(), &exploring).unwrap();
        assert_eq!(page.items[7].reasons[0].source, SourceKind::Explore);
        assert!(page.items.iter().all(|i| i.ranker.is_none()));
        // A pipeline's pin applies; a request's pin at the same position wins over it.
        let pinned_item = page.items.last().unwrap().id.clone();
        let mut pinning = popular.clone();
        pinning.rules.pin.push(crate::rank::rerank::Pin { item: pinned_item.clone(), position: 1 });
        let page = shop.recommend_with(ask(), &pinning).unwrap();
        assert_eq!(page.items[0].id, pinned_item);
        let mut request = ask();
        let other = default.items[0].id.clone();
        request.rules.pin.push(crate::rank::rerank::Pin { item: other.clone(), position: 1 });
        assert_eq!(shop.recommend_with(request, &pinning).unwrap().items[0].id, other);
        // Every logged page explored: impressions carry the explore arm.
        let explore = PipelineConfig { explore_share: Some(1.0), ..PipelineConfig::default() };
        let page = shop.recommend_with(ask(), &explore).unwrap();
        let stats = shop.page_log_stats();
        let logged = || stats.written.load(Ordering::Relaxed);
        for _ in 0..2_000 {
            if logged() >= 6 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let events = shop.store().user_events(&user("u000007"), 1).unwrap();
        assert_eq!(events[0].request_id.as_deref(), Some(page.request_id.as_str()));
        assert_eq!(events[0].arm.as_deref(), Some("explore"));
        // A bad pipeline is refused with the field named.
        let bad = PipelineConfig { explore_share: Some(2.0), ..PipelineConfig::default() };
        let Err(Error::Invalid(e)) = shop.recommend_with(ask(), &bad) else { panic!("explore_share 2") };
        assert_eq!(e.field, "pipeline.explore_share");
    }

    #[test]
    fn a_heavy_users_latest_session_moves_their_first_page() {
        let dir = tempfile::tempdir().unwrap();
        let shop = shop_of(dir.path(), GenConfig { items: 2_000, users: 60, events: 15_000, seed: 8 });
        shop.train().unwrap();
        let store = shop.store();
        // Every item's top-level category.
        let mut root: HashMap<String, String> = HashMap::new();
        store
            .scan_item_meta(&mut |id, meta| {
                if let Some(top) = meta.category.first() {
                    root.insert(id.to_string(), top.to_string());
                }
            })
            .unwrap();
        // The heaviest user, and the category their history is mostly about.
        let set = shop.models().unwrap();
        let (heavy, history) = (0..60)
            .map(|u| format!("u{u:06}"))
            .map(|u| {
                let history = store.user_interactions(&user(&u), 1_000).unwrap();
                (u, history)
            })
            .max_by_key(|(_, h)| h.len())
            .unwrap();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for h in &history {
            if let Some(r) = root.get(&h.item) {
                *counts.entry(r.as_str()).or_default() += 1;
            }
        }
        // A category they barely touched, with items the models know.
        let (new_interest, touched) = counts_of_roots(&root, &counts)
            .into_iter()
            .filter(|(r, _)| root.iter().filter(|(id, rr)| *rr == r && set.item_index.contains_key(*id)).count() >= 10)
            .min_by_key(|(_, c)| *c)
            .unwrap();
        assert!(touched * 10 < history.len(), "{touched} of {}", history.len());
        let in_new = |page: &ServedPage| page.items.iter().filter(|i| root.get(&i.id) == Some(&new_interest)).count();
        let before = shop.recommend(super::pages::RecommendAsk::new(user(&heavy), 10)).unwrap();
        // One session: views of three popular items of the new category, then a purchase.
        let mut popular: Vec<&String> = root
            .iter()
            .filter(|(id, r)| **r == new_interest && set.item_index.contains_key(*id))
            .map(|(id, _)| id)
            .collect();
        popular.sort_by(|a, b| {
            let p = |id: &String| set.popularity[set.item_index[id] as usize];
            p(b).total_cmp(&p(a)).then(a.cmp(b))
        });
        // Now, minutes ago: an open session, after everything the generator wrote.
        let newest = history.iter().map(|h| h.timestamp).max().unwrap();
        let start = super::super::page_log::now_ms() - 5 * 60_000;
        assert!(start > newest);
        let mut events = Vec::new();
        for (k, (item, kind)) in popular
            .iter()
            .take(3)
            .map(|i| (i, EventType::View))
            .chain(std::iter::once((&popular[0], EventType::Purchase)))
            .enumerate()
        {
            events.push(Event::new(
                crate::EventId::parse(format!("session-{k}"), "id").unwrap(),
                kind,
                user(&heavy),
                Some(crate::ItemId::parse(item.as_str(), "item").unwrap()),
                start + k as i64 * 60_000,
            ));
        }
        shop.ingest(events).unwrap();
        let after = shop.recommend(super::pages::RecommendAsk::new(user(&heavy), 10)).unwrap();
        let no_session: PipelineConfig = serde_json::from_str(r#"{"sources":{"session":0}}"#).unwrap();
        let without = shop.recommend_with(super::pages::RecommendAsk::new(user(&heavy), 10), &no_session).unwrap();
        assert!(
            in_new(&before) <= 1 && in_new(&after) >= 3 && in_new(&without) < in_new(&after),
            "{new_interest}: {} on the first page before the session, {} after ({} without the session source)",
            in_new(&before),
            in_new(&after),
            in_new(&without)
        );
        let session = after.items.iter().filter(|i| i.reasons.iter().any(|r| r.source == SourceKind::Session)).count();
        assert!(session > 0, "the session source proposed some of them");
    }

    #[test]
    fn the_session_page_follows_one_ingested_event_and_keeps_exclusions_filters_and_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let shop = shop_of(dir.path(), GenConfig { items: 400, users: 80, events: 12_000, seed: 11 });
        shop.train().unwrap();
        let set = shop.models().unwrap();
        let shopper = user("u000009");
        let ask = |surface| {
            let mut ask = super::pages::RecommendAsk::new(shopper.clone(), 10);
            ask.surface = surface;
            ask
        };
        let ids = |page: &ServedPage| page.items.iter().map(|i| i.id.clone()).collect::<Vec<_>>();
        let view = |k: usize, item: &str, at: i64| {
            Event::new(
                crate::EventId::parse(format!("now-{k}"), "id").unwrap(),
                EventType::View,
                shopper.clone(),
                Some(crate::ItemId::parse(item, "item").unwrap()),
                at,
            )
        };
        // The two most popular items the shopper never touched start two sessions' worth
        // of evidence; each page is computed after exactly one more event, no training.
        let touched: std::collections::HashSet<String> =
            shop.store().user_interactions(&shopper, 10_000).unwrap().into_iter().map(|i| i.item).collect();
        let fresh: Vec<&String> = set
            .popularity_order
            .iter()
            .map(|&i| &set.item_ids[i as usize])
            .filter(|id| !touched.contains(*id))
            .collect();
        let now = super::super::page_log::now_ms();
        shop.ingest(vec![view(0, fresh[0], now - 60_000)]).unwrap();
        let first = shop.recommend(ask(RecommendSurface::Session)).unwrap();
        assert!(
            first.items.iter().any(|i| i.reasons.iter().any(|r| r.source == SourceKind::Session)),
            "{:?}",
            ids(&first)
        );
        assert!(first.items.iter().all(|i| i.ranker.is_none()), "the ranker orders only for-you pages");
        shop.ingest(vec![view(1, fresh[1], now - 30_000)]).unwrap();
        let second = shop.recommend(ask(RecommendSurface::Session)).unwrap();
        assert_ne!(ids(&first), ids(&second), "one event moved the session page");
        // Exclusions: the viewed items are seen; the cursor: page two repeats nothing.
        for page in [&first, &second] {
            assert!(!ids(page).contains(fresh[0]) && !ids(page).contains(fresh[1]));
        }
        let mut next = ask(RecommendSurface::Session);
        next.cursor = second.next_cursor.clone();
        let page_two = shop.recommend(next).unwrap();
        assert!(!page_two.items.is_empty());
        assert!(ids(&page_two).iter().all(|id| !ids(&second).contains(id)));
        // Filters: one brand only.
        let brand = shop
            .store()
            .items_meta(&[second.items[0].id.as_str()])
            .unwrap()
            .pop()
            .flatten()
            .and_then(|m| m.brand.map(|b| b.to_string()))
            .unwrap();
        let mut branded = ask(RecommendSurface::Session);
        branded.filter.brands = vec![brand.clone()];
        let page = shop.recommend(branded).unwrap();
        assert!(!page.items.is_empty());
        for item in &page.items {
            assert_eq!(item.card.brand.as_deref(), Some(brand.as_str()), "{}", item.id);
        }
        // The for-you page takes the live session source while the session is open.
        let for_you = shop.recommend(ask(RecommendSurface::ForYou)).unwrap();
        assert!(for_you.items.iter().any(|i| i.reasons.iter().any(|r| r.source == SourceKind::Session)));
        // Bought together: an ingested basket counts at once, never lists the item itself,
        // and honours the filter.
        let basket = |k: usize, who: &str, item: &str| {
            Event::new(
                crate::EventId::parse(format!("basket-{k}"), "id").unwrap(),
                EventType::Purchase,
                user(who),
                Some(crate::ItemId::parse(item, "item").unwrap()),
                now + k as i64,
            )
        };
        let (a, b) = (fresh[2].as_str(), fresh[3].as_str());
        shop.ingest(vec![basket(0, "buyer-1", a), basket(1, "buyer-1", b), basket(2, "buyer-1", a)]).unwrap();
        shop.ingest(vec![basket(3, "buyer-2", b), basket(4, "buyer-2", a)]).unwrap();
        let any = ItemFilter::default();
        let together = shop.bought_together(a, 10, 2, &any, crate::input::Lang::En).unwrap().unwrap();
        assert!(together.items.iter().all(|i| i.id != a));
        let listed = together.items.iter().find(|i| i.id == b).expect("bought together twice");
        assert_eq!(listed.reasons[0].source, SourceKind::BoughtTogether);
        assert_eq!(listed.reasons[0].because.as_deref(), Some(a));
        assert!(listed.card.title.is_some());
        let other_brand = ItemFilter { brands: vec!["no such brand".into()], ..ItemFilter::default() };
        let filtered = shop.bought_together(a, 10, 2, &other_brand, crate::input::Lang::En).unwrap().unwrap();
        assert!(filtered.items.is_empty());
        assert!(shop.bought_together("not-in-catalog", 10, 1, &any, crate::input::Lang::En).unwrap().is_none());

        // A re-delivered batch counts once: buyer-3's basket of c and d, a purchase two days
        // later, then the first batch again (a client's retry). Counted again, the old
        // purchases would open a second basket holding both.
        let (c, d) = (fresh[4].as_str(), fresh[5].as_str());
        let first = vec![basket(10, "buyer-3", c), basket(11, "buyer-3", d)];
        shop.ingest(first.clone()).unwrap();
        let mut later = basket(12, "buyer-3", a);
        later.timestamp = now + 2 * super::super::live_sessions::BASKET_GAP_MS;
        shop.ingest(vec![later]).unwrap();
        let again = shop.ingest(first).unwrap();
        assert_eq!((again.accepted, again.duplicates, again.duplicate_at), (2, 2, vec![0, 1]));
        let support = |min| {
            let page = shop.bought_together(c, 10, min, &any, crate::input::Lang::En).unwrap().unwrap();
            page.items.iter().any(|i| i.id == d)
        };
        assert!(support(1), "bought together once");
        assert!(!support(2), "the re-delivered basket did not count twice");
    }

    /// Every top-level category with how often `counts` saw it (0 when never).
    fn counts_of_roots(root: &HashMap<String, String>, counts: &HashMap<&str, usize>) -> Vec<(String, usize)> {
        let roots: std::collections::BTreeSet<&String> = root.values().collect();
        roots.into_iter().map(|r| (r.clone(), counts.get(r.as_str()).copied().unwrap_or(0))).collect()
    }

    #[test]
    fn refusals_carry_their_codes_and_fields() {
        let dir = tempfile::tempdir().unwrap();
        let shop = shop(dir.path());
        let Err(Error::Coded { code, .. }) = shop.search(super::pages::SearchAsk::new("shoes")) else {
            panic!("search without an index")
        };
        assert_eq!(code, "search_unavailable");
        let mut bad = Rules::default();
        bad.pin.push(crate::rank::rerank::Pin { item: "i1".into(), position: 0 });
        let Err(Error::Invalid(e)) = shop.rules_for(&PipelineConfig::default(), &bad) else {
            panic!("a pin at position 0")
        };
        assert!(e.field.starts_with("rules."), "{e:?}");
        let ask = super::pages::TrendingAsk {
            n: 5,
            half_life_hours: -1.0,
            filter: super::super::ItemFilter::default(),
            lang: crate::input::Lang::En,
        };
        let Err(Error::Invalid(e)) = shop.trending(&ask) else { panic!("a negative half-life") };
        assert_eq!(e.field, "half_life_hours");
        // One training at a time.
        let guard = shop.training.lock();
        let Err(Error::Coded { code, .. }) = shop.train() else { panic!("a second training") };
        assert_eq!(code, "training_in_progress");
        drop(guard);
        assert_eq!(shop.jobs()[0].state, JobState::Failed, "the refused training is a failed job");
        let Err(Error::NotFound { what: "job", .. }) = shop.job("train-0-0") else { panic!("an unknown job") };
    }

    #[test]
    fn clicks_on_logged_pages_reach_the_online_click_model() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = ShopSettings {
            ranking: RankConfig { log_share: 1.0, explore_share: 0.0, ..RankConfig::default() },
            ..ShopSettings::default()
        };
        settings.ranking.online.enabled = true;
        settings.ranking.online.window_ms = 0;
        let base = shop(dir.path());
        let store = base.store.clone();
        drop(base);
        let shop = Shop::new(store, settings).with_page_log(FeatureLog::in_data_dir(dir.path()));
        shop.train().unwrap();
        let page = shop.recommend(super::pages::RecommendAsk::new(user("u000005"), 4)).unwrap();
        assert_eq!(shop.online_stats().pending_pages, 1);
        let mut click = Event::new(
            crate::EventId::parse("c1", "id").unwrap(),
            EventType::Click,
            user("u000005"),
            Some(crate::ItemId::parse(page.items[0].id.as_str(), "item").unwrap()),
            super::super::page_log::now_ms(),
        );
        click.request_id = Some(page.request_id.clone());
        shop.ingest(vec![click]).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(shop.learn_online().unwrap(), 4, "one example per shown item");
        let stats = shop.online_stats();
        assert_eq!((stats.examples, stats.clicks, stats.pending_pages), (4, 1, 0), "{stats:?}");
    }
}
