//! The pages a shop serves: recommendations, similar items, trending and search. Each runs
//! its pipeline (`recommend_page`, `similar`, `trending`, `search_page`), describes the
//! items in the page's language and, for a sampled share of pages, logs what was shown —
//! perhaps in the explore arm's random order — through the page log.

use std::borrow::Cow;

use super::{Assignment, Shop};
use crate::error::{Error, Result, ValidationError};
use crate::ids::UserId;
use crate::input::Lang;
use crate::rank::rerank::Rules;
use crate::search::{Affinity, Fusion, SearchMode, SearchRequest, SearchResponse, Sort, TEXT_SPACE};
use crate::serving::experiment::ExperimentSurface;
use crate::serving::live_sessions::BoughtTogether;
use crate::serving::page_log::{self, new_request_id, now_ms, Arm, LogPolicy, Served, Surface};
use crate::serving::pipeline::PipelineConfig;
use crate::serving::search_page::{search_page, SearchPageRequest, SearchServices};
use crate::serving::SourceKind;
use crate::serving::{
    describe, recommend, recommend_without_models, similar, trending, Cursor, Exclusions, ItemFilter, Reason,
    RecommendConfig, RecommendRequest, RecommendSurface, Recommended, TRENDING_WINDOW_ROWS,
};
use crate::store::Exposure;

/// What a caller asks for a "for you" page.
#[derive(Debug, Clone)]
pub struct RecommendAsk {
    pub user: UserId,
    pub n: usize,
    pub cursor: Option<Cursor>,
    pub filter: ItemFilter,
    pub exclude: Exclusions,
    /// The request's own rules (added to the configured ones).
    pub rules: Rules,
    /// Order with the learned ranker when the set has one.
    pub use_ranker: bool,
    /// With the ranker: each item's top feature contributions.
    pub explain: bool,
    pub lang: Lang,
    /// "For you" (the default) or the next items of the latest session.
    pub surface: RecommendSurface,
    /// The item on the shopper's screen (see [`RecommendRequest::context_item`]).
    pub context_item: Option<crate::ids::ItemId>,
}

impl RecommendAsk {
    /// `n` items for `user`, everything else by default.
    pub fn new(user: UserId, n: usize) -> Self {
        Self {
            user,
            n,
            cursor: None,
            filter: ItemFilter::available(),
            exclude: Exclusions::default(),
            rules: Rules::default(),
            use_ranker: true,
            explain: false,
            lang: Lang::En,
            surface: RecommendSurface::ForYou,
            context_item: None,
        }
    }
}

/// A bought-together item: its lift is its score, its reason names the item asked about.
fn bought_together_item(together: &BoughtTogether, item: &str) -> Recommended {
    Recommended {
        id: together.item.clone(),
        score: f64::from(together.lift),
        reasons: vec![Reason {
            source: SourceKind::BoughtTogether,
            rank: 0,
            score: together.support as f32,
            because: Some(item.to_string()),
            ..Reason::default()
        }],
        ..Recommended::default()
    }
}

/// What a caller asks for a trending page.
#[derive(Debug, Clone)]
pub struct TrendingAsk {
    pub n: usize,
    /// Half-life of an event's weight, in hours.
    pub half_life_hours: f64,
    pub filter: ItemFilter,
    pub lang: Lang,
}

/// A served page of items.
#[derive(Debug, Clone)]
pub struct ServedPage {
    pub request_id: String,
    /// The experiment arm that served it, when one did.
    pub experiment: Option<Assignment>,
    pub items: Vec<Recommended>,
    /// For the next page; `None` when there is nothing more (or the surface has no pages).
    pub next_cursor: Option<Cursor>,
    /// The model generation that answered: its training time (Unix ms).
    pub trained_at_ms: Option<i64>,
}

impl ServedPage {
    /// A page of a surface without paging, experiments or a model generation to name.
    fn single(items: Vec<Recommended>) -> Self {
        Self { request_id: new_request_id(), experiment: None, items, next_cursor: None, trained_at_ms: None }
    }
}

/// What a caller asks for a search page.
#[derive(Debug, Clone)]
pub struct SearchAsk {
    pub query: String,
    /// `None`: hybrid when the shop has a text embedder or the ask brings a vector, else
    /// keyword.
    pub mode: Option<SearchMode>,
    /// Weighted fusion (with `alpha`, the keyword share) instead of reciprocal-rank fusion.
    pub weighted: bool,
    /// `None`: the configured `hybrid_alpha`.
    pub alpha: Option<f32>,
    /// A query vector of the caller's own (e.g. an image embedding in `space`).
    pub vector: Option<Vec<f32>>,
    /// `None`: the text space.
    pub space: Option<String>,
    pub filter: ItemFilter,
    pub sort: Sort,
    pub offset: usize,
    pub limit: usize,
    pub facets: bool,
    pub explain: bool,
    /// The request's own rules (added to the configured ones).
    pub rules: Rules,
    /// The shopper: personalises the page (with `personalize`) and logs it.
    pub user: Option<UserId>,
    pub personalize: bool,
    pub use_ranker: bool,
    pub lang: Lang,
}

impl SearchAsk {
    /// The first ten results for `query`, with facets, everything else by default.
    pub fn new(query: impl Into<String>) -> Self {
        Self {
            query: query.into(),
            mode: None,
            weighted: false,
            alpha: None,
            vector: None,
            space: None,
            filter: ItemFilter::default(),
            sort: Sort::Relevance,
            offset: 0,
            limit: 10,
            facets: true,
            explain: false,
            rules: Rules::default(),
            user: None,
            personalize: true,
            use_ranker: true,
            lang: Lang::En,
        }
    }
}

/// A served search page.
pub struct SearchServed {
    pub request_id: String,
    /// The experiment arm that served it, when one did.
    pub experiment: Option<Assignment>,
    pub response: SearchResponse,
    /// The affinities that personalised it.
    pub affinity: Option<Affinity>,
}

impl Shop {
    /// A shopper's "for you" page: the model set's pipeline, or trending items before the
    /// first training.
    /// Under a running recommendations experiment, the user's arm serves the page and the
    /// page is recorded as an exposure.
    pub fn recommend(&self, ask: RecommendAsk) -> Result<ServedPage> {
        let Some(assignment) = self.assignment(ExperimentSurface::Recommendations, &ask.user) else {
            return self.recommend_with(ask, &PipelineConfig::default());
        };
        let user = ask.user.clone();
        let mut page = self.recommend_with(ask, &assignment.arm.pipeline)?;
        self.expose(&assignment, &user, &page.request_id);
        page.experiment = Some(assignment);
        Ok(page)
    }

    /// [`Shop::recommend`] through another pipeline configuration (an experiment arm's).
    pub fn recommend_with(&self, ask: RecommendAsk, pipeline: &PipelineConfig) -> Result<ServedPage> {
        pipeline.validate().map_err(|e| Error::Invalid(e.within("pipeline")))?;
        let policy = self.log_policy(pipeline);
        // Session pages are neither ranked nor logged: the ranker learns "for you" pages.
        let for_you = ask.surface == RecommendSurface::ForYou;
        let log_features = for_you && self.logs.is_some() && policy.sample();
        let lang = ask.lang;
        let request = RecommendRequest {
            rules: self.rules_for(pipeline, &ask.rules)?,
            user: ask.user,
            n: ask.n,
            cursor: ask.cursor,
            filter: ask.filter,
            exclude: ask.exclude,
            use_ranker: for_you && ask.use_ranker && pipeline.ranker != Some(false),
            log_features,
            explain: ask.explain,
            now_ms: now_ms(),
            online: self.online().map(|o| o.model.clone()),
            surface: ask.surface,
            sessions: Some(self.sessions.clone()),
            exploration: self.exploration().filter(|_| log_features).and_then(|exploration| {
                let slots =
                    pipeline.explore_slots.clone().unwrap_or_else(|| self.settings.ranking.explore.slots.clone());
                (!slots.is_empty()).then(|| (exploration.clone(), slots))
            }),
            content: Some((self.content.clone(), self.text_space())),
            context_item: ask.context_item,
        };
        let models = self.models();
        let store = self.store();
        let (mut items, next_cursor, trained_at_ms, features, arm, explored) = match &models {
            Some(set) => {
                let config = if pipeline.sources.is_empty() {
                    Cow::Borrowed(&self.settings.recommend)
                } else {
                    let weights = pipeline.source_weights(&self.settings.recommend.source_weights);
                    Cow::Owned(RecommendConfig { source_weights: weights, ..self.settings.recommend.clone() })
                };
                let page = recommend(set, store, &config, &request)?;
                let arm = if page.items.iter().any(|i| i.ranker.is_some()) { Arm::Ranker } else { Arm::Blend };
                (page.items, page.next_cursor, Some(set.manifest.trained_at_ms), page.features, arm, page.explored)
            }
            None => {
                let (items, cursor) = recommend_without_models(store, &self.settings.weights, &request)?;
                (items, cursor, None, Vec::new(), Arm::Trending, Vec::new())
            }
        };
        describe(store, &mut items, lang)?;
        let request_id = new_request_id();
        if log_features && !features.is_empty() {
            // Exploration picks were drawn: their propensities come with them.
            let mut drawn = vec![(1.0, 1.0); items.len()];
            for pick in explored.iter().filter(|p| p.position < items.len()) {
                drawn[pick.position] = (pick.propensity, pick.on_page);
            }
            let (arm, propensities) = policy.explore_drawn(&mut items, arm, &drawn);
            if let Some(exploration) = self.exploration() {
                exploration.served(&request_id, &explored);
            }
            let shown: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
            let served = Served {
                surface: Surface::Recommendations,
                request_id: &request_id,
                user: &request.user,
                shown: &shown,
                arm: Some(arm),
                propensities: &propensities,
                query: None,
            };
            self.log_page(served, &features);
        }
        Ok(ServedPage { request_id, experiment: None, items, next_cursor, trained_at_ms })
    }

    /// Items similar to `item`; `None` when the catalog does not hold it.
    pub fn similar(&self, item: &str, n: usize, filter: &ItemFilter, lang: Lang) -> Result<Option<ServedPage>> {
        let models = self.models();
        let text = self.text_space();
        let content = Some((self.content.as_ref(), text.as_deref()));
        let Some(mut items) = similar(models.as_deref(), self.store(), item, n, filter, content)? else {
            return Ok(None);
        };
        describe(self.store(), &mut items, lang)?;
        Ok(Some(ServedPage::single(items)))
    }

    /// Items bought together with `item` (in at least `min_support` baskets), by lift,
    /// that pass `filter`; never the item itself. `None` when the catalog does not hold
    /// the item.
    pub fn bought_together(
        &self,
        item: &str,
        n: usize,
        min_support: u32,
        filter: &ItemFilter,
        lang: Lang,
    ) -> Result<Option<ServedPage>> {
        let store = self.store();
        if store.items_meta(&[item])?.pop().flatten().is_none() {
            return Ok(None);
        }
        let together = self.sessions.bought_together(store, item, min_support)?;
        let ids: Vec<&str> = together.iter().map(|t| t.item.as_str()).collect();
        let verdicts = store.items_match(&ids, &|meta| filter.accepts(meta))?;
        let mut items: Vec<Recommended> = together
            .iter()
            .zip(verdicts)
            .filter(|(t, ok)| *ok && t.item != item)
            .take(n)
            .map(|(t, _)| bought_together_item(t, item))
            .collect();
        for (rank, r) in items.iter_mut().enumerate() {
            r.reasons[0].rank = rank + 1;
        }
        describe(store, &mut items, lang)?;
        Ok(Some(ServedPage::single(items)))
    }

    /// Trending items: recent events weighted by type, decayed against the shop's clock.
    pub fn trending(&self, ask: &TrendingAsk) -> Result<ServedPage> {
        if !(ask.half_life_hours.is_finite() && ask.half_life_hours > 0.0) {
            return Err(ValidationError::new(
                "invalid_number",
                "half_life_hours",
                "expected a positive number of hours",
            )
            .into());
        }
        let half_life_ms = ask.half_life_hours * 3.6e6;
        let store = self.store();
        let mut items =
            trending(store, &self.settings.weights, half_life_ms, TRENDING_WINDOW_ROWS, ask.n, &ask.filter)?;
        describe(store, &mut items, ask.lang)?;
        Ok(ServedPage::single(items))
    }

    /// A search page. Every search of a known shopper is logged (a search and an impression
    /// event); a sampled share with its feature rows, perhaps in the explore arm's order.
    /// Under a running search experiment, a known shopper's arm serves the page and the page
    /// is recorded as an exposure.
    pub fn search(&self, ask: SearchAsk) -> Result<SearchServed> {
        let assignment = ask.user.as_ref().and_then(|user| self.assignment(ExperimentSurface::Search, user));
        let Some(assignment) = assignment else {
            return self.search_with(ask, &PipelineConfig::default());
        };
        let user = ask.user.clone();
        let mut page = self.search_with(ask, &assignment.arm.pipeline)?;
        if let Some(user) = &user {
            self.expose(&assignment, user, &page.request_id);
        }
        page.experiment = Some(assignment);
        Ok(page)
    }

    /// Record that an arm served a page.
    fn expose(&self, assignment: &Assignment, user: &UserId, request_id: &str) {
        self.writer.submit_exposure(Exposure {
            experiment: assignment.experiment.clone(),
            request_id: request_id.to_string(),
            user: user.clone(),
            arm: assignment.arm.name.clone(),
            timestamp: now_ms(),
        });
    }

    /// [`Shop::search`] through another pipeline configuration (its ranker switch, rules
    /// and explore share; search has no weighted recall sources of its own yet).
    pub fn search_with(&self, ask: SearchAsk, pipeline: &PipelineConfig) -> Result<SearchServed> {
        pipeline.validate().map_err(|e| Error::Invalid(e.within("pipeline")))?;
        let Some(index) = &self.search_index() else {
            return Err(Error::Coded { code: "search_unavailable", message: "this shop has no search index".into() });
        };
        let settings = &self.settings.search;
        let mode = ask.mode.unwrap_or(if self.embedder.is_some() || ask.vector.is_some() {
            SearchMode::Hybrid
        } else {
            SearchMode::Keyword
        });
        let alpha = ask.alpha.unwrap_or(settings.hybrid_alpha);
        if !(0.0..=1.0).contains(&alpha) {
            return Err(
                ValidationError::new("invalid_parameter", "alpha", format!("expected 0..=1, found {alpha}")).into()
            );
        }
        let fusion = if ask.weighted { Fusion::Weighted { alpha } } else { Fusion::Rrf { k: settings.rrf_k } };
        let request = SearchRequest {
            query: ask.query.clone(),
            mode,
            fusion,
            query_vector: ask.vector,
            space: ask.space.unwrap_or_else(|| TEXT_SPACE.to_string()),
            filters: ask.filter,
            sort: ask.sort,
            offset: ask.offset,
            limit: ask.limit,
            facets: ask.facets,
            explain: ask.explain,
            affinity: None,
            rules: self.rules_for(pipeline, &ask.rules)?,
        };
        let history_user = ask.user.clone().filter(|_| ask.personalize);
        let policy = self.log_policy(pipeline);
        let log_features = history_user.is_some() && self.logs.is_some() && policy.sample();
        let models = self.models();
        let services = SearchServices {
            index,
            embedder: self.embedder.as_deref(),
            query_vectors: &self.query_vectors,
            models: models.as_deref(),
            weights: &self.settings.weights,
            history_limit: self.settings.recommend.history_limit,
            online: self.online().map(|o| o.model.as_ref()),
        };
        let page = SearchPageRequest {
            request,
            user: history_user,
            use_ranker: ask.use_ranker && pipeline.ranker != Some(false),
            log_features,
            lang: ask.lang,
            now_ms: now_ms(),
        };
        let mut page = search_page(&services, self.store(), page)?;
        let request_id = new_request_id();
        if let Some(user) = &ask.user {
            let (arm, propensities) = match page.arm {
                Some(arm) if !page.rows.is_empty() => {
                    let (arm, propensities) = policy.explore(&mut page.response.hits, arm);
                    (Some(arm), propensities)
                }
                // Not explored: the ranked order is certain.
                other => (other, vec![1.0; page.response.hits.len()]),
            };
            let shown: Vec<&str> = page.response.hits.iter().map(|h| h.id.as_str()).collect();
            let served = Served {
                surface: Surface::Search,
                request_id: &request_id,
                user,
                shown: &shown,
                arm,
                propensities: &propensities,
                query: Some(&ask.query),
            };
            self.log_page(served, &page.rows);
        }
        Ok(SearchServed { request_id, experiment: None, response: page.response, affinity: page.affinity })
    }

    /// Which pages are logged and explored under `pipeline`.
    fn log_policy(&self, pipeline: &PipelineConfig) -> LogPolicy {
        let mut policy = LogPolicy::of(&self.settings.ranking);
        if let Some(share) = pipeline.explore_share {
            policy.explore_share = share;
        }
        policy
    }

    /// Record a served page: the online click model waits for its clicks at once; its
    /// events and feature rows are written in the background.
    fn log_page(&self, served: Served<'_>, rows: &[(String, Vec<f32>)]) {
        let surface = served.surface;
        let record = page_log::record(served, rows, now_ms());
        if let Some(online) = self.online() {
            record.observe(&online.model);
        }
        let log = self.logs.as_ref().map(|logs| match surface {
            Surface::Recommendations => logs.recommendations.clone(),
            Surface::Search => logs.search.clone(),
        });
        self.writer.submit(record, log);
    }
}
