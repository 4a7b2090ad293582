//! A user's live history in the model set's item space, and what other stages read of
//! it: the preference vector and the factor model's opinion of candidates.

use std::collections::HashMap;

use crate::error::Result;
use crate::hashing::DigestSet;
use crate::ids::UserId;
use crate::model::EventType;
use crate::recommend::als::AlsModel;
use crate::store::Storage;

use super::*;

/// Whether an interaction of this type puts its item on the exclusion list.
pub(super) fn excludes(exclude: Exclusions, event_type: EventType) -> bool {
    match event_type {
        EventType::Purchase => exclude.purchased || exclude.seen,
        EventType::Dislike => exclude.disliked || exclude.seen,
        EventType::Search | EventType::Impression => false,
        _ => exclude.seen,
    }
}

/// The user's history in the model's item space, newest first, with the exclusion set.
#[derive(Default)]
pub struct History {
    /// (model item, summed weight), positive sums only.
    pub pairs: Vec<(u32, f32)>,
    /// Most recent event per model item (for "because you …").
    pub last_event: HashMap<u32, EventType>,
    /// Recency order of model items (newest first).
    pub recent: Vec<u32>,
    /// The model items of the latest session (newest first): the interactions back from
    /// the newest one until a pause longer than [`SESSION_GAP_MS`].
    pub session: Vec<u32>,
    /// When the newest interaction happened (Unix ms).
    pub newest_ms: Option<i64>,
    /// Digests of the ids of items the request excludes.
    pub excluded: DigestSet<u64>,
    /// The user's row in the set's training data, when they were seen in training (the
    /// social model finds their friends by it).
    pub user_row: Option<u32>,
}

impl History {
    /// `item` — the one on the shopper's screen — as the newest interaction of the history,
    /// a view worth `weight` (not stored): the history sources start from it (a visitor
    /// without history gets its neighbours), and it is excluded. An item the set does not
    /// know is only excluded.
    pub fn add_context(&mut self, set: &ModelSet, item: &str, weight: f32) {
        self.excluded.insert(xxhash_rust::xxh3::xxh3_64(item.as_bytes()));
        let Some(&i) = set.item_index.get(item) else { return };
        match self.pairs.binary_search_by_key(&i, |(j, _)| *j) {
            Ok(k) => self.pairs[k].1 += weight,
            Err(k) => self.pairs.insert(k, (i, weight)),
        }
        self.recent.retain(|&j| j != i);
        self.recent.insert(0, i);
        if !self.session.is_empty() {
            self.session.retain(|&j| j != i);
            self.session.insert(0, i);
        }
        self.last_event.insert(i, EventType::View);
    }
}

/// A pause longer than this between two interactions starts a new session.
pub const SESSION_GAP_MS: i64 = 30 * 60 * 1000;

pub(super) fn user_history(
    set: &ModelSet,
    store: &dyn Storage,
    user: &UserId,
    limit: usize,
    exclude: Exclusions,
) -> Result<History> {
    let weights = &set.manifest.weights;
    let mut sums: HashMap<u32, f32> = HashMap::new();
    let mut last_event = HashMap::new();
    let mut recent = Vec::new();
    let mut session = Vec::new();
    let mut session_open = true;
    let mut previous: Option<i64> = None;
    let mut newest_ms = None;
    let mut excluded = DigestSet::default();
    for interaction in store.user_interactions(user, limit)? {
        if previous.is_some_and(|p| p - interaction.timestamp > SESSION_GAP_MS) {
            session_open = false;
        }
        previous = Some(interaction.timestamp);
        newest_ms = newest_ms.or(Some(interaction.timestamp));
        let digest = xxhash_rust::xxh3::xxh3_64(interaction.item.as_bytes());
        if excludes(exclude, interaction.event_type) {
            excluded.insert(digest);
        }
        let Some(&i) = set.item_index.get(&interaction.item) else {
            continue;
        };
        let w = weights.weight_of(interaction.event_type, interaction.value, interaction.dwell_ms);
        *sums.entry(i).or_default() += w;
        if let std::collections::hash_map::Entry::Vacant(e) = last_event.entry(i) {
            e.insert(interaction.event_type);
            recent.push(i);
            if session_open {
                session.push(i);
            }
        }
    }
    let mut pairs: Vec<(u32, f32)> = sums.into_iter().filter(|(_, w)| *w > 0.0).collect();
    pairs.sort_unstable_by_key(|(i, _)| *i);
    recent.retain(|i| pairs.binary_search_by_key(i, |(j, _)| *j).is_ok());
    session.retain(|i| pairs.binary_search_by_key(i, |(j, _)| *j).is_ok());
    let user_row = set.user_index.get(user.as_str()).copied();
    Ok(History { pairs, last_event, recent, session, newest_ms, excluded, user_row })
}

/// The user's preference vector: their live history folded into the first factor model of
/// the set (model name and factors), or `None` without such a model or history.
pub fn preference_vector(
    set: &ModelSet,
    store: &dyn Storage,
    user: &UserId,
    history_limit: usize,
) -> Result<Option<(String, Vec<f32>)>> {
    let history = user_history(set, store, user, history_limit, Exclusions::default())?;
    if history.pairs.is_empty() {
        return Ok(None);
    }
    Ok(set.models.iter().find_map(|(name, source)| match source {
        Source::Als { model, .. } => Some((name.clone(), model.fold_in(&history.pairs))),
        Source::Dense(_) => None,
    }))
}

/// The first factor model's score of each item for the user (their live history folded
/// in): the collaborative opinion of candidates another stage recalled. `None` for items
/// the model does not know, and for every item without a factor model or history.
pub fn factor_scores(
    set: &ModelSet,
    store: &dyn Storage,
    user: &UserId,
    history_limit: usize,
    items: &[&str],
) -> Result<Vec<Option<f32>>> {
    let Some(model) = first_factor_model(set) else {
        return Ok(vec![None; items.len()]);
    };
    let history = user_history(set, store, user, history_limit, Exclusions::default())?;
    if history.pairs.is_empty() {
        return Ok(vec![None; items.len()]);
    }
    Ok(scores_of_vector(set, model, &model.fold_in(&history.pairs), items))
}

/// The first factor model of the set, whose fold-in is the user's preference vector.
pub(super) fn first_factor_model(set: &ModelSet) -> Option<&AlsModel> {
    set.models.iter().find_map(|(_, source)| match source {
        Source::Als { model, .. } => Some(model.as_ref()),
        Source::Dense(_) => None,
    })
}

/// Each item's factors against a folded-in user vector (`None` for unknown items).
pub(super) fn scores_of_vector(
    set: &ModelSet,
    model: &AlsModel,
    user_vector: &[f32],
    items: &[&str],
) -> Vec<Option<f32>> {
    let f = model.params.factors;
    items
        .iter()
        .map(|id| {
            let &i = set.item_index.get(*id)?;
            let factors = match set.is_trained(i) {
                true => model.item_factors.get(i as usize * f..(i as usize + 1) * f)?,
                false => set.factors_of(i)?,
            };
            Some(factors.iter().zip(user_vector).map(|(a, b)| a * b).sum())
        })
        .collect()
}
