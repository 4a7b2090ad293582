//! The pages: the storefront at `/` and the admin console at `/admin`, plain HTML, CSS and
//! ES modules compiled into the binary (no network and no JS toolchain at build or run
//! time). All data comes from the JSON API; the pages hold no state of their own besides
//! the shopper, the language and an API key in the browser's local storage.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Every embedded file: (name under `/web/`, content type, content).
const ASSETS: &[(&str, &str, &str)] = &[
    ("style.css", "text/css; charset=utf-8", include_str!("web/style.css")),
    ("common.js", "text/javascript; charset=utf-8", include_str!("web/common.js")),
    ("shop.js", "text/javascript; charset=utf-8", include_str!("web/shop.js")),
    ("admin.js", "text/javascript; charset=utf-8", include_str!("web/admin.js")),
];

const INDEX: &str = include_str!("web/index.html");
const ADMIN: &str = include_str!("web/admin.html");

/// A validator per file: a hash of its bytes, so a browser revalidates cheaply and never
/// keeps a file of an older binary.
fn etag(content: &'static str) -> HeaderValue {
    static TAGS: OnceLock<std::collections::HashMap<usize, HeaderValue>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| a.2)
            .chain([INDEX, ADMIN])
            .map(|c| {
                let mut hasher = std::hash::DefaultHasher::new();
                std::hash::Hash::hash(c, &mut hasher);
                let digest = std::hash::Hasher::finish(&hasher);
                (
                    c.as_ptr() as usize,
                    HeaderValue::from_str(&format!("\"{digest:016x}\"")).expect("hex is a valid header"),
                )
            })
            .collect()
    });
    tags.get(&(content.as_ptr() as usize)).cloned().unwrap_or_else(|| HeaderValue::from_static("\"0\""))
}

/// A file with its type and cache headers (revalidate every time; 304 when unchanged).
fn serve(headers: &HeaderMap, content_type: &'static str, content: &'static str) -> Response {
    let tag = etag(content);
    let cache = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::ETAG, tag.clone()),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == tag.as_bytes()) {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (cache, [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], content).into_response()
}

/// The storefront.
#[utoipa::path(get, path = "/", tag = "pages",
    responses((status = 200, description = "The storefront", body = String, content_type = "text/html")))]
pub async fn index(headers: HeaderMap) -> Response {
    serve(&headers, "text/html; charset=utf-8", INDEX)
}

/// The admin console.
#[utoipa::path(get, path = "/admin", tag = "pages",
    responses((status = 200, description = "The admin console", body = String, content_type = "text/html")))]
pub async fn admin(headers: HeaderMap) -> Response {
    serve(&headers, "text/html; charset=utf-8", ADMIN)
}

/// The pages' scripts and style sheet.
#[utoipa::path(get, path = "/web/{file}", tag = "pages",
    params(("file" = String, Path, description = "style.css, common.js, shop.js or admin.js")),
    responses((status = 200, description = "The file (a script or the style sheet)", body = String, content_type = "text/javascript"),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, content)) => serve(&headers, content_type, content),
        None => ApiError::not_found("file", &file).into_response(),
    }
}
