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
    /// The disk refused a write (full or failing); nothing of it was stored.
    Storage,
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
    /// A refusal with its own code in [`ERROR_CODES`] (e.g. `training_in_progress`).
    #[error("{message}")]
    Coded { code: &'static str, message: String },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) | Error::Parse { .. } => ErrorKind::BadInput,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict(_) | Error::Locked { .. } => ErrorKind::Conflict,
            Error::Corrupt { .. } | Error::FormatVersion { .. } => ErrorKind::Corrupt,
            Error::Io(_) | Error::Sqlite(_) | Error::Internal(_) => ErrorKind::Internal,
            Error::Coded { code, .. } => match error_code(code).map(|c| c.error_type) {
                Some(ErrorType::InvalidRequest) => ErrorKind::BadInput,
                Some(ErrorType::NotFound) => ErrorKind::NotFound,
                Some(ErrorType::Conflict | ErrorType::Unavailable | ErrorType::RateLimited) => ErrorKind::Conflict,
                Some(ErrorType::Unauthorized | ErrorType::Forbidden) => ErrorKind::BadInput,
                Some(ErrorType::Storage) => ErrorKind::Storage,
                Some(ErrorType::Internal) | None => ErrorKind::Internal,
            },
        }
    }

    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound { what, id: id.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

mod codes;

pub use codes::{ErrorCode, ErrorType, ERROR_CODES};

/// The table entry of `code`.
pub fn error_code(code: &str) -> Option<&'static ErrorCode> {
    ERROR_CODES.binary_search_by(|entry| entry.code.cmp(code)).ok().map(|i| &ERROR_CODES[i])
}

/// The error table as a Markdown page (`docs/errors.md`).
pub fn error_table_markdown() -> String {
    let mut out = String::from(
        "# Error codes\n\nEvery error response is JSON `{\"code\", \"message\", \"field\"?}`; `code` is one of\nthese and never changes meaning. Generated from `ERROR_CODES` in\n`crates/souk-engine/src/error/codes.rs`.\n\n| code | HTTP status | type | meaning |\n|---|---|---|---|\n",
    );
    for entry in ERROR_CODES {
        let kind = serde_json::to_value(entry.error_type)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        out.push_str(&format!("| `{}` | {} | {} | {} |\n", entry.code, entry.status, kind, entry.description));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::*;

    /// Every `.rs` file of the workspace's crates, with its text.
    fn workspace_sources() -> Vec<(PathBuf, String)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
        let mut out = Vec::new();
        for krate in std::fs::read_dir(&crates).unwrap() {
            let src = krate.unwrap().path().join("src");
            if src.is_dir() {
                walk(&src, &mut out);
            }
        }
        out
    }

    /// The string literals passed as error codes: the first string argument of
    /// `ValidationError::new`, `ApiError::new` and `bad_request`, and `code: "…"` fields.
    fn codes_used(text: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for anchor in ["ValidationError::new(", "ApiError::new(", "bad_request(", "code: \""] {
            let mut rest = text;
            while let Some(at) = rest.find(anchor) {
                rest = &rest[at + anchor.len()..];
                let start = if anchor.ends_with('"') { Some(0) } else { rest.find('"').map(|q| q + 1) };
                let Some(start) = start else { continue };
                // Only a literal that comes before the call's first comma-separated
                // non-status argument: skip `field, "message"` shapes.
                let head = &rest[..start.saturating_sub(1)];
                if head.contains('(') || head.matches(',').count() > 1 || head.contains(';') {
                    continue;
                }
                if let Some(end) = rest[start..].find('"') {
                    let code = &rest[start..start + end];
                    if !code.is_empty()
                        && code.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    {
                        out.insert(code.to_string());
                    }
                }
            }
        }
        out
    }

    #[test]
    fn the_table_is_sorted_and_holds_each_code_once() {
        assert!(ERROR_CODES.windows(2).all(|w| w[0].code < w[1].code), "sorted, no duplicates");
        for entry in ERROR_CODES {
            assert!((400..600).contains(&entry.status), "{entry:?}");
            assert!(!entry.description.is_empty() && !entry.description.ends_with('.'), "{entry:?}");
            assert_eq!(error_code(entry.code), Some(entry));
        }
        assert_eq!(error_code("no_such_code"), None);
    }

    /// The table and its module: the codes listed there are not uses of them.
    fn in_error_module(path: &Path) -> bool {
        path.to_string_lossy().replace('\\', "/").contains("souk-engine/src/error/")
    }

    #[test]
    fn every_code_in_the_source_is_in_the_table_and_every_listed_code_is_used() {
        let sources = workspace_sources();
        assert!(sources.len() > 50, "the scan must see the workspace");
        let mut used = BTreeSet::new();
        for (path, text) in &sources {
            if in_error_module(path) {
                continue;
            }
            for code in codes_used(text) {
                assert!(error_code(&code).is_some(), "{}: code {code:?} is not in ERROR_CODES", path.display());
                used.insert(code);
            }
        }
        let everything: String =
            sources.iter().filter(|(path, _)| !in_error_module(path)).map(|(_, text)| text.as_str()).collect();
        for entry in ERROR_CODES {
            assert!(everything.contains(&format!("\"{}\"", entry.code)), "{} is listed but never used", entry.code);
        }
        assert!(used.len() > 40, "the scan finds the codes: {used:?}");
    }

    #[test]
    fn the_error_page_is_generated_from_the_table() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/errors.md");
        let page = error_table_markdown();
        if std::env::var_os("SOUK_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &page).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(committed == page, "docs/errors.md is stale: run `SOUK_UPDATE_DOCS=1 cargo test -p souk-engine error`");
    }
}
