//! Shared state of the HTTP server and its configuration.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwapOption;
use serde::{Deserialize, Serialize};
use souk_engine::rank::online::OnlineClickModel;
use souk_engine::rank::profile::{PriceIndex, ProfileConfig};
use souk_engine::rank::ranker::{FeatureLog, RankConfig};
use souk_engine::rank::rerank::Rules;
use souk_engine::recommend::EventWeights;
use souk_engine::search::{QueryVectorCache, SearchConfig, SearchIndex, TextEmbedder};
use souk_engine::serving::{ModelSet, RecommendConfig};
use souk_engine::store::artifacts::ArtifactStore;
use souk_engine::store::Storage;

use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;

/// Settings of the HTTP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Most events (or items) accepted in one request.
    pub max_batch: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { listen: "127.0.0.1:7700".into(), max_body_bytes: 16 * 1024 * 1024, max_batch: 10_000 }
    }
}

impl ServerConfig {
    /// Problems with this configuration, each with the offending key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push((
                "server.listen".into(),
                format!("expected an address like 127.0.0.1:7700, found {:?}", self.listen),
            ));
        }
        if !(1024..=1024 * 1024 * 1024).contains(&self.max_body_bytes) {
            problems.push((
                "server.max_body_bytes".into(),
                format!("expected 1 KiB..=1 GiB, found {}", self.max_body_bytes),
            ));
        }
        if !(1..=1_000_000).contains(&self.max_batch) {
            problems.push(("server.max_batch".into(), format!("expected 1..=1000000, found {}", self.max_batch)));
        }
        problems
    }
}

/// How recommendations are trained and served.
#[derive(Debug, Clone, Default)]
pub struct RecommendSettings {
    pub config: RecommendConfig,
    pub weights: EventWeights,
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Storage>,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<Metrics>,
    pub started: Instant,
    /// The live model set, replaced whole when a retrain finishes.
    pub models: Arc<ArcSwapOption<ModelSet>>,
    pub recommend: Arc<RecommendSettings>,
    /// Where trained model sets are saved; `None` keeps them in memory only.
    pub artifacts: Option<ArtifactStore>,
    /// Held while a training runs: one at a time.
    pub training: Arc<tokio::sync::Mutex<()>>,
    /// Permits for CPU-bound request work (one per core): requests queue in order instead
    /// of all sharing the cores at once, which keeps tail latency down under load.
    pub compute: Arc<tokio::sync::Semaphore>,
    /// The search index; `None` serves without search (503 on `/v1/search`).
    pub search: Option<Arc<SearchIndex>>,
    pub search_settings: Arc<SearchConfig>,
    /// The text embedder for semantic search and for embedding new items.
    pub embedder: Option<Arc<dyn TextEmbedder>>,
    /// Catalog price distribution per category for profiles, rebuilt when older than
    /// [`PRICE_INDEX_TTL`].
    pub prices: Arc<std::sync::Mutex<Option<CachedPrices>>>,
    pub profile: Arc<ProfileConfig>,
    /// Configured re-ranking rules (requests add theirs).
    pub rules: Arc<Rules>,
    /// The learned ranker's settings, and the feature log it learns from (`None`: no
    /// logging, and trainings do not train a ranker).
    pub ranking: Arc<RankConfig>,
    pub feature_log: Option<Arc<FeatureLog>>,
    /// The search pages' feature log (next to `feature_log`).
    pub search_feature_log: Option<Arc<FeatureLog>>,
    /// The online click model (with the feature log, when `[rank.online]` is enabled) and
    /// where it is saved.
    pub online: Option<(Arc<OnlineClickModel>, std::path::PathBuf)>,
    /// Embeddings of recent queries.
    pub query_vectors: Arc<QueryVectorCache>,
}

/// A price index and when it was built.
pub type CachedPrices = (Instant, Arc<PriceIndex>);

/// How long a price index is reused before it is rebuilt from the catalog.
pub const PRICE_INDEX_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl AppState {
    pub fn new(store: Arc<dyn Storage>, config: ServerConfig) -> Self {
        Self::with_models(store, config, RecommendSettings::default(), None)
    }

    pub fn with_models(
        store: Arc<dyn Storage>,
        config: ServerConfig,
        recommend: RecommendSettings,
        models: Option<Arc<ModelSet>>,
    ) -> Self {
        Self {
            store,
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            started: Instant::now(),
            models: Arc::new(ArcSwapOption::new(models)),
            recommend: Arc::new(recommend),
            artifacts: None,
            training: Arc::new(tokio::sync::Mutex::new(())),
            compute: Arc::new(tokio::sync::Semaphore::new(
                2 * std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            )),
            search: None,
            search_settings: Arc::new(SearchConfig::default()),
            embedder: None,
            prices: Arc::new(std::sync::Mutex::new(None)),
            profile: Arc::new(ProfileConfig::default()),
            rules: Arc::new(Rules::default()),
            ranking: Arc::new(RankConfig::default()),
            feature_log: None,
            search_feature_log: None,
            online: None,
            query_vectors: Arc::new(QueryVectorCache::new(SearchConfig::default().query_cache)),
        }
    }

    /// Log served feature rows to `log` (search pages' rows beside it) and train the rankers
    /// from them.
    pub fn with_ranking(mut self, config: RankConfig, log: FeatureLog) -> Self {
        let path = OnlineClickModel::path_in_log_dir(log.path().parent().unwrap_or(std::path::Path::new(".")));
        self.online = config.online.enabled.then(|| {
            let online = OnlineClickModel::open(config.online.clone(), &path).unwrap_or_else(|e| {
                tracing::error!(error = %e, path = %path.display(), "the saved online click model is unreadable; starting afresh");
                OnlineClickModel::new(config.online.clone()).expect("validated online click model settings")
            });
            (Arc::new(online), path)
        });
        self.ranking = Arc::new(config);
        self.search_feature_log = Some(Arc::new(log.for_search()));
        self.feature_log = Some(Arc::new(log));
        self
    }

    /// Apply these rules to every recommendation and search page.
    pub fn with_rules(mut self, rules: Rules) -> Self {
        self.rules = Arc::new(rules);
        self
    }

    /// The configured rules merged with a request's `rules` (JSON), validated; errors name
    /// the offending field under `rules`.
    pub fn request_rules(&self, text: Option<&str>) -> ApiResult<Rules> {
        let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
            return Ok((*self.rules).clone());
        };
        let request: Rules = serde_json::from_str(text)
            .map_err(|e| ApiError::bad_request("invalid_rule", format!("rules: {e}"), "rules"))?;
        self.merge_rules(request)
    }

    /// The configured rules merged with a request's, validated.
    pub fn merge_rules(&self, request: Rules) -> ApiResult<Rules> {
        request.validate().map_err(|e| ApiError::validation(e.within("rules")))?;
        Ok(Rules::merge(&self.rules, &request))
    }

    /// The catalog's price index, rebuilt (memory only) when stale.
    pub fn price_index(&self, store: &dyn Storage) -> souk_engine::Result<Arc<PriceIndex>> {
        let mut cached = self.prices.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((built, index)) = cached.as_ref() {
            if built.elapsed() < PRICE_INDEX_TTL {
                return Ok(index.clone());
            }
        }
        let index = Arc::new(PriceIndex::from_store(store)?);
        *cached = Some((Instant::now(), index.clone()));
        Ok(index)
    }

    /// Serve search from this index (with these settings and, optionally, an embedder).
    pub fn with_search(
        mut self,
        index: Arc<SearchIndex>,
        settings: SearchConfig,
        embedder: Option<Arc<dyn TextEmbedder>>,
    ) -> Self {
        self.search = Some(index);
        self.query_vectors = Arc::new(QueryVectorCache::new(settings.query_cache));
        self.search_settings = Arc::new(settings);
        self.embedder = embedder;
        self
    }

    /// Save trained model sets under this artifact store.
    pub fn with_artifacts(mut self, artifacts: ArtifactStore) -> Self {
        self.artifacts = Some(artifacts);
        self
    }

    /// Run CPU-bound engine work (ranking) off the async executor, at most one task per
    /// core at a time.
    pub async fn compute<T, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Storage) -> souk_engine::Result<T> + Send + 'static,
    {
        let _permit = self.compute.acquire().await.map_err(|e| ApiError::internal("waiting for a worker", e))?;
        self.blocking(work).await
    }

    /// Run blocking engine work off the async executor.
    pub async fn blocking<T, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Storage) -> souk_engine::Result<T> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || work(store.as_ref()))
            .await
            .map_err(|e| ApiError::internal("running a storage task", e))?
            .map_err(ApiError::from)
    }
}
