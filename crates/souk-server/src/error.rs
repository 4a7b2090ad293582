//! The one mapping from engine errors to HTTP responses.
//!
//! Every error body is `{"code", "message", "field"?}` with a stable `code` from the
//! engine's error table, which also decides the status. Internal
//! errors are logged here, once, and answered without internals.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use souk_engine::error::error_code;
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
    /// An error with a code of the error table (`souk_engine::error::ERROR_CODES`), which
    /// decides the HTTP status. A code missing from the table is a bug: answered 500.
    pub fn new(code: &str, message: impl Into<String>, field: Option<String>) -> Self {
        let status = error_code(code).and_then(|entry| StatusCode::from_u16(entry.status).ok());
        debug_assert!(status.is_some(), "error code {code:?} is not in the error table");
        Self {
            status: status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body: ErrorBody { code: code.to_string(), message: message.into(), field },
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>, field: impl Into<String>) -> Self {
        Self::new(code, message, Some(field.into()))
    }

    pub fn validation(error: ValidationError) -> Self {
        Self::new(error.code, error.message, Some(error.field))
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new("not_found", format!("{what} not found: {id}"), None)
    }

    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, context, "internal error");
        Self::new("internal", format!("internal error while {context}"), None)
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::Invalid(v) => ApiError::validation(v),
            Error::NotFound { what, id } => ApiError::not_found(what, &id),
            Error::Conflict(message) => ApiError::new("conflict", message, None),
            Error::Locked { .. } => ApiError::new("locked", error.to_string(), None),
            Error::Parse { .. } => ApiError::new("parse_error", error.to_string(), None),
            Error::Corrupt { .. } | Error::FormatVersion { .. } => {
                tracing::error!(%error, "stored data is unreadable");
                ApiError::new("corrupt", "stored data is unreadable", None)
            }
            Error::Io(_) | Error::Sqlite(_) | Error::Internal(_) => ApiError::internal("serving the request", error),
            Error::Coded { code, message } => ApiError::new(code, message, None),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
