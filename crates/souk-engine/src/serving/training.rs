//! Training, orchestrated once for the CLI (`souk train`), the server (`POST /v1/train`,
//! background retraining) and the demo: every model of the set, then the recommendation
//! ranker and the search ranker from the logged pages (each promoted only when it beats the
//! one serving until now on the latest traffic), then a new model generation.

use super::ModelSet;
use super::RecommendConfig;
use crate::error::Result;
use crate::rank::ranker::{FeatureContext, FeatureLog, RankConfig, RankerReport};
use crate::rank::review_sentiment::{EmbedTexts, ReviewSentiments};
use crate::rank::sentiment::SentimentHead;
use crate::recommend::content::ContentRows;
use crate::recommend::EventWeights;
use crate::store::artifacts::ArtifactStore;
use crate::store::Storage;

/// What one training uses.
pub struct Training<'a> {
    pub config: &'a RecommendConfig,
    pub weights: &'a EventWeights,
    /// The rankers' learners and their settings.
    pub rank: &'a RankConfig,
    /// The logged recommendation pages (absent: no ranker is trained).
    pub log: Option<&'a FeatureLog>,
    /// The logged search pages (absent: no search ranker is trained).
    pub search_log: Option<&'a FeatureLog>,
    /// The set serving until now: its rankers are the ones a new ranker must beat.
    pub serving: Option<&'a ModelSet>,
    /// Where the new generation is saved (absent: kept in memory only).
    pub artifacts: Option<&'a ArtifactStore>,
    pub now_ms: i64,
    /// Told the share of the training done (0..=1) and the step now running.
    pub progress: &'a dyn Fn(f64, &str),
    /// Content rows of the given item ids, for the content map (absent: no map).
    pub content: Option<&'a ContentOf<'a>>,
    /// The sentence encoder for the shop's review texts (absent: they are not scored).
    pub reviews: Option<&'a ReviewTexts<'a>>,
}

/// How review texts are scored: the encoder, a configured head if any, the budget.
pub struct ReviewTexts<'a> {
    pub encoder: &'a str,
    pub embed: &'a EmbedTexts<'a>,
    pub head: Option<&'a SentimentHead>,
    pub budget: usize,
}

/// Content rows of the given item ids, aligned with them.
pub type ContentOf<'a> = dyn Fn(&[String]) -> Result<ContentRows> + 'a;

/// What a training produced.
pub struct Trained {
    pub set: ModelSet,
    /// The saved generation's name.
    pub generation: Option<String>,
    pub ranker: Option<RankerReport>,
    pub search_ranker: Option<RankerReport>,
}

/// Shares of a training's progress: the models take the first, the recommendation ranker,
/// the search ranker, the review texts and saving the rest (rough costs on a generated shop).
const MODELS_SHARE: f64 = 0.7;
const RANKER_DONE: f64 = 0.8;
const SEARCH_RANKER_DONE: f64 = 0.88;
const REVIEWS_DONE: f64 = 0.94;

/// Train every model, the content map, and both rankers, and save the generation.
pub fn train(store: &dyn Storage, training: &Training<'_>) -> Result<Trained> {
    let progress = training.progress;
    let mut set = ModelSet::train_with_progress(store, training.config, training.weights, &|share, step| {
        progress(share * MODELS_SHARE, step)
    })?;
    if let Some(content) = training.content {
        progress(MODELS_SHARE, "training the content map");
        let rows = content(&set.item_ids)?;
        set.train_content_map(&rows)?;
    }
    let previous = training.serving.and_then(|s| s.ranker.clone());
    let previous_search = training.serving.and_then(|s| s.search_ranker.clone());
    progress(MODELS_SHARE, "training the recommendation ranker");
    let ranker = match training.log {
        Some(log) => set.train_ranker(store, log, training.rank, previous, training.now_ms)?,
        None => None,
    };
    progress(RANKER_DONE, "training the search ranker");
    let search_ranker = match training.search_log {
        Some(log) => set.train_search_ranker(store, log, training.rank, previous_search, training.now_ms)?,
        None => None,
    };
    if let Some(reviews) = training.reviews {
        progress(SEARCH_RANKER_DONE, "scoring review texts");
        let previous = training.serving.and_then(|s| s.features.as_ref()).map(|f| &f.reviews);
        let scored =
            ReviewSentiments::build(store, reviews.encoder, reviews.embed, reviews.head, previous, reviews.budget)?;
        // The statistics are counted afresh by the ranker's training; without one, here.
        let mut context = match set.features.take() {
            Some(context) => std::sync::Arc::try_unwrap(context).unwrap_or_else(|shared| (*shared).clone()),
            None => FeatureContext::from_store(store)?,
        };
        scored.add_pseudo_ratings(&mut context.stats);
        context.reviews = scored;
        set.features = Some(std::sync::Arc::new(context));
    }
    progress(REVIEWS_DONE, "saving the generation");
    let generation = training.artifacts.map(|a| set.save(a)).transpose()?;
    Ok(Trained { set, generation, ranker, search_ranker })
}
