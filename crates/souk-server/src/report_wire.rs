//! Wire types of the reports the API returns: a user's profile and a training's report.
//! Counterparts of the engine's types (which stay free of the document), converted once.

use std::collections::BTreeMap;

use serde::Serialize;
use souk_engine::rank::profile::{Activity, Affinity, FunnelStage, PriceProfile, Sentiment, UserProfile};
use souk_engine::rank::ranker::{GateMeasure, RankerReport};
use souk_engine::rank::review_sentiment::TextSentiment;
use souk_engine::serving::shop::{TrainReport, UserOverview};
use souk_engine::serving::ModelSetManifest;
use utoipa::ToSchema;

/// `GET /v1/users/{id}/profile`: what a user's events say about their tastes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileOut {
    pub user: String,
    /// The time affinities are decayed to (Unix ms).
    pub computed_at: i64,
    pub activity: ProfileActivityOut,
    /// browsing, comparing, carting or buying.
    pub funnel_stage: FunnelStageOut,
    /// Top-level categories, strongest first.
    pub categories: Vec<AffinityOut>,
    /// Full category paths (" > "-joined), strongest first.
    pub category_paths: Vec<AffinityOut>,
    pub brands: Vec<AffinityOut>,
    /// `name=value` of item attributes.
    pub attributes: Vec<AffinityOut>,
    pub price: Option<PriceOut>,
    /// From rating events.
    pub sentiment: Option<SentimentOut>,
    /// From review texts, scored by the sentiment head at the last training (`null`
    /// before one scored any of this shopper's reviews).
    pub review_texts: Option<TextSentimentOut>,
    /// The live preference vector of the serving factor model (`null` without one).
    pub preference_vector: Option<PreferenceVectorOut>,
    /// Stated preferences from the user's record (`null` when the user has none stored).
    pub stated: Option<StatedOut>,
    pub social: SocialOut,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FunnelStageOut {
    Browsing,
    Comparing,
    Carting,
    Buying,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileActivityOut {
    /// Interactions read (at most the configured history limit).
    pub events: u32,
    pub events_last_30_days: u32,
    pub active_days: u32,
    /// Unix ms.
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    /// Interactions by event type.
    pub by_type: BTreeMap<String, u32>,
}

/// One affinity: a category, brand or attribute value.
#[derive(Debug, Serialize, ToSchema)]
pub struct AffinityOut {
    pub name: String,
    /// Share of this kind's positive scores (the shares of a list sum to 1).
    pub share: f64,
    /// Decayed, weighted event score.
    pub score: f64,
    /// Interactions that contributed.
    pub events: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PriceOut {
    /// low, mid or high.
    pub band: String,
    /// Weighted median position within each item's category (0 cheapest, 1 dearest).
    pub position: f64,
    /// Median price of the items engaged with.
    pub median_price: f64,
    pub items_priced: u32,
}

/// What review texts say: how many were scored and their mean score.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct TextSentimentOut {
    pub reviews: u32,
    /// Mean score on −1 (negative) … 1 (positive).
    pub score: f64,
}

impl From<TextSentiment> for TextSentimentOut {
    fn from(s: TextSentiment) -> Self {
        Self { reviews: s.reviews, score: s.mean().unwrap_or(0.0) }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SentimentOut {
    pub ratings: u32,
    pub mean_rating: f64,
    /// Mean rating mapped from 1–5 to −1…1.
    pub score: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreferenceVectorOut {
    /// The factor model it comes from.
    pub model: String,
    pub dimensions: usize,
    pub values: Vec<f32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatedOut {
    pub categories: Vec<String>,
    pub brands: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SocialOut {
    /// Users this user follows, befriends or trusts.
    pub follows: usize,
}

impl From<UserOverview> for ProfileOut {
    fn from(overview: UserOverview) -> Self {
        let UserOverview { profile, user, follows, vector, review_texts } = overview;
        let UserProfile {
            user: id,
            computed_at,
            activity,
            funnel_stage,
            categories,
            category_paths,
            brands,
            attributes,
            price,
            sentiment,
            shares: _,
        } = profile;
        let affinities = |list: Vec<Affinity>| list.into_iter().map(AffinityOut::from).collect();
        ProfileOut {
            user: id,
            computed_at,
            activity: activity.into(),
            funnel_stage: funnel_stage.into(),
            categories: affinities(categories),
            category_paths: affinities(category_paths),
            brands: affinities(brands),
            attributes: affinities(attributes),
            price: price.map(PriceOut::from),
            sentiment: sentiment.map(SentimentOut::from),
            review_texts: review_texts.filter(|t| t.reviews > 0).map(TextSentimentOut::from),
            preference_vector: vector.map(|(model, values)| PreferenceVectorOut {
                model,
                dimensions: values.len(),
                values,
            }),
            stated: user
                .map(|user| StatedOut { categories: user.preferences.categories, brands: user.preferences.brands }),
            social: SocialOut { follows: follows.len() },
        }
    }
}

impl From<FunnelStage> for FunnelStageOut {
    fn from(stage: FunnelStage) -> Self {
        match stage {
            FunnelStage::Browsing => Self::Browsing,
            FunnelStage::Comparing => Self::Comparing,
            FunnelStage::Carting => Self::Carting,
            FunnelStage::Buying => Self::Buying,
        }
    }
}

impl From<Activity> for ProfileActivityOut {
    fn from(a: Activity) -> Self {
        Self {
            events: a.events,
            events_last_30_days: a.events_last_30_days,
            active_days: a.active_days,
            first_seen: a.first_seen,
            last_seen: a.last_seen,
            by_type: a.by_type,
        }
    }
}

impl From<Affinity> for AffinityOut {
    fn from(a: Affinity) -> Self {
        Self { name: a.name, share: a.share, score: a.score, events: a.events }
    }
}

impl From<PriceProfile> for PriceOut {
    fn from(p: PriceProfile) -> Self {
        let band = serde_json::to_value(p.band).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        Self { band, position: p.position, median_price: p.median_price, items_priced: p.items_priced }
    }
}

impl From<Sentiment> for SentimentOut {
    fn from(s: Sentiment) -> Self {
        Self { ratings: s.ratings, mean_rating: s.mean_rating, score: s.score }
    }
}

/// `POST /v1/train`: what a training produced.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrainReportOut {
    /// The saved generation's name (`null`: kept in memory only).
    pub generation: Option<String>,
    pub manifest: ManifestOut,
    /// The learned ranker of recommendation pages, when there were logged pages to learn from.
    pub ranker: Option<RankerReportOut>,
    /// The learned ranker of search pages, likewise.
    pub search_ranker: Option<RankerReportOut>,
}

/// What a model set was trained on.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManifestOut {
    pub format_version: u32,
    /// Unix ms.
    pub trained_at_ms: i64,
    pub events: u64,
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    /// The models of the set, by name.
    pub models: Vec<String>,
    /// Seconds each model took to train.
    pub train_seconds: BTreeMap<String, f64>,
    /// How much each event type counted.
    pub weights: EventWeightsOut,
}

/// Event weights of a training (`[recommend.weights]`).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventWeightsOut {
    pub view: f32,
    pub click: f32,
    pub add_to_cart: f32,
    pub remove_from_cart: f32,
    pub purchase: f32,
    pub favorite: f32,
    pub rating: f32,
    pub review: f32,
    pub dislike: f32,
    /// A view counts only if its dwell time is at least this (0: every view).
    pub min_view_dwell_ms: u32,
    /// Ratings below this value are ignored (0: every rating counts).
    pub rating_threshold: f32,
}

/// A learned ranker's training and its promotion gate.
#[derive(Debug, Serialize, ToSchema)]
pub struct RankerReportOut {
    /// Unix ms.
    pub trained_at_ms: i64,
    /// Logged requests with feature rows, and how many had a click.
    pub requests: usize,
    pub requests_with_clicks: usize,
    pub rows: usize,
    /// Examination per slot estimated from the shuffled pages (`null` when they were too few).
    pub propensities: Option<Vec<f64>>,
    pub holdout_requests: usize,
    /// NDCG@10 on the later window: the new model, the order shown, the current ranker.
    pub ndcg_model: f64,
    pub ndcg_logged: f64,
    pub ndcg_current: Option<f64>,
    /// The new model's size: trees for LambdaMART, passes over the rows for the others.
    pub trees: usize,
    /// Whether the new model passed the gate and serves.
    pub promoted: bool,
    /// The new model's learner (`lambdamart`, `ftrl`, `mlp`): LambdaMART unless a
    /// challenger beat it on the later window.
    pub learner: String,
    /// Every learner trained, with its figures on the later window.
    pub learners: Vec<LearnerScoreOut>,
    /// What the promotion gate compares on the later window: `ipw_dcg` (DCG@10 with each
    /// logged grade divided by its slot's examination probability) or `ndcg` (when
    /// exploration logged too little to estimate examination).
    pub gate_measure: String,
    /// The gate's measure for the new model, the order shown and the current ranker.
    pub gate_model: f64,
    pub gate_logged: f64,
    pub gate_current: Option<f64>,
}

/// One learner's model at a training.
#[derive(Debug, Serialize, ToSchema)]
pub struct LearnerScoreOut {
    pub learner: String,
    /// NDCG@10 on the later window.
    pub ndcg: f64,
    /// The gate's measure on the later window (the highest serves, LambdaMART on a tie).
    pub gate: f64,
    /// Trees, or passes over the rows.
    pub size: usize,
    pub train_seconds: f64,
}

impl From<TrainReport> for TrainReportOut {
    fn from(report: TrainReport) -> Self {
        Self {
            generation: report.generation,
            manifest: report.manifest.into(),
            ranker: report.ranker.map(RankerReportOut::from),
            search_ranker: report.search_ranker.map(RankerReportOut::from),
        }
    }
}

impl From<ModelSetManifest> for ManifestOut {
    fn from(m: ModelSetManifest) -> Self {
        let w = m.weights;
        Self {
            format_version: m.format_version,
            trained_at_ms: m.trained_at_ms,
            events: m.events,
            users: m.users,
            items: m.items,
            interactions: m.interactions,
            models: m.models,
            train_seconds: m.train_seconds,
            weights: EventWeightsOut {
                view: w.view,
                click: w.click,
                add_to_cart: w.add_to_cart,
                remove_from_cart: w.remove_from_cart,
                purchase: w.purchase,
                favorite: w.favorite,
                rating: w.rating,
                review: w.review,
                dislike: w.dislike,
                min_view_dwell_ms: w.min_view_dwell_ms,
                rating_threshold: w.rating_threshold,
            },
        }
    }
}

impl From<RankerReport> for RankerReportOut {
    fn from(r: RankerReport) -> Self {
        Self {
            trained_at_ms: r.trained_at_ms,
            requests: r.requests,
            requests_with_clicks: r.requests_with_clicks,
            rows: r.rows,
            propensities: r.propensities,
            holdout_requests: r.holdout_requests,
            ndcg_model: r.ndcg_model,
            ndcg_logged: r.ndcg_logged,
            ndcg_current: r.ndcg_current,
            trees: r.trees,
            promoted: r.promoted,
            learner: r.learner.name().to_string(),
            learners: r
                .learners
                .into_iter()
                .map(|l| LearnerScoreOut {
                    learner: l.learner.name().to_string(),
                    ndcg: l.ndcg,
                    gate: l.gate,
                    size: l.size,
                    train_seconds: l.train_seconds,
                })
                .collect(),
            gate_measure: match r.gate_measure {
                GateMeasure::IpwDcg => "ipw_dcg",
                GateMeasure::Ndcg => "ndcg",
            }
            .to_string(),
            gate_model: r.gate_model,
            gate_logged: r.gate_logged,
            gate_current: r.gate_current,
        }
    }
}
