//! `POST /v1/train`: retrain the model set now; and the background retraining loop.
//!
//! Training runs on a blocking thread while the old model set keeps serving; the new set
//! is saved (if the server has an artifact store) and swapped in whole.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::Json;
use souk_engine::serving::training::{self, Trained, Training};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Train, save and swap; returns the new manifest. Fails with 409 if a training is running.
pub async fn train_now(state: &AppState) -> ApiResult<serde_json::Value> {
    let Ok(_guard) = state.training.try_lock() else {
        return Err(ApiError::new("training_in_progress", "a training is already running", None));
    };
    let settings = state.recommend.clone();
    let artifacts = state.artifacts.clone();
    let log = state.feature_log.clone();
    let search_log = state.search_feature_log.clone();
    let ranking = state.ranking.clone();
    let serving = state.models.load_full();
    let Trained { set, generation, ranker, search_ranker } = state
        .blocking(move |store| {
            let training = Training {
                config: &settings.config,
                weights: &settings.weights,
                gbdt: &ranking.gbdt,
                log: log.as_deref(),
                search_log: search_log.as_deref(),
                serving: serving.as_deref(),
                artifacts: artifacts.as_ref(),
                now_ms: crate::page::now_ms(),
            };
            training::train(store, &training)
        })
        .await?;
    let manifest = serde_json::to_value(&set.manifest).map_err(|e| ApiError::internal("encoding the manifest", e))?;
    let ranker = serde_json::to_value(&ranker).map_err(|e| ApiError::internal("encoding the ranker report", e))?;
    let search_ranker =
        serde_json::to_value(&search_ranker).map_err(|e| ApiError::internal("encoding the ranker report", e))?;
    if let Some(search) = &state.search {
        search.set_popularity(crate::search_api::popularity_of(&set));
    }
    state.models.store(Some(Arc::new(set)));
    tracing::info!(generation = generation.as_deref().unwrap_or("in-memory"), "model set swapped");
    Ok(serde_json::json!({
        "generation": generation,
        "manifest": manifest,
        "ranker": ranker,
        "search_ranker": search_ranker,
    }))
}

/// Retrain now (admin).
#[utoipa::path(post, path = "/v1/train", tag = "recommendations",
    responses((status = 200, description = "The new model set's manifest"), (status = 409, body = crate::error::ErrorBody)))]
pub async fn post_train(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    train_now(&state).await.map(Json)
}

/// Every `every`, teach the online click model the pages whose click window closed, and
/// save it every tenth time it learned something (and once it goes quiet).
pub async fn online_loop(state: AppState, every: Duration) {
    let Some((online, path)) = state.online.clone() else { return };
    let mut ticker = tokio::time::interval(every);
    let mut unsaved = 0usize;
    loop {
        ticker.tick().await;
        let learned = online.flush(crate::page::now_ms());
        if learned > 0 {
            unsaved += 1;
        }
        if unsaved >= 10 || (unsaved > 0 && learned == 0) {
            let (online, path) = (online.clone(), path.clone());
            match tokio::task::spawn_blocking(move || online.save(&path)).await {
                Ok(Ok(())) => unsaved = 0,
                Ok(Err(e)) => tracing::warn!(error = %e, "saving the online click model failed"),
                Err(e) => tracing::warn!(error = %e, "saving the online click model failed"),
            }
        }
    }
}

/// Every `every`, retrain if events arrived since the live model set was trained.
pub async fn retrain_loop(state: AppState, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let trained_on = state.models.load().as_ref().map(|m| m.manifest.events);
        let events = match state.blocking(|store| store.stats()).await {
            Ok(stats) => stats.events,
            Err(e) => {
                tracing::warn!(code = e.body.code, "background retraining: could not read stats");
                continue;
            }
        };
        if events == 0 || trained_on == Some(events) {
            continue;
        }
        match train_now(&state).await {
            Ok(_) => tracing::info!(events, "background retraining finished"),
            Err(e) => tracing::warn!(code = e.body.code, message = e.body.message, "background retraining failed"),
        }
    }
}
