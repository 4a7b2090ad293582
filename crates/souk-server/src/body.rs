//! Reading request bodies with limits and JSON errors (axum's own rejections are plain text).

use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// Read the whole body, refusing more than `limit` bytes with 413 `payload_too_large`.
pub async fn read_limited(body: Body, limit: usize) -> ApiResult<Bytes> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            "payload_too_large",
            format!("request body exceeds the limit of {limit} bytes"),
            Some("body".into()),
        )
    })
}

fn utf8(bytes: &[u8]) -> ApiResult<&str> {
    std::str::from_utf8(bytes).map_err(|e| {
        ApiError::bad_request(
            "invalid_utf8",
            format!("request body is not valid UTF-8 (at byte {})", e.valid_up_to()),
            "body",
        )
    })
}

fn json_error(error: &serde_json::Error, line_offset: usize) -> ApiError {
    ApiError::bad_request(
        "invalid_json",
        format!("malformed JSON at line {}, column {}: {error}", error.line() + line_offset, error.column()),
        "body",
    )
}

/// Parse a JSON body into a value.
pub fn json_value(bytes: &[u8]) -> ApiResult<Value> {
    let text = utf8(bytes)?;
    if text.trim().is_empty() {
        return Err(ApiError::bad_request("empty_body", "expected a JSON body, found nothing", "body"));
    }
    serde_json::from_str(text).map_err(|e| json_error(&e, 0))
}

/// Whether the request says its body is NDJSON.
pub fn is_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-ndjson") || v.starts_with("application/ndjson"))
}

/// Parse a body holding a list of records: a JSON array, or NDJSON when `ndjson` (blank
/// lines skipped). `what` names the list in errors (e.g. `events`).
pub fn json_list(bytes: &[u8], ndjson: bool, what: &str) -> ApiResult<Vec<Value>> {
    if ndjson {
        let text = utf8(bytes)?;
        let mut values = Vec::new();
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value = serde_json::from_str(line).map_err(|e| json_error(&e, number))?;
            values.push(value);
        }
        return Ok(values);
    }
    match json_value(bytes)? {
        Value::Array(values) => Ok(values),
        other => Err(ApiError::bad_request(
            "not_an_array",
            format!(
                "expected a JSON array of {what}, found {}",
                match other {
                    Value::Object(_) => "an object",
                    Value::String(_) => "a string",
                    Value::Number(_) => "a number",
                    Value::Bool(_) => "a boolean",
                    _ => "null",
                }
            ),
            "body",
        )),
    }
}

/// Split a body holding a list of records into the JSON text of each record without
/// building value trees: a JSON array, or NDJSON when `ndjson` (blank lines skipped).
/// The body must already be known to be valid UTF-8 by the caller ([`utf8_body`]).
pub fn json_raw_list<'a>(text: &'a str, ndjson: bool, what: &str) -> ApiResult<Vec<&'a str>> {
    if ndjson {
        let mut records = Vec::new();
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let raw: &serde_json::value::RawValue = serde_json::from_str(line).map_err(|e| json_error(&e, number))?;
            records.push(raw.get());
        }
        return Ok(records);
    }
    if text.trim().is_empty() {
        return Err(ApiError::bad_request("empty_body", "expected a JSON body, found nothing", "body"));
    }
    let raw: &serde_json::value::RawValue = serde_json::from_str(text).map_err(|e| json_error(&e, 0))?;
    if !raw.get().starts_with('[') {
        // Not an array: let the value-based path describe what it is.
        return json_list(text.as_bytes(), false, what).map(|_| Vec::new());
    }
    let items: Vec<&serde_json::value::RawValue> = serde_json::from_str(raw.get()).map_err(|e| json_error(&e, 0))?;
    Ok(items.into_iter().map(|r| r.get()).collect())
}

/// The body as UTF-8 text, or 400 `invalid_utf8`.
pub fn utf8_body(bytes: &[u8]) -> ApiResult<&str> {
    utf8(bytes)
}

/// Query parameters deserialised into `T` (every field optional), with a JSON error naming
/// the offending parameter — axum's own `Query` answers bad numbers with plain text.
pub struct Query<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _state: &S) -> Result<Self, ApiError> {
        let raw = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str::<T>(raw).map(Query).map_err(|error| {
            // The parameter at fault: the first that does not deserialise on its own.
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).unwrap_or_default();
            let culprit = pairs.iter().find(|(key, value)| {
                let single = serde_urlencoded::to_string([(key, value)]).unwrap_or_default();
                serde_urlencoded::from_str::<T>(&single).is_err()
            });
            match culprit {
                Some((key, value)) => {
                    ApiError::bad_request("invalid_parameter", format!("{key}={value:?}: {error}"), key.clone())
                }
                None => ApiError::bad_request("invalid_query_string", error.to_string(), "query"),
            }
        })
    }
}

/// Path parameters deserialised into `T`, with a JSON error — axum's own `Path` answers a
/// segment that is not UTF-8 once percent-decoded (`/v1/items/%FF`) with plain text.
pub struct Path<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(error)) => {
                let message = error.body_text();
                match error.into_kind() {
                    ErrorKind::InvalidUtf8InPathParam { key } => Err(ApiError::bad_request(
                        "invalid_utf8",
                        format!("path segment {key} is not valid UTF-8 once percent-decoded"),
                        key,
                    )),
                    _ => Err(ApiError::bad_request("invalid_parameter", message, "path")),
                }
            }
            Err(other) => Err(ApiError::internal("reading the path parameters", other.body_text())),
        }
    }
}
