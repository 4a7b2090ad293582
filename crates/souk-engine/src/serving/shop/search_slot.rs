//! The shop's search index, and opening it later when it could not open at start.
//!
//! The search index is derived data whose open may write (a rebuild, tantivy's meta and
//! lock files). On a full disk the shop starts without it; search answers 503
//! `search_unavailable` and each search tries the open again, at most once per retry
//! interval and one at a time, so the index comes back by itself once space returns — no
//! restart. The open reconciles the index with the catalog, so catalog writes made
//! meanwhile are not lost to it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use parking_lot::Mutex;

use crate::error::Result;
use crate::search::SearchIndex;

/// Opens the search index (the same open as at start).
pub type SearchOpener = Box<dyn Fn() -> Result<Arc<SearchIndex>> + Send + Sync>;

struct Pending {
    open: SearchOpener,
    retry: Duration,
    /// When the open was last tried; held while a try runs.
    tried: Mutex<Option<Instant>>,
}

#[derive(Default)]
pub(super) struct SearchSlot {
    index: ArcSwapOption<SearchIndex>,
    pending: Option<Pending>,
}

impl SearchSlot {
    pub(super) fn set(&mut self, index: Arc<SearchIndex>) {
        self.index.store(Some(index));
        self.pending = None;
    }

    pub(super) fn set_opener(&mut self, open: SearchOpener, retry: Duration) {
        self.pending = Some(Pending { open, retry, tried: Mutex::new(None) });
    }

    /// The open index, if there is one now.
    pub(super) fn current(&self) -> Option<Arc<SearchIndex>> {
        self.index.load_full()
    }

    /// The index, opening it first when it is still pending and a try is due; `opened`
    /// sees an index that has just opened.
    pub(super) fn get(&self, opened: &dyn Fn(&SearchIndex)) -> Option<Arc<SearchIndex>> {
        if let Some(index) = self.index.load_full() {
            return Some(index);
        }
        let pending = self.pending.as_ref()?;
        let mut tried = pending.tried.try_lock()?;
        if let Some(index) = self.index.load_full() {
            return Some(index);
        }
        if tried.is_some_and(|at| at.elapsed() < pending.retry) {
            return None;
        }
        *tried = Some(Instant::now());
        match (pending.open)() {
            Ok(index) => {
                opened(&index);
                self.index.store(Some(index.clone()));
                tracing::info!("the search index opened: search serves again");
                Some(index)
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_s = pending.retry.as_secs(), "the search index still cannot open");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::error::Error;
    use crate::ids::ItemId;
    use crate::model::Item;
    use crate::search::SearchConfig;
    use crate::serving::shop::SearchAsk;
    use crate::serving::{Shop, ShopSettings};
    use crate::store::{DataDir, EmbeddedStore, Storage, StoreConfig};

    fn item(id: &str, title: &str) -> Item {
        Item::new(ItemId::parse(id, "id").unwrap(), title)
    }

    #[test]
    fn a_search_index_that_could_not_open_opens_at_a_later_search_once_space_returns() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Storage> = Arc::new(EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap());
        store.put_items(vec![item("mug", "Blue mug")]).unwrap();
        let disk_full = Arc::new(AtomicBool::new(true));
        let opener: SearchOpener = {
            let (store, disk_full) = (store.clone(), disk_full.clone());
            let path = DataDir::new(dir.path()).search();
            Box::new(move || {
                if disk_full.load(Ordering::Acquire) {
                    return Err(Error::Io(std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left")));
                }
                SearchIndex::open(&path, SearchConfig::default(), store.as_ref())
            })
        };
        let shop = Shop::new(store, ShopSettings::default()).with_search_opener(opener, None, Duration::ZERO);
        for _ in 0..2 {
            let Err(Error::Coded { code, .. }) = shop.search(SearchAsk::new("blue")) else {
                panic!("search answers while the index cannot open")
            };
            assert_eq!(code, "search_unavailable");
        }
        assert!(!shop.has_search());
        // A catalog write while the index is away is not lost to it.
        shop.put_items(vec![item("cup", "Blue cup")]).unwrap();
        disk_full.store(false, Ordering::Release);
        let served = shop.search(SearchAsk::new("blue")).expect("the index opens at the next search");
        let mut found: Vec<&str> = served.response.hits.iter().map(|hit| hit.id.as_str()).collect();
        found.sort();
        assert_eq!(found, ["cup", "mug"]);
        assert!(shop.has_search());
    }
}
