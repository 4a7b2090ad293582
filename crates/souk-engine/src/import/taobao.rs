//! Taobao UserBehavior (Tianchi dataset 649): CSV without a header,
//! `user,item,category,behavior,timestamp` with behavior `pv`, `cart`, `fav` or `buy` and
//! the time in Unix seconds.
//!
//! Behaviors map to `view`, `add_to_cart`, `favorite` and `purchase`; event ids are
//! `tb:{user}:{item}:{behavior}:{seconds}`. The dataset has no product titles, so each
//! distinct item is emitted once, before its first event, as an item titled with its own id
//! whose category is its category id: enough for category-aware recommendation, and
//! obviously not a real title in the UI.

use std::collections::HashSet;
use std::path::PathBuf;

use super::{cell, dataset_event, seconds_to_ms, Encoding, Importer};
use crate::error::{Result, ValidationError};
use crate::ids::ItemId;
use crate::model::{Event, EventType, Item};

pub(super) fn in_directory(name: &str) -> bool {
    name.ends_with(".csv")
}

fn event_type(behavior: &str) -> Result<EventType, ValidationError> {
    match behavior {
        "pv" => Ok(EventType::View),
        "cart" => Ok(EventType::AddToCart),
        "fav" => Ok(EventType::Favorite),
        "buy" => Ok(EventType::Purchase),
        other => Err(ValidationError::new(
            "invalid_event_type",
            "behavior",
            format!("expected pv, cart, fav or buy, found {other:?}"),
        )),
    }
}

fn parse_row(line: &str) -> Result<Option<(Event, Item)>, ValidationError> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let cells: Vec<&str> = line.split(',').collect();
    let user = cell(&cells, 0, "user")?;
    let item = cell(&cells, 1, "item")?;
    let category = cell(&cells, 2, "category")?;
    let behavior = cell(&cells, 3, "behavior")?;
    let seconds = cell(&cells, 4, "timestamp")?;
    let event = dataset_event(
        format!("tb:{user}:{item}:{behavior}:{seconds}"),
        event_type(behavior)?,
        user,
        item,
        None,
        seconds_to_ms(seconds, "timestamp")?,
    )?;
    if category.is_empty() {
        return Err(ValidationError::new("invalid_category", "category", "expected a category id, found \"\""));
    }
    let mut item = Item::new(ItemId::parse(item, "item")?, item);
    item.category = vec![category.to_string()];
    Ok(Some((event, item)))
}

pub(super) fn run(importer: &mut Importer<'_>, files: &[PathBuf]) -> Result<()> {
    // Exact ids, not hashes: a collision here would silently drop an item.
    let mut emitted_items: HashSet<ItemId> = HashSet::new();
    for path in files {
        importer.scan_lines(
            path,
            false,
            Encoding::Utf8,
            |_, line| parse_row(line),
            |importer, _, (event, item)| importer.emit_with_item(&mut emitted_items, event, |_| item),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{fixture, import_to_vec, Format};
    use crate::error::Error;
    use crate::model::{EventType, Record};

    #[test]
    fn behaviors_become_events_and_items_are_emitted_once() {
        let (report, records) = import_to_vec(Format::Taobao, &[fixture("taobao/UserBehavior.csv")], true).unwrap();
        assert_eq!((report.events, report.items, report.users), (8, 5, 0));
        assert_eq!((report.distinct_users, report.distinct_items), (4, 5));
        let Record::Item(first_item) = &records[0] else { panic!("an item precedes its first event") };
        assert_eq!(first_item.id.as_str(), "1715");
        assert_eq!(first_item.title, "1715");
        assert_eq!(first_item.category, vec!["1464116"]);
        let Record::Event(first) = &records[1] else { panic!("expected an event") };
        assert_eq!(first.id.as_str(), "tb:543462:1715:pv:1511658000");
        assert_eq!(first.timestamp, 1_511_658_000_000);
        let types: Vec<EventType> =
            records.iter().filter_map(|r| if let Record::Event(e) = r { Some(e.event_type) } else { None }).collect();
        assert_eq!(types.iter().filter(|t| **t == EventType::View).count(), 5);
        assert!(types.contains(&EventType::AddToCart));
        assert!(types.contains(&EventType::Favorite));
        assert!(types.contains(&EventType::Purchase));
    }

    #[test]
    fn unknown_behaviors_are_bad_lines() {
        let err = import_to_vec(Format::Taobao, &[fixture("taobao/bad.csv")], true).unwrap_err();
        let Error::Parse { line, message, .. } = err else { panic!("expected a parse error") };
        assert_eq!(line, 2);
        assert!(message.contains("`behavior`"), "{message}");
        let (report, _) = import_to_vec(Format::Taobao, &[fixture("taobao/bad.csv")], false).unwrap();
        assert_eq!((report.events, report.skipped), (1, 2));
    }
}
