//! Errors of the engine, classified where they arise.
//!
//! Every error says which class it belongs to ([`ErrorKind`]) so the server can map it to an
//! HTTP status in one place and the CLI can choose an exit code. Messages are lowercase,
//! without a trailing period, and say what was expected and what was found.

use std::path::PathBuf;

/// What kind of failure an [`Error`] is: decides the HTTP status and the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller sent something malformed or out of range.
    BadInput,
    /// The thing asked for does not exist.
    NotFound,
    /// The request conflicts with the current state (e.g. the data dir is locked).
    Conflict,
    /// Stored data is damaged or written by an unknown format version.
    Corrupt,
    /// Anything else: IO failures, bugs.
    Internal,
}

/// A validation failure with a stable machine-readable code and the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// Stable code, e.g. `invalid_event_type`, `missing_field`, `invalid_type`.
    pub code: &'static str,
    /// Path of the offending field, e.g. `events[3].type`.
    pub field: String,
    /// Human-readable explanation.
    pub message: String,
}

impl ValidationError {
    pub fn new(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code, field: field.into(), message: message.into() }
    }

    /// Prefix the field path, e.g. `type` becomes `events[3].type`.
    pub fn within(mut self, prefix: &str) -> Self {
        if prefix.is_empty() {
            return self;
        }
        self.field = if self.field.is_empty() {
            prefix.to_string()
        } else if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

/// The engine's error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{what} not found: {id}")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("data directory {path} is in use by another souk process (lock file {lock})")]
    Locked { path: PathBuf, lock: PathBuf },
    #[error("corrupt data in {path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("{path}: unsupported format version {found} (this build reads version {expected})")]
    FormatVersion { path: PathBuf, found: u32, expected: u32 },
    #[error("{path}:{line}: {message}")]
    Parse { path: PathBuf, line: u64, message: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("catalog database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) | Error::Parse { .. } => ErrorKind::BadInput,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict(_) | Error::Locked { .. } => ErrorKind::Conflict,
            Error::Corrupt { .. } | Error::FormatVersion { .. } => ErrorKind::Corrupt,
            Error::Io(_) | Error::Sqlite(_) | Error::Internal(_) => ErrorKind::Internal,
        }
    }

    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound { what, id: id.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
