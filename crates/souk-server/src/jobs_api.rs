//! `GET /v1/jobs`, `GET /v1/jobs/{id}`: trainings and other long work with their progress
//! and recent history (kept in memory by the shop: a restart forgets the history).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use souk_engine::serving::jobs::Job;
use utoipa::ToSchema;

use crate::body::Path;
use crate::error::ApiResult;
use crate::state::AppState;

/// A job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobOut {
    pub id: String,
    /// `train` or `embed`.
    pub kind: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// Share done, 0..=1.
    pub progress: f64,
    /// Unix ms when it was queued.
    pub queued_at: i64,
    /// Unix ms when it started running (absent while queued).
    pub started_at: Option<i64>,
    /// Unix ms when it ended (absent while it runs).
    pub finished_at: Option<i64>,
    /// The step running now; the outcome or the error once it ended.
    pub message: String,
}

/// Jobs, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobsOut {
    pub jobs: Vec<JobOut>,
}

pub fn job_out(job: Job) -> JobOut {
    JobOut {
        id: job.id,
        kind: job.kind.as_str().into(),
        state: job.state.as_str().into(),
        progress: job.progress,
        queued_at: job.queued_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
        message: job.message,
    }
}

/// Every job still remembered (the last 100), newest first.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", responses((status = 200, body = JobsOut)))]
pub async fn list_jobs(State(state): State<AppState>) -> ApiResult<Json<JobsOut>> {
    let jobs = state.shop.jobs();
    Ok(Json(JobsOut { jobs: jobs.into_iter().map(job_out).collect() }))
}

/// One job.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses((status = 200, body = JobOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_job(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<JobOut>> {
    Ok(Json(job_out(state.shop.job(&id)?)))
}
