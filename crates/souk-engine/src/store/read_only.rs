//! What a data directory holds, read while another process (a running server) has it open:
//! `souk stats` beside `souk serve`. Nothing is locked or written: the catalog through a
//! read-only SQLite connection (WAL lets it read beside the writer), the event log by
//! scanning its segments as `souk verify` does. A frame the server is appending at that
//! moment is not counted yet; the figures are those of one instant, at the cost of one
//! pass over the log.

use std::path::Path;

use super::catalog::{Catalog, CatalogTable};
use super::index::EventIndex;
use super::{verify, DataDir, Stats, StorageStats};
use crate::error::Result;

/// [`super::Storage::stats`] of the embedded store in `dir`, without opening it.
pub fn stats(dir: &Path) -> Result<Stats> {
    let data = DataDir::new(dir);
    let catalog = Catalog::open_read_only(&data.catalog())?;
    let mut index = EventIndex::from_catalog(&catalog)?;
    let events_dir = data.events();
    verify::check_log(&events_dir, |found| {
        // Positions serve reads of stored events; counting needs none.
        index.apply_record(found.record, 0);
        Ok(())
    })?;
    let mut event_log_bytes = 0;
    if events_dir.exists() {
        for entry in fs_err::read_dir(&events_dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with("seg-") {
                event_log_bytes += entry.metadata()?.len();
            }
        }
    }
    Ok(Stats {
        items: index.known_items(),
        users: index.known_users(),
        events: index.live_events,
        events_by_type: index.events_by_type_names(),
        social_edges: catalog.count(CatalogTable::Follows)?,
        catalog_items: catalog.count(CatalogTable::Items)?,
        items_without_record: index.items_without_record(),
        catalog_users: catalog.count(CatalogTable::Users)?,
        storage: StorageStats { backend: "embedded".into(), event_log_bytes, catalog_bytes: catalog.size_bytes() },
    })
}

#[cfg(test)]
mod tests {
    use super::super::{EmbeddedStore, Storage, StoreConfig};
    use crate::ids::{EventId, ItemId, UserId};
    use crate::model::{Event, EventType, Item};

    #[test]
    fn the_stats_of_an_open_store_read_beside_it_equal_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
        let events: Vec<Event> = (0..300)
            .map(|n| {
                Event::new(
                    EventId::parse(format!("e{n}"), "id").unwrap(),
                    if n % 3 == 0 { EventType::Purchase } else { EventType::View },
                    UserId::parse(format!("u{}", n % 7), "user").unwrap(),
                    Some(ItemId::parse(format!("i{}", n % 13), "item").unwrap()),
                    i64::from(n),
                )
            })
            .collect();
        store.append_events(events).unwrap();
        store.put_items(vec![Item::new(ItemId::parse("i1", "id").unwrap(), "Mug")]).unwrap();
        store.erase_user(&UserId::parse("u3", "u").unwrap()).unwrap();
        // The store stays open (its lock held), as a server's would.
        let read = super::stats(dir.path()).unwrap();
        let own = store.stats().unwrap();
        assert_eq!(read, own);
        assert_eq!(read.events, 300 - 43, "u3's 43 events are erased");
        assert!(EmbeddedStore::open(dir.path(), &StoreConfig::default()).is_err(), "still locked");
    }
}
