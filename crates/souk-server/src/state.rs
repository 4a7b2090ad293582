//! Shared state of the HTTP server and its configuration.

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use souk_engine::rank::rerank::Rules;
use souk_engine::serving::Shop;

use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::rate_limit::RateLimits;

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
    /// Origins whose web pages may call the API from a browser (CORS), e.g.
    /// `["https://shop.example"]`. Empty (the default): no cross-origin access.
    pub cors_origins: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7700".into(),
            max_body_bytes: 16 * 1024 * 1024,
            max_batch: 10_000,
            cors_origins: Vec::new(),
        }
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
        for (i, origin) in self.cors_origins.iter().enumerate() {
            let host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
            let valid = host.is_some_and(|h| !h.is_empty() && !h.contains(['/', ' ', '*', '?', '#']))
                && axum::http::HeaderValue::from_str(origin).is_ok();
            if !valid {
                problems.push((
                    format!("server.cors_origins[{i}]"),
                    format!(
                        "expected an origin like https://shop.example (scheme and host, no path), found {origin:?}"
                    ),
                ));
            }
        }
        problems
    }
}

/// Access control (`[auth]`).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// With a master key, every `/v1` route needs `Authorization: Bearer KEY` (the master
    /// key, or a key created with `POST /v1/keys` that has the route's scope). Also from
    /// `SOUK_MASTER_KEY`.
    pub master_key: Option<String>,
    /// Requests per second each API key may make (a token bucket per key); 0, the default,
    /// leaves keys without a rate of their own unlimited. A key may carry its own rate.
    pub rate_per_second: f64,
    /// Requests a key may make at once above its rate; 0 means one second's worth.
    pub rate_burst: u32,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("master_key", &self.master_key.as_ref().map(|_| "(set)"))
            .field("rate_per_second", &self.rate_per_second)
            .field("rate_burst", &self.rate_burst)
            .finish()
    }
}

/// The shortest master key accepted.
pub const MIN_MASTER_KEY: usize = 16;

impl AuthConfig {
    /// Problems with this configuration, each with the offending key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if let Some(key) = self.master_key.as_ref().filter(|k| k.chars().count() < MIN_MASTER_KEY) {
            problems.push((
                "auth.master_key".into(),
                format!("expected at least {MIN_MASTER_KEY} characters, found {}", key.chars().count()),
            ));
        }
        if !(self.rate_per_second.is_finite() && (0.0..=1e6).contains(&self.rate_per_second)) {
            problems.push((
                "auth.rate_per_second".into(),
                format!("expected 0 (no limit) ..= 1000000, found {}", self.rate_per_second),
            ));
        }
        problems
    }
}

/// What every handler can reach: the shop (the engine's one entry point) and what only
/// the server has (its settings, metrics, the compute permits).
#[derive(Clone)]
pub struct AppState {
    pub shop: Arc<Shop>,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<Metrics>,
    pub started: Instant,
    /// Permits for CPU-bound request work (two per core): requests queue in order instead
    /// of all sharing the cores at once, which keeps tail latency down under load.
    pub compute: Arc<tokio::sync::Semaphore>,
    /// The master key (`None`: no access control, for a server on the loopback address).
    pub master_key: Option<Arc<str>>,
    /// Every key's token bucket.
    pub limits: Arc<RateLimits>,
}

impl AppState {
    pub fn new(shop: Shop, config: ServerConfig) -> Self {
        Self {
            shop: Arc::new(shop),
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            started: Instant::now(),
            compute: Arc::new(tokio::sync::Semaphore::new(
                2 * std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            )),
            master_key: None,
            limits: Arc::new(RateLimits::default()),
        }
    }

    /// Require keys on every `/v1` route, with this master key.
    pub fn with_auth(mut self, auth: &AuthConfig) -> Self {
        self.master_key = auth.master_key.as_deref().map(Arc::from);
        self.limits = Arc::new(RateLimits::new(auth.rate_per_second, auth.rate_burst));
        self
    }

    /// Run CPU-bound engine work (ranking) off the async executor, at most two tasks per
    /// core at a time.
    pub async fn compute<T, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Shop) -> souk_engine::Result<T> + Send + 'static,
    {
        let _permit = self.compute.acquire().await.map_err(|e| ApiError::internal("waiting for a worker", e))?;
        self.blocking(work).await
    }

    /// Run blocking engine work off the async executor.
    pub async fn blocking<T, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Shop) -> souk_engine::Result<T> + Send + 'static,
    {
        let shop = self.shop.clone();
        tokio::task::spawn_blocking(move || work(shop.as_ref()))
            .await
            .map_err(|e| ApiError::internal("running a storage task", e))?
            .map_err(ApiError::from)
    }
}

/// A request's re-ranking rules, given as JSON text (empty: none).
pub fn parse_rules(text: Option<&str>) -> ApiResult<Rules> {
    match text.filter(|t| !t.trim().is_empty()) {
        None => Ok(Rules::default()),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| ApiError::bad_request("invalid_rule", format!("rules: {e}"), "rules")),
    }
}
