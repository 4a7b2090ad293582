//! `/v1/experiments`: create (a draft), list, read, start, stop, report.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use souk_engine::serving::experiment::{Experiment, ExperimentState};
use souk_engine::serving::experiment_report::ExperimentReport;
use utoipa::ToSchema;

use crate::body::{json_value, read_limited, Path};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// One arm: its name, share and pipeline configuration (`sources`, `ranker`, `rules`,
/// `explore_share`, `explore_slots`; absent fields serve the shop's pipeline).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ArmOut {
    pub name: String,
    /// Share of the experiment's users (normalised over the arms).
    pub share: f64,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub pipeline: serde_json::Value,
}

/// An experiment.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExperimentOut {
    pub id: String,
    /// `recommendations` or `search`.
    pub surface: String,
    /// `draft`, `running` or `stopped`.
    pub state: String,
    /// The first arm is the control.
    pub arms: Vec<ArmOut>,
    /// Outcomes count within this many days after a user's first exposure.
    pub window_days: f64,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<i64>,
}

fn state_name(state: ExperimentState) -> &'static str {
    match state {
        ExperimentState::Draft => "draft",
        ExperimentState::Running => "running",
        ExperimentState::Stopped => "stopped",
    }
}

fn experiment_out(e: Experiment) -> ExperimentOut {
    ExperimentOut {
        id: e.id,
        surface: e.surface.as_str().to_string(),
        state: state_name(e.state).to_string(),
        arms: e
            .arms
            .into_iter()
            .map(|a| ArmOut {
                name: a.name,
                share: a.share,
                pipeline: serde_json::to_value(a.pipeline).unwrap_or_default(),
            })
            .collect(),
        window_days: e.window_days,
        created_at: e.created_at,
        started_at: e.started_at,
        stopped_at: e.stopped_at,
    }
}

/// A metric's value in an arm with its 95% interval.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MetricOut {
    pub value: f64,
    pub ci: [f64; 2],
}

/// One arm of a report.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ArmReportOut {
    pub name: String,
    pub share: f64,
    pub users: usize,
    /// Pages served under the arm.
    pub exposures: usize,
    /// `ctr`, `add_to_cart_rate`, `conversion`, `purchases_per_user`, `revenue_per_user`.
    pub metrics: BTreeMap<String, MetricOut>,
    /// What the arm showed, over its logged pages.
    pub exposure: ExposureOut,
}

/// What an arm showed on its logged pages.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExposureOut {
    /// Items shown (with repeats).
    pub shows: u64,
    pub distinct_items: usize,
    /// Distinct items shown over the catalog's items.
    pub coverage: f64,
    /// Gini coefficient of shows over every catalog item (0: equal exposure).
    pub gini: f64,
    /// Share of shows outside the most interacted-with fifth of the catalog.
    pub tail_share: f64,
    /// Mean KL divergence of a shopper's shown category mix from their history's (Steck
    /// 2018, α = 0.01); null when no shopper has both.
    pub miscalibration: Option<f64>,
    pub calibrated_users: usize,
}

/// The sample-ratio-mismatch test of users per arm against the shares.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SrmOut {
    pub chi2: f64,
    pub p_value: f64,
    /// p < 0.001: the split is broken and the comparisons are not trustworthy.
    pub flagged: bool,
}

/// One arm against the control on one metric.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ComparisonOut {
    pub arm: String,
    pub metric: String,
    /// Treatment − control (after CUPED for user-level metrics).
    pub difference: f64,
    /// Relative lift and its 95% interval.
    pub lift: f64,
    pub ci: [f64; 2],
    /// Welch's two-sided p-value, and Holm-adjusted over the report's comparisons.
    pub p_value: f64,
    pub p_value_adjusted: f64,
    /// Bayesian chance (flat prior, normal approximation) that the arm beats the control.
    pub chance_to_beat_control: f64,
    /// Share of the variance CUPED removed with the pre-exposure value of the metric.
    pub cuped_variance_reduction: f64,
}

/// An experiment's report.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReportOut {
    pub id: String,
    pub state: String,
    pub surface: String,
    pub window_days: f64,
    pub arms: Vec<ArmReportOut>,
    pub srm: SrmOut,
    pub comparisons: Vec<ComparisonOut>,
    /// Few users, few conversions, a sample-ratio mismatch.
    pub warnings: Vec<String>,
}

fn report_out(r: ExperimentReport) -> ReportOut {
    ReportOut {
        id: r.id,
        state: state_name(r.state).to_string(),
        surface: r.surface,
        window_days: r.window_days,
        arms: r
            .arms
            .into_iter()
            .map(|a| ArmReportOut {
                name: a.name,
                share: a.share,
                users: a.users,
                exposures: a.exposures,
                metrics: a.metrics.into_iter().map(|(k, m)| (k, MetricOut { value: m.value, ci: m.ci })).collect(),
                exposure: ExposureOut {
                    shows: a.exposure.shows,
                    distinct_items: a.exposure.distinct_items,
                    coverage: a.exposure.coverage,
                    gini: a.exposure.gini,
                    tail_share: a.exposure.tail_share,
                    miscalibration: a.exposure.miscalibration,
                    calibrated_users: a.exposure.calibrated_users,
                },
            })
            .collect(),
        srm: SrmOut { chi2: r.srm.chi2, p_value: r.srm.p_value, flagged: r.srm.flagged },
        comparisons: r
            .comparisons
            .into_iter()
            .map(|c| ComparisonOut {
                arm: c.arm,
                metric: c.metric,
                difference: c.difference,
                lift: c.lift,
                ci: c.ci,
                p_value: c.p_value,
                p_value_adjusted: c.p_value_adjusted,
                chance_to_beat_control: c.chance_to_beat_control,
                cuped_variance_reduction: c.cuped_variance_reduction,
            })
            .collect(),
        warnings: r.warnings,
    }
}

/// Create an experiment (a draft; a draft with the same id is replaced).
#[utoipa::path(post, path = "/v1/experiments", tag = "experiments",
    request_body(content = Object, description = r#"{"id","surface":"recommendations"|"search","arms":[{"name","share",…pipeline configuration…}],"window_days"?}"#),
    responses((status = 200, body = ExperimentOut), (status = 400, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn post_experiment(State(state): State<AppState>, body: Body) -> ApiResult<Json<ExperimentOut>> {
    let value = json_value(&read_limited(body, state.config.max_body_bytes).await?)?;
    let experiment = state.blocking(move |shop| shop.create_experiment(&value)).await?;
    Ok(Json(experiment_out(experiment)))
}

/// Every experiment.
#[utoipa::path(get, path = "/v1/experiments", tag = "experiments",
    responses((status = 200, body = Vec<ExperimentOut>)))]
pub async fn list_experiments(State(state): State<AppState>) -> Json<Vec<ExperimentOut>> {
    Json(state.shop.experiments().into_iter().map(experiment_out).collect())
}

/// One experiment.
#[utoipa::path(get, path = "/v1/experiments/{id}", tag = "experiments",
    params(("id" = String, Path, description = "Experiment id")),
    responses((status = 200, body = ExperimentOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_experiment(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<ExperimentOut>> {
    Ok(Json(experiment_out(state.shop.experiment(&id).map_err(ApiError::from)?)))
}

/// Start a draft (its arms serve from now on).
#[utoipa::path(post, path = "/v1/experiments/{id}/start", tag = "experiments",
    params(("id" = String, Path, description = "Experiment id")),
    responses((status = 200, body = ExperimentOut), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn start_experiment(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<ExperimentOut>> {
    let experiment = state.blocking(move |shop| shop.start_experiment(&id)).await?;
    Ok(Json(experiment_out(experiment)))
}

/// Stop a running experiment (its report stays).
#[utoipa::path(post, path = "/v1/experiments/{id}/stop", tag = "experiments",
    params(("id" = String, Path, description = "Experiment id")),
    responses((status = 200, body = ExperimentOut), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn stop_experiment(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<ExperimentOut>> {
    let experiment = state.blocking(move |shop| shop.stop_experiment(&id)).await?;
    Ok(Json(experiment_out(experiment)))
}

/// An experiment's report: users, exposures and metrics per arm, comparisons with the
/// control, the sample-ratio check and warnings.
#[utoipa::path(get, path = "/v1/experiments/{id}/report", tag = "experiments",
    params(("id" = String, Path, description = "Experiment id")),
    responses((status = 200, body = ReportOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_report(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<ReportOut>> {
    let report = state.compute(move |shop| shop.experiment_report(&id)).await?;
    Ok(Json(report_out(report)))
}
