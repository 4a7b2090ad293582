//! Generic CSV with a header row. The header decides what the rows are:
//! - `type` and `user` columns: events, columns named like the event's JSON fields
//!   (`items` lists ids separated by `|`);
//! - a `title` column: items (`category` as `"A > B"`, `tags` separated by `|`, every
//!   column that is not an item field becomes an attribute);
//! - `user` and `other` columns: follows (`kind`, `created_at` optional).
//!
//! Each row becomes the JSON object the HTTP API would receive, with numbers for numeric
//! columns and empty cells left out, and is validated by [`crate::input`], so a CSV row is
//! accepted exactly when the same record sent over HTTP would be. A cell that does not
//! parse as the number its column needs is passed on as text, so the validation error
//! names the column.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{guess_json_value, Importer};
use crate::error::{Error, Result, ValidationError};
use crate::input::{parse_event, parse_follow, parse_item};
use crate::model::Record;

pub(super) fn in_directory(name: &str) -> bool {
    name.ends_with(".csv")
}

/// What the rows of one CSV file are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowKind {
    Event,
    Item,
    Follow,
}

/// Event columns are exactly the fields of an event.
const EVENT_COLUMNS: &[&str] = crate::input::EVENT_FIELDS;
const ITEM_COLUMNS: &[&str] =
    &["id", "title", "description", "category", "brand", "price", "currency", "tags", "available", "created_at"];
const FOLLOW_COLUMNS: &[&str] = crate::input::FOLLOW_FIELDS;

/// How a cell of a known column becomes JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CellType {
    Text,
    Float,
    Integer,
    Boolean,
    /// `|`-separated list of strings.
    List,
}

fn cell_type(kind: RowKind, column: &str) -> CellType {
    match (kind, column) {
        (RowKind::Event, "value" | "propensity" | "price") => CellType::Float,
        (RowKind::Event, "dwell_ms" | "position" | "quantity") => CellType::Integer,
        (RowKind::Event, "items") => CellType::List,
        (RowKind::Item, "price") => CellType::Float,
        (RowKind::Item, "tags") => CellType::List,
        (RowKind::Item, "available") => CellType::Boolean,
        _ => CellType::Text,
    }
}

fn to_json(cell: &str, cell_type: CellType) -> Value {
    let trimmed = cell.trim();
    match cell_type {
        CellType::Text => Value::String(cell.to_string()),
        CellType::Float => trimmed
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(cell.to_string()), Value::Number),
        CellType::Integer => {
            if let Ok(n) = trimmed.parse::<u64>() {
                Value::from(n)
            } else if let Ok(n) = trimmed.parse::<i64>() {
                Value::from(n)
            } else {
                // A fraction stays a number so the error says "expected a non-negative
                // integer, found 1.5" rather than complaining about its type.
                to_json(cell, CellType::Float)
            }
        }
        CellType::Boolean => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Value::Bool(true),
            "false" | "0" | "no" => Value::Bool(false),
            _ => Value::String(cell.to_string()),
        },
        CellType::List => Value::Array(
            cell.split('|')
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .map(|part| Value::String(part.to_string()))
                .collect(),
        ),
    }
}

fn classify(path: &Path, header: &[String]) -> Result<RowKind> {
    let has = |name: &str| header.iter().any(|h| h == name);
    let kind = if has("type") && has("user") {
        RowKind::Event
    } else if has("title") {
        RowKind::Item
    } else if has("user") && has("other") {
        RowKind::Follow
    } else {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            line: 1,
            message: format!(
                "cannot tell what the rows are from the header ({}); expected `type` and `user` \
                 (events), `title` (items) or `user` and `other` (follows)",
                header.join(",")
            ),
        });
    };
    // Items keep unknown columns as attributes; for events and follows an unknown column is
    // a misspelling that would fail every row, so say so once.
    let known = match kind {
        RowKind::Event => EVENT_COLUMNS,
        RowKind::Follow => FOLLOW_COLUMNS,
        RowKind::Item => return Ok(kind),
    };
    let unknown: Vec<&str> = header.iter().map(String::as_str).filter(|h| !known.contains(h)).collect();
    if !unknown.is_empty() {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            line: 1,
            message: format!(
                "unknown_field: unknown columns {}; expected columns among: {}",
                unknown.join(", "),
                known.join(", ")
            ),
        });
    }
    Ok(kind)
}

fn row_to_record(kind: RowKind, header: &[String], row: &csv::StringRecord) -> Result<Record, ValidationError> {
    let mut object = Map::new();
    let mut attributes = Map::new();
    for (column, cell) in header.iter().zip(row.iter()) {
        if cell.trim().is_empty() {
            continue;
        }
        if kind == RowKind::Item && !ITEM_COLUMNS.contains(&column.as_str()) {
            attributes.insert(column.clone(), guess_json_value(cell));
        } else {
            object.insert(column.clone(), to_json(cell, cell_type(kind, column)));
        }
    }
    if !attributes.is_empty() {
        object.insert("attributes".to_string(), Value::Object(attributes));
    }
    let value = Value::Object(object);
    match kind {
        RowKind::Event => parse_event(&value).map(Record::Event),
        RowKind::Item => parse_item(&value).map(Record::Item),
        RowKind::Follow => parse_follow(&value).map(Record::Follow),
    }
}

/// Report progress every this many rows: often enough for a smooth bar, rarely enough to
/// cost nothing.
const PROGRESS_EVERY_ROWS: u64 = 16 * 1024;

fn import_file(importer: &mut Importer<'_>, path: &Path) -> Result<()> {
    importer.start_file(path);
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(fs_err::File::open(path)?);
    let header: Vec<String> = match reader.headers() {
        Ok(header) => header.iter().map(|h| h.trim_start_matches('\u{feff}').trim().to_string()).collect(),
        Err(e) => return Err(Error::Parse { path: path.to_path_buf(), line: 1, message: format!("invalid_csv: {e}") }),
    };
    let kind = classify(path, &header)?;
    let mut row = csv::StringRecord::new();
    let mut reported: u64 = 0;
    let mut rows_since_report: u64 = 0;
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {
                let line = row.position().map_or(line, csv::Position::line);
                match row_to_record(kind, &header, &row) {
                    Ok(record) => importer.emit(record)?,
                    Err(error) => importer.reject(path, line, error)?,
                }
            }
            Err(e) => {
                if let csv::ErrorKind::Io(_) = e.kind() {
                    return Err(Error::Io(std::io::Error::other(format!("{}: {e}", path.display()))));
                }
                let line = e.position().map_or(line, csv::Position::line);
                importer.reject(path, line, ValidationError::new("invalid_csv", "", e.to_string()))?;
            }
        }
        rows_since_report += 1;
        if rows_since_report == PROGRESS_EVERY_ROWS {
            rows_since_report = 0;
            let byte = reader.position().byte();
            importer.read_bytes((byte - reported) as usize);
            reported = byte;
        }
    }
    let byte = reader.position().byte();
    importer.read_bytes((byte - reported) as usize);
    Ok(())
}

pub(super) fn run(importer: &mut Importer<'_>, files: &[PathBuf]) -> Result<()> {
    for path in files {
        import_file(importer, path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{fixture, import_to_vec, Format};
    use crate::error::Error;
    use crate::model::{EventType, FollowKind, Record};

    #[test]
    fn event_rows_get_typed_values() {
        let (report, records) = import_to_vec(Format::Csv, &[fixture("csv/events.csv")], true).unwrap();
        assert_eq!(report.events, 4);
        let events: Vec<_> = records
            .iter()
            .map(|r| match r {
                Record::Event(e) => e.clone(),
                other => panic!("expected events, found {other:?}"),
            })
            .collect();
        assert_eq!(events[0].id.as_str(), "ev-1");
        assert_eq!(events[0].event_type, EventType::View);
        assert_eq!(events[0].dwell_ms, Some(3500));
        assert_eq!(events[0].timestamp, 1_767_323_045_000);
        assert_eq!(events[1].event_type, EventType::Impression);
        assert_eq!(events[1].items.len(), 3);
        assert_eq!(events[1].position, None);
        assert_eq!(events[1].propensity, Some(0.25));
        assert_eq!(events[2].quantity, Some(2));
        assert_eq!(events[2].price, Some(19.5));
        assert_eq!(events[3].query.as_deref(), Some("red, summer dress"));
        assert_eq!(events[3].timestamp, 1_767_323_000_000);
    }

    #[test]
    fn item_rows_keep_extra_columns_as_attributes() {
        let (report, records) = import_to_vec(Format::Csv, &[fixture("csv/items.csv")], true).unwrap();
        assert_eq!(report.items, 3);
        let Record::Item(dress) = &records[0] else { panic!("expected an item") };
        assert_eq!(dress.title, "Summer Dress, red");
        assert_eq!(dress.category, vec!["Clothing", "Dresses"]);
        assert_eq!(dress.tags, vec!["summer", "red"]);
        assert_eq!(dress.price, Some(39.9));
        assert_eq!(dress.attributes.get("weight_g"), Some(&json!(250)));
        assert_eq!(dress.attributes.get("ean"), Some(&json!("0012345678905")));
        assert!(dress.available);
        let Record::Item(mug) = &records[1] else { panic!("expected an item") };
        assert!(!mug.available);
        assert_eq!(mug.attributes.get("weight_g"), None, "empty cells are absent");
        let Record::Item(lamp) = &records[2] else { panic!("expected an item") };
        assert_eq!(lamp.created_at, Some(1_700_000_000_000));
    }

    #[test]
    fn follow_rows_read_their_kind() {
        let (report, records) = import_to_vec(Format::Csv, &[fixture("csv/follows.csv")], true).unwrap();
        assert_eq!(report.follows, 2);
        let Record::Follow(first) = &records[0] else { panic!("expected a follow") };
        assert_eq!(first.kind, FollowKind::Friend);
        let Record::Follow(second) = &records[1] else { panic!("expected a follow") };
        assert_eq!(second.kind, FollowKind::Follow);
    }

    #[test]
    fn validation_errors_name_the_row_and_column() {
        let err = import_to_vec(Format::Csv, &[fixture("csv/bad_events.csv")], true).unwrap_err();
        let Error::Parse { line, message, .. } = err else { panic!("expected a parse error") };
        assert_eq!(line, 3);
        assert!(message.contains("invalid_type at `value`"), "{message}");

        let (report, records) = import_to_vec(Format::Csv, &[fixture("csv/bad_events.csv")], false).unwrap();
        assert_eq!((report.events, report.skipped), (1, 4));
        assert_eq!(records.len(), 1);
        let expected = [
            ":3: skipped: invalid_type at `value`",
            ":4: skipped: invalid_number at `quantity`",
            ":5: skipped: invalid_csv",
            ":6: skipped: invalid_timestamp at `timestamp`",
        ];
        for (warning, expected) in report.warnings.iter().zip(expected) {
            assert!(warning.contains(expected), "{warning} should contain {expected}");
        }
    }

    #[test]
    fn headers_that_fit_nothing_are_refused_on_line_one() {
        let dir = tempfile::tempdir().unwrap();
        let unknown = dir.path().join("a.csv");
        fs_err::write(&unknown, "foo,bar\n1,2\n").unwrap();
        let err = import_to_vec(Format::Csv, &[unknown], false).unwrap_err();
        assert!(matches!(err, Error::Parse { line: 1, .. }), "{err}");
        let misspelt = dir.path().join("b.csv");
        fs_err::write(&misspelt, "type,user,item,timestmp\nview,u,i,1\n").unwrap();
        let err = import_to_vec(Format::Csv, &[misspelt], false).unwrap_err();
        assert!(err.to_string().contains("timestmp"), "{err}");
    }
}
