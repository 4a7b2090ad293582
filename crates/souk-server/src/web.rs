//! The web page served at `/`: the shop's data at a glance (stats, a user's recent events).

use axum::response::Html;

/// The page; all data comes from the JSON API.
#[utoipa::path(get, path = "/", tag = "pages",
    responses((status = 200, description = "The web page", content_type = "text/html")))]
pub async fn index() -> Html<&'static str> {
    Html(include_str!("web/index.html"))
}
