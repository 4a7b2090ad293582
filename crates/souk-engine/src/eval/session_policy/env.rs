//! The session environment: a generated shop whose shoppers browse page after page of "for
//! you" recommendations, and the page mixes a session policy chooses among.
//!
//! Each shopper's candidates are recalled once by the real serving code ([`recommend`]:
//! ALS, item-kNN of recent items and popularity fused by reciprocal rank) from the shop's
//! generated history. Sessions are kept off the store: recall would only move by the
//! session's own events, and keeping them off lets a shopper's candidates be computed once
//! and reused by every session and every policy (the protocol's cost is then the setup,
//! not the pages).
//!
//! A shopper responds with the simulated-ranking shopper model (slot `p` looked at with
//! `1/(1+p)`, the generator's click, cart and purchase funnel of latent utility `u`), with
//! session dynamics on top: a click on an item of a category adds `click_interest` to that
//! category's utility for the rest of the session (capped at twice that), a purchase takes
//! `satiation` off it, and after every page the shopper leaves with probability
//! `leave_base + leave_per_page × pages + leave_per_dry_page × pages since the last click`
//! (capped at 0.95), or at `max_pages`. Price sensitivity is the generator's own, per
//! shopper, inside `u` (the price-fit term), and hidden from the policy.

use std::collections::HashMap;
use std::path::Path;

use rand::distributions::{Distribution, WeightedIndex};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::SessionPolicyConfig;
use crate::eval::simulate::{examination, funnel};
use crate::gen::{GenConfig, Generator};
use crate::ids::UserId;
use crate::model::{EventType, Record, RecordSink};
use crate::recommend::EventWeights;
use crate::serving::{recommend, ModelSet, RecommendConfig, RecommendRequest};
use crate::store::{EmbeddedStore, Storage, StoreConfig, StoreSink};
use crate::{Error, Result};

/// The page mixes a session policy picks among, each a distinct order of the same recalled
/// candidates (items already shown in the session are never shown again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mix {
    /// The blend's order: what the static ranker serves.
    Exploit,
    /// The long tail first: the blend's top `explore_depth`, fewest history events first.
    Explore,
    /// At most `category_cap` items of a category on the page, in the blend's order.
    Diversify,
    /// Categories the shopper clicked this session (and has not bought) first.
    Focus,
    /// Categories co-bought in the history with what the shopper carted this session
    /// first; the carted categories themselves last.
    CrossSell,
    /// The blend's top `explore_depth`, cheapest first.
    Cheaper,
}

impl Mix {
    pub const ALL: [Mix; 6] = [Mix::Exploit, Mix::Explore, Mix::Diversify, Mix::Focus, Mix::CrossSell, Mix::Cheaper];

    pub fn name(self) -> &'static str {
        match self {
            Mix::Exploit => "exploit",
            Mix::Explore => "explore",
            Mix::Diversify => "diversify",
            Mix::Focus => "focus",
            Mix::CrossSell => "cross-sell",
            Mix::Cheaper => "cheaper",
        }
    }
}

/// One recalled candidate with what the mixes and the shopper model need.
#[derive(Debug, Clone)]
struct Candidate {
    category: usize,
    utility: f64,
    available: bool,
    price: f64,
    history_events: u32,
}

/// A shopper's recalled candidates in the blend's order.
#[derive(Debug, Clone)]
struct Shopper {
    candidates: Vec<Candidate>,
    history_size: usize,
}

/// Counts what the generated history says about items and co-bought categories.
struct HistorySink<'a> {
    store: StoreSink<'a>,
    item_index: &'a HashMap<String, usize>,
    item_events: Vec<u32>,
    bought: HashMap<String, Vec<usize>>,
}

impl RecordSink for HistorySink<'_> {
    fn put(&mut self, record: Record) -> Result<()> {
        if let Record::Event(event) = &record {
            if let Some(&item) = event.item.as_ref().and_then(|i| self.item_index.get(i.as_str())) {
                self.item_events[item] += 1;
                if event.event_type == EventType::Purchase {
                    self.bought.entry(event.user.as_str().to_string()).or_default().push(item);
                }
            }
        }
        self.store.put(record)
    }
}

/// The generated shop with every shopper's candidates.
pub struct Shop {
    shoppers: Vec<Shopper>,
    pick: WeightedIndex<f64>,
    /// `co_bought[a][b]`: shoppers who bought in both categories, normalised per row.
    co_bought: Vec<Vec<f64>>,
}

/// What the policy may observe of a session (see [`super::qlearn::State`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub page: usize,
    pub clicks: usize,
    pub purchased: bool,
    pub pages_since_click: usize,
    pub history_size: usize,
}

/// One page's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PageOutcome {
    pub clicks: usize,
    pub purchases: usize,
    pub revenue: f64,
    pub done: bool,
}

/// A session in progress.
pub struct Session<'a> {
    shop: &'a Shop,
    config: &'a SessionPolicyConfig,
    shopper: &'a Shopper,
    shown: Vec<bool>,
    interest: Vec<f64>,
    carted: Vec<bool>,
    clicked: Vec<bool>,
    observation: Observation,
}

impl Shop {
    /// Generate the shop of `seed` in `dir` (an empty directory), train the recall models
    /// on its history and recall every shopper's candidates.
    pub fn build(
        config: &SessionPolicyConfig,
        seed: u64,
        dir: &Path,
        recommend_config: &RecommendConfig,
        weights: &EventWeights,
    ) -> Result<Self> {
        let generator = Generator::new(GenConfig {
            items: config.items,
            users: config.users,
            events: config.history_events,
            seed,
        })?;
        let truth = generator.ground_truth()?;
        let item_index: HashMap<String, usize> = (0..config.items)
            .map(|i| Ok((Generator::item_id_of(i as u32)?.as_str().to_string(), i)))
            .collect::<Result<_>>()?;
        let store = EmbeddedStore::open(dir, &StoreConfig::default())?;
        let mut sink = HistorySink {
            store: StoreSink::new(&store),
            item_index: &item_index,
            item_events: vec![0; config.items],
            bought: HashMap::new(),
        };
        generator.run(&mut sink, &mut |_| {})?;
        let HistorySink { store: store_sink, item_events, bought, .. } = sink;
        store_sink.finish()?;
        let set = ModelSet::train(&store, recommend_config, weights)?;

        let category_index: HashMap<&str, usize> =
            truth.categories.iter().enumerate().map(|(c, name)| (name.as_str(), c)).collect();
        let item_category: Vec<usize> =
            truth.items.iter().map(|i| category_index.get(i.category.as_str()).copied().unwrap_or(0)).collect();
        let categories = truth.categories.len().max(1);
        let mut co_bought = vec![vec![0.0; categories]; categories];
        for items in bought.values() {
            let mut seen: Vec<usize> = items.iter().map(|&i| item_category[i]).collect();
            seen.sort_unstable();
            seen.dedup();
            for &a in &seen {
                for &b in seen.iter().filter(|&&b| b != a) {
                    co_bought[a][b] += 1.0;
                }
            }
        }
        for row in &mut co_bought {
            let total: f64 = row.iter().sum();
            if total > 0.0 {
                row.iter_mut().for_each(|v| *v /= total);
            }
        }

        let mut shoppers = Vec::with_capacity(truth.users.len());
        for (u, user) in truth.users.iter().enumerate() {
            let user_id = UserId::parse(user.id.as_str(), "user")?;
            let page = recommend(&set, &store, recommend_config, &RecommendRequest::new(user_id, config.candidates))?;
            let ids: Vec<&str> = page.items.iter().map(|r| r.id.as_str()).collect();
            let metas = store.items_meta(&ids)?;
            let candidates = ids
                .iter()
                .zip(&metas)
                .map(|(id, meta)| {
                    let item = item_index.get(*id).copied().ok_or_else(|| {
                        Error::Internal(format!("recalled item {id} is not in the generated catalog"))
                    })?;
                    Ok(Candidate {
                        category: item_category[item],
                        utility: generator.true_utility(u, item).unwrap_or(f64::NEG_INFINITY),
                        available: meta.as_ref().is_none_or(|m| m.available),
                        price: meta.as_ref().and_then(|m| m.price).map_or(0.0, f64::from),
                        history_events: item_events[item],
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            shoppers.push(Shopper { candidates, history_size: page.history_size });
        }
        let pick = WeightedIndex::new(truth.users.iter().map(|u| u.activity.max(1e-6)))
            .map_err(|e| Error::Internal(format!("shopper activity: {e}")))?;
        Ok(Self { shoppers, pick, co_bought })
    }

    /// A shopper drawn by activity starts a session (one with too few candidates for a
    /// page is skipped: `None`).
    pub fn start<'a>(&'a self, config: &'a SessionPolicyConfig, rng: &mut impl Rng) -> Option<Session<'a>> {
        let shopper = &self.shoppers[self.pick.sample(rng)];
        let n = shopper.candidates.len();
        (n >= config.page_size).then(|| Session {
            shop: self,
            config,
            shopper,
            shown: vec![false; n],
            interest: vec![0.0; self.co_bought.len()],
            carted: vec![false; self.co_bought.len()],
            clicked: vec![false; self.co_bought.len()],
            observation: Observation {
                page: 0,
                clicks: 0,
                purchased: false,
                pages_since_click: 0,
                history_size: shopper.history_size,
            },
        })
    }
}

impl Session<'_> {
    pub fn observation(&self) -> Observation {
        self.observation
    }

    /// The page `mix` would show now: candidate indices, at most `page_size`.
    pub fn page(&self, mix: Mix) -> Vec<usize> {
        let config = self.config;
        let candidates = &self.shopper.candidates;
        let fresh: Vec<usize> = (0..candidates.len()).filter(|&c| !self.shown[c]).collect();
        let depth = fresh.len().min(config.explore_depth.max(config.page_size));
        let mut order: Vec<usize> = match mix {
            Mix::Exploit => fresh,
            Mix::Explore => {
                let mut top = fresh[..depth].to_vec();
                top.sort_by_key(|&c| candidates[c].history_events);
                top
            }
            Mix::Cheaper => {
                let mut top = fresh[..depth].to_vec();
                top.sort_by(|&a, &b| candidates[a].price.total_cmp(&candidates[b].price));
                top
            }
            Mix::Diversify => {
                let mut per_category = vec![0usize; self.interest.len()];
                let (mut page, mut rest) = (Vec::new(), Vec::new());
                for c in fresh {
                    let category = candidates[c].category;
                    if per_category[category] < config.category_cap {
                        per_category[category] += 1;
                        page.push(c);
                    } else {
                        rest.push(c);
                    }
                }
                page.extend(rest);
                page
            }
            Mix::Focus => {
                let wanted = |c: usize| {
                    let category = candidates[c].category;
                    self.clicked[category] && !self.carted[category]
                };
                let (mut first, rest): (Vec<usize>, Vec<usize>) = fresh.into_iter().partition(|&c| wanted(c));
                first.extend(rest);
                first
            }
            Mix::CrossSell => {
                let score = |c: usize| -> f64 {
                    let category = candidates[c].category;
                    if self.carted[category] {
                        return -1.0;
                    }
                    (0..self.carted.len()).filter(|&s| self.carted[s]).map(|s| self.shop.co_bought[s][category]).sum()
                };
                let mut order = fresh;
                // A stable sort keeps the blend's order within equal scores.
                order.sort_by(|&a, &b| score(b).total_cmp(&score(a)));
                order
            }
        };
        order.truncate(config.page_size);
        order
    }

    /// Show `mix`'s page; the shopper responds with draws from `rng`.
    pub fn step(&mut self, mix: Mix, rng: &mut impl Rng) -> PageOutcome {
        let config = self.config;
        let page = self.page(mix);
        let mut outcome = PageOutcome { clicks: 0, purchases: 0, revenue: 0.0, done: false };
        for (slot, &c) in page.iter().enumerate() {
            self.shown[c] = true;
            let candidate = &self.shopper.candidates[c];
            let looked = rng.gen_bool(examination(slot));
            let u = candidate.utility + self.interest[candidate.category];
            let (click, cart, buy) = funnel(u, candidate.available);
            let (click_draw, cart_draw, buy_draw) = (rng.gen::<f64>(), rng.gen::<f64>(), rng.gen::<f64>());
            if !looked || click_draw >= click {
                continue;
            }
            outcome.clicks += 1;
            self.clicked[candidate.category] = true;
            let interest = &mut self.interest[candidate.category];
            *interest = (*interest + config.click_interest).min(2.0 * config.click_interest);
            if cart_draw < cart {
                self.carted[candidate.category] = true;
                if buy_draw < buy {
                    outcome.purchases += 1;
                    outcome.revenue += candidate.price;
                    self.interest[candidate.category] -= config.satiation;
                }
            }
        }
        let observation = &mut self.observation;
        observation.page += 1;
        observation.clicks += outcome.clicks;
        observation.purchased |= outcome.purchases > 0;
        observation.pages_since_click = if outcome.clicks > 0 { 0 } else { observation.pages_since_click + 1 };
        let leave = (config.leave_base
            + config.leave_per_page * observation.page as f64
            + config.leave_per_dry_page * observation.pages_since_click as f64)
            .min(0.95);
        let leave_draw = rng.gen::<f64>();
        let fresh = self.shown.iter().filter(|s| !**s).count();
        outcome.done = observation.page >= config.max_pages || leave_draw < leave || fresh < config.page_size;
        outcome
    }
}
