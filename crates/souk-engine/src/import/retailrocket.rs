//! Retailrocket e-commerce events, in either of its two public forms:
//! - the original `events.csv` (header `timestamp,visitorid,event,itemid,transactionid`,
//!   time in Unix milliseconds, events `view`, `addtocart`, `transaction`);
//! - the processed files of the caserec collection (`view_ecommerce.dat`,
//!   `add_to_cart_ecommerce.dat`, `purchase_ecommerce.dat`: tab-separated, header
//!   `visitorid itemid event`, one file per event type, no time). Their event type comes from
//!   the file name; having no time, line numbers stand for milliseconds since the epoch
//!   (which keeps file order, as the RecBole import does), so time-based protocols say
//!   nothing of these files.
//!
//! Events map to `view`, `add_to_cart` and `purchase`; ids are
//! `rr:{visitor}:{item}:{event}:{milliseconds}` (`…:L{line}` in the processed files), stable
//! across re-imports. The data carries no titles (all values are hashed), so each distinct
//! item is emitted once, before its first event, titled with its own id.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::{cell, dataset_event, file_name, unknown_file, Encoding, Format, Importer};
use crate::error::{Error, Result, ValidationError};
use crate::ids::ItemId;
use crate::model::{Event, EventType, Item};

pub(super) fn in_directory(name: &str) -> bool {
    name == "events.csv" || kind_of_file(name).is_some()
}

/// The event type of a processed file, by its name.
fn kind_of_file(name: &str) -> Option<EventType> {
    let stem = name.strip_suffix(".dat")?;
    if stem.starts_with("view") {
        Some(EventType::View)
    } else if stem.starts_with("add_to_cart") {
        Some(EventType::AddToCart)
    } else if stem.starts_with("purchase") {
        Some(EventType::Purchase)
    } else {
        None
    }
}

fn event_type(name: &str) -> Result<EventType, ValidationError> {
    match name {
        "view" => Ok(EventType::View),
        "addtocart" => Ok(EventType::AddToCart),
        "transaction" => Ok(EventType::Purchase),
        other => Err(ValidationError::new(
            "invalid_event_type",
            "event",
            format!("expected view, addtocart or transaction, found {other:?}"),
        )),
    }
}

fn item_of(id: &ItemId) -> Item {
    Item::new(id.clone(), id.as_str())
}

/// A row of `events.csv`.
fn parse_event_row(line: &str) -> Result<Option<Event>, ValidationError> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let cells: Vec<&str> = line.split(',').collect();
    let ms = cell(&cells, 0, "timestamp")?;
    let visitor = cell(&cells, 1, "visitorid")?;
    let event = cell(&cells, 2, "event")?;
    let item = cell(&cells, 3, "itemid")?;
    let timestamp: i64 = ms.parse().map_err(|_| {
        ValidationError::new("invalid_timestamp", "timestamp", format!("expected Unix milliseconds, found {ms:?}"))
    })?;
    dataset_event(format!("rr:{visitor}:{item}:{event}:{ms}"), event_type(event)?, visitor, item, None, timestamp)
        .map(Some)
}

/// A row of a processed file of events of `kind`, at `line`.
fn parse_processed_row(kind: EventType, line_number: u64, line: &str) -> Result<Option<Event>, ValidationError> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let cells: Vec<&str> = line.split('\t').collect();
    let visitor = cell(&cells, 0, "visitorid")?;
    let item = cell(&cells, 1, "itemid")?;
    let id = format!("rr:{visitor}:{item}:{}:L{line_number}", kind.as_str());
    dataset_event(id, kind, visitor, item, None, line_number as i64).map(Some)
}

pub(super) fn run(importer: &mut Importer<'_>, files: &[PathBuf]) -> Result<()> {
    // Exact ids, not hashes: a collision here would silently drop an item.
    let mut emitted: HashSet<ItemId> = HashSet::new();
    for path in files {
        let name = file_name(path);
        let emit =
            |importer: &mut Importer<'_>, _: u64, event: Event| importer.emit_with_item(&mut emitted, event, item_of);
        if name.ends_with(".csv") {
            check_header(path, "timestamp,visitorid,event,itemid")?;
            importer.scan_lines(path, true, Encoding::Utf8, |_, line| parse_event_row(line), emit)?;
        } else {
            let Some(kind) = kind_of_file(&name) else {
                return Err(unknown_file(
                    path,
                    Format::Retailrocket,
                    "events.csv or the processed view_*.dat, add_to_cart_*.dat, purchase_*.dat",
                ));
            };
            check_header(path, "visitorid\titemid")?;
            importer.scan_lines(path, true, Encoding::Utf8, |n, line| parse_processed_row(kind, n, line), emit)?;
        }
    }
    Ok(())
}

/// Refuse a file whose first line does not start with `expected` (another dataset, or the
/// header cut off): its rows would otherwise be read with the wrong columns.
fn check_header(path: &Path, expected: &str) -> Result<()> {
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(fs_err::File::open(path)?), &mut first)?;
    if first.trim_start_matches('\u{feff}').starts_with(expected) {
        return Ok(());
    }
    Err(Error::Parse {
        path: path.to_path_buf(),
        line: 1,
        message: format!("expected the header {expected:?}…, found {:?}", first.trim_end()),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{fixture, import_to_vec, Format};
    use crate::error::Error;
    use crate::model::{EventType, Record};

    fn events(records: &[Record]) -> Vec<(&str, &str, &str, EventType, i64)> {
        records
            .iter()
            .filter_map(|r| match r {
                Record::Event(e) => {
                    Some((e.id.as_str(), e.user.as_str(), e.item.as_ref().unwrap().as_str(), e.event_type, e.timestamp))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_original_events_file_maps_event_names_and_keeps_its_time() {
        let (report, records) =
            import_to_vec(Format::Retailrocket, &[fixture("retailrocket/events.csv")], true).unwrap();
        assert_eq!((report.events, report.items, report.distinct_users), (5, 3, 2));
        let Record::Item(first_item) = &records[0] else { panic!("an item precedes its first event") };
        assert_eq!((first_item.id.as_str(), first_item.title.as_str()), ("355908", "355908"));
        let events = events(&records);
        assert_eq!(
            events[0],
            ("rr:257597:355908:view:1433221332117", "257597", "355908", EventType::View, 1_433_221_332_117)
        );
        let types: Vec<EventType> = events.iter().map(|e| e.3).collect();
        assert_eq!(
            types,
            vec![EventType::View, EventType::View, EventType::AddToCart, EventType::Purchase, EventType::View]
        );
    }

    #[test]
    fn processed_files_take_their_type_from_the_name_and_their_order_from_the_line() {
        let dir = fixture("retailrocket/processed");
        let (report, records) = import_to_vec(Format::Retailrocket, &[dir], true).unwrap();
        assert_eq!((report.events, report.items, report.distinct_users), (7, 4, 3));
        let events = events(&records);
        // Files in name order: add_to_cart, purchase, view.
        assert_eq!(events[0], ("rr:1:2:add_to_cart:L2", "1", "2", EventType::AddToCart, 2));
        assert_eq!(events.iter().filter(|e| e.3 == EventType::Purchase).count(), 1);
        assert_eq!(events.iter().filter(|e| e.3 == EventType::View).count(), 5);
        assert!(events.windows(2).all(|w| w[0].0 != w[1].0), "ids are distinct");
        // Re-importing gives the same ids (no duplicate events in a store).
        let (_, again) = import_to_vec(Format::Retailrocket, &[fixture("retailrocket/processed")], true).unwrap();
        let ids =
            |events: &[(&str, &str, &str, EventType, i64)]| events.iter().map(|e| e.0.to_string()).collect::<Vec<_>>();
        let again = self::events(&again);
        assert_eq!(ids(&events), ids(&again));
    }

    #[test]
    fn unknown_events_are_bad_lines_and_a_foreign_header_is_refused() {
        let err = import_to_vec(Format::Retailrocket, &[fixture("retailrocket/bad/events.csv")], true).unwrap_err();
        let Error::Parse { line, message, .. } = err else { panic!("expected a parse error") };
        assert_eq!(line, 3);
        assert!(message.contains("`event`"), "{message}");
        let (report, _) =
            import_to_vec(Format::Retailrocket, &[fixture("retailrocket/bad/events.csv")], false).unwrap();
        assert_eq!((report.events, report.skipped), (1, 2));
        let err =
            import_to_vec(Format::Retailrocket, &[fixture("retailrocket/bad/view_header.dat")], true).unwrap_err();
        assert!(matches!(err, Error::Parse { line: 1, .. }), "{err:?}");
        // A file named explicitly that is none of the format's.
        let err = import_to_vec(Format::Retailrocket, &[fixture("lastfm/hetrec/tags.dat")], true).unwrap_err();
        assert!(matches!(&err, Error::Parse { message, .. } if message.contains("retailrocket")), "{err:?}");
    }
}
