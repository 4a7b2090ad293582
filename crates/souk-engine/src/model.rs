//! The domain model: items, users, events and social edges.
//!
//! These are validated values: constructing them through [`crate::input`] guarantees the
//! invariants documented on each field. The model owns no IO and knows nothing of HTTP.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, ItemId, UserId};

/// Milliseconds since the Unix epoch (UTC).
pub type TimestampMs = i64;

/// The kinds of events Souk records. The discriminants are persisted: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum EventType {
    View = 0,
    Click = 1,
    AddToCart = 2,
    RemoveFromCart = 3,
    Purchase = 4,
    Favorite = 5,
    Rating = 6,
    Review = 7,
    Search = 8,
    Impression = 9,
    Dislike = 10,
}

impl EventType {
    pub const ALL: [EventType; 11] = [
        EventType::View,
        EventType::Click,
        EventType::AddToCart,
        EventType::RemoveFromCart,
        EventType::Purchase,
        EventType::Favorite,
        EventType::Rating,
        EventType::Review,
        EventType::Search,
        EventType::Impression,
        EventType::Dislike,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::View => "view",
            EventType::Click => "click",
            EventType::AddToCart => "add_to_cart",
            EventType::RemoveFromCart => "remove_from_cart",
            EventType::Purchase => "purchase",
            EventType::Favorite => "favorite",
            EventType::Rating => "rating",
            EventType::Review => "review",
            EventType::Search => "search",
            EventType::Impression => "impression",
            EventType::Dislike => "dislike",
        }
    }

    pub fn from_u8(value: u8) -> Option<Self> {
        EventType::ALL.get(usize::from(value)).copied()
    }

    /// Whether an event of this type is about exactly one item (`item` required).
    pub fn needs_item(self) -> bool {
        !matches!(self, EventType::Search | EventType::Impression)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL.iter().copied().find(|t| t.as_str() == s).ok_or(())
    }
}

/// Something a shopper did. Invariants (checked by [`crate::input`]): `item` is present for
/// every type but `search` and `impression`; `impression` has a non-empty `items`; `search`
/// has a `query`; `review` has `text`; `rating` has a finite `value`; numbers are finite and
/// non-negative where they are amounts, positions or durations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub user: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<ItemId>,
    /// Items shown (impressions) or returned (searches), in display order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemId>,
    /// Rating value, or another numeric value the shop attaches (e.g. play count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dwell_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Review text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The request (search or recommendation response) this event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Zero-based position of the item in the response it was shown in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// Probability with which the logging policy showed the item, in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propensity: Option<f64>,
    /// For an impression: the probability with which the logging policy put each of
    /// `items` at its position, in (0, 1] (parallel to `items`; empty when not known).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub propensities: Vec<f64>,
    /// Experiment arm that served the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
    /// Purchase quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u32>,
    /// Unit price paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    pub timestamp: TimestampMs,
}

impl Event {
    /// A minimal event; the optional fields start empty.
    pub fn new(id: EventId, event_type: EventType, user: UserId, item: Option<ItemId>, timestamp: TimestampMs) -> Self {
        Self {
            id,
            event_type,
            user,
            item,
            items: Vec::new(),
            value: None,
            dwell_ms: None,
            query: None,
            text: None,
            request_id: None,
            position: None,
            propensity: None,
            propensities: Vec::new(),
            arm: None,
            quantity: None,
            price: None,
            timestamp,
        }
    }
}

/// Title and description in another language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Translation {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A catalog item. `category` holds the path from the root ("Electronics > Audio" is
/// `["Electronics", "Audio"]`); `price` is finite and non-negative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: ItemId,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default = "default_true")]
    pub available: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<TimestampMs>,
    /// Localised title and description by language code (e.g. `zh`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub translations: BTreeMap<String, Translation>,
    /// User-supplied vectors by name (e.g. image embeddings); all values finite.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vectors: BTreeMap<String, Vec<f32>>,
    /// The item's picture: an `http(s)://` URL or a path on the shop's own site (`/…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

fn default_true() -> bool {
    true
}

impl Item {
    /// An item with only an id and a title.
    pub fn new(id: ItemId, title: impl Into<String>) -> Self {
        Self {
            id,
            title: title.into(),
            description: None,
            category: Vec::new(),
            brand: None,
            price: None,
            currency: None,
            attributes: BTreeMap::new(),
            tags: Vec::new(),
            available: true,
            created_at: None,
            translations: BTreeMap::new(),
            vectors: BTreeMap::new(),
            image: None,
        }
    }
}

/// What a page shows of a listed item, the same for every surface (recommendations,
/// similar items, trending, search hits): title (in the page's language), brand, category
/// path, price and picture. Filled from the catalog's facts ([`crate::store::ItemMeta::card`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemCard {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// Onboarding preferences a user stated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub brands: Vec<String>,
}

impl Preferences {
    pub fn is_empty(&self) -> bool {
        self.categories.is_empty() && self.brands.is_empty()
    }
}

/// A shopper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Preferences::is_empty")]
    pub preferences: Preferences,
}

impl User {
    pub fn new(id: UserId) -> Self {
        Self { id, attributes: BTreeMap::new(), preferences: Preferences::default() }
    }
}

/// The kind of a social edge. Persisted by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowKind {
    Follow,
    Friend,
    Trust,
}

impl FollowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FollowKind::Follow => "follow",
            FollowKind::Friend => "friend",
            FollowKind::Trust => "trust",
        }
    }
}

impl FromStr for FollowKind {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "follow" => Ok(FollowKind::Follow),
            "friend" => Ok(FollowKind::Friend),
            "trust" => Ok(FollowKind::Trust),
            _ => Err(()),
        }
    }
}

/// A directed social edge: `user` follows / befriends / trusts `other`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Follow {
    pub user: UserId,
    pub other: UserId,
    pub kind: FollowKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<TimestampMs>,
}

/// One record of any kind, as found in import files and generator output.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Item(Item),
    User(User),
    Event(Event),
    Follow(Follow),
}

/// Where importers and the generator put the records they produce. The store-backed
/// implementation batches writes; tests collect into vectors.
pub trait RecordSink {
    fn put(&mut self, record: Record) -> crate::Result<()>;
}

impl RecordSink for Vec<Record> {
    fn put(&mut self, record: Record) -> crate::Result<()> {
        self.push(record);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_names_round_trip_and_discriminants_are_stable() {
        for (index, event_type) in EventType::ALL.iter().enumerate() {
            assert_eq!(*event_type as usize, index);
            assert_eq!(EventType::from_u8(index as u8), Some(*event_type));
            assert_eq!(event_type.as_str().parse::<EventType>(), Ok(*event_type));
        }
        assert_eq!(EventType::from_u8(11), None);
        assert!("buy".parse::<EventType>().is_err());
    }
}
