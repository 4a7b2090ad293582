//! The simulated-traffic protocol: does the learned ranker beat the recall sources and the
//! hand blend on what shoppers would actually do?
//!
//! 1. **History.** A `souk gen` shop (catalog, shoppers with latent tastes, a season of
//!    events) goes into a store; the recommendation models train on it.
//! 2. **Logged traffic.** Shoppers (drawn by activity) ask for recommendations, or search
//!    (surface `search`) with a query drawn from the generator's judged queries (half in
//!    Chinese). Recall proposes `candidates` items: for recommendations the collaborative
//!    model, item-kNN of recent items and popularity fused by reciprocal rank; for search
//!    the keyword matches (BM25) re-ranked by the shopper's category and brand affinities
//!    (the personal touch). That fused order is the hand blend. The logging policy shows
//!    `shown` of them: usually the blend's top, and for `explore_share` of requests a
//!    uniformly shuffled draw from the blend's top `explore_depth` (all candidates when
//!    fewer were recalled; the randomised bucket
//!    that position bias is estimated from). The feature rows of what was shown are logged
//!    with the impression.
//! 3. **Simulated shoppers** look at slot `p` with probability `1 / (1 + p)` (hidden from the
//!    learner), click what they look at with probability `σ(u − 3)` where `u` is the
//!    generator's latent utility of the item for them (for search plus how well the item
//!    answers the query: +1 for the product type with the asked-for colour, brand or
//!    material, 0 for the product type, −1.5 for a neighbouring product with it, −4 for
//!    anything else), add a clicked item to the cart with
//!    `σ(0.7u − 3.8)` (if available) and buy a carted one with `σ(0.6u − 1)` (the generator's
//!    own funnel). Their events are stored, so histories move as traffic flows.
//! 4. **Training set** from the logs ([`crate::rank::join`]): impressions joined to clicks, carts
//!    and purchases; graded labels; clicked rows weighted by the inverse of the examination
//!    propensity estimated from the randomised bucket. A LambdaMART model trains on it,
//!    early-stopped on the last tenth of the logged requests.
//! 5. **Later window.** New requests; every method orders the same candidates; each is
//!    judged by purchase-weighted NDCG@10 over all candidates, the gain of an item being its
//!    *expected* value to the shop under the shopper model — the configured event weights
//!    times the click, cart and purchase probabilities — so the judgement is exact, not a
//!    sample of simulated clicks.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rand::distributions::{Distribution, WeightedIndex};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::gen::{GenConfig, Generator};
use crate::ids::{EventId, ItemId, UserId};
use crate::model::{Event, EventType, Record, RecordSink};
use crate::rank::features::{FeatureBuilder, ItemStats, RecallSignals, FEATURES, FEATURE_COUNT};
use crate::rank::gbdt::{self, Dataset, GbdtModel, GbdtParams};
use crate::rank::join::{examination_propensities, join_impressions};
use crate::rank::metrics::ndcg_of_order;
use crate::rank::online::{OnlineClickModel, OnlineConfig};
use crate::rank::profile::{PriceIndex, ProfileConfig, UserProfile};
use crate::recommend::EventWeights;
use crate::search::{SearchConfig, SearchIndex, SearchRequest};
use crate::serving::search_ranking::{search_signals, SURFACE_SEARCH};
use crate::serving::{factor_scores, recommend, ModelSet, RecommendConfig, RecommendRequest, SURFACE_RECOMMENDATIONS};
use crate::store::{EmbeddedStore, Storage, StoreConfig, StoreSink};
use crate::{Error, Result};

/// The protocol's name for `souk eval --protocol`.
pub const PROTOCOL: &str = "simulated-ranking";
/// Arms of the logging policy.
pub const ARM_BLEND: &str = "blend";
pub const ARM_EXPLORE: &str = "explore";
/// Clicks, carts and purchases are credited to an impression within this window.
pub const ATTRIBUTION_WINDOW_MS: i64 = 86_400_000;
const REQUEST_GAP_MS: i64 = 20_000;

/// Which list the simulated shoppers are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Surface {
    /// "For you" recommendations: recall by the collaborative model, item-kNN and
    /// popularity, blended by reciprocal rank.
    Recommendations,
    /// Search results: keyword recall (BM25), blended with the shopper's category and
    /// brand affinities (the personal touch).
    Search,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulationConfig {
    pub surface: Surface,
    /// Distinct judged queries shoppers draw from (search; half English, half Chinese).
    pub queries: usize,
    pub items: usize,
    pub users: usize,
    pub history_events: usize,
    /// Logged requests the ranker learns from.
    pub train_requests: usize,
    /// Later requests every method is judged on.
    pub test_requests: usize,
    pub candidates: usize,
    pub shown: usize,
    pub explore_share: f64,
    pub explore_depth: usize,
    pub seed: u64,
    /// Run the online click model over the logged traffic (the `online_ctr` feature).
    pub online: bool,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        Self {
            surface: Surface::Recommendations,
            queries: 400,
            items: 3_000,
            users: 2_000,
            history_events: 150_000,
            train_requests: 20_000,
            test_requests: 3_000,
            candidates: 100,
            shown: 10,
            explore_share: 0.2,
            explore_depth: 30,
            seed: 42,
            online: true,
        }
    }
}

impl SimulationConfig {
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.shown == 0 || self.shown > self.candidates {
            problems.push(("shown".into(), "must be between 1 and candidates".into()));
        }
        if self.explore_depth < self.shown || self.explore_depth > self.candidates {
            problems.push(("explore_depth".into(), "must be between shown and candidates".into()));
        }
        if !(0.0..=1.0).contains(&self.explore_share) {
            problems.push(("explore_share".into(), "must be within 0 and 1".into()));
        }
        if self.surface == Surface::Search && self.queries < 2 {
            problems.push(("queries".into(), "must be at least 2".into()));
        }
        if self.train_requests < 10 || self.test_requests == 0 {
            problems.push(("train_requests".into(), "need at least 10 training and 1 test request".into()));
        }
        problems
    }
}

/// One method's score on the later window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodScore {
    pub method: String,
    pub ndcg_at_10: f64,
    /// Standard error over requests.
    pub se: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulationReport {
    pub config: SimulationConfig,
    pub setup_seconds: f64,
    pub logged_requests: usize,
    pub logged_rows: usize,
    pub clicks: usize,
    pub carts: usize,
    pub purchases: usize,
    /// Examination probability per slot as the shopper model has it, and as estimated from
    /// the randomised bucket.
    pub true_examination: Vec<f64>,
    pub estimated_examination: Vec<f64>,
    pub ranker_trees: usize,
    pub ranker_train_seconds: f64,
    /// Heaviest features by total split gain.
    pub top_features: Vec<(String, f64)>,
    pub test_requests: usize,
    pub methods: Vec<MethodScore>,
    /// The ranker's relative improvement over the best single recall source and over the
    /// hand blend.
    pub lift_over_best_source: f64,
    pub lift_over_blend: f64,
}

/// Writes generated records to the store and counts their events for item features.
struct TeeSink<'a> {
    store: StoreSink<'a>,
    stats: &'a mut ItemStats,
}

impl RecordSink for TeeSink<'_> {
    fn put(&mut self, record: Record) -> Result<()> {
        if let Record::Event(event) = &record {
            self.stats.observe(event);
        }
        self.store.put(record)
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The shopper model's funnel for an item of latent utility `u`: probabilities of a click
/// when looked at, a cart after a click, a purchase after a cart.
fn funnel(u: f64, available: bool) -> (f64, f64, f64) {
    let cart = if available { sigmoid(0.7 * u - 3.8) } else { 0.0 };
    (sigmoid(u - 3.0), cart, sigmoid(0.6 * u - 1.0))
}

fn examination(slot: usize) -> f64 {
    1.0 / (1.0 + slot as f64)
}

/// One request's candidates with everything the methods and the judge need.
struct Request {
    user: String,
    items: Vec<String>,
    signals: Vec<RecallSignals>,
    rows: Vec<f32>,
    utilities: Vec<f64>,
    available: Vec<bool>,
}

/// A judged query: its text and each relevant item's grade (1–3).
struct Query {
    text: String,
    grades: HashMap<usize, u8>,
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

struct World<'a> {
    generator: &'a Generator,
    search: Option<(Arc<SearchIndex>, Vec<Query>)>,
    store: &'a EmbeddedStore,
    set: &'a ModelSet,
    recommend_config: &'a RecommendConfig,
    weights: &'a EventWeights,
    prices: PriceIndex,
    item_index: HashMap<String, usize>,
    users: Vec<String>,
    pick_user: WeightedIndex<f64>,
    config: &'a SimulationConfig,
    /// Learns from the logged pages as they happen (default settings: clicks wait 5 min).
    online: Option<OnlineClickModel>,
}

impl World<'_> {
    fn surface_name(&self) -> &'static str {
        match self.config.surface {
            Surface::Recommendations => SURFACE_RECOMMENDATIONS,
            Surface::Search => SURFACE_SEARCH,
        }
    }
}

impl World<'_> {
    fn request(&self, rng: &mut ChaCha8Rng, stats: &ItemStats, now: i64) -> Result<Option<Request>> {
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
                            r.reasons.iter().map(|x| (x.source.as_str(), x.rank, x.score)),
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

/// Most requests recall too few candidates for: the shop is too small for the protocol.
fn check_attempts(number: usize, allowed: usize) -> Result<()> {
    if number > allowed {
        return Err(Error::Internal(format!(
            "recall returned fewer candidates than are shown for most of {number} requests; generate a larger shop"
        )));
    }
    Ok(())
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
fn respond(
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

/// Run the protocol in `dir` (an empty directory for the simulated shop's store).
pub fn simulate(
    config: &SimulationConfig,
    dir: &Path,
    recommend_config: &RecommendConfig,
    weights: &EventWeights,
    params: &GbdtParams,
    progress: &mut dyn FnMut(&str),
) -> Result<SimulationReport> {
    if let Some((field, message)) = config.problems().into_iter().next() {
        return Err(crate::ValidationError::new("invalid_simulation", field, message).into());
    }
    let started = Instant::now();
    progress("generating the shop's history");
    let generator = Generator::new(GenConfig {
        items: config.items,
        users: config.users,
        events: config.history_events,
        seed: config.seed,
    })?;
    let store = EmbeddedStore::open(dir, &StoreConfig::default())?;
    let mut stats = ItemStats::new();
    {
        let mut sink = TeeSink { store: StoreSink::new(&store), stats: &mut stats };
        generator.run(&mut sink, &mut |_| {})?;
        sink.store.finish()?;
    }
    progress("training the recall models");
    let set = ModelSet::train(&store, recommend_config, weights)?;
    let truth = generator.ground_truth()?;
    let item_index: HashMap<String, usize> = (0..config.items)
        .map(|i| Ok((Generator::item_id_of(i as u32)?.as_str().to_string(), i)))
        .collect::<Result<_>>()?;
    let search = match config.surface {
        Surface::Recommendations => None,
        Surface::Search => {
            progress("indexing the catalog for search");
            let index = SearchIndex::open(&dir.join("search"), SearchConfig::default(), &store)?;
            let half = config.queries / 2;
            let queries = generator
                .search_cases(config.queries - half, false, config.seed)
                .into_iter()
                .chain(generator.search_cases(half, true, config.seed ^ 1))
                .map(|case| Query {
                    text: case.query,
                    grades: case.grades.into_iter().map(|(i, g)| (i as usize, g)).collect(),
                })
                .collect();
            Some((index, queries))
        }
    };
    let world = World {
        generator: &generator,
        search,
        store: &store,
        set: &set,
        recommend_config,
        weights,
        prices: PriceIndex::from_store(&store)?,
        item_index,
        users: truth.users.iter().map(|u| u.id.clone()).collect(),
        pick_user: WeightedIndex::new(truth.users.iter().map(|u| u.activity.max(1e-6)))
            .map_err(|e| Error::Internal(format!("shopper activity: {e}")))?,
        config,
        online: config.online.then(|| OnlineClickModel::new(OnlineConfig::default())).transpose()?,
    };
    let setup_seconds = started.elapsed().as_secs_f64();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5eed_0f7a_ff1c);
    let mut now = truth.epoch_ms + truth.window_ms;
    let mut logged: Vec<Event> = Vec::new();
    let mut pending: Vec<Event> = Vec::new();
    // The feature log: what each shown item's row was when it was shown.
    let mut feature_log: HashMap<(String, String), Vec<f32>> = HashMap::new();
    let flush = |pending: &mut Vec<Event>, stats: &mut ItemStats| -> Result<()> {
        for e in pending.iter() {
            stats.observe(e);
        }
        store.append_events(std::mem::take(pending))?;
        Ok(())
    };

    progress("logging traffic");
    let mut number = 0usize;
    let mut served = 0usize;
    let attempts_allowed = 20 * (config.train_requests + config.test_requests);
    while served < config.train_requests {
        number += 1;
        check_attempts(number, attempts_allowed)?;
        now += REQUEST_GAP_MS;
        let Some(request) = world.request(&mut rng, &stats, now)? else { continue };
        served += 1;
        let (order, arm): (Vec<usize>, &str) = if rng.gen_bool(config.explore_share) {
            let mut pool: Vec<usize> = (0..config.explore_depth.min(request.items.len())).collect();
            pool.shuffle(&mut rng);
            pool.truncate(config.shown);
            (pool, ARM_EXPLORE)
        } else {
            ((0..config.shown).collect(), ARM_BLEND)
        };
        for &c in &order {
            let row = request.rows[c * FEATURE_COUNT..][..FEATURE_COUNT].to_vec();
            feature_log.insert((format!("sim-{number}"), request.items[c].clone()), row);
        }
        let events = respond(&mut rng, number, &request, &order, arm, now)?;
        if let Some(online) = &world.online {
            let request_id = format!("sim-{number}");
            let rows: Vec<(String, Vec<f32>)> = order
                .iter()
                .map(|&c| (request.items[c].clone(), request.rows[c * FEATURE_COUNT..][..FEATURE_COUNT].to_vec()))
                .collect();
            online.observe_page(&request_id, world.surface_name(), now, &rows);
            for click in events.iter().filter(|e| e.event_type == EventType::Click) {
                if let Some(item) = &click.item {
                    online.observe_click(&request_id, item.as_str());
                }
            }
            online.flush(now);
        }
        logged.extend(events.iter().cloned());
        pending.extend(events);
        if pending.len() >= 500 {
            flush(&mut pending, &mut stats)?;
        }
    }
    flush(&mut pending, &mut stats)?;

    progress("training the ranker");
    let labeled = join_impressions(&logged, ATTRIBUTION_WINDOW_MS);
    let propensities = examination_propensities(&labeled, ARM_EXPLORE, config.shown, 0.05)
        .ok_or_else(|| Error::Internal("the randomised bucket logged no click in the first slot".into()))?;
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (r, row) in labeled.iter().enumerate() {
        match groups.last_mut() {
            Some((request, rows)) if *request == row.request_id => rows.push(r),
            _ => groups.push((row.request_id.clone(), vec![r])),
        }
    }
    let split = groups.len() - groups.len() / 10;
    let dataset = |groups: &[(String, Vec<usize>)]| -> Result<Dataset> {
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        let mut row_weights = Vec::new();
        let mut sizes = Vec::new();
        for (_, members) in groups {
            sizes.push(members.len() as u32);
            for &r in members {
                let row = &labeled[r];
                let features = feature_log
                    .get(&(row.request_id.clone(), row.item.clone()))
                    .ok_or_else(|| Error::Internal(format!("no logged features for {}", row.request_id)))?;
                rows.extend_from_slice(features);
                labels.push(f32::from(row.grade()));
                let weight = if row.clicked { 1.0 / propensities[row.position as usize] } else { 1.0 };
                row_weights.push(weight as f32);
            }
        }
        let names = FEATURES.iter().map(|f| f.to_string()).collect();
        Ok(Dataset::new(names, rows, labels)?.with_weights(row_weights)?.with_group_sizes(&sizes)?)
    };
    let train = dataset(&groups[..split])?;
    let valid = dataset(&groups[split..])?;
    let ranker_started = Instant::now();
    let model: GbdtModel = gbdt::train(params, &train, Some(&valid))?;
    let ranker_train_seconds = ranker_started.elapsed().as_secs_f64();

    progress("judging the later window");
    let methods: &[&str] = match config.surface {
        Surface::Recommendations => &["ranker", "blend", "cf", "itemknn", "popularity"],
        Surface::Search => &["ranker", "blend", "keyword"],
    };
    let mut scores: Vec<Vec<f64>> = vec![Vec::new(); methods.len()];
    let mut judged = 0usize;
    while judged < config.test_requests {
        number += 1;
        check_attempts(number, attempts_allowed)?;
        now += REQUEST_GAP_MS;
        let Some(request) = world.request(&mut rng, &stats, now)? else { continue };
        judged += 1;
        let gains: Vec<f64> = request
            .utilities
            .iter()
            .zip(&request.available)
            .map(|(&u, &available)| {
                let (click, cart, buy) = funnel(u, available);
                f64::from(weights.click) * click
                    + f64::from(weights.add_to_cart) * click * cart
                    + f64::from(weights.purchase) * click * cart * buy
            })
            .collect();
        let n = request.items.len();
        let predictions: Vec<f64> =
            (0..n).map(|c| model.predict(&request.rows[c * FEATURE_COUNT..][..FEATURE_COUNT])).collect();
        for (m, method) in methods.iter().enumerate() {
            let mut order: Vec<usize> = (0..n).collect();
            let signals = &request.signals;
            let by_source = |signal: fn(&RecallSignals) -> Option<u32>| {
                move |a: &usize, b: &usize| {
                    let key = |c: usize| (signal(&signals[c]).unwrap_or(u32::MAX), c);
                    key(*a).cmp(&key(*b))
                }
            };
            match *method {
                "ranker" => order.sort_by(|a, b| predictions[*b].total_cmp(&predictions[*a]).then(a.cmp(b))),
                "blend" => {}
                "cf" => order.sort_by(by_source(|s| s.cf.map(|x| x.rank))),
                "itemknn" => order.sort_by(by_source(|s| s.knn.map(|x| x.rank))),
                "keyword" => order.sort_by(by_source(|s| s.keyword.map(|x| x.rank))),
                _ => order.sort_by(by_source(|s| s.popularity.map(|x| x.rank))),
            }
            scores[m].push(ndcg_of_order(&order, &gains, 10));
        }
        // Production keeps serving the blend, and shoppers keep shopping.
        let order: Vec<usize> = (0..config.shown).collect();
        pending.extend(respond(&mut rng, number, &request, &order, ARM_BLEND, now)?);
        if pending.len() >= 500 {
            flush(&mut pending, &mut stats)?;
        }
    }
    flush(&mut pending, &mut stats)?;

    let methods: Vec<MethodScore> = methods
        .iter()
        .zip(&scores)
        .map(|(method, values)| {
            let count = values.len() as f64;
            let mean = values.iter().sum::<f64>() / count;
            let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (count - 1.0).max(1.0);
            MethodScore { method: method.to_string(), ndcg_at_10: mean, se: (variance / count).sqrt() }
        })
        .collect();
    let ranker = methods[0].ndcg_at_10;
    let blend = methods[1].ndcg_at_10;
    let best_source = methods[2..].iter().map(|m| m.ndcg_at_10).fold(f64::NEG_INFINITY, f64::max);
    let mut importance: Vec<(String, f64)> =
        FEATURES.iter().map(|f| f.to_string()).zip(model.feature_importance()).collect();
    importance.sort_by(|a, b| b.1.total_cmp(&a.1));
    importance.truncate(8);
    Ok(SimulationReport {
        config: config.clone(),
        setup_seconds,
        logged_requests: groups.len(),
        logged_rows: labeled.len(),
        clicks: labeled.iter().filter(|r| r.clicked).count(),
        carts: labeled.iter().filter(|r| r.carted).count(),
        purchases: labeled.iter().filter(|r| r.purchased).count(),
        true_examination: (0..config.shown).map(examination).collect(),
        estimated_examination: propensities,
        ranker_trees: model.n_trees(),
        ranker_train_seconds,
        top_features: importance,
        test_requests: judged,
        methods,
        lift_over_best_source: ranker / best_source - 1.0,
        lift_over_blend: ranker / blend - 1.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_search_simulation_learns_a_ranker_that_beats_keywords_and_the_blend() {
        let dir = tempfile::tempdir().unwrap();
        let config = SimulationConfig {
            surface: Surface::Search,
            queries: 60,
            items: 600,
            users: 150,
            history_events: 15_000,
            train_requests: 1_500,
            test_requests: 200,
            candidates: 60,
            ..SimulationConfig::default()
        };
        let report = simulate(
            &config,
            dir.path(),
            &RecommendConfig::default(),
            &EventWeights::default(),
            &GbdtParams::default(),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(
            report.methods.iter().map(|m| m.method.as_str()).collect::<Vec<_>>(),
            ["ranker", "blend", "keyword"]
        );
        // On this small shop (1,500 logged searches) the ranker gained about 8% over
        // keywords and 6% over the blend when written; the acceptance run is larger.
        assert!(report.lift_over_best_source > 0.04, "{report:?}");
        assert!(report.lift_over_blend > 0.03, "{report:?}");
    }

    #[test]
    fn a_small_simulation_learns_a_ranker_that_beats_the_blend() {
        let dir = tempfile::tempdir().unwrap();
        let config = SimulationConfig {
            items: 400,
            users: 150,
            history_events: 15_000,
            train_requests: 1_500,
            test_requests: 200,
            candidates: 60,
            ..SimulationConfig::default()
        };
        let report = simulate(
            &config,
            dir.path(),
            &RecommendConfig::default(),
            &EventWeights::default(),
            &GbdtParams::default(),
            &mut |_| {},
        )
        .unwrap();
        eprintln!("REPORT {:?} {} {}", report.methods, report.lift_over_best_source, report.lift_over_blend);
        assert_eq!(report.test_requests, 200);
        assert_eq!(report.logged_rows, 1_500 * config.shown);
        assert!(report.clicks > 100 && report.purchases > 0, "{report:?}");
        // Position bias is recovered from the randomised bucket: slot 1 is looked at about
        // half as often as slot 0 (1/2 in the shopper model).
        assert!((report.estimated_examination[1] - 0.5).abs() < 0.2, "{report:?}");
        // The learned ranker beats every recall source and the blend by at least 10% even
        // on this small shop (about +24% and +32% when written).
        assert!(report.lift_over_best_source > 0.10, "{report:?}");
        assert!(report.lift_over_blend > 0.10, "{report:?}");
    }
}
