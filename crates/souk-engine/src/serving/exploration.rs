//! Exploration slots on logged "for you" pages: the stage that puts new and little-shown
//! items where shoppers can tell the shop what they are worth, and the state it learns
//! from.
//!
//! - **Pool.** The page's own candidates past the page (fused recall, in order, after the
//!   re-ranking rules' filters), shown fewer than `pool_shows` times in exploration slots,
//!   at most `pool` of them: new and long-tail items that recall already finds relevant
//!   to this shopper.
//! - **Picks.** [`crate::rank::explore::thompson`] over their click posteriors (category
//!   prior), one pick per slot (`[rank.explore] slots`, or the pipeline's `explore_slots`), each with its propensity at its
//!   slot and of being on the page at all, both estimated from `explore_simulations`
//!   repeated draws. Pages with a pinned item are not explored (a pin owns its position).
//! - **Learning.** A pick counts as shown when its page is served and as clicked when a
//!   click arrives with the page's request id (pages are remembered for the last
//!   [`PENDING_PAGES`] explored pages). The counts are saved beside the feature log every
//!   [`SAVE_EVERY`] explored pages and when the shop closes, and loaded at open.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use parking_lot::{Mutex, RwLock};

use crate::error::Result;
use crate::model::{Event, EventType};
use crate::rank::rerank::{Effect, Rules};

use super::recall::Recall;
use super::{Reason, RecommendRequest, Scored, SourceKind};
use crate::rank::explore::{self, BanditCounts, ExploreSettings, Prior};

/// Explored pages remembered for their clicks.
pub const PENDING_PAGES: usize = 50_000;
/// Explored pages between saves of the counts.
pub const SAVE_EVERY: u64 = 1_000;

/// One pick of an explored page, as the page stage hands it back.
#[derive(Debug, Clone, PartialEq)]
pub struct Explored {
    /// Position on the page.
    pub position: usize,
    pub item: String,
    pub category: Option<String>,
    /// Probability that the policy put it at this position.
    pub propensity: f64,
    /// Probability that the policy put it on the page at all.
    pub on_page: f64,
    /// Its posterior mean click rate when it was picked.
    pub expected_rate: f64,
}

#[derive(Default)]
struct Pending {
    pages: HashMap<String, Vec<(String, Option<String>)>>,
    order: VecDeque<String>,
}

/// The exploration state of a shop: click counts of explored items, the explored pages
/// awaiting clicks, and where the counts are saved.
pub struct Exploration {
    settings: ExploreSettings,
    counts: RwLock<BanditCounts>,
    pending: Mutex<Pending>,
    served: Mutex<u64>,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for Exploration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exploration")
            .field("settings", &self.settings)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Exploration {
    /// Where the counts are saved, in the folder of the feature log.
    pub fn path_in_log_dir(dir: &Path) -> PathBuf {
        dir.join("exploration.json")
    }

    /// The state saved at `path` (empty when there is none).
    pub fn open(settings: ExploreSettings, path: Option<PathBuf>) -> Result<Self> {
        let counts = match &path {
            Some(p) if p.exists() => serde_json::from_slice(&fs_err::read(p)?).map_err(|e| crate::Error::Corrupt {
                path: p.clone(),
                message: format!("unreadable exploration counts: {e}"),
            })?,
            _ => BanditCounts::default(),
        };
        Ok(Self {
            settings,
            counts: RwLock::new(counts),
            pending: Mutex::new(Pending::default()),
            served: Mutex::new(0),
            path,
        })
    }

    pub fn settings(&self) -> &ExploreSettings {
        &self.settings
    }

    /// Whether `item` may still be explored.
    pub fn in_pool(&self, item: &str) -> bool {
        self.counts.read().item(item).shows < self.settings.pool_shows
    }

    /// Picks from `pool` (id, category) for the slots of a page of `page_size`; each with
    /// the slot it goes to (the k-th pick to the k-th slot).
    pub fn choose(
        &self,
        pool: &[(String, Option<String>)],
        slots: &[usize],
        page_size: usize,
        rng: &mut impl rand::Rng,
    ) -> Vec<Explored> {
        let slots: Vec<usize> = slots.iter().copied().filter(|s| *s < page_size).collect();
        if pool.is_empty() || slots.is_empty() {
            return Vec::new();
        }
        let prior = Prior::Category { strength: self.settings.prior_strength };
        let posteriors: Vec<(f64, f64)> = {
            let counts = self.counts.read();
            pool.iter().map(|(id, category)| counts.posterior(id, category.as_deref(), prior)).collect()
        };
        explore::thompson(&posteriors, slots.len(), self.settings.simulations, rng)
            .into_iter()
            .zip(slots)
            .map(|(pick, position)| {
                let (a, b) = posteriors[pick.candidate];
                let (item, category) = pool[pick.candidate].clone();
                Explored {
                    position,
                    item,
                    category,
                    propensity: pick.propensity,
                    on_page: pick.on_page,
                    expected_rate: a / (a + b),
                }
            })
            .collect()
    }

    /// An explored page was served: its picks count as shown and await their clicks.
    pub fn served(&self, request_id: &str, picks: &[Explored]) {
        if picks.is_empty() {
            return;
        }
        {
            let mut counts = self.counts.write();
            for pick in picks {
                counts.show(&pick.item, pick.category.as_deref());
            }
        }
        {
            let mut pending = self.pending.lock();
            let entry = picks.iter().map(|p| (p.item.clone(), p.category.clone())).collect();
            if pending.pages.insert(request_id.to_string(), entry).is_none() {
                pending.order.push_back(request_id.to_string());
            }
            while pending.order.len() > PENDING_PAGES {
                if let Some(old) = pending.order.pop_front() {
                    pending.pages.remove(&old);
                }
            }
        }
        let due = {
            let mut served = self.served.lock();
            *served += 1;
            served.is_multiple_of(SAVE_EVERY)
        };
        if due {
            if let Err(e) = self.save() {
                tracing::warn!(error = %e, "could not save the exploration counts; they are kept in memory");
            }
        }
    }

    /// Count the clicks of `events` on explored picks (each pick's first click).
    pub fn observe(&self, events: &[Event]) {
        let mut clicked = Vec::new();
        {
            let mut pending = self.pending.lock();
            for event in events.iter().filter(|e| e.event_type == EventType::Click) {
                let (Some(request), Some(item)) = (&event.request_id, &event.item) else { continue };
                let Some(picks) = pending.pages.get_mut(request) else { continue };
                if let Some(at) = picks.iter().position(|(id, _)| id == item.as_str()) {
                    clicked.push(picks.swap_remove(at));
                }
            }
        }
        if !clicked.is_empty() {
            let mut counts = self.counts.write();
            for (item, category) in clicked {
                counts.click(&item, category.as_deref());
            }
        }
    }

    /// Shows and clicks of `item` in exploration slots.
    pub fn counts_of(&self, item: &str) -> explore::ClickCounts {
        self.counts.read().item(item)
    }

    /// Write the counts (atomically: a temporary file renamed over the old one).
    pub fn save(&self) -> Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        let bytes = serde_json::to_vec(&*self.counts.read()).map_err(|e| crate::Error::Internal(e.to_string()))?;
        if let Some(dir) = path.parent() {
            fs_err::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        fs_err::write(&tmp, bytes)?;
        fs_err::rename(&tmp, path)?;
        Ok(())
    }
}

/// The exploration stage of a "for you" page.
pub(super) struct ExploreStage<'a> {
    pub exploration: &'a Exploration,
    /// Page positions of the slots, ascending.
    pub slots: &'a [usize],
    pub recall: &'a Recall<'a>,
    pub request: &'a RecommendRequest,
}

impl ExploreStage<'_> {
    /// After the rules arranged `page`, picks from `candidates` (the ranked candidates
    /// before the rules, best first) take the exploration slots; the page keeps its size
    /// (its last ranked items make room). Returns the picks, by position.
    pub fn run(
        &self,
        candidates: Vec<Scored>,
        page: &mut Vec<Scored>,
        effects: &HashMap<u32, Vec<Effect>>,
    ) -> Result<Vec<Explored>> {
        explore_stage(self, candidates, page, effects)
    }
}

fn explore_stage(
    stage: &ExploreStage<'_>,
    candidates: Vec<Scored>,
    page: &mut Vec<Scored>,
    effects: &HashMap<u32, Vec<Effect>>,
) -> Result<Vec<Explored>> {
    let ExploreStage { exploration, slots, recall, request } = *stage;
    let settings = exploration.settings();
    let pinned = effects.values().flatten().any(|e| matches!(e, Effect::Pin { .. }));
    if pinned || page.is_empty() || slots.first().is_none_or(|s| *s >= page.len()) {
        return Ok(Vec::new());
    }
    let set = recall.set;
    let on_page: std::collections::HashSet<u32> = page.iter().map(|(i, _, _)| *i).collect();
    let mut pool: Vec<Scored> = candidates
        .into_iter()
        .filter(|(i, _, _)| !on_page.contains(i) && exploration.in_pool(&set.item_ids[*i as usize]))
        .take(settings.pool)
        .collect();
    if !request.rules.is_empty() {
        // The rules' filters hold for picks too; their pins are the page's.
        let rules = Rules { pin: Vec::new(), ..request.rules.clone() };
        let size = pool.len();
        pool = super::rules::arrange(
            recall.store,
            pool,
            |(i, _, _)| set.item_ids[*i as usize].clone(),
            |(_, score, _)| *score,
            &rules,
            size,
            |_, _| Ok(None),
        )?
        .into_iter()
        .map(|(entry, _, _)| entry)
        .collect();
    }
    if pool.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = pool.iter().map(|(i, _, _)| set.item_ids[*i as usize].as_str()).collect();
    let metas = recall.store.items_meta(&ids)?;
    let described: Vec<(String, Option<String>)> = ids
        .iter()
        .zip(&metas)
        .map(|(id, meta)| {
            let category = meta.as_ref().and_then(|m| m.category.first()).map(|c| c.to_string());
            (id.to_string(), category)
        })
        .collect();
    let picks = exploration.choose(&described, slots, page.len(), &mut rand::thread_rng());
    if picks.is_empty() {
        return Ok(picks);
    }
    let by_id: HashMap<&str, usize> = ids.iter().enumerate().map(|(k, id)| (*id, k)).collect();
    let mut entries: Vec<Option<Scored>> = pool.into_iter().map(Some).collect();
    let size = page.len();
    page.truncate(size - picks.len());
    let chosen: Vec<Scored> = picks
        .iter()
        .filter_map(|pick| {
            let (i, score, mut reasons) = entries[*by_id.get(pick.item.as_str())?].take()?;
            reasons.insert(
                0,
                Reason {
                    source: SourceKind::Explore,
                    rank: pick.position + 1,
                    score: pick.expected_rate as f32,
                    ..Reason::default()
                },
            );
            Some((i, score, reasons))
        })
        .collect();
    let positions: Vec<usize> = picks.iter().map(|p| p.position).collect();
    let (arranged, _) = crate::rank::explore::place(std::mem::take(page), chosen, &positions);
    *page = arranged;
    Ok(picks)
}

impl Drop for Exploration {
    fn drop(&mut self) {
        if let Err(e) = self.save() {
            tracing::warn!(error = %e, "could not save the exploration counts at close");
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::ids::{EventId, ItemId, UserId};

    fn click(request: &str, item: &str) -> Event {
        let mut e = Event::new(
            EventId::generate(),
            EventType::Click,
            UserId::parse("u1", "user").unwrap(),
            Some(ItemId::parse(item, "item").unwrap()),
            1,
        );
        e.request_id = Some(request.to_string());
        e
    }

    #[test]
    fn picks_are_counted_when_served_and_clicked_and_the_counts_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = Exploration::path_in_log_dir(dir.path());
        let settings = ExploreSettings { slots: vec![1, 3], ..ExploreSettings::default() };
        let exploration = Exploration::open(settings.clone(), Some(path.clone())).unwrap();
        let pool: Vec<(String, Option<String>)> =
            (0..5).map(|i| (format!("i{i}"), Some("shoes".to_string()))).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let picks = exploration.choose(&pool, &[1, 3], 10, &mut rng);
        assert_eq!(picks.iter().map(|p| p.position).collect::<Vec<_>>(), vec![1, 3]);
        assert_ne!(picks[0].item, picks[1].item);
        for pick in &picks {
            assert!(pick.propensity > 0.0 && pick.propensity <= pick.on_page && pick.on_page <= 1.0, "{pick:?}");
        }
        exploration.served("r-1", &picks);
        // A click on a pick counts once; a click on another item or page does not.
        exploration.observe(&[
            click("r-1", &picks[0].item),
            click("r-1", &picks[0].item),
            click("r-2", &picks[1].item),
        ]);
        assert_eq!(exploration.counts_of(&picks[0].item), explore::ClickCounts { shows: 1.0, clicks: 1.0 });
        assert_eq!(exploration.counts_of(&picks[1].item), explore::ClickCounts { shows: 1.0, clicks: 0.0 });
        drop(exploration);
        let reopened = Exploration::open(settings.clone(), Some(path.clone())).unwrap();
        assert_eq!(reopened.counts_of(&picks[0].item), explore::ClickCounts { shows: 1.0, clicks: 1.0 });
        // A damaged file is refused with its path.
        drop(reopened);
        std::fs::write(&path, b"{not json").unwrap();
        let error = Exploration::open(settings, Some(path)).err().unwrap();
        assert!(error.to_string().contains("exploration.json"), "{error}");
    }

    #[test]
    fn a_logged_page_explores_a_slot_and_its_impression_carries_every_propensity() {
        use crate::gen::{GenConfig, Generator};
        use crate::rank::ranker::{FeatureLog, RankConfig};
        use crate::serving::shop::RecommendAsk;
        use crate::serving::{Shop, ShopSettings};
        use crate::store::artifacts::ArtifactStore;
        use crate::store::{EmbeddedStore, StoreConfig, StoreSink};

        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        let generator = Generator::new(GenConfig { items: 150, users: 40, events: 3_000, seed: 8 }).unwrap();
        let mut sink = StoreSink::new(&store);
        generator.run(&mut sink, &mut |_| {}).unwrap();
        sink.finish().unwrap();
        let explore = ExploreSettings { slots: vec![2], pool_shows: 1_000.0, ..ExploreSettings::default() };
        let ranking = RankConfig { log_share: 1.0, explore_share: 0.0, explore, ..RankConfig::default() };
        let store: std::sync::Arc<dyn crate::store::Storage> = std::sync::Arc::new(store);
        let shop = Shop::new(store.clone(), ShopSettings { ranking, ..ShopSettings::default() })
            .with_artifacts(ArtifactStore::new(dir.path()))
            .with_page_log(FeatureLog::in_data_dir(dir.path()));
        shop.train().unwrap();
        let user = UserId::parse("u000003", "user").unwrap();
        let page = shop.recommend(RecommendAsk::new(user.clone(), 8)).unwrap();
        assert_eq!(page.items.len(), 8);
        let explored: Vec<usize> = (0..8).filter(|&k| page.items[k].reasons[0].source == SourceKind::Explore).collect();
        assert_eq!(explored, vec![2], "{:?}", page.items.iter().map(|i| &i.reasons).collect::<Vec<_>>());
        let pick = page.items[2].id.clone();
        // The impression (written in the background) carries one propensity per item: the
        // ranked items are certain, the pick is drawn.
        let impression = (0..2_000)
            .find_map(|_| {
                let events = store.user_events(&user, 50).unwrap();
                let found = events
                    .into_iter()
                    .find(|e| e.event_type == EventType::Impression && e.request_id.as_ref() == Some(&page.request_id));
                if found.is_none() {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                found
            })
            .expect("the impression is stored");
        assert_eq!(impression.items.len(), 8);
        assert_eq!(impression.propensities.len(), 8);
        for (k, p) in impression.propensities.iter().enumerate() {
            if k == 2 {
                assert!(*p > 0.0 && *p <= 1.0, "{p}");
            } else {
                assert_eq!(*p, 1.0, "position {k}");
            }
        }
        // A click on the pick teaches the exploration state.
        let exploration = shop.exploration().unwrap().clone();
        assert_eq!(exploration.counts_of(&pick), explore::ClickCounts { shows: 1.0, clicks: 0.0 });
        let mut clicked = click(&page.request_id, &pick);
        clicked.user = user;
        shop.ingest(vec![clicked]).unwrap();
        assert_eq!(exploration.counts_of(&pick), explore::ClickCounts { shows: 1.0, clicks: 1.0 });
    }

    #[test]
    fn an_item_leaves_the_pool_after_enough_shows() {
        let settings = ExploreSettings { slots: vec![0], pool_shows: 3.0, ..ExploreSettings::default() };
        let exploration = Exploration::open(settings, None).unwrap();
        let pool = vec![("a".to_string(), None)];
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for round in 0..3 {
            assert!(exploration.in_pool("a"), "{round}");
            let picks = exploration.choose(&pool, &[0], 10, &mut rng);
            assert_eq!(picks.len(), 1);
            assert_eq!(picks[0].propensity, 1.0, "the only candidate is certain");
            exploration.served(&format!("r-{round}"), &picks);
        }
        assert!(!exploration.in_pool("a"));
        assert!(ExploreSettings { slots: vec![3, 2], ..ExploreSettings::default() }.problems().len() == 1);
        assert!(ExploreSettings::default().problems().is_empty());
    }
}
