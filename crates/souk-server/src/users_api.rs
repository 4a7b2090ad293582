//! `/v1/users`: users, their social edges, erasure and export.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use souk_engine::serving::page_log::now_ms;
use souk_engine::{input, Error, Follow, UserId};

use crate::body::{json_value, read_limited, Path, Query};
use crate::error::{ApiError, ApiResult};
use crate::items_api::reconcile_id;
use crate::report_wire::ProfileOut;
use crate::state::AppState;
use crate::wire::{Erased, EventOut, FollowOut, UserEventsOut, UserOut};

fn path_user_id(id: &str, field: &str) -> ApiResult<UserId> {
    UserId::parse(id, field).map_err(ApiError::validation)
}

/// Create or replace a user.
#[utoipa::path(put, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    request_body = crate::wire::UserIn,
    responses((status = 200, body = UserOut), (status = 400, body = crate::error::ErrorBody)))]
pub async fn put_user(State(state): State<AppState>, Path(id): Path<String>, body: Body) -> ApiResult<Json<UserOut>> {
    path_user_id(&id, "id")?;
    let bytes = read_limited(body, state.config.max_body_bytes).await?;
    let mut value = if bytes.iter().all(u8::is_ascii_whitespace) { json!({}) } else { json_value(&bytes)? };
    reconcile_id(&mut value, &id)?;
    let user = input::parse_user(&value).map_err(ApiError::validation)?;
    let stored = UserOut::from(user.clone());
    state.blocking(move |shop| shop.store().put_users(vec![user])).await?;
    Ok(Json(stored))
}

/// Read a user with their social edges.
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserOut), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_user(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<UserOut>> {
    let user_id = path_user_id(&id, "id")?;
    let (user, follows, recent) = state
        .blocking(move |shop| {
            let store = shop.store();
            Ok((store.get_user(&user_id)?, store.follows_of(&user_id)?, store.user_events(&user_id, 1)?))
        })
        .await?;
    if user.is_none() && follows.is_empty() && recent.is_empty() {
        return Err(ApiError::not_found("user", &id));
    }
    let mut out = match user {
        Some(user) => UserOut::from(user),
        None => UserOut { id, attributes: Default::default(), preferences: None, follows: None },
    };
    out.follows = Some(
        follows
            .into_iter()
            .map(|f| FollowOut { other: f.other.into_string(), kind: f.kind.as_str().to_string() })
            .collect(),
    );
    Ok(Json(out))
}

/// Erase a user: their record, events and social edges.
#[utoipa::path(delete, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "What was erased", body = Erased)))]
pub async fn delete_user(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Erased>> {
    let user_id = path_user_id(&id, "id")?;
    let report = state.blocking(move |shop| shop.erase_user(&user_id)).await?;
    Ok(Json(Erased { user_record: report.user_record, events: report.events, social_edges: report.social_edges }))
}

/// Query of `GET /v1/users/{id}/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct EventsQuery {
    /// How many of the most recent events (default 100, at most 10000).
    #[param(minimum = 1, maximum = 10000)]
    pub n: Option<usize>,
}

/// A user's most recent events, newest first (the whole record: `GET /v1/users/{id}/export`).
#[utoipa::path(get, path = "/v1/users/{id}/events", tag = "users",
    params(("id" = String, Path, description = "User id"), EventsQuery),
    responses((status = 200, description = "Events, newest first", body = UserEventsOut),
        (status = 400, body = crate::error::ErrorBody)))]
pub async fn get_user_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
) -> ApiResult<Json<UserEventsOut>> {
    let user_id = path_user_id(&id, "id")?;
    let n = query.n.unwrap_or(100);
    if !(1..=10_000).contains(&n) {
        return Err(ApiError::bad_request("invalid_number", format!("expected n in 1..=10000, found {n}"), "n"));
    }
    let events = state.blocking(move |shop| shop.store().user_events(&user_id, n)).await?;
    Ok(Json(UserEventsOut { user: id, events: events.into_iter().map(EventOut::from).collect() }))
}

/// A user's data export, streamed as NDJSON (`application/x-ndjson`), one record per line
/// tagged by `record`: first `user` (`id`, `exported_at`, their stored record or null), then
/// every stored `event` oldest first, every `follow` they made, every experiment `exposure`,
/// and last `end` with the counts — a stream cut short has no `end` line.
#[utoipa::path(get, path = "/v1/users/{id}/export", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "NDJSON records: user, event…, follow…, exposure…, end",
        content_type = "application/x-ndjson", body = String),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn export_user(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    /// Lines are sent in chunks of about this many bytes.
    const CHUNK: usize = 64 * 1024;
    let user_id = path_user_id(&id, "id")?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
    let (found_tx, found_rx) = tokio::sync::oneshot::channel::<souk_engine::Result<bool>>();
    let shop = state.shop.clone();
    tokio::task::spawn_blocking(move || {
        let mut found_tx = Some(found_tx);
        let mut chunk = Vec::with_capacity(CHUNK);
        let outcome = shop.export_user(&user_id, now_ms(), &mut |record| {
            if let Some(found) = found_tx.take() {
                let _ = found.send(Ok(true));
            }
            serde_json::to_writer(&mut chunk, &record).map_err(|e| Error::Internal(format!("encoding: {e}")))?;
            chunk.push(b'\n');
            if chunk.len() >= CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                tx.blocking_send(full).map_err(|_| Error::Internal("the client went away".into()))?;
            }
            Ok(())
        });
        match (outcome, found_tx) {
            (outcome, Some(found)) => {
                let _ = found.send(outcome);
            }
            (Ok(_), None) if !chunk.is_empty() => {
                let _ = tx.blocking_send(chunk);
            }
            (Ok(_), None) => {}
            // Mid-stream: the response is under way; ending it without the `end` line
            // tells the reader it is incomplete.
            (Err(e), None) => tracing::warn!(error = %e, "a user export stopped early"),
        }
    });
    match found_rx.await.map_err(|e| ApiError::internal("running a storage task", e))? {
        Ok(true) => {}
        Ok(false) => return Err(ApiError::not_found("user", &id)),
        Err(e) => return Err(ApiError::from(e)),
    }
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
    });
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream)).into_response())
}

/// Follow (or befriend, or trust) another user.
#[utoipa::path(put, path = "/v1/users/{id}/follows/{other}", tag = "users",
    params(("id" = String, Path, description = "User id"), ("other" = String, Path, description = "Followed user id")),
    request_body(content = Option<crate::wire::FollowIn>, description = "Optional: {\"kind\": \"follow\" | \"friend\" | \"trust\"}"),
    responses((status = 204, description = "Stored"), (status = 400, body = crate::error::ErrorBody)))]
pub async fn put_follow(
    State(state): State<AppState>,
    Path((id, other)): Path<(String, String)>,
    body: Body,
) -> ApiResult<StatusCode> {
    let bytes = read_limited(body, state.config.max_body_bytes).await?;
    let mut value = if bytes.iter().all(u8::is_ascii_whitespace) { json!({}) } else { json_value(&bytes)? };
    // The body is optional: `null` says "no body" as an empty one does.
    if value.is_null() {
        value = json!({});
    }
    let Value::Object(map) = &mut value else {
        return Err(ApiError::bad_request("invalid_type", "expected a JSON object", "body"));
    };
    if let Some(key) = map.keys().find(|k| !matches!(k.as_str(), "kind" | "created_at")) {
        return Err(ApiError::bad_request(
            "unknown_field",
            "unknown field of a follow; expected kind, created_at",
            key.clone(),
        ));
    }
    map.insert("user".into(), Value::String(id));
    map.insert("other".into(), Value::String(other));
    let follow: Follow = input::parse_follow(&value).map_err(ApiError::validation)?;
    state.blocking(move |shop| shop.store().put_follows(vec![follow])).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a social edge.
#[utoipa::path(delete, path = "/v1/users/{id}/follows/{other}", tag = "users",
    params(("id" = String, Path, description = "User id"), ("other" = String, Path, description = "Followed user id")),
    responses((status = 204, description = "Removed"), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete_follow(
    State(state): State<AppState>,
    Path((id, other)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let user = path_user_id(&id, "user")?;
    let other_id = path_user_id(&other, "other")?;
    if state.blocking(move |shop| shop.store().delete_follow(&user, &other_id)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("follow", &format!("{id} -> {other}")))
    }
}

/// A user's profile: what their events say about their tastes (affinities to categories,
/// brands and attribute values, price band, funnel stage, activity, rating sentiment), their
/// preference vector from the live factor model, stated preferences and social edges.
#[utoipa::path(get, path = "/v1/users/{id}/profile", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "The profile", body = ProfileOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_profile(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<ProfileOut>> {
    let user_id = path_user_id(&id, "id")?;
    let overview = state.compute(move |shop| shop.user_overview(&user_id, now_ms())).await?;
    Ok(Json(overview.ok_or_else(|| ApiError::not_found("user", &id))?.into()))
}

/// Query of `GET /v1/users`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct UsersQuery {
    /// How many shoppers (default 20, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// A category and its share of a shopper's latest interactions.
#[derive(Debug, serde::Serialize, Deserialize, utoipa::ToSchema)]
pub struct CategoryShareOut {
    pub category: String,
    /// 0..=1.
    pub share: f64,
}

/// One of the most active shoppers.
#[derive(Debug, serde::Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShopperOut {
    pub id: String,
    /// Their live events.
    pub events: u64,
    /// Unix ms of their latest event.
    pub last_seen: i64,
    /// Top-level categories of their latest 200 interactions, largest share first.
    pub top_categories: Vec<CategoryShareOut>,
}

/// The most active shoppers.
#[derive(Debug, serde::Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShoppersOut {
    pub users: Vec<ShopperOut>,
}

/// The most active shoppers (most live events first) with their top categories — for a
/// storefront's shopper switcher and for operators (admin).
#[utoipa::path(get, path = "/v1/users", tag = "users", params(UsersQuery),
    responses((status = 200, body = ShoppersOut), (status = 400, body = crate::error::ErrorBody)))]
pub async fn list_users(
    State(state): State<AppState>,
    Query(query): Query<UsersQuery>,
) -> ApiResult<Json<ShoppersOut>> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=1_000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_number",
            format!("expected limit in 1..=1000, found {limit}"),
            "limit",
        ));
    }
    let shoppers = state.compute(move |shop| shop.shoppers(limit)).await?;
    let users = shoppers
        .into_iter()
        .map(|s| ShopperOut {
            id: s.id,
            events: s.events,
            last_seen: s.last_seen_ms,
            top_categories: s
                .top_categories
                .into_iter()
                .map(|(category, share)| CategoryShareOut { category, share })
                .collect(),
        })
        .collect();
    Ok(Json(ShoppersOut { users }))
}
