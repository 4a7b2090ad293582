//! The event stream: shopping sessions that run the funnel (search → impression → click →
//! view → cart → purchase → rating/review), merged into one stream in timestamp order.
//!
//! Sessions start in time order; each session's events (and its delayed ratings) go into a
//! min-heap keyed by (timestamp, sequence), and an event leaves the heap once no session yet
//! to start can produce an earlier one. Memory is bounded by the events of overlapping
//! sessions plus ratings and reviews waiting for their day (about 15k entries, ~1 MB, at
//! 10M events over 90 days), never by the total. Cost per event: a heap push/pop and a few RNG draws; strings are only built when
//! an event is rendered.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::catalog::Catalog;
use super::sample::{gumbel, log_normal, sigmoid, standard_normal, weighted_index, AliasTable};
use super::tastes::{PriceBand, UserSpec, NUM_CATEGORIES};
use super::text::{render_query, render_review, QueryConstraint, QuerySpec};
use super::{item_id, push_decimal, user_id, EPOCH_MS, EVENT_WINDOW_MS};
use crate::ids::EventId;
use crate::model::{Event, EventType};

const NO_ITEM: u32 = u32::MAX;
const NO_REQUEST: u64 = u64::MAX;
const NO_POSITION: u32 = u32::MAX;
const SECOND_MS: i64 = 1_000;
const DAY_MS: i64 = 86_400_000;
/// Probability that a session serves one of the shopper's tastes rather than exploring a
/// uniformly chosen category.
const TASTE_SESSION_SHARE: f64 = 0.85;
const SEARCH_SHARE: f64 = 0.5;
const SEARCH_RESULTS: usize = 10;
const BROWSE_RESULTS: usize = 8;
/// Utility bonus for an item that matches what the shopper typed (colour, brand…).
const QUERY_MATCH_BONUS: f64 = 1.0;

/// Event-type–specific data of a pending event.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    None,
    Shown(Vec<u32>),
    Search { shown: Vec<u32>, query: QuerySpec },
    Dwell(u64),
    Purchase { quantity: u32, price_cents: u32 },
    Rating(u8),
    Review { rating: u8, chinese: bool, template: u8 },
}

/// An event before rendering: indices instead of strings.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEvent {
    pub timestamp: i64,
    /// Generation order; breaks timestamp ties deterministically.
    pub sequence: u64,
    pub event_type: EventType,
    pub user: u32,
    pub item: u32,
    pub request: u64,
    pub position: u32,
    pub payload: Payload,
}

/// Heap entry: the smallest (timestamp, sequence) is the greatest, so `BinaryHeap` (a
/// max-heap) pops events in time order.
struct Queued(PendingEvent);

impl Queued {
    fn key(&self) -> (i64, u64) {
        (self.0.timestamp, self.0.sequence)
    }
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        other.key().cmp(&self.key())
    }
}

/// Produces exactly `target` events in non-decreasing timestamp order.
pub struct EventStream<'a> {
    catalog: &'a Catalog,
    users: &'a [UserSpec],
    by_activity: &'a AliasTable,
    rng: ChaCha8Rng,
    heap: BinaryHeap<Queued>,
    target: u64,
    generated: u64,
    emitted: u64,
    sequence: u64,
    next_request: u64,
    next_session_start: Option<i64>,
    last_session_start: i64,
    pub sessions: u64,
}

impl<'a> EventStream<'a> {
    pub fn new(
        catalog: &'a Catalog,
        users: &'a [UserSpec],
        by_activity: &'a AliasTable,
        rng: ChaCha8Rng,
        target: u64,
    ) -> Self {
        Self {
            catalog,
            users,
            by_activity,
            rng,
            heap: BinaryHeap::new(),
            target,
            generated: 0,
            emitted: 0,
            sequence: 0,
            next_request: 0,
            next_session_start: None,
            last_session_start: EPOCH_MS,
            sessions: 0,
        }
    }

    /// The next event in time order, or `None` once `target` events were returned.
    pub fn next_event(&mut self) -> Option<PendingEvent> {
        while self.emitted < self.target {
            if self.generated < self.target {
                let start = self.session_start();
                if self.heap.peek().is_some_and(|top| top.0.timestamp <= start) {
                    return self.pop();
                }
                self.next_session_start = None;
                self.generate_session(start);
            } else {
                // Every generated event is in the heap until popped, and generated ≥ target
                // > emitted, so the heap is not empty here.
                return self.pop();
            }
        }
        None
    }

    fn pop(&mut self) -> Option<PendingEvent> {
        let event = self.heap.pop()?.0;
        self.emitted += 1;
        Some(event)
    }

    /// Start time of the next session. Time advances in proportion to the events generated
    /// so far, so the requested number of events spans the whole window whatever the mean
    /// session length; a little jitter keeps session starts irregular.
    fn session_start(&mut self) -> i64 {
        if let Some(start) = self.next_session_start {
            return start;
        }
        let progress = i128::from(EVENT_WINDOW_MS) * i128::from(self.generated) / i128::from(self.target.max(1));
        let jitter = self.rng.gen_range(0..60 * SECOND_MS);
        let start = (EPOCH_MS + progress as i64 + jitter).max(self.last_session_start);
        self.last_session_start = start;
        self.next_session_start = Some(start);
        start
    }

    fn push(&mut self, timestamp: i64, event_type: EventType, user: u32, item: u32, payload: Payload) {
        self.push_full(timestamp, event_type, user, item, NO_REQUEST, NO_POSITION, payload);
    }

    #[allow(clippy::too_many_arguments)]
    fn push_full(
        &mut self,
        timestamp: i64,
        event_type: EventType,
        user: u32,
        item: u32,
        request: u64,
        position: u32,
        payload: Payload,
    ) {
        let event =
            PendingEvent { timestamp, sequence: self.sequence, event_type, user, item, request, position, payload };
        self.sequence += 1;
        self.generated += 1;
        self.heap.push(Queued(event));
    }

    /// Draw up to `want` distinct candidates from a popularity-weighted pool.
    fn candidates(&mut self, pool: &super::catalog::ItemPool, want: usize) -> Vec<u32> {
        let want = want.min(pool.len());
        let mut out = Vec::with_capacity(want);
        for _ in 0..want * 3 {
            if out.len() == want {
                break;
            }
            let item = pool.sample(&mut self.rng);
            if !out.contains(&item) {
                out.push(item);
            }
        }
        out
    }

    fn generate_session(&mut self, start: i64) {
        self.sessions += 1;
        let catalog = self.catalog;
        let user_index = self.by_activity.sample(&mut self.rng) as u32;
        let users = self.users;
        let user = &users[user_index as usize];
        let chinese = self.rng.gen_bool(user.chinese_share());
        let category = if self.rng.gen_bool(TASTE_SESSION_SHARE) {
            weighted_index(&mut self.rng, user.category_weights.iter().map(|&w| f64::from(w)))
        } else {
            self.rng.gen_range(0..NUM_CATEGORIES)
        };
        let category_pool = catalog.by_category[category].as_ref().unwrap_or(&catalog.all);
        let seed_item = category_pool.sample(&mut self.rng);
        let product_type = catalog.items[seed_item as usize].product_type;
        let request = self.next_request;
        self.next_request += 1;

        let mut t = start;
        let searching = self.rng.gen_bool(SEARCH_SHARE);
        let (shown, constraint) = match catalog.by_product_type[usize::from(product_type)].as_ref() {
            Some(pool) if searching => {
                let constraint = QueryConstraint::from_item(&catalog.items[seed_item as usize], self.rng.gen());
                let mut shown = self.candidates(pool, SEARCH_RESULTS);
                // The shop's ranking: matches first, then popularity with some noise; it does
                // not know the shopper's tastes.
                let mut keyed: Vec<(bool, f64, u32)> = shown
                    .iter()
                    .map(|&i| {
                        let spec = &catalog.items[i as usize];
                        let noise = 0.7 * standard_normal(&mut self.rng);
                        (!constraint.matches(spec), (f64::from(spec.popularity_rank) + 1.0).ln() + noise, i)
                    })
                    .collect();
                keyed.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
                shown = keyed.into_iter().map(|k| k.2).collect();
                let variant = match (constraint, user.price_band) {
                    (QueryConstraint::None, PriceBand::Low) if self.rng.gen_bool(0.4) => 2,
                    (QueryConstraint::None, _) if self.rng.gen_bool(0.2) => 1,
                    _ => 0,
                };
                let query = QuerySpec { product_type, constraint, chinese, variant };
                self.push_full(
                    t,
                    EventType::Search,
                    user_index,
                    NO_ITEM,
                    request,
                    NO_POSITION,
                    Payload::Search { shown: shown.clone(), query },
                );
                t += self.rng.gen_range(200..800);
                (shown, Some(constraint))
            }
            _ => (self.candidates(category_pool, BROWSE_RESULTS), None),
        };
        self.push_full(
            t,
            EventType::Impression,
            user_index,
            NO_ITEM,
            request,
            NO_POSITION,
            Payload::Shown(shown.clone()),
        );

        let utilities: Vec<f64> = shown
            .iter()
            .map(|&i| {
                let bonus = match constraint {
                    Some(c) if c != QueryConstraint::None && c.matches(&catalog.items[i as usize]) => QUERY_MATCH_BONUS,
                    _ => 0.0,
                };
                user.utility(catalog, i) + bonus
            })
            .collect();
        let best = utilities.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !self.rng.gen_bool(sigmoid(best - 1.5)) {
            return; // Bounce: nothing appealing was shown.
        }
        // Which results get clicked: Gumbel-top-k of utility with a position bias.
        let clicks = match self.rng.gen::<f64>() {
            x if x < 0.55 => 1,
            x if x < 0.80 => 2,
            x if x < 0.93 => 3,
            _ => 4,
        }
        .min(shown.len());
        let mut scored: Vec<(f64, usize)> = utilities
            .iter()
            .enumerate()
            .map(|(position, u)| (u + gumbel(&mut self.rng) - 0.3 * (1.0 + position as f64).ln(), position))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));

        let mut cart: Vec<(u32, f64)> = Vec::new();
        for &(_, position) in &scored[..clicks] {
            let item = shown[position];
            let utility = utilities[position];
            t += self.rng.gen_range(2 * SECOND_MS..20 * SECOND_MS);
            self.push_full(t, EventType::Click, user_index, item, request, position as u32, Payload::None);
            t += self.rng.gen_range(300..1_500);
            // Dwell grows with how much the shopper likes what they see.
            let dwell =
                log_normal(&mut self.rng, (15_000f64).ln() + 0.3 * utility, 0.7).clamp(1_000.0, 600_000.0) as u64;
            self.push_full(t, EventType::View, user_index, item, request, NO_POSITION, Payload::Dwell(dwell));
            if self.rng.gen_bool(sigmoid(utility - 5.5)) {
                self.push(t + dwell as i64 / 2, EventType::Favorite, user_index, item, Payload::None);
            }
            t += dwell as i64;
            if self.rng.gen_bool(sigmoid(-1.5 * utility - 2.0)) {
                self.push(t, EventType::Dislike, user_index, item, Payload::None);
                continue;
            }
            if catalog.items[item as usize].available && self.rng.gen_bool(sigmoid(0.7 * utility - 3.8)) {
                t += self.rng.gen_range(SECOND_MS..5 * SECOND_MS);
                self.push(t, EventType::AddToCart, user_index, item, Payload::None);
                cart.push((item, utility));
            }
        }
        if cart.is_empty() {
            return;
        }

        // Checkout: each cart item is bought, removed or abandoned.
        t += self.rng.gen_range(20 * SECOND_MS..180 * SECOND_MS);
        let mut bought: Vec<(u32, f64)> = Vec::new();
        for (item, utility) in cart {
            if self.rng.gen_bool(sigmoid(0.6 * utility - 1.0)) {
                bought.push((item, utility));
            } else if self.rng.gen_bool(0.5) {
                self.push(t, EventType::RemoveFromCart, user_index, item, Payload::None);
                t += self.rng.gen_range(SECOND_MS..10 * SECOND_MS);
            }
        }
        for (item, utility) in bought {
            let quantity = match self.rng.gen::<f64>() {
                x if x < 0.80 => 1,
                x if x < 0.93 => 2,
                x if x < 0.98 => 3,
                _ => self.rng.gen_range(4..=6),
            };
            let list_price = catalog.items[item as usize].price_cents;
            let price_cents = if self.rng.gen_bool(0.08) {
                (f64::from(list_price) * self.rng.gen_range(0.75..0.9)).round() as u32
            } else {
                list_price
            };
            self.push(t, EventType::Purchase, user_index, item, Payload::Purchase { quantity, price_cents });
            t += self.rng.gen_range(100..2_000);
            if self.rng.gen_bool(0.35) {
                // Ratings come after delivery, days later; they correlate with the latent
                // utility, which is what a model of satisfaction should recover.
                let rating = (2.2 + 0.7 * utility + standard_normal(&mut self.rng)).round().clamp(1.0, 5.0) as u8;
                let rated_at = t + self.rng.gen_range(DAY_MS..14 * DAY_MS);
                self.push(rated_at, EventType::Rating, user_index, item, Payload::Rating(rating));
                if self.rng.gen_bool(0.5) {
                    let review_chinese = self.rng.gen_bool(user.chinese_share());
                    let template = self.rng.gen_range(0..12);
                    let written_at = rated_at + self.rng.gen_range(5 * SECOND_MS..120 * SECOND_MS);
                    let payload = Payload::Review { rating, chinese: review_chinese, template };
                    self.push(written_at, EventType::Review, user_index, item, payload);
                }
            }
        }
    }
}

/// Turns pending events into [`Event`]s: ids, query and review text are built here.
pub struct Renderer<'a> {
    catalog: &'a Catalog,
    seed: u64,
}

impl<'a> Renderer<'a> {
    pub fn new(catalog: &'a Catalog, seed: u64) -> Self {
        Self { catalog, seed }
    }

    /// Turn the `number`-th event of the stream into an [`Event`] with id
    /// `gen-{seed}-{number}`.
    pub fn render(&self, event: PendingEvent, number: u64) -> crate::Result<Event> {
        let mut id = String::with_capacity(32);
        id.push_str("gen-");
        push_decimal(&mut id, self.seed, 0);
        id.push('-');
        push_decimal(&mut id, number, 0);
        let item = if event.item == NO_ITEM { None } else { Some(item_id(event.item)?) };
        let mut out =
            Event::new(EventId::parse(id, "id")?, event.event_type, user_id(event.user)?, item, event.timestamp);
        if event.request != NO_REQUEST {
            let mut request = String::with_capacity(32);
            request.push_str("gen-");
            push_decimal(&mut request, self.seed, 0);
            request.push_str("-r");
            push_decimal(&mut request, event.request, 0);
            out.request_id = Some(request);
        }
        if event.position != NO_POSITION {
            out.position = Some(event.position);
        }
        let shown_ids = |shown: Vec<u32>| shown.into_iter().map(item_id).collect::<Result<Vec<_>, _>>();
        match event.payload {
            Payload::None => {}
            Payload::Shown(shown) => out.items = shown_ids(shown)?,
            Payload::Search { shown, query } => {
                out.items = shown_ids(shown)?;
                out.query = Some(render_query(self.catalog, &query));
            }
            Payload::Dwell(dwell) => out.dwell_ms = Some(dwell),
            Payload::Purchase { quantity, price_cents } => {
                out.quantity = Some(quantity);
                out.price = Some(f64::from(price_cents) / 100.0);
            }
            Payload::Rating(rating) => out.value = Some(f64::from(rating)),
            Payload::Review { rating, chinese, template } => {
                let product = self.catalog.product_type(event.item).product;
                out.value = Some(f64::from(rating));
                out.text = Some(render_review(product, rating, chinese, template));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{GenConfig, Generator};
    use super::*;
    use crate::model::Record;

    /// Per-(user, item) funnel counts split by how much the user's latent taste covers the
    /// item's category.
    #[derive(Default, Debug)]
    struct Funnel {
        views: u64,
        purchases: u64,
        ratings: Vec<f64>,
        dwell: Vec<f64>,
    }

    #[test]
    fn shoppers_buy_and_like_what_matches_their_tastes() {
        let config = GenConfig { items: 600, users: 400, events: 40_000, seed: 9 };
        let generator = Generator::new(config).unwrap();
        let mut records = Vec::new();
        generator.run(&mut records, &mut |_| {}).unwrap();
        let index = |id: &str| id[1..].parse::<usize>().unwrap();
        let (mut matching, mut other) = (Funnel::default(), Funnel::default());
        let mut dominant_purchases = 0u64;
        let mut purchases = 0u64;
        for record in &records {
            let Record::Event(event) = record else {
                continue;
            };
            let Some(item) = &event.item else { continue };
            let user = &generator.users[index(event.user.as_str())];
            let category = generator.catalog.category_of(index(item.as_str()) as u32);
            let weight = user.category_weights[category];
            // Dominant-ish categories vs the small floor every shopper has.
            let funnel = if weight >= 0.25 {
                &mut matching
            } else if weight < 0.05 {
                &mut other
            } else {
                continue;
            };
            match event.event_type {
                EventType::View => {
                    funnel.views += 1;
                    funnel.dwell.push(event.dwell_ms.unwrap_or(0) as f64);
                }
                EventType::Purchase => {
                    funnel.purchases += 1;
                    purchases += 1;
                    dominant_purchases += u64::from(usize::from(user.dominant_category) == category);
                }
                EventType::Rating => funnel.ratings.push(event.value.unwrap_or(0.0)),
                _ => {}
            }
        }
        let rate = |f: &Funnel| f.purchases as f64 / f.views.max(1) as f64;
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        assert!(matching.views > 2_000 && other.views > 200, "{matching:?} {other:?}");
        assert!(rate(&matching) > 3.0 * rate(&other), "conversion {} vs {}", rate(&matching), rate(&other));
        assert!(dominant_purchases as f64 > 0.5 * purchases as f64, "{dominant_purchases} of {purchases}");
        assert!(mean(&matching.dwell) > 1.2 * mean(&other.dwell));
        // Ratings follow the latent utility of the rated item (which includes taste).
        let rated: Vec<(f64, f64)> = records
            .iter()
            .filter_map(|r| match r {
                Record::Event(e) if e.event_type == EventType::Rating => {
                    let item = index(e.item.as_ref()?.as_str());
                    let utility = generator.true_utility(index(e.user.as_str()), item)?;
                    Some((utility, e.value?))
                }
                _ => None,
            })
            .collect();
        assert!(rated.len() > 200, "{} ratings", rated.len());
        let (mu_u, mu_r) = (
            mean(&rated.iter().map(|p| p.0).collect::<Vec<_>>()),
            mean(&rated.iter().map(|p| p.1).collect::<Vec<_>>()),
        );
        let covariance: f64 = rated.iter().map(|(u, r)| (u - mu_u) * (r - mu_r)).sum();
        let spread_u: f64 = rated.iter().map(|(u, _)| (u - mu_u).powi(2)).sum::<f64>().sqrt();
        let spread_r: f64 = rated.iter().map(|(_, r)| (r - mu_r).powi(2)).sum::<f64>().sqrt();
        let correlation = covariance / (spread_u * spread_r);
        assert!(correlation > 0.25, "rating/utility correlation {correlation}");
        assert!((3.5..4.6).contains(&mu_r), "mean rating {mu_r}");
    }

    #[test]
    fn the_heap_pops_events_in_time_then_generation_order() {
        let event = |timestamp, sequence| {
            Queued(PendingEvent {
                timestamp,
                sequence,
                event_type: EventType::View,
                user: 0,
                item: 0,
                request: NO_REQUEST,
                position: NO_POSITION,
                payload: Payload::None,
            })
        };
        let mut heap: BinaryHeap<Queued> = [event(5, 0), event(3, 2), event(3, 1), event(9, 3)].into_iter().collect();
        let mut order = Vec::new();
        while let Some(Queued(e)) = heap.pop() {
            order.push((e.timestamp, e.sequence));
        }
        assert_eq!(order, [(3, 1), (3, 2), (5, 0), (9, 3)]);
    }
}
