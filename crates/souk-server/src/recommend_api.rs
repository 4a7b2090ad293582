//! `GET /v1/users/{id}/recommendations`, `GET /v1/items/{id}/similar`,
//! `GET /v1/items/{id}/bought-together`, `GET /v1/trending`.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use souk_engine::input::{FilterParams, ItemFilter, Lang};
use souk_engine::rank::rerank::Effect;
use souk_engine::serving::live_sessions::DEFAULT_MIN_SUPPORT;
use souk_engine::serving::shop::{RecommendAsk, ServedPage, TrendingAsk};
use souk_engine::serving::{Cursor, Exclusions, RecommendSurface, Recommended};
use utoipa::{IntoParams, ToSchema};

use crate::body::{Path, Query};
use crate::error::{ApiError, ApiResult};
use crate::state::{parse_rules, AppState};

/// Most items one page may ask for.
pub const MAX_PAGE: usize = 1_000;

/// Filters shared by the recommendation endpoints (each query struct repeats these fields:
/// `serde(flatten)` loses number types in query strings).
#[derive(Debug, Default)]
pub struct FilterQuery {
    /// Category path prefix, e.g. `Electronics > Audio`.
    pub category: Option<String>,
    /// Brand (case-insensitive).
    pub brand: Option<String>,
    pub min_price: Option<f64>,
    pub max_price: Option<f64>,
    /// Include items marked unavailable (default false).
    pub include_unavailable: Option<bool>,
}

macro_rules! filter_of {
    ($query:expr) => {
        FilterQuery {
            category: $query.category.clone(),
            brand: $query.brand.clone(),
            min_price: $query.min_price,
            max_price: $query.max_price,
            include_unavailable: $query.include_unavailable,
        }
    };
}

impl FilterQuery {
    fn to_filter(&self) -> ApiResult<ItemFilter> {
        ItemFilter::parse(FilterParams {
            category: self.category.as_deref(),
            brands: self.brand.iter().cloned().collect(),
            min_price: self.min_price,
            max_price: self.max_price,
            include_unavailable: self.include_unavailable,
            attributes: Vec::new(),
        })
        .map_err(ApiError::validation)
    }
}

/// Query of `GET /v1/users/{id}/recommendations`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct RecommendQuery {
    /// `en` (default) or `zh`: the language of the titles.
    #[param(pattern = "^(en|zh)?$")]
    pub lang: Option<String>,
    /// Items per page (default 10, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub n: Option<usize>,
    /// `next_cursor` of the previous page: no item of an earlier page comes again.
    pub cursor: Option<String>,
    /// Comma list of `seen`, `purchased`, `disliked`, or `none` (default `seen`, which
    /// covers the others).
    pub exclude: Option<String>,
    /// Category path prefix, e.g. `Electronics > Audio`.
    pub category: Option<String>,
    /// Brand (case-insensitive).
    pub brand: Option<String>,
    #[param(minimum = 0)]
    pub min_price: Option<f64>,
    #[param(minimum = 0)]
    pub max_price: Option<f64>,
    /// Include items marked unavailable (default false).
    pub include_unavailable: Option<bool>,
    /// Re-ranking rules for this request, as JSON: `{"pin":[{"item":"i1","position":1}],
    /// "boost":[{"when":{"brand":"Acme"},"factor":1.5}], "filter":[…], "bury":[…],
    /// "promotions":[…], "diversity":{"quota":{"by":"brand","max_per_window":2,"window":5}}}`.
    /// Added to the configured `[rerank]` rules.
    pub rules: Option<String>,
    /// Order with the learned ranker when one is trained (default true).
    pub ranker: Option<bool>,
    /// With the ranker: each item's top feature contributions.
    pub explain: Option<bool>,
    /// `for_you` (default) or `session`: the next items of the shopper's latest session
    /// (the live session-kNN, then popular items; not reordered by the ranker).
    #[param(pattern = "^(for_you|session)$")]
    pub surface: Option<String>,
    /// The item on the shopper's screen (a product page): the page starts from it as the
    /// newest item of the shopper's history — a visitor without history gets what goes
    /// with it — and never lists it. Not stored as an event.
    pub context_item: Option<String>,
}

/// Why an item was listed: one recall source that proposed it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReasonOut {
    /// `als`, `ease`, `social` (a model pulled towards the friends' taste), `itemknn`,
    /// `session` (what sessions like the open one went on to), `content`, `graph` (shares
    /// an entity with `because`: see `relation`), `friends` (what followed users interacted
    /// with lately), `demographic` and `preferences` (for shoppers with
    /// little history: see `matched`), `popularity`, `trending`, `catalog`,
    /// `bought_together`, `pin`…
    pub source: String,
    /// The item's rank in that source (1-based).
    pub rank: usize,
    /// The source's own score.
    pub score: f32,
    /// "Because you …": the id of the item of the shopper's history (or, for similar
    /// items, the item asked about) it is most similar to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub because: Option<String>,
    /// What the shopper did with `because`: view, purchase…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub because_event: Option<String>,
    /// The title of `because`, in the page's language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub because_title: Option<String>,
    /// "A friend …" (`friends` source): the id of the followed user who interacted with
    /// the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friend: Option<String>,
    /// What that friend did with the item: view, purchase…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friend_event: Option<String>,
    /// What of the shopper's profile proposed it: `demographic` — the attribute values
    /// (`age=25-34`) shared with shoppers who over-index on the item; `preferences` — the
    /// stated preference it matches (`category=Audio`, `brand=Acme`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matched: Vec<String>,
    /// "Same … as `because`" (`graph` source): the relation of the catalog entity the item
    /// shares with `because` — `brand`, `category`, `tag`, an attribute name, or a
    /// knowledge-graph relation such as `film.film.directed_by`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    /// That entity's value, lower-cased (`acme`, `audio > headphones`, `m.0abc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
}

/// What a re-ranking rule did to an item.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EffectOut {
    /// `boost`, `bury`, `diversity`, `quota_relaxed`, `promotion` or `pin`.
    pub rule: String,
    /// Boost: the factor the score was multiplied by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// Diversity: where the item would have been without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<usize>,
    /// Pin and promotion: the position the rule gave the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
}

/// How the learned ranker placed an item.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RankerOut {
    pub score: f64,
    /// The item's rank and score in the hand blend the ranker reordered.
    pub blend_rank: usize,
    pub blend_score: f64,
    /// With `explain=true`: the features that moved the score most, as `[name, amount]`,
    /// largest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    pub contributions: Vec<(String, f64)>,
}

/// One recommended item with its reasons.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecommendedItem {
    pub id: String,
    /// The item's title (the Chinese title with `lang=zh` where the catalog has one).
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// Category path, root first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    /// The item's picture (a URL), where the catalog has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub score: f64,
    pub reasons: Vec<ReasonOut>,
    /// What re-ranking rules did to the item; absent when none applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<EffectOut>,
    /// The learned ranker's score, the item's place in the blend it reordered, and (with
    /// `explain=true`) the features that moved it most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranker: Option<RankerOut>,
}

fn reason_out(reason: souk_engine::serving::Reason) -> ReasonOut {
    ReasonOut {
        source: reason.source.to_string(),
        rank: reason.rank,
        score: reason.score,
        because: reason.because,
        because_event: reason.because_event.map(|e| e.as_str().to_string()),
        because_title: reason.because_title,
        friend: reason.friend,
        friend_event: reason.friend_event.map(|e| e.as_str().to_string()),
        matched: reason.matched,
        relation: reason.relation,
        entity: reason.entity,
    }
}

pub(crate) fn effect_out(effect: Effect) -> EffectOut {
    let mut out = EffectOut { rule: String::new(), factor: None, moved_from: None, position: None };
    out.rule = match effect {
        Effect::Boost { factor } => {
            out.factor = Some(factor);
            "boost"
        }
        Effect::Bury => "bury",
        Effect::Diversity { moved_from } => {
            out.moved_from = Some(moved_from);
            "diversity"
        }
        Effect::QuotaRelaxed => "quota_relaxed",
        Effect::Promotion { position } => {
            out.position = Some(position);
            "promotion"
        }
        Effect::Pin { position } => {
            out.position = Some(position);
            "pin"
        }
    }
    .to_string();
    out
}

/// A page of recommendations.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecommendationsOut {
    pub request_id: String,
    pub items: Vec<RecommendedItem>,
    /// Pass as `cursor` for the next page; absent when there is nothing more.
    pub next_cursor: Option<String>,
    /// The model generation that answered (absent before the first training: trending).
    pub model: Option<String>,
    /// The experiment whose arm served the page, and the arm (absent outside experiments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
}

fn page_size(n: Option<usize>, default: usize) -> ApiResult<usize> {
    let n = n.unwrap_or(default);
    if !(1..=MAX_PAGE).contains(&n) {
        return Err(ApiError::bad_request("invalid_number", format!("expected n in 1..={MAX_PAGE}, found {n}"), "n"));
    }
    Ok(n)
}

fn exclusions(text: Option<&str>) -> ApiResult<Exclusions> {
    let Some(text) = text else {
        return Ok(Exclusions::default());
    };
    let mut exclude = Exclusions { seen: false, purchased: false, disliked: false };
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "seen" => exclude.seen = true,
            "purchased" => exclude.purchased = true,
            "disliked" => exclude.disliked = true,
            "none" => {}
            other => {
                return Err(ApiError::bad_request(
                    "invalid_exclude",
                    format!("expected seen, purchased, disliked or none, found {other:?}"),
                    "exclude",
                ))
            }
        }
    }
    Ok(exclude)
}

fn to_out(items: Vec<Recommended>) -> Vec<RecommendedItem> {
    items
        .into_iter()
        .map(|r| RecommendedItem {
            id: r.id,
            title: r.card.title,
            brand: r.card.brand,
            category: r.card.category,
            price: r.card.price,
            image: r.card.image,
            score: r.score,
            reasons: r.reasons.into_iter().map(reason_out).collect(),
            effects: r.effects.into_iter().map(effect_out).collect(),
            ranker: r.ranker.map(|s| RankerOut {
                score: s.score,
                blend_rank: s.blend_rank,
                blend_score: s.blend_score,
                contributions: s.contributions,
            }),
        })
        .collect()
}

/// Recommendations for a user ("for you"), with reasons.
#[utoipa::path(get, path = "/v1/users/{id}/recommendations", tag = "recommendations",
    params(("id" = String, Path, description = "User id"), RecommendQuery),
    responses((status = 200, body = RecommendationsOut), (status = 400, body = crate::error::ErrorBody)))]
pub async fn get_recommendations(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<RecommendQuery>,
) -> ApiResult<Json<RecommendationsOut>> {
    let ask = RecommendAsk {
        user: souk_engine::UserId::parse(id.as_str(), "id").map_err(ApiError::validation)?,
        n: page_size(query.n, 10)?,
        // An empty cursor is the first page, as an absent one.
        cursor: query
            .cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(Cursor::decode)
            .transpose()
            .map_err(ApiError::validation)?,
        filter: filter_of!(query).to_filter()?,
        exclude: exclusions(query.exclude.as_deref())?,
        rules: parse_rules(query.rules.as_deref())?,
        use_ranker: query.ranker.unwrap_or(true),
        explain: query.explain.unwrap_or(false),
        lang: Lang::parse(query.lang.as_deref(), "lang").map_err(ApiError::validation)?,
        surface: match query.surface.as_deref() {
            None => RecommendSurface::ForYou,
            Some(text) => RecommendSurface::parse(text, "surface").map_err(ApiError::validation)?,
        },
        context_item: query
            .context_item
            .as_deref()
            .map(|text| souk_engine::ItemId::parse(text, "context_item"))
            .transpose()
            .map_err(ApiError::validation)?,
    };
    let page = state.compute(move |shop| shop.recommend(ask)).await?;
    Ok(Json(page_out(page)))
}

fn page_out(page: ServedPage) -> RecommendationsOut {
    let (experiment, arm) = page.experiment.map(|a| (a.experiment, a.arm.name)).unzip();
    RecommendationsOut {
        experiment,
        arm,
        request_id: page.request_id,
        items: to_out(page.items),
        next_cursor: page.next_cursor.map(|c| c.encode()),
        model: page.trained_at_ms.map(|t| format!("trained-at-{t}")),
    }
}

/// Query of `GET /v1/items/{id}/similar`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SimilarQuery {
    /// `en` (default) or `zh`: the language of the titles.
    #[param(pattern = "^(en|zh)?$")]
    pub lang: Option<String>,
    /// How many (default 10, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub n: Option<usize>,
    /// Category path prefix, e.g. `Electronics > Audio`.
    pub category: Option<String>,
    /// Brand (case-insensitive).
    pub brand: Option<String>,
    #[param(minimum = 0)]
    pub min_price: Option<f64>,
    #[param(minimum = 0)]
    pub max_price: Option<f64>,
    /// Include items marked unavailable (default false).
    pub include_unavailable: Option<bool>,
}

/// Items similar to an item.
#[utoipa::path(get, path = "/v1/items/{id}/similar", tag = "recommendations",
    params(("id" = String, Path, description = "Item id"), SimilarQuery),
    responses((status = 200, body = RecommendationsOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_similar(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<SimilarQuery>,
) -> ApiResult<Json<RecommendationsOut>> {
    souk_engine::ItemId::parse(id.as_str(), "id").map_err(ApiError::validation)?;
    let n = page_size(query.n, 10)?;
    let filter = filter_of!(query).to_filter()?;
    let lang = Lang::parse(query.lang.as_deref(), "lang").map_err(ApiError::validation)?;
    let item = id.clone();
    let found = state.compute(move |shop| shop.similar(&item, n, &filter, lang)).await?;
    let page = found.ok_or_else(|| ApiError::not_found("item", &id))?;
    Ok(Json(page_out(page)))
}

/// Query of `GET /v1/items/{id}/bought-together`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct BoughtTogetherQuery {
    /// `en` (default) or `zh`: the language of the titles.
    #[param(pattern = "^(en|zh)?$")]
    pub lang: Option<String>,
    /// How many (default 10, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub n: Option<usize>,
    /// Fewest baskets a pair must share to be listed (default 2).
    #[param(minimum = 1, maximum = 4_294_967_295_u64)]
    pub min_support: Option<u32>,
    /// Category path prefix, e.g. `Electronics > Audio`.
    pub category: Option<String>,
    /// Brand (case-insensitive).
    pub brand: Option<String>,
    #[param(minimum = 0)]
    pub min_price: Option<f64>,
    #[param(minimum = 0)]
    pub max_price: Option<f64>,
    /// Include items marked unavailable (default false).
    pub include_unavailable: Option<bool>,
}

/// Items frequently bought together with an item: shoppers' baskets (their purchases
/// without a day's pause) holding both, by lift (how much more often than chance), in at
/// least `min_support` baskets; never the item itself. Each reason's `score` is the
/// number of baskets, the item's `score` the lift.
#[utoipa::path(get, path = "/v1/items/{id}/bought-together", tag = "recommendations",
    params(("id" = String, Path, description = "Item id"), BoughtTogetherQuery),
    responses((status = 200, body = RecommendationsOut), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_bought_together(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<BoughtTogetherQuery>,
) -> ApiResult<Json<RecommendationsOut>> {
    souk_engine::ItemId::parse(id.as_str(), "id").map_err(ApiError::validation)?;
    let n = page_size(query.n, 10)?;
    let min_support = query.min_support.unwrap_or(DEFAULT_MIN_SUPPORT);
    if min_support == 0 {
        return Err(ApiError::bad_request(
            "invalid_number",
            "expected min_support of at least 1, found 0",
            "min_support",
        ));
    }
    let filter = filter_of!(query).to_filter()?;
    let lang = Lang::parse(query.lang.as_deref(), "lang").map_err(ApiError::validation)?;
    let item = id.clone();
    let found = state.compute(move |shop| shop.bought_together(&item, n, min_support, &filter, lang)).await?;
    let page = found.ok_or_else(|| ApiError::not_found("item", &id))?;
    Ok(Json(page_out(page)))
}

/// Query of `GET /v1/trending`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct TrendingQuery {
    /// `en` (default) or `zh`: the language of the titles.
    #[param(pattern = "^(en|zh)?$")]
    pub lang: Option<String>,
    /// How many (default 10, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub n: Option<usize>,
    /// Half-life of an event's weight, in hours (default 24).
    #[param(exclusive_minimum = 0)]
    pub half_life_hours: Option<f64>,
    /// Category path prefix, e.g. `Electronics > Audio`.
    pub category: Option<String>,
    /// Brand (case-insensitive).
    pub brand: Option<String>,
    #[param(minimum = 0)]
    pub min_price: Option<f64>,
    #[param(minimum = 0)]
    pub max_price: Option<f64>,
    /// Include items marked unavailable (default false).
    pub include_unavailable: Option<bool>,
}

/// Trending items: recent events, weighted by type and decayed with age.
#[utoipa::path(get, path = "/v1/trending", tag = "recommendations",
    params(TrendingQuery),
    responses((status = 200, body = RecommendationsOut), (status = 400, body = crate::error::ErrorBody)))]
pub async fn get_trending(
    State(state): State<AppState>,
    Query(query): Query<TrendingQuery>,
) -> ApiResult<Json<RecommendationsOut>> {
    let ask = TrendingAsk {
        n: page_size(query.n, 10)?,
        half_life_hours: query.half_life_hours.unwrap_or(24.0),
        filter: filter_of!(query).to_filter()?,
        lang: Lang::parse(query.lang.as_deref(), "lang").map_err(ApiError::validation)?,
    };
    let page = state.blocking(move |shop| shop.trending(&ask)).await?;
    Ok(Json(page_out(page)))
}
