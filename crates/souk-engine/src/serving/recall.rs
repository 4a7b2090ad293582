//! Recall sources of a "for you" page. Each proposes candidates from the shopper's live
//! history — best first, already past the exclusions, the cursor and the catalog filters —
//! under a [`SourceKind`] that its reasons carry and its fusion weight is looked up by. A new
//! source is a new type implementing [`RecallSource`] (and a new `SourceKind`), listed in
//! [`recall_sources`]; the page pipeline does not change.

use std::cell::RefCell;
use std::collections::HashMap;

use super::{top_k, History, ItemFilter, ModelSet, Reason, Source, SourceKind, ALS_PROBE_ITEMS, SESSION_GAP_MS};
use crate::error::Result;
use crate::hashing::IdMap;
use crate::store::Storage;

/// What every recall source sees of one request.
pub struct Recall<'a> {
    pub set: &'a ModelSet,
    pub store: &'a dyn Storage,
    pub history: &'a History,
    pub filter: &'a ItemFilter,
    /// Excluded or already shown (checked without the store).
    pub rejected: &'a dyn Fn(u32) -> bool,
    /// Candidates each source should return.
    pub want: usize,
    /// The catalog's verdict on each item already checked for this request: sources
    /// proposing the same items ask the store once.
    checked: RefCell<IdMap<u32, bool>>,
}

impl<'a> Recall<'a> {
    /// What the sources of one request see (no catalog verdicts yet).
    pub fn new(
        set: &'a ModelSet,
        store: &'a dyn Storage,
        history: &'a History,
        filter: &'a ItemFilter,
        rejected: &'a dyn Fn(u32) -> bool,
        want: usize,
    ) -> Self {
        Self { set, store, history, filter, rejected, want, checked: RefCell::default() }
    }

    /// The first `want` of `ranked` (best first) whose items pass the filter, checked
    /// against the catalog in batches (one store lock per batch).
    pub fn accepted(&self, ranked: impl IntoIterator<Item = (u32, f32)>) -> Result<Vec<(u32, f32)>> {
        accepted_with(self.set, self.store, self.filter, ranked, self.want, &mut self.checked.borrow_mut())
    }

    /// Over-fetch before the catalog check; fetch again, wider, if filters rejected too many.
    /// The fetch itself passes over the rejected (exclusions, earlier pages), so the spares
    /// are for the catalog filters only: an eighth more, and eight (a deeper search costs
    /// more than its share: a larger top-k scores more rows before its bounds prune).
    pub(super) fn fetched_then_accepted(
        &self,
        fetch: &dyn Fn(usize) -> Result<Vec<(u32, f32)>>,
    ) -> Result<Vec<(u32, f32)>> {
        self.fetched_then_accepted_from(self.want + self.want / 8 + 8, fetch)
    }

    /// The same, asking `first` candidates first (a fetch that brings spares of its own
    /// asks for what it wants).
    pub(super) fn fetched_then_accepted_from(
        &self,
        first: usize,
        fetch: &dyn Fn(usize) -> Result<Vec<(u32, f32)>>,
    ) -> Result<Vec<(u32, f32)>> {
        let mut wanted = first.max(1);
        loop {
            let ranked = fetch(wanted)?;
            let complete = ranked.len() < wanted;
            let accepted = self.accepted(ranked)?;
            if accepted.len() >= self.want || complete || wanted >= self.set.item_ids.len() {
                return Ok(accepted);
            }
            wanted *= 8;
        }
    }
}

/// Candidates of one source, checked against the catalog in batches: the first `want` of
/// `ranked` (best first) whose items pass the filter.
pub fn take_accepted(
    set: &ModelSet,
    store: &dyn Storage,
    filter: &ItemFilter,
    ranked: impl IntoIterator<Item = (u32, f32)>,
    want: usize,
) -> Result<Vec<(u32, f32)>> {
    accepted_with(set, store, filter, ranked, want, &mut IdMap::default())
}

/// [`take_accepted`], asking the store only about items `checked` holds no verdict for
/// (and keeping the new verdicts there).
fn accepted_with(
    set: &ModelSet,
    store: &dyn Storage,
    filter: &ItemFilter,
    ranked: impl IntoIterator<Item = (u32, f32)>,
    want: usize,
    checked: &mut IdMap<u32, bool>,
) -> Result<Vec<(u32, f32)>> {
    const BATCH: usize = 128;
    let mut out = Vec::with_capacity(want);
    // Candidates in order, and those of them without a verdict yet (asked about together).
    let mut batch: Vec<(u32, f32)> = Vec::with_capacity(BATCH);
    let mut unknown: Vec<u32> = Vec::with_capacity(BATCH);
    let flush = |batch: &mut Vec<(u32, f32)>,
                 unknown: &mut Vec<u32>,
                 checked: &mut IdMap<u32, bool>,
                 out: &mut Vec<(u32, f32)>|
     -> Result<()> {
        if !unknown.is_empty() {
            let ids: Vec<&str> = unknown.iter().map(|&i| set.item_ids[i as usize].as_str()).collect();
            let verdicts = store.items_match(&ids, &|meta| filter.accepts(meta))?;
            checked.extend(unknown.drain(..).zip(verdicts));
        }
        for candidate in batch.drain(..) {
            if out.len() < want && checked.get(&candidate.0).copied().unwrap_or(false) {
                out.push(candidate);
            }
        }
        Ok(())
    };
    for candidate in ranked {
        // (An item twice in one batch is asked about twice, with the same answer.)
        if !checked.contains_key(&candidate.0) {
            unknown.push(candidate.0);
        }
        batch.push(candidate);
        if batch.len() == BATCH {
            flush(&mut batch, &mut unknown, checked, &mut out)?;
            if out.len() >= want {
                return Ok(out);
            }
        }
    }
    flush(&mut batch, &mut unknown, checked, &mut out)?;
    Ok(out)
}

/// One recall source.
pub trait RecallSource {
    /// What its reasons say proposed an item; its fusion weight is looked up by it.
    fn kind(&self) -> SourceKind;
    /// Candidates, best first, that pass exclusions, cursor and filters.
    fn recall(&self, recall: &Recall<'_>) -> Result<Vec<(u32, f32)>>;
    /// Fill what this source knows of why it proposed `item` into `reason` (whose
    /// `source` is this source's kind): the friend who bought it, for instance.
    fn explain(&self, item: u32, reason: &mut Reason) {
        let _ = (item, reason);
    }
}

/// The sources of a request that live outside the model set, built per request.
#[derive(Default)]
pub struct LiveSources<'a> {
    /// The live session-kNN.
    pub session: Option<Box<dyn RecallSource + 'a>>,
    pub content: Option<Box<dyn RecallSource + 'a>>,
    /// The item graph's walk from the recent history (when the set has a graph).
    pub graph: Option<Box<dyn RecallSource + 'a>>,
    pub friends: Option<Box<dyn RecallSource + 'a>>,
    /// The sources for a shopper with little history (see [`super::new_shoppers`]).
    pub new_shopper: Vec<Box<dyn RecallSource + 'a>>,
}

/// The sources of a request, in fusion order: every collaborative model of the set,
/// item-kNN, `content` and `graph` (when given) on the recent history (when there is a history), the session source (when the
/// session is still open at `now_ms`: `session` — the live session-kNN — when given, else
/// item-kNN on the session when the history holds more than it), the new-shopper sources
/// (when given), `friends` (when given, with or without a history of the shopper's own),
/// then popularity. `folds` holds each model's fold-in of the history (see [`fold_ins`]).
pub fn recall_sources<'a>(
    set: &'a ModelSet,
    history: &History,
    folds: &'a [Option<Vec<f32>>],
    now_ms: i64,
    live: LiveSources<'a>,
) -> Vec<Box<dyn RecallSource + 'a>> {
    let mut sources: Vec<Box<dyn RecallSource + 'a>> = Vec::new();
    if !history.pairs.is_empty() {
        for ((name, source), fold) in set.models.iter().zip(folds) {
            let Some(kind) = SourceKind::of_model(name) else { continue };
            sources.push(Box::new(Collaborative { kind, source, user_vector: fold.as_deref() }));
        }
        sources.push(Box::new(RecentNeighbours));
        sources.extend(live.content);
        sources.extend(live.graph);
        if session_is_open(history, now_ms) {
            match live.session {
                Some(session) => sources.push(session),
                None if history.session.len() < history.recent.len() => sources.push(Box::new(SessionNeighbours)),
                None => {}
            }
        }
    }
    sources.extend(live.new_shopper);
    sources.extend(live.friends);
    sources.push(Box::new(Popular));
    sources
}

/// The sources of a "next in this session" page: the session source (`session`, else
/// item-kNN on the latest session), then popularity.
pub fn session_surface_sources<'a>(session: Option<Box<dyn RecallSource + 'a>>) -> Vec<Box<dyn RecallSource + 'a>> {
    vec![session.unwrap_or_else(|| Box::new(SessionNeighbours)), Box::new(Popular)]
}

/// Whether the latest session is still going on at `now_ms` (its newest interaction less
/// than [`SESSION_GAP_MS`] ago). Without a clock (`now_ms` 0, as offline protocols ask)
/// there is no current session.
pub fn session_is_open(history: &History, now_ms: i64) -> bool {
    !history.session.is_empty()
        && now_ms > 0
        && history.newest_ms.is_some_and(|newest| (0..=SESSION_GAP_MS).contains(&(now_ms - newest)))
}

/// Each model's fold-in of the live history (factor models only; `None` for the others
/// and without a history). Always the live history: a trained user vector would ignore
/// the events that arrived since training.
pub fn fold_ins(set: &ModelSet, history: &History) -> Vec<Option<Vec<f32>>> {
    set.models
        .iter()
        .map(|(_, source)| match source {
            // Fold-in ignores items outside the model (fresh items).
            Source::Als { model, .. } if !history.pairs.is_empty() => Some(model.fold_in(&history.pairs)),
            _ => None,
        })
        .collect()
}

/// A collaborative model: factor models search their inverted-file index with the folded
/// user vector; dense models score every item from the history.
struct Collaborative<'a> {
    kind: SourceKind,
    source: &'a Source,
    user_vector: Option<&'a [f32]>,
}

impl RecallSource for Collaborative<'_> {
    fn kind(&self) -> SourceKind {
        self.kind
    }

    fn recall(&self, recall: &Recall<'_>) -> Result<Vec<(u32, f32)>> {
        match self.source {
            Source::Als { model, index } => {
                let Some(user_vector) = self.user_vector else { return Ok(Vec::new()) };
                let set = recall.set;
                recall.fetched_then_accepted(&|k| {
                    let mut ranked = index
                        .search(&model.item_factors, user_vector, k, ALS_PROBE_ITEMS.max(k), |i| (recall.rejected)(i));
                    // Fresh items, by their mapped factors.
                    if set.item_ids.len() > set.trained_items {
                        ranked.extend(set.fresh_scores(user_vector, k, &|i| (recall.rejected)(i)));
                        ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                        ranked.truncate(k);
                    }
                    Ok(ranked)
                })
            }
            Source::Dense(model) => {
                // Dense models know the trained items only.
                let set = recall.set;
                let mut scores = vec![0f32; set.trained_items];
                let pairs: Vec<(u32, f32)> =
                    recall.history.pairs.iter().copied().filter(|(i, _)| set.is_trained(*i)).collect();
                model.score_live(recall.history.user_row, &pairs, &mut scores);
                recall.fetched_then_accepted(&|k| Ok(top_k(&scores, k, |i| (recall.rejected)(i))))
            }
        }
    }
}

/// Item-kNN on the 20 most recent items ("because you viewed X"), accumulated sparsely
/// over their neighbours only.
struct RecentNeighbours;

/// How many of the most recent history items item-kNN starts from.
const RECENT_ITEMS: usize = 20;

impl RecallSource for RecentNeighbours {
    fn kind(&self) -> SourceKind {
        SourceKind::Itemknn
    }

    fn recall(&self, recall: &Recall<'_>) -> Result<Vec<(u32, f32)>> {
        let (set, history) = (recall.set, recall.history);
        let mut knn_scores: HashMap<u32, f32> = HashMap::new();
        for &j in history.recent.iter().take(RECENT_ITEMS) {
            let weight = history.pairs.binary_search_by_key(&j, |(i, _)| *i).map_or(0.0, |k| history.pairs[k].1);
            let weight = if set.knn.params.binary { 1.0 } else { weight };
            let (neighbours, sims) = set.knn.neighbours_of(j);
            for (i, s) in neighbours.iter().zip(sims) {
                *knn_scores.entry(*i).or_default() += weight * s;
            }
        }
        let mut ranked: Vec<(u32, f32)> =
            knn_scores.into_iter().filter(|(i, s)| *s > 0.0 && !(recall.rejected)(*i)).collect();
        ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        recall.accepted(ranked)
    }
}

/// Item-kNN on the latest session alone ("more like what you are looking at now"): a
/// shopper with a long history whose session turns to something new sees it on the first
/// page, which the whole-history sources (dominated by the old interest) would not show.
/// Each session item's neighbours count by the item's recency (1 / (1 + position)).
struct SessionNeighbours;

/// How many of the session's items it starts from.
const SESSION_ITEMS: usize = 10;

impl RecallSource for SessionNeighbours {
    fn kind(&self) -> SourceKind {
        SourceKind::Session
    }

    fn recall(&self, recall: &Recall<'_>) -> Result<Vec<(u32, f32)>> {
        let set = recall.set;
        let mut scores: HashMap<u32, f32> = HashMap::new();
        for (position, &j) in recall.history.session.iter().take(SESSION_ITEMS).enumerate() {
            let recency = 1.0 / (1.0 + position as f32);
            let (neighbours, sims) = set.knn.neighbours_of(j);
            for (i, s) in neighbours.iter().zip(sims) {
                *scores.entry(*i).or_default() += recency * s;
            }
        }
        let mut ranked: Vec<(u32, f32)> =
            scores.into_iter().filter(|(i, s)| *s > 0.0 && !(recall.rejected)(*i)).collect();
        ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        recall.accepted(ranked)
    }
}

/// The most popular items (what a cold user sees first).
struct Popular;

impl RecallSource for Popular {
    fn kind(&self) -> SourceKind {
        SourceKind::Popularity
    }

    fn recall(&self, recall: &Recall<'_>) -> Result<Vec<(u32, f32)>> {
        let set = recall.set;
        recall.accepted(
            set.popularity_order.iter().filter(|i| !(recall.rejected)(**i)).map(|&i| (i, set.popularity[i as usize])),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::GenConfig;
    use crate::ids::UserId;
    use crate::serving::{user_history, Exclusions};
    use crate::store::EmbeddedStore;

    fn shop(dir: &std::path::Path) -> (EmbeddedStore, ModelSet) {
        crate::serving::test_shop::trained_shop(dir, GenConfig { items: 200, users: 60, events: 4_000, seed: 5 })
    }

    #[test]
    fn a_session_is_open_until_a_pause_longer_than_the_gap() {
        let history = History { session: vec![3, 1], newest_ms: Some(1_000_000), ..History::default() };
        assert!(session_is_open(&history, 1_000_000));
        assert!(session_is_open(&history, 1_000_000 + SESSION_GAP_MS));
        assert!(!session_is_open(&history, 1_000_000 + SESSION_GAP_MS + 1));
        assert!(!session_is_open(&history, 0), "no clock, no current session");
        assert!(!session_is_open(&history, 999_000), "a clock before the session");
        assert!(!session_is_open(&History { newest_ms: Some(1_000_000), ..History::default() }, 1_000_000));
    }

    #[test]
    fn the_catalog_verdicts_kept_for_a_request_are_the_stores() {
        let dir = tempfile::tempdir().unwrap();
        let (store, set) = shop(dir.path());
        let history =
            user_history(&set, &store, &UserId::parse("u000004", "user").unwrap(), 200, Exclusions::default()).unwrap();
        let rejected = |_: u32| false;
        let brand = {
            let ids: Vec<&str> = set.item_ids.iter().map(String::as_str).collect();
            store.items_meta(&ids).unwrap().into_iter().flatten().find_map(|m| m.brand).unwrap().to_string()
        };
        // Most items are of other brands: most verdicts are "no".
        let filter = ItemFilter { brands: vec![brand], ..ItemFilter::default() };
        let recall = Recall::new(&set, &store, &history, &filter, &rejected, 10);
        let all: Vec<(u32, f32)> = (0..set.item_ids.len() as u32).map(|i| (i, i as f32)).collect();
        let first = recall.accepted(all.iter().copied()).unwrap();
        assert_eq!(first, take_accepted(&set, &store, &filter, all.iter().copied(), 10).unwrap());
        assert!(!first.is_empty());
        let checked = recall.checked.borrow().clone();
        assert!(checked.len() >= 128, "a whole batch was asked about ({})", checked.len());
        assert!(checked.values().any(|ok| !ok) && checked.values().any(|ok| *ok));
        for (&i, &ok) in &checked {
            let id = set.item_ids[i as usize].as_str();
            assert_eq!(ok, store.items_match(&[id], &|meta| filter.accepts(meta)).unwrap()[0], "{id}");
        }
        // Another source's list, partly over the items already judged: the same answer as
        // asking the store afresh.
        let reversed: Vec<(u32, f32)> = all.iter().rev().copied().collect();
        let second = recall.accepted(reversed.iter().copied()).unwrap();
        assert_eq!(second, take_accepted(&set, &store, &filter, reversed, 10).unwrap());
    }

    #[test]
    fn every_source_returns_accepted_unrejected_candidates_best_first() {
        let dir = tempfile::tempdir().unwrap();
        let (store, set) = shop(dir.path());
        let history =
            user_history(&set, &store, &UserId::parse("u000004", "user").unwrap(), 200, Exclusions::default()).unwrap();
        assert!(!history.pairs.is_empty());
        // Reject every third item; accept only available items of one brand.
        let rejected = |i: u32| i.is_multiple_of(3);
        let brand = {
            let ids: Vec<&str> = set.item_ids.iter().map(String::as_str).collect();
            store.items_meta(&ids).unwrap().into_iter().flatten().find_map(|m| m.brand).unwrap().to_string()
        };
        let filter = ItemFilter { brands: vec![brand.clone()], available_only: true, ..ItemFilter::default() };
        let recall = Recall::new(&set, &store, &history, &filter, &rejected, 5);
        let folds = fold_ins(&set, &history);
        let live = crate::serving::live_content::LiveContent::default();
        let content = Box::new(crate::serving::live_content::ContentSource { live: &live, text: None });
        let graph = Box::new(crate::serving::graph_walk::GraphSource::new(&set, &history, set.graph.as_ref().unwrap()));
        let sources = recall_sources(
            &set,
            &history,
            &folds,
            0,
            LiveSources { content: Some(content), graph: Some(graph), ..LiveSources::default() },
        );
        let kinds: Vec<SourceKind> = sources.iter().map(|s| s.kind()).collect();
        // The generated shop has social edges, but the social model is opt-in
        // (`social_with_edges`): ALS alone.
        assert_eq!(
            kinds,
            vec![SourceKind::Als, SourceKind::Itemknn, SourceKind::Content, SourceKind::Graph, SourceKind::Popularity]
        );
        for source in &sources {
            let list = source.recall(&recall).unwrap();
            assert!(list.len() <= 5, "{}", source.kind());
            for (i, _) in &list {
                assert!(!rejected(*i), "{} proposed a rejected item", source.kind());
                let meta = store.items_meta(&[set.item_ids[*i as usize].as_str()]).unwrap().pop().flatten().unwrap();
                assert_eq!(meta.brand.as_deref(), Some(brand.as_str()), "{}", source.kind());
            }
            assert!(list.windows(2).all(|w| w[0].1 >= w[1].1), "{} best first: {list:?}", source.kind());
            if source.kind() == SourceKind::Content {
                assert!(!list.is_empty(), "the content source proposed nothing");
            }
        }
        // The session source joins while the latest session is open.
        let newest = history.newest_ms.unwrap();
        let graph = Box::new(crate::serving::graph_walk::GraphSource::new(&set, &history, set.graph.as_ref().unwrap()));
        let live = LiveSources { graph: Some(graph), ..LiveSources::default() };
        let open = recall_sources(&set, &history, &folds, newest + 60_000, live);
        let kinds: Vec<SourceKind> = open.iter().map(|s| s.kind()).collect();
        if history.session.len() < history.recent.len() {
            assert_eq!(
                kinds,
                vec![
                    SourceKind::Als,
                    SourceKind::Itemknn,
                    SourceKind::Graph,
                    SourceKind::Session,
                    SourceKind::Popularity
                ]
            );
            for (i, _) in open[3].recall(&recall).unwrap() {
                assert!(!rejected(i));
                let meta = store.items_meta(&[set.item_ids[i as usize].as_str()]).unwrap().pop().flatten().unwrap();
                assert_eq!(meta.brand.as_deref(), Some(brand.as_str()));
            }
        }
        // A cold user gets popularity alone.
        let cold =
            user_history(&set, &store, &UserId::parse("nobody-yet", "user").unwrap(), 200, Exclusions::default())
                .unwrap();
        let folds = fold_ins(&set, &cold);
        let kinds: Vec<SourceKind> =
            recall_sources(&set, &cold, &folds, 0, LiveSources::default()).iter().map(|s| s.kind()).collect();
        assert_eq!(kinds, vec![SourceKind::Popularity]);
    }
}
