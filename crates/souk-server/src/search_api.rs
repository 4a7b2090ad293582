//! `GET /v1/search` and `POST /v1/search`: keyword, semantic and hybrid search with facets,
//! filters, sorting, the personal touch and per-stage explanations. Every search by a known
//! user is logged as a `search` and an `impression` event carrying the response's
//! `request_id`, so later clicks join the results they came from.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use souk_engine::rank::rerank::Rules;
use souk_engine::search::{FacetCount, Facets, Hit, SearchMode, Sort};
use souk_engine::serving::shop::{SearchAsk, SearchServed};
use souk_engine::UserId;
use utoipa::{IntoParams, ToSchema};

use crate::body::{json_value, read_limited};
use crate::error::{ApiError, ApiResult};
use crate::recommend_api::{effect_out, EffectOut};
use crate::state::AppState;
use souk_engine::input::{f32_value, integral, FilterParams, ItemFilter, Lang, MAX_VECTOR_DIMS};

/// Most results one page may ask for.
pub const MAX_RESULTS: usize = 100;
/// Deepest offset a search may page to.
pub const MAX_OFFSET: usize = 10_000;
/// Longest query text, in characters.
pub const MAX_QUERY_CHARS: usize = 512;

/// Query parameters of `GET /v1/search` (documentation; parsed by hand so that repeated
/// and `attr.NAME` parameters work).
#[allow(dead_code)]
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// The query text (empty: browse by filters).
    pub q: Option<String>,
    /// The shopper: personalises the order and logs the search for learning.
    pub user: Option<String>,
    /// Results per page (default 10, at most 100).
    #[param(minimum = 1, maximum = 100)]
    pub n: Option<usize>,
    /// Results to skip (at most 10000).
    #[param(minimum = 0, maximum = 10000)]
    pub offset: Option<usize>,
    /// `keyword`, `semantic` or `hybrid` (default: hybrid when a text embedder is
    /// configured, else keyword).
    pub mode: Option<String>,
    /// `rrf` (default) or `weighted`.
    pub fusion: Option<String>,
    /// Keyword share for weighted fusion, 0..=1.
    #[param(minimum = 0, maximum = 1)]
    pub alpha: Option<f32>,
    /// Category path prefix, e.g. `Electronics > Audio`.
    pub category: Option<String>,
    /// Brand; repeat or separate with commas for several.
    pub brand: Option<Vec<String>>,
    #[param(minimum = 0)]
    pub min_price: Option<f64>,
    #[param(minimum = 0)]
    pub max_price: Option<f64>,
    /// Include items marked unavailable (default false).
    pub include_unavailable: Option<bool>,
    /// `relevance` (default), `price_asc`, `price_desc`, `newest`, `popularity`.
    pub sort: Option<String>,
    /// Return facet counts (default true).
    pub facets: Option<bool>,
    /// Return per-stage scores with each result.
    pub explain: Option<bool>,
    /// Vector space for semantic matching (default `text`).
    pub space: Option<String>,
    /// Personalise with the user's affinities (default true when `user` is given).
    pub personalize: Option<bool>,
    /// Order the best results with the learned search ranker when one has been trained
    /// (default true; needs `user` and personalisation).
    pub ranker: Option<bool>,
    /// Re-ranking rules as JSON (see `GET /v1/users/{id}/recommendations`), added to the
    /// configured `[rerank]` rules.
    pub rules: Option<String>,
    /// `en` (default) or `zh`: the language of the titles.
    #[param(pattern = "^(en|zh)?$")]
    pub lang: Option<String>,
}

/// Body of `POST /v1/search`: the parameters above as JSON, plus a query vector of your
/// own (`vector`, e.g. an image embedding in `space`) and `attributes` filters.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    pub q: Option<String>,
    pub user: Option<String>,
    #[schema(minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "integral::option")]
    pub n: Option<usize>,
    #[schema(minimum = 0, maximum = 10000)]
    #[serde(default, deserialize_with = "integral::option")]
    pub offset: Option<usize>,
    pub mode: Option<String>,
    pub fusion: Option<String>,
    #[schema(minimum = 0, maximum = 1)]
    pub alpha: Option<f64>,
    pub category: Option<String>,
    #[serde(default)]
    pub brands: Vec<String>,
    #[schema(minimum = 0)]
    pub min_price: Option<f64>,
    #[schema(minimum = 0)]
    pub max_price: Option<f64>,
    pub include_unavailable: Option<bool>,
    /// Attribute filters: name → accepted values.
    #[serde(default)]
    pub attributes: BTreeMap<String, Vec<String>>,
    pub sort: Option<String>,
    pub facets: Option<bool>,
    pub explain: Option<bool>,
    pub space: Option<String>,
    pub personalize: Option<bool>,
    pub ranker: Option<bool>,
    /// Numbers within `f32` (read as `f64` so that one beyond is refused, not rounded).
    pub vector: Option<Vec<f64>>,
    /// Re-ranking rules for this search (pin, boost, bury, filter, promotions,
    /// diversity), added to the configured `[rerank]` rules.
    #[schema(value_type = Option<Object>)]
    pub rules: Option<Rules>,
    /// `en` (default) or `zh`: the language of the titles.
    #[schema(pattern = "^(en|zh)?$")]
    pub lang: Option<String>,
}

/// One result.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchItem {
    pub id: String,
    pub score: f32,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    /// The item's picture (a URL), where the catalog has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Per-stage scores (`explain=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<ExplainOut>,
    /// What re-ranking rules did to the item; absent when none applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<EffectOut>,
}

/// Why a result ranks where it does: the score of each stage.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExplainOut {
    /// BM25 score of the keyword match, and its rank among keyword matches (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bm25: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword_rank: Option<usize>,
    /// Cosine similarity to the query vector, and its rank among vector matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector_rank: Option<usize>,
    /// The fused score of the two lists (or the one list of the mode).
    pub fusion: f32,
    /// The shopper's affinity to the item's category and brand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<f32>,
    /// The query's words found in the title, brand, category or attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matched: Vec<String>,
    /// The learned search ranker's score, when it ordered the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranker: Option<f32>,
    /// The ranker's largest feature contributions, as `[name, amount]`, largest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    pub contributions: Vec<(String, f64)>,
    /// The final score.
    pub score: f32,
}

/// A facet value and how many matching items have it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FacetCountOut {
    pub value: String,
    pub count: u64,
}

/// A price bucket `[min, max)`; the last has no `max`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PriceBucketOut {
    pub min: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    pub count: u64,
}

/// Facet counts over the matching items: brand, price and attribute facets count with every
/// filter but their own; categories count the children of the selected one.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct FacetsOut {
    pub category: Vec<FacetCountOut>,
    pub brand: Vec<FacetCountOut>,
    pub price: Vec<PriceBucketOut>,
    pub attributes: BTreeMap<String, Vec<FacetCountOut>>,
}

/// The shopper's affinities that personalised the page, by category path and brand.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PersonalOut {
    pub categories: BTreeMap<String, f32>,
    pub brands: BTreeMap<String, f32>,
}

/// A page of search results.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchOut {
    pub request_id: String,
    pub total: usize,
    pub items: Vec<SearchItem>,
    /// Category children, brands, price buckets and attribute values with counts (empty
    /// with `facets=false`).
    pub facets: FacetsOut,
    /// `keyword`, `semantic` or `hybrid`: the mode that answered.
    pub mode: String,
    /// No item matched every word; items matching some are shown.
    pub relaxed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fuzzy: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expanded: Vec<String>,
    /// The user's affinities used to re-rank (when personalised).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personal: Option<PersonalOut>,
    /// The experiment whose arm served the page, and the arm (absent outside experiments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
}

fn parse<T: std::str::FromStr>(value: &str, field: &str, expected: &str) -> ApiResult<T> {
    value
        .trim()
        .parse::<T>()
        .map_err(|_| ApiError::bad_request("invalid_parameter", format!("expected {expected}, found {value:?}"), field))
}

/// Turn `GET` parameters into the JSON body form. `brand` and `attr.NAME` may repeat (their
/// values add up); any other parameter given twice is refused, as a list where the document
/// says one value.
fn body_from_pairs(pairs: Vec<(String, String)>) -> ApiResult<SearchBody> {
    let mut body = SearchBody::default();
    let mut seen = std::collections::HashSet::new();
    for (key, value) in pairs {
        if key != "brand" && !key.starts_with("attr.") && !seen.insert(key.clone()) {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                format!("expected one value of {key:?}, found it more than once"),
                key,
            ));
        }
        match key.as_str() {
            "q" => body.q = Some(value),
            "user" => body.user = Some(value),
            "n" => body.n = Some(parse(&value, "n", "a whole number")?),
            "offset" => body.offset = Some(parse(&value, "offset", "a whole number")?),
            "mode" => body.mode = Some(value),
            "fusion" => body.fusion = Some(value),
            "alpha" => body.alpha = Some(parse(&value, "alpha", "a number in 0..=1")?),
            "category" => body.category = Some(value),
            "brand" => body.brands.extend(value.split(',').map(|b| b.trim().to_string()).filter(|b| !b.is_empty())),
            "min_price" => body.min_price = Some(parse(&value, "min_price", "a price")?),
            "max_price" => body.max_price = Some(parse(&value, "max_price", "a price")?),
            "include_unavailable" => {
                body.include_unavailable = Some(parse(&value, "include_unavailable", "true or false")?)
            }
            "sort" => body.sort = Some(value),
            "lang" => body.lang = Some(value),
            "facets" => body.facets = Some(parse(&value, "facets", "true or false")?),
            "explain" => body.explain = Some(parse(&value, "explain", "true or false")?),
            "space" => body.space = Some(value),
            "personalize" => body.personalize = Some(parse(&value, "personalize", "true or false")?),
            "ranker" => body.ranker = Some(parse(&value, "ranker", "true or false")?),
            "rules" if !value.trim().is_empty() => {
                body.rules = Some(
                    serde_json::from_str(&value)
                        .map_err(|e| ApiError::bad_request("invalid_rule", format!("rules: {e}"), "rules"))?,
                )
            }
            "rules" => {}
            other => match other.strip_prefix("attr.") {
                Some(name) if !name.is_empty() => body
                    .attributes
                    .entry(name.to_string())
                    .or_default()
                    .extend(value.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty())),
                _ => {
                    return Err(ApiError::bad_request(
                        "unknown_parameter",
                        format!("unknown parameter {other:?}"),
                        other.to_string(),
                    ))
                }
            },
        }
    }
    Ok(body)
}

/// The engine's search ask from the request's parameters, validated.
fn ask_of(body: SearchBody) -> ApiResult<SearchAsk> {
    let n = body.n.unwrap_or(10);
    if !(1..=MAX_RESULTS).contains(&n) {
        return Err(ApiError::bad_request(
            "invalid_number",
            format!("expected n in 1..={MAX_RESULTS}, found {n}"),
            "n",
        ));
    }
    let offset = body.offset.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(ApiError::bad_request(
            "invalid_number",
            format!("expected offset at most {MAX_OFFSET}, found {offset}"),
            "offset",
        ));
    }
    // Checked before narrowing: 1.0000000000000002 is out of range, not 1.
    let alpha = match body.alpha {
        Some(alpha) if !(0.0..=1.0).contains(&alpha) => {
            return Err(ApiError::bad_request("invalid_parameter", format!("expected 0..=1, found {alpha}"), "alpha"))
        }
        alpha => alpha.map(|a| a as f32),
    };
    let query = body.q.unwrap_or_default();
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::bad_request(
            "query_too_long",
            format!("expected a query of at most {MAX_QUERY_CHARS} characters"),
            "q",
        ));
    }
    let mode = match body.mode.as_deref() {
        None => None,
        Some("keyword") => Some(SearchMode::Keyword),
        Some("semantic") => Some(SearchMode::Semantic),
        Some("hybrid") => Some(SearchMode::Hybrid),
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                format!("expected keyword, semantic or hybrid, found {other:?}"),
                "mode",
            ))
        }
    };
    let weighted = match body.fusion.as_deref() {
        None | Some("rrf") => false,
        Some("weighted") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                format!("expected rrf or weighted, found {other:?}"),
                "fusion",
            ))
        }
    };
    let sort = match body.sort.as_deref() {
        None => Sort::Relevance,
        Some(s) => s.parse::<Sort>().map_err(|()| {
            ApiError::bad_request(
                "invalid_parameter",
                format!("expected relevance, price_asc, price_desc, newest or popularity, found {s:?}"),
                "sort",
            )
        })?,
    };
    let vector = match body.vector {
        None => None,
        Some(vector) => {
            if vector.is_empty() || vector.len() > MAX_VECTOR_DIMS {
                return Err(ApiError::bad_request(
                    "invalid_vector",
                    format!("expected 1..={MAX_VECTOR_DIMS} dimensions, found {}", vector.len()),
                    "vector",
                ));
            }
            let narrowed: Option<Vec<f32>> = vector.into_iter().map(f32_value).collect();
            match narrowed {
                Some(vector) if vector.iter().any(|x| *x != 0.0) => Some(vector),
                _ => {
                    return Err(ApiError::bad_request(
                        "invalid_vector",
                        "expected a non-zero vector of numbers within f32",
                        "vector",
                    ))
                }
            }
        }
    };
    let user = body.user.map(|u| UserId::parse(u, "user").map_err(ApiError::validation)).transpose()?;
    let filter = ItemFilter::parse(FilterParams {
        category: body.category.as_deref(),
        brands: body.brands,
        min_price: body.min_price,
        max_price: body.max_price,
        include_unavailable: body.include_unavailable,
        attributes: body
            .attributes
            .into_iter()
            .flat_map(|(name, values)| values.into_iter().map(move |v| (name.clone(), v)))
            .collect(),
    })
    .map_err(ApiError::validation)?;
    Ok(SearchAsk {
        query,
        mode,
        weighted,
        alpha,
        vector,
        space: body.space,
        filter,
        sort,
        offset,
        limit: n,
        facets: body.facets.unwrap_or(true),
        explain: body.explain.unwrap_or(false),
        rules: body.rules.unwrap_or_default(),
        personalize: body.personalize.unwrap_or(true),
        user,
        use_ranker: body.ranker.unwrap_or(true),
        lang: Lang::parse(body.lang.as_deref(), "lang").map_err(ApiError::validation)?,
    })
}

async fn run(state: AppState, ask: SearchAsk) -> ApiResult<Json<SearchOut>> {
    let SearchServed { request_id, experiment, response, affinity } =
        state.compute(move |shop| shop.search(ask)).await?;
    let (experiment, arm) = experiment.map(|a| (a.experiment, a.arm.name)).unzip();
    let facets = response.facets.map(facets_out).unwrap_or_default();
    let mode = match response.mode {
        SearchMode::Keyword => "keyword",
        SearchMode::Semantic => "semantic",
        SearchMode::Hybrid => "hybrid",
    };
    Ok(Json(SearchOut {
        request_id,
        total: response.total,
        items: response.hits.into_iter().map(to_item).collect(),
        facets,
        mode: mode.to_string(),
        relaxed: response.relaxed,
        ignored: response.ignored,
        fuzzy: response.fuzzy,
        expanded: response.expanded,
        personal: affinity.map(|a| PersonalOut { categories: a.categories, brands: a.brands }),
        experiment,
        arm,
    }))
}

fn to_item(hit: Hit) -> SearchItem {
    SearchItem {
        id: hit.id,
        score: hit.score,
        title: hit.card.title.unwrap_or_default(),
        brand: hit.card.brand,
        category: hit.card.category,
        price: hit.card.price,
        image: hit.card.image,
        explain: hit.explain.map(|e| ExplainOut {
            bm25: e.bm25,
            keyword_rank: e.keyword_rank,
            vector: e.vector,
            vector_rank: e.vector_rank,
            fusion: e.fusion,
            personal: e.personal,
            matched: e.matched,
            ranker: e.ranker,
            contributions: e.contributions,
            score: e.score,
        }),
        effects: hit.effects.into_iter().map(effect_out).collect(),
    }
}

fn facets_out(facets: Facets) -> FacetsOut {
    let counts = |counts: Vec<FacetCount>| -> Vec<FacetCountOut> {
        counts.into_iter().map(|c| FacetCountOut { value: c.value, count: c.count }).collect()
    };
    FacetsOut {
        category: counts(facets.category),
        brand: counts(facets.brand),
        price: facets.price.into_iter().map(|b| PriceBucketOut { min: b.min, max: b.max, count: b.count }).collect(),
        attributes: facets.attributes.into_iter().map(|(name, values)| (name, counts(values))).collect(),
    }
}

/// Search the catalog.
#[utoipa::path(get, path = "/v1/search", tag = "search", params(SearchParams),
    responses((status = 200, body = SearchOut), (status = 400, body = crate::error::ErrorBody)))]
pub async fn get_search(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult<Json<SearchOut>> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request("invalid_query_string", e.to_string(), "query"))?;
    let ask = ask_of(body_from_pairs(pairs)?)?;
    run(state, ask).await
}

/// Search with a JSON body (for query vectors of your own and attribute filters).
#[utoipa::path(post, path = "/v1/search", tag = "search", request_body = SearchBody,
    responses((status = 200, body = SearchOut), (status = 400, body = crate::error::ErrorBody)))]
pub async fn post_search(State(state): State<AppState>, body: Body) -> ApiResult<Json<SearchOut>> {
    let value = json_value(&read_limited(body, state.config.max_body_bytes).await?)?;
    let body: SearchBody = serde_json::from_value(value).map_err(|e| {
        let message = e.to_string();
        let field = message.split('`').nth(1).unwrap_or("body").to_string();
        ApiError::bad_request("invalid_body", message, field)
    })?;
    let ask = ask_of(body)?;
    run(state, ask).await
}
