//! The ranker's features: one code path for training and serving.
//!
//! [`FeatureBuilder::row`] turns a (user profile, item, recall signals) triple into a dense
//! row of [`FEATURES`]. Serving calls it on the candidates of a request; training reads the
//! rows that serving logged for the impressions it showed (feature logging, as the row was
//! at the moment it was shown), so a feature can never mean one thing in training and
//! another in serving.
//!
//! Groups: recall sources (the collaborative model, item-kNN, popularity and the hand blend
//! of them; the keyword and vector stages of search), the item (popularity, trend, CTR,
//! conversion, price and its place in its category), the user (activity, funnel stage, price
//! position) and user × item crosses (category and brand affinity, price fit).

use std::collections::HashMap;

use crate::model::{Event, EventType};
use crate::rank::online::OnlineClickModel;
use crate::rank::profile::{PriceIndex, UserProfile};
use crate::recommend::SourceKind;
use crate::store::ItemMeta;

pub use super::schema::{FEATURES, FEATURE_COUNT};

/// A recall stage's opinion of a candidate: its rank there (1-based) and score.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Signal {
    pub rank: u32,
    pub score: f32,
}

/// What the recall stages said about one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RecallSignals {
    /// The hand blend's rank and score (reciprocal-rank fusion, or search's fusion).
    pub blend: Signal,
    /// The collaborative model (ALS, EASE…).
    pub cf: Option<Signal>,
    pub knn: Option<Signal>,
    pub popularity: Option<Signal>,
    pub keyword: Option<Signal>,
    pub vector: Option<Signal>,
    /// The factor model's score of the item for the user, whichever stage recalled it.
    pub factor_score: Option<f32>,
}

impl RecallSignals {
    /// Signals from a recommendation's reasons: `itemknn`, `popularity`/`trending`, and any
    /// other source as the collaborative model (the first one named).
    /// `reasons`: each recall source that proposed the item, as (source name, rank there,
    /// score there).
    pub fn from_reasons(
        blend_rank: u32,
        blend_score: f64,
        reasons: impl IntoIterator<Item = (SourceKind, usize, f32)>,
    ) -> Self {
        let mut signals =
            RecallSignals { blend: Signal { rank: blend_rank, score: blend_score as f32 }, ..RecallSignals::default() };
        for (source, rank, score) in reasons {
            let signal = Some(Signal { rank: rank as u32, score });
            match source {
                SourceKind::Itemknn => signals.knn = signal,
                SourceKind::Popularity | SourceKind::Trending => signals.popularity = signal,
                _ if signals.cf.is_none() => signals.cf = signal,
                _ => {}
            }
        }
        signals
    }
}

/// Per-item counts behind the item features, updated from events as they arrive.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ItemStats {
    items: HashMap<String, ItemCounts>,
    /// Half-life of the trend's short-term rate.
    trend_half_life_ms: f64,
    long_half_life_ms: f64,
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
struct ItemCounts {
    events: f64,
    impressions: f64,
    clicks: f64,
    purchases: f64,
    /// Ratings received and the sum of their values (1–5).
    #[serde(default)]
    ratings: f64,
    #[serde(default)]
    rating_sum: f64,
    /// Exponentially decayed event rates (short and long half-life) as of `updated`.
    short: f64,
    long: f64,
    updated: i64,
}

/// Beta-prior strength of click-through and conversion rates.
const PRIOR_IMPRESSIONS: f64 = 50.0;
const PRIOR_CTR: f64 = 0.05;
const PRIOR_CLICKS: f64 = 20.0;
const PRIOR_CONVERSION: f64 = 0.05;
/// Prior of the mean rating: as many ratings as this at the middle of the scale.
const PRIOR_RATINGS: f64 = 5.0;
const PRIOR_RATING: f64 = 3.0;

impl Default for ItemStats {
    fn default() -> Self {
        Self::new()
    }
}

impl ItemStats {
    pub fn new() -> Self {
        Self { items: HashMap::new(), trend_half_life_ms: 86_400_000.0, long_half_life_ms: 14.0 * 86_400_000.0 }
    }

    /// Count one event (impressions count once per shown item).
    pub fn observe(&mut self, event: &Event) {
        match event.event_type {
            EventType::Impression => {
                for item in &event.items {
                    self.items.entry(item.as_str().to_string()).or_default().impressions += 1.0;
                }
            }
            EventType::Search => {}
            _ => {
                let Some(item) = &event.item else { return };
                let (short_half, long_half) = (self.trend_half_life_ms, self.long_half_life_ms);
                let counts = self.items.entry(item.as_str().to_string()).or_default();
                counts.events += 1.0;
                match event.event_type {
                    EventType::Click => counts.clicks += 1.0,
                    EventType::Purchase => counts.purchases += 1.0,
                    EventType::Rating => {
                        if let Some(value) = event.value.filter(|v| v.is_finite()) {
                            counts.ratings += 1.0;
                            counts.rating_sum += value.clamp(1.0, 5.0);
                        }
                    }
                    _ => {}
                }
                let age = (event.timestamp - counts.updated).max(0) as f64;
                counts.short = counts.short * 0.5f64.powf(age / short_half) + 1.0;
                counts.long = counts.long * 0.5f64.powf(age / long_half) + 1.0;
                counts.updated = counts.updated.max(event.timestamp);
            }
        }
    }

    /// Count `n` ratings summing to `sum` for `item` beyond its rating events (the
    /// pseudo-ratings of review texts that came without one).
    pub fn add_ratings(&mut self, item: &str, n: f64, sum: f64) {
        let counts = self.items.entry(item.to_string()).or_default();
        counts.ratings += n;
        counts.rating_sum += sum;
    }

    /// The ratings counted for `item`: how many, and their sum.
    pub fn ratings_of(&self, item: &str) -> (f64, f64) {
        let counts = self.counts(item);
        (counts.ratings, counts.rating_sum)
    }

    fn counts(&self, item: &str) -> ItemCounts {
        self.items.get(item).copied().unwrap_or_default()
    }
}

/// Builds feature rows.
pub struct FeatureBuilder<'a> {
    pub prices: &'a PriceIndex,
    pub stats: &'a ItemStats,
    /// The online click model and the page's surface (`recs`, `search`); without one the
    /// `online_ctr` feature is missing (NaN).
    pub online: Option<(&'a OnlineClickModel, &'a str)>,
}

impl FeatureBuilder<'_> {
    /// Write the row of one candidate into `out` (length [`FEATURE_COUNT`]). Missing values
    /// are NaN where absence is not itself informative, 0 where it is.
    pub fn row(
        &self,
        profile: &UserProfile,
        item: &str,
        meta: Option<&ItemMeta>,
        signals: &RecallSignals,
        now: i64,
        out: &mut [f32],
    ) {
        debug_assert_eq!(out.len(), FEATURE_COUNT);
        let rank_log = |s: Option<Signal>| s.map_or(f32::NAN, |s| (s.rank.max(1) as f32).ln());
        let present = |s: Option<Signal>| if s.is_some() { 1.0 } else { 0.0 };
        let score = |s: Option<Signal>| s.map_or(f32::NAN, |s| s.score);
        let counts = self.stats.counts(item);
        let age = (now - counts.updated).max(0) as f64;
        let short = counts.short * 0.5f64.powf(age / self.stats.trend_half_life_ms.max(1.0));
        let long = counts.long * 0.5f64.powf(age / self.stats.long_half_life_ms.max(1.0));
        let position = meta.and_then(|m| self.prices.position(m));
        let user_position = profile.price.as_ref().map(|p| p.position as f32);
        let values = [
            signals.blend.score,
            (signals.blend.rank.max(1) as f32).ln(),
            present(signals.cf),
            score(signals.cf),
            rank_log(signals.cf),
            signals.factor_score.unwrap_or(f32::NAN),
            present(signals.knn),
            score(signals.knn),
            rank_log(signals.knn),
            present(signals.popularity),
            rank_log(signals.popularity),
            present(signals.keyword),
            score(signals.keyword),
            rank_log(signals.keyword),
            present(signals.vector),
            score(signals.vector),
            rank_log(signals.vector),
            (1.0 + counts.events).ln() as f32,
            // Short-term rate against the long-term one (both per half-life).
            ((1.0 + short * self.stats.long_half_life_ms / self.stats.trend_half_life_ms) / (1.0 + long)).ln() as f32,
            ((counts.clicks + PRIOR_IMPRESSIONS * PRIOR_CTR) / (counts.impressions + PRIOR_IMPRESSIONS)) as f32,
            ((counts.purchases + PRIOR_CLICKS * PRIOR_CONVERSION) / (counts.clicks + PRIOR_CLICKS)) as f32,
            // The item's review sentiment: its smoothed mean rating mapped from 1–5 to −1…1.
            (((counts.rating_sum + PRIOR_RATINGS * PRIOR_RATING) / (counts.ratings + PRIOR_RATINGS) - 3.0) / 2.0)
                as f32,
            meta.and_then(|m| m.price).map_or(f32::NAN, |p| (1.0 + p.max(0.0)).ln()),
            position.unwrap_or(f32::NAN),
            meta.map_or(f32::NAN, |m| if m.available { 1.0 } else { 0.0 }),
            (1.0 + profile.activity.events as f32).ln(),
            f32::from(profile.funnel_stage.ordinal()),
            user_position.unwrap_or(f32::NAN),
            meta.map_or(0.0, |m| profile.shares.top_level_affinity(m) as f32),
            meta.map_or(0.0, |m| profile.shares.path_share(m) as f32),
            meta.map_or(0.0, |m| profile.shares.brand_affinity(m) as f32),
            match (position, user_position) {
                (Some(item), Some(user)) => -(item - user).abs(),
                _ => f32::NAN,
            },
            f32::NAN,
        ];
        out.copy_from_slice(&values);
        if let Some((online, surface)) = self.online {
            out[FEATURE_COUNT - 1] = online.predict(surface, item, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ids::{EventId, ItemId, UserId};
    use crate::rank::profile::{ProfileConfig, ProfileInputs};
    use crate::recommend::EventWeights;
    use crate::store::UserInteraction;

    fn event(id: &str, event_type: EventType, item: &str, timestamp: i64) -> Event {
        Event::new(
            EventId::parse(id, "id").unwrap(),
            event_type,
            UserId::parse("u", "user").unwrap(),
            Some(ItemId::parse(item, "item").unwrap()),
            timestamp,
        )
    }

    #[test]
    fn rows_carry_signals_stats_and_crosses_by_name() {
        let shoes = ItemMeta {
            category: vec![Arc::from("Shoes")].into(),
            brand: Some(Arc::from("Acme")),
            price: Some(30.0),
            available: true,
            ..ItemMeta::default()
        };
        let prices = PriceIndex::from_prices([10.0f32, 20.0, 30.0, 40.0].map(|p| (&shoes.category[..], p)));
        let mut stats = ItemStats::new();
        let mut impression = event("e0", EventType::Impression, "x", 0);
        impression.item = None;
        impression.items = vec![ItemId::parse("s1", "item").unwrap(); 1];
        for _ in 0..10 {
            stats.observe(&impression);
        }
        stats.observe(&event("e1", EventType::Click, "s1", 1_000));
        stats.observe(&event("e2", EventType::Purchase, "s1", 2_000));
        for (n, stars) in [5.0, 5.0, 4.0].into_iter().enumerate() {
            let mut rating = event(&format!("r{n}"), EventType::Rating, "s1", 2_500);
            rating.value = Some(stars);
            stats.observe(&rating);
        }
        let interactions = vec![UserInteraction {
            item: "s1".into(),
            event_type: EventType::Purchase,
            timestamp: 2_000,
            value: 0.0,
            dwell_ms: 0,
        }];
        let profile = UserProfile::build(&ProfileInputs {
            user: "u",
            interactions: &interactions,
            metas: &[Some(shoes.clone())],
            items: &HashMap::new(),
            prices: &prices,
            weights: &EventWeights::default(),
            config: &ProfileConfig::default(),
            now: 3_000,
        });
        let signals = RecallSignals {
            blend: Signal { rank: 3, score: 0.5 },
            knn: Some(Signal { rank: 1, score: 0.9 }),
            ..RecallSignals::default()
        };
        let mut row = vec![0f32; FEATURE_COUNT];
        FeatureBuilder { prices: &prices, stats: &stats, online: None }.row(
            &profile,
            "s1",
            Some(&shoes),
            &signals,
            3_000,
            &mut row,
        );
        let get = |name: &str| row[FEATURES.iter().position(|f| *f == name).unwrap()];
        assert_eq!(get("blend_rank_log"), 3f32.ln());
        assert_eq!(get("knn_present"), 1.0);
        assert_eq!(get("knn_score"), 0.9);
        assert_eq!(get("cf_present"), 0.0);
        assert!(get("cf_score").is_nan());
        assert!((get("item_ctr") - (1.0 + 2.5) / 60.0).abs() < 1e-6);
        assert!((get("item_conversion") - (1.0 + 1.0) / 21.0).abs() < 1e-6);
        // (14 + 5 · 3) / 8 = 3.625 stars → (3.625 − 3) / 2.
        assert!((get("item_rating") - 0.3125).abs() < 1e-6);
        assert!(get("online_ctr").is_nan(), "no online model given");
        assert_eq!(get("item_price_position"), 0.625);
        assert_eq!(get("category_affinity"), 1.0);
        assert_eq!(get("brand_affinity"), 1.0);
        assert_eq!(get("price_fit"), 0.0);
        assert_eq!(get("user_funnel_stage"), 3.0);
        assert_eq!(FEATURES.len(), FEATURE_COUNT);
    }
}
