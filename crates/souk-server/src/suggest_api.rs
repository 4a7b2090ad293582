//! `GET /v1/suggest`: suggestions as a shopper types — catalog titles (English and Chinese)
//! and queries other shoppers searched for, by prefix of any word.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use souk_engine::input::Lang;
use souk_engine::search::suggest::Suggestion;
use utoipa::{IntoParams, ToSchema};

use crate::body::Query;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Most suggestions one request may ask for.
pub const MAX_SUGGESTIONS: usize = 50;

/// Query of `GET /v1/suggest`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SuggestQuery {
    /// What was typed so far (empty: the most searched queries).
    pub q: Option<String>,
    /// How many (default 8, at most 50).
    #[param(minimum = 1, maximum = 50)]
    pub n: Option<usize>,
    /// `en` (default) or `zh`: suggestions in this language come first among equals.
    #[param(pattern = "^(en|zh)?$")]
    pub lang: Option<String>,
}

/// One suggestion.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SuggestionOut {
    pub text: String,
    /// `query` (searched by shoppers) or `item` (a catalog title).
    pub kind: String,
    /// The item whose title it is (kind `item`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// `en` or `zh`.
    pub lang: String,
    /// How often it was searched (kind `query`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub searches: Option<u64>,
}

/// Suggestions, best first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SuggestOut {
    pub suggestions: Vec<SuggestionOut>,
}

fn suggestion_out(s: Suggestion) -> SuggestionOut {
    let searches = (s.kind == souk_engine::search::suggest::SuggestionKind::Query).then_some(s.count);
    SuggestionOut { text: s.text, kind: s.kind.as_str().into(), item: s.item, lang: s.lang, searches }
}

/// Suggestions for a prefix.
#[utoipa::path(get, path = "/v1/suggest", tag = "search", params(SuggestQuery),
    responses((status = 200, body = SuggestOut), (status = 400, body = crate::error::ErrorBody)))]
pub async fn get_suggest(
    State(state): State<AppState>,
    Query(query): Query<SuggestQuery>,
) -> ApiResult<Json<SuggestOut>> {
    let n = query.n.unwrap_or(8);
    if !(1..=MAX_SUGGESTIONS).contains(&n) {
        return Err(ApiError::bad_request(
            "invalid_number",
            format!("expected n in 1..={MAX_SUGGESTIONS}, found {n}"),
            "n",
        ));
    }
    let typed = query.q.unwrap_or_default();
    if typed.chars().count() > 200 {
        return Err(ApiError::bad_request("query_too_long", "expected at most 200 characters", "q"));
    }
    let lang = Lang::parse(query.lang.as_deref(), "lang").map_err(ApiError::validation)?;
    let found = state.compute(move |shop| shop.suggest(&typed, n, lang)).await?;
    Ok(Json(SuggestOut { suggestions: found.into_iter().map(suggestion_out).collect() }))
}
