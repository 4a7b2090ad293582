//! `GET /v1/stats`, `GET /v1/stats/activity`, `GET /health`, `GET /metrics`.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::wire::{Health, StatsOut};

/// Counts of what the store holds (the same JSON as `souk stats --json`).
#[utoipa::path(get, path = "/v1/stats", tag = "stats", responses((status = 200, body = StatsOut)))]
pub async fn get_stats(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let stats = state.blocking(|shop| shop.store().stats()).await?;
    Ok(Json(serde_json::to_value(stats).map_err(|e| ApiError::internal("encoding stats", e))?))
}

/// Query of `GET /v1/stats/activity`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct ActivityQuery {
    /// About how many time buckets (default 60, at most 1000); the width is a round one
    /// (1, 5, 15 minutes, 1, 3, 6, 12 hours, a day, a week, 30 days).
    #[param(minimum = 1, maximum = 1000)]
    pub buckets: Option<usize>,
}

/// Live events per time bucket and type, from the first event to the last.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ActivityOut {
    /// Unix ms where the first bucket starts.
    pub start: i64,
    pub bucket_ms: i64,
    /// Per event type that occurs, one count per bucket.
    pub series: std::collections::BTreeMap<String, Vec<u64>>,
}

/// Events over time, by type (admin).
#[utoipa::path(get, path = "/v1/stats/activity", tag = "stats", params(ActivityQuery),
    responses((status = 200, body = ActivityOut), (status = 400, body = crate::error::ErrorBody)))]
pub async fn get_activity(
    State(state): State<AppState>,
    crate::body::Query(query): crate::body::Query<ActivityQuery>,
) -> ApiResult<Json<ActivityOut>> {
    let buckets = query.buckets.unwrap_or(60);
    if !(1..=1_000).contains(&buckets) {
        return Err(ApiError::bad_request(
            "invalid_number",
            format!("expected buckets in 1..=1000, found {buckets}"),
            "buckets",
        ));
    }
    let activity = state.compute(move |shop| shop.activity(buckets)).await?;
    Ok(Json(ActivityOut {
        start: activity.start_ms,
        bucket_ms: activity.bucket_ms,
        series: activity.counts.into_iter().map(|(kind, counts)| (kind.to_string(), counts)).collect(),
    }))
}

/// Liveness.
#[utoipa::path(get, path = "/health", tag = "stats", responses((status = 200, body = Health)))]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    // While writes are refused, ask the store to check the disk again (a small write and
    // sync, off the runtime): an idle server sees space return.
    let writes_refused = match state.shop.store().writes_refused() {
        None => None,
        Some(reason) => state.blocking(|shop| Ok(shop.store().check_writes())).await.unwrap_or(Some(reason)),
    };
    Json(Health {
        status: if writes_refused.is_some() { "degraded" } else { "ok" }.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        writes_refused,
    })
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "stats", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let stats = state.blocking(|shop| shop.store().stats()).await?;
    let online = state.shop.online_stats();
    let pages = state.shop.page_log_stats();
    let counters = [
        (
            "souk_searches_logged_total",
            "Searches stored as search and impression events.",
            pages.searches.load(Ordering::Relaxed) as f64,
        ),
        (
            "souk_pages_logged_total",
            "Served pages written to the page log.",
            pages.written.load(Ordering::Relaxed) as f64,
        ),
        (
            "souk_pages_log_dropped_total",
            "Served pages not logged because the page log writer was behind.",
            pages.dropped.load(Ordering::Relaxed) as f64,
        ),
        (
            "souk_pages_log_failed_total",
            "Served pages whose page log write failed.",
            pages.failed.load(Ordering::Relaxed) as f64,
        ),
    ];
    let body = state.metrics.render(
        &counters,
        &[
            ("souk_online_click_examples", "Examples the online click model learned from.", online.examples as f64),
            ("souk_online_click_clicks", "Clicked examples among them.", online.clicks as f64),
            ("souk_online_click_pending_pages", "Logged pages waiting for their clicks.", online.pending_pages as f64),
            (
                "souk_online_click_log_loss",
                "Recent progressive-validation log loss of the online click model (NaN before any example).",
                online.recent_log_loss.unwrap_or(f64::NAN),
            ),
            ("souk_items", "Distinct items known.", stats.items as f64),
            ("souk_users", "Distinct users known.", stats.users as f64),
            ("souk_events", "Events stored.", stats.events as f64),
            ("souk_social_edges", "Social edges stored.", stats.social_edges as f64),
            ("souk_event_log_bytes", "Bytes in the event log.", stats.storage.event_log_bytes as f64),
            ("souk_uptime_seconds", "Seconds since the server started.", state.started.elapsed().as_secs_f64()),
        ],
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body))
}
