//! The one mapping from engine errors to HTTP responses.
//!
//! Every error body is `{"code", "message", "field"?}` with a stable `code`. Internal
//! errors are logged here, once, and answered without internals.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use souk_engine::{Error, ValidationError};
use utoipa::ToSchema;

/// The JSON body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `invalid_event_type`.
    pub code: String,
    pub message: String,
    /// The offending field, e.g. `events[3].type`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error on its way to becoming an HTTP response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>, field: Option<String>) -> Self {
        Self { status, body: ErrorBody { code: code.to_string(), message: message.into(), field } }
    }

    pub fn bad_request(code: &str, message: impl Into<String>, field: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message, Some(field.into()))
    }

    pub fn validation(error: ValidationError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error.code, error.message, Some(error.field))
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found: {id}"), None)
    }

    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, context, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("internal error while {context}"), None)
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::Invalid(v) => ApiError::validation(v),
            Error::NotFound { what, id } => ApiError::not_found(what, &id),
            Error::Conflict(message) => ApiError::new(StatusCode::CONFLICT, "conflict", message, None),
            Error::Locked { .. } => ApiError::new(StatusCode::CONFLICT, "locked", error.to_string(), None),
            Error::Parse { .. } => ApiError::new(StatusCode::BAD_REQUEST, "parse_error", error.to_string(), None),
            Error::Corrupt { .. } | Error::FormatVersion { .. } => {
                tracing::error!(%error, "stored data is unreadable");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "corrupt", "stored data is unreadable", None)
            }
            Error::Io(_) | Error::Sqlite(_) | Error::Internal(_) => ApiError::internal("serving the request", error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
