//! The "for you" page as a pipeline of stages: recall sources → fusion → the learned
//! ranker → re-ranking rules → exploration slots → reasons and cursor.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use crate::error::Result;
use crate::fusion;
use crate::hashing::DigestSet;
use crate::rank::features::{FeatureBuilder, RecallSignals, FEATURE_COUNT};
use crate::rank::profile::{ProfileConfig, ProfileInputs, UserProfile};
use crate::rank::ranker::RANK_WINDOW;
use crate::rank::rerank::{Candidate, Effect};
use crate::recommend::als::AlsModel;
use crate::recommend::ivf::TopK;
use crate::store::{ItemMeta, Storage};
use recall::Recall;

use super::*;

/// A re-ranking candidate from an item's catalog facts (tags and attributes are not among
/// the facts kept in memory, so conditions on them match nothing here).
pub fn candidate_of(id: String, score: f64, meta: Option<&ItemMeta>) -> Candidate {
    let mut candidate = Candidate::new(id, score);
    if let Some(meta) = meta {
        candidate.category = meta.category.iter().map(|c| c.to_string()).collect();
        candidate.brand = meta.brand.as_ref().map(|b| b.to_string());
        candidate.price = meta.price.map(f64::from);
        candidate.available = meta.available;
    }
    candidate
}

/// Items scored by a factor model are searched over this many items at least (the rest of
/// the catalog is pruned by the inverted-file index).
pub const ALS_PROBE_ITEMS: usize = 8_000;

/// Top `k` items of a dense score vector, skipping those `skip` rejects; best first.
/// One pass with an admission threshold: most items cost one comparison.
pub(super) fn top_k(scores: &[f32], k: usize, mut skip: impl FnMut(u32) -> bool) -> Vec<(u32, f32)> {
    let mut top = TopK::new(k);
    for (i, &s) in scores.iter().enumerate() {
        if top.admits(s) && !skip(i as u32) {
            top.push(i as u32, s);
        }
    }
    top.into_sorted()
}

/// Answer a "for you" request: history → recall sources → fusion → the learned ranker
/// (and the feature rows of a logged page) → re-ranking rules → the page (reasons, cursor).
pub fn recommend(
    set: &ModelSet,
    store: &dyn Storage,
    config: &RecommendConfig,
    request: &RecommendRequest,
) -> Result<RecommendPage> {
    let mut history = user_history(set, store, &request.user, config.history_limit, request.exclude)?;
    if let Some(item) = &request.context_item {
        let view = set.manifest.weights.weight_of(crate::model::EventType::View, 0.0, 0);
        history.add_context(set, item.as_str(), if view > 0.0 { view } else { 1.0 });
    }
    let cursor = request.cursor.clone().unwrap_or_default();
    let shown: DigestSet<u32> = cursor.shown.iter().copied().collect();
    // Exclusions and earlier pages are checked first, without the store.
    // (`item_digest` is the low half of the id's xxh3_64.)
    let rejected = |i: u32| -> bool {
        let digest = set.item_digests[i as usize];
        history.excluded.contains(&digest) || shown.contains(&(digest as u32))
    };
    let recall =
        Recall::new(set, store, &history, &request.filter, &rejected, config.candidates_per_source.max(request.n * 3));
    let folds = recall::fold_ins(set, &history);
    let session = request.sessions.as_deref().map(|live| -> Box<dyn recall::RecallSource + '_> {
        Box::new(live_sessions::SessionKnnSource { live, user: &request.user, now_ms: request.now_ms })
    });
    let content = request.content.as_ref().map(|(live, text)| -> Box<dyn recall::RecallSource + '_> {
        Box::new(live_content::ContentSource { live, text: text.as_deref() })
    });
    let (sources, weights) = match request.surface {
        RecommendSurface::ForYou => {
            let friends = if takes_part(&config.source_weights, SourceKind::Friends) {
                Some(friends::FriendsSource::new(set, store, &request.user, request.now_ms)?)
            } else {
                None
            };
            let friends = friends
                .filter(|f| !f.is_empty())
                .map(|friends| -> Box<dyn recall::RecallSource + '_> { Box::new(friends) });
            // The stored profile counts only while the shopper's own history is short.
            let record = if history.pairs.len() < new_shoppers::NEW_SHOPPER_ITEMS {
                store.get_user(&request.user)?
            } else {
                None
            };
            let new_shopper = new_shoppers::new_shopper_sources(set, record.as_ref());
            let graph = set.graph.as_deref().filter(|_| takes_part(&config.source_weights, SourceKind::Graph)).map(
                |graph| -> Box<dyn recall::RecallSource + '_> {
                    Box::new(graph_walk::GraphSource::new(set, &history, graph))
                },
            );
            let live = recall::LiveSources { session, content, graph, friends, new_shopper };
            let weights =
                new_shoppers::history_weights(&config.source_weights, history.pairs.len(), config.history_ramp);
            (recall::recall_sources(set, &history, &folds, request.now_ms, live), weights)
        }
        // The session's next items first; popular items only fill the page below them.
        RecommendSurface::Session => (
            recall::session_surface_sources(session),
            Cow::Owned([(SourceKind::Session, 1.0), (SourceKind::Popularity, 1e-3)].into_iter().collect()),
        ),
    };
    // A source weighted 0 takes no part: it is not asked (an arm that turns one off
    // does not pay for it).
    let mut sources = sources;
    sources.retain(|source| takes_part(&weights, source.kind()));
    let mut lists = Vec::new();
    for source in &sources {
        lists.push((source.kind(), source.recall(&recall)?));
    }
    let mut ranked = fuse(&lists, &weights);
    // The first factor model's fold-in is the ranker's factor-score feature.
    let folded = set.models.iter().zip(&folds).find_map(|((_, source), fold)| match (source, fold) {
        (Source::Als { model, .. }, Some(vector)) => Some((model.as_ref(), vector.as_slice())),
        _ => None,
    });
    let Ranked { mut rows, scores: mut ranker_scores } = rank_stage(set, store, request, folded, &mut ranked)?;
    let candidates = request.exploration.as_ref().map(|_| ranked.clone());
    let mut effects = rules_stage(&recall, request, cursor.shown.len(), &mut ranked)?;
    let explored = match (&request.exploration, candidates) {
        (Some((exploration, slots)), Some(candidates)) => {
            let stage = exploration::ExploreStage { exploration, slots, recall: &recall, request };
            stage.run(candidates, &mut ranked, &effects)?
        }
        _ => Vec::new(),
    };

    let mut next = cursor.clone();
    let mut features = Vec::new();
    let items = ranked
        .into_iter()
        .map(|(i, score, mut reasons)| {
            explain_because(set, &history, i, &mut reasons);
            for reason in &mut reasons {
                if let Some(source) = sources.iter().find(|s| s.kind() == reason.source) {
                    source.explain(i, reason);
                }
            }
            let id = set.item_ids[i as usize].clone();
            next.shown.push(item_digest(&id));
            if let Some(row) = rows.remove(&i) {
                features.push((id.clone(), row));
            }
            Recommended {
                id,
                score,
                reasons,
                effects: effects.remove(&i).unwrap_or_default(),
                ranker: ranker_scores.remove(&i),
                ..Recommended::default()
            }
        })
        .collect::<Vec<_>>();
    let next_cursor = (!items.is_empty() && next.shown.len() <= MAX_CURSOR_ITEMS).then_some(next);
    Ok(RecommendPage { items, next_cursor, history_size: history.pairs.len(), features, explored })
}

/// Whether a source of `kind` takes part under these fusion weights (unlisted: weight 1).
fn takes_part(weights: &BTreeMap<SourceKind, f64>, kind: SourceKind) -> bool {
    weights.get(&kind).is_none_or(|&w| w != 0.0)
}

/// A candidate on its way through the stages: model item, score, reasons.
pub(super) type Scored = (u32, f64, Vec<Reason>);

/// Weighted reciprocal-rank fusion of the sources' lists (`fusion`), keeping each source's
/// reason; best first. A source weighted 0 takes no part.
pub(super) fn fuse(lists: &[(SourceKind, Vec<(u32, f32)>)], weights: &BTreeMap<SourceKind, f64>) -> Vec<Scored> {
    let mut fused: HashMap<u32, (f64, Vec<Reason>)> = HashMap::new();
    for (name, list) in lists {
        let weight = weights.get(name).copied().unwrap_or(1.0);
        if weight == 0.0 {
            continue;
        }
        for (rank, (i, s)) in list.iter().enumerate() {
            let entry = fused.entry(*i).or_insert_with(|| (0.0, Vec::new()));
            entry.0 += weight * fusion::reciprocal_rank(fusion::RRF_K, rank + 1);
            entry.1.push(Reason { source: *name, rank: rank + 1, score: *s, ..Reason::default() });
        }
    }
    let mut ranked: Vec<Scored> = fused.into_iter().map(|(i, (s, r))| (i, s, r)).collect();
    ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
}

/// What the ranking stage leaves for the page: each candidate's feature row (logged or
/// ranked pages) and the ranker's view of each item.
#[derive(Default)]
pub(super) struct Ranked {
    rows: HashMap<u32, Vec<f32>>,
    scores: HashMap<u32, RankerScore>,
}

/// The learned ranker reorders the blend's best candidates; a logged page (or a ranked
/// one) also gets each candidate's feature row.
pub(super) fn rank_stage(
    set: &ModelSet,
    store: &dyn Storage,
    request: &RecommendRequest,
    folded: Option<(&AlsModel, &[f32])>,
    ranked: &mut Vec<Scored>,
) -> Result<Ranked> {
    let mut rows: HashMap<u32, Vec<f32>> = HashMap::new();
    let mut ranker_scores: HashMap<u32, RankerScore> = HashMap::new();
    let ranker = set.ranker.as_ref().filter(|_| request.use_ranker);
    let Some(context) = set.features.as_ref().filter(|_| ranker.is_some() || request.log_features) else {
        return Ok(Ranked::default());
    };
    ranked.truncate(RANK_WINDOW.max(request.n * 3));
    let ids: Vec<&str> = ranked.iter().map(|(i, _, _)| set.item_ids[*i as usize].as_str()).collect();
    let metas = store.items_meta(&ids)?;
    let factors = match folded {
        Some((model, user_vector)) => scores_of_vector(set, model, user_vector, &ids),
        None => vec![None; ids.len()],
    };
    let interactions = store.user_interactions(&request.user, ProfileConfig::default().history_limit)?;
    let now = if request.now_ms > 0 { request.now_ms } else { interactions.first().map_or(0, |i| i.timestamp) };
    let item_ids: Vec<&str> = interactions.iter().map(|i| i.item.as_str()).collect();
    let history_metas = store.items_meta(&item_ids)?;
    let profile = UserProfile::build(&ProfileInputs {
        user: request.user.as_str(),
        interactions: &interactions,
        metas: &history_metas,
        items: &HashMap::new(),
        prices: &context.prices,
        weights: &set.manifest.weights,
        config: &ProfileConfig::default(),
        now,
    });
    let builder = FeatureBuilder {
        prices: &context.prices,
        stats: &context.stats,
        online: request.online.as_deref().map(|o| (o, SURFACE_RECOMMENDATIONS)),
    };
    for (position, ((i, score, reasons), meta)) in ranked.iter_mut().zip(&metas).enumerate() {
        let mut signals = RecallSignals::from_reasons(
            position as u32 + 1,
            *score,
            reasons.iter().map(|r| (r.source, r.rank, r.score)),
        );
        signals.factor_score = factors[position];
        let mut row = vec![0f32; FEATURE_COUNT];
        builder.row(&profile, &set.item_ids[*i as usize], meta.as_ref(), &signals, now, &mut row);
        if let Some(ranker) = ranker {
            let predicted = ranker.model.predict(&row);
            let contributions = if request.explain { ranker.top_contributions(&row, 5) } else { Vec::new() };
            let blend_rank = position + 1;
            ranker_scores.insert(*i, RankerScore { score: predicted, blend_rank, blend_score: *score, contributions });
            *score = predicted;
        }
        rows.insert(*i, row);
    }
    if ranker.is_some() {
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    }
    Ok(Ranked { rows, scores: ranker_scores })
}

/// The re-ranking rules arrange the page (the window above it, so that pins and diversity
/// have room); `offset` items were shown on earlier pages. A pinned item recall did not
/// propose joins when the models know it and it passes exclusions, cursor and filters.
/// Returns what the rules did to each item.
pub(super) fn rules_stage(
    recall: &Recall<'_>,
    request: &RecommendRequest,
    offset: usize,
    ranked: &mut Vec<Scored>,
) -> Result<HashMap<u32, Vec<Effect>>> {
    let mut effects: HashMap<u32, Vec<Effect>> = HashMap::new();
    if request.rules.is_empty() {
        ranked.truncate(request.n);
        return Ok(effects);
    }
    let set = recall.set;
    let rules = rules_for_page(&request.rules, offset);
    ranked.truncate(RERANK_WINDOW.max(request.n * 3));
    let window = std::mem::take(ranked);
    let page = super::rules::arrange(
        recall.store,
        window,
        |(i, _, _)| set.item_ids[*i as usize].clone(),
        |(_, score, _)| *score,
        &rules,
        request.n,
        |pin, floor| {
            let Some(&i) = set.item_index.get(&pin.item) else { return Ok(None) };
            if (recall.rejected)(i)
                || recall::take_accepted(set, recall.store, &request.filter, [(i, 0.0)], 1)?.is_empty()
            {
                return Ok(None);
            }
            Ok(Some((i, floor, vec![Reason { source: SourceKind::Pin, rank: pin.position, ..Reason::default() }])))
        },
    )?;
    for ((i, _, reasons), score, item_effects) in page {
        effects.insert(i, item_effects);
        ranked.push((i, score, reasons));
    }
    Ok(effects)
}

/// "Because you …": the history item most similar to item `i` (by item-kNN) is cited by
/// every reason but popularity's.
pub(super) fn explain_because(set: &ModelSet, history: &History, i: u32, reasons: &mut [Reason]) {
    let because = history
        .recent
        .iter()
        .map(|&j| (j, set.knn.similarity(j, i)))
        .filter(|(_, s)| *s > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((j, _)) = because {
        // Sources that do not start from the history cite nothing of it.
        let from_history = |r: &Reason| {
            !matches!(r.source, SourceKind::Popularity | SourceKind::Demographic | SourceKind::Preferences)
        };
        for reason in reasons.iter_mut().filter(|r| from_history(r)) {
            reason.because = Some(set.item_ids[j as usize].clone());
            reason.because_event = history.last_event.get(&j).copied();
        }
    }
}

#[cfg(test)]
mod stage_tests {
    use super::*;

    #[test]
    fn fusion_keeps_every_sources_reason_and_drops_a_source_weighted_zero() {
        let lists = vec![
            (SourceKind::Als, vec![(1, 0.9), (2, 0.8)]),
            (SourceKind::Itemknn, vec![(2, 3.0), (3, 1.0)]),
            (SourceKind::Popularity, vec![(4, 10.0)]),
        ];
        let weights: BTreeMap<SourceKind, f64> = [(SourceKind::Popularity, 0.0)].into_iter().collect();
        let fused = fuse(&lists, &weights);
        let order: Vec<u32> = fused.iter().map(|(i, _, _)| *i).collect();
        assert_eq!(order, vec![2, 1, 3], "agreement first; popularity weighted 0 takes no part");
        let reasons: Vec<(SourceKind, usize)> = fused[0].2.iter().map(|r| (r.source, r.rank)).collect();
        assert_eq!(reasons, vec![(SourceKind::Als, 2), (SourceKind::Itemknn, 1)]);
        assert!((fused[0].1 - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-12);
    }
}
