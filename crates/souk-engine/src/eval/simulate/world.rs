//! The simulated shop at work: the shopper model (examination by slot, the click, cart and
//! purchase funnel, how well an item answers a query), the requests with their recalled
//! candidates, and the shoppers' responses to what they are shown.

use std::collections::HashMap;
use std::sync::Arc;

use rand::distributions::{Distribution, WeightedIndex};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::config::{SimulationConfig, Surface};
use crate::gen::Generator;
use crate::ids::{EventId, ItemId, UserId};
use crate::model::{Event, EventType};
use crate::rank::features::{FeatureBuilder, ItemStats, RecallSignals, FEATURE_COUNT};
use crate::rank::online::OnlineClickModel;
use crate::rank::profile::{PriceIndex, ProfileConfig, UserProfile};
use crate::recommend::EventWeights;
use crate::search::{SearchIndex, SearchRequest};
use crate::serving::search_ranking::{search_signals, SURFACE_SEARCH};
use crate::serving::{factor_scores, recommend, ModelSet, RecommendConfig, RecommendRequest, SURFACE_RECOMMENDATIONS};
use crate::store::{EmbeddedStore, Storage};
use crate::{Error, Result};

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The shopper model's funnel for an item of latent utility `u`: probabilities of a click
/// when looked at, a cart after a click, a purchase after a cart.
pub(crate) fn funnel(u: f64, available: bool) -> (f64, f64, f64) {
    let cart = if available { sigmoid(0.7 * u - 3.8) } else { 0.0 };
    (sigmoid(u - 3.0), cart, sigmoid(0.6 * u - 1.0))
}

pub(crate) fn examination(slot: usize) -> f64 {
    1.0 / (1.0 + slot as f64)
}

/// One request's candidates with everything the methods and the judge need.
pub(super) struct Request {
    pub(super) user: String,
    pub(super) items: Vec<String>,
    pub(super) signals: Vec<RecallSignals>,
    pub(super) rows: Vec<f32>,
    pub(super) utilities: Vec<f64>,
    pub(super) available: Vec<bool>,
}

/// A judged query: its text and each relevant item's grade (1–3).
pub(super) struct Query {
    pub(super) text: String,
    pub(super) grades: HashMap<usize, u8>,
}

/// What a shopper's utility gains from how well an item answers their query: a search
/// result of another product type is rarely wanted, whatever the shopper's tastes.
fn query_fit(grade: u8) -> f64 {
    match grade {
        3 => 1.0,
        2 => 0.0,
        1 => -1.5,
        _ => -4.0,
    }
}

pub(super) struct World<'a> {
    pub(super) generator: &'a Generator,
    pub(super) search: Option<(Arc<SearchIndex>, Vec<Query>)>,
    pub(super) store: &'a EmbeddedStore,
    pub(super) set: &'a ModelSet,
    pub(super) recommend_config: &'a RecommendConfig,
    pub(super) weights: &'a EventWeights,
    pub(super) prices: PriceIndex,
    pub(super) item_index: HashMap<String, usize>,
    pub(super) users: Vec<String>,
    pub(super) pick_user: WeightedIndex<f64>,
    pub(super) config: &'a SimulationConfig,
    /// Learns from the logged pages as they happen (default settings: clicks wait 5 min).
    pub(super) online: Option<OnlineClickModel>,
}

impl World<'_> {
    pub(super) fn surface_name(&self) -> &'static str {
        match self.config.surface {
            Surface::Recommendations => SURFACE_RECOMMENDATIONS,
            Surface::Search => SURFACE_SEARCH,
        }
    }
}

impl World<'_> {
    pub(super) fn request(&self, rng: &mut ChaCha8Rng, stats: &ItemStats, now: i64) -> Result<Option<Request>> {
        let user_index = self.pick_user.sample(rng);
        let user = self.users[user_index].clone();
        let user_id = UserId::parse(user.as_str(), "user")?;
        // Recall: the candidates with what each stage said, and the query's grades.
        let (ids, signals, grades): (Vec<String>, Vec<RecallSignals>, Option<&HashMap<usize, u8>>) = match &self.search
        {
            None => {
                let page = recommend(
                    self.set,
                    self.store,
                    self.recommend_config,
                    &RecommendRequest::new(user_id.clone(), self.config.candidates),
                )?;
                let signals = page
                    .items
                    .iter()
                    .enumerate()
                    .map(|(c, r)| {
                        RecallSignals::from_reasons(
                            c as u32 + 1,
                            r.score,
                            r.reasons.iter().map(|x| (x.source, x.rank, x.score)),
                        )
                    })
                    .collect();
                (page.items.into_iter().map(|r| r.id).collect(), signals, None)
            }
            Some((index, queries)) => {
                let query = &queries[rng.gen_range(0..queries.len())];
                let history = self.store.user_interactions(&user_id, 200)?;
                let pairs: Vec<(String, f32)> = history
                    .iter()
                    .map(|h| {
                        let age_days = ((now - h.timestamp).max(0) as f64 / 86_400_000.0) as f32;
                        let w =
                            self.weights.weight_of(h.event_type, h.value, h.dwell_ms) * 0.5f32.powf(age_days / 30.0);
                        (h.item.clone(), w)
                    })
                    .collect();
                let affinity = index.affinity(pairs.iter().map(|(i, w)| (i.as_str(), *w)));
                let response = index.search(&SearchRequest {
                    limit: self.config.candidates,
                    explain: true,
                    affinity: (!affinity.is_empty()).then_some(affinity),
                    ..SearchRequest::keyword(query.text.as_str())
                })?;
                let signals = response
                    .hits
                    .iter()
                    .enumerate()
                    .map(|(c, hit)| {
                        let explain = hit.explain.clone().unwrap_or_default();
                        // The serving stage's signals (factor scores are added below).
                        search_signals(c, &explain, None)
                    })
                    .collect();
                (response.hits.into_iter().map(|h| h.id).collect(), signals, Some(&query.grades))
            }
        };
        if ids.len() < self.config.shown {
            return Ok(None);
        }
        let mut signals = signals;
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let factor_scores =
            factor_scores(self.set, self.store, &user_id, self.recommend_config.history_limit, &id_refs)?;
        for (signal, score) in signals.iter_mut().zip(factor_scores) {
            signal.factor_score = score;
        }
        let profile =
            UserProfile::load(self.store, &user_id, &self.prices, self.weights, &ProfileConfig::default(), now, false)?;
        let metas = self.store.items_meta(&id_refs)?;
        let builder = FeatureBuilder {
            prices: &self.prices,
            stats,
            online: self.online.as_ref().map(|o| (o, self.surface_name())),
        };
        let mut rows = vec![0f32; ids.len() * FEATURE_COUNT];
        let mut utilities = Vec::with_capacity(ids.len());
        let mut available = Vec::with_capacity(ids.len());
        for (c, (id, meta)) in ids.iter().zip(&metas).enumerate() {
            builder.row(&profile, id, meta.as_ref(), &signals[c], now, &mut rows[c * FEATURE_COUNT..][..FEATURE_COUNT]);
            let item = self
                .item_index
                .get(id)
                .copied()
                .ok_or_else(|| Error::Internal(format!("recalled item {id} is not in the generated catalog")))?;
            let fit = grades.map_or(0.0, |g| query_fit(g.get(&item).copied().unwrap_or(0)));
            utilities.push(self.generator.true_utility(user_index, item).unwrap_or(f64::NEG_INFINITY) + fit);
            available.push(meta.as_ref().is_none_or(|m| m.available));
        }
        Ok(Some(Request { user, items: ids, signals, rows, utilities, available }))
    }
}

fn event(id: String, event_type: EventType, user: &str, item: Option<&str>, timestamp: i64) -> Result<Event> {
    Ok(Event::new(
        EventId::parse(id, "id")?,
        event_type,
        UserId::parse(user, "user")?,
        item.map(|i| ItemId::parse(i, "item")).transpose()?,
        timestamp,
    ))
}

/// Show `order` (candidate indices) to the request's shopper and return the events.
pub(super) fn respond(
    rng: &mut ChaCha8Rng,
    number: usize,
    request: &Request,
    order: &[usize],
    arm: &str,
    now: i64,
) -> Result<Vec<Event>> {
    let request_id = format!("sim-{number}");
    let mut shown = event(format!("{request_id}-impression"), EventType::Impression, &request.user, None, now)?;
    shown.request_id = Some(request_id.clone());
    shown.arm = Some(arm.to_string());
    shown.items = order.iter().map(|&c| ItemId::parse(request.items[c].as_str(), "item")).collect::<Result<_, _>>()?;
    let mut events = vec![shown];
    for (slot, &c) in order.iter().enumerate() {
        if !rng.gen_bool(examination(slot)) {
            continue;
        }
        let (click, cart, buy) = funnel(request.utilities[c], request.available[c]);
        if !rng.gen_bool(click) {
            continue;
        }
        let item = Some(request.items[c].as_str());
        let mut clicked =
            event(format!("{request_id}-click-{slot}"), EventType::Click, &request.user, item, now + 5_000)?;
        clicked.request_id = Some(request_id.clone());
        clicked.position = Some(slot as u32);
        events.push(clicked);
        events.push(event(format!("{request_id}-view-{slot}"), EventType::View, &request.user, item, now + 6_000)?);
        if rng.gen_bool(cart) {
            events.push(event(
                format!("{request_id}-cart-{slot}"),
                EventType::AddToCart,
                &request.user,
                item,
                now + 30_000,
            )?);
            if rng.gen_bool(buy) {
                events.push(event(
                    format!("{request_id}-buy-{slot}"),
                    EventType::Purchase,
                    &request.user,
                    item,
                    now + 120_000,
                )?);
            }
        }
    }
    Ok(events)
}
