//! What shoppers do together, kept up to date on ingest (no retraining): every shopper's
//! sessions in a session-kNN index ([`SessionKnn`]: "next items for this session") and
//! their baskets' co-purchase counts ("frequently bought together").
//!
//! A session is a shopper's run of item interactions (views, clicks, carts, purchases,
//! favourites, ratings, reviews) without a pause longer than [`SESSION_GAP_MS`]; a basket is
//! their run of purchases without a pause longer than [`BASKET_GAP_MS`]. Two items are
//! bought together when one basket holds both; a pair's *lift* is how much more often that
//! happens than chance: `together · baskets / (baskets with a · baskets with b)`. Only pairs
//! seen in at least `min_support` baskets are listed.
//!
//! The index is built from the store on first use (one scan of the stored interactions,
//! in arrival order) and then follows every ingested batch. Memory is bounded: the session
//! index keeps its newest `max_sessions` sessions; a basket counts at most
//! [`MAX_BASKET_ITEMS`] items, so it adds at most that many squared pair counts.

use std::collections::HashMap;

use parking_lot::RwLock;

use super::recall::{Recall, RecallSource};
use super::{SourceKind, SESSION_GAP_MS};
use crate::error::Result;
use crate::ids::UserId;
use crate::model::{Event, EventType};
use crate::recommend::session_knn::SessionNo;
use crate::recommend::{SessionKnn, SessionKnnParams};
use crate::store::Storage;

/// A pause longer than this between two purchases starts a new basket.
pub const BASKET_GAP_MS: i64 = 24 * 3600 * 1000;

/// Items of one basket that count towards co-purchases (later ones are ignored).
pub const MAX_BASKET_ITEMS: usize = 50;

/// Default minimum number of baskets a bought-together pair must appear in.
pub const DEFAULT_MIN_SUPPORT: u32 = 2;

/// Sessions the live index keeps by default (with at most 100 items each).
pub const LIVE_MAX_SESSIONS: usize = 500_000;

/// Whether an event of this type is part of a browsing session.
pub fn in_session(event_type: EventType) -> bool {
    matches!(
        event_type,
        EventType::View
            | EventType::Click
            | EventType::AddToCart
            | EventType::Purchase
            | EventType::Favorite
            | EventType::Rating
            | EventType::Review
    )
}

/// An item bought together with another.
#[derive(Debug, Clone, PartialEq)]
pub struct BoughtTogether {
    pub item: String,
    pub lift: f32,
    /// Baskets holding both.
    pub support: u32,
}

/// See the module documentation.
pub struct LiveSessions {
    params: SessionKnnParams,
    state: RwLock<Option<State>>,
}

impl std::fmt::Debug for LiveSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.read();
        f.debug_struct("LiveSessions")
            .field("params", &self.params)
            .field("sessions", &state.as_ref().map(|s| s.knn.len()))
            .finish()
    }
}

#[derive(Default)]
struct Run {
    number: SessionNo,
    items: Vec<u32>,
    newest_ms: i64,
}

struct State {
    knn: SessionKnn,
    numbers: HashMap<Box<str>, u32>,
    ids: Vec<Box<str>>,
    /// Each shopper's latest session (by the digest of their id).
    sessions: HashMap<u64, Run>,
    /// Each shopper's latest basket.
    baskets: HashMap<u64, Run>,
    /// Per item, the items bought with it and in how many baskets.
    together: HashMap<u32, HashMap<u32, u32>>,
    /// Per item, the baskets holding it.
    item_baskets: HashMap<u32, u32>,
    basket_count: u64,
    newest_ms: i64,
}

fn user_key(user: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(user.as_bytes())
}

impl State {
    fn new(params: &SessionKnnParams) -> Self {
        Self {
            knn: SessionKnn::new(params.clone()),
            numbers: HashMap::new(),
            ids: Vec::new(),
            sessions: HashMap::new(),
            baskets: HashMap::new(),
            together: HashMap::new(),
            item_baskets: HashMap::new(),
            basket_count: 0,
            newest_ms: i64::MIN,
        }
    }

    fn number(&mut self, item: &str) -> u32 {
        if let Some(&n) = self.numbers.get(item) {
            return n;
        }
        let n = self.ids.len() as u32;
        self.ids.push(item.into());
        self.numbers.insert(item.into(), n);
        n
    }

    fn observe(&mut self, user: &str, item: &str, event_type: EventType, time_ms: i64) {
        if !in_session(event_type) {
            return;
        }
        let key = user_key(user);
        let i = self.number(item);
        self.newest_ms = self.newest_ms.max(time_ms);
        let knn = &mut self.knn;
        let run = self.sessions.entry(key).or_default();
        if run.items.is_empty() || (time_ms - run.newest_ms).abs() > SESSION_GAP_MS || !knn.holds(run.number) {
            *run = Run { number: knn.start_session(time_ms), items: Vec::new(), newest_ms: time_ms };
        }
        run.items.push(i);
        run.newest_ms = run.newest_ms.max(time_ms);
        knn.push(run.number, i, time_ms);
        if event_type == EventType::Purchase {
            self.purchase(key, i, time_ms);
        }
        // Forget shoppers whose sessions and baskets are long over (bounded maps).
        if self.sessions.len() > 2 * self.knn.params().max_sessions {
            let knn = &self.knn;
            self.sessions.retain(|_, run| knn.holds(run.number));
            let newest = self.newest_ms;
            self.baskets.retain(|_, basket| newest - basket.newest_ms <= BASKET_GAP_MS);
        }
    }

    fn purchase(&mut self, key: u64, item: u32, time_ms: i64) {
        let basket = self.baskets.entry(key).or_default();
        if basket.items.is_empty() || (time_ms - basket.newest_ms).abs() > BASKET_GAP_MS {
            *basket = Run { number: 0, items: Vec::new(), newest_ms: time_ms };
            self.basket_count += 1;
        }
        basket.newest_ms = basket.newest_ms.max(time_ms);
        if basket.items.contains(&item) || basket.items.len() >= MAX_BASKET_ITEMS {
            return;
        }
        for &other in &basket.items {
            *self.together.entry(item).or_default().entry(other).or_default() += 1;
            *self.together.entry(other).or_default().entry(item).or_default() += 1;
        }
        basket.items.push(item);
        *self.item_baskets.entry(item).or_default() += 1;
    }
}

impl LiveSessions {
    /// An index not built yet (it is, from the store, on first use).
    pub fn new(params: SessionKnnParams) -> Self {
        Self { params, state: RwLock::new(None) }
    }

    /// With the default parameters and [`LIVE_MAX_SESSIONS`].
    pub fn with_defaults() -> Self {
        Self::new(SessionKnnParams { max_sessions: LIVE_MAX_SESSIONS, ..SessionKnnParams::default() })
    }

    fn ensure_built(&self, store: &dyn Storage) -> Result<()> {
        if self.state.read().is_some() {
            return Ok(());
        }
        let mut guard = self.state.write();
        if guard.is_some() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let mut state = State::new(&self.params);
        store.scan_interactions(&mut |user, item, interaction| {
            if let Some(item) = item {
                state.observe(user, item, interaction.event_type, interaction.timestamp);
            }
        })?;
        tracing::info!(
            sessions = state.knn.len(),
            baskets = state.basket_count,
            seconds = started.elapsed().as_secs_f64(),
            "built the live session index"
        );
        *guard = Some(state);
        Ok(())
    }

    /// Whether the index is built (and so follows ingested events).
    pub fn is_built(&self) -> bool {
        self.state.read().is_some()
    }

    /// Forget everything: the next use rebuilds the index from the store (after a user's
    /// data is erased, so that none of their sessions or baskets stays).
    pub fn reset(&self) {
        *self.state.write() = None;
    }

    /// Follow a stored batch of events (nothing to do before the index is built: building
    /// reads them from the store).
    pub fn observe(&self, events: &[Event]) {
        let mut guard = self.state.write();
        let Some(state) = guard.as_mut() else { return };
        for event in events {
            if let Some(item) = &event.item {
                state.observe(event.user.as_str(), item.as_str(), event.event_type, event.timestamp);
            }
        }
    }

    /// The items most likely next in `user`'s latest session (`history.session`, newest
    /// first), best first, with their votes; the session's own record in the index takes
    /// no part. `accept` filters candidates before they are sorted.
    pub fn next_items(
        &self,
        store: &dyn Storage,
        user: &UserId,
        session: &[&str],
        now_ms: i64,
        accept: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Vec<(String, f32)>> {
        self.ensure_built(store)?;
        let guard = self.state.read();
        let Some(state) = guard.as_ref() else { return Ok(Vec::new()) };
        let prefix: Vec<u32> = session.iter().rev().filter_map(|id| state.numbers.get(*id).copied()).collect();
        let own = state.sessions.get(&user_key(user.as_str())).map(|run| run.number);
        let votes = state.knn.scores(&prefix, now_ms, own);
        let mut ranked: Vec<(String, f32)> = votes
            .into_iter()
            .filter(|(_, v)| *v > 0.0)
            .map(|(i, v)| (state.ids[i as usize].to_string(), v))
            .filter(|(id, _)| accept(id))
            .collect();
        ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(ranked)
    }

    /// Items bought together with `item` in at least `min_support` baskets, by lift (then
    /// support, then id); never the item itself.
    pub fn bought_together(&self, store: &dyn Storage, item: &str, min_support: u32) -> Result<Vec<BoughtTogether>> {
        self.ensure_built(store)?;
        let guard = self.state.read();
        let Some(state) = guard.as_ref() else { return Ok(Vec::new()) };
        let Some(&i) = state.numbers.get(item) else { return Ok(Vec::new()) };
        let Some(partners) = state.together.get(&i) else { return Ok(Vec::new()) };
        let baskets = state.basket_count as f32;
        let count = |j: u32| state.item_baskets.get(&j).copied().unwrap_or(1).max(1) as f32;
        let mut out: Vec<BoughtTogether> = partners
            .iter()
            .filter(|(j, support)| **j != i && **support >= min_support.max(1))
            .map(|(&j, &support)| BoughtTogether {
                item: state.ids[j as usize].to_string(),
                lift: support as f32 * baskets / (count(i) * count(j)),
                support,
            })
            .collect();
        out.sort_by(|a, b| b.lift.total_cmp(&a.lift).then(b.support.cmp(&a.support)).then_with(|| a.item.cmp(&b.item)));
        Ok(out)
    }
}

/// Which page a recommendation request asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecommendSurface {
    /// "For you": every recall source, the learned ranker, the rules.
    #[default]
    ForYou,
    /// The next items of the shopper's latest session: the session source first, then
    /// popular items; the hand blend orders it (the ranker learned "for you" pages).
    Session,
}

impl RecommendSurface {
    pub fn as_str(self) -> &'static str {
        match self {
            RecommendSurface::ForYou => "for_you",
            RecommendSurface::Session => "session",
        }
    }

    /// `for_you` or `session`.
    pub fn parse(text: &str, field: &str) -> Result<Self, crate::ValidationError> {
        match text {
            "for_you" => Ok(Self::ForYou),
            "session" => Ok(Self::Session),
            other => Err(crate::ValidationError::new(
                "invalid_surface",
                field,
                format!("expected for_you or session, found {other:?}"),
            )),
        }
    }
}

/// The `session` recall source: the live session-kNN over the user's latest session.
pub struct SessionKnnSource<'a> {
    pub live: &'a LiveSessions,
    pub user: &'a UserId,
    pub now_ms: i64,
}

impl RecallSource for SessionKnnSource<'_> {
    fn kind(&self) -> SourceKind {
        SourceKind::Session
    }

    fn recall(&self, recall: &Recall<'_>) -> Result<Vec<(u32, f32)>> {
        let set = recall.set;
        let session: Vec<&str> = recall.history.session.iter().map(|&i| set.item_ids[i as usize].as_str()).collect();
        if session.is_empty() {
            return Ok(Vec::new());
        }
        let mut accept = |id: &str| set.item_index.get(id).is_some_and(|&i| !(recall.rejected)(i));
        let ranked = self.live.next_items(recall.store, self.user, &session, self.now_ms, &mut accept)?;
        recall.accepted(ranked.into_iter().filter_map(|(id, vote)| Some((*set.item_index.get(id.as_str())?, vote))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{EventId, ItemId};
    use crate::store::{EmbeddedStore, StoreConfig};

    fn event(id: &str, kind: EventType, user: &str, item: &str, time_ms: i64) -> Event {
        Event::new(
            EventId::parse(id, "id").unwrap(),
            kind,
            UserId::parse(user, "user").unwrap(),
            Some(ItemId::parse(item, "item").unwrap()),
            time_ms,
        )
    }

    #[test]
    fn lift_and_support_of_baskets_and_never_the_item_itself() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        let day = 24 * 3600 * 1000;
        // Baskets: {a, b} three times, {a, c} once, {d} alone twice; u4 buys a twice in one
        // basket (counted once) and then b the next week (another basket).
        let mut events = Vec::new();
        for (k, user) in ["u1", "u2", "u3"].iter().enumerate() {
            events.push(event(&format!("{user}a"), EventType::Purchase, user, "a", k as i64 * 1000));
            events.push(event(&format!("{user}b"), EventType::Purchase, user, "b", k as i64 * 1000 + 60_000));
        }
        events.push(event("u5a", EventType::Purchase, "u5", "a", 0));
        events.push(event("u5c", EventType::Purchase, "u5", "c", 1));
        events.push(event("u6d", EventType::Purchase, "u6", "d", 0));
        events.push(event("u7d", EventType::Purchase, "u7", "d", 0));
        events.push(event("u4a", EventType::Purchase, "u4", "a", 0));
        events.push(event("u4a2", EventType::Purchase, "u4", "a", 10));
        events.push(event("u4b", EventType::Purchase, "u4", "b", 8 * day));
        // Views are not purchases.
        events.push(event("u8a", EventType::View, "u8", "a", 0));
        events.push(event("u8c", EventType::View, "u8", "c", 1));
        store.append_events(events).unwrap();
        let live = LiveSessions::with_defaults();
        let together = live.bought_together(&store, "a", 1).unwrap();
        let ids: Vec<&str> = together.iter().map(|t| t.item.as_str()).collect();
        assert_eq!(ids, vec!["c", "b"], "c's one basket is all of c's baskets: higher lift");
        // 8 baskets: a in 5, b in 4, c in 1.
        assert_eq!(together[1].support, 3);
        assert!((together[1].lift - 3.0 * 8.0 / (5.0 * 4.0)).abs() < 1e-5, "{together:?}");
        assert!((together[0].lift - 8.0 / 5.0).abs() < 1e-5, "{together:?}");
        let supported = live.bought_together(&store, "a", 2).unwrap();
        assert_eq!(supported.iter().map(|t| t.item.as_str()).collect::<Vec<_>>(), vec!["b"]);
        assert!(live.bought_together(&store, "d", 1).unwrap().is_empty(), "alone in its baskets");
        assert!(live.bought_together(&store, "nothing", 1).unwrap().is_empty());
        // An ingested basket counts at once.
        live.observe(&[
            event("u9a", EventType::Purchase, "u9", "a", 0),
            event("u9d", EventType::Purchase, "u9", "d", 5),
        ]);
        let together = live.bought_together(&store, "d", 1).unwrap();
        assert_eq!(together.len(), 1);
        assert_eq!((together[0].item.as_str(), together[0].support), ("a", 1));
        // An erased shopper's baskets leave with a reset (the index is rebuilt from the store).
        store.erase_user(&UserId::parse("u1", "user").unwrap()).unwrap();
        live.reset();
        let b = live.bought_together(&store, "a", 1).unwrap().into_iter().find(|t| t.item == "b").unwrap();
        assert_eq!(b.support, 2);
    }

    #[test]
    fn one_ingested_event_changes_the_next_items_and_the_own_session_takes_no_part() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        let mut events = Vec::new();
        // Past sessions: x → y (many), z → w (many).
        for s in 0..10 {
            let t = s * 3_600_000;
            events.push(event(&format!("p{s}x"), EventType::View, &format!("p{s}"), "x", t));
            events.push(event(&format!("p{s}y"), EventType::View, &format!("p{s}"), "y", t + 1000));
            events.push(event(&format!("q{s}z"), EventType::View, &format!("q{s}"), "z", t));
            events.push(event(&format!("q{s}w"), EventType::View, &format!("q{s}"), "w", t + 1000));
        }
        store.append_events(events).unwrap();
        let live = LiveSessions::with_defaults();
        let user = UserId::parse("shopper", "user").unwrap();
        let now = 100 * 3_600_000;
        let next = |session: &[&str]| live.next_items(&store, &user, session, now, &mut |_| true).unwrap();
        let first = next(&["x"]);
        assert_eq!(first.iter().map(|(i, _)| i.as_str()).find(|i| *i != "x"), Some("y"));
        assert!(!first.iter().any(|(i, _)| i == "w"));
        // The shopper views z now: their own session (x, z) is in the index but does not
        // vote for itself; z's neighbours do.
        let view = |id: &str, item: &str, t: i64| event(id, EventType::View, "shopper", item, t);
        live.observe(&[view("s1", "x", now - 2000), view("s2", "z", now - 1000)]);
        let second = next(&["z", "x"]);
        assert!(second.iter().any(|(i, _)| i == "w"), "{second:?}");
        // A new item seen in one new session becomes a next item of x after one event.
        live.observe(&[
            event("n1", EventType::View, "other", "x", now),
            event("n2", EventType::View, "other", "fresh", now + 1),
        ]);
        assert!(next(&["x"]).iter().any(|(i, _)| i == "fresh"));
        // The filter applies.
        let filtered = live.next_items(&store, &user, &["x"], now, &mut |id| id != "y").unwrap();
        assert!(!filtered.iter().any(|(i, _)| i == "y"));
    }
}
