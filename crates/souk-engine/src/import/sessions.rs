//! Session logs, one click per row, in either of the two layouts session-based
//! recommendation research uses:
//! - RSC15 as session-rec prepares it: tab-separated with the header `SessionId ItemId Time`
//!   (Time in Unix seconds, perhaps fractional); the columns are found by name, so the
//!   files session-rec's other preprocessing scripts write (more columns, another order)
//!   read too;
//! - DIGINETICA (CIKM Cup 2016) `train-item-views.csv`: `;`-separated with the header
//!   `session_id;user_id;item_id;timeframe;eventdate`, the time being the day (`YYYY-MM-DD`,
//!   taken as UTC midnight) plus `timeframe` milliseconds (as session-rec's preprocessing
//!   adds them).
//!
//! The header decides the layout. Each session becomes a user (its id is the session id) and
//! each row a `view`; event ids are `ses:{session}:{item}:{time ms}`, so importing a file
//! twice stores each click once. Each distinct item is emitted once, before its first event,
//! as an item titled with its own id (these logs have no product data).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::{cell, dataset_event, read_header, seconds_to_ms, Encoding, Importer};
use crate::error::{Error, Result, ValidationError};
use crate::ids::ItemId;
use crate::model::{EventType, Item};

pub(super) fn in_directory(name: &str) -> bool {
    name.ends_with(".txt") || name.ends_with(".csv") || name.ends_with(".tsv")
}

/// The two layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionLayout {
    /// Tab-separated with `SessionId`, `ItemId` and `Time` (Unix seconds) columns, at
    /// these indices.
    Rsc15 { session: usize, item: usize, time: usize },
    /// `session_id;user_id;item_id;timeframe;eventdate`.
    Diginetica,
}

impl SessionLayout {
    /// The layout a header line names.
    pub fn of_header(header: &str) -> Result<Self, ValidationError> {
        let cells: Vec<&str> = header.split('\t').map(str::trim).collect();
        let column = |name: &str| cells.iter().position(|c| *c == name);
        if let (Some(session), Some(item), Some(time)) = (column("SessionId"), column("ItemId"), column("Time")) {
            return Ok(Self::Rsc15 { session, item, time });
        }
        let cells: Vec<&str> = header.split(';').map(str::trim).collect();
        if cells.len() >= 5 && cells[..5] == ["session_id", "user_id", "item_id", "timeframe", "eventdate"] {
            return Ok(Self::Diginetica);
        }
        Err(ValidationError::new(
            "invalid_header",
            "header",
            format!(
                "expected `SessionId<TAB>ItemId<TAB>Time` or `session_id;user_id;item_id;timeframe;eventdate`, \
                 found {header:?}"
            ),
        ))
    }
}

/// One click of a session log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClick {
    pub session: String,
    pub item: String,
    /// Unix milliseconds.
    pub time_ms: i64,
}

/// Parse one data row (`None` for a blank line).
pub fn parse_click(layout: SessionLayout, line: &str) -> Result<Option<SessionClick>, ValidationError> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let click = match layout {
        SessionLayout::Rsc15 { session, item, time } => {
            let cells: Vec<&str> = line.split('\t').collect();
            SessionClick {
                session: cell(&cells, session, "SessionId")?.to_string(),
                item: cell(&cells, item, "ItemId")?.to_string(),
                time_ms: seconds_to_ms(cell(&cells, time, "Time")?, "Time")?,
            }
        }
        SessionLayout::Diginetica => {
            let cells: Vec<&str> = line.split(';').collect();
            let offset = cell(&cells, 3, "timeframe")?;
            let offset: i64 = offset.parse().ok().filter(|ms: &i64| *ms >= 0).ok_or_else(|| {
                ValidationError::new(
                    "invalid_number",
                    "timeframe",
                    format!("expected milliseconds ≥ 0, found {offset:?}"),
                )
            })?;
            let day = cell(&cells, 4, "eventdate")?;
            let midnight = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().timestamp_millis())
                .ok_or_else(|| {
                    ValidationError::new(
                        "invalid_timestamp",
                        "eventdate",
                        format!("expected YYYY-MM-DD, found {day:?}"),
                    )
                })?;
            SessionClick {
                session: cell(&cells, 0, "session_id")?.to_string(),
                item: cell(&cells, 2, "item_id")?.to_string(),
                time_ms: midnight.saturating_add(offset),
            }
        }
    };
    for (value, field) in [(&click.session, "session"), (&click.item, "item")] {
        if value.is_empty() {
            return Err(ValidationError::new("missing_field", field, format!("expected a {field} id, found \"\"")));
        }
    }
    Ok(Some(click))
}

/// Every click of a session log file, in file order (strict: the first bad row fails).
pub fn read_clicks(path: &Path) -> Result<Vec<SessionClick>> {
    let text = fs_err::read_to_string(path)?;
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            line: 1,
            message: "expected a header, found an empty file".into(),
        });
    };
    let header = header.trim_start_matches('\u{feff}');
    let layout = SessionLayout::of_header(header).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: 1,
        message: e.message,
    })?;
    let mut clicks = Vec::new();
    for (k, line) in lines {
        let parsed = parse_click(layout, line).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            line: k as u64 + 1,
            message: e.to_string(),
        })?;
        clicks.extend(parsed);
    }
    Ok(clicks)
}

pub(super) fn run(importer: &mut Importer<'_>, files: &[PathBuf]) -> Result<()> {
    // Exact ids, not hashes: a collision here would silently drop an item.
    let mut emitted_items: HashSet<ItemId> = HashSet::new();
    for path in files {
        let header = read_header(path, Encoding::Utf8)?;
        let layout = SessionLayout::of_header(&header).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            line: 1,
            message: e.message,
        })?;
        importer.scan_lines(
            path,
            true,
            Encoding::Utf8,
            |_, line| {
                let Some(click) = parse_click(layout, line)? else { return Ok(None) };
                let id = format!("ses:{}:{}:{}", click.session, click.item, click.time_ms);
                let event = dataset_event(id, EventType::View, &click.session, &click.item, None, click.time_ms)?;
                Ok(Some(event))
            },
            |importer, _, event| {
                importer.emit_with_item(&mut emitted_items, event, |id| Item::new(id.clone(), id.as_str()))
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{fixture, import_to_vec, Format};
    use super::*;
    use crate::model::Record;

    #[test]
    fn both_layouts_become_one_user_per_session_with_views() {
        let (report, records) =
            import_to_vec(Format::Sessions, &[fixture("sessions/rsc15.txt"), fixture("sessions/digi.csv")], true)
                .unwrap();
        assert_eq!(report.events, 7);
        assert_eq!(report.distinct_users, 4, "two sessions per file");
        assert_eq!(report.items, report.distinct_items);
        let events: Vec<_> =
            records.iter().filter_map(|r| if let Record::Event(e) = r { Some(e) } else { None }).collect();
        assert!(events.iter().all(|e| e.event_type == EventType::View));
        assert_eq!(events[0].user.as_str(), "1");
        assert_eq!(events[0].timestamp, 1_396_860_669_277);
        // DIGINETICA: the day at UTC midnight plus the timeframe.
        let digi = events.iter().find(|e| e.user.as_str() == "7").unwrap();
        assert_eq!(digi.timestamp, 1_462_752_000_000 + 526_309);
        assert_eq!(digi.item.as_ref().unwrap().as_str(), "81766");
    }

    #[test]
    fn an_unknown_header_fails_and_bad_rows_are_named() {
        assert!(SessionLayout::of_header("user\titem\ttime").is_err());
        let layout = SessionLayout::of_header("SessionId\tItemId\tTime").unwrap();
        // Columns by name, in any order (session-rec's DIGINETICA output).
        let other = SessionLayout::of_header("SessionId\tTime\tItemId\tDate").unwrap();
        let click = parse_click(other, "2\t1462752038.317\t100747\t2016-05-09").unwrap().unwrap();
        assert_eq!((click.item.as_str(), click.time_ms), ("100747", 1_462_752_038_317));
        let e = parse_click(layout, "1\t2\tyesterday").unwrap_err();
        assert_eq!(e.field, "Time");
        let e = parse_click(SessionLayout::Diginetica, "1;NA;5;10;2016-13-01").unwrap_err();
        assert_eq!(e.field, "eventdate");
        assert_eq!(parse_click(layout, "  ").unwrap(), None);
    }
}
