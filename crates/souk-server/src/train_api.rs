//! `POST /v1/train`: retrain the model set now; and the background retraining loop.
//!
//! Training runs on a blocking thread while the old model set keeps serving; the new set
//! is saved (if the server has an artifact store) and swapped in whole. Every training is a
//! `train` job (`GET /v1/jobs`); with `wait=false` the request returns the queued job at
//! once instead of waiting for the manifest.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::body::Query;
use crate::error::{ApiError, ApiResult};
use crate::jobs_api::{job_out, JobOut};
use crate::report_wire::TrainReportOut;
use crate::state::AppState;

/// Train, save and swap (beside serving, at a lower CPU priority); returns the new manifest.
/// Fails with 409 if a training is running.
pub async fn train_now(state: &AppState) -> ApiResult<TrainReportOut> {
    Ok(state.blocking(|shop| shop.train_beside_serving()).await?.into())
}

/// Query of `POST /v1/train`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TrainQuery {
    /// Wait for the training to finish and answer its manifest (default true); `false`:
    /// answer 202 with the queued job at once and follow it at `/v1/jobs/{id}`.
    pub wait: Option<bool>,
}

/// Retrain now (admin).
#[utoipa::path(post, path = "/v1/train", tag = "recommendations", params(TrainQuery),
    responses((status = 200, description = "The new model set's report", body = TrainReportOut),
        (status = 202, description = "With wait=false: the queued training job", body = JobOut),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn post_train(State(state): State<AppState>, Query(query): Query<TrainQuery>) -> ApiResult<Response> {
    if query.wait == Some(false) {
        let shop = state.shop.clone();
        let job = tokio::task::spawn_blocking(move || shop.train_in_background())
            .await
            .map_err(|e| ApiError::internal("starting a training", e))??;
        return Ok((StatusCode::ACCEPTED, Json(job_out(job))).into_response());
    }
    Ok(Json(train_now(&state).await?).into_response())
}

/// Every `every`, teach the online click model the pages whose click window closed (the
/// shop saves it now and then).
pub async fn online_loop(state: AppState, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    loop {
        ticker.tick().await;
        if let Err(e) = state.blocking(|shop| shop.learn_online()).await {
            tracing::warn!(code = e.body.code, message = e.body.message, "online learning failed");
        }
    }
}

/// Every `every`, retrain if events arrived since the live model set was trained.
pub async fn retrain_loop(state: AppState, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        match state.blocking(|shop| shop.has_untrained_events()).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(code = e.body.code, "background retraining: could not read stats");
                continue;
            }
        }
        match train_now(&state).await {
            Ok(_) => tracing::info!("background retraining finished"),
            Err(e) => tracing::warn!(code = e.body.code, message = e.body.message, "background retraining failed"),
        }
    }
}

/// Every `every`, finish the erasures still on disk ([`erasure_round`]): an erased user's
/// events leave the event log within `every` plus one compaction (none starts while writes
/// are refused), and the model files within `every` plus one training.
pub async fn erasure_loop(state: AppState, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    loop {
        ticker.tick().await;
        erasure_round(&state).await;
    }
}

/// Remove erased users from the disk now, while serving: the event log is compacted
/// without their events (the catalog deleted and checkpointed them at the erasure), then,
/// when a stored model generation may still hold them, a training replaces every
/// generation. Failures are logged; the next round tries again.
pub async fn erasure_round(state: &AppState) {
    match state.blocking(|shop| shop.compact_erased_events()).await {
        Ok(Some(report)) => {
            tracing::info!(
                removed = report.removed_events,
                kept = report.kept_events,
                "erased events left the event log"
            )
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(code = e.body.code, message = e.body.message, "compacting erased events failed"),
    }
    if !state.shop.erasure_pending() {
        return;
    }
    match train_now(state).await {
        Ok(_) => tracing::info!("trained away an erased user's model generations"),
        Err(e) if e.body.code == "training_in_progress" => {}
        Err(e) => tracing::warn!(code = e.body.code, message = e.body.message, "erasure retraining failed"),
    }
}
