//! User profiles (用户画像): what a shopper's events say about their tastes, in a form a
//! merchandiser can read and the ranker can use.
//!
//! One builder serves both: [`UserProfile::build`] reads a user's interactions (newest
//! first, as [`Storage::user_interactions`] returns them) and the catalog facts of the items
//! involved. The ranker's cross features (category and brand affinity, price fit) are read
//! from the same [`UserProfile`] at serving and at training time, so the two cannot drift.
//!
//! - Affinities: each interaction contributes its event weight (the configured
//!   [`EventWeights`]; dislikes and removals count against) decayed by age with a half-life,
//!   to the item's top-level category, its full category path, its brand and (when item
//!   records are supplied) its attribute values. Shares are the positive scores normalised
//!   to sum to one within each kind.
//! - Price band: where the items the shopper engaged with sit in their own leaf category's
//!   price distribution ([`PriceIndex`]: 0 the cheapest, 1 the dearest), as a weighted
//!   median; below 0.35 is `low`, above 0.65 `high`.
//! - Funnel stage of the latest session (events within [`SESSION_GAP_MS`] of the newest):
//!   `buying` if it holds a purchase, `carting` if an add-to-cart, `comparing` if three or
//!   more distinct items of one leaf category were looked at, else `browsing`.
//! - Review sentiment: the mean of the user's ratings mapped from 1–5 to −1…1 (ratings are
//!   what the shopper said about what they bought). What their review texts say is scored
//!   at training time ([`super::review_sentiment`]) and shown beside the profile.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{EventType, Item};
use crate::recommend::EventWeights;
use crate::store::{ItemMeta, Storage, UserInteraction};

/// A gap longer than this between two events starts a new session.
pub const SESSION_GAP_MS: i64 = 30 * 60 * 1000;
const DAY_MS: f64 = 86_400_000.0;
/// Entries listed per kind of affinity in the profile.
pub const TOP_AFFINITIES: usize = 10;

/// Knobs of the profile builder.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileConfig {
    /// Half-life of an interaction's weight, in days.
    pub half_life_days: f64,
    /// Most recent interactions read.
    pub history_limit: usize,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        Self { half_life_days: 30.0, history_limit: 500 }
    }
}

impl ProfileConfig {
    /// Problems with these settings, each with the offending key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if !(self.half_life_days.is_finite() && self.half_life_days > 0.0) {
            problems.push(("half_life_days".into(), "must be a positive number of days".into()));
        }
        if self.history_limit == 0 {
            problems.push(("history_limit".into(), "must be at least 1".into()));
        }
        problems
    }
}

/// Each leaf category's item prices, for placing a price within its category.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PriceIndex {
    /// Sorted log prices per category path (levels joined by " > ", lower case).
    by_category: HashMap<String, Vec<f32>>,
}

/// The key of a category path: levels joined by " > ", lower case.
pub fn category_key(path: &[impl AsRef<str>]) -> String {
    let mut key = String::new();
    for (i, level) in path.iter().enumerate() {
        if i > 0 {
            key.push_str(" > ");
        }
        key.push_str(&level.as_ref().trim().to_lowercase());
    }
    key
}

impl PriceIndex {
    /// Build from every catalog item's facts (memory only).
    pub fn from_store(store: &dyn Storage) -> crate::Result<PriceIndex> {
        let mut index = PriceIndex::default();
        store.scan_item_meta(&mut |_, meta| index.add(meta))?;
        index.finish();
        Ok(index)
    }

    fn add(&mut self, meta: &ItemMeta) {
        if let Some(price) = meta.price.filter(|p| *p > 0.0 && p.is_finite()) {
            self.by_category.entry(category_key(&meta.category)).or_default().push(price.ln());
        }
    }

    fn finish(&mut self) {
        for prices in self.by_category.values_mut() {
            prices.sort_by(f32::total_cmp);
        }
    }

    /// Build from (category path, price) pairs.
    pub fn from_prices<'a>(items: impl IntoIterator<Item = (&'a [Arc<str>], f32)>) -> PriceIndex {
        let mut index = PriceIndex::default();
        for (category, price) in items {
            index.add(&ItemMeta {
                category: category.into(),
                price: Some(price),
                available: true,
                ..ItemMeta::default()
            });
        }
        index.finish();
        index
    }

    /// Where `price` sits among its category's prices: the share of them below it, with
    /// ties counted half (0 the cheapest, 1 the dearest). `None` without a price or when the
    /// category has fewer than two priced items.
    pub fn position(&self, meta: &ItemMeta) -> Option<f32> {
        let price = meta.price.filter(|p| *p > 0.0 && p.is_finite())?.ln();
        let prices = self.by_category.get(&category_key(&meta.category)).filter(|p| p.len() >= 2)?;
        let below = prices.partition_point(|p| *p < price);
        let not_above = prices.partition_point(|p| *p <= price);
        Some(((below + not_above) as f32 / 2.0) / prices.len() as f32)
    }

    pub fn categories(&self) -> usize {
        self.by_category.len()
    }
}

/// Purchase intent of the latest session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunnelStage {
    Browsing,
    Comparing,
    Carting,
    Buying,
}

impl FunnelStage {
    /// 0 browsing … 3 buying, for features.
    pub fn ordinal(self) -> u8 {
        self as u8
    }
}

/// The same bands the generator gives its shoppers, so profiles compare with its truth.
pub use crate::gen::PriceBand;

/// One affinity: a category, brand or attribute value with its decayed score and share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affinity {
    pub name: String,
    /// Share of this kind's positive scores (the shares of all entries sum to 1).
    pub share: f64,
    /// Decayed, weighted event score.
    pub score: f64,
    /// Interactions that contributed.
    pub events: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceProfile {
    pub band: PriceBand,
    /// Weighted median position within each item's category (0 cheapest, 1 dearest).
    pub position: f64,
    /// Median price of the items engaged with.
    pub median_price: f64,
    pub items_priced: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    /// Interactions read (at most the configured history limit).
    pub events: u32,
    pub events_last_30_days: u32,
    pub active_days: u32,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub by_type: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    pub ratings: u32,
    pub mean_rating: f64,
    /// Mean rating mapped from 1–5 to −1…1.
    pub score: f64,
}

/// What a user's events say about them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserProfile {
    pub user: String,
    /// The time affinities are decayed to (Unix ms).
    pub computed_at: i64,
    pub activity: Activity,
    pub funnel_stage: FunnelStage,
    /// Top-level categories, strongest first.
    pub categories: Vec<Affinity>,
    /// Full category paths (" > "-joined), strongest first.
    pub category_paths: Vec<Affinity>,
    pub brands: Vec<Affinity>,
    /// `name=value` of item attributes (only when item records were supplied).
    pub attributes: Vec<Affinity>,
    pub price: Option<PriceProfile>,
    pub sentiment: Option<Sentiment>,
    /// Shares of every top-level category, path and brand (lower-case keys), for features.
    #[serde(skip)]
    pub shares: Shares,
}

/// Lower-case key → share, for the ranker's cross features.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shares {
    pub top_level: HashMap<String, f64>,
    pub paths: HashMap<String, f64>,
    pub brands: HashMap<String, f64>,
    /// Strongest share of each kind (0 when empty), to express others relative to it.
    pub max_top_level: f64,
    pub max_brand: f64,
}

impl Shares {
    /// The user's share of an item's top-level category, relative to their strongest one
    /// (1 for their favourite, 0 for one never touched).
    pub fn top_level_affinity(&self, meta: &ItemMeta) -> f64 {
        let Some(top) = meta.category.first() else { return 0.0 };
        relative(self.top_level.get(&top.trim().to_lowercase()).copied(), self.max_top_level)
    }

    pub fn path_share(&self, meta: &ItemMeta) -> f64 {
        self.paths.get(&category_key(&meta.category)).copied().unwrap_or(0.0)
    }

    pub fn brand_affinity(&self, meta: &ItemMeta) -> f64 {
        let Some(brand) = &meta.brand else { return 0.0 };
        relative(self.brands.get(&brand.trim().to_lowercase()).copied(), self.max_brand)
    }
}

fn relative(share: Option<f64>, max: f64) -> f64 {
    match share {
        Some(s) if max > 0.0 => s / max,
        _ => 0.0,
    }
}

#[derive(Default)]
struct Tally {
    score: f64,
    events: u32,
    display: String,
}

fn tally(map: &mut HashMap<String, Tally>, display: &str, weight: f64) {
    let entry = map.entry(display.trim().to_lowercase()).or_default();
    if entry.display.is_empty() {
        entry.display = display.trim().to_string();
    }
    entry.score += weight;
    entry.events += 1;
}

/// Positive scores as shares, strongest first (ties by name).
fn affinities(map: HashMap<String, Tally>) -> (Vec<Affinity>, HashMap<String, f64>) {
    let total: f64 = map.values().map(|t| t.score.max(0.0)).sum();
    let mut list: Vec<(String, Affinity)> = map
        .into_iter()
        .filter(|(_, t)| t.score > 0.0)
        .map(|(key, t)| {
            let share = if total > 0.0 { t.score / total } else { 0.0 };
            (key, Affinity { name: t.display, share, score: t.score, events: t.events })
        })
        .collect();
    list.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then_with(|| a.1.name.cmp(&b.1.name)));
    let shares = list.iter().map(|(k, a)| (k.clone(), a.share)).collect();
    (list.into_iter().map(|(_, a)| a).collect(), shares)
}

fn weighted_median(mut values: Vec<(f64, f64)>) -> Option<f64> {
    values.retain(|(_, w)| *w > 0.0);
    let total: f64 = values.iter().map(|(_, w)| w).sum();
    if total <= 0.0 {
        return None;
    }
    values.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut seen = 0.0;
    for (v, w) in &values {
        seen += w;
        if seen >= total / 2.0 {
            return Some(*v);
        }
    }
    values.last().map(|(v, _)| *v)
}

/// Inputs of [`UserProfile::build`].
pub struct ProfileInputs<'a> {
    pub user: &'a str,
    /// Newest first.
    pub interactions: &'a [UserInteraction],
    /// Catalog facts per interaction's item, aligned with `interactions`.
    pub metas: &'a [Option<ItemMeta>],
    /// Item records by id, for attribute affinities (may be empty).
    pub items: &'a HashMap<String, Item>,
    pub prices: &'a PriceIndex,
    pub weights: &'a EventWeights,
    pub config: &'a ProfileConfig,
    /// Unix ms to decay to.
    pub now: i64,
}

impl UserProfile {
    pub fn build(inputs: &ProfileInputs<'_>) -> UserProfile {
        let ProfileInputs { user, interactions, metas, items, prices, weights, config, now } = *inputs;
        let decay_rate = std::f64::consts::LN_2 / (config.half_life_days * DAY_MS);
        let mut top_level: HashMap<String, Tally> = HashMap::new();
        let mut paths: HashMap<String, Tally> = HashMap::new();
        let mut brands: HashMap<String, Tally> = HashMap::new();
        let mut attributes: HashMap<String, Tally> = HashMap::new();
        let mut price_points: Vec<(f64, f64)> = Vec::new();
        let mut paid: Vec<(f64, f64)> = Vec::new();
        let mut by_type: BTreeMap<String, u32> = BTreeMap::new();
        let mut days = std::collections::HashSet::new();
        let mut ratings = (0u32, 0f64);
        let mut last_30 = 0u32;
        for (interaction, meta) in interactions.iter().zip(metas) {
            *by_type.entry(interaction.event_type.as_str().to_string()).or_default() += 1;
            days.insert(interaction.timestamp.div_euclid(DAY_MS as i64));
            if now - interaction.timestamp <= 30 * DAY_MS as i64 {
                last_30 += 1;
            }
            if interaction.event_type == EventType::Rating {
                ratings.0 += 1;
                ratings.1 += f64::from(interaction.value);
            }
            let base = f64::from(weights.weight_of(interaction.event_type, interaction.value, interaction.dwell_ms));
            if base == 0.0 {
                continue;
            }
            let age = (now - interaction.timestamp).max(0) as f64;
            let weight = base * (-decay_rate * age).exp();
            let Some(meta) = meta else { continue };
            if let Some(top) = meta.category.first() {
                tally(&mut top_level, top, weight);
                let display = meta.category.iter().map(|l| l.as_ref()).collect::<Vec<_>>().join(" > ");
                tally(&mut paths, &display, weight);
            }
            if let Some(brand) = &meta.brand {
                tally(&mut brands, brand, weight);
            }
            if let Some(item) = items.get(&interaction.item) {
                for (name, value) in &item.attributes {
                    let value = match value {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Number(n) => n.to_string(),
                        serde_json::Value::Bool(b) => b.to_string(),
                        _ => continue,
                    };
                    tally(&mut attributes, &format!("{name}={value}"), weight);
                }
            }
            if weight > 0.0 {
                if let Some(position) = prices.position(meta) {
                    price_points.push((f64::from(position), weight));
                }
                if let Some(price) = meta.price {
                    paid.push((f64::from(price), weight));
                }
            }
        }
        let (categories, top_shares) = affinities(top_level);
        let (category_paths, path_shares) = affinities(paths);
        let (brand_list, brand_shares) = affinities(brands);
        let (attribute_list, _) = affinities(attributes);
        let items_priced = price_points.len() as u32;
        let price = weighted_median(price_points).map(|position| PriceProfile {
            band: match position {
                p if p < 0.35 => PriceBand::Low,
                p if p > 0.65 => PriceBand::High,
                _ => PriceBand::Mid,
            },
            position,
            median_price: weighted_median(paid).unwrap_or(0.0),
            items_priced,
        });
        let shares = Shares {
            max_top_level: categories.first().map_or(0.0, |a| a.share),
            max_brand: brand_list.first().map_or(0.0, |a| a.share),
            top_level: top_shares,
            paths: path_shares,
            brands: brand_shares,
        };
        let truncate = |mut list: Vec<Affinity>| {
            list.truncate(TOP_AFFINITIES);
            list
        };
        UserProfile {
            user: user.to_string(),
            computed_at: now,
            activity: Activity {
                events: interactions.len() as u32,
                events_last_30_days: last_30,
                active_days: days.len() as u32,
                first_seen: interactions.last().map(|i| i.timestamp),
                last_seen: interactions.first().map(|i| i.timestamp),
                by_type,
            },
            funnel_stage: funnel_stage(interactions, metas),
            categories: truncate(categories),
            category_paths: truncate(category_paths),
            brands: truncate(brand_list),
            attributes: truncate(attribute_list),
            price,
            sentiment: (ratings.0 > 0).then(|| {
                let mean = ratings.1 / f64::from(ratings.0);
                Sentiment { ratings: ratings.0, mean_rating: mean, score: ((mean - 3.0) / 2.0).clamp(-1.0, 1.0) }
            }),
            shares,
        }
    }

    /// Read what the profile needs from the store and build it.
    pub fn load(
        store: &dyn Storage,
        user: &crate::UserId,
        prices: &PriceIndex,
        weights: &EventWeights,
        config: &ProfileConfig,
        now: i64,
        with_attributes: bool,
    ) -> crate::Result<UserProfile> {
        let interactions = store.user_interactions(user, config.history_limit)?;
        let ids: Vec<&str> = interactions.iter().map(|i| i.item.as_str()).collect();
        let metas = store.items_meta(&ids)?;
        let mut items = HashMap::new();
        if with_attributes {
            for interaction in &interactions {
                if items.len() >= 200 || items.contains_key(&interaction.item) {
                    continue;
                }
                let Ok(id) = crate::ItemId::parse(interaction.item.as_str(), "item") else { continue };
                if let Some(item) = store.get_item(&id)? {
                    items.insert(interaction.item.clone(), item);
                }
            }
        }
        Ok(UserProfile::build(&ProfileInputs {
            user: user.as_str(),
            interactions: &interactions,
            metas: &metas,
            items: &items,
            prices,
            weights,
            config,
            now,
        }))
    }
}

/// The stage of the latest session (see the module documentation).
fn funnel_stage(interactions: &[UserInteraction], metas: &[Option<ItemMeta>]) -> FunnelStage {
    let Some(newest) = interactions.first() else { return FunnelStage::Browsing };
    let mut previous = newest.timestamp;
    let mut stage = FunnelStage::Browsing;
    let mut looked: HashMap<String, std::collections::HashSet<&str>> = HashMap::new();
    for (interaction, meta) in interactions.iter().zip(metas) {
        if previous - interaction.timestamp > SESSION_GAP_MS {
            break;
        }
        previous = interaction.timestamp;
        match interaction.event_type {
            EventType::Purchase => return FunnelStage::Buying,
            EventType::AddToCart => stage = stage.max(FunnelStage::Carting),
            EventType::View | EventType::Click => {
                if let Some(meta) = meta {
                    let seen = looked.entry(category_key(&meta.category)).or_default();
                    seen.insert(interaction.item.as_str());
                    if seen.len() >= 3 {
                        stage = stage.max(FunnelStage::Comparing);
                    }
                }
            }
            _ => {}
        }
    }
    stage
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{GenConfig, Generator};
    use crate::store::{EmbeddedStore, StoreConfig, StoreSink};

    fn meta(category: &[&str], brand: &str, price: f32) -> ItemMeta {
        ItemMeta {
            category: category.iter().map(|c| Arc::from(*c)).collect(),
            brand: Some(Arc::from(brand)),
            price: Some(price),
            available: true,
            ..ItemMeta::default()
        }
    }

    fn interaction(item: &str, event_type: EventType, timestamp: i64) -> UserInteraction {
        UserInteraction { item: item.into(), event_type, timestamp, value: 0.0, dwell_ms: 0 }
    }

    #[test]
    fn price_position_is_the_share_of_cheaper_items_in_the_category() {
        let shoes: Vec<Arc<str>> = vec!["Shoes".into()];
        let index = PriceIndex::from_prices([10.0, 20.0, 30.0, 40.0].map(|p| (shoes.as_slice(), p)));
        assert_eq!(index.position(&meta(&["Shoes"], "x", 5.0)), Some(0.0));
        assert_eq!(index.position(&meta(&["shoes"], "x", 20.0)), Some(0.375));
        assert_eq!(index.position(&meta(&["Shoes"], "x", 99.0)), Some(1.0));
        assert_eq!(index.position(&meta(&["Hats"], "x", 20.0)), None);
    }

    #[test]
    fn affinities_follow_weights_and_decay_and_stage_follows_the_last_session() {
        let day = DAY_MS as i64;
        let now = 100 * day;
        let a = meta(&["Shoes", "Running"], "Acme", 50.0);
        let b = meta(&["Books"], "Paper", 10.0);
        // Newest first: yesterday a purchase of Books; 60 days ago three Shoes views.
        let interactions = vec![
            interaction("b1", EventType::Purchase, now - day),
            interaction("a1", EventType::View, now - 60 * day + 2),
            interaction("a2", EventType::View, now - 60 * day + 1),
            interaction("a3", EventType::View, now - 60 * day),
        ];
        let metas = vec![Some(b.clone()), Some(a.clone()), Some(a.clone()), Some(a)];
        let profile = UserProfile::build(&ProfileInputs {
            user: "u1",
            interactions: &interactions,
            metas: &metas,
            items: &HashMap::new(),
            prices: &PriceIndex::default(),
            weights: &EventWeights::default(),
            config: &ProfileConfig::default(),
            now,
        });
        // Purchase 10 × 2^(-1/30) against 3 views × 2^-2.
        assert_eq!(profile.categories[0].name, "Books");
        let books = profile.categories[0].share;
        let expected = 10.0 * 0.5f64.powf(1.0 / 30.0) / (10.0 * 0.5f64.powf(1.0 / 30.0) + 3.0 * 0.25);
        assert!((books - expected).abs() < 1e-6, "{books} vs {expected}");
        assert_eq!(profile.category_paths[1].name, "Shoes > Running");
        assert_eq!(profile.brands.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), ["Paper", "Acme"]);
        assert_eq!(profile.funnel_stage, FunnelStage::Buying);
        assert_eq!(profile.activity.events_last_30_days, 1);
        assert_eq!(profile.activity.active_days, 2);
        assert!((profile.shares.top_level_affinity(&b) - 1.0).abs() < 1e-12);
        // The older session alone is "comparing": three items of one category.
        let older = UserProfile::build(&ProfileInputs {
            user: "u1",
            interactions: &interactions[1..],
            metas: &metas[1..],
            items: &HashMap::new(),
            prices: &PriceIndex::default(),
            weights: &EventWeights::default(),
            config: &ProfileConfig::default(),
            now,
        });
        assert_eq!(older.funnel_stage, FunnelStage::Comparing);
        assert!(older.sentiment.is_none());
    }

    #[test]
    fn a_generated_shoppers_profile_shows_the_tastes_it_was_generated_with() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        let generator = Generator::new(GenConfig { items: 800, users: 150, events: 40_000, seed: 11 }).unwrap();
        let mut sink = StoreSink::new(&store);
        generator.run(&mut sink, &mut |_| {}).unwrap();
        sink.finish().unwrap();
        let truth = generator.ground_truth().unwrap();
        let prices = PriceIndex::from_store(&store).unwrap();
        let now = truth.epoch_ms + truth.window_ms;
        let (mut category_hits, mut brand_hits, mut band_hits, mut profiles) = (0, 0, 0, 0);
        for user in truth.users.iter().take(60) {
            let id = crate::UserId::parse(user.id.as_str(), "user").unwrap();
            let profile =
                UserProfile::load(&store, &id, &prices, &EventWeights::default(), &ProfileConfig::default(), now, true)
                    .unwrap();
            if profile.activity.events < 40 {
                continue;
            }
            profiles += 1;
            if profile.categories[0].name == user.dominant_category {
                category_hits += 1;
            }
            let strongest = user.favorite_brands.iter().max_by(|a, b| a.strength.total_cmp(&b.strength));
            if let Some(favourite) = strongest {
                if profile.brands.iter().take(5).any(|b| b.name == favourite.brand) {
                    brand_hits += 1;
                }
            }
            let expected = serde_json::to_value(user.price_band).unwrap();
            if profile.price.as_ref().map(|p| serde_json::to_value(p.band).unwrap()) == Some(expected) {
                band_hits += 1;
            }
            if profiles == 1 {
                // The first such shopper, in full: the profile reads as JSON with every part.
                let json = serde_json::to_value(&profile).unwrap();
                assert_eq!(json["categories"][0]["name"], user.dominant_category.as_str(), "{json:#}");
                assert!(!json["attributes"].as_array().unwrap().is_empty(), "{json:#}");
                assert!(json["price"]["position"].as_f64().is_some(), "{json:#}");
            }
        }
        assert!(profiles >= 20, "only {profiles} active shoppers");
        let share = |hits: i32| f64::from(hits) / f64::from(profiles);
        assert!(share(category_hits) >= 0.8, "dominant category recovered for {category_hits}/{profiles}");
        assert!(share(brand_hits) >= 0.75, "favourite brand in the top 5 for {brand_hits}/{profiles}");
        assert!(share(band_hits) >= 0.6, "price band recovered for {band_hits}/{profiles}");
    }
}
