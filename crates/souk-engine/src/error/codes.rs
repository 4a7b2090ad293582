//! The error table: every code Souk answers with, its HTTP status, its class and what it
//! means.

/// What class of failure a code belongs to (the `type` column of the error table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// The caller sent something malformed, out of range or too large.
    InvalidRequest,
    /// The thing asked for does not exist.
    NotFound,
    /// The request conflicts with the current state.
    Conflict,
    /// A part this request needs is not running here.
    Unavailable,
    /// The request carries no valid key.
    Unauthorized,
    /// The request's key does not allow this.
    Forbidden,
    /// The request's key is over its rate limit.
    RateLimited,
    /// The disk refused a write: full or failing. Nothing of it was stored; retry later.
    Storage,
    /// A failure inside Souk.
    Internal,
}

/// One stable error code: what a client scripts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ErrorCode {
    pub code: &'static str,
    /// The HTTP status of a response with this code.
    pub status: u16,
    pub error_type: ErrorType,
    pub description: &'static str,
}

/// Every error code Souk answers with, once, sorted by code. The server's status mapping
/// and `docs/errors.md` come from it; a test fails on a code used in the source but not
/// listed here, and on a listed code nothing uses.
pub const ERROR_CODES: &[ErrorCode] = &[
    ErrorCode {
        code: "conflict",
        status: 409,
        error_type: ErrorType::Conflict,
        description: "The request conflicts with the current state",
    },
    ErrorCode {
        code: "corrupt",
        status: 500,
        error_type: ErrorType::Internal,
        description: "Stored data is damaged or written by an unknown format version; `souk verify` says where",
    },
    ErrorCode {
        code: "dimension_mismatch",
        status: 409,
        error_type: ErrorType::Conflict,
        description: "A vector's length differs from its vector space's dimension, fixed by the space's first vector",
    },
    ErrorCode {
        code: "disk_full",
        status: 507,
        error_type: ErrorType::Storage,
        description: "The disk (or the quota) is full: nothing of the write was stored; writes resume by themselves once space is freed",
    },
    ErrorCode {
        code: "duplicate_pin",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "Two pin rules name the same item",
    },
    ErrorCode {
        code: "duplicate_position",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "Two pin or promotion rules claim the same position",
    },
    ErrorCode {
        code: "empty",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A list that must hold at least one value is empty",
    },
    ErrorCode {
        code: "empty_body",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "The request body is empty",
    },
    ErrorCode {
        code: "empty_condition",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A rule condition names no field to match",
    },
    ErrorCode {
        code: "empty_dataset",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "There is nothing to train on",
    },
    ErrorCode {
        code: "empty_id",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "An id is the empty string",
    },
    ErrorCode {
        code: "empty_text",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A text that must not be empty is empty",
    },
    ErrorCode {
        code: "expected_one_log",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "An Open Bandit folder must hold exactly one log CSV",
    },
    ErrorCode {
        code: "experiment_conflict",
        status: 409,
        error_type: ErrorType::Conflict,
        description: "Another experiment already runs on this surface; stop it first",
    },
    ErrorCode {
        code: "experiment_exists",
        status: 409,
        error_type: ErrorType::Conflict,
        description:
            "An experiment with this id has started; a running or stopped experiment cannot change (create a new one)",
    },
    ErrorCode {
        code: "experiment_state",
        status: 409,
        error_type: ErrorType::Conflict,
        description: "The experiment is not in a state that allows this (start a draft, stop a running one)",
    },
    ErrorCode {
        code: "feature_mismatch",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "Feature rows do not have the model's number of features",
    },
    ErrorCode {
        code: "group_too_large",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A ranking group (one page) has more rows than the ranker accepts",
    },
    ErrorCode {
        code: "headers_too_large",
        status: 431,
        error_type: ErrorType::InvalidRequest,
        description: "The request's headers exceed 64 KiB in all, or number more than 100 header lines",
    },
    ErrorCode {
        code: "id_mismatch",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "The id in the body differs from the id in the path",
    },
    ErrorCode {
        code: "id_too_long",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "An id is longer than 256 characters",
    },
    ErrorCode {
        code: "insufficient_scope",
        status: 403,
        error_type: ErrorType::Forbidden,
        description: "The request's key lacks the scope this endpoint needs",
    },
    ErrorCode {
        code: "internal",
        status: 500,
        error_type: ErrorType::Internal,
        description: "An unexpected failure inside Souk (logged on the server)",
    },
    ErrorCode {
        code: "invalid_attribute",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "An item attribute is not a string, number or boolean",
    },
    ErrorCode {
        code: "invalid_body",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "The request body is not what the endpoint takes",
    },
    ErrorCode {
        code: "invalid_category",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A category path is empty or has an empty level",
    },
    ErrorCode {
        code: "invalid_condition",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A rule condition is malformed",
    },
    ErrorCode {
        code: "invalid_config",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A generator configuration value is out of range",
    },
    ErrorCode {
        code: "invalid_csv",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A CSV file cannot be read as CSV",
    },
    ErrorCode {
        code: "invalid_cursor",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "The cursor was not returned by an earlier page",
    },
    ErrorCode {
        code: "invalid_eval_config",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "An evaluation setting is out of range",
    },
    ErrorCode {
        code: "invalid_event_type",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "The event type is not one of the known types",
    },
    ErrorCode {
        code: "invalid_exclude",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "`exclude` names something other than seen, purchased, disliked or none",
    },
    ErrorCode {
        code: "invalid_experiment",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "An experiment definition is malformed (id, surface, arms, shares, window)",
    },
    ErrorCode {
        code: "invalid_follow_kind",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "The kind of a follow is not a known kind",
    },
    ErrorCode {
        code: "invalid_header",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A file's header is not one of the layouts its format reads",
    },
    ErrorCode {
        code: "invalid_id",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "An id holds control or bidirectional characters, nothing visible, or is `.`/`..`",
    },
    ErrorCode {
        code: "invalid_json",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "The body is not valid JSON",
    },
    ErrorCode {
        code: "invalid_key",
        status: 401,
        error_type: ErrorType::Unauthorized,
        description: "The request's key is not the master key nor a key this server issued",
    },
    ErrorCode {
        code: "invalid_label",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A training label is not a finite number in range",
    },
    ErrorCode {
        code: "invalid_lang",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "`lang` is not `en` or `zh`",
    },
    ErrorCode {
        code: "invalid_number",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A number is not a number, or is out of range",
    },
    ErrorCode {
        code: "invalid_parameter",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A query parameter has a value of the wrong type",
    },
    ErrorCode {
        code: "invalid_params",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A model's parameters are malformed",
    },
    ErrorCode {
        code: "invalid_probability",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A probability is outside 0..=1",
    },
    ErrorCode {
        code: "invalid_protocol",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "The evaluation protocol is not a known protocol",
    },
    ErrorCode {
        code: "invalid_query_string",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "The query string cannot be parsed",
    },
    ErrorCode {
        code: "invalid_range",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "The lower end of a range exceeds the upper end",
    },
    ErrorCode {
        code: "invalid_ratio",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A ratio is outside its range",
    },
    ErrorCode {
        code: "invalid_record_kind",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "An import record's kind is not item, user, event or follow",
    },
    ErrorCode {
        code: "invalid_rule",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A re-ranking rule is malformed",
    },
    ErrorCode {
        code: "invalid_scope",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A key scope is not one of ingest, search, admin",
    },
    ErrorCode {
        code: "invalid_simulation",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A simulation setting is out of range",
    },
    ErrorCode {
        code: "invalid_surface",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "`surface` is not `for_you` or `session`",
    },
    ErrorCode {
        code: "invalid_target",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "The evaluation target is not a known target",
    },
    ErrorCode {
        code: "invalid_timestamp",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A timestamp is neither RFC 3339 nor Unix milliseconds in range",
    },
    ErrorCode {
        code: "invalid_type",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A field has the wrong JSON type",
    },
    ErrorCode {
        code: "invalid_utf8",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "Text is not valid UTF-8",
    },
    ErrorCode {
        code: "invalid_value",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A value is outside what the field accepts",
    },
    ErrorCode {
        code: "invalid_vector",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A vector is empty, has non-finite values or the wrong length",
    },
    ErrorCode {
        code: "invalid_weight",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A weight is negative or not finite",
    },
    ErrorCode {
        code: "length_mismatch",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "Two lists that go together differ in length",
    },
    ErrorCode {
        code: "locked",
        status: 409,
        error_type: ErrorType::Conflict,
        description: "The data directory is in use by another souk process",
    },
    ErrorCode {
        code: "method_not_allowed",
        status: 405,
        error_type: ErrorType::InvalidRequest,
        description: "The endpoint does not answer this HTTP method",
    },
    ErrorCode {
        code: "missing_column",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "An import file lacks a required column",
    },
    ErrorCode {
        code: "missing_field",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A required field is missing",
    },
    ErrorCode {
        code: "missing_key",
        status: 401,
        error_type: ErrorType::Unauthorized,
        description: "The request carries no `Authorization: Bearer KEY` header and this server requires one",
    },
    ErrorCode {
        code: "no_data",
        status: 409,
        error_type: ErrorType::Conflict,
        description: "Nothing to train or evaluate on yet: import or ingest events first",
    },
    ErrorCode {
        code: "no_route",
        status: 404,
        error_type: ErrorType::NotFound,
        description: "No endpoint has this path",
    },
    ErrorCode {
        code: "not_an_array",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "The body must be a JSON array",
    },
    ErrorCode {
        code: "not_found",
        status: 404,
        error_type: ErrorType::NotFound,
        description: "The item, user or other thing asked for does not exist",
    },
    ErrorCode {
        code: "parse_error",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A line of an import file cannot be parsed",
    },
    ErrorCode {
        code: "payload_too_large",
        status: 413,
        error_type: ErrorType::InvalidRequest,
        description: "The body is larger than the server accepts",
    },
    ErrorCode {
        code: "query_too_long",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "The search query is longer than accepted",
    },
    ErrorCode {
        code: "rate_limited",
        status: 429,
        error_type: ErrorType::RateLimited,
        description: "The key is over its rate limit; retry after the seconds in `Retry-After`",
    },
    ErrorCode {
        code: "search_unavailable",
        status: 503,
        error_type: ErrorType::Unavailable,
        description: "This server runs without a search index",
    },
    ErrorCode {
        code: "self_follow",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A user cannot follow themselves",
    },
    ErrorCode {
        code: "semantic_unavailable",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "Semantic search was asked for but no text embedder is configured",
    },
    ErrorCode {
        code: "split_too_small",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A split leaves too few rows to train or test on",
    },
    ErrorCode {
        code: "storage_unavailable",
        status: 503,
        error_type: ErrorType::Storage,
        description: "The disk failed a write (an IO error): nothing of it was stored; the next write tries again",
    },
    ErrorCode {
        code: "text_too_long",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A text field is longer than accepted",
    },
    ErrorCode {
        code: "too_few_items",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "Fewer items than the operation needs",
    },
    ErrorCode {
        code: "too_many_events",
        status: 413,
        error_type: ErrorType::InvalidRequest,
        description: "A batch holds more events than accepted",
    },
    ErrorCode {
        code: "too_many_items",
        status: 413,
        error_type: ErrorType::InvalidRequest,
        description: "A batch holds more items than accepted",
    },
    ErrorCode {
        code: "training_in_progress",
        status: 409,
        error_type: ErrorType::Conflict,
        description: "A training is already running",
    },
    ErrorCode {
        code: "unknown_field",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A field is not one the record takes",
    },
    ErrorCode {
        code: "unknown_format",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "The import format is not a known format",
    },
    ErrorCode {
        code: "unknown_model",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "The model is not one the registry knows",
    },
    ErrorCode {
        code: "unknown_parameter",
        status: 400,
        error_type: ErrorType::InvalidRequest,
        description: "A query parameter is not one the endpoint takes",
    },
    ErrorCode {
        code: "unknown_vector_space",
        status: 404,
        error_type: ErrorType::NotFound,
        description: "No item has vectors in the named vector space",
    },
    ErrorCode {
        code: "unsupported_media_type",
        status: 415,
        error_type: ErrorType::InvalidRequest,
        description: "A request body with a form or plain-text content type (what a cross-site page can send without asking); send application/json or application/x-ndjson",
    },
    ErrorCode {
        code: "uri_too_long",
        status: 414,
        error_type: ErrorType::InvalidRequest,
        description: "The request's URI (path and query) is longer than 16 KiB",
    },
];
