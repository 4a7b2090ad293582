//! REES46 "eCommerce behavior data from multi category store" (the Open CDP monthly files,
//! e.g. `2019-Oct.csv`): CSV with the header
//! `event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session`,
//! times like `2019-10-01 00:00:00 UTC`.
//!
//! Event types `view`, `cart`, `remove_from_cart` and `purchase` map to `view`,
//! `add_to_cart`, `remove_from_cart` and `purchase`; a purchase carries the price of that
//! row. Event ids are `rees46:{user}:{product}:{type}:{seconds}` (the same action on the same
//! product in the same second is one event). Each product is emitted once, before its first
//! event, with its category path from the dotted `category_code` (`electronics.smartphone`
//! → the levels `electronics`, `smartphone`), or its `category_id` when the code is empty,
//! its brand and its price at that first sighting; titled with its own id (the data has no
//! titles). `user_session` is not kept: Souk derives sessions from time gaps.

use std::collections::HashSet;
use std::path::PathBuf;

use super::{cell, dataset_event, parse_number, read_header, unknown_file, Encoding, Format, Importer};
use crate::error::{Result, ValidationError};
use crate::ids::ItemId;
use crate::model::{Event, EventType, Item};

/// The header of every REES46 file.
pub const HEADER: &str = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session";

pub(super) fn in_directory(name: &str) -> bool {
    name.ends_with(".csv")
}

fn event_type(name: &str) -> Result<EventType, ValidationError> {
    match name {
        "view" => Ok(EventType::View),
        "cart" => Ok(EventType::AddToCart),
        "remove_from_cart" => Ok(EventType::RemoveFromCart),
        "purchase" => Ok(EventType::Purchase),
        other => Err(ValidationError::new(
            "invalid_event_type",
            "event_type",
            format!("expected view, cart, remove_from_cart or purchase, found {other:?}"),
        )),
    }
}

/// `2019-10-01 00:00:00 UTC` → Unix milliseconds.
fn event_time(text: &str) -> Result<i64, ValidationError> {
    let naive = text.strip_suffix(" UTC").unwrap_or(text);
    chrono::NaiveDateTime::parse_from_str(naive, "%Y-%m-%d %H:%M:%S").map(|t| t.and_utc().timestamp_millis()).map_err(
        |_| {
            ValidationError::new(
                "invalid_timestamp",
                "event_time",
                format!("expected a time like 2019-10-01 00:00:00 UTC, found {text:?}"),
            )
        },
    )
}

fn parse_row(line: &str) -> Result<Option<(Event, Item)>, ValidationError> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let cells: Vec<&str> = line.split(',').collect();
    let time = cell(&cells, 0, "event_time")?;
    let kind = cell(&cells, 1, "event_type")?;
    let product = cell(&cells, 2, "product_id")?;
    let category_id = cell(&cells, 3, "category_id")?;
    let category_code = cell(&cells, 4, "category_code")?;
    let brand = cell(&cells, 5, "brand")?;
    let price_text = cell(&cells, 6, "price")?;
    let user = cell(&cells, 7, "user_id")?;
    let at = event_time(time)?;
    let price = if price_text.is_empty() { None } else { Some(parse_number(price_text, "price")?) };
    if price.is_some_and(|p| p < 0.0) {
        return Err(ValidationError::new(
            "invalid_number",
            "price",
            format!("expected a price ≥ 0, found {price_text}"),
        ));
    }
    let event_type = event_type(kind)?;
    let mut event =
        dataset_event(format!("rees46:{user}:{product}:{kind}:{}", at / 1000), event_type, user, product, None, at)?;
    if event_type == EventType::Purchase {
        event.price = price;
    }
    let mut item = Item::new(ItemId::parse(product, "product_id")?, product);
    item.category = if category_code.is_empty() {
        if category_id.is_empty() {
            Vec::new()
        } else {
            vec![category_id.to_string()]
        }
    } else {
        category_code.split('.').filter(|level| !level.is_empty()).map(str::to_string).collect()
    };
    item.brand = (!brand.is_empty()).then(|| brand.to_string());
    item.price = price;
    Ok(Some((event, item)))
}

pub(super) fn run(importer: &mut Importer<'_>, files: &[PathBuf]) -> Result<()> {
    // Exact ids, not hashes: a collision here would silently drop an item.
    let mut emitted_items: HashSet<ItemId> = HashSet::new();
    for path in files {
        if read_header(path, Encoding::Utf8)?.trim() != HEADER {
            return Err(unknown_file(path, Format::Rees46, &format!("a CSV file with the header {HEADER}")));
        }
        importer.scan_lines(
            path,
            true,
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
    fn events_and_products_with_their_category_path_brand_and_price() {
        let (report, records) = import_to_vec(Format::Rees46, &[fixture("rees46/2019-Oct.csv")], true).unwrap();
        assert_eq!((report.events, report.items, report.distinct_users), (6, 3, 3));
        let Record::Item(first) = &records[0] else { panic!("a product precedes its first event") };
        assert_eq!((first.id.as_str(), first.title.as_str()), ("44600062", "44600062"));
        assert_eq!(first.category, vec!["2103807459595387724"], "no code: the category id");
        assert_eq!((first.brand.as_deref(), first.price), (Some("shiseido"), Some(35.79)));
        let heater = records
            .iter()
            .find_map(|r| if let Record::Item(i) = r { (i.id.as_str() == "3900821").then_some(i) } else { None })
            .unwrap();
        assert_eq!(heater.category, vec!["appliances", "environment", "water_heater"]);
        let events: Vec<_> =
            records.iter().filter_map(|r| if let Record::Event(e) = r { Some(e) } else { None }).collect();
        let types: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
        assert_eq!(
            types,
            [
                EventType::View,
                EventType::View,
                EventType::View,
                EventType::AddToCart,
                EventType::Purchase,
                EventType::RemoveFromCart
            ]
        );
        let purchase = events[4];
        assert_eq!(purchase.id.as_str(), "rees46:554748717:3900821:purchase:1569888065");
        assert_eq!((purchase.timestamp, purchase.price), (1_569_888_065_000, Some(31.9)));
        assert_eq!(events[0].price, None, "only purchases carry the price paid");
    }

    #[test]
    fn bad_rows_are_parse_errors_and_other_files_are_refused() {
        let error = import_to_vec(Format::Rees46, &[fixture("rees46/bad.csv")], true).unwrap_err();
        let Error::Parse { line, message, .. } = error else { panic!("expected a parse error") };
        assert_eq!(line, 3);
        assert!(message.contains("event_type"), "{message}");
        let (report, _) = import_to_vec(Format::Rees46, &[fixture("rees46/bad.csv")], false).unwrap();
        assert_eq!((report.events, report.skipped), (1, 3));
        assert!(import_to_vec(Format::Rees46, &[fixture("rees46/other.csv")], true).is_err());
    }
}
