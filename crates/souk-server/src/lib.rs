//! Souk's HTTP server: the axum router, wire types, the one error mapping, metrics and the
//! embedded pages (the storefront and the admin console).
//!
//! Handlers parse and validate on worker threads, call the engine through
//! [`souk_engine::store::Storage`] with `spawn_blocking`, and never block the executor.
//! Wire types live only here.

pub mod auth;
pub mod body;
pub mod connections;
pub mod error;
pub mod events_api;
pub mod experiments_api;
pub mod items_api;
pub mod jobs_api;
pub mod keys_api;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
pub mod recommend_api;
pub mod report_wire;
pub mod search_api;
pub mod state;
pub mod stats_api;
pub mod suggest_api;
pub mod train_api;
pub mod users_api;
pub mod web;
pub mod wire;

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use utoipa::OpenApi;

pub use state::{AppState, AuthConfig, ServerConfig};

/// The OpenAPI document, generated from the handlers and wire types (served with the
/// additions of [`openapi::document`]).
#[derive(OpenApi)]
#[openapi(
    info(title = "Souk", description = "E-commerce search and recommendation engine"),
    paths(
        events_api::post_events,
        items_api::put_item,
        items_api::post_items,
        items_api::get_item,
        items_api::delete_item,
        users_api::put_user,
        users_api::get_user,
        users_api::delete_user,
        users_api::get_user_events,
        users_api::export_user,
        users_api::get_profile,
        users_api::list_users,
        search_api::get_search,
        search_api::post_search,
        suggest_api::get_suggest,
        users_api::put_follow,
        users_api::delete_follow,
        stats_api::get_stats,
        stats_api::get_activity,
        stats_api::health,
        stats_api::metrics,
        recommend_api::get_recommendations,
        recommend_api::get_similar,
        recommend_api::get_bought_together,
        recommend_api::get_trending,
        train_api::post_train,
        jobs_api::list_jobs,
        jobs_api::get_job,
        experiments_api::post_experiment,
        experiments_api::list_experiments,
        experiments_api::get_experiment,
        experiments_api::start_experiment,
        experiments_api::stop_experiment,
        experiments_api::get_report,
        keys_api::post_key,
        keys_api::list_keys,
        keys_api::delete_key,
        web::index,
        web::admin,
        web::asset,
        openapi,
    ),
    components(schemas(
        error::ErrorBody,
        wire::EventIn,
        wire::ItemIn,
        wire::UserIn,
        wire::FollowIn,
        wire::Accepted,
        wire::StatsOut,
        wire::Health,
        wire::Erased,
        wire::ItemOut,
        wire::UserOut,
        wire::FollowOut,
        wire::EventOut,
        wire::UserEventsOut,
        recommend_api::RecommendationsOut,
        recommend_api::RecommendedItem,
        recommend_api::ReasonOut,
        recommend_api::EffectOut,
        recommend_api::RankerOut,
        search_api::SearchOut,
        search_api::SearchItem,
        search_api::ExplainOut,
        search_api::FacetsOut,
        search_api::FacetCountOut,
        search_api::PriceBucketOut,
        search_api::PersonalOut,
        search_api::SearchBody,
        experiments_api::ExperimentOut,
        experiments_api::ArmOut,
        experiments_api::ReportOut,
        experiments_api::ArmReportOut,
        experiments_api::ExposureOut,
        experiments_api::MetricOut,
        experiments_api::SrmOut,
        experiments_api::ComparisonOut,
        keys_api::CreatedKeyOut,
        keys_api::KeyOut,
        jobs_api::JobOut,
        jobs_api::JobsOut,
        suggest_api::SuggestOut,
        suggest_api::SuggestionOut,
        users_api::ShoppersOut,
        users_api::ShopperOut,
        users_api::CategoryShareOut,
        stats_api::ActivityOut
    ))
)]
pub struct ApiDoc;

/// This document: every route, its parameters and its typed responses.
#[utoipa::path(get, path = "/openapi.json", tag = "stats",
    responses((status = 200, description = "The OpenAPI 3 document", body = Object, content_type = "application/json")))]
async fn openapi(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(openapi::document(state.shop.has_embedder()))
}

/// Count and time every request by its route pattern (not its raw path: bounded labels).
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    // The path without its query string (which may hold a shopper's search).
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    state.metrics.observe_request(&method, &route, status, seconds);
    // The access log: one line per request (target `souk::access`, so that a level such
    // as `info,souk::access=warn` silences it; JSON with `log.format = "json"`).
    tracing::info!(target: "souk::access", %method, %route, path = %path, status, ms = seconds * 1e3, "request");
    response
}

async fn fallback() -> error::ApiError {
    error::ApiError::new("no_route", "no such endpoint", None)
}

async fn method_not_allowed(method: axum::http::Method) -> error::ApiError {
    error::ApiError::new("method_not_allowed", format!("this endpoint does not answer {method}"), None)
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(web::index))
        .route("/admin", get(web::admin))
        .route("/web/{file}", get(web::asset))
        .route("/health", get(stats_api::health))
        .route("/metrics", get(stats_api::metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/stats", get(stats_api::get_stats))
        .route("/v1/stats/activity", get(stats_api::get_activity))
        .route("/v1/suggest", get(suggest_api::get_suggest))
        .route("/v1/jobs", get(jobs_api::list_jobs))
        .route("/v1/jobs/{id}", get(jobs_api::get_job))
        .route("/v1/users", get(users_api::list_users))
        .route("/v1/events", post(events_api::post_events))
        .route("/v1/items", post(items_api::post_items))
        .route("/v1/items/{id}", put(items_api::put_item).get(items_api::get_item).delete(items_api::delete_item))
        .route("/v1/users/{id}", put(users_api::put_user).get(users_api::get_user).delete(users_api::delete_user))
        .route("/v1/users/{id}/events", get(users_api::get_user_events))
        .route("/v1/users/{id}/export", get(users_api::export_user))
        .route("/v1/users/{id}/profile", get(users_api::get_profile))
        .route("/v1/users/{id}/recommendations", get(recommend_api::get_recommendations))
        .route("/v1/items/{id}/similar", get(recommend_api::get_similar))
        .route("/v1/items/{id}/bought-together", get(recommend_api::get_bought_together))
        .route("/v1/trending", get(recommend_api::get_trending))
        .route("/v1/search", get(search_api::get_search).post(search_api::post_search))
        .route("/v1/train", post(train_api::post_train))
        .route("/v1/experiments", post(experiments_api::post_experiment).get(experiments_api::list_experiments))
        .route("/v1/experiments/{id}", get(experiments_api::get_experiment))
        .route("/v1/experiments/{id}/start", post(experiments_api::start_experiment))
        .route("/v1/experiments/{id}/stop", post(experiments_api::stop_experiment))
        .route("/v1/experiments/{id}/report", get(experiments_api::get_report))
        .route("/v1/keys", post(keys_api::post_key).get(keys_api::list_keys))
        .route("/v1/keys/{id}", delete(keys_api::delete_key))
        .route("/v1/users/{id}/follows/{other}", put(users_api::put_follow).delete(users_api::delete_follow))
        // After every route: a route added below this line would not be checked.
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::authorize))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(auth::same_site_bodies))
        .layer(middleware::from_fn(connections::head_limits))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(tower::util::option_layer(cors(&state.config.cors_origins)))
        .with_state(state)
}

/// Cross-origin access for the configured origins only (`[server] cors_origins`); with none,
/// no CORS headers at all, so browsers keep other sites' pages out. Answers preflights
/// before access control (a preflight carries no key).
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{header, HeaderValue, Method};
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    if origins.is_empty() {
        return None;
    }
    let layer = tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(600));
    Some(layer)
}

/// Serve until `shutdown` resolves, then finish in-flight requests and return. Every
/// acknowledged write is already durable, so nothing is left to flush afterwards.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    connections::serve_connections(listener, router(state), shutdown).await
}
