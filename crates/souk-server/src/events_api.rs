//! `POST /v1/events`: streaming ingest of events (JSON array or NDJSON).
//!
//! A batch is all-or-nothing: every event is validated before any is stored, so a bad
//! event leaves the store unchanged. The answer comes only after the batch is durable.

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use souk_engine::input;

use crate::body::{is_ndjson, json_raw_list, read_limited, utf8_body};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::wire::Accepted;

/// Ingest a batch of events.
#[utoipa::path(
    post, path = "/v1/events", tag = "events",
    request_body(content = Vec<crate::wire::EventIn>, description = "A JSON array of events, or NDJSON with Content-Type application/x-ndjson"),
    responses(
        (status = 200, description = "All events durably stored", body = Accepted),
        (status = 400, description = "Invalid event; nothing stored", body = crate::error::ErrorBody),
        (status = 413, description = "Body or batch too large", body = crate::error::ErrorBody),
    )
)]
pub async fn post_events(State(state): State<AppState>, headers: HeaderMap, body: Body) -> ApiResult<Json<Accepted>> {
    let bytes = read_limited(body, state.config.max_body_bytes).await?;
    let max_batch = state.config.max_batch;
    // Parsing a large batch takes milliseconds: keep it off the async executor.
    let ndjson = is_ndjson(&headers);
    let events = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        let text = utf8_body(&bytes)?;
        let records = json_raw_list(text, ndjson, "events")?;
        if records.len() > max_batch {
            return Err(ApiError::new(
                "too_many_events",
                format!("expected at most {max_batch} events per request, found {}", records.len()),
                Some("events".into()),
            ));
        }
        records
            .iter()
            .enumerate()
            .map(|(i, json)| {
                input::parse_event_json(json).map_err(|e| ApiError::validation(e.within(&format!("events[{i}]"))))
            })
            .collect::<ApiResult<Vec<_>>>()
    })
    .await
    .map_err(|e| ApiError::internal("parsing events", e))??;
    let outcome = state.blocking(move |shop| shop.ingest(events)).await?;
    state.metrics.events_stored.fetch_add(outcome.accepted - outcome.duplicates, Ordering::Relaxed);
    state.metrics.events_duplicate.fetch_add(outcome.duplicates, Ordering::Relaxed);
    Ok(Json(Accepted { accepted: outcome.accepted, duplicates: outcome.duplicates }))
}
