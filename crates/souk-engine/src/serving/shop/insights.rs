//! What a storefront and an admin console show besides pages: suggestions as a shopper
//! types, the most active shoppers with the categories they care about, and events over
//! time.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Shop;
use crate::error::Result;
use crate::ids::UserId;
use crate::input::Lang;
use crate::model::EventType;
use crate::search::suggest::{Suggester, Suggestion};
use crate::store::Storage;

/// How long a suggester is served before a rebuild starts (in the background: the stale
/// one answers meanwhile).
pub const SUGGESTER_TTL: Duration = Duration::from_secs(60);
/// A shopper's latest interactions read for their top categories.
const SHOPPER_HISTORY: usize = 200;
/// Top categories listed per shopper.
const SHOPPER_CATEGORIES: usize = 3;
/// Bucket widths an activity chart may use, in minutes (round numbers for axes).
const BUCKET_MINUTES: &[i64] = &[1, 5, 15, 60, 180, 360, 720, 1_440, 10_080, 43_200];

/// A suggester and when it was built.
type Built = Option<(Instant, Arc<Suggester>)>;

/// The suggester and when it was built; the flag is set while a rebuild runs.
#[derive(Default)]
pub(super) struct SuggesterCache {
    built: Arc<Mutex<Built>>,
    rebuilding: Arc<AtomicBool>,
}

/// One of the most active shoppers.
#[derive(Debug, Clone, PartialEq)]
pub struct Shopper {
    pub id: String,
    /// Their live events (every type).
    pub events: u64,
    /// Unix ms of their latest event.
    pub last_seen_ms: i64,
    /// Top-level categories of their latest interactions with the share of them, largest
    /// first.
    pub top_categories: Vec<(String, f64)>,
}

/// Events per time bucket and type.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    /// Unix ms where the first bucket starts (a multiple of `bucket_ms`).
    pub start_ms: i64,
    pub bucket_ms: i64,
    /// Per event type that occurs, one count per bucket.
    pub counts: BTreeMap<&'static str, Vec<u64>>,
}

impl Shop {
    /// Up to `n` suggestions for what a shopper typed (see [`Suggester::suggest`]), from a
    /// snapshot at most [`SUGGESTER_TTL`] old plus the time of a rebuild.
    pub fn suggest(&self, typed: &str, n: usize, lang: Lang) -> Result<Vec<Suggestion>> {
        let suggester = self.suggester()?;
        let lang = match lang {
            Lang::En => "en",
            Lang::Zh => "zh",
        };
        Ok(suggester.suggest(typed, n, lang))
    }

    fn suggester(&self) -> Result<Arc<Suggester>> {
        let cache = &self.suggester;
        let current = cache.built.lock().clone();
        // Only a build pays for the popularity map (not every keystroke).
        let build = {
            let (store, models) = (self.store.clone(), self.models());
            move || {
                let popularity = models.map(|set| super::learning::popularity_of(&set)).unwrap_or_default();
                Suggester::from_store(store.as_ref(), &|id| popularity.get(id).copied().unwrap_or(0.0))
            }
        };
        match current {
            Some((built, suggester)) => {
                if built.elapsed() >= SUGGESTER_TTL && !cache.rebuilding.swap(true, Ordering::AcqRel) {
                    let (slot, flag) = (cache.built.clone(), cache.rebuilding.clone());
                    std::thread::spawn(move || {
                        match build() {
                            Ok(fresh) => *slot.lock() = Some((Instant::now(), Arc::new(fresh))),
                            Err(e) => tracing::warn!(error = %e, "rebuilding the suggestions failed"),
                        }
                        flag.store(false, Ordering::Release);
                    });
                }
                Ok(suggester)
            }
            None => {
                // The first ask waits for the build (concurrent first asks may build twice).
                let fresh = Arc::new(build()?);
                *cache.built.lock() = Some((Instant::now(), fresh.clone()));
                Ok(fresh)
            }
        }
    }

    /// The `limit` shoppers with the most live events (ties by id), each with the top-level
    /// categories of their latest interactions. One pass over the in-memory index, then
    /// `limit` short history reads.
    pub fn shoppers(&self, limit: usize) -> Result<Vec<Shopper>> {
        let store = self.store();
        let mut by_user: HashMap<u32, (String, u64, i64)> = HashMap::new();
        store.scan_interactions(&mut |user, _, row| {
            let entry = by_user.entry(row.user).or_insert_with(|| (user.to_string(), 0, i64::MIN));
            entry.1 += 1;
            entry.2 = entry.2.max(row.timestamp);
        })?;
        let mut users: Vec<(String, u64, i64)> = by_user.into_values().collect();
        users.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        users.truncate(limit);
        users
            .into_iter()
            .map(|(id, events, last_seen_ms)| {
                let top_categories = top_categories(store, &id)?;
                Ok(Shopper { id, events, last_seen_ms, top_categories })
            })
            .collect()
    }

    /// Live events per type in about `buckets` buckets of a round width, from the first
    /// event to the last.
    pub fn activity(&self, buckets: usize) -> Result<Activity> {
        let store = self.store();
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        store.scan_interactions(&mut |_, _, row| {
            first = first.min(row.timestamp);
            last = last.max(row.timestamp);
        })?;
        if first > last {
            return Ok(Activity { start_ms: 0, bucket_ms: 60_000, counts: BTreeMap::new() });
        }
        let wanted = (last - first) / buckets.max(1) as i64 + 1;
        let bucket_ms = BUCKET_MINUTES.iter().map(|m| m * 60_000).find(|w| *w >= wanted).unwrap_or(wanted);
        let start_ms = first.div_euclid(bucket_ms) * bucket_ms;
        let slots = ((last - start_ms) / bucket_ms + 1) as usize;
        let mut counts: Vec<Vec<u64>> = vec![Vec::new(); EventType::ALL.len()];
        store.scan_interactions(&mut |_, _, row| {
            let series = &mut counts[row.event_type as usize];
            if series.is_empty() {
                series.resize(slots, 0);
            }
            let slot = ((row.timestamp - start_ms) / bucket_ms) as usize;
            if let Some(count) = series.get_mut(slot) {
                *count += 1;
            }
        })?;
        let counts = EventType::ALL
            .iter()
            .zip(counts)
            .filter(|(_, series)| !series.is_empty())
            .map(|(kind, series)| (kind.as_str(), series))
            .collect();
        Ok(Activity { start_ms, bucket_ms, counts })
    }
}

/// The top-level categories of a shopper's latest interactions, with their shares.
fn top_categories(store: &dyn Storage, id: &str) -> Result<Vec<(String, f64)>> {
    let Ok(user) = UserId::parse(id, "user") else {
        return Ok(Vec::new());
    };
    let history = store.user_interactions(&user, SHOPPER_HISTORY)?;
    let items: Vec<&str> = history.iter().map(|h| h.item.as_str()).collect();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut known = 0usize;
    for meta in store.items_meta(&items)?.into_iter().flatten() {
        if let Some(root) = meta.category.first() {
            *counts.entry(root.to_string()).or_default() += 1;
            known += 1;
        }
    }
    let mut top: Vec<(String, usize)> = counts.into_iter().collect();
    top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(top.into_iter().take(SHOPPER_CATEGORIES).map(|(name, count)| (name, count as f64 / known as f64)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{GenConfig, Generator};
    use crate::serving::ShopSettings;
    use crate::store::{EmbeddedStore, StoreConfig, StoreSink};

    fn shop(dir: &std::path::Path) -> Shop {
        let store = EmbeddedStore::open(dir, &StoreConfig::default()).unwrap();
        let generator = Generator::new(GenConfig { items: 120, users: 30, events: 2_000, seed: 5 }).unwrap();
        let mut sink = StoreSink::new(&store);
        generator.run(&mut sink, &mut |_| {}).unwrap();
        sink.finish().unwrap();
        Shop::new(Arc::new(store), ShopSettings::default())
    }

    #[test]
    fn shoppers_are_the_most_active_with_their_categories_and_activity_counts_every_event() {
        let dir = tempfile::tempdir().unwrap();
        let shop = shop(dir.path());
        let store = shop.store();
        let shoppers = shop.shoppers(5).unwrap();
        assert_eq!(shoppers.len(), 5);
        assert!(shoppers.windows(2).all(|w| w[0].events >= w[1].events));
        // Counts agree with the user's own event list.
        let top = &shoppers[0];
        let events = store.user_events(&UserId::parse(&top.id, "user").unwrap(), 100_000).unwrap();
        assert_eq!(top.events, events.len() as u64);
        assert_eq!(top.last_seen_ms, events.iter().map(|e| e.timestamp).max().unwrap());
        let shares: f64 = top.top_categories.iter().map(|c| c.1).sum();
        assert!(!top.top_categories.is_empty() && shares <= 1.0 + 1e-9, "{top:?}");
        assert!(top.top_categories.windows(2).all(|w| w[0].1 >= w[1].1));

        let activity = shop.activity(30).unwrap();
        let stats = store.stats().unwrap();
        for (kind, series) in &activity.counts {
            assert_eq!(series.iter().sum::<u64>(), stats.events_by_type[*kind], "{kind}");
        }
        let slots = activity.counts.values().next().unwrap().len();
        assert!((2..=60).contains(&slots), "{slots} buckets of {} ms", activity.bucket_ms);
        assert_eq!(activity.start_ms % activity.bucket_ms, 0);
    }

    #[test]
    fn suggestions_come_from_titles_in_both_languages() {
        let dir = tempfile::tempdir().unwrap();
        let shop = shop(dir.path());
        let mut item = None;
        shop.store()
            .scan_item_meta(&mut |id, meta| {
                if item.is_none() && meta.title_zh.is_some() {
                    item = Some((id.to_string(), meta.title.clone().unwrap(), meta.title_zh.clone().unwrap()));
                }
            })
            .unwrap();
        let (id, title, title_zh) = item.expect("the generator writes Chinese titles");
        let found = shop.suggest(&title, 20, Lang::En).unwrap();
        assert!(found.iter().any(|s| s.item.as_deref() == Some(id.as_str())), "{title}: {found:?}");
        let found = shop.suggest(&title_zh, 20, Lang::Zh).unwrap();
        assert!(found.iter().any(|s| s.item.as_deref() == Some(id.as_str()) && s.lang == "zh"), "{found:?}");
    }
}
