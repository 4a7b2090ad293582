//! Access control and the cross-site guard, as middleware.
//!
//! With a master key configured, every `/v1` route needs `Authorization: Bearer KEY`: the
//! master key, or a key from `POST /v1/keys` holding the route's scope ([`required_scope`]).
//! No key → 401 `missing_key`, an unknown one → 401 `invalid_key`, a key without the scope →
//! 403 `insufficient_scope`, a key over its rate → 429 `rate_limited` with `Retry-After`
//! ([`crate::rate_limit`]). `/health`, `/metrics`, `/openapi.json` and the pages stay open.
//!
//! Independently of keys, a request body sent as a form or plain text — what any web page
//! may post to another site without asking the browser first — is refused with 415, so a
//! page on another origin cannot write events, items or users through a shopper's browser.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use souk_engine::serving::shop::keys::Scope;

use crate::error::ApiError;
use crate::state::AppState;

/// The scope a route needs: sending events needs `ingest`; reading pages (search,
/// suggestions, recommendations, similar items, bought together, trending, an item, a
/// shopper's profile) needs `search`; everything else — the catalog and users (writes,
/// deletes, a user's record and events, the list of shoppers), training, jobs, experiments,
/// keys, statistics — needs `admin`.
pub fn required_scope(method: &Method, route: &str) -> Scope {
    match (method.as_str(), route) {
        ("POST", "/v1/events") => Scope::Ingest,
        ("GET" | "POST", "/v1/search")
        | ("GET", "/v1/suggest")
        | ("GET", "/v1/users/{id}/recommendations")
        | ("GET", "/v1/users/{id}/profile")
        | ("GET", "/v1/items/{id}/similar")
        | ("GET", "/v1/items/{id}/bought-together")
        | ("GET", "/v1/trending")
        | ("GET", "/v1/items/{id}") => Scope::Search,
        _ => Scope::Admin,
    }
}

/// The bearer token of a request, if it carries one.
fn bearer(request: &Request) -> Option<&str> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// Compare two secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Refuse a `/v1` request without a key that grants its route's scope (when a master key
/// is configured).
pub async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(master) = state.master_key.clone() else {
        return next.run(request).await;
    };
    let route = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string());
    let Some(route) = route.filter(|r| r.starts_with("/v1/")) else {
        return next.run(request).await;
    };
    let scope = required_scope(request.method(), &route);
    let Some(token) = bearer(&request) else {
        return ApiError::new("missing_key", "this server needs `Authorization: Bearer KEY`", None).into_response();
    };
    if same_secret(token, &master) {
        return next.run(request).await;
    }
    match state.shop.authenticate(token) {
        None => ApiError::new("invalid_key", "the key is not one this server issued", None).into_response(),
        Some(key) if !key.grants(scope) => ApiError::new(
            "insufficient_scope",
            format!("{} {route} needs a key with the {} scope", request.method(), scope.as_str()),
            None,
        )
        .into_response(),
        Some(key) => match state.limits.check(&key) {
            Ok(()) => next.run(request).await,
            Err(wait) => {
                let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
                let mut response = ApiError::new(
                    "rate_limited",
                    format!("key {} is over its rate; retry in {seconds} s", key.id),
                    None,
                )
                .into_response();
                response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
                response
            }
        },
    }
}

/// Refuse bodies a cross-site page can send without a preflight (forms and plain text).
pub async fn same_site_bodies(request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::POST | Method::PUT | Method::PATCH | Method::DELETE) {
        let simple = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .is_some_and(|v| {
                matches!(v.as_str(), "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data")
            });
        if simple {
            return ApiError::new(
                "unsupported_media_type",
                "expected Content-Type application/json or application/x-ndjson",
                Some("content-type".into()),
            )
            .into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_need_ingest_pages_need_search_and_the_rest_admin() {
        assert_eq!(required_scope(&Method::POST, "/v1/events"), Scope::Ingest);
        assert_eq!(required_scope(&Method::DELETE, "/v1/items/{id}"), Scope::Admin);
        assert_eq!(required_scope(&Method::GET, "/v1/users/{id}/profile"), Scope::Search);
        assert_eq!(required_scope(&Method::GET, "/v1/search"), Scope::Search);
        assert_eq!(required_scope(&Method::GET, "/v1/users/{id}/recommendations"), Scope::Search);
        assert_eq!(required_scope(&Method::DELETE, "/v1/users/{id}"), Scope::Admin);
        assert_eq!(required_scope(&Method::GET, "/v1/users/{id}/events"), Scope::Admin);
        assert_eq!(required_scope(&Method::POST, "/v1/train"), Scope::Admin);
        assert_eq!(required_scope(&Method::POST, "/v1/keys"), Scope::Admin);
        assert_eq!(required_scope(&Method::GET, "/v1/suggest"), Scope::Search);
        // Listing shoppers enumerates people: not for a storefront's search key.
        assert_eq!(required_scope(&Method::GET, "/v1/users"), Scope::Admin);
        assert_eq!(required_scope(&Method::GET, "/v1/jobs"), Scope::Admin);
        assert_eq!(required_scope(&Method::GET, "/v1/jobs/{id}"), Scope::Admin);
        assert_eq!(required_scope(&Method::GET, "/v1/stats/activity"), Scope::Admin);
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("abc", "abcd"));
    }
}
