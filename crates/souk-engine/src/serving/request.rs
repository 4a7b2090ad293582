//! What a recommendation request asks and what a page answers: exclusions, catalog
//! filters, reasons, the cursor that never repeats an item.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Result, ValidationError};
use crate::ids::UserId;
pub use crate::input::ItemFilter;
use crate::model::{EventType, ItemCard};
use crate::rank::online::OnlineClickModel;
use crate::rank::rerank::{Effect, Pin, Promotion, Rules};
use crate::recommend::SourceKind;

/// Which of a user's items never to recommend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusions {
    /// Every item the user interacted with (viewed, clicked, bought…).
    pub seen: bool,
    pub purchased: bool,
    pub disliked: bool,
}

impl Default for Exclusions {
    fn default() -> Self {
        Self { seen: true, purchased: true, disliked: true }
    }
}

/// Why an item was recommended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// The source that proposed it (or the pin rule that placed it).
    pub source: SourceKind,
    /// Its rank in that source (1-based).
    pub rank: usize,
    /// The source's own score.
    pub score: f32,
    /// "Because you …": the item of the user's history it is most similar to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because: Option<String>,
    /// What the user did with `because` (view, purchase…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because_event: Option<EventType>,
    /// The title of `because` (filled by [`describe`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub because_title: Option<String>,
    /// "A friend …" (the `friends` source): the followed user who interacted with the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friend: Option<String>,
    /// What that friend did with the item (their latest event with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friend_event: Option<EventType>,
    /// What of the shopper's profile proposed it: attribute values shared with shoppers
    /// who over-index on the item (`demographic`: `age=25-34`), or the stated preference
    /// it matches (`preferences`: `category=Audio`, `brand=Acme`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matched: Vec<String>,
    /// "Same … as `because`" (the `graph` source): the relation of the entity the item
    /// shares with `because` (`brand`, `category`, `film.film.directed_by`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    /// That entity's value (lower-cased: `acme`, `m.0abc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
}

/// One recommended item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Recommended {
    pub id: String,
    /// What a page shows of the item (filled by [`describe`]).
    #[serde(flatten)]
    pub card: ItemCard,
    /// Fused score (weighted reciprocal rank), after boosts.
    pub score: f64,
    pub reasons: Vec<Reason>,
    /// What re-ranking rules did to the item (boost, pin, diversity…); empty when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<Effect>,
    /// The learned ranker's view, when one ranked the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranker: Option<RankerScore>,
}

/// How the learned ranker placed an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankerScore {
    pub score: f64,
    /// The item's rank and score in the hand blend the ranker reordered.
    pub blend_rank: usize,
    pub blend_score: f64,
    /// The features that moved the score most (with `explain`), largest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contributions: Vec<(String, f64)>,
}

/// A request for a user's recommendations.
#[derive(Debug, Clone)]
pub struct RecommendRequest {
    /// Parsed once, where the request enters.
    pub user: UserId,
    pub n: usize,
    pub cursor: Option<Cursor>,
    pub filter: ItemFilter,
    pub exclude: Exclusions,
    /// Re-ranking rules (the configured ones merged with the request's), already validated.
    pub rules: Rules,
    /// Order the blend's best candidates with the set's learned ranker (when it has one).
    pub use_ranker: bool,
    /// Compute the feature rows of the returned items (for the feature log) even without
    /// a ranker, when the set has a feature context.
    pub log_features: bool,
    /// Return the ranker's top feature contributions per item.
    pub explain: bool,
    /// The time affinities decay to (Unix ms); 0: the user's newest interaction.
    pub now_ms: i64,
    /// The online click model, whose prediction is the `online_ctr` feature.
    pub online: Option<Arc<OnlineClickModel>>,
    /// The page asked for: "for you", or the next items of the latest session.
    pub surface: super::RecommendSurface,
    /// The live session index (the `session` source); without it, item-kNN on the session.
    pub sessions: Option<Arc<super::LiveSessions>>,
    /// Fill the exploration slots at these page positions from this state (logged "for
    /// you" pages).
    pub exploration: Option<(Arc<super::exploration::Exploration>, Vec<usize>)>,
    /// Item content vectors (the `content` source) and the text vectors they read.
    pub content: Option<(Arc<super::live_content::LiveContent>, Option<Arc<crate::search::vectors::VectorSpace>>)>,
    /// The item on the shopper's screen: the newest item of their history for this page
    /// (a view, not stored), and not recommended back.
    pub context_item: Option<crate::ids::ItemId>,
}

impl RecommendRequest {
    /// `n` items for `user`, with the default exclusions and nothing else asked.
    pub fn new(user: UserId, n: usize) -> Self {
        Self {
            user,
            n,
            cursor: None,
            filter: ItemFilter::default(),
            exclude: Exclusions::default(),
            rules: Rules::default(),
            use_ranker: false,
            log_features: false,
            explain: false,
            now_ms: 0,
            online: None,
            surface: super::RecommendSurface::ForYou,
            sessions: None,
            exploration: None,
            content: None,
            context_item: None,
        }
    }
}

/// Candidates the re-ranking rules see, at least (more when a page is larger).
pub const RERANK_WINDOW: usize = 200;

/// Rules as they apply to a page that starts after `offset` items were shown: pins and
/// promotion slots are positions in the whole list, so a later page sees them shifted,
/// and those already passed are dropped.
pub(super) fn rules_for_page(rules: &Rules, offset: usize) -> Rules {
    let mut page = rules.clone();
    page.pin = rules
        .pin
        .iter()
        .filter(|p| p.position > offset)
        .map(|p| Pin { item: p.item.clone(), position: p.position - offset })
        .collect();
    page.promotions = rules
        .promotions
        .iter()
        .filter_map(|promotion| {
            let positions: Vec<usize> =
                promotion.positions.iter().filter(|p| **p > offset).map(|p| p - offset).collect();
            (!positions.is_empty()).then(|| Promotion { positions, when: promotion.when.clone() })
        })
        .collect();
    page
}

/// A page of recommendations.
#[derive(Debug, Clone)]
pub struct RecommendPage {
    pub items: Vec<Recommended>,
    pub next_cursor: Option<Cursor>,
    /// The history the answer was computed from (most recent first), for explanations.
    pub history_size: usize,
    /// The ranker's feature row of each returned item, for the feature log (empty without
    /// a ranker).
    pub features: Vec<(String, Vec<f32>)>,
    /// The exploration picks on the page, by position (empty when not explored).
    pub explored: Vec<super::exploration::Explored>,
}

/// Pagination state carried by the client: digests of every item already shown, so no
/// later page repeats one even if the ranking moved in between (events arrive, models
/// swap). Stateless on the server; its text is the version digit and eight lowercase hex
/// digits per shown item ([`CURSOR_PATTERN`]), so a document can state exactly which
/// strings are cursors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    pub(super) shown: Vec<u32>,
}

const CURSOR_VERSION: char = '2';
/// Most items a cursor may carry (then the client starts over): its text, at most
/// [`MAX_CURSOR_CHARS`], fits a URL with room to spare.
pub const MAX_CURSOR_ITEMS: usize = 1_000;
/// Longest cursor text.
pub const MAX_CURSOR_CHARS: usize = 1 + 8 * MAX_CURSOR_ITEMS;
/// Every cursor text (and the empty string, the first page) matches this.
pub const CURSOR_PATTERN: &str = "^(2([0-9a-f]{8})*)?$";

pub(super) fn item_digest(id: &str) -> u32 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes()) as u32
}

pub(super) fn digests_of(ids: &[String]) -> Vec<u64> {
    ids.iter().map(|id| xxhash_rust::xxh3::xxh3_64(id.as_bytes())).collect()
}

impl Cursor {
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(1 + 8 * self.shown.len());
        text.push(CURSOR_VERSION);
        for d in &self.shown {
            text.push_str(&format!("{d:08x}"));
        }
        text
    }

    /// The cursor of a text [`Self::encode`] wrote; anything else is refused.
    pub fn decode(text: &str) -> Result<Cursor, ValidationError> {
        let invalid =
            || ValidationError::new("invalid_cursor", "cursor", "expected a cursor returned by an earlier page");
        let digits = text.strip_prefix(CURSOR_VERSION).ok_or_else(invalid)?;
        let lower_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
        if digits.len() % 8 != 0 || digits.len() / 8 > MAX_CURSOR_ITEMS || !digits.as_bytes().iter().all(lower_hex) {
            return Err(invalid());
        }
        let shown = digits
            .as_bytes()
            .chunks_exact(8)
            .map(|chunk| std::str::from_utf8(chunk).ok().and_then(|hex| u32::from_str_radix(hex, 16).ok()))
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(invalid)?;
        Ok(Cursor { shown })
    }

    pub fn contains(&self, id: &str) -> bool {
        self.shown.contains(&item_digest(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_through_its_text_and_nothing_else_is_a_cursor() {
        let cursor = Cursor { shown: vec![0, 1, u32::MAX, 0xdead_beef] };
        let text = cursor.encode();
        assert_eq!(text, "20000000000000001ffffffffdeadbeef");
        assert_eq!(Cursor::decode(&text).unwrap(), cursor);
        assert_eq!(Cursor::decode("2").unwrap(), Cursor::default());
        let full = Cursor { shown: vec![7; MAX_CURSOR_ITEMS] }.encode();
        assert_eq!(full.len(), MAX_CURSOR_CHARS);
        assert!(Cursor::decode(&full).is_ok());
        let too_long = format!("{full}00000000");
        for bad in ["", "1", "2abc", "2DEADBEEF", " 2deadbeef", "2deadbeef ", "2deadbeef0", "2+eadbeef", &too_long] {
            assert!(Cursor::decode(bad).is_err(), "{bad:?}");
        }
    }
}
