//! Wire types: the JSON shapes of the API as documented in `/openapi.json`.
//!
//! Request bodies are validated by `souk_engine::input` (one set of rules for HTTP and
//! import files); the request types here describe those shapes for the OpenAPI document,
//! and a test checks that their fields are exactly the fields the engine accepts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An event, as accepted by `POST /v1/events`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventIn {
    /// Event id; re-delivering the same id stores the event once. Generated if absent.
    pub id: Option<String>,
    /// One of view, click, add_to_cart, remove_from_cart, purchase, favorite, rating,
    /// review, search, impression, dislike.
    #[serde(rename = "type")]
    pub event_type: String,
    pub user: String,
    /// Required for every type but search and impression.
    pub item: Option<String>,
    /// Items shown (impression) or returned (search), in display order.
    pub items: Option<Vec<String>>,
    /// Rating value (required for rating), or another numeric value.
    pub value: Option<f64>,
    pub dwell_ms: Option<u64>,
    /// Required for search.
    pub query: Option<String>,
    /// Review text (required for review).
    pub text: Option<String>,
    pub request_id: Option<String>,
    /// Zero-based position in the response the item was shown in.
    pub position: Option<u32>,
    /// Probability in (0, 1] with which the logging policy showed the item.
    pub propensity: Option<f64>,
    /// Impressions: the probability in (0, 1] with which the logging policy put each of
    /// `items` at its position (one per item; Souk's own logged pages carry them).
    pub propensities: Option<Vec<f64>>,
    /// Experiment arm.
    pub arm: Option<String>,
    pub quantity: Option<u32>,
    /// Unit price paid (non-negative).
    pub price: Option<f64>,
    /// RFC 3339 date-time string or Unix milliseconds.
    #[schema(value_type = String, example = "2026-11-22T10:00:00Z")]
    pub timestamp: serde_json::Value,
}

/// A title and description in another language.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TranslationIn {
    pub title: String,
    pub description: Option<String>,
}

/// A catalog item.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ItemIn {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    /// "Electronics > Audio > Headphones" or an array of levels.
    #[schema(value_type = Option<String>)]
    pub category: Option<serde_json::Value>,
    pub brand: Option<String>,
    /// Non-negative, finite.
    pub price: Option<f64>,
    pub currency: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<BTreeMap<String, serde_json::Value>>,
    pub tags: Option<Vec<String>>,
    /// Default true.
    pub available: Option<bool>,
    #[schema(value_type = Option<String>)]
    pub created_at: Option<serde_json::Value>,
    /// Localised title and description by language code, e.g. `zh`.
    pub translations: Option<BTreeMap<String, TranslationIn>>,
    /// A picture the storefront shows: an `http(s)://` URL or a path on the shop's host.
    pub image: Option<String>,
    /// User-supplied vectors by name (e.g. image embeddings).
    pub vectors: Option<BTreeMap<String, Vec<f32>>>,
}

/// Onboarding preferences.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PreferencesIn {
    pub categories: Option<Vec<String>>,
    pub brands: Option<Vec<String>>,
}

/// A user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserIn {
    pub id: String,
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<BTreeMap<String, serde_json::Value>>,
    pub preferences: Option<PreferencesIn>,
}

/// Body of `PUT /v1/users/{id}/follows/{other}` (optional).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FollowIn {
    /// follow (default), friend or trust.
    pub kind: Option<String>,
}

/// Answer to an ingest request.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// Records now durably stored (including re-deliveries recognised by id).
    pub accepted: u64,
    /// Of those, events whose id was already stored.
    pub duplicates: u64,
}

/// `GET /v1/stats`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatsOut {
    pub items: u64,
    pub users: u64,
    pub events: u64,
    pub events_by_type: BTreeMap<String, u64>,
    pub social_edges: u64,
    pub catalog_items: u64,
    /// Items with live events but no catalog record (not served until the catalog has them).
    pub items_without_record: u64,
    pub catalog_users: u64,
    #[schema(value_type = Object)]
    pub storage: serde_json::Value,
}

/// `GET /health`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` while writes fail (the disk is full or failing: every write
    /// still tries, and the first to succeed makes it `ok` again; while degraded, this
    /// check also tries a small write and sync, at most once a second, so that an idle
    /// server reports space returning).
    pub status: String,
    pub version: String,
    pub uptime_seconds: f64,
    /// Why writes fail: the part (event log, catalog), the code and since when (absent
    /// when they succeed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes_refused: Option<String>,
}

/// What erasing a user removed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Erased {
    pub user_record: bool,
    pub events: u64,
    pub social_edges: u64,
}

/// An item as stored: the answer of `PUT` and `GET /v1/items/{id}`. Empty lists and maps
/// and absent values are left out.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ItemOut {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The category path's levels from the root, e.g. `["Electronics", "Audio"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub available: bool,
    /// Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub translations: BTreeMap<String, TranslationIn>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vectors: BTreeMap<String, Vec<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Live events of the item by type (`GET` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_counts: Option<BTreeMap<String, u64>>,
    /// What the item's review texts say, scored at the last training (`GET` only; absent
    /// before one scored any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_sentiment: Option<crate::report_wire::TextSentimentOut>,
}

impl From<souk_engine::Item> for ItemOut {
    fn from(item: souk_engine::Item) -> Self {
        Self {
            id: item.id.into_string(),
            title: item.title,
            description: item.description,
            category: item.category,
            brand: item.brand,
            price: item.price,
            currency: item.currency,
            attributes: item.attributes,
            tags: item.tags,
            available: item.available,
            created_at: item.created_at,
            translations: item
                .translations
                .into_iter()
                .map(|(lang, t)| (lang, TranslationIn { title: t.title, description: t.description }))
                .collect(),
            vectors: item.vectors,
            image: item.image,
            event_counts: None,
            review_sentiment: None,
        }
    }
}

/// One of a user's social edges.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FollowOut {
    pub other: String,
    /// follow, friend or trust.
    pub kind: String,
}

/// A user as stored: the answer of `PUT` and `GET /v1/users/{id}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserOut {
    pub id: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferences: Option<PreferencesIn>,
    /// The users they follow (`GET` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follows: Option<Vec<FollowOut>>,
}

impl From<souk_engine::User> for UserOut {
    fn from(user: souk_engine::User) -> Self {
        let preferences = (!user.preferences.is_empty()).then_some(PreferencesIn {
            categories: Some(user.preferences.categories),
            brands: Some(user.preferences.brands),
        });
        Self { id: user.id.into_string(), attributes: user.attributes, preferences, follows: None }
    }
}

/// A stored event, as `GET /v1/users/{id}/events` lists it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventOut {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dwell_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propensity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    /// Unix milliseconds.
    pub timestamp: i64,
}

impl From<souk_engine::Event> for EventOut {
    fn from(event: souk_engine::Event) -> Self {
        Self {
            id: event.id.into_string(),
            event_type: event.event_type.as_str().to_string(),
            user: event.user.into_string(),
            item: event.item.map(souk_engine::ItemId::into_string),
            items: event.items.into_iter().map(souk_engine::ItemId::into_string).collect(),
            value: event.value,
            dwell_ms: event.dwell_ms,
            query: event.query,
            text: event.text,
            request_id: event.request_id,
            position: event.position,
            propensity: event.propensity,
            arm: event.arm,
            quantity: event.quantity,
            price: event.price,
            timestamp: event.timestamp,
        }
    }
}

/// `GET /v1/users/{id}/events`: the user's most recent events, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserEventsOut {
    pub user: String,
    pub events: Vec<EventOut>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_names<T: ToSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        let mut names: Vec<String> = schema["properties"].as_object().unwrap().keys().cloned().collect();
        names.sort();
        names
    }

    fn sorted(fields: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn documented_request_shapes_match_what_the_engine_accepts() {
        use souk_engine::input;
        assert_eq!(field_names::<EventIn>(), sorted(input::EVENT_FIELDS));
        assert_eq!(field_names::<ItemIn>(), sorted(input::ITEM_FIELDS));
        assert_eq!(field_names::<UserIn>(), sorted(input::USER_FIELDS));
    }
}
